#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation with a free-form temperature schedule
instead of c * f^t: a random search over decreasing multipliers (tau_t = m_t * the point's
pre-activation spread, m_0 in [0.3, 1.6], m_t / m_(t-1) in [0.3, 0.9], 9 smoothed iterations),
each schedule run on the test rows and on the validation rows, each smoothed step solved as
PESVI does at |z| = d = 64 under "smoothed to the end": in 8 Krylov vectors preconditioned by the
inverse of the mean curvature at the validation rows' starts, without the last step
(SOLVER=exact: exact damped solves).
Prints each schedule's first iteration within 1 % of SVI's level on both, best first.
Recorded in docs/RESULTS.md ("Thirtieth session"). Not part of the package.

    python3 scripts/free_schedule_probe.py MODEL_DIR SVI_TEST SVI_VALIDATION [TRIALS] [SEED]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver, preconditioner, preconditioned_krylov_solver


class TwoRowSets:
    """A model's test rows (7 iterations) and validation rows (9), each a Probe, with the
    Krylov preconditioner C formed at the validation rows' starts as PESVI forms it, and
    reach(probe, temperatures) -> (first, curve) under the given smoothed temperatures, each
    step solved in 8 preconditioned Krylov vectors (SOLVER=exact: exact solves)."""

    def __init__(self, model, svi_test, svi_val):
        os.environ['PESVI_PROBE_ROWS'] = 'test'; self.test = Probe([None, model, svi_test, '7'])
        os.environ['PESVI_PROBE_ROWS'] = 'validation'; self.val = Probe([None, model, svi_val, '9'])
        _, Jv = self.val.fwd(self.val.mu0, None)
        self.C = preconditioner(Jv)
        self.solver = exact_solver(self.test.L) if os.environ.get("SOLVER") == "exact" else self.krylov_solver(8)

    def krylov_solver(self, k):
        """Probe step solver: the damped system in k preconditioned Krylov vectors
        (pesvi_numpy.preconditioned_krylov_solver with this C)."""
        return preconditioned_krylov_solver(self.C, k)

    def reach(self, p, temps):
        first, _, curve, _ = p.lm(1.0, 1.0, 9, 1e-3, self.solver, temperatures=temps)
        return first, curve


if __name__ == "__main__":
    model, svi_test, svi_val = sys.argv[1], sys.argv[2], sys.argv[3]
    trials = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    rs = TwoRowSets(model, svi_test, svi_val)
    rows = []
    schedules = [list(0.8 * 0.6 ** np.arange(9))]   # PESVI's "smoothed to the end"
    for _ in range(trials):
        m = [rng.uniform(0.3, 1.6)]
        for _ in range(8): m.append(m[-1] * rng.uniform(0.3, 0.9))
        schedules.append(m)
    for m in schedules:
        ft, ct = rs.reach(rs.test, m); fv, cv = rs.reach(rs.val, m)
        rows.append(((ft or 99) + (fv or 99), ft, fv, m, ct, cv))
        print(f"test {ft} validation {fv}: " + " ".join(f"{v:.3f}" for v in m[:6])
              + f" | test {' '.join(f'{v:.5f}' for v in ct[:6])} | validation at 5..9 {' '.join(f'{v:.5f}' for v in cv[4:9])}", flush=True)
    print("best:")
    for r in sorted(rows, key=lambda r: r[0])[:8]:
        print(f"  test {r[1]} validation {r[2]}: " + " ".join(f"{v:.3f}" for v in r[3][:6]))
