#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation as a *lifted* Gauss-Newton method
(Albersmeyer and Diehl, "The lifted Newton method", SIAM J. Optim. 2010) on a decoder with two
hidden layers. The hidden activations a1, a2 are variables of their own beside z, tied by
a1 = s(W1 z + b1), a2 = s(W2 a1 + b2) (s the softplus at the point's temperature). Each
iteration linearizes those ties at the current (z, a1, a2), which need not agree, and solves
the condensed damped least-squares problem in z alone (|z| x |z|, exact). The output's model is
c + J dz with c = W3 (s(u2) + s'(u2) * ((s(u1) - a1) W2)) + b3, u1 = z W1 + b1, u2 = a1 W2 + b2,
and J = W3-chain through s'(u1) at z and s'(u2) at the lifted a1. A trial is accepted on the
consistent smoothed objective at z + dz as PESVI accepts (no rise, a tenth of the model's
predicted gain). Then a1 and a2 move along their linearized ties instead of being recomputed by
a forward pass. LIFT=0 recomputes them at each iteration: that is PESVI's continuation with exact
solves, the reference. Iteration 1 is the same either way; the methods differ from iteration 2
on. Prints the mean reconstruction on the ReLU decoder after each iteration and the first within
1 % of SVI's level. Recorded in docs/RESULTS.md ("Thirty-first session"). Not part of the package.

    [LIFT=0|1] [SOLVER=exact|krylovK] [PESVI_PROBE_ROWS=validation] \
        python3 scripts/lifted_continuation_probe.py MODEL_DIR SVI ITERATIONS c,f[,K] [...]

K: smoothed iterations, then the ReLU decoder (damping /3 after an accepted step there; held
through the smoothing); default all. SOLVER=krylovK solves the smoothed iterations in K
preconditioned Krylov vectors as PESVI does where it preconditions; the ReLU ones stay exact.
"""
import os, sys, numpy as np
from scipy.special import expit
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, preconditioner, preconditioned_krylov_solver

probe = Probe(sys.argv)
(W1, b1), (W2, b2), (W3, b3) = probe.decoder
x, L, d = probe.x, probe.L, probe.d
lift = os.environ.get("LIFT", "1") != "0"


def s(a, tau):
    """The softplus at temperature tau (rows x 1), or the ReLU where tau is None."""
    return np.maximum(a, 0) if tau is None else tau * np.logaddexp(0, a / tau)


def slope(a, tau): return (a > 0).astype(float) if tau is None else expit(a / tau)


def krylov_solver(k):
    """PESVI's smoothed solve: the damped system in span{Cg, (CH)Cg, ...} (k vectors, no last
    step), C the inverse of the mean curvature (ReLU decoder) at the validation rows' starts
    plus 1e-2 of its largest eigenvalue, as free_schedule_probe.TwoRowSets forms it."""
    saved = os.environ.get("PESVI_PROBE_ROWS")
    os.environ["PESVI_PROBE_ROWS"] = "validation"
    v = Probe([None, probe.model, "1", "1"])
    if saved is None: del os.environ["PESVI_PROBE_ROWS"]
    else: os.environ["PESVI_PROBE_ROWS"] = saved
    _, Jv = v.fwd(v.mu0, None)
    return preconditioned_krylov_solver(preconditioner(Jv), k)


solver = os.environ.get("SOLVER", "exact")
krylov = krylov_solver(int(solver[6:])) if solver.startswith("krylov") else None


def run(c, f, K):
    mu, lam = probe.mu0.copy(), np.full(len(x), 1e-3)
    A1 = A2 = None
    curve = []
    for t in range(probe.iters):
        smoothed = t < K
        t1, t2 = (c * f ** t * sc for sc in probe.scales) if smoothed else (None, None)   # n x 1 each
        u1 = mu @ W1 + b1; phi1 = s(u1, t1); s1 = slope(u1, t1)
        if A1 is None or not lift:
            A1 = phi1.copy(); A2 = s(A1 @ W2 + b2, t2)
        u2 = A1 @ W2 + b2; phi2 = s(u2, t2); s2 = slope(u2, t2)
        cons = ((s(phi1 @ W2 + b2, t2) @ W3 + b3 - x) ** 2).mean(1)  # consistent smoothed objective
        cvec = (phi2 + s2 * ((phi1 - A1) @ W2)) @ W3 + b3
        for i in range(len(x)):
            J = ((W1 * s1[i]) @ W2 * s2[i]) @ W3                   # L x d: row j is e_j's image
            r = x[i] - cvec[i]; g = J @ r; H = J @ J.T; Dg = np.diag(np.diag(H))
            solve = krylov(g, H) if (krylov is not None and smoothed) else \
                (lambda lam: np.linalg.solve(H + lam * Dg + 1e-9 * np.eye(L), g))
            for _ in range(5):
                delta = solve(lam[i])
                model = ((r - delta @ J) ** 2).mean()
                zt = mu[i] + delta
                q = ((s(s(zt @ W1 + b1, None if t1 is None else t1[i]) @ W2 + b2, None if t2 is None else t2[i]) @ W3 + b3 - x[i]) ** 2).mean()
                gain = cons[i] - model
                if np.isfinite(q) and q <= cons[i] and (gain <= 1e-3 * cons[i] or cons[i] - q >= 0.1 * gain):
                    dA1 = (phi1[i] - A1[i]) + (delta @ W1) * s1[i]
                    A2[i] = phi2[i] + s2[i] * (dA1 @ W2)
                    A1[i] = A1[i] + dA1
                    mu[i] = zt
                    if not smoothed: lam[i] = max(lam[i] / 3, 1e-6)
                    break
                lam[i] *= 4
        curve.append(probe.P(mu).mean())
    return next((t + 1 for t, v in enumerate(curve) if v <= 1.01 * probe.svi), None), curve


print(f"{probe.model} {os.environ.get('PESVI_PROBE_ROWS', 'test')} [{'lifted' if lift else 'PESVI (recomputed)'}]: start {probe.P(probe.mu0).mean():.6f} level {1.01 * probe.svi:.6f}")
for cfg in probe.configs:
    v = cfg.split(',')
    c, f, K = float(v[0]), float(v[1]), int(v[2]) if len(v) > 2 else 99
    first, curve = run(c, f, K)
    print(f"  c={c} f={f} K={K} solver {solver}: reaches {first}: " + " ".join(f"{v:.5f}" for v in curve), flush=True)
