#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation (8 preconditioned Krylov vectors, damping
held, Marquardt trials as PESVI) with each point's temperature falling at its own pace, as an
adaptive path-following method would: after an iteration, a point whose accepted step achieved
a gain ratio rho above THRESHOLD (its linear model was good) multiplies its temperature
multiplier m (tau = m x its pre-activation spread, m = c at the start) by FAST, any other by SLOW.
FAST = SLOW = 0.6 is PESVI's schedule.

    python3 scripts/adaptive_temperature_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c K FAST,SLOW,THRESHOLD [...]

Recorded in docs/RESULTS.md ("Thirty-second session"). Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, preconditioned_krylov_solver, solved_trials, validation_preconditioner
p = Probe(sys.argv[:4])
c = float(sys.argv[4]); k = int(sys.argv[5]); specs = sys.argv[6:]
rows = os.environ.get("PESVI_PROBE_ROWS", "test")
C = validation_preconditioner(p.model, p.L); make = preconditioned_krylov_solver(C, k)
n = len(p.mu0)
for spec in specs:
    ffast, fslow, thr = (float(v) for v in spec.split(','))
    mu, lam, m, curve = p.mu0.copy(), np.full(n, 1e-3), np.full(n, c), []
    for t in range(p.iters):
        taus = [m[:, None] * sc for sc in p.scales]
        out, J = p.fwd(mu, taus); r = p.x - out; pp = (r ** 2).mean(1); rho = np.zeros(n)
        for i in range(n):
            g, H = J[i].T @ r[i], J[i].T @ J[i]; solve = make(g, H, None); ti = [tt[i:i+1] for tt in taus]
            delta, lam[i], _, _, r_i, _ = solved_trials(p.fwd, mu[i], p.x[i], g, H, solve, pp[i], lam[i], ti, p.d)
            if delta is not None: mu[i] += delta; rho[i] = r_i
        m *= np.where(rho > thr, ffast, fslow)
        curve.append(p.P(mu).mean())
    lv = 1.01*p.svi
    print(f"{rows} fast {ffast} slow {fslow} rho> {thr}: first", next((t+1 for t,v in enumerate(curve) if v<=lv),None), " ".join(f"{v:.5f}" for v in curve), "| median m", f"{np.median(m):.4f}", flush=True)
