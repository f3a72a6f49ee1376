#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation with another smoothing of the hidden ReLUs
than the softplus tau*log(1 + exp(a/tau)). KERNEL=gauss: the ReLU's mean under Gaussian noise,
E[max(a + tau*e, 0)] = a*Phi(a/tau) + tau*phi(a/tau) (slope Phi(a/tau)), whose bias away from the
kink falls like exp(-a^2/2tau^2) instead of exp(-a/tau); KERNEL=softplus: PESVI's own. Same LM,
damping and schedules as smoothing_probe.py (c,f,K[,lambda0[,hold]]), exact damped solves.
Prints the mean reconstruction on the ReLU decoder after every iteration and the first within
1 % of SVI's level. Recorded in docs/RESULTS.md ("Thirtieth session"). Not part of the package.

    KERNEL=gauss python3 scripts/smoothing_kernel_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K[,lambda0[,hold]] [...]
"""
import os, sys, numpy as np
from scipy.special import ndtr
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver, schedule, smoothed_jacobian
probe = Probe(sys.argv)
L, kernel = probe.L, os.environ.get("KERNEL", "gauss")


def gauss_fwd(z, taus):
    """D(z) and J (n x d x |z|) with the Gaussian-smoothed ReLU at taus (None: ReLU)."""
    if taus is None: return smoothed_jacobian(probe.decoder, z, None)
    v, A = z, np.broadcast_to(np.eye(L), (len(z), L, L))
    for i, (W, b) in enumerate(probe.decoder):
        a = v @ W + b; A = A @ W
        if i < len(probe.decoder) - 1:
            u = a / taus[i]; m = ndtr(u)
            v = a * m + taus[i] * np.exp(-0.5 * u * u) / np.sqrt(2 * np.pi)
            A = A * m[:, None, :]
        else: v = a
    return v, np.transpose(A, (0, 2, 1))


if kernel == "gauss": probe.fwd = gauss_fwd
print(f"{probe.model} [{kernel}]: start {probe.P(probe.mu0).mean():.6f} SVI {probe.svi} level {1.01 * probe.svi:.6f}")
for cfg in probe.configs:
    c, f, k, lam0, hold = schedule(cfg)
    first, at, curve, ms = probe.lm(c, f, k, lam0, exact_solver(L), hold=hold)
    rej = " ".join(f"{r:.2f}" for r in probe.rejected[:6])
    print(f"  c={c} f={f} K={k} lambda0={lam0:g}: reaches {first} ({at}); run steps {ms:.2f}: "
          + " ".join(f"{v:.5f}" for v in curve) + f" | rejected/pt {rej}", flush=True)
