"""Reads a saved PESVI model directory into NumPy (float64) for the probe scripts in this folder.
Not part of the package."""
import json, os, struct
import numpy as np


def load_model(model):
    """(decoder, pseudo_encoder, x, config): each network a list of (W, b) with W in x inputs,
    out outputs order (rows multiply from the left), x the model's test rows standardized (its
    validation rows when the environment sets PESVI_PROBE_ROWS=validation)."""
    raw = open(model + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    tensors = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32)
               .reshape(v["shape"]).astype(np.float64) for k, v in header.items() if k != "__metadata__"}
    config = json.load(open(model + "/config.json"))
    rows = os.environ.get("PESVI_PROBE_ROWS", "test")
    x = (np.load(model + f"/{rows}.npy").astype(np.float64) - np.array(config["standardizer"]["means"])) \
        / np.array(config["standardizer"]["stds"])

    def layers(prefix):
        out, i = [], 0
        while f"{prefix}.layers.{i}.weight" in tensors:
            out.append((tensors[f"{prefix}.layers.{i}.weight"], tensors[f"{prefix}.layers.{i}.bias"])); i += 1
        return out

    return layers("decoder"), layers("pseudo_encoder"), x, config


def mlp(layers, v):
    """The network's output for rows v: ReLU between layers, none after the last."""
    for i, (W, b) in enumerate(layers):
        v = v @ W + b
        if i < len(layers) - 1: v = np.maximum(v, 0)
    return v


def jacobian(decoder, z):
    """D(z) (n x d) and its Jacobian J (n x d x |z|) for rows z, forward mode (ReLU masks)."""
    L = decoder[0][0].shape[0]
    v, A = z, np.broadcast_to(np.eye(L), (len(z), L, L))
    for i, (W, b) in enumerate(decoder):
        a = v @ W + b
        A = A @ W
        if i < len(decoder) - 1:
            m = a > 0; A = A * m[:, None, :]; v = np.maximum(a, 0)
        else: v = a
    return v, np.transpose(A, (0, 2, 1))


def show(label, curve, level, width=28):
    """Prints a curve of mean objectives (one per iteration) and the first iteration at or below level."""
    first = next((t + 1 for t, v in enumerate(curve) if v <= level), None)
    print(f"  {label:{width}s} reaches SVI at {first}:", " ".join(f"{v:.5f}" for v in curve))


_M64 = (1 << 64) - 1


