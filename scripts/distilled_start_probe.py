#!/usr/bin/env python3
"""Probe (NumPy): does a pseudo-encoder fitted to PE-SVI-GN's refined training posteriors (instead
of SVI's) give a start from which PE-SVI-GN reaches SVI's level in fewer iterations? Recorded in
docs/RESULTS.md ("Twenty-sixth session").

    python3 scripts/distilled_start_probe.py MODEL_DIR SVI_RECONSTRUCTION [--digits Data/digits.csv]
        [--refine 6] [--epochs 300] [--iters 6]

The model's training rows are recovered from the digits file with PESVI's split. Each is refined
from the model's own pseudo-encoder start by the probe's LM with the default continuation
(c = 0.4, f = 0.5, four smoothed iterations, then the ReLU decoder; exact solves) for --refine
iterations. An MLP with the pseudo-encoder's shape, started from its weights (the μ half of its
last layer), is then fitted by squared error to those refined μ (Adam 1e-3, batches of 64; a
tenth of the training rows held out to pick the epoch). On the test rows, prints the mean
reconstruction at the mean after each LM iteration from the model's start and from the fitted
encoder's, with the default continuation and with plain LM, and the first iteration within 1 %
of SVI. Not part of the package.
"""
import argparse, sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import load_model, mlp, split_rows, pre_activation_spreads, smoothed_jacobian

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("svi", type=float)
ap.add_argument("--digits", default="Data/digits.csv"); ap.add_argument("--refine", type=int, default=6)
ap.add_argument("--epochs", type=int, default=300); ap.add_argument("--iters", type=int, default=6)
a = ap.parse_args()
decoder, encoder, xte, config = load_model(a.model)
L = decoder[0][0].shape[0]
X = np.loadtxt(a.digits, delimiter=",", skiprows=1)
sp, st = config["split"], config["standardizer"]
train, _, _ = split_rows(len(X), sp["seed"], sp["validationFraction"], sp["testFraction"])
xtr = (X[train] - np.array(st["means"])) / np.array(st["stds"])


def P(z, x): return ((mlp(decoder, z) - x) ** 2).mean(1)


def lm(x, mu0, iters, c=0.4, f=0.5, K=4, lam0=1e-3):
    """PE-SVI-GN's LM with the continuation (as pesvi_numpy.Probe.lm, exact solves); returns
    (final mu, mean P on the ReLU decoder after each iteration)."""
    scales = pre_activation_spreads(decoder, mu0)
    mu, lam = mu0.copy(), np.full(len(mu0), lam0); done = np.zeros(len(mu0), bool); curve = []; d = x.shape[1]
    for t in range(iters):
        taus = [c * sc * f ** t for sc in scales] if (t < K and c > 0) else None
        sel = np.where(~done)[0]
        if len(sel):
            out, J = smoothed_jacobian(decoder, mu[sel], None if taus is None else [tt[sel] for tt in taus])
            r = x[sel] - out; p = (r ** 2).mean(1)
            for jj, i in enumerate(sel):
                g = J[jj].T @ r[jj]; H = J[jj].T @ J[jj]
                tj = None if taus is None else [tt[i:i + 1] for tt in taus]
                for _ in range(5):
                    if lam[i] > 1e12: done[i] = True; break
                    delta = np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                    predicted = (2 * delta @ g - delta @ H @ delta) / d
                    q = ((smoothed_jacobian(decoder, (mu[i] + delta)[None], tj)[0][0] - x[i]) ** 2).mean()
                    if np.isfinite(q) and q <= p[jj] and (predicted <= 1e-3 * p[jj] or p[jj] - q >= 0.1 * predicted):
                        mu[i] += delta
                        if taus is None:
                            lam[i] = max(lam[i] / 3, 1e-6)
                            if p[jj] - q < 1e-3 * p[jj]: done[i] = True
                        break
                    lam[i] *= 4
        curve.append(P(mu, x).mean())
    return mu, curve


mu0tr = mlp(encoder, xtr)[:, :L]
print(f"{a.model}: SVI {a.svi} level {1.01 * a.svi:.5f}; training rows {len(xtr)}: start {P(mu0tr, xtr).mean():.5f}", flush=True)
mutr, curve = lm(xtr, mu0tr, a.refine)
print("  training rows refined: " + " ".join(f"{v:.5f}" for v in curve), flush=True)

# The fitted encoder: the pseudo-encoder's shape, its weights as the start, μ half of the output.
rng = np.random.default_rng(0)
Ws = [W.copy() for W, _ in encoder]; bs = [b.copy() for _, b in encoder]
Ws[-1] = Ws[-1][:, :L].copy(); bs[-1] = bs[-1][:L].copy()
perm = rng.permutation(len(xtr)); hold = perm[: len(xtr) // 10]; fit = perm[len(xtr) // 10:]
params = Ws + bs; m1 = [np.zeros_like(p) for p in params]; m2 = [np.zeros_like(p) for p in params]


def forward(x):
    acts = [x]; v = x
    for i in range(len(Ws)):
        v = v @ Ws[i] + bs[i]
        if i < len(Ws) - 1: v = np.maximum(v, 0)
        acts.append(v)
    return acts


def loss(x, y): return ((forward(x)[-1] - y) ** 2).mean()


best, bestParams, step = loss(xtr[hold], mutr[hold]), [p.copy() for p in params], 0
print(f"  fitted encoder: held-out loss at its start {best:.5f} (the model's own encoder against the refined μ)", flush=True)
for epoch in range(a.epochs):
    order = rng.permutation(fit)
    for k in range(0, len(order), 64):
        idx = order[k:k + 64]; acts = forward(xtr[idx]); grad = 2 * (acts[-1] - mutr[idx]) / acts[-1].size
        gW, gb = [None] * len(Ws), [None] * len(Ws)
        for i in range(len(Ws) - 1, -1, -1):
            gW[i] = acts[i].T @ grad; gb[i] = grad.sum(0)
            if i > 0: grad = (grad @ Ws[i].T) * (acts[i] > 0)
        step += 1
        for j, g in enumerate(gW + gb):
            m1[j] = 0.9 * m1[j] + 0.1 * g; m2[j] = 0.999 * m2[j] + 0.001 * g * g
            params[j] -= 1e-3 * (m1[j] / (1 - 0.9 ** step)) / (np.sqrt(m2[j] / (1 - 0.999 ** step)) + 1e-8)
    h = loss(xtr[hold], mutr[hold])
    if h < best: best, bestParams = h, [p.copy() for p in params]
for j, p in enumerate(bestParams): params[j][...] = p
print(f"  fitted encoder: best held-out loss {best:.5f}", flush=True)

mu0te = mlp(encoder, xte)[:, :L]; mu1te = forward(xte)[-1]
for name, start in [("model's start", mu0te), ("fitted start", mu1te)]:
    for label, c in [("continuation", 0.4), ("plain LM", 0.0)]:
        _, curve = lm(xte, start, a.iters, c=c)
        first = next((t + 1 for t, v in enumerate(curve) if v <= 1.01 * a.svi), None)
        print(f"  test rows, {name} {P(start, xte).mean():.5f}, {label}: reaches at {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
