#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's Levenberg-Marquardt with each step solved in a Krylov
subspace span{g, Hg, ..., H^(k-1) g, p} (p the last accepted step; QR basis, Marquardt damping
on the projected diagonal), through smoothed ReLUs as smoothing_probe.py, on a saved model from
the pseudo-encoder's mean. Recorded in docs/RESULTS.md ("Nineteenth session"); what it probed
became GaussNewtonRefinement's krylovDimension (--gn-krylov).

    python3 scripts/krylov_lm_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K,k [c,f,K,k ...]

Prints the mean reconstruction on the ReLU decoder after every iteration and the first
iteration within 1 % of SVI's level (with the mean steps per point there). Not part of the package.
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import Probe
probe = Probe(sys.argv)
model, svi, iters, configs = probe.model, probe.svi, probe.iters, probe.configs
x, L, d, mu0, scales, fwd, P = probe.x, probe.L, probe.d, probe.mu0, probe.scales, probe.fwd, probe.P
def run(c, f, K, k, iters, lam0=1e-3):
    mu, lam = mu0.copy(), np.full(len(mu0), lam0); curve = []; tol = 1e-3
    done = np.zeros(len(mu0), bool); steps = np.zeros(len(mu0)); stepsAt = []; last = np.zeros_like(mu0)
    for t in range(iters):
        taus = [c * sc * f ** t for sc in scales] if t < K else None
        sel = np.where(~done)[0]
        if len(sel):
            out, J = fwd(mu[sel], None if taus is None else [tt[sel] for tt in taus]); r = x[sel] - out; p = (r ** 2).mean(1)
            for jj, i in enumerate(sel):
                steps[i] += 1
                g = J[jj].T @ r[jj]; H = J[jj].T @ J[jj]
                # Krylov basis of H over g (k vectors), plus the last step; orthonormalized
                V = [g]
                for _ in range(k - 1): V.append(H @ V[-1])
                if np.any(last[i]): V.append(last[i])
                Q, R = np.linalg.qr(np.array(V).T)
                keep = np.abs(np.diag(R)) > 1e-6 * np.abs(R[0, 0])
                Q = Q[:, keep]
                Hs = Q.T @ H @ Q; gs = Q.T @ g; Ds = np.diag(np.diag(Hs))
                tj = None if taus is None else [tt[i:i+1] for tt in taus]
                for _ in range(5):
                    if lam[i] > 1e12: done[i] = True; break
                    cvec = np.linalg.solve(Hs + lam[i] * Ds + 1e-9 * np.eye(len(gs)), gs)
                    delta = Q @ cvec
                    predicted = (2 * delta @ g - delta @ H @ delta) / d
                    q = ((fwd((mu[i] + delta)[None], tj)[0][0] - x[i]) ** 2).mean()
                    if np.isfinite(q) and q <= p[jj] and (predicted <= tol * p[jj] or p[jj] - q >= 0.1 * predicted):
                        mu[i] += delta; last[i] = delta; lam[i] = max(lam[i] / 3, 1e-6)
                        if taus is None and p[jj] - q < tol * p[jj]: done[i] = True
                        break
                    lam[i] *= 4; last[i] = 0
        curve.append(P(mu).mean()); stepsAt.append(steps.mean())
    first = next((t for t, v in enumerate(curve) if v <= 1.01 * svi), None)
    return (None if first is None else (first + 1, round(stepsAt[first], 2))), curve
print(f"{model}: start {P(mu0).mean():.6f} SVI {svi} level {1.01*svi:.6f}, |z| {L}")
for cfg in configs:
    c, f, K, k = cfg.split(','); c, f, K, k = float(c), float(f), int(K), int(k)
    first, curve = run(c, f, K, k, iters)
    print(f"  c={c} f={f} K={K} krylov={k}: reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