def split_rows(rows, seed=0, validation_fraction=0.1, test_fraction=0.1):
    """(train, validation, test) row indices, each ascending, as PESVI's DatasetSplit draws them:
    a Fisher-Yates permutation by xoshiro256** seeded through SplitMix64, test rows first."""
    state, sm = [], seed
    for _ in range(4):
        sm = (sm + 0x9E3779B97F4A7C15) & _M64
        z = ((sm ^ (sm >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        state.append(z ^ (z >> 31))

    def draw():
        s0, s1, s2, s3 = state
        r = ((((s1 * 5) & _M64) << 7 | ((s1 * 5) & _M64) >> 57) & _M64) * 9 & _M64
        t = (s1 << 17) & _M64
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t
        state[:] = [s0, s1, s2, ((s3 << 45) | (s3 >> 19)) & _M64]
        return r

    n_test, n_val = int(np.floor(rows * test_fraction + 0.5)), int(np.floor(rows * validation_fraction + 0.5))
    p = list(range(rows))
    for i in range(rows - 1, 0, -1):
        j = draw() % (i + 1); p[i], p[j] = p[j], p[i]
    return sorted(p[n_test + n_val:]), sorted(p[n_test:n_test + n_val]), sorted(p[:n_test])


def tensor(model, name):
    """One tensor of the model's safetensors file (float64)."""
    raw = open(model + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    v = json.loads(raw[8:8 + n])[name]
    return np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"]).astype(np.float64)


def pre_activation_spreads(decoder, z):
    """Per hidden layer, each row's standard deviation over the layer's units of its
    pre-activations (ReLU decoder at z): the unit of GaussNewtonSmoothing's temperatures."""
    out, v = [], z
    for W, b in decoder[:-1]:
        a = v @ W + b; out.append(a.std(1, keepdims=True)); v = np.maximum(a, 0)
    return out


def smoothed_jacobian(decoder, z, taus):
    """D(z) and J (n x d x |z|) with hidden layer l smoothed to tau*log(1 + exp(a/tau)),
    tau = taus[l] (rows x 1); taus None: the ReLU decoder (as jacobian)."""
    from scipy.special import expit
    L = decoder[0][0].shape[0]
    v, A = z, np.broadcast_to(np.eye(L), (len(z), L, L))
    for i, (W, b) in enumerate(decoder):
        a = v @ W + b; A = A @ W
        if i < len(decoder) - 1:
            if taus is None: m = (a > 0).astype(float); v = np.maximum(a, 0)
            else: tau = taus[i]; m = expit(a / tau); v = tau * np.logaddexp(0, a / tau)
            A = A * m[:, None, :]
        else: v = a
    return v, np.transpose(A, (0, 2, 1))


def exact_solver(L):
    """PE-SVI-GN's exact damped solve (Marquardt damping on diag H, 1e-9 absolute) as a probe
    step solver: (g, H, last) -> solve(lam) -> the step."""
    return lambda g, H, last: (lambda lam: np.linalg.solve(H + lam * np.diag(np.diag(H)) + 1e-9 * np.eye(L), g))


def preconditioner(J):
    """PESVI's Krylov preconditioner from Jacobians J (n x d x |z|, the ReLU decoder at the
    validation rows' starts): the inverse of the mean curvature plus 1e-2 of its largest
    eigenvalue."""
    w, U = np.linalg.eigh(np.mean([j.T @ j for j in J], axis=0))
    return U @ np.diag(1 / (w + 1e-2 * w.max())) @ U.T


def krylov_basis(C, g, H, k):
    """The orthonormal basis (|z| x k, columns) of span{Cg, (CH)Cg, ..., (CH)^(k-1) Cg}: Arnoldi,
    twice orthogonalized, stopping early if the sequence stalls."""
    v = C @ g; V = [v / np.linalg.norm(v)]
    for _ in range(k - 1):
        v = C @ (H @ V[-1])
        for _ in range(2):
            for u in V: v = v - (u @ v) * u
        if np.linalg.norm(v) < 1e-10: break
        V.append(v / np.linalg.norm(v))
    return np.array(V).T


def validation_preconditioner(model, L):
    """PESVI's Krylov preconditioner (preconditioner above) formed at the model's validation
    rows' starts, whichever rows the probe itself reads."""
    rows = os.environ.get("PESVI_PROBE_ROWS")
    os.environ["PESVI_PROBE_ROWS"] = "validation"
    decoder, encoder, x, _ = load_model(model)
    if rows is None: os.environ.pop("PESVI_PROBE_ROWS")
    else: os.environ["PESVI_PROBE_ROWS"] = rows
    return preconditioner(smoothed_jacobian(decoder, mlp(encoder, x)[:, :L], None)[1])


def preconditioned_krylov_solver(C, k):
    """Probe step solver: the damped system restricted to span{Cg, (CH)Cg, ...} (k vectors,
    krylov_basis; no last step), as preconditioned_krylov_probe.py without the last step:
    (g, H, last=None) -> solve(lam) -> the step."""
    def make(g, H, last=None):
        Q = krylov_basis(C, g, H, k); Hs, gs = Q.T @ H @ Q, Q.T @ g
        return lambda lam: Q @ np.linalg.solve(Hs + lam * np.diag(np.diag(Hs)) + 1e-9 * np.eye(len(gs)), gs)
    return make


def solved_trials(fwd, mu_i, x_i, g, H, solve, p_i, lam_i, taus_i, d, positive_model=False):
    """One point's Levenberg-Marquardt trials as PE-SVI-GN takes them: up to 5, the step
    solve(lam); accepted when the objective measured through fwd at taus_i does not rise and
    achieves 0.1 of the model's predicted decrease, or the prediction is under 1e-3 of p_i; lam x4
    after a rejection. positive_model: a trial whose model predicts no decrease is rejected too
    (for an indefinite H). Returns (delta or None, lam, out, q, rho, rejected): the accepted
    step, the damping it was taken at, the decoder's output and the objective there, the gain
    ratio (actual / predicted decrease) and the trials rejected before it."""
    for rejected in range(5):
        delta = solve(lam_i)
        predicted = (2 * delta @ g - delta @ H @ delta) / d
        out = fwd((mu_i + delta)[None], taus_i)[0][0]; q = ((out - x_i) ** 2).mean()
        if (predicted > 0 or not positive_model) and np.isfinite(q) and q <= p_i \
                and (predicted <= 1e-3 * p_i or p_i - q >= 0.1 * predicted):
            return delta, lam_i, out, q, (p_i - q) / max(predicted, 1e-300), rejected
        lam_i *= 4
    return None, lam_i, None, None, None, 5


def damped_trials(fwd, mu_i, x_i, g, H, D, p_i, lam_i, taus_i, d, positive_model=False):
    """solved_trials with the step solving (H + lam D + 1e-9 I) delta = g. Returns (delta or
    None, lam)."""
    L = len(g)
    solve = lambda lam: np.linalg.solve(H + lam * D + 1e-9 * np.eye(L), g)
    return solved_trials(fwd, mu_i, x_i, g, H, solve, p_i, lam_i, taus_i, d, positive_model)[:2]


def schedule(cfg):
    """(c, f, K, lambda0, hold) from a probe's schedule field c,f,K[,lambda0[,hold]] (lambda0
    1e-3 and hold 1 by default, PE-SVI-GN's)."""
    fields = cfg.split(',')
    return (float(fields[0]), float(fields[1]), int(fields[2]), float(fields[3]) if len(fields) > 3 else 1e-3,
            fields[4] != '0' if len(fields) > 4 else True)


class Probe:
    """The shared set-up of the LM probe scripts, from their command line
    MODEL_DIR SVI_RECONSTRUCTION ITERATIONS CONFIG...: the model, the pseudo-encoder's mean mu0
    of its test rows, each point's pre-activation spreads at mu0, the forward pass with
    Jacobian (smoothed at temperatures taus, or ReLU for None) and P(z), the reconstruction at
    z per point."""

    def __init__(self, argv):
        self.model, self.svi = argv[1], float(argv[2])
        self.iters, self.configs = int(argv[3]), argv[4:]
        self.decoder, self.encoder, self.x, self.config = load_model(self.model)
        self.L, self.d = self.decoder[0][0].shape[0], self.x.shape[1]
        self.mu0 = mlp(self.encoder, self.x)[:, :self.L]
        self.scales = pre_activation_spreads(self.decoder, self.mu0)   # per point, per layer

    def fwd(self, z, taus):
        return smoothed_jacobian(self.decoder, z, taus)

    def P(self, z):
        return ((mlp(self.decoder, z) - self.x) ** 2).mean(1)

    def continuation(self, c, f, K, lam0, linearize, positive_model=False):
        """A variant of PE-SVI-GN's continuation with exact damped solves for the probes that
        change the linear model: iteration t < K smoothed at tau = c * s_l * f^t (then the ReLU
        decoder), linearize(t, taus, mu) -> (p, point) with p each point's objective and point(i)
        -> (g, H, D, trial_taus) its damped system and the temperatures its trials are measured
        at; trials by damped_trials, the damping /3 after an accepted step on the ReLU decoder.
        Returns (first, curve): the first iteration whose mean P on the ReLU decoder is within
        1 % of SVI's level (None: not in self.iters) and that mean after every iteration."""
        mu, lam, curve = self.mu0.copy(), np.full(len(self.mu0), lam0), []
        for t in range(self.iters):
            taus = [c * sc * f ** t for sc in self.scales] if t < K else None
            p, point = linearize(t, taus, mu)
            for i in range(len(mu)):
                g, H, D, trial_taus = point(i)
                delta, lam[i] = damped_trials(self.fwd, mu[i], self.x[i], g, H, D, p[i], lam[i], trial_taus, self.d,
                                              positive_model=positive_model)
                if delta is not None:
                    mu[i] += delta
                    if taus is None: lam[i] = max(lam[i] / 3, 1e-6)
            curve.append(self.P(mu).mean())
        return next((t + 1 for t, v in enumerate(curve) if v <= 1.01 * self.svi), None), curve

    def lm(self, c, f, K, lam0, step_solver, hold=True, exit_tol=0.0, temperatures=None, observe=None, predict=None):
        """PE-SVI-GN's Levenberg-Marquardt from mu0 for self.iters iterations (initial damping
        lam0 relative to diag H, /3 on an accepted step (with hold, PESVI's default since the
        twenty-first session: not on an accepted smoothed step), x4 on a rejected one, up to 5
        trials, gain ratio 0.1): a point's iterations t < K on the decoder with its ReLUs smoothed at
        tau = c * s_l * f^t, then on the ReLU decoder, stopping when an accepted step gains less
        than 1e-3 relative. step_solver(g, H, last) gives, for one point's linearization (its
        last accepted step `last`, zeros after a rejection), solve(lam) -> the step. Returns
        (first, steps_at_first, curve, mean_steps): the first iteration (1, 2, ...) whose mean
        P on the ReLU decoder is within 1 % of SVI's level or None, the mean steps per point
        there, that mean after every iteration, and the run's mean steps per point. Also sets
        self.rejected: the rejected trials per point in each iteration. exit_tol > 0: after a smoothed
        iteration t >= 1, a point whose objective on the ReLU decoder gained less than exit_tol
        (relative) in it stops (smoothing_exit_probe.py). temperatures: the
        multipliers c * f^t of the smoothed iterations given as a list instead (K its length;
        free_schedule_probe.py). observe(t, mu): called with the iterate after every iteration
        (the ReLU mean of the curve is P(mu) there). predict(t, mu, previous) -> rows: before
        iteration t >= 1 the points not done move to those rows, previous the iterate before the
        last iteration (extrapolation_probe.py)."""
        mu0, x, L, d, fwd = self.mu0, self.x, self.L, self.d, self.fwd
        mu, lam = mu0.copy(), np.full(len(mu0), lam0); curve = []; tol = 1e-3
        done = np.zeros(len(mu0), bool); steps = np.zeros(len(mu0)); stepsAt = []; last = np.zeros_like(mu0)
        self.rejected = []
        previous = self.P(mu); before = mu.copy()
        for t in range(self.iters):
            self.t = t   # the iteration under way, for step solvers that vary with it
            rejected = 0
            if predict is not None and t >= 1:
                moved = predict(t, mu, before); before = mu.copy(); mu[~done] = moved[~done]
            else: before = mu.copy()
            if temperatures is not None: K = len(temperatures)
            taus = [(c * f ** t if temperatures is None else temperatures[t]) * sc for sc in self.scales] if t < K else None
            sel = np.where(~done)[0]
            if len(sel):
                out, J = fwd(mu[sel], None if taus is None else [tt[sel] for tt in taus]); r = x[sel] - out; p = (r ** 2).mean(1)
                for jj, i in enumerate(sel):
                    steps[i] += 1
                    g = J[jj].T @ r[jj]; H = J[jj].T @ J[jj]
                    solve = step_solver(g, H, last[i])
                    tj = None if taus is None else [tt[i:i+1] for tt in taus]
                    for _ in range(5):
                        if lam[i] > 1e12: done[i] = True; break
                        delta = solve(lam[i])
                        predicted = (2 * delta @ g - delta @ H @ delta) / d
                        q = ((fwd((mu[i] + delta)[None], tj)[0][0] - x[i]) ** 2).mean()
                        if np.isfinite(q) and q <= p[jj] and (predicted <= tol * p[jj] or p[jj] - q >= 0.1 * predicted):
                            mu[i] += delta; last[i] = delta
                            if not (hold and taus is not None): lam[i] = max(lam[i] / 3, 1e-6)
                            if taus is None and p[jj] - q < tol * p[jj]: done[i] = True
                            break
                        lam[i] *= 4; last[i] = 0; rejected += 1
            self.rejected.append(rejected / len(mu0))
            P = self.P(mu)
            if exit_tol > 0 and 1 <= t < K:
                done |= previous - P < exit_tol * previous
            previous = P
            curve.append(P.mean()); stepsAt.append(steps.mean())
            if observe is not None: observe(t, mu.copy())
        first = next((t for t, v in enumerate(curve) if v <= 1.01 * self.svi), None)
        return (None if first is None else first + 1), (None if first is None else stepsAt[first]), curve, steps.mean()
