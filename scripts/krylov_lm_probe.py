#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's Levenberg-Marquardt with each step solved in a Krylov
subspace span{g, Hg, ..., H^(k-1) g, p} (p the last accepted step; QR basis, Marquardt damping
on the projected diagonal), through smoothed ReLUs as smoothing_probe.py, on a saved model from
the pseudo-encoder's mean. Recorded in docs/RESULTS.md ("Nineteenth session"); what it probed
became GaussNewtonRefinement's krylovDimension (--gn-krylov).

    python3 scripts/krylov_lm_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K,k [c,f,K,k ...]

Prints the mean reconstruction on the ReLU decoder after every iteration and the first
iteration within 1 % of SVI's level (with the mean steps per point there). Not part of the package.
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import Probe
probe = Probe(sys.argv)
model, svi, iters, configs = probe.model, probe.svi, probe.iters, probe.configs
x, L, d, mu0, scales, fwd, P = probe.x, probe.L, probe.d, probe.mu0, probe.scales, probe.fwd, probe.P
def krylov(k):
    """The damped system solved in span{g, Hg, ..., H^(k-1) g, last} (QR basis, Marquardt
    damping on the projected diagonal)."""
    def solver(g, H, last):
        V = [g]
        for _ in range(k - 1): V.append(H @ V[-1])
        if np.any(last): V.append(last)
        Q, R = np.linalg.qr(np.array(V).T)
        keep = np.abs(np.diag(R)) > 1e-6 * np.abs(R[0, 0])
        Q = Q[:, keep]
        Hs = Q.T @ H @ Q; gs = Q.T @ g; Ds = np.diag(np.diag(Hs))
        return lambda lam: Q @ np.linalg.solve(Hs + lam * Ds + 1e-9 * np.eye(len(gs)), gs)
    return solver
def run(c, f, K, k, iters, lam0=1e-3):
    first, at, curve, _ = probe.lm(c, f, K, lam0, krylov(k))
    return (None if first is None else (first, round(at, 2))), curve
print(f"{model}: start {P(mu0).mean():.6f} SVI {svi} level {1.01*svi:.6f}, |z| {L}")
for cfg in configs:
    c, f, K, k = cfg.split(','); c, f, K, k = float(c), float(f), int(K), int(k)
    first, curve = run(c, f, K, k, iters)
    print(f"  c={c} f={f} K={K} krylov={k}: reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
