#!/usr/bin/env python3
"""Probe (NumPy, float64): the objective along one damped Gauss-Newton step from the
pseudo-encoder's mean, on the decoder smoothed at tau = m times each point's pre-activation
spread (PE-SVI-GN's first temperature at m = 0.8). For each point the step solves
(J^T J + lambda diag(J^T J) + 1e-9 I) delta = J^T r exactly; prints the median step length
relative to |mu0|, the median and mean-weighted ratio of the smoothed objective at
mu0 + t delta to that at mu0 for t = 0.25 ... 2, and how many points are best at each t.

    python3 scripts/first_step_ray_probe.py MODEL_DIR m lambda

Recorded in docs/RESULTS.md ("Thirty-second session"). Not part of the package.
"""
import os, sys, numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pesvi_numpy import Probe
p = Probe(['', sys.argv[1], '1', '1'])
m, lam = float(sys.argv[2]), float(sys.argv[3])
taus = [m*sc for sc in p.scales]
out, J = p.fwd(p.mu0, taus); r = p.x - out; p0 = (r**2).mean(1)
ts = np.array([0.25,0.5,0.75,1.0,1.25,1.5,2.0])
prof = np.zeros((len(p.mu0), len(ts))); steplen=[]
for i in range(len(p.mu0)):
    g = J[i].T@r[i]; H = J[i].T@J[i]
    delta = np.linalg.solve(H + lam*np.diag(np.diag(H)) + 1e-9*np.eye(p.L), g); steplen.append(np.linalg.norm(delta)/np.linalg.norm(p.mu0[i]))
    Z = p.mu0[i] + ts[:,None]*delta
    prof[i] = ((p.fwd(Z, [np.repeat(tt[i:i+1], len(ts), 0) for tt in taus])[0]-p.x[i])**2).mean(1)/p0[i]
print(p.model, "m", m, "lambda", lam, "median rel step", np.median(steplen))
print("t:", ts); print("median ratio:", np.round(np.median(prof,0),3)); print("mean-obj ratio:", np.round((prof*p0[:,None]).mean(0)/p0.mean(),3))
print("best t distribution:", np.bincount(prof.argmin(1), minlength=len(ts)))
