#!/usr/bin/env python3
"""Probe (NumPy, float64): Levenberg-Marquardt through smoothed ReLUs (a continuation) on a saved
model, from the pseudo-encoder's mean, on P(mu) = (1/d)||x - D(mu)||^2 (reconstruction at the
mean, standardized units). Recorded in docs/RESULTS.md ("Nineteenth session"); what it probed
became GaussNewtonSmoothing.

    python3 scripts/smoothing_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K[,lambda0[,hold]] [...]

For each schedule c,f,K: a point's iterations t < K run LM (as PE-SVI-GN: initial damping 1e-3
relative to diag H, x4 on a rejected trial, /3 on an accepted one except in the smoothed
iterations, up to 5 trials, gain ratio 0.1) on the decoder with every hidden ReLU replaced by
tau*log(1 + exp(a/tau)), tau = c * s_l * f^t, s_l the spread (standard deviation over the
layer's units) of the point's own pre-activations at its start; from t = K on plain LM on the
ReLU decoder, a point stopping when an accepted step gains less than 1e-3 relative. c = 0
(e.g. 0,1,0) is plain LM. Prints after every iteration the mean of P on the ReLU decoder, the
first iteration within 1 % of SVI's level with the mean steps per point there, and each
iteration's rejected trials per point. The optional fourth field is every point's initial
damping (default 1e-3, PE-SVI-GN's; probed in the twentieth session); the optional fifth, 1
(default) or 0, whether an accepted smoothed step holds the damping (PESVI's rule since the
twenty-first session) or divides it by 3 as before (outputs recorded before that session are
with 0). Not part of the package.
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver, schedule
probe = Probe(sys.argv)
model, svi, iters, configs = probe.model, probe.svi, probe.iters, probe.configs
x, L, d, mu0, scales, fwd, P = probe.x, probe.L, probe.d, probe.mu0, probe.scales, probe.fwd, probe.P
print(f"{model}: start {P(mu0).mean():.6f} SVI {svi} level {1.01*svi:.6f}")
for cfg in configs:
    c, f, k, lam0, hold = schedule(cfg)
    reached, at, curve, ms = probe.lm(c, f, k, lam0, exact_solver(L), hold=hold)
    first = None if reached is None else (reached, at)
    print(f"  c={c} f={f} relu@{k} lambda0={lam0:g} hold={int(hold)}: reaches (iter, mean steps) {first}; run steps {ms:.2f}: " + " ".join(f"{v:.5f}" for v in curve)
          + " | rejected trials per point: " + " ".join(f"{v:.2f}" for v in probe.rejected), flush=True)
