#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-auto's guarded Adam against a guarded steepest-descent step
with the Gauss-Newton step length (the Cauchy step of the GN model), both from the
pseudo-encoder's mean, on a saved PESVI model's test rows, at the mean (reconstruction
objective P(mu) = (1/d)||x - D(mu)||^2 in standardized units).

    python3 scripts/cauchy_step_probe.py MODEL_DIR SVI_RECONSTRUCTION

Prints the mean objective after iterations 1..5 of each and SVI's level (1.01 x the given SVI
reconstruction). Per point, the Cauchy step is mu <- mu - alpha g with g = grad P and
alpha = |g|^2 / ((2/d) |J g|^2), the minimizer of the GN model along -g (one extra
Jacobian-vector product per iteration); a step that raises P is not taken. The Adam run mimics
PE-SVI-auto (bias-corrected Adam at the model's stored pace, a rising step undone; no backoff
or early exit), which reproduces its recorded curves to 4 digits on the models tried.
Not part of the package: a numeric experiment recorded in docs/RESULTS.md ("Thirteenth session").
"""
import sys
import numpy as np
from pesvi_numpy import load_model, mlp

model, svi = sys.argv[1], float(sys.argv[2])
decoder, encoder, x, config = load_model(model)
L, d = decoder[0][0].shape[0], x.shape[1]


def forward(z):
    pre, v = [], z
    for i, (W, b) in enumerate(decoder):
        a = v @ W + b
        if i < len(decoder) - 1: pre.append(a); v = np.maximum(a, 0)
        else: v = a
    r = v - x
    return (r ** 2).mean(1), pre

def gradient(z):
    P, pre = forward(z)
    g = (2 / d) * (mlp_out(z, pre) - x)
    for i in range(len(decoder) - 1, -1, -1):
        g = g @ decoder[i][0].T
        if i > 0: g = g * (pre[i - 1] > 0)
    return P, g, pre

def mlp_out(z, pre):
    v = np.maximum(pre[-1], 0) if pre else z
    W, b = decoder[-1]
    return v @ W + b

def jvp(pre, u):
    v = u
    for i, (W, _) in enumerate(decoder):
        v = v @ W
        if i < len(decoder) - 1: v = v * (pre[i] > 0)
    return v

mu0 = mlp(encoder, x)[:, :L]
print(f"{model}: start {forward(mu0)[0].mean():.4f}, SVI's level {1.01 * svi:.4f}")

pace = float(config["autoPace"])
z, m, s, out = mu0.copy(), np.zeros_like(mu0), np.zeros_like(mu0), []
for t in range(1, 6):
    P, g, _ = gradient(z)
    m = 0.9 * m + 0.1 * g; s = 0.999 * s + 0.001 * g * g
    trial = z - pace * (m / (1 - 0.9 ** t)) / (np.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
    Pt = forward(trial)[0]
    z = np.where((Pt <= P)[:, None], trial, z); out.append(np.minimum(Pt, P).mean())
print(f"  Adam at pace {pace:.3f}:", " ".join(f"{o:.4f}" for o in out))

z, out = mu0.copy(), []
for t in range(1, 6):
    P, g, pre = gradient(z)
    Jg = jvp(pre, g)
    alpha = (g * g).sum(1) / ((2 / d) * (Jg * Jg).sum(1) + 1e-300)
    trial = z - alpha[:, None] * g
    Pt = forward(trial)[0]
    z = np.where((Pt <= P)[:, None], trial, z); out.append(np.minimum(Pt, P).mean())
print("  Cauchy step:       ", " ".join(f"{o:.4f}" for o in out))
