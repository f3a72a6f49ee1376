#!/usr/bin/env python3
"""Probe (NumPy, float64): PE-SVI-GN's smoothed Levenberg-Marquardt (exact solves; C, F, K the
schedule, default 0.8, 0.6, 9: smoothing to the end) with a per-point exit inside the smoothing:
after a smoothed iteration t >= 1, a point whose objective on the ReLU decoder gained less than
EXIT_TOL (relative) in that iteration stops. Prints, for each EXIT_TOL, the first iteration whose
mean ReLU reconstruction is within 1 % of SVI's level and the mean steps per point there (issue
6's measure). Recorded in docs/RESULTS.md ("Twenty-ninth session"). Not part of the package.

    python3 scripts/smoothing_exit_probe.py MODEL_DIR SVI_RECONSTRUCTION ITERATIONS EXIT_TOL [...]
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe, exact_solver

probe = Probe(sys.argv)
c, f, K = float(os.environ.get('C', 0.8)), float(os.environ.get('F', 0.6)), int(os.environ.get('K', 9))
for exit_tol in [float(v) for v in probe.configs]:
    first, steps, curve, _ = probe.lm(c, f, K, 1e-3, exact_solver(probe.L), exit_tol=exit_tol)
    print(f"exit tol {exit_tol}: reaches at iteration {first}, mean steps there {None if steps is None else round(steps, 3)}: "
          + " ".join(f"{v:.5f}" for v in curve), flush=True)
