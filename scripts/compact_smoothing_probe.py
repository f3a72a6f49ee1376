#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation with a smoothing of compact support instead
of the softplus: each hidden ReLU replaced by 0 for a <= -tau, (a + tau)^2 / (4 tau) for
|a| < tau, a for a >= tau (slope clip((a + tau) / (2 tau), 0, 1)), so a unit below -tau passes
nothing and the Jacobian products could skip it as the ReLU iterations skip inactive units.
Same LM and schedules as smoothing_probe.py (c,f,K[,lambda0[,hold]]); also prints, for each
iteration's batched forward pass, the share of units with a non-zero slope per hidden layer
(S: smoothed, R: ReLU). Recorded in docs/RESULTS.md ("Twenty-first session"). Not part of the
package.

    python3 scripts/compact_smoothing_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K[,lambda0[,hold]] [...]
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver, schedule
probe = Probe(sys.argv)
L, shares = probe.L, []


def compact_fwd(z, taus):
    """D(z) and J (n x d x |z|) with the compact-support smoothing at taus (None: ReLU)."""
    v, A, rec = z, np.broadcast_to(np.eye(L), (len(z), L, L)), []
    for i, (W, b) in enumerate(probe.decoder):
        a = v @ W + b; A = A @ W
        if i < len(probe.decoder) - 1:
            if taus is None: m = (a > 0).astype(float); v = np.maximum(a, 0)
            else:
                tau = taus[i]; m = np.clip((a + tau) / (2 * tau), 0, 1)
                v = np.where(a >= tau, a, np.where(a <= -tau, 0.0, (a + tau) ** 2 / (4 * tau)))
            rec.append(float((m > 0).mean())); A = A * m[:, None, :]
        else: v = a
    if len(z) > 1: shares.append((taus is not None, rec))
    return v, np.transpose(A, (0, 2, 1))


probe.fwd = compact_fwd
print(f"{probe.model} [compact smoothing]: start {probe.P(probe.mu0).mean():.6f} SVI {probe.svi} level {1.01 * probe.svi:.6f}")
for cfg in probe.configs:
    c, f, k, lam0, hold = schedule(cfg)
    shares.clear()
    first, at, curve, ms = probe.lm(c, f, k, lam0, exact_solver(L), hold=hold)
    active = " ".join(("S" if s else "R") + "/".join(f"{v:.2f}" for v in r) for s, r in shares)
    print(f"  c={c} f={f} K={k} lambda0={lam0:g} hold={int(hold)}: reaches {first}; run steps {ms:.2f}: "
          + " ".join(f"{v:.5f}" for v in curve) + " | units passing: " + active, flush=True)
