#!/usr/bin/env python3
"""Probe (NumPy, float64): does PE-SVI-GN's continuation reach SVI's level in fewer iterations
from a start chosen per point among a few candidates, by the candidates' objective on the ReLU
decoder (one decoder pass each, no step)? Candidates: the pseudo-encoder's mean at the point
and its means at the point's k nearest training rows (standardized Euclidean distance; the
training rows recovered from the digits file with PESVI's split). On the test and the validation
rows, each with the schedules given (c,f: smoothed to the end, 9 iterations), each step solved
as PESVI does at |z| = d = 64 (8 Krylov vectors preconditioned at the validation rows' starts;
SOLVER=exact: exact solves). Prints the start's mean objective and the first iteration within
1 % of SVI's level. Recorded in docs/RESULTS.md ("Thirty-first session"). Not part of the package.

    python3 scripts/candidate_start_probe.py MODEL_DIR SVI_TEST SVI_VALIDATION K[,K...] c,f[;c,f...]
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import mlp, split_rows, pre_activation_spreads, preconditioner
from free_schedule_probe import TwoRowSets

model, svi_test, svi_val = sys.argv[1], sys.argv[2], sys.argv[3]
ks = [int(v) for v in sys.argv[4].split(',')]
schedules = [tuple(float(v) for v in s.split(',')) for s in sys.argv[5].split(';')]
rs = TwoRowSets(model, svi_test, svi_val)
p0 = rs.test
X = np.loadtxt("Data/digits.csv", delimiter=",", skiprows=1)
sp, st = p0.config["split"], p0.config["standardizer"]
train, _, _ = split_rows(len(X), sp["seed"], sp["validationFraction"], sp["testFraction"])
xtr = (X[train] - np.array(st["means"])) / np.array(st["stds"])
ztr = mlp(p0.encoder, xtr)[:, :p0.L]
original = {id(p): p.mu0.copy() for p in (rs.test, rs.val)}


def choose(p, k):
    """Each row's candidate start with the lowest ReLU objective among the encoder's mean at the
    row and at its k nearest training rows; the share of rows that took a neighbour's."""
    base = original[id(p)]
    if k == 0: return base.copy(), 0.0
    d2 = ((p.x[:, None, :] - xtr[None, :, :]) ** 2).sum(2)
    nn = np.argsort(d2, 1)[:, :k]
    cands = np.concatenate([base[:, None, :], ztr[nn]], 1)            # n x (k+1) x L
    obj = np.array([((mlp(p.decoder, cands[:, j]) - p.x) ** 2).mean(1) for j in range(k + 1)]).T
    best = obj.argmin(1)
    return cands[np.arange(len(base)), best], float((best > 0).mean())


for k in ks:
    shares = []
    for p in (rs.test, rs.val):
        p.mu0, share = choose(p, k); shares.append(share)
        p.scales = pre_activation_spreads(p.decoder, p.mu0)
    # The preconditioner at the validation rows' (new) starts, as PESVI would form it.
    _, Jv = rs.val.fwd(rs.val.mu0, None)
    rs.C = preconditioner(Jv)
    if os.environ.get("SOLVER") != "exact": rs.solver = rs.krylov_solver(8)
    print(f"k = {k}: start test {rs.test.P(rs.test.mu0).mean():.5f} validation {rs.val.P(rs.val.mu0).mean():.5f}"
          f" (a neighbour's start taken by {shares[0]:.0%} / {shares[1]:.0%} of the rows)", flush=True)
    for c, f in schedules:
        temps = list(c * f ** np.arange(9))
        ft, ct = rs.reach(rs.test, temps); fv, cv = rs.reach(rs.val, temps)
        print(f"  c = {c} f = {f}: test reaches at {ft} ({' '.join(f'{v:.5f}' for v in ct[:7])});"
              f" validation at {fv} ({' '.join(f'{v:.5f}' for v in cv[:9])})", flush=True)
