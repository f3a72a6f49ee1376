#!/usr/bin/env python3
"""Independent check (NumPy, float64): the mean per-point negative ELBO of posteriors written by
`pesvi infer` for a saved ELBO model with a fixed likelihood sigma, Monte Carlo with 256 samples
per point. Recorded in docs/RESULTS.md ("Twentieth session") beside `pesvi evaluate`'s
negativeELBO, which it checks. Not part of the package.

    python3 scripts/negative_elbo.py MODEL_DIR POSTERIORS.npy [POSTERIORS.npy ...]

-ELBO(x) = E_q[ ||x - D(z)||^2 / (2 sigma^2) ] + (d/2) log(2 pi sigma^2) + beta KL(q || N(0, I)),
x the model's test rows standardized with its training statistics, q = N(mu, diag exp(log sigma^2)).
"""
import sys, numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from pesvi_numpy import load_model, mlp
model, files = sys.argv[1], sys.argv[2:]
dec, enc, x, cfg = load_model(model)
obj = cfg['objective']; beta = obj['kind']['elbo']['beta']; sigma = obj['likelihood']['fixedVariance']['sigma']
n, d = x.shape
rng = np.random.default_rng(0)
for f in files:
    p = np.load(f).astype(np.float64); L = p.shape[1] // 2
    mu, lv = p[:, :L], p[:, L:]
    S = 256; tot = np.zeros(n)
    for s in range(S):
        z = mu + np.exp(0.5 * lv) * rng.standard_normal(mu.shape)
        r = x - mlp(dec, z); tot += (r ** 2).sum(1) / (2 * sigma ** 2)
    data = tot / S + 0.5 * d * np.log(2 * np.pi * sigma ** 2)
    kl = 0.5 * (np.exp(lv) + mu ** 2 - 1 - lv).sum(1)
    ne = data + beta * kl
    print(f"{f.split('/')[-1]:28s} -ELBO/point mean {ne.mean():9.4f}  median {np.median(ne):9.4f}  (data {data.mean():.4f}, KL {kl.mean():.4f})")
