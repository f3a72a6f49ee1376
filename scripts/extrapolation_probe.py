#!/usr/bin/env python3
"""Probe (NumPy, float64): does PE-SVI-GN's continuation gain from extrapolating along its own
path? The smoothed solutions z*(tau) form a path towards the ReLU decoder's solution at tau = 0;
PE-SVI-GN only follows it, one Newton step per temperature. Two ways to use the path without
another linearization:

  post  after iteration t, the point z_t + beta (z_t - z_{t-1}) (a forward pass; kept per point
        where its ReLU objective is lower than z_t's). With tau_t = c f^t and z*(tau) linear in
        tau, beta = f / (1 - f) lands on tau = 0 (Richardson).
  pred  before iteration t >= 1, a predictor: the iteration linearizes at z_t + beta (z_t - z_{t-1})
        instead of at z_t (a secant predictor, as in predictor-corrector continuation). With
        guard, the move is kept per point only where it lowers the point's objective on the decoder
        smoothed at the coming temperature (two forward passes).

    python3 scripts/extrapolation_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K BETA... 

Exact damped solves (as smoothing_probe.py); PESVI_PROBE_KRYLOV=k uses PESVI's k preconditioned
Krylov vectors instead. Prints, per beta, the mean ReLU objective after each iteration and the
first iteration within 1 % of SVI's level. Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver, schedule, preconditioned_krylov_solver, validation_preconditioner, show
probe = Probe(sys.argv[:4] + [sys.argv[4]])
c, f, K, lam0, hold = schedule(sys.argv[4]); betas = [float(b) for b in sys.argv[5:]]
level = 1.01 * probe.svi
k = int(os.environ.get("PESVI_PROBE_KRYLOV", "0"))
if k:
    C = validation_preconditioner(probe.model, probe.L)
    solver = lambda: preconditioned_krylov_solver(C, k)
else:
    solver = lambda: exact_solver(probe.L)
print(f"{probe.model} ({os.environ.get('PESVI_PROBE_ROWS', 'test')} rows): start {probe.P(probe.mu0).mean():.6f}, level {level:.6f}, "
      f"schedule c={c} f={f} K={K}, {'Krylov ' + str(k) if k else 'exact solves'}")

iterates = []
r = probe.lm(c, f, K, lam0, solver(), hold=hold, observe=lambda t, mu: iterates.append(mu))
show("PE-SVI-GN's continuation", r[2], level, 40)
zs = [probe.mu0] + iterates
for beta in betas:
    plain, best = [], []
    for t in range(1, len(zs)):
        e = zs[t] + beta * (zs[t] - zs[t - 1]); pe, pz = probe.P(e), probe.P(zs[t])
        plain.append(pe.mean()); best.append(np.minimum(pe, pz).mean())
    show(f"post beta={beta}", plain, level, 40)
    show(f"post beta={beta}, kept where lower", best, level, 40)

def taus_at(t, rows=slice(None)):
    return [c * f ** t * sc[rows] for sc in probe.scales] if t < K else None

for beta in betas:
    for guard in (False, True):
        def predict(t, mu, before):
            y = mu + beta * (mu - before)
            if not guard: return y
            tt = taus_at(t)
            worse = ((probe.fwd(y, tt)[0] - probe.x) ** 2).mean(1) > ((probe.fwd(mu, tt)[0] - probe.x) ** 2).mean(1)
            y[worse] = mu[worse]; return y
        r = probe.lm(c, f, K, lam0, solver(), hold=hold, predict=predict)
        show(f"pred beta={beta}{' guarded' if guard else ''}", r[2], level, 40)
