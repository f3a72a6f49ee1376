#!/usr/bin/env python3
"""Probe (NumPy, float64): can restarts rescue the tail of points LM leaves in poorer basins?
Recorded in docs/RESULTS.md ("Eighteenth session"). On a saved model's test rows, with the
reconstruction objective at the mean, P(mu) = (1/d)||x - D(mu)||^2:

    python3 scripts/tail_restart_probe.py MODEL_DIR [SVI_STEPS]

Prints
  - SVI from a random start (mu ~ N(0, I), log var 0; Adam at 0.1 on one reparameterized sample
    per step, SVI_STEPS steps, default 3000), its P at the mean and quantiles;
  - LM from the pseudo-encoder's mean (30 iterations, as basin_tail_probe.py), its quantiles;
  - for LM's worst 5 % of points: their P after LM, after SVI, after LM from SVI's end, after
    LM from each of five random starts N(0, I), and the mean P over all points if the tail
    took the best of its restarts.
Not part of the package.
"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import load_model, mlp, jacobian
model = sys.argv[1]
dec, enc, x, cfg = load_model(model)
L, d = dec[0][0].shape[0], x.shape[1]
n = len(x)
def P(z, xx=None): xx = x if xx is None else xx; return ((mlp(dec, z) - xx) ** 2).mean(1)

def grad_recon(mu, xx):
    # gradient of (1/d)||x - D(mu)||^2 via jacobian
    out, J = jacobian(dec, mu); r = out - xx
    return np.einsum('nd,ndl->nl', r, J) * 2 / d

def svi(steps, seed, xx, lr=0.1):
    """Adam on (mu, log var) of E||x - D(mu + sigma eps)||^2 / d, one sample per step."""
    rng = np.random.default_rng(seed)
    m = len(xx)
    mu = rng.standard_normal((m, L)); lv = np.zeros((m, L))
    par = [mu, lv]; M = [np.zeros_like(mu), np.zeros_like(lv)]; V = [np.zeros_like(mu), np.zeros_like(lv)]
    for t in range(1, steps + 1):
        eps = rng.standard_normal((m, L)); s = np.exp(0.5 * lv)
        z = mu + s * eps
        g = grad_recon(z, xx)
        gs = [g, g * eps * s * 0.5]
        for k in range(2):
            M[k] = 0.9 * M[k] + 0.1 * gs[k]; V[k] = 0.999 * V[k] + 0.001 * gs[k] ** 2
            par[k] -= lr * (M[k] / (1 - 0.9 ** t)) / (np.sqrt(V[k] / (1 - 0.999 ** t)) + 1e-8)
        mu, lv = par
    return mu, lv

def lm(mu0, xx, iters, lam0=1e-3):
    """LM on P as PE-SVI-GN runs it (5 damping trials, gain ratio 0.1): (mu, P per point)."""
    mu, p = mu0.copy(), P(mu0, xx); lam = np.full(len(mu), lam0)
    for t in range(iters):
        out, J = jacobian(dec, mu); r = xx - out
        for i in range(len(mu)):
            g = J[i].T @ r[i]; H = J[i].T @ J[i]
            for _ in range(5):
                if lam[i] > 1e12: break
                delta = np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                pred = (2 * delta @ g - delta @ H @ delta) / d
                q = ((mlp(dec, (mu[i] + delta)[None])[0] - xx[i]) ** 2).mean()
                if np.isfinite(q) and q <= p[i] and p[i] - q >= 0.1 * pred:
                    mu[i] += delta; p[i] = q; lam[i] = max(lam[i] / 3, 1e-6); break
                lam[i] *= 4
    return mu, p

mu0 = mlp(enc, x)[:, :L]
import time
t0 = time.time()
smu, slv = svi(int(sys.argv[2]) if len(sys.argv) > 2 else 3000, 0, x)
ps = P(smu)
print(f"SVI numpy at mean: {ps.mean():.6f} ({time.time()-t0:.0f}s)")
mlm, pl = lm(mu0, x, 30)
print(f"LM from PE, 30 it: {pl.mean():.6f}")
tail = np.argsort(pl)[::-1][:max(1, n // 20)]
print("tail LM :", " ".join(f"{v:.4f}" for v in pl[tail]))
print("tail SVI:", " ".join(f"{v:.4f}" for v in ps[tail]))
print(f"SVI quantiles {np.quantile(ps,[.5,.9,.99,1])}, LM quantiles {np.quantile(pl,[.5,.9,.99,1])}")
# LM from SVI's final mu (sanity), random restarts for tail points
_, pls = lm(smu[tail], x[tail], 30)
print("LM from SVI mu, tail:", " ".join(f"{v:.4f}" for v in pls))
rng = np.random.default_rng(5)
best = pl[tail].copy()
for r in range(5):
    _, pr = lm(rng.standard_normal((len(tail), L)), x[tail], 30)
    print(f"LM from random start {r}:", " ".join(f"{v:.4f}" for v in pr))
    best = np.minimum(best, pr)
print("best over restarts:", " ".join(f"{v:.4f}" for v in best))
print(f"overall mean if tail replaced by best: {(pl.sum() - pl[tail].sum() + best.sum())/n:.6f}")
