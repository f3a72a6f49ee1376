#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation (smoothed to the end, exact damped solves)
with the full Hessian of the smoothed objective in place of the Gauss-Newton matrix in the first
N iterations: H = J^T J - sum_k r_k Hess(D_k), the second term by central differences of the
gradient J^T r (step 1e-5), damped as LM damps (lam * diag(J^T J)); a trial whose model predicts
no decrease is rejected like a rising one. The residual term is what Gauss-Newton leaves out, and
it is largest in the first iterations, where the residuals are. Prints the mean reconstruction on
the ReLU decoder after each iteration and the first within 1 % of SVI's level. Recorded in
docs/RESULTS.md ("Thirtieth session"). Not part of the package.

    python3 scripts/newton_continuation_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K,N[,lambda0] [...]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe
probe = Probe(sys.argv)
mu0, x, L, d, fwd = probe.mu0, probe.x, probe.L, probe.d, probe.fwd


def grads(z, xs, taus):
    out, J = fwd(z, taus)
    return np.einsum('nij,ni->nj', J, xs - out)   # J^T r (n x L)


def run(c, f, K, N, lam0):
    def linearize(t, taus, mu):
        out, J = fwd(mu, taus); r = x - out
        G = np.einsum('nij,ni->nj', J, r); Hgn = np.einsum('nij,nik->njk', J, J)
        if t < N:
            h = 1e-5; Hres = np.zeros_like(Hgn)
            for j in range(L):
                e = np.zeros(L); e[j] = h
                Hres[:, :, j] = -(grads(mu + e, x, taus) - grads(mu - e, x, taus)) / (2 * h)  # Hessian of (1/2)||r||^2
            Hfull = 0.5 * (Hres + np.transpose(Hres, (0, 2, 1)))
        return (r ** 2).mean(1), lambda i: (G[i], Hfull[i] if t < N else Hgn[i], np.diag(np.diag(Hgn[i])),
                                            None if taus is None else [tt[i:i + 1] for tt in taus])
    return probe.continuation(c, f, K, lam0, linearize, positive_model=True)


print(f"{probe.model}: start {probe.P(mu0).mean():.6f} level {1.01 * probe.svi:.6f}")
for cfg in probe.configs:
    v = cfg.split(',')
    c, f, K, N = float(v[0]), float(v[1]), int(v[2]), int(v[3]); lam0 = float(v[4]) if len(v) > 4 else 1e-3
    first, curve = run(c, f, K, N, lam0)
    print(f"  c={c} f={f} K={K} Newton in the first {N} (lambda0 {lam0:g}): reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
