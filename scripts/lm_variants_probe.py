#!/usr/bin/env python3
"""Probe (NumPy, float64): do cheap additions to the Levenberg-Marquardt iteration bring a saved
model's test rows to SVI's level in fewer iterations? Recorded in docs/RESULTS.md ("Sixteenth
session"). All from the pseudo-encoder's mean, on P(mu) = (1/d)||x - D(mu)||^2 (reconstruction
objective at the mean, standardized units), LM as PE-SVI-GN runs it (see refinement_probe.py).

    python3 scripts/lm_variants_probe.py MODEL_DIR SVI_RECONSTRUCTION

Prints the mean objective after each iteration of
  - LM;
  - LM with geodesic acceleration (Transtrum & Sethna 2012): the second directional derivative
    of the residuals along the LM step v by a finite difference at h v (h = 0.1 and 1), the
    correction a = -(J^T J + lam D)^-1 J^T r_vv, the step v + a/2 when 2|a|/|v| <= alpha;
  - LM with chord corrections: after the LM step, 1 or 3 more solves with the same damped
    matrix on the residual at the trial point, keeping the trial of the lowest objective;
  - LM whose accepted step is doubled (up to 4 times) while that lowers the objective;
  - one linearization per iteration, the damping chosen greedily: of the steps at damping
    1e-5 ... 1 (times diag H), the one of the lowest objective;
  - plans mixing LM iterations (L) and Krylov steps (K: the Gauss-Newton model's minimizer over
    span{g, Hg, last step}, as PE-SVI-auto's Krylov step), e.g. LLLKK.
SVI's level is 1.01 x the given SVI reconstruction. Not part of the package.
"""
import sys
import numpy as np
from pesvi_numpy import load_model, mlp, jacobian as decoder_jacobian, show as show_curve

model, svi = sys.argv[1], float(sys.argv[2])
decoder, encoder, x, config = load_model(model)
L, d = decoder[0][0].shape[0], x.shape[1]
level = 1.01 * svi


def P(z, rows=slice(None)): return ((mlp(decoder, z) - x[rows]) ** 2).mean(1)


def jacobian(z): return decoder_jacobian(decoder, z)


def show(label, curve): show_curve(label, curve, level, width=30)


mu0 = mlp(encoder, x)[:, :L]
print(f"{model}: start {P(mu0).mean():.5f}, SVI's level {level:.5f}, {len(x)} points, |z| = {L}, d = {d}")


def lm(iters=10, lam0=1e-3, lam_min=1e-6, eta=0.1, geodesic=None, alpha=0.75, chord=0, doubling=0):
    mu, lam, p = mu0.copy(), np.full(len(mu0), lam0), P(mu0); curve = []
    for _ in range(iters):
        out, J = jacobian(mu); r = x - out
        for i in range(len(mu)):
            g = J[i].T @ r[i]; H = J[i].T @ J[i]
            for _ in range(5):
                A = H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L)
                delta = np.linalg.solve(A, g)
                predicted = (2 * delta @ g - delta @ H @ delta) / d
                if geodesic is not None:
                    h = geodesic
                    rh = x[i] - mlp(decoder, (mu[i] + h * delta)[None])[0]
                    rvv = (2 / h) * ((rh - r[i]) / h + J[i] @ delta)  # r = x - D, so dr/dt = -J v
                    a = np.linalg.solve(A, J[i].T @ rvv)
                    if 2 * np.linalg.norm(a) <= alpha * np.linalg.norm(delta): delta = delta + 0.5 * a
                elif chord:
                    best, bq, cur = delta, P((mu[i] + delta)[None], slice(i, i + 1))[0], delta
                    for _ in range(chord):
                        rc = x[i] - mlp(decoder, (mu[i] + cur)[None])[0]
                        cur = cur + np.linalg.solve(A, J[i].T @ rc)
                        qc = P((mu[i] + cur)[None], slice(i, i + 1))[0]
                        if qc < bq: best, bq = cur, qc
                    delta = best
                q = P((mu[i] + delta)[None], slice(i, i + 1))[0]
                if np.isfinite(q) and q <= p[i] and p[i] - q >= eta * predicted:
                    for _ in range(doubling):
                        q2 = P((mu[i] + 2 * delta)[None], slice(i, i + 1))[0]
                        if not q2 < q: break
                        delta, q = 2 * delta, q2
                    mu[i] += delta; p[i] = q; lam[i] = max(lam[i] / 3, lam_min); break
                lam[i] *= 4
        curve.append(p.mean())
    return curve


def greedy_damping(iters=10, lams=(1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1)):
    mu, p = mu0.copy(), P(mu0); curve = []
    for _ in range(iters):
        out, J = jacobian(mu); r = x - out
        for i in range(len(mu)):
            g = J[i].T @ r[i]; H = J[i].T @ J[i]
            best, bq = None, p[i]
            for lam in lams:
                delta = np.linalg.solve(H + lam * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g)
                q = P((mu[i] + delta)[None], slice(i, i + 1))[0]
                if q < bq: best, bq = delta, q
            if best is not None: mu[i] += best; p[i] = bq
        curve.append(p.mean())
    return curve


def plan(steps, lam0=1e-3):
    """LM iterations (L) and Krylov steps (K) in the given order; K's last step is the point's
    last accepted step of either kind."""
    mu, p, lam = mu0.copy(), P(mu0), np.full(len(mu0), lam0)
    scale, last, curve = np.ones(len(mu0)), [None] * len(mu0), []
    for kind in steps:
        out, J = jacobian(mu); r = x - out; g = -(2 / d) * np.einsum("ndl,nd->nl", J, r)
        for i in range(len(mu)):
            H = (2 / d) * J[i].T @ J[i]
            if kind == "K":
                S = np.stack([g[i], H @ g[i]] + ([last[i]] if last[i] is not None else []), 1)
                c = -np.linalg.lstsq(S.T @ H @ S, S.T @ g[i], rcond=None)[0]
                s = scale[i] * (S @ c); q = P((mu[i] + s)[None], slice(i, i + 1))[0]
                if np.isfinite(q) and q <= p[i]: mu[i] += s; p[i] = q; last[i] = s
                else: scale[i] *= 0.5
            else:
                for _ in range(5):
                    delta = -np.linalg.solve(H + lam[i] * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g[i])
                    predicted = -(delta @ g[i] + 0.5 * delta @ H @ delta)
                    q = P((mu[i] + delta)[None], slice(i, i + 1))[0]
                    if np.isfinite(q) and q <= p[i] and p[i] - q >= 0.1 * predicted:
                        mu[i] += delta; p[i] = q; lam[i] = max(lam[i] / 3, 1e-6); last[i] = delta; break
                    lam[i] *= 4
        curve.append(p.mean())
    return curve


show("LM (PE-SVI-GN's)", lm())
show("LM, geodesic acceleration h=0.1", lm(geodesic=0.1))
show("LM, geodesic acceleration h=1", lm(geodesic=1.0))
show("LM, 1 chord correction", lm(chord=1))
show("LM, 3 chord corrections", lm(chord=3))
show("LM, accepted step doubled", lm(doubling=4))
show("greedy damping (best of 9)", greedy_damping())
for steps in ["KLLLLLLL", "KKLLLLLL", "LKKKKKKK", "LLKKKKKK", "LLLKKKKK", "LKLKLKLK", "LLKLKLKL"]:
    show(f"plan {steps}", plan(steps))
