#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's Levenberg-Marquardt through smoothed ReLUs (as
krylov_lm_probe.py) with each point's Krylov subspace grown one vector at a time and stopped
when the damped step has settled: span{g, Hg, ..., H^(a-1) g, p} (p the last accepted step)
for the least a in [kmin, kmax] at which the model's predicted decrease grew by less than eta
(relative) from a - 1 vectors. Reports the curve (mean reconstruction on the ReLU decoder after
each iteration) and the mean vectors a per point per iteration. Not part of the package.

    python3 scripts/adaptive_krylov_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f,K,kmin,kmax,eta [...]

eta = 0 is the fixed subspace of kmax vectors (krylov_lm_probe.py's).
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import Probe
probe = Probe(sys.argv)
used = []


def adaptive(kmin, kmax, eta):
    def solver(g, H, last):
        V = [g]
        for _ in range(kmax - 1): V.append(H @ V[-1])
        cache = {}

        def basis(a):
            if a not in cache:
                cols = V[:a] + ([last] if np.any(last) else [])
                Q, R = np.linalg.qr(np.array(cols).T)
                keep = np.abs(np.diag(R)) > 1e-6 * np.abs(R[0, 0])
                Q = Q[:, keep]
                cache[a] = (Q, Q.T @ H @ Q, Q.T @ g)
            return cache[a]

        def step(a, lam):
            Q, Hs, gs = basis(a)
            c = np.linalg.solve(Hs + lam * np.diag(np.diag(Hs)) + 1e-9 * np.eye(len(gs)), gs)
            return Q @ c, c @ gs + c @ (lam * np.diag(np.diag(Hs))) @ c

        def solve(lam):
            prev = None
            for a in range(kmin, kmax + 1):
                delta, pred = step(a, lam)
                if eta > 0 and prev is not None and pred - prev <= eta * abs(pred):
                    used.append(a); return delta
                prev = pred
            used.append(kmax); return delta
        return solve
    return solver


print(f"{probe.model}: start {probe.P(probe.mu0).mean():.6f} SVI {probe.svi} level {1.01 * probe.svi:.6f}, |z| {probe.L}")
for cfg in probe.configs:
    c, f, K, kmin, kmax, eta = cfg.split(',')
    used.clear()
    first, at, curve, _ = probe.lm(float(c), float(f), int(K), 1e-3, adaptive(int(kmin), int(kmax), float(eta)))
    print(f"  c={c} f={f} K={K} kmin={kmin} kmax={kmax} eta={eta}: reaches {first} "
          f"(mean vectors per trial {np.mean(used):.2f}): " + " ".join(f"{v:.5f}" for v in curve), flush=True)
