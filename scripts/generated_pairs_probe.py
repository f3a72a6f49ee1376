#!/usr/bin/env python3
"""Probe (NumPy): can a pseudo-encoder trained on pairs the decoder generates give a start close
enough to SVI's fit on digits |z| >= 32? Recorded in docs/RESULTS.md ("Sixteenth session").

    pesvi train --data digits --z 64 --arch 2 --keep-posteriors --encoder-epochs 400 --threads 1 --out MODEL
    python3 scripts/generated_pairs_probe.py MODEL MODE [--noise S] [--steps N] [--width W] [--digits Data/digits.csv]

The model must keep its training posteriors (`--keep-posteriors`); its training rows are
recovered from the digits file with PESVI's split (seed and fractions from config.json). An MLP
x -> mu (ReLU, two hidden layers of W units, Adam at 1e-3, a tenth of it for the last fifth,
batches of 256) is fitted by squared error on mu, with MODE
  - real: the training rows and their posterior means mu* (the pseudo-encoder's regression, wider);
  - noise: decoded pairs (D(z), z), z = mu*_i + S e, a quarter of each batch real rows;
  - mix: decoded pairs with z = mu*_i + a (mu*_j - mu*_i) + S e, a ~ U(0, 1), a quarter real.
Prints the model's own pseudo-encoder start on the test rows, then the fitted encoder's start
(mean of (1/d)||x - D(E(x))||^2) on the training and the test rows. Not part of the package.
"""
import argparse, time
import numpy as np
from pesvi_numpy import load_model, mlp, split_rows, tensor

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("mode", choices=["real", "noise", "mix"])
ap.add_argument("--noise", type=float, default=0.1); ap.add_argument("--steps", type=int, default=3000)
ap.add_argument("--width", type=int, default=256); ap.add_argument("--digits", default="Data/digits.csv")
a = ap.parse_args()
decoder, encoder, xte, config = load_model(a.model)
mustar = tensor(a.model, "posterior.mu")
X = np.loadtxt(a.digits, delimiter=",", skiprows=1)
sp = config["split"]
train, _, _ = split_rows(len(X), sp["seed"], sp["validationFraction"], sp["testFraction"])
st = config["standardizer"]
xtr = (X[train] - np.array(st["means"])) / np.array(st["stds"])
L, d = mustar.shape[1], xtr.shape[1]


def P(z, x): return ((mlp(decoder, z) - x) ** 2).mean(1)


print(f"{a.model}: training fit P(mu*) {P(mustar, xtr).mean():.5f}; test start of its pseudo-encoder "
      f"{P(mlp(encoder, xte)[:, :L], xte).mean():.5f}")
rng, f32 = np.random.default_rng(0), np.float32
sizes = [d, a.width, a.width, L]
Ws = [(rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(f32) for i, o in zip(sizes[:-1], sizes[1:])]
bs = [np.zeros(o, f32) for o in sizes[1:]]
params = Ws + bs
m1, m2 = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
dec32 = [(W.astype(f32), b.astype(f32)) for W, b in decoder]
mu32, xtr32 = mustar.astype(f32), xtr.astype(f32)
t0 = time.time()
for t in range(1, a.steps + 1):
    B = 256
    i = rng.integers(0, len(mu32), B)
    if a.mode == "real":
        xb, zb = xtr32[i], mu32[i]
    else:
        j = rng.integers(0, len(mu32), B)
        mix = rng.random((B, 1)).astype(f32) if a.mode == "mix" else 0
        zb = mu32[i] + mix * (mu32[j] - mu32[i]) + a.noise * rng.standard_normal((B, L)).astype(f32)
        xb = mlp(dec32, zb)
        xb[:B // 4], zb[:B // 4] = xtr32[i[:B // 4]], mu32[i[:B // 4]]
    acts, h = [xb], xb
    for k in range(3):
        h = h @ Ws[k] + bs[k]
        if k < 2: h = np.maximum(h, 0)
        acts.append(h)
    g = 2 * (h - zb) / B
    gW, gb = [None] * 3, [None] * 3
    for k in (2, 1, 0):
        gW[k], gb[k] = acts[k].T @ g, g.sum(0)
        if k > 0: g = (g @ Ws[k].T) * (acts[k] > 0)
    rate = 1e-3 * (0.1 if t > 0.8 * a.steps else 1)
    for p, gg, u, v in zip(params, gW + gb, m1, m2):
        u *= 0.9; u += 0.1 * gg; v *= 0.999; v += 0.001 * gg * gg
        p -= rate * (u / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
E = list(zip(Ws, bs))
print(f"mode {a.mode}, noise {a.noise}, width {a.width}, {a.steps} steps ({time.time() - t0:.0f} s): "
      f"start {P(mlp(E, xtr32).astype(np.float64), xtr).mean():.5f} on the training rows, "
      f"{P(mlp(E, xte.astype(f32)).astype(np.float64), xte).mean():.5f} on the test rows")
