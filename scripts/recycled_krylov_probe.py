#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation with its Krylov subspaces informed by the
previous iteration's (Krylov recycling). After each iteration a point keeps the KEEP leading Ritz
pairs (Y, theta) of its projected matrix; the next iteration then
  deflate  builds its K vectors with the preconditioner Y diag(1/theta) Y^T + (I - YY^T) C (I - YY^T)
           instead of C (no extra products: the resolved directions are preconditioned exactly);
  augment  adds Y to its K new vectors (each costs a product with J^T J, so K + KEEP products);
  none     PESVI's (C, the inverse mean curvature at the validation rows' starts).
Smoothed to the end (tau = c f^t), damping held, Marquardt trials as PESVI.

    python3 scripts/recycled_krylov_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f K MODE [KEEP]

Recorded in docs/RESULTS.md ("Thirty-second session"). Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, krylov_basis, solved_trials, validation_preconditioner
p = Probe(sys.argv[:4])
c, f = (float(v) for v in sys.argv[4].split(',')); k = int(sys.argv[5]); mode = sys.argv[6]; keep = int(sys.argv[7]) if len(sys.argv) > 7 else k
rows = os.environ.get("PESVI_PROBE_ROWS", "test")
C = validation_preconditioner(p.model, p.L)
n, L = len(p.mu0), p.L
mu, lam, curve = p.mu0.copy(), np.full(n, 1e-3), []
Ys = [None]*n; Th = [None]*n
for t in range(p.iters):
    taus = [c * f ** t * sc for sc in p.scales]
    out, J = p.fwd(mu, taus); r = p.x - out; pp = (r ** 2).mean(1)
    for i in range(n):
        g, H = J[i].T @ r[i], J[i].T @ J[i]
        P = C
        if Ys[i] is not None and mode != "none":
            Y, th = Ys[i], Th[i]
            Pr = np.eye(L) - Y @ Y.T
            if mode == "deflate": P = Y @ np.diag(1/th) @ Y.T + Pr @ C @ Pr
        Q = krylov_basis(P, g, H, k)
        if mode == "augment" and Ys[i] is not None:
            V = list(Q.T)
            for y in Ys[i].T:
                for _ in range(2):
                    for u in V: y = y - (u @ y) * u
                if np.linalg.norm(y) > 1e-8: V.append(y/np.linalg.norm(y))
            Q = np.array(V).T
        Hs = Q.T @ H @ Q; gs = Q.T @ g
        solve = lambda lam: Q @ np.linalg.solve(Hs + lam*np.diag(np.diag(Hs)) + 1e-9*np.eye(Q.shape[1]), gs)
        delta, lam[i] = solved_trials(p.fwd, mu[i], p.x[i], g, H, solve, pp[i], lam[i], [tt[i:i+1] for tt in taus], p.d)[:2]
        if delta is not None: mu[i] += delta
        w, V = np.linalg.eigh(Hs); idx = np.argsort(w)[::-1][:keep]
        Ys[i] = Q @ V[:, idx]; Th[i] = np.maximum(w[idx], 1e-8)
    curve.append(p.P(mu).mean())
lv = 1.01*p.svi
print(f"{rows} k={k} mode={mode} keep={keep}: first", next((t+1 for t,v in enumerate(curve) if v<=lv),None), " ".join(f"{v:.5f}" for v in curve), flush=True)
