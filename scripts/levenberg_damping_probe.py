#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation (smoothed to the end, c = 0.8, f = 0.6,
damping held, x4 after a rejected trial, gain ratio 0.1) with Levenberg's damping, lambda times
the mean curvature trace(H)/|z| times I (a Tikhonov term on the step, the same in every
direction), against PESVI's Marquardt damping lambda diag(H). K = 0: exact solves; K > 0: K
preconditioned Krylov vectors, the damping applied to the projected system.

    python3 scripts/levenberg_damping_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS K KIND,LAMBDA0 [...]

KIND is marquardt or levenberg. Recorded in docs/RESULTS.md ("Thirty-second session"). Not part
of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, krylov_basis, solved_trials, validation_preconditioner
p = Probe(sys.argv[:4])
c, f = 0.8, 0.6; k = int(sys.argv[4]); specs = sys.argv[5:]
C = validation_preconditioner(p.model, p.L) if k else None
n, L = len(p.mu0), p.L
for spec in specs:
    kind, lam0 = spec.split(','); lam0 = float(lam0)
    mu, lam, curve = p.mu0.copy(), np.full(n, lam0), []
    for t in range(p.iters):
        taus = [c * f**t * sc for sc in p.scales]
        out, J = p.fwd(mu, taus); r = p.x - out; pp = (r**2).mean(1)
        for i in range(n):
            g, H = J[i].T @ r[i], J[i].T @ J[i]
            Q = krylov_basis(C, g, H, k) if k else np.eye(L)
            Hs, gs = Q.T @ H @ Q, Q.T @ g
            Dm = np.diag(np.diag(Hs)) if kind == "marquardt" else (np.trace(H)/L) * np.eye(Q.shape[1])
            solve = lambda lam: Q @ np.linalg.solve(Hs + lam*Dm + 1e-9*np.eye(Q.shape[1]), gs)
            delta, lam[i] = solved_trials(p.fwd, mu[i], p.x[i], g, H, solve, pp[i], lam[i], [tt[i:i+1] for tt in taus], p.d)[:2]
            if delta is not None: mu[i] += delta
        curve.append(p.P(mu).mean())
    lv = 1.01*p.svi
    print(f"k={k} {kind} lambda0={lam0}: first", next((t+1 for t,v in enumerate(curve) if v<=lv),None), " ".join(f"{v:.5f}" for v in curve), flush=True)
