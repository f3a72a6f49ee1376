#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's standard continuation at digits |z| = 32 (c, f, K smoothed
iterations, damping held through them) with each smoothed iteration's preconditioned Krylov
subspace of its own size: iteration t solved in span{Cg, (CH)Cg, ...} of sizes[t] vectors (no
last step; C the inverse of the mean curvature at the validation rows' starts, as PESVI forms
it), the iterations on the ReLU decoder solved exactly, as PESVI does. On the test and the
validation rows, prints the first iteration within 1 % of SVI's level and the curve. PESVI's
sizes at |z| = 32 are 6, 6, 6, 4 (3|z|/16, the last smoothed iteration 2/3 of that). Recorded in
docs/RESULTS.md ("Thirty-first session"). Not part of the package.

    python3 scripts/krylov_sizes_probe.py MODEL_DIR SVI_TEST SVI_VALIDATION c,f,K s0,s1,...[;s0,s1,...]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import exact_solver
from free_schedule_probe import TwoRowSets

model, svi_test, svi_val = sys.argv[1], sys.argv[2], sys.argv[3]
c, f, K = (float(v) for v in sys.argv[4].split(','))
K = int(K)
rs = TwoRowSets(model, svi_test, svi_val)
exact = exact_solver(rs.test.L)
temps = [c * f ** t for t in range(K)]

for spec in sys.argv[5].split(';'):
    sizes = [int(v) for v in spec.split(',')]
    rows = {}
    for name, p in (("test", rs.test), ("validation", rs.val)):
        solvers = {k: rs.krylov_solver(k) for k in set(sizes)}
        step = lambda g, H, last, p=p: (solvers[sizes[p.t]] if p.t < K else exact)(g, H, last)
        first, _, curve, _ = p.lm(1.0, 1.0, K, 1e-3, step, temperatures=temps)
        rows[name] = (first, curve)
    print(f"sizes {spec}: test reaches at {rows['test'][0]} ({' '.join(f'{v:.5f}' for v in rows['test'][1][:6])});"
          f" validation at {rows['validation'][0]} ({' '.join(f'{v:.5f}' for v in rows['validation'][1][:8])})"
          f"; vectors {sum(sizes[:K])}", flush=True)
