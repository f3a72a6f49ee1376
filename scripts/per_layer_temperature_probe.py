#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's continuation smoothed to the end with each hidden layer's
temperature scaled by its own factor (tau_l = r_l * c * f^t * spread_l), solved as
free_schedule_probe.py solves (8 preconditioned Krylov vectors), on digits |z| = 64 Arch3's test
and validation rows (out/dq30/models/z64-arch3; SVI's levels 0.002301 and 0.003213). Recorded in
docs/RESULTS.md ("Thirtieth session"). Not part of the package.

    python3 scripts/per_layer_temperature_probe.py r1,r2,c,f [...]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from free_schedule_probe import TwoRowSets
rs = TwoRowSets('out/dq30/models/z64-arch3', '0.002301', '0.003213')
test, val = rs.test, rs.val
s_test = [s.copy() for s in test.scales]; s_val = [s.copy() for s in val.scales]
for arg in sys.argv[1:]:
    r1, r2, c, f = (float(v) for v in arg.split(','))
    base = list(c * f ** np.arange(9))
    test.scales = [s_test[0] * r1, s_test[1] * r2]; val.scales = [s_val[0] * r1, s_val[1] * r2]
    ft, ct = rs.reach(test, base); fv, cv = rs.reach(val, base)
    print(f"c {c} f {f} layer 1 x{r1}, layer 2 x{r2}: test {ft} validation {fv} | test " + " ".join(f"{v:.5f}" for v in ct[:6]) + " | val 6..9 " + " ".join(f"{v:.5f}" for v in cv[5:9]), flush=True)
