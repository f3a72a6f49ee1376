#!/usr/bin/env python3
"""Probe (NumPy, float64): damping rules inside PE-SVI-GN's continuation as PESVI runs it
(smoothed to the end, tau = c f^t times the point's pre-activation spread, K preconditioned
Krylov vectors, up to 5 Marquardt trials, gain ratio 0.1, x4 after a rejected trial). The ray
through one full Gauss-Newton step from the start shows why the rule matters: at digits |z| = 64
Arch3 the undamped step is 2.7 times as long as the start and raises the smoothed objective 4.4
times, while lambda = 0.1 lowers it 5 times (see RESULTS.md, "Thirty-second session").

    python3 scripts/damping_continuation_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f K RULE,LAMBDA0 [...]

RULE after an accepted step (rho = actual / predicted decrease):
  hold     lambda unchanged (PESVI's rule for smoothed steps)
  third    lambda / 3
  ratio    lambda / 3 if rho > 0.75, x2 if rho < 0.25, else unchanged
  nielsen  lambda * max(1/3, 1 - (2 rho - 1)^3)
K = 0: exact damped solves; PESVI_PROBE_EXACT_FROM=T: Krylov before iteration T, exact from it
(PESVI_PROBE_EXACT_LAMBDA=L: every point's damping set to L there). Prints the mean objective on the ReLU decoder after each iteration,
the first within 1 % of SVI's level, and the rejected trials per point. Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, preconditioned_krylov_solver, exact_solver, solved_trials, validation_preconditioner
p = Probe(sys.argv[:4])
c, f = (float(v) for v in sys.argv[4].split(',')); k = int(sys.argv[5]); rules = sys.argv[6:]
rows = os.environ.get("PESVI_PROBE_ROWS", "test")
C = validation_preconditioner(p.model, p.L)
krylov, exact = preconditioned_krylov_solver(C, k) if k else None, exact_solver(p.L)
exact_from = int(os.environ.get("PESVI_PROBE_EXACT_FROM", "0"))   # > 0: exact solves from this iteration (1, 2, ...) on
exact_lambda = float(os.environ.get("PESVI_PROBE_EXACT_LAMBDA", "0"))   # > 0: every point's damping at the switch
level = 1.01 * p.svi
print(f"{p.model} ({rows} rows): start {p.P(p.mu0).mean():.6f}, level {level:.6f}, c={c} f={f}, {'Krylov ' + str(k) if k else 'exact solves'}{f', exact from iteration {exact_from}' if exact_from and k else ''}")
for spec in rules:
    rule, lam0 = spec.split(','); lam0 = float(lam0)
    mu, lam, n, curve, rejected = p.mu0.copy(), np.full(len(p.mu0), lam0), len(p.mu0), [], []
    for t in range(p.iters):
        taus = [c * f ** t * sc for sc in p.scales]
        out, J = p.fwd(mu, taus); r = p.x - out; pp = (r ** 2).mean(1); rej = 0
        if exact_lambda and exact_from and t + 1 == exact_from: lam[:] = exact_lambda
        for i in range(n):
            g, H = J[i].T @ r[i], J[i].T @ J[i]
            solve = (exact if krylov is None or (exact_from and t + 1 >= exact_from) else krylov)(g, H, None)
            ti = [tt[i:i + 1] for tt in taus]
            delta, lam[i], _, _, rho, rejections = solved_trials(p.fwd, mu[i], p.x[i], g, H, solve, pp[i], lam[i], ti, p.d)
            rej += rejections
            if delta is None: continue
            mu[i] += delta
            if rule == "third": lam[i] /= 3
            elif rule == "ratio": lam[i] *= (1 / 3 if rho > 0.75 else 2 if rho < 0.25 else 1)
            elif rule == "nielsen": lam[i] *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
            lam[i] = max(lam[i], 1e-6)
        curve.append(p.P(mu).mean()); rejected.append(rej / n)
    first = next((t + 1 for t, v in enumerate(curve) if v <= level), None)
    print(f"  {rule:8s} lambda0={lam0:<6g} reaches SVI at {first}: " + " ".join(f"{v:.5f}" for v in curve)
          + " | rejected per point: " + " ".join(f"{v:.2f}" for v in rejected), flush=True)
