#!/usr/bin/env python3
"""Probe (NumPy, float64): is a saved model's gap to SVI slow convergence or poor basins?
Recorded in docs/RESULTS.md ("Seventeenth session"). From the pseudo-encoder's mean, on
P(mu) = (1/d)||x - D(mu)||^2 (reconstruction objective at the mean, standardized units):

    python3 scripts/basin_tail_probe.py MODEL_DIR SVI_RECONSTRUCTION [--iterations N]

Prints, after selected iterations of
  - LM as PE-SVI-GN runs it (see refinement_probe.py), with initial damping 1e-3 and also
    1 and 10 (more gradient-like early steps), each /3 on an accepted step:
    the mean of P, its quantiles (50, 90, 99, 100 %), the share of the error held by the worst
    5 % of points and the mean over the other 95 %;
  - Gauss-Newton directions (damping 1e-6 x diag H) with the best step length on a grid of
    300 lengths in (0, 3] per point (a near-exact line search along the full step).
Not part of the package.
"""
import sys
import numpy as np
from pesvi_numpy import load_model, mlp, jacobian

model, svi = sys.argv[1], float(sys.argv[2])
iterations = int(sys.argv[sys.argv.index("--iterations") + 1]) if "--iterations" in sys.argv else 50
decoder, encoder, x, config = load_model(model)
L, d = decoder[0][0].shape[0], x.shape[1]
report = {1, 2, 3, 4, 5, 8, 10, 20, 50, 100, 200}


def P(z): return ((mlp(decoder, z) - x) ** 2).mean(1)


def P1(z, i): return ((mlp(decoder, z[None])[0] - x[i]) ** 2).mean()


mu0 = mlp(encoder, x)[:, :L]
print(f"{model}: start {P(mu0).mean():.6f}, SVI {svi:.6f} (level {1.01 * svi:.6f}), {len(x)} points, |z| = {L}, d = {d}")


def summary(t, p):
    s = np.sort(p)[::-1]; top = len(s) // 20
    q = " ".join(f"{v:.6f}" for v in np.quantile(p, [.5, .9, .99, 1.0]))
    print(f"  {t:4d}: mean {p.mean():.6f}  quantiles {q}  worst 5 % hold {s[:top].sum() / s.sum():.2f}, "
          f"the rest average {s[top:].sum() / len(s):.6f}")


for lam0 in (1e-3, 1.0, 10.0):
    print(f"LM, initial damping {lam0:g}")
    mu, lam, p = mu0.copy(), np.full(len(mu0), lam0), P(mu0)
    for t in range(1, iterations + 1):
        out, J = jacobian(decoder, mu); r = x - out
        for i in range(len(mu)):
            g = J[i].T @ r[i]; H = J[i].T @ J[i]
            for _ in range(5):
                if not np.isfinite(lam[i]) or lam[i] > 1e12: break
                delta = np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                predicted = (2 * delta @ g - delta @ H @ delta) / d
                q = P1(mu[i] + delta, i)
                if np.isfinite(q) and q <= p[i] and p[i] - q >= 0.1 * predicted:
                    mu[i] += delta; p[i] = q; lam[i] = max(lam[i] / 3, 1e-6); break
                lam[i] *= 4
        if t in report: summary(t, p)

print("Gauss-Newton direction, best length of 300 in (0, 3]")
lengths = np.concatenate([np.linspace(0.005, 1, 200), np.linspace(1.02, 3, 100)])
mu, p = mu0.copy(), P(mu0)
for t in range(1, min(iterations, 10) + 1):
    out, J = jacobian(decoder, mu); r = x - out
    D = np.stack([np.linalg.lstsq(J[i].T @ J[i] + 1e-6 * np.diag(np.diag(J[i].T @ J[i])), J[i].T @ r[i], rcond=None)[0]
                  for i in range(len(mu))])
    best, chosen = p.copy(), np.zeros(len(mu))
    for a in lengths:
        q = P(mu + a * D); better = q < best; best[better] = q[better]; chosen[better] = a
    mu += chosen[:, None] * D; p = best
    if t in report: summary(t, p); print(f"        median length {np.median(chosen):.3f}")
