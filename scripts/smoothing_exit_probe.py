#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's smoothed Levenberg-Marquardt (exact solves; C, F, K the
schedule, default 0.8, 0.6, 9: smoothing to the end) with a per-point exit inside the smoothing:
after a smoothed iteration t >= 1, a point whose objective on the ReLU decoder gained less than
EXIT_TOL (relative) in that iteration stops. Prints, for each EXIT_TOL, the first iteration whose
mean ReLU reconstruction is within 1 % of SVI's level and the mean steps per point there (issue
6's measure). Recorded in docs/RESULTS.md ("Twenty-ninth session"). Not part of the package.

    python3 scripts/smoothing_exit_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS EXIT_TOL [...]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe
probe = Probe(sys.argv)
c, f, K = float(os.environ.get('C', 0.8)), float(os.environ.get('F', 0.6)), int(os.environ.get('K', 9))
mu0, x, L, d, fwd = probe.mu0, probe.x, probe.L, probe.d, probe.fwd
for exit_tol in [float(v) for v in probe.configs]:
    mu, lam = mu0.copy(), np.full(len(mu0), 1e-3); tol = 1e-3
    done = np.zeros(len(mu0), bool); steps = np.zeros(len(mu0)); curve = []; stepsAt = []
    prevP = probe.P(mu)
    for t in range(probe.iters):
        taus = [c * sc * f ** t for sc in probe.scales] if t < K else None
        sel = np.where(~done)[0]
        if len(sel):
            out, J = fwd(mu[sel], None if taus is None else [tt[sel] for tt in taus]); r = x[sel] - out; p = (r ** 2).mean(1)
            for jj, i in enumerate(sel):
                steps[i] += 1
                g = J[jj].T @ r[jj]; H = J[jj].T @ J[jj]
                tj = None if taus is None else [tt[i:i+1] for tt in taus]
                for _ in range(5):
                    if lam[i] > 1e12: done[i] = True; break
                    delta = np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                    predicted = (2 * delta @ g - delta @ H @ delta) / d
                    q = ((fwd((mu[i] + delta)[None], tj)[0][0] - x[i]) ** 2).mean()
                    if np.isfinite(q) and q <= p[jj] and (predicted <= tol * p[jj] or p[jj] - q >= 0.1 * predicted):
                        mu[i] += delta
                        if taus is None: lam[i] = max(lam[i] / 3, 1e-6)
                        if taus is None and p[jj] - q < tol * p[jj]: done[i] = True
                        break
                    lam[i] *= 4
        P = probe.P(mu)
        if exit_tol > 0 and t < K:
            # a smoothed point whose ReLU objective gained less than exit_tol (relative) this iteration stops
            newly = (~done) & (prevP - P < exit_tol * prevP) & (t >= 1)
            done |= newly
        prevP = P
        curve.append(P.mean()); stepsAt.append(steps.mean())
    first = next((t for t, v in enumerate(curve) if v <= 1.01 * probe.svi), None)
    print(f"exit tol {exit_tol}: reaches at iteration {None if first is None else first + 1}, mean steps there "
          f"{None if first is None else round(stepsAt[first], 3)}: " + " ".join(f"{v:.5f}" for v in curve) + "  steps " + " ".join(f"{v:.2f}" for v in stepsAt), flush=True)
