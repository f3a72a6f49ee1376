#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation (smoothed to the end, tau = c f^t, damping
held, up to 5 Marquardt trials with gain ratio 0.1) with chord corrections: after a point's
accepted step, up to CHORDS more steps on the same linearization (the same J, the same damping)
for the residual at the new point, each kept only while it lowers the point's smoothed
objective. A chord costs a forward pass and J^T r, no new Jacobian; the question is whether it
buys an iteration at digits |z| = 64 Arch3.

    python3 scripts/chord_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS c,f CHORDS K [EXTRA]

K = 0: exact damped solves, the chord solved exactly with the same matrix. K > 0: PESVI's K
preconditioned Krylov vectors (preconditioner from the validation rows' starts); the chord is
solved in the same K vectors, or with EXTRA > 0 in those plus EXTRA more vectors of the
preconditioned Krylov sequence started at the chord's gradient (each extra vector costs a
product with J^T J, two passes through the decoder). PESVI_PROBE_CHORD_FROM=T: chords only from
iteration T (1, 2, ...) on. Prints the mean objective on the ReLU
decoder after each iteration, the first within 1 % of SVI's level and the chords kept per point
in each iteration. Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, krylov_basis, solved_trials, validation_preconditioner
p = Probe(sys.argv[:4])
c, f = (float(v) for v in sys.argv[4].split(','))
chords, k = int(sys.argv[5]), int(sys.argv[6]); extra = int(sys.argv[7]) if len(sys.argv) > 7 else 0
chord_from = int(os.environ.get("PESVI_PROBE_CHORD_FROM", "1"))   # the first iteration (1, 2, ...) with chords
rows = os.environ.get("PESVI_PROBE_ROWS", "test")
C = validation_preconditioner(p.model, p.L)


def extend(V, v, H, count):
    """V (list of orthonormal vectors) extended by count vectors of the preconditioned Krylov
    sequence started at v (Arnoldi, twice orthogonalized)."""
    V = list(V)
    for _ in range(count):
        for _ in range(2):
            for u in V: v = v - (u @ v) * u
        if np.linalg.norm(v) < 1e-10: break
        V.append(v / np.linalg.norm(v)); v = C @ (H @ V[-1])
    return np.array(V).T


def solve_in(Q, H, g, lam):
    Hs = Q.T @ H @ Q
    return Q @ np.linalg.solve(Hs + lam * np.diag(np.diag(Hs)) + 1e-9 * np.eye(Q.shape[1]), Q.T @ g)


mu, lam, n, curve, kept = p.mu0.copy(), np.full(len(p.mu0), 1e-3), len(p.mu0), [], []
for t in range(p.iters):
    taus = [c * f ** t * sc for sc in p.scales]
    out, J = p.fwd(mu, taus); r = p.x - out; pp = (r ** 2).mean(1); used = 0
    for i in range(n):
        ti = [tt[i:i + 1] for tt in taus]
        g, H = J[i].T @ r[i], J[i].T @ J[i]
        Q = krylov_basis(C, g, H, k) if k else np.eye(p.L)
        delta, lam[i], o, q, _, _ = solved_trials(p.fwd, mu[i], p.x[i], g, H, lambda lam: solve_in(Q, H, g, lam),
                                                  pp[i], lam[i], ti, p.d)
        if delta is None: continue
        mu[i] += delta
        for _ in range(chords if t + 1 >= chord_from else 0):
            gc = J[i].T @ (p.x[i] - o)
            Qc = extend(list(Q.T), C @ gc, H, extra) if (k and extra) else Q
            d2 = solve_in(Qc, H, gc, lam[i])
            o2 = p.fwd((mu[i] + d2)[None], ti)[0][0]; q2 = ((o2 - p.x[i]) ** 2).mean()
            if q2 >= q: break
            mu[i] += d2; o, q = o2, q2; used += 1
    curve.append(p.P(mu).mean()); kept.append(used / n)
level = 1.01 * p.svi
print(f"{rows} rows, c={c} f={f}, {'exact solves' if k == 0 else f'Krylov {k}'}{f' (+{extra} for the chord)' if extra else ''}, "
      f"{chords} chord(s) from iteration {chord_from}: reaches SVI at", next((t + 1 for t, v in enumerate(curve) if v <= level), None), ":",
      " ".join(f"{v:.5f}" for v in curve), "| chords kept per point:", " ".join(f"{v:.2f}" for v in kept), flush=True)
