#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's Levenberg-Marquardt through smoothed ReLUs (as
krylov_lm_probe.py, the same schedule and damping) with each smoothed step solved in a Krylov
subspace built by Arnoldi (normalized, twice-orthogonalized vectors), optionally preconditioned:
span{Cg, (CH)Cg, ..., (CH)^(k-1) Cg} with C = (Hbar + eps * lambda_max(Hbar) I)^-1, Hbar the mean
Gauss-Newton curvature J^T J of the ReLU decoder at the pseudo-encoder's starts of the model's
validation rows (PESVI's GaussNewtonRefinement.curvaturePreconditioner takes eps * tr(Hbar)/|z|;
the probe's steps did not move between eps = 1e-3 and 3e-2). Optionally without the point's
last step p. After the smoothing, plain LM on the ReLU decoder: with EXACT_AFTER=1 solved
exactly (PESVI's default), else in the same subspace. Recorded in docs/RESULTS.md
("Twenty-seventh session"); what it probed became GaussNewtonRefinement.krylovPreconditioner.

    python3 scripts/preconditioned_krylov_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS k,mode,last [...]

mode: plain or pre; last: 1 (the last step in the basis) or 0. PESVI_PROBE_ROWS=validation
probes the validation rows (Hbar is then formed from the test rows, PREC_ROWS=validation to
keep it on the validation rows). The smoothing schedule is PESVI's default (c = 0.4, f = 0.5,
4 smoothed iterations, initial damping 1e-3) unless SMOOTHING_SCALE, SMOOTHING_FACTOR,
SMOOTHING_ITERATIONS or DAMPING say otherwise (twenty-eighth session). K_SCHEDULE=4/4/6/6 gives iteration t its own
number of Krylov vectors (k after the list; twenty-ninth session). Prints the mean reconstruction on the ReLU decoder after every
iteration and the first within 1 % of SVI's level. Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, mlp

probe = Probe(sys.argv)
mu0, x, L, d, fwd = probe.mu0, probe.x, probe.L, probe.d, probe.fwd
exact_after = os.environ.get('EXACT_AFTER') == '1'
rows = os.environ.get('PREC_ROWS', 'validation' if os.environ.get('PESVI_PROBE_ROWS') != 'validation' else 'test')
cfg = probe.config
xv = (np.load(f"{probe.model}/{rows}.npy").astype(np.float64) - np.array(cfg["standardizer"]["means"])) / np.array(cfg["standardizer"]["stds"])
_, Jv = fwd(mlp(probe.encoder, xv)[:, :L], None)
Hbar = np.mean([j.T @ j for j in Jv], axis=0)


def lm(k, pre, keep_last, c=float(os.environ.get('SMOOTHING_SCALE', 0.4)), f=float(os.environ.get('SMOOTHING_FACTOR', 0.5)),
       K=int(os.environ.get('SMOOTHING_ITERATIONS', 4)), lam0=float(os.environ.get('DAMPING', 1e-3)), eps=1e-2):
    ks = [int(v) for v in os.environ.get('K_SCHEDULE', '').split('/') if v]
    w, U = np.linalg.eigh(Hbar)
    C = U @ np.diag(1 / (w + eps * w.max())) @ U.T if pre else np.eye(L)
    mu, lam = mu0.copy(), np.full(len(mu0), lam0); curve = []; tol = 1e-3
    done = np.zeros(len(mu0), bool); last = np.zeros_like(mu0)
    for t in range(probe.iters):
        taus = [c * sc * f ** t for sc in probe.scales] if t < K else None
        sel = np.where(~done)[0]
        if len(sel):
            out, J = fwd(mu[sel], None if taus is None else [tt[sel] for tt in taus]); r = x[sel] - out; p = (r ** 2).mean(1)
            for jj, i in enumerate(sel):
                g = J[jj].T @ r[jj]; H = J[jj].T @ J[jj]
                if taus is None and exact_after:
                    Q = np.eye(L)
                else:
                    v = C @ g; V = [v / np.linalg.norm(v)]
                    for _ in range((ks[t] if t < len(ks) else k) - 1):
                        v = C @ (H @ V[-1])
                        for _ in range(2):
                            for u in V: v = v - (u @ v) * u
                        if np.linalg.norm(v) < 1e-10: break
                        V.append(v / np.linalg.norm(v))
                    if keep_last and np.any(last[i]): V.append(last[i])
                    Q, R = np.linalg.qr(np.array(V).T)
                    Q = Q[:, np.abs(np.diag(R)) > 1e-6 * np.abs(R[0, 0])]
                Hs, gs = Q.T @ H @ Q, Q.T @ g
                tj = None if taus is None else [tt[i:i + 1] for tt in taus]
                for _ in range(5):
                    if lam[i] > 1e12: done[i] = True; break
                    delta = Q @ np.linalg.solve(Hs + lam[i] * np.diag(np.diag(Hs)) + 1e-9 * np.eye(len(gs)), gs)
                    predicted = (2 * delta @ g - delta @ H @ delta) / d
                    q = ((fwd((mu[i] + delta)[None], tj)[0][0] - x[i]) ** 2).mean()
                    if np.isfinite(q) and q <= p[jj] and (predicted <= tol * p[jj] or p[jj] - q >= 0.1 * predicted):
                        mu[i] += delta; last[i] = delta
                        if taus is None: lam[i] = max(lam[i] / 3, 1e-6)
                        if taus is None and p[jj] - q < tol * p[jj]: done[i] = True
                        break
                    lam[i] *= 4; last[i] = 0
        curve.append(probe.P(mu).mean())
    return next((t + 1 for t, v in enumerate(curve) if v <= 1.01 * probe.svi), None), curve


print(f"{probe.model} ({os.environ.get('PESVI_PROBE_ROWS', 'test')} rows, Hbar from {rows}): level {1.01 * probe.svi:.6f}")
for spec in probe.configs:
    k, mode, keep = spec.split(',')
    first, curve = lm(int(k), mode == 'pre', keep == '1')
    print(f"  k={k} {mode} last={keep}: reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
