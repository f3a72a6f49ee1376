#!/usr/bin/env python3
"""Probe (NumPy, float64) of why a saved model's test rows resist a few refinement steps:
Levenberg-Marquardt as PE-SVI-GN runs it, and the variants recorded in docs/RESULTS.md
("Fourteenth session"), all from the pseudo-encoder's mean, on P(mu) = (1/d)||x - D(mu)||^2
(reconstruction objective, standardized units).

    python3 scripts/refinement_probe.py MODEL_DIR SVI_RECONSTRUCTION [--adam-steps N]

Prints the mean objective after each iteration of
  - LM: (H + lam diag H + 1e-9 I) delta = J^T r, lam from 1e-3 (x4 on a rejected trial, /3 on an
    accepted one, floor 1e-6), up to 5 trials an iteration, a trial accepted when it achieves
    0.1 of its model's predicted decrease; also with 1000x less damping, and without the gain test;
  - undamped Gauss-Newton (least squares, every step taken; the best so far is printed) and with
    backtracking;
  - LM reusing the first iteration's Gauss-Newton matrix in the second (a chord step);
  - the Gauss-Newton model minimized over span{g} (the Cauchy step), over span{g, last step} (the
    subspace step) and over span{g, Hg, last step} (the Krylov step, H the Gauss-Newton matrix);
then the ten worst points after 12 LM iterations, their share of the error, and, with
--adam-steps N, what N Adam steps at rate 0.1 reach from the same start (SVI's optimizer).
SVI's level is 1.01 x the given SVI reconstruction. Not part of the package.
"""
import sys
import numpy as np
from pesvi_numpy import load_model, mlp, jacobian as decoder_jacobian, show as show_curve

model, svi = sys.argv[1], float(sys.argv[2])
adam_steps = int(sys.argv[sys.argv.index("--adam-steps") + 1]) if "--adam-steps" in sys.argv else 0
decoder, encoder, x, config = load_model(model)
L, d = decoder[0][0].shape[0], x.shape[1]
level = 1.01 * svi


def P(z, rows=slice(None)): return ((mlp(decoder, z) - x[rows]) ** 2).mean(1)

def jacobian(z): return decoder_jacobian(decoder, z)


def show(label, curve): show_curve(label, curve, level, width=28)


mu0 = mlp(encoder, x)[:, :L]
print(f"{model}: start {P(mu0).mean():.5f}, SVI's level {level:.5f}, {len(x)} points, |z| = {L}, d = {d}")

def lm(iters=12, lam0=1e-3, lam_min=1e-6, eta=0.1, chord=False):
    mu, lam, p = mu0.copy(), np.full(len(mu0), lam0), P(mu0); curve, Hs = [], [None] * len(mu0)
    for it in range(iters):
        out, J = jacobian(mu); r = x - out
        for i in range(len(mu)):
            g = J[i].T @ r[i]
            H = Hs[i] if (chord and it == 1) else J[i].T @ J[i]
            Hs[i] = H
            for _ in range(5):
                delta = np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                predicted = (2 * delta @ g - delta @ H @ delta) / d
                q = P((mu[i] + delta)[None], slice(i, i + 1))[0]
                if np.isfinite(q) and q <= p[i] and p[i] - q >= eta * predicted:
                    mu[i] += delta; p[i] = q; lam[i] = max(lam[i] / 3, lam_min); break
                lam[i] *= 4
        curve.append(p.mean())
    return curve, p

curve, p_lm = lm(); show("LM (PE-SVI-GN's)", curve)
show("LM, damping / 1000", lm(lam0=1e-6, lam_min=1e-9)[0])
show("LM, no gain-ratio test", lm(lam0=1e-6, lam_min=1e-9, eta=0)[0])
show("LM, chord second iteration", lm(iters=4, chord=True)[0])

def undamped(iters=10, backtrack=False):
    mu, p = mu0.copy(), P(mu0); best = p.copy(); curve = []
    for _ in range(iters):
        out, J = jacobian(mu); r = x - out
        delta = np.stack([np.linalg.lstsq(J[i], r[i], rcond=1e-6)[0] for i in range(len(mu))])
        if not backtrack:
            mu = mu + delta; p = P(mu)
        else:
            t, q = np.ones(len(mu)), P(mu + delta)
            for _ in range(8):
                bad = ~(q < p)
                if not bad.any(): break
                t[bad] *= 0.5; q[bad] = P(mu[bad] + t[bad, None] * delta[bad], bad)
            ok = q < p; mu[ok] += t[ok, None] * delta[ok]; p[ok] = q[ok]
        best = np.minimum(best, p); curve.append(best.mean())
    return curve
show("undamped GN (best so far)", undamped())
show("undamped GN, backtracking", undamped(backtrack=True))

def subspace(k, iters=8, krylov=1):
    """The GN model minimized over span{g, H g, ..., H^(krylov-1) g, the last k-1 accepted steps}
    (H = (2/d) J^T J); a rising step is undone, scale halved."""
    mu, p, scale, last, curve = mu0.copy(), P(mu0), np.ones(len(mu0)), [[] for _ in mu0], []
    for _ in range(iters):
        out, J = jacobian(mu); g = (2 / d) * np.einsum("ndl,nd->nl", J, out - x)
        for i in range(len(mu)):
            H, K = (2 / d) * J[i].T @ J[i], [g[i]]
            for _ in range(krylov - 1): K.append(H @ K[-1])
            S = np.stack(K + (last[i][-(k - 1):] if k > 1 else []), 1)
            JS = J[i] @ S
            c = -np.linalg.lstsq((2 / d) * JS.T @ JS, S.T @ g[i], rcond=None)[0]
            s = scale[i] * (S @ c)
            q = P((mu[i] + s)[None], slice(i, i + 1))[0]
            if np.isfinite(q) and q <= p[i]: mu[i] += s; p[i] = q; last[i].append(s)
            else: scale[i] *= 0.5
        curve.append(p.mean())
    return curve
show("Cauchy step (span{g})", subspace(1))
show("span{g, last step}", subspace(2))
show("span{g, Hg, last step}", subspace(2, krylov=2))

worst = np.argsort(p_lm)[::-1][:10]
print(f"  after 12 LM iterations the ten worst points hold {p_lm[worst].sum() / p_lm.sum():.0%} of the error:",
      " ".join(f"{v:.4f}" for v in p_lm[worst]))
if adam_steps:
    z, m, s = mu0.copy(), np.zeros_like(mu0), np.zeros_like(mu0)
    for t in range(1, adam_steps + 1):
        pre, v = [], z
        for i, (W, b) in enumerate(decoder):
            a = v @ W + b
            if i < len(decoder) - 1: pre.append(a); v = np.maximum(a, 0)
            else: v = a
        g = (2 / d) * (v - x)
        for i in range(len(decoder) - 1, -1, -1):
            g = g @ decoder[i][0].T
            if i > 0: g = g * (pre[i - 1] > 0)
        m = 0.9 * m + 0.1 * g; s = 0.999 * s + 0.001 * g * g
        z = z - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
    q = P(z)
    print(f"  Adam at 0.1 from the same start, {adam_steps} steps: {q.mean():.6f}; at the ten worst LM points:",
          " ".join(f"{v:.6f}" for v in q[worst]))
