#!/usr/bin/env python3
"""Probe (NumPy, float64): is PE-SVI-GN's continuation limited by the smoothing's bias or by how
closely its iterates follow the path of smoothed solutions? Two runs from the pseudo-encoder's
mean, exact damped solves, on P(mu) = (1/d)||x - D(mu)||^2:

  slow   the path followed slowly: temperature multipliers m = c, 0.85 c, 0.85^2 c, ... (tau =
         m * the point's pre-activation spread, as PE-SVI-GN), ITERS_PER_STAGE LM iterations at
         each (damping /3 on an accepted step); after each stage the mean objective on the
         smoothed decoder (how well the stage's smoothed problem was solved) and on the ReLU
         decoder (the bias of the smoothing at the path's point).
  fixed  8 LM iterations at the one temperature m = c (damping /3 on an accepted step): how fast
         one smoothed problem is solved from the start.
  fast   PE-SVI-GN's continuation (tau = c f^t, one LM iteration per temperature, damping held):
         after each iteration the same two means, and the smoothed one at the next temperature.

    python3 scripts/path_tracking_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f ITERS_PER_STAGE STAGES

Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, damped_trials
probe = Probe(sys.argv[:4])
c, f = (float(v) for v in sys.argv[4].split(','))
per_stage, stages = int(sys.argv[5]), int(sys.argv[6])
x, n, d, fwd, P = probe.x, len(probe.mu0), probe.d, probe.fwd, probe.P
level = 1.01 * probe.svi
print(f"{probe.model} ({os.environ.get('PESVI_PROBE_ROWS', 'test')} rows): start {P(probe.mu0).mean():.6f}, SVI's level {level:.6f}")


def taus_at(m): return [m * sc for sc in probe.scales]
def smoothed(mu, m): return ((fwd(mu, taus_at(m))[0] - x) ** 2).mean(1)


def iteration(mu, lam, m, hold):
    taus = taus_at(m)
    out, J = fwd(mu, taus); r = x - out; p = (r ** 2).mean(1)
    for i in range(n):
        g, H = J[i].T @ r[i], J[i].T @ J[i]
        delta, lam[i] = damped_trials(fwd, mu[i], x[i], g, H, np.diag(np.diag(H)), p[i], lam[i], [t[i:i + 1] for t in taus], d)
        if delta is not None:
            mu[i] += delta
            if not hold: lam[i] = max(lam[i] / 3, 1e-6)


print(f"fixed: LM iterations at m={c}")
mu, lam = probe.mu0.copy(), np.full(n, 1e-3)
for t in range(8):
    iteration(mu, lam, c, hold=False); sm = smoothed(mu, c)
    print(f"  iteration {t + 1}: smoothed {sm.mean():.6f} (median point {np.median(sm):.6f}) ReLU {P(mu).mean():.6f}", flush=True)
print(f"slow: {per_stage} LM iterations at each temperature, m x0.85 per stage")
mu, lam, m = probe.mu0.copy(), np.full(n, 1e-3), c
for s in range(stages):
    for _ in range(per_stage): iteration(mu, lam, m, hold=False)
    rl = P(mu).mean()
    print(f"  stage {s + 1:2d} ({per_stage * (s + 1):3d} iterations) m={m:.4f}: smoothed {smoothed(mu, m).mean():.6f} "
          f"ReLU {rl:.6f}{'  <= level' if rl <= level else ''}", flush=True)
    m *= 0.85
print(f"fast: PE-SVI-GN's continuation c={c} f={f}")
mu, lam = probe.mu0.copy(), np.full(n, 1e-3)
for t in range(probe.iters):
    m = c * f ** t
    iteration(mu, lam, m, hold=True)
    rl = P(mu)
    print(f"  iteration {t + 1} m={m:.4f}: smoothed {smoothed(mu, m).mean():.6f} (at the next temperature "
          f"{smoothed(mu, m * f).mean():.6f}) ReLU {rl.mean():.6f}{'  <= level' if rl.mean() <= level else ''}", flush=True)
