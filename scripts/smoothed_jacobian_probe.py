#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation where, from smoothed iteration H on, the
smoothing is kept in the Jacobian only: the step solves the damped Gauss-Newton system of the
smoothed decoder's Jacobian J_tau against the ReLU decoder's own residual x - D(mu), and a trial
is accepted on the ReLU decoder's objective (iterations before H: PESVI's smoothing, objective
and all). The smoothed objective's minimizer is biased by the smoothing; this one's fixed
points are the ReLU objective's. Exact damped solves, LM as in pesvi_numpy.Probe.lm.
Recorded in docs/RESULTS.md ("Thirtieth session"). Not part of the package.

    python3 scripts/smoothed_jacobian_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K,H[,H0] [...]

H0: iterations before H0 also take the ReLU residual (the first H0 iterations and those from H on).
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, mlp
probe = Probe(sys.argv)
mu0, x, L, d, fwd = probe.mu0, probe.x, probe.L, probe.d, probe.fwd


def run(c, f, K, H, H0=0, lam0=1e-3):
    def linearize(t, taus, mu):
        hybrid = taus is not None and (t >= H or t < H0)
        out, J = fwd(mu, taus)
        r = x - (mlp(probe.decoder, mu) if hybrid else out)
        def point(i):
            Hm = J[i].T @ J[i]
            return J[i].T @ r[i], Hm, np.diag(np.diag(Hm)), None if (taus is None or hybrid) else [tt[i:i + 1] for tt in taus]
        return (r ** 2).mean(1), point
    return probe.continuation(c, f, K, lam0, linearize)


print(f"{probe.model}: start {probe.P(mu0).mean():.6f} level {1.01 * probe.svi:.6f}")
for cfg in probe.configs:
    c, f, K, H, *H0 = (float(v) if i < 2 else int(v) for i, v in enumerate(cfg.split(',')))
    first, curve = run(c, f, K, H, *H0)
    print(f"  c={c} f={f} K={K} H={H} H0={H0[0] if H0 else 0}: reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
