import Foundation
import PESVINumerics

/// The result of ``GaussNewtonRefinement/refine(_:start:maxSteps:seed:)``.
public struct GaussNewtonResult: Sendable {
    /// Final posterior means and log-variances, n × |z| each.
    public var mu: [Float]
    public var logVariance: [Float]
    /// Mean per-point objective after t iterations, t = 0 … iterations (curve[0] is the start;
    /// empty when the refinement was asked not to record it):
    /// the objective SVI's curves report, E_q[fᵢ] estimated by ``GaussianDecoder/evaluate(_:workspace:rng:)``
    /// with the decoder's sampler (see ``GaussNewtonRefinement`` for the seeding).
    public var curve: [Double]
    /// Each point's P(μ) at its final μ — the deterministic objective at z = μ without the σ
    /// terms, i.e. `evaluate(atMean: true)` minus β·½Σⱼ(σⱼ² − log σⱼ² − 1) — as measured by the
    /// divergence guard. Along the iterations this is non-increasing for every point.
    public var objectiveAtMean: [Double]
    /// Iterations in which each point was processed (one Jacobian, one solve, one trial
    /// forward pass each; accepted and rejected steps both count). A finished point stops counting.
    public var stepsPerPoint: [Int]
    /// How many of all the points' trials were rejected by the divergence guard.
    public var rejectedSteps: Int
    /// Mean and maximum of `stepsPerPoint`.
    public var meanSteps: Double
    public var maxSteps: Int
    /// Iterations run (≤ the `maxSteps` argument; fewer when every point finished early).
    public var iterations: Int
    /// Wall time of the refinement in seconds (G and the iterations, the first of which also
    /// measures the starting P(μ)), excluding the evaluations that only record `curve`.
    public var seconds: Double
    /// After iteration t (index t − 1): the mean over points of the steps taken so far, and the
    /// wall time so far (without recording and observer time).
    public var meanStepsAfter: [Double] = []
    public var secondsAfter: [Double] = []
    /// false when the result does not depend on the start (a linear decoder's exact step,
    /// ``GaussNewtonRefinement/takesExactLinearStep``): the start's cost is then not part of it.
    public var usedStart = true
    /// Whether a linear decoder's one exact step was taken (with `usedStart`: the minimum-norm
    /// step from the start, for a singular H) instead of iterations.
    public var exactStep = false
}

/// A continuation schedule for ``GaussNewtonRefinement`` with a ReLU decoder: a point's first
/// `iterations` iterations linearize, solve and judge their trials on the decoder with every
/// hidden ReLU replaced by the softplus τ·log(1 + e^{a/τ}) (``VectorMath/softplus(_:temperature:_:count:)``),
/// whose Jacobian passes a damped share σ(a/τ) of every unit instead of the ReLU's on/off
/// pattern, so early steps are not confined to the start's activation pattern; then plain
/// Gauss-Newton on the ReLU decoder. At a point's iteration t < `iterations` layer l's
/// temperature is τ = `scale` · s_l · `factor`ᵗ, s_l the standard deviation of the point's own
/// pre-activations over layer l's units at its start (units of the pre-activation; so it
/// depends on that point alone). During those iterations a point does not stop on small
/// progress; its reference objective is measured again, at the new temperature, each
/// iteration. Measured on the digits models (`docs/RESULTS.md`, "Nineteenth session"): plain LM
/// from the pseudo-encoder's start settles in poorer local optima (|z| = 32 Arch3: 0.0325
/// against SVI's 0.0318, never within 1 %); with this schedule it ends at 0.0258 and reaches
/// SVI's level in 4 steps. The smoothed iterations form the Jacobian products densely (every
/// unit passes a share) and take a softplus per hidden unit: 1.6–2.5 times a plain iteration's
/// time (`pesvi bench gn`, `docs/BENCHMARKS.md`).
public struct GaussNewtonSmoothing: Sendable, Equatable, Codable {
    /// Smoothed iterations per point, K (0: none, plain Gauss-Newton).
    public var iterations: Int
    /// c: the first temperature in units of the point's pre-activation spread.
    public var scale: Double
    /// f: the temperature's factor per iteration (0 < f ≤ 1).
    public var factor: Double
    /// Whether a point's damping λ stays as it is when a smoothed iteration's trial is
    /// accepted (true), instead of falling to λ/3 as on the ReLU decoder. Each smoothed
    /// iteration works on a sharper objective than the one before (the temperature falls), so a
    /// λ lowered on the last one overshoots on this one: with it lowered, a fifth to a half of
    /// the smoothed trials on the digits models were rejected (`docs/RESULTS.md`, twenty-first
    /// session). A rejection raises λ (×4) in either case.
    public var holdsDamping: Bool

    public init(iterations: Int, scale: Double, factor: Double, holdsDamping: Bool = true) {
        precondition(iterations >= 0 && scale >= 0 && scale.isFinite && factor > 0 && factor <= 1,
                     "GaussNewtonSmoothing: iterations ≥ 0, scale ≥ 0 and finite, factor in (0, 1], got \(iterations), \(scale), \(factor)")
        self.iterations = iterations
        self.scale = scale
        self.factor = factor
        self.holdsDamping = holdsDamping
    }

    /// Decodes a schedule; one written before `holdsDamping` existed lowered λ (false). Settings
    /// the initializer refuses (a hand-edited file) are a decoding error, not a crash.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let iterations = try c.decode(Int.self, forKey: .iterations), scale = try c.decode(Double.self, forKey: .scale)
        let factor = try c.decode(Double.self, forKey: .factor)
        guard iterations >= 0, scale >= 0, scale.isFinite, factor > 0, factor <= 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription:
                "a smoothing schedule needs iterations ≥ 0, scale ≥ 0 and finite, factor in (0, 1]; got \(iterations), \(scale), \(factor)"))
        }
        self.init(iterations: iterations, scale: scale, factor: factor, holdsDamping: try c.decodeIfPresent(Bool.self, forKey: .holdsDamping) ?? false)
    }

    /// No smoothing: plain Gauss-Newton from the first iteration.
    public static let off = GaussNewtonSmoothing(iterations: 0, scale: 0, factor: 1)
    /// The default: K = 4, c = 0.4, f = 0.5, λ held through the smoothed iterations. (Until the
    /// twenty-first session c = 0.3 with λ lowered on every accepted step; with λ held, c = 0.4
    /// ended below that on all eight digits models' validation rows after four iterations, where
    /// c = 0.3 with λ held ended above it after eight on five of them, `docs/RESULTS.md`.)
    public static let standard = GaussNewtonSmoothing(iterations: 4, scale: 0.4, factor: 0.5)

    /// Whether any iteration is smoothed.
    public var isActive: Bool { iterations > 0 && scale > 0 }

    /// The temperature factor c·fᵗ of a point's iteration t (0-based), 0 from t = K on.
    public func multiplier(iteration t: Int) -> Float {
        guard isActive && t < iterations else { return 0 }
        var v = scale
        for _ in 0..<t { v *= factor }
        return Float(v)
    }
}

/// Damped Gauss-Newton (Levenberg–Marquardt) refinement of test-time posteriors
/// q(z|xᵢ) = N(μᵢ, diag σᵢ²) with the decoder D frozen, batched over points.
///
/// **Continuation (ReLU decoders, by default).** Each point's first `smoothing.iterations`
/// iterations run everything below on the decoder with its ReLUs smoothed to softplus
/// (``GaussNewtonSmoothing``), then on D itself; `smoothing: .off` gives plain LM throughout.
/// The smoothed iterations may solve in Krylov subspaces (``smoothedKrylovDimension``; `pesvi`
/// does from |z| = 32 on) while those on D solve exactly.
///
/// **Model.** With Λ the data precision (I for `.reconstruction`, I/σₓ² for a fixed σₓ,
/// diag e^{−λ_d} for a learned log σₓ² = λ), linearize D at μ: D(μ + σ⊙ε) ≈ D(μ) + J·(σ⊙ε),
/// J = ∂D/∂z (d × |z|), r = x − D(μ). Then E_q ‖x − D(z)‖²_Λ ≈ ‖r‖²_Λ + Σⱼ σⱼ² H̃ⱼⱼ with
/// H̃ = JᵀΛJ, and the per-point objective splits into a μ part P and a σ part S:
/// - reconstruction: P(μ) = (1/d)‖r‖²,  S(σ) = (1/d) Σⱼ σⱼ² H̃ⱼⱼ;
/// - ELBO:  P(μ) = ½‖r‖²_Λ + c + ½β‖μ‖²,  S(σ) = ½ Σⱼ σⱼ² H̃ⱼⱼ + ½β Σⱼ (σⱼ² − log σⱼ² − 1),
///   c = ½ d log 2πσₓ² (fixed) or ½ (Σ_d λ_d + d log 2π) (learned).
/// P(μ) is exactly what ``GaussianDecoder/evaluate(_:workspace:rng:)`` computes with
/// `atMean: true`, minus the σ part of β·KL.
///
/// **μ step.** (H + λ·diag(H) + λ₀·I) δ = g, solved by Cholesky (in Double) per point, with
/// - reconstruction: H = H̃ = JᵀJ, g = Jᵀr (the 1/d scale cancels);
/// - ELBO: H = H̃ + βI, g = JᵀΛr − βμ.
/// A Schur pivot ≤ 10⁻¹²·max diag (or not positive) freezes that coordinate (δⱼ = 0) instead
/// of dividing by noise, so singular H (e.g. a latent coordinate every ReLU path ignores) is safe.
///
/// **σ in closed form.** S is separable: ∂S/∂(σⱼ²) = ½H̃ⱼⱼ + ½β(1 − 1/σⱼ²) = 0 gives
/// σⱼ² = β/(H̃ⱼⱼ + β) = β/Hⱼⱼ for the ELBO with β > 0 (for a linear decoder and fixed σₓ,
/// H̃ⱼⱼ = ‖Wⱼ‖²/σₓ², Wⱼ the j-th row of W). For reconstruction (and β = 0) S decreases
/// monotonically as σ → 0 and has no minimizer, so log σⱼ² ← min(log σⱼ², `logVarianceFloor`):
/// the floor (default −18, σ² ≈ 1.5·10⁻⁸) keeps log σ² finite and E_q within ~1e-8·H̃ⱼⱼ/d
/// of the mean's error, while a start already below it is kept.
///
/// **Levenberg–Marquardt control**, per point, one trial per iteration (by default; see
/// `trialsPerIteration`): the trial
/// (μ + δ, σ′) is accepted iff P(μ + δ) is finite and ≤ P(μ) — the exact deterministic
/// objective at the mean, one forward pass — and P fell by at least `acceptanceRatio` (η,
/// default 0.1) times the decrease the damped quadratic model predicts (the trust-region gain
/// ratio ρ ≥ η; exact, ρ = 1, for a linear decoder). A step that improves P by much less than
/// its model promised has left the region where the linearization holds (a ReLU pattern
/// changed); retrying it shorter, at 4λ, measured better on digits (|z| = 16: 2 iterations to
/// reach SVI instead of 2.9, `docs/RESULTS.md`). The test is skipped for a step predicted to
/// gain less than `tolerance` (relative to P), where ρ is mostly rounding. Since σ′ minimizes S at the current curvature,
/// an accepted trial also lowers P + S (S evaluated with the H̃ of the iteration's μ). On
/// acceptance λ ← max(λ/3, λ_min) (never raised by that floor; kept as it is after a smoothed
/// iteration, see ``GaussNewtonSmoothing/holdsDamping``); on rejection μ and log σ²
/// stay bit-for-bit as they were, λ ← 4λ, and the point retries next iteration (or at once). A point is
/// finished — never touched or evaluated again — when an accepted step improved P + S by
/// less than `tolerance` relative to its value before the step, when λ exceeds
/// `maximumDamping`, or when its H or g is not finite.
///
/// **Cost.** J is formed in forward mode up to the last hidden layer, A = ∂a_{L−1}/∂z
/// (|z| × h per point): A₁ = W₁ masked by the point's ReLU pattern, Aₗ = (Aₗ₋₁·Wₗ) masked.
/// With G = W_L Λ W_Lᵀ (h × h, shared, once per call), H̃ = A·G·Aᵀ and JᵀΛr = A·(Λr·W_Lᵀ),
/// so the d-wide output layer is never formed per point. Masked columns of A are exact zeros,
/// so by default each point works only on its active units S (the blocks Wₗ[Sₗ₋₁, Sₗ] and
/// G[S, S], read in place through offset lists up to |z| = 128, gathered into copies above):
/// about (|S|/h)² of the dense cost, ~3× less with half the units on (measured 3.3× on Arch2,
/// |z| = 64, d = 300). A linear decoder (no hidden layer) has A = I and H̃ = G
/// for every point, so its damped system is factored once per λ and shared, and the points of
/// one λ are solved together (triangular sweeps vectorized across points): a trial then costs
/// O(|z|²) per point beside the forward pass.
/// Per point and iteration: that, one Cholesky of |z| × |z|, and forward passes at μ and at
/// the trial, all batched over the chunk's unfinished points where the shapes allow. A ReLU
/// decoder with d < |z| forms C = JᵀΛ^{1/2} (|z| × d) instead of H̃ = C·Cᵀ and solves each
/// trial through the data space, a d × d system (``solveInDataSpace(gradient:pendingCount:beta:state:workspace:)``):
/// at digits |z| = 128 (d = 64) an iteration takes half the time (`pesvi bench gn`). The pass
/// at μ is made only in the first iteration: afterwards each point's μ is the accepted trial's
/// (or unchanged after a rejection), whose pass is kept (``LinearizationCache``: the hidden
/// activations and u = Λr·W_Lᵀ per point, n × (Σ hidden widths + h) floats).
///
/// **Curve.** `curve[t]` is the mean over points of the Monte-Carlo objective SVI reports
/// (``LatentStepper/evaluate(_:_:seed:step:atMean:perPoint:perPointSquaredError:)`` with
/// `curveSamples` samples) at the state after t iterations. Every curve point uses the same
/// (seed, step 0) noise, so differences along the curve come from the posteriors, not from
/// resampling. It is recording only and not included in `seconds`.
///
/// Each iteration splits the points still going into equal chunks of at most `chunkRows`
/// (``balancedChunkRows(points:)``) on `threads` threads; each point's work depends only on
/// the point, not on the others in its chunk, so results are identical for any thread count
/// and chunk size (tested). The
/// decoder's weights are packed (``PackedWeights``) at the start of every call: the decoder
/// must not change during one.
public final class GaussNewtonRefinement: @unchecked Sendable {
    public let decoder: GaussianDecoder
    /// The decoder's weights packed for the workspaces' passes; packed again at the start of
    /// every ``refine(_:start:maxSteps:seed:recordCurve:observer:)`` (the decoder may change
    /// between calls, not during one).
    let packedWeights: PackedWeights
    public let threads: Int
    public let chunkRows: Int
    /// Initial λ of every point.
    public let damping: Double
    /// λ₀: added to the diagonal of every system (absolute, in units of H).
    public let absoluteDamping: Double
    /// λ after an accepted step is not lowered below this (a smaller initial λ is kept).
    public let minimumDamping: Double
    /// A point whose λ exceeds this is finished.
    public let maximumDamping: Double
    /// Relative improvement below which an accepted step finishes its point.
    public let tolerance: Double
    /// log σ² floor for objectives without a σ optimum (reconstruction, ELBO with β = 0).
    public let logVarianceFloor: Float
    /// The default floor, σ² ≈ 1.5·10⁻⁸ (also PE-SVI-auto's, ``GuardedRefinementConfiguration/logVarianceFloor``).
    public static let defaultLogVarianceFloor: Float = -18
    /// Samples per point for the recorded curve.
    public let curveSamples: Int
    /// Trials per point and iteration. 1: a rejected step retries in the next iteration (with
    /// a fresh but identical linearization). k > 1: up to k−1 immediate retries at 4λ, 16λ, …
    /// on the same H and g, each costing a Cholesky and a forward pass, not a Jacobian. Since
    /// the recomputed linearization at an unchanged μ is the same, the sequence of accepted
    /// steps is the same (bit for bit while products are row-independent, as `gemm` is now);
    /// only the iteration count and the time differ (measured: ~half the iterations and time
    /// at k = 3, with more than half of all trials rejected on random ReLU decoders).
    public let trialsPerIteration: Int
    /// η of the gain-ratio test: a trial is accepted only if P fell by at least η times the
    /// decrease its damped quadratic model predicted (ρ ≥ η, see
    /// ``predictedDecrease(delta:gradient:mu:hessian:damping:beta:perD:)``);
    /// 0 accepts any trial that does not raise P.
    public let acceptanceRatio: Double
    /// The continuation over smoothed ReLUs at each point's first iterations (ReLU decoders
    /// only; a linear decoder has no hidden layer to smooth). See ``GaussNewtonSmoothing``.
    public let smoothing: GaussNewtonSmoothing
    /// k > 0: with a ReLU decoder and the reconstruction objective, each trial solves the damped
    /// system in span{g, H̃g, …, H̃ᵏ⁻¹g, p} (p the point's last accepted step) instead of all of
    /// ℝ^|z|: (M + λ·diag(M) + λ₀·I) c = Qᵀg with M = QᵀH̃Q, Q an orthonormal basis, δ = Qc. H̃ is
    /// never formed: its products with the basis are batched Jacobian-vector products (about
    /// 2(|z|·h + h²) multiply-adds each for Arch2) instead of the |z|²-sized Jacobian products
    /// and a |z|³/3 Cholesky per point; σ stays at its floor and the σ part S is left out (its
    /// σ² ≈ 1.5·10⁻⁸). 0: the exact solve.
    public let krylovDimension: Int
    /// k > 0: the smoothed iterations (``smoothing``) solve in Krylov subspaces of dimension k
    /// as ``krylovDimension`` describes, while the iterations on the ReLU decoder itself take
    /// ``krylovDimension``'s solve (the exact one when it is 0). The continuation's early steps
    /// only have to follow the smoothed minimizers; the exact solve is kept for the last steps,
    /// where the fit is made. Same conditions as ``krylovDimension`` (ReLU decoder,
    /// reconstruction objective); 0: the smoothed iterations solve as the others do. The
    /// initializer's default (nil) is ``defaultSmoothedKrylovDimension(latent:dataWidth:)``, or 0
    /// when ``krylovDimension`` is set, as `pesvi` applies it.
    public let smoothedKrylovDimension: Int
    /// Whether a smoothed iteration's Krylov basis takes the point's last step p as its last
    /// vector (span{g, H̃g, …, H̃ᵏ⁻¹g, p}, as every other Krylov iteration does) or the Krylov
    /// vectors only. The initializer's default (nil) is
    /// ``defaultSmoothedKrylovLastStep(latent:dataWidth:preconditioned:)``.
    public let smoothedKrylovLastStep: Bool
    /// Krylov vectors of the last smoothed iteration (iteration ``GaussNewtonSmoothing/iterations``
    /// − 1) where its basis is in ℝ^|z| (not ``smoothedKrylovInFirstLayer``), at most
    /// ``smoothedKrylovDimension``; the other smoothed iterations take ``smoothedKrylovDimension``.
    /// The initializer's default (nil) is ``defaultLastSmoothedKrylovDimension(_:preconditioned:)``.
    public let lastSmoothedKrylovDimension: Int
    /// Whether the smoothed iterations keep their Krylov basis in the first hidden layer's space
    /// (``firstLayerKrylovApplies(decoder:smoothedKrylovDimension:lastStep:)``): each vector
    /// qₐ = sₐ·W₁ᵀ is held as sₐ (h₁ long), orthonormal in the inner product of P = W₁ᵀW₁
    /// (⟨s, s′⟩ = s·P·s′ᵀ = q·q′ᵀ), so a product H̃q costs s·P (h₁²) where it cost q·W₁ and the
    /// backward pass's last ·W₁ᵀ (2|z|·h₁), and δ = (Σ cₐsₐ)·W₁ᵀ is one such product per
    /// iteration. The same subspace, M and b as the basis in ℝ^|z| up to rounding. The
    /// initializer's `smoothedKrylovFirstLayer` (default true) asks for it; it applies only
    /// where it saves work, and not with a ``krylovPreconditioner`` (which acts in ℝ^|z|).
    public let smoothedKrylovInFirstLayer: Bool
    /// A preconditioner C (|z| × |z|, symmetric positive definite) for the Krylov solves whose
    /// basis is in ℝ^|z| (not ``smoothedKrylovInFirstLayer``): their subspace is then
    /// span{Cg, (CH̃)Cg, …, (CH̃)ᵏ⁻¹Cg, p} instead of span{g, H̃g, …, H̃ᵏ⁻¹g, p}; M = QᵀH̃Q, b = Qᵀg
    /// and the damped solve in it are unchanged. With C ≈ H̄⁻¹, H̄ the mean curvature of points
    /// like these (``curvaturePreconditioner(decoder:points:starts:ridge:rows:)``), CH̃
    /// has its eigenvalues nearer together, so fewer vectors span the step: on the digits at
    /// |z| = 32, 6 preconditioned vectors reach SVI's level in as many iterations as 8 plain ones
    /// (`docs/RESULTS.md`, twenty-seventh session). One |z| × |z| product per vector. nil: none.
    public let krylovPreconditioner: [Float]?
    /// Linear decoders: take Gauss-Newton's step undamped and exactly, as an affine map of x
    /// (``ExactLinearStep``), instead of damped iterations; with the reconstruction objective
    /// and a singular H (e.g. |z| > d), the minimum-norm step from each point's start (one
    /// step, ``ExactLinearStep/minimumNormRidge``). false: the iterative path.
    public let exactLinearStep: Bool
    /// Whether ``refine(_:start:maxSteps:seed:recordCurve:observer:)`` takes the exact step
    /// whose result does not depend on the start (the start is then only the curve's first
    /// point): a linear decoder whose H = WΛWᵀ + βI is not nearly singular
    /// (``ExactLinearStep/minimumPivotRatio``; it is singular for |z| > d with reconstruction,
    /// where the exact step from the start is taken instead, which needs the start). Checked on
    /// the decoder's current weights (G and one Cholesky, O(|z|²d)).
    public var takesExactLinearStep: Bool {
        guard exactLinearStep && decoder.network.layerCount == 1 else { return false }
        prepareGram()
        return ExactLinearStep.factor(gram: gram.pointer, latent: decoder.latent, beta: objectiveWeights().beta) != nil
    }

    let runner: ChunkRunner
    let workspaces: [GaussNewtonWorkspace]
    /// Form the Jacobian products per point from active ReLU units only (else dense, masked, batched).
    var compactActiveUnits = true
    /// Keep each point's linearization inputs at its current μ (``LinearizationCache``) so
    /// iterations after the first skip the forward pass at μ. Results are the same bit for bit
    /// either way (tested); tests turn it off to compare. Used with the compact path and with
    /// linear decoders.
    var reuseForwardPass = true
    /// ReLU decoders solve in SIMD lanes up to this |z| (at most the workspace's
    /// ``GaussNewtonWorkspace/laneLatentLimit``), one point at a time above it; tests lower it
    /// to compare the two paths.
    var laneLatentLimit = GaussNewtonWorkspace.laneLatentLimit
    let curveStepper: LatentStepper
    /// G = W_L Λ W_Lᵀ (h × h) and the scratch W_L Λ (h × d).
    let gram: FloatBuffer
    let scaledLastWeights: FloatBuffer
    /// F = W_L Λ^{1/2} (h × d), G = F·Fᵀ: the dense products' factor when d < h
    /// (``denseProducts(_:count:workspace:)``).
    let rootScaledLastWeights: FloatBuffer
    /// Whether H̃ is formed through F as C·Cᵀ (a ReLU decoder with d < h), in the dense and the
    /// active-unit products.
    let usesGramFactor: Bool
    /// Whether F is formed: a ReLU decoder with d < h (``usesGramFactor``) or d < |z| (the
    /// data-space solve's C = A·F).
    let formsRootFactor: Bool
    /// Solve a ReLU decoder's damped systems through the data space where d < |z|
    /// (``solveInDataSpace(gradient:pendingCount:beta:state:workspace:)``: d × d systems
    /// instead of |z| × |z|, and H̃ never formed). Tests turn it off to compare with the primal solve.
    var dataSpaceSolve = true
    /// Whether this refinement's trials solve through the data space: ``dataSpaceSolve``, a ReLU
    /// decoder with d < |z| ≤ the lanes' limit, the exact (not Krylov) solve, and λ, λ₀ > 0 (so
    /// that E = β + λ·(H̃ⱼⱼ + β) + λ₀ stays positive: with both 0 the primal solve's pivot
    /// freezing handles the singular system, which the Woodbury form cannot).
    var solvesInDataSpace: Bool {
        dataSpaceSolve && decoder.network.layerCount > 1 && decoder.dataWidth < decoder.latent && krylovDimension == 0
            && decoder.latent <= min(laneLatentLimit, GaussNewtonWorkspace.laneLatentLimit) && damping > 0 && absoluteDamping > 0
    }
    /// The default ``smoothedKrylovDimension`` for a latent size |z| and data width d: 0 below
    /// |z| = 32 (the exact solve; at |z| = 16 it costs less than 4 Krylov products); from
    /// |z| = 32 on, 8 vectors where the latent is wider than the data (d < |z|), else
    /// min(|z|/4, 16). Measured on the digits models (`docs/RESULTS.md`, twenty-third and
    /// twenty-fourth sessions), on the test rows and on the validation rows alike: |z| = 64
    /// Arch2 (d = 64) needs 16 to keep its 5 steps to SVI's level (8: 8 steps); |z| = 32 reaches
    /// it in the same steps with 8 (4: a step or two more at Arch3); at |z| = 128 > d, 8 reaches
    /// it in as many steps as 16 (Arch2: 4, Arch3: 3) at about half the time.
    /// With a ``krylovPreconditioner`` (`preconditioned`), where d ≥ |z|: 3|z|/16 (6 at |z| = 32),
    /// which reached SVI's level on the digits |z| = 32 models' test and validation rows in as
    /// many iterations as 8 plain vectors (`docs/RESULTS.md`, twenty-seventh session).
    public static func defaultSmoothedKrylovDimension(latent: Int, dataWidth: Int, preconditioned: Bool = false) -> Int {
        let k = min(latent / 4, 16)
        guard k >= 8 else { return 0 }
        if dataWidth < latent { return 8 }
        return preconditioned ? min(3 * latent / 16, k) : k
    }

    /// Whether `pesvi` builds a Krylov preconditioner for a decoder of this shape by default
    /// (``krylovPreconditioner``, from the model's validation rows): where the smoothed
    /// iterations solve in Krylov subspaces with the basis in ℝ^|z| (d ≥ |z|) of fewer than 16
    /// vectors, i.e. 32 ≤ |z| < 64. Measured on the digits (`docs/RESULTS.md`, twenty-seventh
    /// session): at |z| = 32, Arch2 and Arch3, 6 preconditioned vectors keep the steps of 8
    /// plain ones on the test and the validation rows; at |z| = 64 Arch2 its validation rows
    /// stalled above SVI's level with it (12 or 16 vectors), where 16 plain ones reach it.
    public static func defaultKrylovPreconditioned(latent: Int, dataWidth: Int) -> Bool {
        dataWidth >= latent && latent >= 32 && latent < 64
    }

    /// The default ``lastSmoothedKrylovDimension`` for smoothed iterations of `k` Krylov vectors:
    /// 2k/3 with a ``krylovPreconditioner`` (4 of 6 at |z| = 32), else k. Measured with the
    /// NumPy probe on the digits |z| = 32 models' test and validation rows (`docs/RESULTS.md`,
    /// twenty-ninth session): the last of four smoothed iterations with 4 preconditioned vectors
    /// ends as low as with 6 (Arch3 0.03153 against 0.03158 on the test rows, 0.03742 against
    /// 0.03762 on the validation rows; Arch2 reaches SVI's level at the third iteration either
    /// way), where fewer vectors in any earlier iteration miss the level at Arch3.
    public static func defaultLastSmoothedKrylovDimension(_ k: Int, preconditioned: Bool) -> Int {
        preconditioned ? max(1, 2 * k / 3) : k
    }

    /// The default ``smoothedKrylovLastStep``: true unless the latent is wider than the data
    /// (d < |z|). There J is d × |z| and the Krylov vectors g, H̃g, … = JᵀΛ(…) all lie in
    /// range(Jᵀ), a d-dimensional subspace, while p, the step taken on the last, smoother
    /// objective, has a part in J's null space that changes nothing in the linearized fit; its
    /// own product (J_h p through the hidden layers, about 5 % of the iteration's multiply-adds
    /// at digits |z| = 128) bought no step on the digits models' test or validation rows at
    /// |z| = 128 (`docs/RESULTS.md`, twenty-fifth session). Where d ≥ |z| it is kept: without it
    /// digits |z| = 64 Arch2 never reached SVI's level on its validation rows. With a
    /// ``krylovPreconditioner`` (`preconditioned`) it is left out too: at digits |z| = 32 the
    /// preconditioned subspace without it reached SVI's level in the same steps on the test and
    /// the validation rows (Arch2 3, Arch3 4), and its image product and basis vector cost about
    /// 7 % of the run (`docs/RESULTS.md`, twenty-seventh session).
    public static func defaultSmoothedKrylovLastStep(latent: Int, dataWidth: Int, preconditioned: Bool = false) -> Bool {
        dataWidth >= latent && !preconditioned
    }

    /// The smoothed iterations' Krylov dimension for a `requested` one: itself when given, else
    /// 0 with a Krylov solve throughout (`krylovDimension` > 0, whose solve then takes the
    /// smoothed iterations too), else ``defaultSmoothedKrylovDimension(latent:dataWidth:)``.
    public static func smoothedKrylovDimension(_ requested: Int?, krylovDimension: Int, latent: Int, dataWidth: Int,
                                               preconditioned: Bool = false) -> Int {
        requested ?? (krylovDimension > 0 ? 0 : defaultSmoothedKrylovDimension(latent: latent, dataWidth: dataWidth, preconditioned: preconditioned))
    }

    /// The Krylov dimension of an iteration (smoothed or on the ReLU decoder), 0 for the exact
    /// solve: ``smoothedKrylovDimension`` in smoothed iterations where it is set, else
    /// ``krylovDimension``; 0 wherever the Krylov solve does not apply (``krylovApplies``).
    func krylovDimension(smoothed: Bool) -> Int {
        guard krylovApplies else { return 0 }
        return smoothed && smoothedKrylovDimension > 0 ? smoothedKrylovDimension : krylovDimension
    }
    /// W_Lᵀ (d × h), so Λr·W_Lᵀ is a product with an untransposed right operand.
    let lastWeightsTransposed: FloatBuffer
    /// The Krylov products' fixed right operands packed once per call (``prepareShared()``), as
    /// the hidden layers' weights are (``PackedWeights``): W_Lᵀ, G, and F and Fᵀ where the
    /// products go through F (``krylovThroughRoot``). nil where no iteration solves in a Krylov
    /// subspace (``krylovApplies`` false, or both Krylov dimensions 0).
    let krylovOperands: KrylovOperands?
    /// W₁ᵀ (h₁ × |z|; one element when the decoder is linear): row c is unit c's column of W₁,
    /// so the compact path reads A₁ᵀ = W₁[:, S₁]ᵀ as rows, without a copy.
    let firstWeightsTransposed: FloatBuffer
    /// Λ per data dimension.
    let precision: FloatBuffer

    public init(decoder: GaussianDecoder, threads: Int = 1, chunkRows: Int = 64, damping: Double = 1e-3,
                tolerance: Double = 1e-4, logVarianceFloor: Float = GaussNewtonRefinement.defaultLogVarianceFloor, absoluteDamping: Double = 1e-9,
                minimumDamping: Double = 1e-6, maximumDamping: Double = 1e12, curveSamples: Int = 1,
                trialsPerIteration: Int = 1, acceptanceRatio: Double = 0.1, exactLinearStep: Bool = true,
                smoothing: GaussNewtonSmoothing = .standard, krylovDimension: Int = 0, smoothedKrylovDimension: Int? = nil,
                smoothedKrylovLastStep: Bool? = nil, smoothedKrylovFirstLayer: Bool = true, krylovPreconditioner: [Float]? = nil,
                lastSmoothedKrylovDimension: Int? = nil) {
        let smoothedKrylovDimension = GaussNewtonRefinement.smoothedKrylovDimension(smoothedKrylovDimension, krylovDimension: krylovDimension,
                                                                                   latent: decoder.latent, dataWidth: decoder.dataWidth,
                                                                                   preconditioned: krylovPreconditioner != nil)
        precondition(krylovDimension >= 0 && smoothedKrylovDimension >= 0,
                     "GaussNewtonRefinement: Krylov dimensions must be ≥ 0, got \(krylovDimension) and \(smoothedKrylovDimension)")
        precondition(threads >= 1 && chunkRows >= 1 && curveSamples >= 1 && trialsPerIteration >= 1,
                     "GaussNewtonRefinement: threads, chunkRows, curveSamples, trialsPerIteration must be ≥ 1")
        precondition(damping >= 0 && absoluteDamping >= 0 && tolerance >= 0 && acceptanceRatio >= 0 && acceptanceRatio < 1,
                     "GaussNewtonRefinement: damping and tolerance must be ≥ 0, the acceptance ratio in [0, 1)")
        self.decoder = decoder
        self.threads = threads
        self.chunkRows = chunkRows
        self.damping = damping
        self.absoluteDamping = absoluteDamping
        self.minimumDamping = minimumDamping
        self.maximumDamping = maximumDamping
        self.tolerance = tolerance
        self.logVarianceFloor = logVarianceFloor
        self.curveSamples = curveSamples
        self.trialsPerIteration = trialsPerIteration
        self.acceptanceRatio = acceptanceRatio
        self.exactLinearStep = exactLinearStep
        self.smoothing = smoothing
        self.krylovDimension = krylovDimension
        let smoothedK = smoothing.isActive ? smoothedKrylovDimension : 0
        self.smoothedKrylovDimension = smoothedK
        precondition(lastSmoothedKrylovDimension.map { $0 >= 1 } ?? true,
                     "GaussNewtonRefinement: the last smoothed iteration's Krylov dimension must be ≥ 1, got \(lastSmoothedKrylovDimension!)")
        self.lastSmoothedKrylovDimension = min(smoothedK, lastSmoothedKrylovDimension
            ?? GaussNewtonRefinement.defaultLastSmoothedKrylovDimension(smoothedK, preconditioned: krylovPreconditioner != nil))
        self.smoothedKrylovLastStep = smoothedKrylovLastStep
            ?? GaussNewtonRefinement.defaultSmoothedKrylovLastStep(latent: decoder.latent, dataWidth: decoder.dataWidth,
                                                                  preconditioned: krylovPreconditioner != nil)
        // A preconditioner acts on the basis in ℝ^|z|: with one, the basis stays there.
        let firstLayer = smoothedKrylovFirstLayer && krylovPreconditioner == nil
            && GaussNewtonRefinement.firstLayerKrylovApplies(decoder: decoder, smoothedKrylovDimension: smoothedK, lastStep: self.smoothedKrylovLastStep)
        smoothedKrylovInFirstLayer = firstLayer
        let L = decoder.latent
        precondition(krylovPreconditioner.map { $0.count == L * L && Elementwise.allFinite($0, count: L * L) } ?? true,
                     "GaussNewtonRefinement: the Krylov preconditioner must be |z| × |z| = \(L * L) finite values")
        self.krylovPreconditioner = krylovPreconditioner
        runner = ChunkRunner(threads: threads, chunkRows: chunkRows)
        let packed = PackedWeights(network: decoder.network)
        packedWeights = packed
        workspaces = (0..<threads).map { _ in
            GaussNewtonWorkspace(decoder: decoder, maxPoints: chunkRows, packedWeights: packed, krylovDimension: krylovDimension,
                                 smoothedKrylovDimension: smoothedK, smoothedKrylovInFirstLayer: firstLayer)
        }
        curveStepper = LatentStepper(decoder: decoder, threads: threads, chunkRows: chunkRows, samples: curveSamples)
        let net = decoder.network
        let h = net.widths[net.layerCount - 1], d = net.outputWidth
        gram = FloatBuffer(count: h * h)
        scaledLastWeights = FloatBuffer(count: h * d)
        usesGramFactor = net.layerCount > 1 && d < h
        formsRootFactor = net.layerCount > 1 && (d < h || d < decoder.latent)
        rootScaledLastWeights = FloatBuffer(count: formsRootFactor ? h * d : 1)
        lastWeightsTransposed = FloatBuffer(count: h * d)
        firstWeightsTransposed = FloatBuffer(count: net.layerCount > 1 ? decoder.latent * net.widths[1] : 1)
        precision = FloatBuffer(count: d)
        // Only where some iteration may solve in a Krylov subspace.
        krylovOperands = GaussNewtonRefinement.krylovApplies(to: decoder) && (krylovDimension > 0 || smoothedK > 0)
            ? KrylovOperands(h: h, d: d, throughRoot: formsRootFactor && d < h, lastWeightsTransposed: lastWeightsTransposed,
                             root: rootScaledLastWeights, gram: gram,
                             firstLayerOf: firstLayer ? net : nil, preconditioner: krylovPreconditioner, preconditionedNetwork: net)
            : nil
    }

    /// Refines the posteriors `start` (μ and log σ², n × |z| each) of the points `x` for up
    /// to `maxSteps` iterations. `seed` only drives the Monte-Carlo estimate in `curve`; the
    /// refinement itself is deterministic. `recordCurve: false` skips that estimate (one pass
    /// over every point per iteration, outside `seconds` but not free): `curve` is then empty
    /// and everything else is the same.
    public func refine(_ x: Dataset, start: (mu: [Float], logVariance: [Float]), maxSteps: Int, seed: UInt64,
                       recordCurve: Bool = true, observer: RefinementObserver? = nil) -> GaussNewtonResult {
        let L = decoder.latent, d = decoder.dataWidth, n = x.rows
        precondition(x.cols == d && start.mu.count == n * L && start.logVariance.count == n * L,
                     "refine: data \(x.rows)×\(x.cols), start \(start.mu.count)/\(start.logVariance.count) values, decoder \(L)→\(d)")
        let table = PosteriorTable(mu: start.mu, logVariance: start.logVariance, latent: L)
        let clock = ContinuousClock()
        func seconds(_ t: ContinuousClock.Duration) -> Double { Double(t.components.seconds) + Double(t.components.attoseconds) * 1e-18 }
        var elapsed = 0.0
        let t0 = clock.now
        packedWeights.refresh()  // the decoder's current weights (timed: part of the call's work)
        prepareGram()
        if maxSteps > 0 && exactLinearStep && decoder.network.layerCount == 1 {
            if let step = ExactLinearStep(decoder: decoder, gram: gram.pointer, precision: precision.pointer, beta: objectiveWeights().beta,
                                          logVarianceFloor: logVarianceFloor) {
                let (mu, lv) = step.apply(x, threads: threads)
                elapsed += seconds(clock.now - t0)
                return exactResult(x, start: table, mu: mu, logVariance: lv, seconds: elapsed, seed: seed, recordCurve: recordCurve,
                                   observer: observer)
            }
            // Reconstruction with a singular H (e.g. |z| > d): the minimum-norm step from the start.
            if objectiveWeights().beta == 0,
               let step = ExactLinearStep(decoder: decoder, gram: gram.pointer, precision: precision.pointer, beta: 0,
                                          logVarianceFloor: logVarianceFloor, ridge: ExactLinearStep.minimumNormRidge) {
                // The start's log σ² is not read: reconstruction puts it at the floor.
                let (mu, lv) = step.apply(x, start: table.mu.pointer, threads: threads)
                elapsed += seconds(clock.now - t0)
                var r = exactResult(x, start: table, mu: mu, logVariance: lv, seconds: elapsed, seed: seed, recordCurve: recordCurve,
                                    observer: observer)
                r.usedStart = true
                return r
            }
        }
        prepareTransposedWeights()
        prepareKrylovOperands()
        elapsed += seconds(clock.now - t0)

        let net = decoder.network
        // The Krylov solve in every iteration (no cache: each takes a fresh forward pass), in some.
        let krylov = solvesInKrylovSubspace, someKrylov = krylov || krylovDimension(smoothed: true) > 0
        let state = PointState(count: n, damping: damping,
                               cache: !krylov && reuseForwardPass && (compactActiveUnits || net.layerCount == 1)
                                   ? LinearizationCache(count: n, hiddenWidths: Array(net.widths.dropFirst().dropLast()),
                                                        projectedWidth: net.widths[net.layerCount - 1])
                                   : nil,
                               hiddenLayers: net.layerCount - 1, lastSteps: someKrylov ? decoder.latent : 0)
        defer { state.deallocate() }
        // P(μ) of every point at the start, the guard's first reference: the first iteration's
        // linearization measures it (the same forward pass at the same μ), so a separate pass
        // is needed only when there is no iteration.
        if maxSteps <= 0 {
            let t1 = clock.now
            runner.run(rows: n) { t, _, s, m in
                let ws = self.workspaces[t]
                for k in 0..<m { ws.index[k] = s + k }
                self.measureChunk(x, mu: table.mu.pointer, count: m, workspace: ws)
                for k in 0..<m { state.objective[s + k] = ws.before[k] }
            }
            elapsed += seconds(clock.now - t1)
        }
        let perN = 1 / Double(max(n, 1))
        var curve = recordCurve ? [curveStepper.evaluate(x, table, seed: seed, step: 0) * perN] : []
        var iterations = 0
        var meanStepsAfter: [Double] = [], secondsAfter: [Double] = []
        // The points still going, split afresh each iteration into equal chunks (a point's
        // iteration does not depend on which points share its chunk; tested), so both threads
        // get equal work however unevenly the finished points are spread over the rows.
        let going = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        defer { going.deallocate() }
        while iterations < maxSteps {
            let ti = clock.now
            var count = 0
            for i in 0..<n where !state.finished[i] { going[count] = i; count += 1 }
            if count == 0 { break }  // every point has finished
            let points = UnsafePointer(going)
            ChunkRunner(threads: threads, chunkRows: balancedChunkRows(points: count)).run(rows: count) { t, _, s, m in
                self.iterateChunk(x, table, state, workspace: self.workspaces[t], points: points + s, count: m)
            }
            elapsed += seconds(clock.now - ti)
            iterations += 1
            secondsAfter.append(elapsed)
            var taken = 0
            for i in 0..<n { taken += Int(state.steps[i]) }
            meanStepsAfter.append(Double(taken) * perN)
            if recordCurve { curve.append(curveStepper.evaluate(x, table, seed: seed, step: 0) * perN) }
            observer?(iterations, table.mu.pointer, table.logVariance.pointer)
        }
        // A run that ended inside the smoothing leaves the points that were still going without a
        // measured P(μ) (NaN: the next iteration would have measured it): measured here on the
        // ReLU decoder, for the result only (not timed).
        if smoothing.isActive && net.layerCount > 1 && (0..<n).contains(where: { state.objective[$0].isNaN }) {
            runner.run(rows: n) { t, _, s, m in
                let ws = self.workspaces[t]
                var count = 0
                for k in 0..<m where state.objective[s + k].isNaN { ws.index[count] = s + k; count += 1 }
                guard count > 0 else { return }
                self.measureChunk(x, mu: table.mu.pointer, count: count, workspace: ws)
                for k in 0..<count { state.objective[ws.index[k]] = ws.before[k] }
            }
        }
        var steps = [Int](repeating: 0, count: n)
        var total = 0, most = 0, rejected = 0
        for i in 0..<n { steps[i] = Int(state.steps[i]); total += steps[i]; most = max(most, steps[i]); rejected += Int(state.rejected[i]) }
        return GaussNewtonResult(mu: table.mu.array, logVariance: table.logVariance.array, curve: curve,
                                 objectiveAtMean: Array(UnsafeBufferPointer(start: state.objective, count: n)),
                                 stepsPerPoint: steps, rejectedSteps: rejected, meanSteps: Double(total) * perN, maxSteps: most,
                                 iterations: iterations, seconds: elapsed, meanStepsAfter: meanStepsAfter, secondsAfter: secondsAfter)
    }

    /// The result of the exact linear step (one iteration for every point, no rejection):
    /// `curve` from the start to the step (recording only), P(μ) measured at the step's μ
    /// outside `seconds`.
    func exactResult(_ x: Dataset, start: PosteriorTable, mu: [Float], logVariance lv: [Float], seconds: Double, seed: UInt64,
                     recordCurve: Bool, observer: RefinementObserver?) -> GaussNewtonResult {
        let n = x.rows, L = decoder.latent
        let table = PosteriorTable(mu: mu, logVariance: lv, latent: L)
        let perN = 1 / Double(max(n, 1))
        let curve = recordCurve ? [curveStepper.evaluate(x, start, seed: seed, step: 0) * perN,
                                   curveStepper.evaluate(x, table, seed: seed, step: 0) * perN] : []
        let objective = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { objective.deallocate() }
        runner.run(rows: n) { t, _, s, m in
            let ws = self.workspaces[t]
            for k in 0..<m { ws.index[k] = s + k }
            self.measureChunk(x, mu: table.mu.pointer, count: m, workspace: ws)
            for k in 0..<m { objective[s + k] = ws.before[k] }
        }
        observer?(1, table.mu.pointer, table.logVariance.pointer)
        var r = GaussNewtonResult(mu: mu, logVariance: lv, curve: curve, objectiveAtMean: Array(UnsafeBufferPointer(start: objective, count: n)),
                                 stepsPerPoint: [Int](repeating: 1, count: n), rejectedSteps: 0, meanSteps: n > 0 ? 1 : 0,
                                 maxSteps: n > 0 ? 1 : 0, iterations: 1, seconds: seconds, meanStepsAfter: [n > 0 ? 1 : 0],
                                 secondsAfter: [seconds])
        r.usedStart = false
        r.exactStep = true
        return r
    }

    /// H̃ = JᵀΛJ (n × |z| × |z|), JᵀΛr (n × |z|) and P(μ) (n) at the means `mu` (n × |z|),
    /// computed exactly as the refinement does (single-threaded; for tests and diagnostics).
    /// `temperatures` (n × hidden layers): of the smoothed decoder (``GaussNewtonSmoothing``).
    func linearization(_ x: Dataset, mu: [Float], temperatures: [Float]? = nil) -> (hessian: [Float], gradient: [Float], objective: [Double]) {
        let L = decoder.latent, n = x.rows, hiddenCount = decoder.network.layerCount - 1
        precondition(mu.count == n * L, "linearization: \(mu.count) means for \(n) points of latent \(L)")
        precondition(temperatures.map { $0.count == n * hiddenCount && hiddenCount > 0 } ?? true, "linearization: n × hidden layers temperatures")
        prepareShared()
        let ws = workspaces[0]
        var hess = [Float](), grad = [Float](), obj = [Double]()
        mu.withUnsafeBufferPointer { mp in
            var s = 0
            while s < n {
                let m = min(chunkRows, n - s)
                for k in 0..<m { ws.index[k] = s + k }
                if let temperatures {
                    for e in 0..<(m * hiddenCount) { ws.temperatures.pointer[e] = temperatures[s * hiddenCount + e] }
                }
                linearizeChunk(x, mu: mp.baseAddress!, count: m, workspace: ws, smoothed: temperatures != nil)
                if decoder.network.layerCount == 1 {
                    for _ in 0..<m { hess.append(contentsOf: UnsafeBufferPointer(start: gram.pointer, count: L * L)) }
                } else if solvesInDataSpace {
                    // Only C (and H̃'s diagonal) was formed: H̃ = C·Cᵀ, summed in Double.
                    let d = decoder.dataWidth, c = ws.timesGram.pointer
                    for k in 0..<m {
                        for i in 0..<L {
                            for j in 0..<L {
                                var v = 0.0
                                for e in 0..<d { v += Double(c[(k * L + i) * d + e]) * Double(c[(k * L + j) * d + e]) }
                                hess.append(Float(v))
                            }
                        }
                    }
                } else {
                    hess.append(contentsOf: UnsafeBufferPointer(start: ws.hessian.pointer, count: m * L * L))
                }
                grad.append(contentsOf: UnsafeBufferPointer(start: ws.gradient.pointer, count: m * L))
                obj.append(contentsOf: UnsafeBufferPointer(start: ws.before, count: m))
                s += m
            }
        }
        return (hess, grad, obj)
    }

    /// Λ, G = W_L Λ W_Lᵀ and the transposed weights the Jacobian products read, for the
    /// decoder's current weights and noise model.
    func prepareShared() {
        prepareGram()
        prepareTransposedWeights()
        prepareKrylovOperands()
    }

    /// Packs ``krylovOperands`` (present where some iteration may solve in a Krylov subspace)
    /// from the current W_Lᵀ, G and F (after ``prepareGram()`` and ``prepareTransposedWeights()``).
    func prepareKrylovOperands() {
        krylovOperands?.repack()
    }

    /// Whether a basis in the first hidden layer's space (``smoothedKrylovInFirstLayer``) can
    /// apply and saves work: the Krylov solve applies (``krylovApplies(to:)``), the smoothed
    /// iterations solve in Krylov subspaces (`smoothedKrylovDimension` > 0) without the last
    /// step (every vector g, H̃g, … then has the form s·W₁ᵀ; p need not), and h₁ < 2|z|, so that
    /// P's h₁² multiply-adds a product are fewer than W₁'s and W₁ᵀ's 2|z|·h₁ (on the digits:
    /// |z| = 128, h₁ = 128; at |z| ≤ 64, h₁ = 2|z| or 128 ≥ 2|z|, it would save nothing).
    public static func firstLayerKrylovApplies(decoder: GaussianDecoder, smoothedKrylovDimension: Int, lastStep: Bool) -> Bool {
        krylovApplies(to: decoder) && smoothedKrylovDimension > 0 && !lastStep && decoder.network.widths[1] < 2 * decoder.latent
    }

    /// W_Lᵀ and W₁ᵀ, as the Jacobian products read them; the cached factors forgotten.
    func prepareTransposedWeights() {
        let net = decoder.network, d = net.outputWidth, h = net.widths[net.layerCount - 1]
        let w = UnsafePointer(net.parameters.pointer + net.weightOffsets[net.layerCount - 1])
        let wt = lastWeightsTransposed.pointer
        for a in 0..<h { for c in 0..<d { wt[c * h + a] = w[a * d + c] } }
        if net.layerCount > 1 {
            let L = decoder.latent, h1 = net.widths[1], w1 = net.parameters.pointer + net.weightOffsets[0]
            let w1t = firstWeightsTransposed.pointer
            for j in 0..<L { for c in 0..<h1 { w1t[c * L + j] = w1[j * h1 + c] } }
        }
        for ws in workspaces { ws.forgetFactors() }  // G changed: cached factors are stale
    }

    /// Λ and G = W_L Λ W_Lᵀ alone (what the exact linear step needs), and where d < h (ReLU
    /// decoders) its factor F = W_L Λ^{1/2}.
    func prepareGram() {
        let net = decoder.network, d = net.outputWidth, h = net.widths[net.layerCount - 1]
        let prec = precision.pointer
        switch decoder.objective.kind {
        case .reconstruction:
            Elementwise.fill(prec, with: 1, count: d)
        case .elbo:
            switch decoder.objective.likelihood {
            case .fixedVariance(let s): Elementwise.fill(prec, with: Float(1 / (Double(s) * Double(s))), count: d)
            case .learnedVariance: VectorMath.expScaled(decoder.logNoiseVariance!.pointer, scale: -1, prec, count: d)
            }
        }
        let w = UnsafePointer(net.parameters.pointer + net.weightOffsets[net.layerCount - 1])
        let wl = scaledLastWeights.pointer
        for a in 0..<h { for c in 0..<d { wl[a * d + c] = w[a * d + c] * prec[c] } }
        gemm(.none, .transpose, m: h, n: h, k: d, alpha: 1, a: wl, lda: d, b: w, ldb: d, beta: 0, c: gram.pointer, ldc: h)
        if formsRootFactor {
            let wr = rootScaledLastWeights.pointer
            for c in 0..<d {
                let root = prec[c].squareRoot()
                for a in 0..<h { wr[a * d + c] = w[a * d + c] * root }
            }
        }
    }

    /// Rows per chunk for an iteration over `points` points still going: at most `chunkRows`,
    /// as many chunks as that needs rounded up to a multiple of the threads (so each thread gets
    /// the same number), but no chunk under ``minimumChunkRows`` points (below that a second
    /// thread's wake-up costs more than it saves), and the points spread evenly over the chunks,
    /// each chunk's rows rounded up to whole lane groups of eight (within `chunkRows`), so that
    /// only the last chunk has a short group: 180 points in chunks of 64, 64 and 52 rather than
    /// three of 60 (the solves in SIMD lanes and the 8-row AVX-512 micro-kernel waste a half
    /// group per chunk otherwise; 3–8 % less time at digits |z| = 32 to 128, twenty-seventh
    /// session). A point's iteration does not depend on its chunk.
    func balancedChunkRows(points: Int) -> Int {
        let needed = (points + chunkRows - 1) / chunkRows
        let even = (needed + threads - 1) / threads * threads
        let chunks = max(needed, min(even, points / Self.minimumChunkRows))
        let rows = (points + chunks - 1) / max(chunks, 1)
        // Rounded up to whole lane groups (within chunkRows): one short group per iteration at most.
        let lanes = GaussNewtonWorkspace.lanes
        return min(max(chunkRows, 1), (rows + lanes - 1) / lanes * lanes)
    }
    /// The fewest points a chunk is split down to for balance (one SIMD lane group).
    static let minimumChunkRows = GaussNewtonWorkspace.lanes

    /// One LM iteration on the unfinished ones of the `count` points listed at `points` (at
    /// most `chunkRows`).
    func iterateChunk(_ x: Dataset, _ table: PosteriorTable, _ st: PointState, workspace ws: GaussNewtonWorkspace,
                      points: UnsafePointer<Int>, count: Int) {
        let net = decoder.network
        let L = decoder.latent, d = decoder.dataWidth
        let idx = ws.index
        var m = 0
        for k in 0..<count where !st.finished[points[k]] { idx[m] = points[k]; m += 1 }
        if m == 0 { return }
        let mu = table.mu.pointer, lv = table.logVariance.pointer
        let z = ws.z.pointer, zTrial = ws.zTrial.pointer, lvTrial = ws.lvTrial.pointer
        let prec = precision.pointer
        let (perD, beta, constant) = objectiveWeights()
        let isELBO = decoder.objective.kind != .reconstruction
        let linear = net.layerCount == 1
        let cache = st.cache
        // Smoothed (``GaussNewtonSmoothing``): the chunk's unfinished points all take their
        // iteration t here (each takes one per call), each at its own temperatures; the
        // reference P(μ) is measured afresh at them.
        let hiddenCount = net.layerCount - 1
        let smoothed = !linear && smoothing.isActive && (0..<m).contains { Int(st.steps[idx[$0]]) < smoothing.iterations }
        let krylovK = krylovDimension(smoothed: smoothed), krylov = krylovK > 0
        let kw = !krylov ? nil : krylovK == krylovDimension ? ws.krylov : ws.smoothedKrylov
        if smoothed {
            if (0..<m).contains(where: { st.spreads[idx[$0] * hiddenCount].isNaN }) { measureSpreads(mu: mu, count: m, state: st, workspace: ws) }
            let temps = ws.temperatures.pointer
            for k in 0..<m {
                let i = idx[k], c = smoothing.multiplier(iteration: Int(st.steps[i]))
                for l in 0..<hiddenCount { temps[k * hiddenCount + l] = c * st.spreads[i * hiddenCount + l] }
            }
        }
        if let kw {
            // Krylov solve: a fresh forward pass every iteration (no cache), then the basis.
            measureChunk(x, mu: mu, count: m, workspace: ws, smoothed: smoothed)
            // The smoothed points of a chunk are in step (none stops during the smoothing).
            // (Only the smoothed solve's own dimension is cut, not a Krylov solve that takes every iteration.)
            let lastSmoothed = smoothed && smoothedKrylovDimension > 0 && (0..<m).allSatisfy { Int(st.steps[idx[$0]]) == smoothing.iterations - 1 }
            krylovLinearize(rows: m, smoothed: smoothed, state: st, workspace: ws, krylov: kw,
                            vectors: lastSmoothed ? lastSmoothedKrylovDimension : kw.dimension)
            for k in 0..<m { st.objective[idx[k]] = ws.before[k] }
        } else if smoothed {
            linearizeChunk(x, mu: mu, count: m, workspace: ws, smoothed: true)
            for k in 0..<m { st.objective[idx[k]] = ws.before[k] }
        } else if let cache, (0..<m).allSatisfy({ cache.valid[idx[$0]] }) {
            restoreLinearization(mu: mu, count: m, cache: cache, workspace: ws)
        } else {
            linearizeChunk(x, mu: mu, count: m, workspace: ws)
            // First iteration: the forward pass at μ just made is the guard's starting P(μ).
            for k in 0..<m where st.objective[idx[k]].isNaN { st.objective[idx[k]] = ws.before[k] }
            if let cache {
                let u = linear ? UnsafePointer(ws.gradient.pointer) : UnsafePointer(ws.projected.pointer)
                for k in 0..<m { cache.store(point: idx[k], row: k, activations: ws.network.activations, projected: u) }
            }
        }
        // A linear decoder's H̃ = G is every point's (hessianStride 0), and so is the damped
        // system for a given λ: it is factored once per λ and reused (ws.factorSlot(for:)), and
        // the points that share a λ are solved together (solveShared).
        let hess = linear ? UnsafePointer(gram.pointer) : UnsafePointer(ws.hessian.pointer)
        let hessianStride = linear ? 0 : L * L
        let grad = ws.gradient.pointer
        let sharedFinite = !linear || Elementwise.allFinite(hess, count: L * L)
        // The data-space solve reads C (|z| × d per point, in ws.timesGram) and H̃'s diagonal.
        let dataSpace = !linear && !krylov && solvesInDataSpace
        @inline(__always) func finiteCurvature(_ k: Int) -> Bool {
            if linear || krylov { return true }
            if dataSpace { return Elementwise.allFinite(ws.timesGram.pointer + k * L * d, count: L * d) }
            return Elementwise.allFinite(hess + k * L * L, count: L * L)
        }

        // 3. Per point: skip non-finite linearizations; the rest are pending a trial.
        let sys = ws.system, pending = ws.pending
        let floorLV = logVarianceFloor
        let sigmaScale = isELBO ? 0.5 : perD  // S's weight on Σ σ² H̃ⱼⱼ
        var pendingCount = 0
        for k in 0..<m {
            let i = idx[k]
            st.steps[i] += 1
            let finiteGradient = kw.map { $0.finiteGradient[k] } ?? Elementwise.allFinite(grad + k * L, count: L)
            if !sharedFinite || !finiteCurvature(k) || !finiteGradient {
                st.finished[i] = true
                continue
            }
            pending[pendingCount] = k; pendingCount += 1
        }

        // 4. Up to `trialsPerIteration` trials on this iteration's H and g: damped system,
        // Cholesky, trial μ and closed-form σ (row q of the trial buffers for pending[q]), one
        // batched forward pass, then accept or reject; a rejected point retries with 4λ.
        var trial = 0
        let deltas = ws.deltas, hDiag = ws.diagonal.pointer, expOld = ws.expOld.pointer, expNew = ws.expNew.pointer
        while pendingCount > 0 && trial < trialsPerIteration {
            trial += 1
            // δ of pending point q into row q of `deltas`.
            if let kw {
                solveInKrylovSubspace(pendingCount: pendingCount, perD: perD, state: st, workspace: ws, krylov: kw)
            } else if linear {
                solveShared(hess, gradient: grad, pendingCount: pendingCount, beta: beta, state: st, workspace: ws)
            } else if dataSpace {
                solveInDataSpace(gradient: grad, pendingCount: pendingCount, beta: beta, state: st, workspace: ws)
            } else if L <= min(laneLatentLimit, GaussNewtonWorkspace.laneLatentLimit) {
                solveInLanes(hess, gradient: grad, pendingCount: pendingCount, beta: beta, state: st, workspace: ws)
            } else {
                for q in 0..<pendingCount {
                    let k = pending[q], i = idx[k]
                    let gk = grad + k * L, zk = z + k * L, dq = deltas + q * L
                    for r in 0..<L { dq[r] = reducedGradient(gk[r], zk[r], beta: beta) }
                    dampedSystem(hess + k * hessianStride, damping: st.damping[i], beta: beta, into: sys, n: L)
                    GaussNewtonRefinement.choleskySubstitute(sys, dq, n: L)
                }
            }
            // Trial μ + δ, closed-form σ′, and the σ part S before and after (exp vectorized).
            for q in 0..<pendingCount {
                let k = pending[q], i = idx[k]
                let hk = hess + k * hessianStride, zk = z + k * L, dq = deltas + q * L
                let lvk = lv + i * L, lvt = lvTrial + q * L, zt = zTrial + q * L
                for j in 0..<L { zt[j] = Float(Double(zk[j]) + dq[j]); hDiag[j] = krylov ? 0 : hk[j * L + j] }
                if beta > 0 {
                    for j in 0..<L { expNew[j] = Float(beta / (Double(hDiag[j]) + beta)) }
                    VectorMath.log(expNew, lvt, count: L)
                } else {
                    for j in 0..<L { lvt[j] = min(lvk[j], floorLV) }
                }
                var sOld = 0.0, sNew = 0.0
                // The Krylov solve leaves σ out (H̃ⱼⱼ taken as 0 above): with β = 0 the σ part is 0
                // and its exps are not needed.
                if krylov && beta == 0 {
                    ws.sigmaBefore[k] = 0
                    ws.sigmaAfter[k] = 0
                    continue
                }
                VectorMath.exp(lvk, expOld, count: L)
                VectorMath.exp(lvt, expNew, count: L)
                for j in 0..<L {
                    let ht = Double(hDiag[j])  // H̃ⱼⱼ
                    sOld += sigmaScale * Double(expOld[j]) * ht
                    sNew += sigmaScale * Double(expNew[j]) * ht
                }
                if beta > 0 {
                    for j in 0..<L {
                        sOld += 0.5 * beta * (Double(expOld[j]) - Double(lvk[j]) - 1)
                        sNew += 0.5 * beta * (Double(expNew[j]) - Double(lvt[j]) - 1)
                    }
                }
                ws.sigmaBefore[k] = sOld
                ws.sigmaAfter[k] = sNew
            }
            let outTrial: UnsafeMutablePointer<Float>
            if smoothed {
                let from = ws.temperatures.pointer, to = ws.trialTemperatures.pointer
                for q in 0..<pendingCount { (to + q * hiddenCount).update(from: from + pending[q] * hiddenCount, count: hiddenCount) }
                outTrial = net.forward(zTrial, rows: pendingCount, workspace: ws.network, temperatures: to, temperatureStride: hiddenCount)
            } else {
                outTrial = net.forward(zTrial, rows: pendingCount, workspace: ws.network)
            }
            var still = 0, kept = 0
            for q in 0..<pendingCount {
                let k = pending[q], i = idx[k]
                let e = Elementwise.weightedSquaredResidual(x.values.pointer + i * d, minus: outTrial + q * d, weights: prec,
                                                            into: cache == nil ? nil : ws.residual.pointer + q * d,
                                                            count: d)  // as in measureChunk
                let zt = zTrial + q * L
                let after = pointObjective(dataTerm: e, mu: zt, perD: perD, beta: beta, constant: constant)
                let before = st.objective[i]
                // The gain-ratio test applies only to a step whose predicted gain would count as
                // progress (above `tolerance` relative): below it, ρ is mostly rounding, and an
                // accepted step finishes the point anyway.
                var accepted = after.isFinite && after <= before
                if accepted && acceptanceRatio > 0 {
                    let predicted = kw.map { $0.predicted[q] }
                        ?? predictedDecrease(delta: deltas + q * L, gradient: grad + k * L, mu: z + k * L,
                                             hessian: hess + k * hessianStride, damping: st.damping[i], beta: beta, perD: perD)
                    accepted = !(predicted > tolerance * abs(before)) || before - after >= acceptanceRatio * predicted
                }
                if accepted {
                    (mu + i * L).update(from: zt, count: L)
                    (lv + i * L).update(from: lvTrial + q * L, count: L)
                    st.objective[i] = after
                    if krylov, let last = st.lastStep {
                        let dq = deltas + q * L, pi = last + i * L
                        for j in 0..<L { pi[j] = Float(dq[j]) }
                        st.hasLastStep![i] = true
                    }
                    let fBefore = before + ws.sigmaBefore[k], fAfter = after + ws.sigmaAfter[k]
                    // λ/3, except after a smoothed iteration when the schedule holds λ
                    // (the next iteration is at a lower temperature, or on the ReLU decoder).
                    if !(smoothed && smoothing.holdsDamping && Int(st.steps[i]) <= smoothing.iterations) {
                        let lam = st.damping[i]
                        st.damping[i] = min(lam, max(lam / 3, minimumDamping))
                    }
                    if smoothed {
                        // Goes on at the next temperature (or the ReLU), measured afresh there.
                    } else if !(fBefore - fAfter >= tolerance * abs(fBefore)) {
                        st.finished[i] = true
                    } else if cache != nil {
                        ws.members[kept] = q; ws.keptPoints[kept] = i; kept += 1  // linearized again next iteration, at this μ
                    }
                } else {
                    st.damping[i] *= 4
                    st.rejected[i] += 1
                    st.hasLastStep?[i] = false
                    if !(st.damping[i] <= maximumDamping) { st.finished[i] = true } else { pending[still] = k; still += 1 }
                }
            }
            if let cache, kept > 0 { keepTrialLinearization(rows: kept, cache: cache, workspace: ws) }
            pendingCount = still
        }
        if smoothed {
            // The next iteration measures P(μ) again at its own temperatures (or the ReLU); a
            // point that finished here (non-finite, or λ too large) at the end of the run.
            for k in 0..<m { st.objective[idx[k]] = .nan; cache?.valid[idx[k]] = false }
        }
    }

    /// The spread s_l of each chunk point's pre-activations over hidden layer l's units at its
    /// current μ (population standard deviation; ReLU decoder), into `st.spreads` where not yet
    /// measured (a point's start): the unit of its smoothing temperatures
    /// (``GaussNewtonSmoothing``). One forward pass.
    func measureSpreads(mu: UnsafePointer<Float>, count m: Int, state st: PointState, workspace ws: GaussNewtonWorkspace) {
        let net = decoder.network, L = decoder.latent, hiddenCount = net.layerCount - 1, idx = ws.index
        let z = ws.z.pointer, p = UnsafePointer(net.parameters.pointer)
        for k in 0..<m { (z + k * L).update(from: mu + idx[k] * L, count: L) }
        var input = UnsafePointer(z)
        for l in 1...hiddenCount {
            let nIn = net.widths[l - 1], nOut = net.widths[l], out = ws.network.activations[l - 1].pointer
            gemm(.none, .none, m: m, n: nOut, k: nIn, alpha: 1, a: input, lda: nIn, b: p + net.weightOffsets[l - 1], ldb: nOut,
                 beta: 0, c: out, ldc: nOut)
            Elementwise.addBias(p + net.biasOffsets[l - 1], to: out, rows: m, cols: nOut)
            for k in 0..<m {
                let row = out + k * nOut
                var sum = 0.0, squares = 0.0
                for c in 0..<nOut { let v = Double(row[c]); sum += v; squares += v * v }
                let mean = sum / Double(nOut), e = idx[k] * hiddenCount + l - 1
                if st.spreads[e].isNaN { st.spreads[e] = Float(max(squares / Double(nOut) - mean * mean, 0).squareRoot()) }
            }
            Elementwise.reluForward(out, count: m * nOut)
            input = UnsafePointer(out)
        }
    }

    /// The cached path of an iteration's linearization (every point of the chunk has its inputs
    /// at its current μ in `cache`): packs μ into ws.z, restores the hidden activations and
    /// u = Λr·W_Lᵀ (JᵀΛr itself for a linear decoder) and forms H̃ and JᵀΛr as
    /// ``linearizeChunk(_:mu:count:workspace:)`` does, without its forward pass; P(μ) is the
    /// guard's `st.objective`, which the trial that moved μ measured with the same arithmetic.
    func restoreLinearization(mu: UnsafePointer<Float>, count m: Int, cache: LinearizationCache, workspace ws: GaussNewtonWorkspace) {
        let L = decoder.latent, idx = ws.index, linear = decoder.network.layerCount == 1
        let u = linear ? ws.gradient.pointer : ws.projected.pointer
        for k in 0..<m {
            (ws.z.pointer + k * L).update(from: mu + idx[k] * L, count: L)
            cache.restore(point: idx[k], row: k, activations: ws.network.activations, projected: u)
        }
        if !linear { for k in 0..<m { compactJacobianProducts(point: k, workspace: ws) } }
    }

    /// After a trial round: for the `rows` accepted points that go on (trial rows ws.members[0..<rows],
    /// ascending, whose Λr the round left in ws.residual; points ws.keptPoints[0..<rows]), computes u = Λr·W_Lᵀ with the product
    /// ``linearizeChunk(_:mu:count:workspace:)`` uses (rows are independent, so the same values)
    /// and stores it with the trial's hidden activations as their linearization inputs at the new μ.
    func keepTrialLinearization(rows: Int, cache: LinearizationCache, workspace ws: GaussNewtonWorkspace) {
        let net = decoder.network, d = decoder.dataWidth, h = net.widths[net.layerCount - 1]
        let res = ws.residual.pointer, u = ws.projected.pointer
        for a in 0..<rows where ws.members[a] != a { (res + a * d).update(from: res + ws.members[a] * d, count: d) }
        gemm(.none, .none, m: rows, n: h, k: d, alpha: 1, a: res, lda: d, b: lastWeightsTransposed.pointer, ldb: h, beta: 0, c: u, ldc: h)
        for a in 0..<rows {
            let q = ws.members[a], i = ws.keptPoints[a]
            cache.store(point: i, row: q, activations: ws.network.activations, projected: nil)
            cache.storeProjected(point: i, from: u + a * h)
        }
    }

    /// The linear decoder's δ for pending points 0..<pendingCount (row q of ws.deltas): the
    /// points are grouped by λ, and each group is solved at once against the thread's cached
    /// factor for its λ (factored on first use) with ``choleskySubstituteMany(_:_:n:columns:)``:
    /// the same n²·m multiply-adds as m single solves, but vectorized across the m right-hand
    /// sides instead of latency-bound along one.
    func solveShared(_ hk: UnsafePointer<Float>, gradient grad: UnsafePointer<Float>, pendingCount: Int, beta: Double,
                     state st: PointState, workspace ws: GaussNewtonWorkspace) {
        let L = decoder.latent
        let pending = ws.pending, idx = ws.index, z = ws.z.pointer
        let grouped = ws.grouped, members = ws.members, many = ws.manyRightHandSides, deltas = ws.deltas
        grouped.update(repeating: false, count: pendingCount)
        for q0 in 0..<pendingCount where !grouped[q0] {
            let lam = st.damping[idx[pending[q0]]]
            var g = 0
            for q in q0..<pendingCount where !grouped[q] && st.damping[idx[pending[q]]] == lam {
                grouped[q] = true; members[g] = q; g += 1
            }
            let (slot, isNew) = ws.factorSlot(for: lam)
            if isNew { dampedSystem(hk, damping: lam, beta: beta, into: ws.factors[slot], n: L) }
            for c in 0..<g {
                let k = pending[members[c]], gk = grad + k * L, zk = z + k * L
                for r in 0..<L { many[r * g + c] = reducedGradient(gk[r], zk[r], beta: beta) }
            }
            GaussNewtonRefinement.choleskySubstituteMany(ws.factors[slot], many, n: L, columns: g)
            for c in 0..<g {
                let dq = deltas + members[c] * L
                for r in 0..<L { dq[r] = many[r * g + c] }
            }
        }
    }

    /// δ for pending points 0..<pendingCount (row q of ws.deltas), each from its own damped
    /// system, eight points at a time: one SIMD lane per point (the last group padded by
    /// repeating its first point). Factorization and forward sweep perform, lane by lane, exactly the
    /// operations of ``choleskyFactor(_:n:pivotTolerance:)`` and the forward half of
    /// ``choleskySubstitute(_:_:n:)`` (bit for bit); the backward sweep sums in another order.
    /// At small |z| the per-point routines are latency-bound on short rows; here every
    /// operation is 8 independent lanes.
    func solveInLanes(_ hess: UnsafePointer<Float>, gradient grad: UnsafePointer<Float>, pendingCount: Int, beta: Double,
                      state st: PointState, workspace ws: GaussNewtonWorkspace) {
        let L = decoder.latent, W = GaussNewtonWorkspace.lanes
        let pending = ws.pending, idx = ws.index, z = ws.z.pointer, deltas = ws.deltas
        let a = ws.laneSystem, b = ws.laneRightHandSide
        var q0 = 0
        while q0 < pendingCount {
            let g = min(W, pendingCount - q0)
            // Lane p solves pending point q0 + p; the padding lanes of the last group repeat its
            // first point (their results are discarded).
            @inline(__always) func point(_ p: Int) -> Int { pending[q0 + (p < g ? p : 0)] }
            let h0 = hess + point(0) * L * L, h1 = hess + point(1) * L * L, h2 = hess + point(2) * L * L, h3 = hess + point(3) * L * L
            let h4 = hess + point(4) * L * L, h5 = hess + point(5) * L * L, h6 = hess + point(6) * L * L, h7 = hess + point(7) * L * L
            // Off-diagonal: each lane vector gathered once from the eight systems' upper
            // triangles (the elements the one-system factor reads) into the lower triangle,
            // where the lanes' factor works (a[c·L + r] = H̃[r, c], c > r).
            for r in 0..<L {
                let o = r * L
                for c in (r + 1)..<L {
                    let e = o + c
                    a[c * L + r] = SIMD8<Double>(SIMD8<Float>(h0[e], h1[e], h2[e], h3[e], h4[e], h5[e], h6[e], h7[e]))
                }
            }
            var maxDiag = SIMD8<Double>(repeating: 0)
            for p in 0..<W {
                let k = point(p), lam = st.damping[idx[k]]
                let hk = hess + k * L * L, gk = grad + k * L, zk = z + k * L
                var md = 0.0
                for r in 0..<L {
                    let v = dampedDiagonal(hk[r * L + r], damping: lam, beta: beta)
                    a[r * L + r][p] = v
                    md = max(md, v)
                    b[r][p] = reducedGradient(gk[r], zk[r], beta: beta)
                }
                maxDiag[p] = md
            }
            GaussNewtonRefinement.choleskyFactorLanes(a, n: L, pivotTolerance: GaussNewtonRefinement.relativePivotTolerance * maxDiag)
            GaussNewtonRefinement.choleskySubstituteLanes(a, b, n: L)
            for p in 0..<g {
                let dq = deltas + (q0 + p) * L
                for r in 0..<L { dq[r] = b[r][p] }
            }
            q0 += g
        }
    }

    /// δ for pending points 0..<pendingCount (row q of ws.deltas) through the data space, for
    /// a ReLU decoder with d < |z| (``solvesInDataSpace``), eight points at a time in SIMD lanes.
    /// With C = JᵀΛ^{1/2} (|z| × d, in ws.timesGram from the Jacobian products), H̃ = C·Cᵀ and
    /// the damped system's diagonal remainder E = βI + λ·diag(H̃ + βI) + λ₀·I (positive), the
    /// system (E + C·Cᵀ) δ = g̃ is solved by the Woodbury identity:
    ///     (I_d + K) y = Cᵀ E⁻¹ g̃,  K = Cᵀ E⁻¹ C = C̃ᵀC̃ (C̃ = E^{−1/2} C),  δ = E⁻¹ (g̃ − C y).
    /// A d × d system instead of |z| × |z|: per trial |z|·d² multiply-adds for K (packed gemm,
    /// Float, as H̃ is in the primal solve) and d³/6 for the factor (Double, lanes), against the
    /// primal |z|²·d for H̃ per linearization and |z|³/6 per trial. I + K has every eigenvalue
    /// ≥ 1, so no pivot freezes in exact arithmetic; a coordinate with H̃ⱼⱼ = 0 has a zero row
    /// of C and gets δⱼ = g̃ⱼ/Eⱼⱼ, which is 0 for the reconstruction objective (there g̃ⱼ = 0) —
    /// the primal solve's frozen coordinate. K in Float loses most digits at small λ (as H̃ in
    /// Float does for the primal solve); ``dataSpaceRefinements`` steps of iterative refinement
    /// against K applied in Double through C restore them: δ within 10⁻⁵ of the system solved in
    /// Double (tested; measured ≤ 2.5·10⁻⁷ at λ = 10⁻⁶, where the primal solve is off by 3–11 %).
    func solveInDataSpace(gradient grad: UnsafePointer<Float>, pendingCount: Int, beta: Double,
                          state st: PointState, workspace ws: GaussNewtonWorkspace) {
        let L = decoder.latent, d = decoder.dataWidth, W = GaussNewtonWorkspace.lanes
        let pending = ws.pending, idx = ws.index, z = ws.z.pointer, deltas = ws.deltas
        let a = ws.laneSystem, b = ws.laneRightHandSide, saved = ws.laneSaved, correction = ws.laneCorrection
        let c = UnsafePointer(ws.timesGram.pointer), hess = UnsafePointer(ws.hessian.pointer)
        let scaled = ws.dataSpaceScaled.pointer, grams = ws.dataSpaceGrams.pointer
        let remainders = ws.dataSpaceRemainders, work = ws.dataSpaceReduced, v = ws.dataSpaceVector
        let zero = SIMD8<Double>(repeating: 0)
        var q0 = 0
        while q0 < pendingCount {
            let g = min(W, pendingCount - q0)
            // Lanes past g (the last group's padding) repeat lane 0's system: not formed again.
            for p in 0..<g {
                let k = pending[q0 + p], lam = st.damping[idx[k]]
                let ck = c + k * L * d, hk = hess + k * L * L, gk = grad + k * L, zk = z + k * L, ep = remainders + p * L
                // E, E⁻¹g̃ and C̃ = E^{−1/2} C; then K = C̃ᵀC̃ into lane p's Gram and Cᵀ E⁻¹ g̃ into b.
                for j in 0..<L {
                    let e = dampingRemainder(hk[j * L + j], damping: lam, beta: beta)
                    ep[j] = e
                    work[j] = reducedGradient(gk[j], zk[j], beta: beta) / e
                    let root = Float((1 / e).squareRoot()), row = scaled + j * d, src = ck + j * d
                    for t in 0..<d { row[t] = src[t] * root }
                }
                gemm(.transpose, .none, m: d, n: d, k: L, alpha: 1, a: scaled, lda: d, b: scaled, ldb: d, beta: 0,
                     c: grams + p * d * d, ldc: d)
                GaussNewtonRefinement.transposedProduct(ck, rows: L, columns: d, weights: work, into: v)
                for t in 0..<d { b[t][p] = v[t] }
            }
            for p in g..<W { for t in 0..<d { b[t][p] = b[t][0] } }
            @inline(__always) func gram(_ p: Int) -> UnsafePointer<Float> { UnsafePointer(grams + (p < g ? p : 0) * d * d) }
            let k0 = gram(0), k1 = gram(1), k2 = gram(2), k3 = gram(3), k4 = gram(4), k5 = gram(5), k6 = gram(6), k7 = gram(7)
            var maxDiag = zero
            // Row by row of the lower triangle (stored in order; K is symmetric, read along its rows too).
            for r in 0..<d {
                let o = r * d
                for col in 0..<r {
                    let e = o + col
                    a[o + col] = SIMD8<Double>(SIMD8<Float>(k0[e], k1[e], k2[e], k3[e], k4[e], k5[e], k6[e], k7[e]))
                }
                let e = o + r
                let diag = 1 + SIMD8<Double>(SIMD8<Float>(k0[e], k1[e], k2[e], k3[e], k4[e], k5[e], k6[e], k7[e]))
                a[o + r] = diag
                maxDiag = pointwiseMax(maxDiag, diag)
            }
            GaussNewtonRefinement.choleskyFactorLanes(a, n: d, pivotTolerance: GaussNewtonRefinement.relativePivotTolerance * maxDiag)
            saved.update(from: b, count: d)
            GaussNewtonRefinement.choleskySubstituteLanes(a, b, n: d)
            // Iterative refinement against K in Double: the residual Cᵀ E⁻¹ g̃ − (I + K) y with
            // K y = Cᵀ E⁻¹ (C y) formed from C, solved with the Float K's factor, added to y.
            for _ in 0..<Self.dataSpaceRefinements {
                for p in 0..<W {
                    guard p < g else { for t in 0..<d { correction[t][p] = 0 }; continue }
                    let k = pending[q0 + p], ck = c + k * L * d, ep = remainders + p * L
                    for t in 0..<d { v[t] = b[t][p] }
                    for j in 0..<L { work[j] = GaussNewtonRefinement.dot(ck + j * d, v, count: d) / ep[j] }
                    GaussNewtonRefinement.transposedProduct(ck, rows: L, columns: d, weights: work, into: v)
                    for t in 0..<d { correction[t][p] = saved[t][p] - b[t][p] - v[t] }
                }
                GaussNewtonRefinement.choleskySubstituteLanes(a, correction, n: d)
                for t in 0..<d { b[t] += correction[t] }
            }
            // δ = E⁻¹ (g̃ − C y), lane by lane.
            for p in 0..<g {
                let k = pending[q0 + p], ck = c + k * L * d, gk = grad + k * L, zk = z + k * L, ep = remainders + p * L
                for t in 0..<d { v[t] = b[t][p] }
                let dq = deltas + (q0 + p) * L
                for j in 0..<L {
                    let cy = GaussNewtonRefinement.dot(ck + j * d, v, count: d)
                    dq[j] = (reducedGradient(gk[j], zk[j], beta: beta) - cy) / ep[j]
                }
            }
            q0 += g
        }
    }

    /// Steps of iterative refinement in the data-space solve: K is formed in Float (as H̃ is for
    /// the primal solve), which at small λ costs the solution most of its digits; each step
    /// takes the residual against K applied in Double through C and solves for it with the same
    /// factor (error × κ·ε_Float per step; tested against the system solved in Double).
    static let dataSpaceRefinements = 1

    /// v[t] = Σⱼ c[j·columns + t]·w[j] (Cᵀw for C rows × columns in Float, w and v in Double).
    static func transposedProduct(_ c: UnsafePointer<Float>, rows: Int, columns d: Int, weights w: UnsafePointer<Double>,
                                  into v: UnsafeMutablePointer<Double>) {
        v.update(repeating: 0, count: d)
        let vr = UnsafeMutableRawPointer(v)
        for j in 0..<rows {
            let row = c + j * d, wj = w[j], wv = SIMD8<Double>(repeating: wj)
            let rr = UnsafeRawPointer(row)
            var t = 0
            while t + 8 <= d {
                let x = SIMD8<Double>(rr.loadUnaligned(fromByteOffset: t * 4, as: SIMD8<Float>.self))
                let o = t * 8
                vr.storeBytes(of: vr.loadUnaligned(fromByteOffset: o, as: SIMD8<Double>.self).addingProduct(x, wv), toByteOffset: o, as: SIMD8<Double>.self)
                t += 8
            }
            while t < d { v[t] = v[t].addingProduct(Double(row[t]), wj); t += 1 }
        }
    }

    /// Σₜ c[t]·y[t] with c in Float and y in Double, summed in Double.
    @inline(__always)
    static func dot(_ c: UnsafePointer<Float>, _ y: UnsafePointer<Double>, count d: Int) -> Double {
        let cr = UnsafeRawPointer(c), yr = UnsafeRawPointer(y)
        var acc = SIMD8<Double>()
        var t = 0
        while t + 8 <= d {
            acc = acc.addingProduct(SIMD8<Double>(cr.loadUnaligned(fromByteOffset: t * 4, as: SIMD8<Float>.self)),
                                    yr.loadUnaligned(fromByteOffset: t * 8, as: SIMD8<Double>.self))
            t += 8
        }
        var s = acc.sum()
        while t < d { s = s.addingProduct(Double(c[t]), y[t]); t += 1 }
        return s
    }

    /// −v as a sign flip, (−0) − v: exact for every v (zeros included), which the compiler folds
    /// into a fused negative multiply-add. The SIMD types' prefix minus is 0 − v (+0 for v = +0),
    /// which it cannot fold, so each use cost a subtraction beside the fused multiply-add.
    @inline(__always) static func negated(_ v: SIMD8<Double>) -> SIMD8<Double> { SIMD8<Double>(repeating: -0.0) - v }

    /// ``choleskyFactor(_:n:pivotTolerance:)`` on eight systems at once, one per lane, stored
    /// transposed: the lower triangle of `a` (n × n row-major) holds A on entry and L = Uᵀ on
    /// return (L[k, j] = U[j, k] at a[k·n + j], k ≥ j; the strict upper triangle is not read).
    /// Per-lane pivot tolerances; a frozen lane's column (pivot ≤ tolerance, or not finite) is zeros.
    ///
    /// Two columns at a time: L[k, j] = (A[k, j] − Σ_{i<j} L[j, i]·L[k, i]) / L[j, j], each sum
    /// taken in order i = 0, 1, … with one fused multiply-add per term, which is exactly the
    /// sequence of operations the right-looking ``choleskyFactor(_:n:pivotTolerance:)`` applies
    /// to U[j, k] (bit for bit; column j + 1 takes its i = j term after column j's element is
    /// scaled). The pivots of both columns are found first (row j + 1 holds the second's
    /// diagonal), so every other element is summed, scaled and stored in registers in one pass
    /// over two rows of L at a time: every operand is read along a row. The factor is bound by
    /// reading the lane matrix (64 bytes an element; 1 MB at |z| = 128, in L2); the upper layout
    /// read each term n·64 bytes after the last, a new 4 KiB page at |z| ≥ 64
    /// (docs/BENCHMARKS.md, twentieth session).
    static func choleskyFactorLanes(_ a: UnsafeMutablePointer<SIMD8<Double>>, n: Int, pivotTolerance: SIMD8<Double>) {
        let zero = SIMD8<Double>(repeating: 0), infinity = SIMD8<Double>(repeating: .infinity)
        /// Writes column j's pivot from its reduced diagonal s; returns which lanes are
        /// not frozen and 1/L[j, j].
        @inline(__always) func pivot(_ j: Int, _ s: SIMD8<Double>) -> (ok: SIMDMask<SIMD8<Int64>>, inverse: SIMD8<Double>) {
            let ok = (s .> pivotTolerance) .& (s .< infinity)  // false for NaN, as !(s > tol) || !finite
            let dj = s.squareRoot()
            a[j * n + j] = zero.replacing(with: dj, where: ok)
            return (ok, 1 / dj)
        }
        var j = 0
        while j < n {
            let rj = UnsafePointer(a + j * n)
            var s = rj[j]
            for i in 0..<j { s = s.addingProduct(negated(rj[i]), rj[i]) }
            let (okJ, invJ) = pivot(j, s)
            if j + 1 == n { break }
            // Row r's elements in columns j and j + 1 less their terms i < j, in order.
            let rn = UnsafePointer(a + (j + 1) * n)
            @inline(__always) func reduced(row r: UnsafePointer<SIMD8<Double>>) -> (SIMD8<Double>, SIMD8<Double>) {
                var c = r[j], d = r[j + 1]
                for i in 0..<j {
                    let u = r[i]
                    c = c.addingProduct(negated(rj[i]), u); d = d.addingProduct(negated(rn[i]), u)
                }
                return (c, d)
            }
            // Row j + 1: L[j+1, j], then the diagonal of column j + 1 and its pivot.
            let (c, d) = reduced(row: rn)
            let below = zero.replacing(with: c * invJ, where: okJ)
            a[(j + 1) * n + j] = below
            let f = negated(below)
            let (okN, invN) = pivot(j + 1, d.addingProduct(f, below))
            // Rows k > j + 1, two at a time: both columns' elements, scaled in registers.
            var k = j + 2
            while k + 2 <= n {
                let r0 = a + k * n, r1 = r0 + n
                var c0 = r0[j], c1 = r1[j], d0 = r0[j + 1], d1 = r1[j + 1]
                for i in 0..<j {
                    let p = negated(rj[i]), q = negated(rn[i]), u0 = r0[i], u1 = r1[i]
                    c0 = c0.addingProduct(p, u0); c1 = c1.addingProduct(p, u1)
                    d0 = d0.addingProduct(q, u0); d1 = d1.addingProduct(q, u1)
                }
                c0 = zero.replacing(with: c0 * invJ, where: okJ); c1 = zero.replacing(with: c1 * invJ, where: okJ)
                r0[j] = c0; r1[j] = c1
                r0[j + 1] = zero.replacing(with: d0.addingProduct(f, c0) * invN, where: okN)
                r1[j + 1] = zero.replacing(with: d1.addingProduct(f, c1) * invN, where: okN)
                k += 2
            }
            if k < n {
                let r0 = a + k * n
                let (c, d0) = reduced(row: r0)
                let c0 = zero.replacing(with: c * invJ, where: okJ)
                r0[j] = c0
                r0[j + 1] = zero.replacing(with: d0.addingProduct(f, c0) * invN, where: okN)
            }
            j += 2
        }
    }

    /// ``choleskySubstitute(_:_:n:)`` on eight systems at once (L = Uᵀ from
    /// ``choleskyFactorLanes(_:n:pivotTolerance:)``, b of n lanes-vectors, in place; a frozen
    /// coordinate, zero pivot, gives 0), reading L along rows: forward
    /// y_j = (b_j − Σ_{i<j} L[j, i]·y_i) / L[j, j] (the same operations in the same order as
    /// the one-system sweep), backward x_i = y_i / L[i, i] for i = n−1, …, 0, each then taken
    /// off the b_j (j < i) of row i (the one-system sweep sums x_j's terms in the opposite
    /// order: the same solution to rounding).
    static func choleskySubstituteLanes(_ u: UnsafePointer<SIMD8<Double>>, _ b: UnsafeMutablePointer<SIMD8<Double>>, n: Int) {
        let zero = SIMD8<Double>(repeating: 0)
        for j in 0..<n {
            let rj = u + j * n
            var acc = b[j]
            for i in 0..<j { acc = acc.addingProduct(negated(b[i]), rj[i]) }
            b[j] = (acc / rj[j]).replacing(with: zero, where: rj[j] .== zero)
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            let ri = u + i * n
            let x = (b[i] / ri[i]).replacing(with: zero, where: ri[i] .== zero)
            b[i] = x
            let f = negated(x)
            for j in 0..<i { b[j] = b[j].addingProduct(f, ri[j]) }
        }
    }

    /// Writes U with UᵀU = H + λ·diag(H) + λ₀·I (H = H̃ + βI; H̃ given as Float, n × n) into
    /// `out`: the damped system, factored. A Schur pivot ≤ 10⁻¹²·max diag freezes its coordinate.
    func dampedSystem(_ hk: UnsafePointer<Float>, damping lam: Double, beta: Double, into out: UnsafeMutablePointer<Double>, n L: Int) {
        var maxDiag = 0.0
        for r in 0..<L {
            for c in r..<L { out[r * L + c] = Double(hk[r * L + c]) }
            out[r * L + r] = dampedDiagonal(hk[r * L + r], damping: lam, beta: beta)
            maxDiag = max(maxDiag, out[r * L + r])
        }
        GaussNewtonRefinement.choleskyFactor(out, n: L, pivotTolerance: GaussNewtonRefinement.relativePivotTolerance * maxDiag)
    }

    /// A coordinate of the system's right-hand side g̃ = JᵀΛr − βμ (the ELBO's KL pulls μ to 0;
    /// β = 0 for reconstruction), from (JᵀΛr)ⱼ and μⱼ.
    @inline(__always)
    func reducedGradient(_ g: Float, _ mu: Float, beta: Double) -> Double { Double(g) - beta * Double(mu) }

    /// A diagonal entry of the damped system: (H̃ⱼⱼ + β)(1 + λ) + λ₀.
    @inline(__always)
    func dampedDiagonal(_ h: Float, damping lam: Double, beta: Double) -> Double {
        let hd = Double(h) + beta
        return hd + lam * hd + absoluteDamping
    }

    /// The damped system's diagonal less H̃ⱼⱼ: β + λ·(H̃ⱼⱼ + β) + λ₀ (E of the data-space solve).
    @inline(__always)
    func dampingRemainder(_ h: Float, damping lam: Double, beta: Double) -> Double {
        beta + lam * (Double(h) + beta) + absoluteDamping
    }

    /// The decrease of P that the damped quadratic model predicts for the step δ solving
    /// (H + λ·diag(H) + λ₀·I) δ = g̃, g̃ = JᵀΛr − βμ, H = H̃ + βI (`hessian`: H̃, |z| × |z|; only its diagonal is read):
    /// for the model m(δ) of ½‖r‖²_Λ + ½β‖μ‖², m(0) − m(δ) = δᵀg̃ − ½δᵀHδ = ½δᵀg̃ + ½δᵀ(λ·diag(H) + λ₀·I)δ
    /// (the system substituted for Hδ), and P is 2·perD times that model's objective, so the
    /// result is perD·(δᵀg̃ + δᵀ(λ·diag(H) + λ₀·I)δ). Exact for a linear decoder (ρ = 1 up to
    /// rounding); ≥ 0, and 0 only for δ = 0.
    @inline(__always)
    func predictedDecrease(delta: UnsafePointer<Double>, gradient: UnsafePointer<Float>, mu: UnsafePointer<Float>,
                           hessian: UnsafePointer<Float>, damping lam: Double, beta: Double, perD: Double) -> Double {
        let L = decoder.latent
        var s = 0.0
        for j in 0..<L {
            let dj = delta[j]
            s += dj * reducedGradient(gradient[j], mu[j], beta: beta)
            s += dj * dj * (lam * (Double(hessian[j * L + j]) + beta) + absoluteDamping)
        }
        return perD * s
    }

    /// A Schur pivot at or below this fraction of the damped system's largest diagonal entry
    /// freezes its coordinate.
    static let relativePivotTolerance = 1e-12

    /// Forward pass for the points ws.index[0..<m] at the means in `mu` (table layout): packs μ
    /// into ws.z, writes Λr into ws.residual and P(μ) into ws.before; leaves the activations
    /// (ReLU patterns) in ws.network.
    func measureChunk(_ x: Dataset, mu: UnsafePointer<Float>, count m: Int, workspace ws: GaussNewtonWorkspace, smoothed: Bool = false) {
        let L = decoder.latent, d = decoder.dataWidth, idx = ws.index
        let z = ws.z.pointer, res = ws.residual.pointer, prec = precision.pointer
        let (perD, beta, constant) = objectiveWeights()
        for k in 0..<m { (z + k * L).update(from: mu + idx[k] * L, count: L) }
        let out = smoothed
            ? decoder.network.forward(z, rows: m, workspace: ws.network, temperatures: ws.temperatures.pointer,
                                      temperatureStride: decoder.network.layerCount - 1)
            : decoder.network.forward(z, rows: m, workspace: ws.network)
        for k in 0..<m {
            let q = Elementwise.weightedSquaredResidual(x.values.pointer + idx[k] * d, minus: out + k * d, weights: prec,
                                                        into: res + k * d, count: d)
            ws.before[k] = pointObjective(dataTerm: q, mu: z + k * L, perD: perD, beta: beta, constant: constant)
        }
    }

    /// P(μ) of one point from its data term ‖r‖²_Λ, with ``objectiveWeights()``: the one formula
    /// the guard's reference (``measureChunk(_:mu:count:workspace:)``) and its trials share, so a
    /// trial's P is bit for bit the next iteration's reference (``LinearizationCache`` relies on it).
    @inline(__always)
    func pointObjective(dataTerm: Double, mu: UnsafePointer<Float>, perD: Double, beta: Double, constant: Double) -> Double {
        perD * dataTerm + constant + (beta != 0 ? 0.5 * beta * Elementwise.sumOfSquares(mu, count: decoder.latent) : 0)
    }

    /// P(μ) = perD·‖r‖²_Λ + constant + ½β‖μ‖²: (1/d, 0, 0) for reconstruction, (½, β, c) for the ELBO.
    func objectiveWeights() -> (perD: Double, beta: Double, constant: Double) {
        switch decoder.objective.kind {
        case .reconstruction: return (1 / Double(decoder.dataWidth), 0, 0)
        case .elbo(let b): return (0.5, Double(b), likelihoodConstant())
        }
    }

    /// For the points ws.index[0..<m] at the means in `mu` (table layout): packs μ into ws.z,
    /// and writes Λr into ws.residual, P(μ) into ws.before, H̃ = JᵀΛJ into ws.hessian
    /// (|z| × |z| per point) and JᵀΛr into ws.gradient. Needs ``prepareShared()`` first.
    /// `smoothed`: at the temperatures in ws.temperatures (``GaussNewtonSmoothing``; dense products
    /// with each unit's slope σ(a/τ) in place of its ReLU mask).
    func linearizeChunk(_ x: Dataset, mu: UnsafePointer<Float>, count m: Int, workspace ws: GaussNewtonWorkspace, smoothed: Bool = false) {
        let net = decoder.network
        let L = decoder.latent, d = decoder.dataWidth, layers = net.layerCount
        let h = net.widths[layers - 1]
        let res = ws.residual.pointer
        let p = UnsafePointer(net.parameters.pointer)

        // 1. Forward at μ: residuals, Λr and P(μ).
        measureChunk(x, mu: mu, count: m, workspace: ws, smoothed: smoothed)

        // 2. H̃ = A G Aᵀ and JᵀΛr = A (Λr W_Lᵀ) per point (A = I for a linear decoder).
        let grad = ws.gradient.pointer
        if layers == 1 {
            // H̃ = G for every point: read from `gram` directly (see iterateChunk), not copied.
            gemm(.none, .none, m: m, n: L, k: d, alpha: 1, a: res, lda: d, b: lastWeightsTransposed.pointer, ldb: L, beta: 0, c: grad, ldc: L)
        } else if compactActiveUnits && !smoothed {
            let u = ws.projected.pointer
            gemm(.none, .none, m: m, n: h, k: d, alpha: 1, a: res, lda: d, b: lastWeightsTransposed.pointer, ldb: h, beta: 0, c: u, ldc: h)
            for k in 0..<m { compactJacobianProducts(point: k, workspace: ws) }
        } else if formsFactorFromTheRight {
            factorFromTheRight(count: m, smoothed: smoothed, workspace: ws)
        } else {
            // Dense, batched: each unit's column of A scaled by its slope (hiddenSlopes: the ReLU's
            // 0/1, or σ(a/τ) when smoothed, where no unit drops out).
            var a = ws.jacobianA.pointer, b = ws.jacobianB.pointer
            let slopes = ws.slopes.pointer
            let h1 = net.widths[1], w1 = p + net.weightOffsets[0]
            for k in 0..<m {
                hiddenSlopes(layer: 1, row: k, smoothed: smoothed, workspace: ws, into: slopes)
                for j in 0..<L {
                    let row = a + (k * L + j) * h1, wr = w1 + j * h1
                    for c in 0..<h1 { row[c] = wr[c] * slopes[c] }
                }
            }
            if layers > 2 {
                for l in 2..<layers {
                    let nIn = net.widths[l - 1], nOut = net.widths[l]
                    gemm(.none, .none, m: m * L, n: nOut, k: nIn, alpha: 1, a: a, lda: nIn,
                         b: p + net.weightOffsets[l - 1], ldb: nOut, beta: 0, c: b, ldc: nOut)
                    for k in 0..<m {
                        hiddenSlopes(layer: l, row: k, smoothed: smoothed, workspace: ws, into: slopes)
                        for j in 0..<L {
                            let row = b + (k * L + j) * nOut
                            for c in 0..<nOut { row[c] *= slopes[c] }
                        }
                    }
                    swap(&a, &b)
                }
            }
            denseProducts(UnsafePointer(a), count: m, workspace: ws)
        }
    }

    /// Whether the dense products form the data-space solve's C from the right
    /// (``factorFromTheRight(count:smoothed:workspace:)``): two hidden layers or more, and
    /// d ≤ the widest hidden layer (the buffers' shape).
    var formsFactorFromTheRight: Bool {
        let net = decoder.network
        return solvesInDataSpace && net.layerCount > 2 && decoder.dataWidth <= net.widths.dropFirst().dropLast().max()!
    }

    /// The dense path's C = JᵀΛ^{1/2} (|z| × d per point, into ws.timesGram), JᵀΛr and H̃'s
    /// diagonal for the data-space solve with two or more hidden layers, multiplied from the
    /// right: C = W₁·S₁·W₂·S₂ ⋯ W_{L−1}·S_{L−1}·F (Sₗ = diag of hidden layer l's slopes, F =
    /// W_L Λ^{1/2}), all points at once: each Pₗ = Sₗ·Wₗ₊₁·Pₗ₊₁ is one product of the shared
    /// Wₗ₊₁ with the points' blocks side by side (h × m·d). Arch3 costs h²·d + |z|·h·d
    /// multiply-adds a point instead of |z|·h² + |z|·h·d from the left (a third less at
    /// |z| = 128, h = 128, d = 64). JᵀΛr = C·Λ^{−1/2}·(Λr). Same values as from the left up
    /// to rounding (tested).
    func factorFromTheRight(count m: Int, smoothed: Bool, workspace ws: GaussNewtonWorkspace) {
        let net = decoder.network, layers = net.layerCount, L = decoder.latent, d = decoder.dataWidth
        let p = UnsafePointer(net.parameters.pointer), slopes = ws.slopes.pointer, n = m * d
        var current = ws.jacobianA.pointer, other = ws.jacobianB.pointer
        // P = S_{L−1}·F, the points' blocks side by side: row r, columns k·d ..< (k + 1)·d.
        let last = net.widths[layers - 1], f = UnsafePointer(rootScaledLastWeights.pointer)
        for k in 0..<m {
            hiddenSlopes(layer: layers - 1, row: k, smoothed: smoothed, workspace: ws, into: slopes)
            for r in 0..<last {
                let src = f + r * d, dst = current + r * n + k * d, sr = slopes[r]
                for e in 0..<d { dst[e] = src[e] * sr }
            }
        }
        var l = layers - 1
        while l > 1 {
            // P ← S_{l−1}·W_l·P (W_l: widths[l−1] × widths[l]).
            let nIn = net.widths[l - 1], nOut = net.widths[l]
            gemm(.none, .none, m: nIn, n: n, k: nOut, alpha: 1, a: p + net.weightOffsets[l - 1], lda: nOut, b: current, ldb: n,
                 beta: 0, c: other, ldc: n)
            swap(&current, &other)
            l -= 1
            for k in 0..<m {
                hiddenSlopes(layer: l, row: k, smoothed: smoothed, workspace: ws, into: slopes)
                for r in 0..<nIn {
                    let row = current + r * n + k * d, sr = slopes[r]
                    for e in 0..<d { row[e] *= sr }
                }
            }
        }
        // C = W₁·P (|z| × m·d), then each point's block into ws.timesGram (|z| × d).
        gemm(.none, .none, m: L, n: n, k: net.widths[1], alpha: 1, a: p + net.weightOffsets[0], lda: net.widths[1], b: current, ldb: n,
             beta: 0, c: other, ldc: n)
        let tg = ws.timesGram.pointer, res = ws.residual.pointer, prec = precision.pointer, scaled = ws.dataSpaceVector
        let hess = ws.hessian.pointer, grad = ws.gradient.pointer
        for k in 0..<m {
            let ck = tg + k * L * d
            for j in 0..<L { (ck + j * d).update(from: other + j * n + k * d, count: d) }
            writeDiagonal(fromFactor: ck, into: hess + k * L * L)
            // JᵀΛr = C·Λ^{1/2}r with Λ^{1/2}r = Λ^{−1/2}·(Λr).
            let rk = res + k * d
            for e in 0..<d { scaled[e] = Double(rk[e]) / Double(prec[e]).squareRoot() }
            for j in 0..<L { grad[k * L + j] = Float(GaussNewtonRefinement.dot(ck + j * d, scaled, count: d)) }
        }
        // u = Λr·W_Lᵀ is not formed: only an active-unit linearization is kept for the next
        // iteration (``LinearizationCache``), and a dense one computes JᵀΛr from C.
    }

    /// Row k's slopes at hidden layer l (1 ≤ l < layers) after a forward pass in ws.network:
    /// σ(a/τ) = 1 − e^{−s/τ} from each unit's output s at the row's temperature in
    /// ws.temperatures (when `smoothed` and τ > 0), else the ReLU's 0/1; into `out` (widths[l]).
    func hiddenSlopes(layer l: Int, row k: Int, smoothed: Bool, workspace ws: GaussNewtonWorkspace, into out: UnsafeMutablePointer<Float>) {
        let net = decoder.network, w = net.widths[l], hiddenCount = net.layerCount - 1
        let act = UnsafePointer(ws.network.activations[l - 1].pointer + k * w)
        let tau = smoothed ? ws.temperatures.pointer[k * hiddenCount + l - 1] : 0
        if tau > 0 {
            VectorMath.softplusDerivative(output: act, temperature: tau, out, count: w)
        } else {
            for c in 0..<w { out[c] = act[c] > 0 ? 1 : 0 }
        }
    }

    /// The dense paths' last products: with A (m·|z| × h, point k's ∂a_{L−1}/∂z rows at
    /// k·|z|·h) given, u = Λr·W_Lᵀ, JᵀΛr = A·u per point and H̃ = A·G·Aᵀ per point, into
    /// ws.hessian and ws.gradient. For d ≥ h as T = A·G, then H̃ = T·Aᵀ (|z|·h² + |z|²·h
    /// multiply-adds a point); for d < h through the factor G = F·Fᵀ, F = W_L Λ^{1/2} (h × d):
    /// C = A·F, then H̃ = C·Cᵀ (|z|·h·d + |z|²·d: half at h = 2d, digits |z| ≥ 64).
    func denseProducts(_ a: UnsafePointer<Float>, count m: Int, workspace ws: GaussNewtonWorkspace) {
        let net = decoder.network, layers = net.layerCount, L = decoder.latent, d = decoder.dataWidth
        let h = net.widths[layers - 1]
        let res = ws.residual.pointer, hess = ws.hessian.pointer, grad = ws.gradient.pointer
        let wLast = UnsafePointer(net.parameters.pointer) + net.weightOffsets[layers - 1]
        let tg = ws.timesGram.pointer, u = ws.projected.pointer
        // T (or C): m·|z| × w, in ws.timesGram. The data-space solve reads C and H̃'s diagonal only.
        let dataSpace = solvesInDataSpace, factored = usesGramFactor || dataSpace, w = factored ? d : h
        if factored {
            gemm(.none, .none, m: m * L, n: d, k: h, alpha: 1, a: a, lda: h, b: rootScaledLastWeights.pointer, ldb: d, beta: 0, c: tg, ldc: d)
        } else {
            gemm(.none, .none, m: m * L, n: h, k: h, alpha: 1, a: a, lda: h, b: gram.pointer, ldb: h, beta: 0, c: tg, ldc: h)
        }
        gemm(.none, .transpose, m: m, n: h, k: d, alpha: 1, a: res, lda: d, b: wLast, ldb: d, beta: 0, c: u, ldc: h)
        for k in 0..<m {
            let ak = a + k * L * h
            if dataSpace {
                writeDiagonal(fromFactor: tg + k * L * d, into: hess + k * L * L)
            } else {
                gemm(.none, .transpose, m: L, n: L, k: w, alpha: 1, a: tg + k * L * w, lda: w, b: factored ? UnsafePointer(tg + k * L * w) : ak, ldb: w,
                     beta: 0, c: hess + k * L * L, ldc: L)
            }
            gemm(.none, .none, m: L, n: 1, k: h, alpha: 1, a: ak, lda: h, b: u + k * h, ldb: 1,
                 beta: 0, c: grad + k * L, ldc: 1)
        }
    }

    /// H̃ⱼⱼ = ‖row j of C‖² for one point's C (|z| × d) onto the diagonal of its H̃ block (|z| × |z|;
    /// the data-space solve leaves the rest unwritten).
    @inline(__always)
    func writeDiagonal(fromFactor c: UnsafePointer<Float>, into hk: UnsafeMutablePointer<Float>) {
        let L = decoder.latent, d = decoder.dataWidth
        for j in 0..<L { hk[j * L + j] = Float(Elementwise.sumOfSquares(c + j * d, count: d)) }
    }

    /// Up to this |z| the per-point products read their operands in place
    /// (``gatheredJacobianProducts(point:workspace:)``); above it they gather copies for packed
    /// gemm. Measured (`pesvi bench gn --points 2000 --threads 1`): in place is 12–15 % faster
    /// at |z| = 64 (Arch2 and Arch3, d = 64 and 300) and on par at |z| = 128.
    static let gatheredLatentLimit = 128

    /// H̃ and JᵀΛr of chunk point k from its active units only. With Sₗ the units of hidden
    /// layer l whose ReLU is on, A₁ = W₁[:, S₁] (|z| × |S₁|), Aₗ = Aₗ₋₁ · Wₗ[Sₗ₋₁, Sₗ], and
    /// with S the last hidden layer's set, H̃ = A · G[S, S] · Aᵀ and JᵀΛr = A · u[S]
    /// (u = Λr W_Lᵀ, in ws.projected). Inactive units contribute exact zeros, so this equals
    /// the masked dense product, at ~(|S|/h)² of its cost.
    ///
    /// Works on Bₗ = Aₗᵀ (|Sₗ| × |z|) so every product reads its right operand untransposed:
    /// Bₗ = Wₗ[Sₗ₋₁, Sₗ]ᵀ · Bₗ₋₁ (the block gathered transposed), T = G[S, S] · B,
    /// H̃ = Bᵀ · T, JᵀΛr = Bᵀ · u[S]. Up to |z| = ``gatheredLatentLimit`` without copies (see
    /// ``gatheredJacobianProducts(point:workspace:)``); above it on gathered copies with packed
    /// gemm, and JᵀΛr always with ``smallMatrixProduct(m:n:k:a:aRowStride:aColumnStride:b:ldb:c:ldc:)``
    /// (gemm would pad the vector to a 32-wide panel).
    func compactJacobianProducts(point k: Int, workspace ws: GaussNewtonWorkspace) {
        if decoder.latent <= Self.gatheredLatentLimit { return gatheredJacobianProducts(point: k, workspace: ws) }
        let net = decoder.network, layers = net.layerCount, L = decoder.latent
        let p = UnsafePointer(net.parameters.pointer)
        let h = net.widths[layers - 1]
        var a = ws.jacobianA.pointer, b = ws.jacobianB.pointer
        let sub = ws.subMatrix.pointer
        // |z| > gatheredLatentLimit here; the matrix-vector product is always unpacked.
        var previous = ws.activeA, current = ws.activeB
        // Layer 1: B = W₁[:, S₁]ᵀ.
        let h1 = net.widths[1], w1 = p + net.weightOffsets[0], act1 = ws.network.activations[0].pointer + k * h1
        var sPrev = 0
        for c in 0..<h1 where act1[c] > 0 { previous[sPrev] = c; sPrev += 1 }
        for t in 0..<sPrev {
            let row = a + t * L, col = w1 + previous[t]
            for j in 0..<L { row[j] = col[j * h1] }
        }
        if layers > 2 {
            for l in 2..<layers {
                let nOut = net.widths[l], wl = p + net.weightOffsets[l - 1], act = ws.network.activations[l - 1].pointer + k * nOut
                var s = 0
                for c in 0..<nOut where act[c] > 0 { current[s] = c; s += 1 }
                for t in 0..<s {
                    let dst = sub + t * sPrev, col = wl + current[t]
                    for r in 0..<sPrev { dst[r] = col[previous[r] * nOut] }
                }
                gemm(.none, .none, m: s, n: L, k: sPrev, alpha: 1, a: sub, lda: max(sPrev, 1), b: a, ldb: L, beta: 0, c: b, ldc: L)
                swap(&a, &b); swap(&previous, &current); sPrev = s
            }
        }
        let s = sPrev
        let us = ws.subVector.pointer, u = ws.projected.pointer + k * h, hk = ws.hessian.pointer + k * L * L
        for r in 0..<s { us[r] = u[previous[r]] }
        if solvesInDataSpace {
            // C = Bᵀ · F[S, :] (B = a, s × |z|), read through offsets, and H̃'s diagonal.
            let d = decoder.dataWidth, ck = ws.timesGram.pointer + k * L * d, rowOff = ws.rowOffsets
            for r in 0..<s { rowOff[r] = previous[r] * d }
            gatheredMatrixProduct(m: L, n: d, k: s, a: a, aRowOffsets: ws.identity, aColumnOffsets: ws.denseRows,
                                  b: rootScaledLastWeights.pointer, bRowOffsets: rowOff, c: ck, ldc: d)
            writeDiagonal(fromFactor: ck, into: hk)
        } else {
            let g = UnsafePointer(gram.pointer)
            for r in 0..<s {
                let src = g + previous[r] * h, dst = sub + r * s
                for t in 0..<s { dst[t] = src[previous[t]] }
            }
            let tg = ws.timesGram.pointer
            gemm(.none, .none, m: s, n: L, k: s, alpha: 1, a: sub, lda: max(s, 1), b: a, ldb: L, beta: 0, c: tg, ldc: L)
            gemm(.transpose, .none, m: L, n: L, k: s, alpha: 1, a: a, lda: L, b: tg, ldb: L, beta: 0, c: hk, ldc: L)
        }
        smallMatrixProduct(m: 1, n: L, k: s, a: us, aRowStride: 0, aColumnStride: 1, b: a, ldb: L, c: ws.gradient.pointer + k * L, ldc: L)
    }

    /// ``compactJacobianProducts(point:workspace:)`` for |z| ≤ ``gatheredLatentLimit``, where
    /// unpacked products win (see there): the same products on
    /// the same active units, each read in place through offsets by
    /// ``gatheredMatrixProduct(m:n:k:a:aRowOffsets:aColumnOffsets:b:bRowOffsets:c:ldc:)``
    /// instead of gathered into copies first: B₁ is rows S₁ of W₁ᵀ, Wₗ[Sₗ₋₁, Sₗ]ᵀ and G[S, S]
    /// are read from Wₗ and G, u[S] from u. Every element is the same in-order fused sum as on
    /// the copies, so H̃ and JᵀΛr are bit for bit those of the copying path — except where
    /// d < h or the data-space solve runs: there C = Bᵀ·F[S, :] (|z| × d, F = W_L Λ^{1/2}) is
    /// formed instead of T, and H̃ = C·Cᵀ with the packed kernel (or only H̃'s diagonal, for
    /// the data-space solve): the same H̃ to rounding, at |z|·|S|·d + |z|²·d multiply-adds.
    func gatheredJacobianProducts(point k: Int, workspace ws: GaussNewtonWorkspace) {
        let net = decoder.network, layers = net.layerCount, L = decoder.latent
        let p = UnsafePointer(net.parameters.pointer)
        let h = net.widths[layers - 1]
        var out = ws.jacobianA.pointer, spare = ws.jacobianB.pointer
        var previous = ws.activeA, current = ws.activeB
        let rowOff = ws.rowOffsets, colOff = ws.columnOffsets
        // Layer 1: B₁ = W₁[:, S₁]ᵀ, rows S₁ of W₁ᵀ read in place.
        let h1 = net.widths[1], act1 = ws.network.activations[0].pointer + k * h1
        var sPrev = 0
        for c in 0..<h1 where act1[c] > 0 { previous[sPrev] = c; sPrev += 1 }
        var bBase = UnsafePointer(firstWeightsTransposed.pointer)
        var bRows = UnsafePointer(ws.rightRowOffsets)
        for t in 0..<sPrev { ws.rightRowOffsets[t] = previous[t] * L }
        if layers > 2 {
            for l in 2..<layers {
                // Bₗ = Wₗ[Sₗ₋₁, Sₗ]ᵀ · Bₗ₋₁: A(t, r) = Wₗ[Sₗ₋₁[r], Sₗ[t]] = wₗ[Sₗ₋₁[r]·nOut + Sₗ[t]].
                let nOut = net.widths[l], wl = p + net.weightOffsets[l - 1], act = ws.network.activations[l - 1].pointer + k * nOut
                var s = 0
                for c in 0..<nOut where act[c] > 0 { current[s] = c; s += 1 }
                for r in 0..<sPrev { colOff[r] = previous[r] * nOut }
                gatheredMatrixProduct(m: s, n: L, k: sPrev, a: wl, aRowOffsets: UnsafePointer(current), aColumnOffsets: colOff,
                                      b: bBase, bRowOffsets: bRows, c: out, ldc: L)
                bBase = UnsafePointer(out); bRows = UnsafePointer(ws.denseRows)
                swap(&out, &spare); swap(&previous, &current); sPrev = s
            }
        }
        let s = sPrev
        let tg = ws.timesGram.pointer
        if solvesInDataSpace || usesGramFactor {
            // C = Bᵀ · F[S, :]: A(i, t) = B(t, i) = bBase[bRows[t] + i], B(t, e) = F[S[t]·d + e].
            // The data-space solve reads C and H̃'s diagonal; else (d < h) H̃ = C·Cᵀ, packed:
            // |z|·|S|·d + |z|²·d multiply-adds instead of |S|²·|z| + |z|²·|S| through G[S, S].
            let d = decoder.dataWidth, ck = tg + k * L * d, hk = ws.hessian.pointer + k * L * L
            for r in 0..<s { rowOff[r] = previous[r] * d }
            gatheredMatrixProduct(m: L, n: d, k: s, a: bBase, aRowOffsets: ws.identity, aColumnOffsets: bRows,
                                  b: rootScaledLastWeights.pointer, bRowOffsets: rowOff, c: ck, ldc: d)
            if solvesInDataSpace {
                writeDiagonal(fromFactor: ck, into: hk)
            } else {
                gemm(.none, .transpose, m: L, n: L, k: d, alpha: 1, a: ck, lda: d, b: ck, ldb: d, beta: 0, c: hk, ldc: L)
            }
        } else {
            // T = G[S, S] · B: A(r, t) = G[S[r], S[t]] = g[S[r]·h + S[t]].
            for r in 0..<s { rowOff[r] = previous[r] * h }
            gatheredMatrixProduct(m: s, n: L, k: s, a: gram.pointer, aRowOffsets: rowOff, aColumnOffsets: UnsafePointer(previous),
                                  b: bBase, bRowOffsets: bRows, c: tg, ldc: L)
            // H̃ = Bᵀ · T: A(i, t) = B(t, i) = bBase[bRows[t] + i].
            gatheredMatrixProduct(m: L, n: L, k: s, a: bBase, aRowOffsets: ws.identity, aColumnOffsets: bRows,
                                  b: tg, bRowOffsets: ws.denseRows, c: ws.hessian.pointer + k * L * L, ldc: L)
        }
        // JᵀΛr = Bᵀ · u[S], as the 1 × |z| product u[S]ᵀ · B: A(0, t) = u[S[t]].
        gatheredMatrixProduct(m: 1, n: L, k: s, a: ws.projected.pointer + k * h, aRowOffsets: ws.identity,
                              aColumnOffsets: UnsafePointer(previous), b: bBase, bRowOffsets: bRows,
                              c: ws.gradient.pointer + k * L, ldc: L)
    }

    /// The likelihood's constant per point: ½ d log 2πσₓ² or ½ (Σ_d λ_d + d log 2π).
    func likelihoodConstant() -> Double {
        let d = decoder.dataWidth
        switch decoder.objective.likelihood {
        case .fixedVariance(let s):
            return 0.5 * Double(d) * Foundation.log(2 * Double.pi * Double(s) * Double(s))
        case .learnedVariance:
            let lv = decoder.logNoiseVariance!.pointer
            var c = 0.0
            for k in 0..<d { c += Double(lv[k]) }
            return 0.5 * (c + Double(d) * Foundation.log(2 * Double.pi))
        }
    }

    /// Overwrites the upper triangle of symmetric positive semi-definite M (n × n, row-major;
    /// only the upper triangle is read) by U with M = UᵀU.
    ///
    /// Right-looking, row-oriented: every inner loop is a contiguous fused multiply-add over
    /// a row (4 doubles a vector). A Schur pivot that is not > `pivotTolerance` (including NaN)
    /// freezes its coordinate: its row of U is zeroed, and ``choleskySubstitute(_:_:n:)`` then
    /// returns δⱼ = 0, which solves the system restricted to the other coordinates (for PSD M
    /// a vanishing pivot implies a vanishing row beside it).
    static func choleskyFactor(_ a: UnsafeMutablePointer<Double>, n: Int, pivotTolerance: Double) {
        for j in 0..<n {
            let rj = a + j * n
            let s = rj[j]
            if !(s > pivotTolerance) || !s.isFinite {
                for k in j..<n { rj[k] = 0 }
                continue
            }
            let dj = s.squareRoot(), inv = 1 / dj
            rj[j] = dj
            for k in (j + 1)..<n { rj[k] *= inv }
            // Schur complement: M[i, i…] −= U[j, i] · U[j, i…] for i > j.
            for i in (j + 1)..<n {
                let f = rj[i]
                if f == 0 { continue }
                subtractScaled(a + i * n + i, rj + i, -f, count: n - i)
            }
        }
    }

    /// Solves UᵀU X = B in place (B → X) for m right-hand sides at once, U from
    /// ``choleskyFactor(_:n:pivotTolerance:)``; B is n × m row-major (row r holds coordinate r
    /// of every right-hand side), so every inner loop is a fused multiply-add over m contiguous
    /// values. A zeroed row of U gives row 0 of X, as in ``choleskySubstitute(_:_:n:)``. The
    /// forward sweep rounds exactly as that function's; the backward sweep sums in a different
    /// order (same value up to rounding).
    static func choleskySubstituteMany(_ u: UnsafePointer<Double>, _ b: UnsafeMutablePointer<Double>, n: Int, columns m: Int) {
        // Forward: Uᵀ Y = B, row by row of Y.
        for j in 0..<n {
            let rj = u + j * n, yj = b + j * m
            let d = rj[j]
            if d == 0 { yj.update(repeating: 0, count: m); continue }
            divide(yj, by: d, count: m)
            for i in (j + 1)..<n where rj[i] != 0 { subtractScaled(b + i * m, yj, -rj[i], count: m) }
        }
        // Backward: U X = Y.
        for j in stride(from: n - 1, through: 0, by: -1) {
            let rj = u + j * n, xj = b + j * m
            let d = rj[j]
            if d == 0 { xj.update(repeating: 0, count: m); continue }
            for i in (j + 1)..<n where rj[i] != 0 { subtractScaled(xj, b + i * m, -rj[i], count: m) }
            divide(xj, by: d, count: m)
        }
    }

    /// y /= d over `count` doubles, 4 at a time (a true division, rounded as the scalar one).
    @inline(__always)
    static func divide(_ y: UnsafeMutablePointer<Double>, by d: Double, count: Int) {
        var k = 0
        let dv = SIMD4<Double>(repeating: d)
        let yr = UnsafeMutableRawPointer(y)
        while k + 4 <= count {
            yr.storeBytes(of: yr.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self) / dv, toByteOffset: k * 8, as: SIMD4<Double>.self)
            k += 4
        }
        while k < count { y[k] /= d; k += 1 }
    }

    /// y += f·x over `count` doubles, fused, 4 at a time.
    @inline(__always)
    static func subtractScaled(_ y: UnsafeMutablePointer<Double>, _ x: UnsafePointer<Double>, _ f: Double, count: Int) {
        var k = 0
        let fv = SIMD4<Double>(repeating: f)
        let yr = UnsafeMutableRawPointer(y), xr = UnsafeRawPointer(x)
        while k + 4 <= count {
            let yv = yr.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self)
            let xv = xr.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self)
            yr.storeBytes(of: yv.addingProduct(fv, xv), toByteOffset: k * 8, as: SIMD4<Double>.self)
            k += 4
        }
        while k < count { y[k] = y[k].addingProduct(f, x[k]); k += 1 }
    }

    /// Solves UᵀU δ = b in place (b → δ) with U from ``choleskyFactor(_:n:pivotTolerance:)``;
    /// a zeroed row of U gives δⱼ = 0. O(n²); U is only read, so one factor serves many b.
    static func choleskySubstitute(_ u: UnsafePointer<Double>, _ b: UnsafeMutablePointer<Double>, n: Int) {
        // Forward: Uᵀ y = b, column by column.
        for j in 0..<n {
            let rj = u + j * n
            if rj[j] == 0 { b[j] = 0; continue }
            let y = b[j] / rj[j]
            b[j] = y
            subtractScaled(b + j + 1, rj + j + 1, -y, count: n - j - 1)
        }
        // Backward: U δ = y.
        for j in stride(from: n - 1, through: 0, by: -1) {
            let rj = u + j * n
            if rj[j] == 0 { b[j] = 0; continue }
            b[j] = (b[j] - dot(rj + j + 1, b + j + 1, count: n - j - 1)) / rj[j]
        }
    }

    /// Σ x[k]·y[k] over `count` doubles, in four 4-wide fused accumulators (a strict scalar
    /// reduction does not vectorize).
    @inline(__always)
    static func dot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, count: Int) -> Double {
        let xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y)
        var a0 = SIMD4<Double>(), a1 = SIMD4<Double>(), a2 = SIMD4<Double>(), a3 = SIMD4<Double>()
        var k = 0
        while k + 16 <= count {
            let o = k * 8
            a0 = a0.addingProduct(xr.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self), yr.loadUnaligned(fromByteOffset: o, as: SIMD4<Double>.self))
            a1 = a1.addingProduct(xr.loadUnaligned(fromByteOffset: o + 32, as: SIMD4<Double>.self), yr.loadUnaligned(fromByteOffset: o + 32, as: SIMD4<Double>.self))
            a2 = a2.addingProduct(xr.loadUnaligned(fromByteOffset: o + 64, as: SIMD4<Double>.self), yr.loadUnaligned(fromByteOffset: o + 64, as: SIMD4<Double>.self))
            a3 = a3.addingProduct(xr.loadUnaligned(fromByteOffset: o + 96, as: SIMD4<Double>.self), yr.loadUnaligned(fromByteOffset: o + 96, as: SIMD4<Double>.self))
            k += 16
        }
        while k + 4 <= count {
            a0 = a0.addingProduct(xr.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self), yr.loadUnaligned(fromByteOffset: k * 8, as: SIMD4<Double>.self))
            k += 4
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while k < count { s = s.addingProduct(x[k], y[k]); k += 1 }
        return s
    }
}

/// Per-point LM state for one refinement: λ, finished flag, iterations processed, P(μ).
final class PointState: @unchecked Sendable {
    let damping: UnsafeMutablePointer<Double>
    let finished: UnsafeMutablePointer<Bool>
    let steps: UnsafeMutablePointer<Int32>
    let rejected: UnsafeMutablePointer<Int32>
    /// P(μᵢ) at the current μᵢ, as last measured: the value the guard compares trials with.
    let objective: UnsafeMutablePointer<Double>
    /// Each point's linearization inputs at its current μ, when kept.
    let cache: LinearizationCache?
    /// With smoothing: the spread s_l of each point's pre-activations per hidden layer at its
    /// start (count × hidden layers; NaN until measured at its first iteration).
    let spreads: UnsafeMutablePointer<Float>
    let hiddenLayers: Int
    /// Krylov solve: each point's last accepted step (count × |z|) and whether it has one.
    let lastStep: UnsafeMutablePointer<Float>?
    let hasLastStep: UnsafeMutablePointer<Bool>?
    init(count: Int, damping lambda: Double, cache: LinearizationCache? = nil, hiddenLayers: Int = 0, lastSteps latent: Int = 0) {
        self.cache = cache
        let c = max(count, 1)
        if latent > 0 {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: c * latent); p.initialize(repeating: 0, count: c * latent)
            let f = UnsafeMutablePointer<Bool>.allocate(capacity: c); f.initialize(repeating: false, count: c)
            lastStep = p; hasLastStep = f
        } else {
            lastStep = nil; hasLastStep = nil
        }
        self.hiddenLayers = hiddenLayers
        spreads = .allocate(capacity: max(c * hiddenLayers, 1)); spreads.initialize(repeating: .nan, count: max(c * hiddenLayers, 1))
        damping = .allocate(capacity: c); damping.initialize(repeating: lambda, count: c)
        finished = .allocate(capacity: c); finished.initialize(repeating: false, count: c)
        steps = .allocate(capacity: c); steps.initialize(repeating: 0, count: c)
        rejected = .allocate(capacity: c); rejected.initialize(repeating: 0, count: c)
        objective = .allocate(capacity: c); objective.initialize(repeating: .nan, count: c)
    }
    func deallocate() {
        damping.deallocate(); finished.deallocate(); steps.deallocate(); rejected.deallocate(); objective.deallocate()
        spreads.deallocate()
        lastStep?.deallocate(); hasLastStep?.deallocate()
        cache?.deallocate()
    }
}

/// What a Gauss-Newton linearization needs from the forward pass at a point's μ, kept per
/// point so that pass is not repeated: the hidden layers' activations (whose ReLU pattern
/// picks the active units) and u = Λr·W_Lᵀ (h values; JᵀΛr itself for a linear decoder).
/// Written when a point is linearized from a fresh forward pass and when a trial moves its μ;
/// a rejected trial leaves μ, and so the entry, as it was. n × (Σ hidden widths + h) floats.
final class LinearizationCache: @unchecked Sendable {
    let valid: UnsafeMutablePointer<Bool>
    let hiddenWidths: [Int], rowWidth: Int, projectedWidth: Int
    let activations: FloatBuffer   // n × Σ hidden widths
    let projected: FloatBuffer     // n × h
    init(count n: Int, hiddenWidths: [Int], projectedWidth h: Int) {
        let c = max(n, 1)
        self.hiddenWidths = hiddenWidths
        rowWidth = hiddenWidths.reduce(0, +)
        projectedWidth = h
        valid = .allocate(capacity: c); valid.initialize(repeating: false, count: c)
        activations = FloatBuffer(count: max(c * rowWidth, 1))
        projected = FloatBuffer(count: c * h)
    }
    func deallocate() { valid.deallocate() }

    /// Stores row `row` of each hidden layer's activations (and of `projected`, when given) as
    /// point i's, and marks it valid.
    func store(point i: Int, row: Int, activations layers: [FloatBuffer], projected u: UnsafePointer<Float>?) {
        var dst = activations.pointer + i * rowWidth
        for (l, w) in hiddenWidths.enumerated() { dst.update(from: layers[l].pointer + row * w, count: w); dst += w }
        if let u { storeProjected(point: i, from: u + row * projectedWidth) }
        valid[i] = true
    }

    func storeProjected(point i: Int, from u: UnsafePointer<Float>) {
        (projected.pointer + i * projectedWidth).update(from: u, count: projectedWidth)
    }

    /// Writes point i's activations and u into row `row` of the layers' buffers and of `projected`.
    func restore(point i: Int, row: Int, activations layers: [FloatBuffer], projected u: UnsafeMutablePointer<Float>) {
        var src = UnsafePointer(activations.pointer + i * rowWidth)
        for (l, w) in hiddenWidths.enumerated() { (layers[l].pointer + row * w).update(from: src, count: w); src += w }
        (u + row * projectedWidth).update(from: projected.pointer + i * projectedWidth, count: projectedWidth)
    }
}

/// One thread's scratch memory for ``GaussNewtonRefinement``, for up to `maxPoints` points.
final class GaussNewtonWorkspace: @unchecked Sendable {
    let network: NetworkWorkspace
    let z: FloatBuffer, zTrial: FloatBuffer, lvTrial: FloatBuffer   // maxPoints × |z|
    let residual: FloatBuffer                                         // maxPoints × d: Λr
    let jacobianA: FloatBuffer, jacobianB: FloatBuffer                // (maxPoints·|z|) × widest hidden
    let timesGram: FloatBuffer                                        // (maxPoints·|z|) × max(h, d): A·G, or C = A·F
    let projected: FloatBuffer                                        // maxPoints × h: Λr W_Lᵀ
    let hessian: FloatBuffer                                          // maxPoints × |z| × |z|: H̃
    let gradient: FloatBuffer                                         // maxPoints × |z|: JᵀΛr
    let index: UnsafeMutablePointer<Int>
    /// Compact path: active-unit lists and gathered sub-blocks of Wₗ, G (widest² ) and u.
    let activeA: UnsafeMutablePointer<Int>, activeB: UnsafeMutablePointer<Int>
    let subMatrix: FloatBuffer, subVector: FloatBuffer
    /// Compact path up to |z| = ``GaussNewtonRefinement/gatheredLatentLimit``: element offsets for ``gatheredMatrixProduct`` (widest each):
    /// rows and columns of the gathered left operand, rows of the right one; `identity[t] = t`
    /// (max(|z|, widest)) and `denseRows[t] = t·|z|` (widest) for operands that are not gathered.
    let rowOffsets: UnsafeMutablePointer<Int>, columnOffsets: UnsafeMutablePointer<Int>, rightRowOffsets: UnsafeMutablePointer<Int>
    let identity: UnsafeMutablePointer<Int>, denseRows: UnsafeMutablePointer<Int>
    let before: UnsafeMutablePointer<Double>, sigmaBefore: UnsafeMutablePointer<Double>, sigmaAfter: UnsafeMutablePointer<Double>
    let pending: UnsafeMutablePointer<Int>
    let system: UnsafeMutablePointer<Double>
    /// δ of each pending point (maxPoints × |z|), and the σ part's scratch: H̃ⱼⱼ, exp(log σ²)
    /// before and after (|z| each).
    let deltas: UnsafeMutablePointer<Double>
    let diagonal: FloatBuffer, expOld: FloatBuffer, expNew: FloatBuffer
    /// Linear decoders: the factored damped system (U) for the λ in `factorDampings` (NaN:
    /// empty), a few at once because points that had a step rejected carry other λ than the
    /// rest; the points of one λ are solved together in `manyRightHandSides` (|z| × maxPoints),
    /// grouped with `grouped` and `members` (maxPoints each).
    let factors: [UnsafeMutablePointer<Double>]
    var factorDampings: [Double]
    let manyRightHandSides: UnsafeMutablePointer<Double>
    let grouped: UnsafeMutablePointer<Bool>
    let members: UnsafeMutablePointer<Int>
    /// The points whose accepted trial goes on to another iteration (maxPoints), for ``LinearizationCache``.
    let keptPoints: UnsafeMutablePointer<Int>
    var nextFactorSlot = 0
    /// ReLU decoders with |z| ≤ `laneLatentLimit`: eight damped systems and right-hand sides,
    /// one per SIMD lane (|z|² and |z| vectors: 4 MB at |z| = 256). Up to |z| = 256 the lanes'
    /// factor, read along rows, beats one system at a time: `pesvi bench gn --dim 64 --arch 2
    /// --points 200` 64–68 against 86–96 ms an iteration at |z| = 192, 127 against 182–230 at
    /// |z| = 256 (docs/BENCHMARKS.md, twentieth session).
    static let lanes = 8
    static let laneLatentLimit = 256
    let laneSystem: UnsafeMutablePointer<SIMD8<Double>>
    let laneRightHandSide: UnsafeMutablePointer<SIMD8<Double>>
    /// The data-space solve's scratch (ReLU decoder with d < |z|, else one element each): one
    /// point's C̃ = E^{−1/2}C (|z| × d), a lane group's K = C̃ᵀC̃ (lanes × d × d), E⁻¹g̃ (|z|)
    /// and Cᵀ E⁻¹g̃, then y (d). See ``GaussNewtonRefinement/solveInDataSpace(gradient:pendingCount:beta:state:workspace:)``.
    let dataSpaceScaled: FloatBuffer, dataSpaceGrams: FloatBuffer
    let dataSpaceReduced: UnsafeMutablePointer<Double>, dataSpaceVector: UnsafeMutablePointer<Double>
    /// E of each lane's point (lanes × |z|), and the lanes' saved right-hand sides and corrections (d each).
    let dataSpaceRemainders: UnsafeMutablePointer<Double>
    let laneSaved: UnsafeMutablePointer<SIMD8<Double>>, laneCorrection: UnsafeMutablePointer<SIMD8<Double>>
    /// Smoothed iterations: each linearized point's temperatures per hidden layer and each
    /// trial row's (maxPoints × hidden layers); and one layer row's slopes for the dense products,
    /// σ(a/τ) or the ReLU's 0/1 (widest).
    let temperatures: FloatBuffer, trialTemperatures: FloatBuffer, slopes: FloatBuffer

    /// The slot holding λ (isNew false), or the oldest slot, emptied for λ (isNew true: the
    /// caller factors into it).
    func factorSlot(for lambda: Double) -> (slot: Int, isNew: Bool) {
        for k in 0..<factors.count where factorDampings[k] == lambda { return (k, false) }
        let k = nextFactorSlot
        nextFactorSlot = (k + 1) % factors.count
        factorDampings[k] = lambda
        return (k, true)
    }

    func forgetFactors() { for k in factorDampings.indices { factorDampings[k] = .nan } }

    /// The Krylov solve's scratch (``GaussNewtonRefinement/krylovDimension`` > 0, ReLU decoder),
    /// and the smoothed iterations' where their dimension differs
    /// (``GaussNewtonRefinement/smoothedKrylovDimension``).
    let krylov: KrylovWorkspace?
    let smoothedKrylov: KrylovWorkspace?

    init(decoder: GaussianDecoder, maxPoints m: Int, packedWeights: PackedWeights? = nil, krylovDimension: Int = 0,
         smoothedKrylovDimension: Int = 0, smoothedKrylovInFirstLayer: Bool = false) {
        let net = decoder.network, L = decoder.latent, d = decoder.dataWidth
        let hidden = net.widths.dropFirst().dropLast()
        let widest = hidden.max() ?? 1, h = net.widths[net.layerCount - 1]
        network = NetworkWorkspace(network: net, maxRows: m, packedWeights: packedWeights)
        z = FloatBuffer(count: m * L); zTrial = FloatBuffer(count: m * L); lvTrial = FloatBuffer(count: m * L)
        residual = FloatBuffer(count: m * d)
        jacobianA = FloatBuffer(count: hidden.isEmpty ? 1 : m * L * widest)
        jacobianB = FloatBuffer(count: hidden.count < 2 ? L * widest : m * L * widest)
        let dataSpace = !hidden.isEmpty && d < L
        timesGram = FloatBuffer(count: hidden.isEmpty ? 1 : m * L * (dataSpace ? max(h, d) : h))
        dataSpaceScaled = FloatBuffer(count: dataSpace ? L * d : 1)
        dataSpaceGrams = FloatBuffer(count: dataSpace ? GaussNewtonWorkspace.lanes * d * d : 1)
        dataSpaceReduced = .allocate(capacity: dataSpace ? L : 1); dataSpaceReduced.initialize(repeating: 0, count: dataSpace ? L : 1)
        dataSpaceVector = .allocate(capacity: dataSpace ? d : 1); dataSpaceVector.initialize(repeating: 0, count: dataSpace ? d : 1)
        let laneCount = dataSpace ? GaussNewtonWorkspace.lanes * L : 1, laneD = dataSpace ? d : 1
        dataSpaceRemainders = .allocate(capacity: laneCount); dataSpaceRemainders.initialize(repeating: 0, count: laneCount)
        laneSaved = .allocate(capacity: laneD); laneSaved.initialize(repeating: SIMD8(), count: laneD)
        laneCorrection = .allocate(capacity: laneD); laneCorrection.initialize(repeating: SIMD8(), count: laneD)
        projected = FloatBuffer(count: m * h)
        hessian = FloatBuffer(count: m * L * L)
        gradient = FloatBuffer(count: m * L)
        index = .allocate(capacity: m); index.initialize(repeating: 0, count: m)
        activeA = .allocate(capacity: widest); activeA.initialize(repeating: 0, count: widest)
        activeB = .allocate(capacity: widest); activeB.initialize(repeating: 0, count: widest)
        subMatrix = FloatBuffer(count: widest * widest)
        subVector = FloatBuffer(count: widest)
        rowOffsets = .allocate(capacity: widest); rowOffsets.initialize(repeating: 0, count: widest)
        columnOffsets = .allocate(capacity: widest); columnOffsets.initialize(repeating: 0, count: widest)
        rightRowOffsets = .allocate(capacity: widest); rightRowOffsets.initialize(repeating: 0, count: widest)
        identity = .allocate(capacity: max(L, widest)); for t in 0..<max(L, widest) { (identity + t).initialize(to: t) }
        denseRows = .allocate(capacity: widest); for t in 0..<widest { (denseRows + t).initialize(to: t * L) }
        before = .allocate(capacity: m); before.initialize(repeating: 0, count: m)
        sigmaBefore = .allocate(capacity: m); sigmaBefore.initialize(repeating: 0, count: m)
        sigmaAfter = .allocate(capacity: m); sigmaAfter.initialize(repeating: 0, count: m)
        pending = .allocate(capacity: m); pending.initialize(repeating: 0, count: m)
        system = .allocate(capacity: L * L); system.initialize(repeating: 0, count: L * L)
        deltas = .allocate(capacity: m * L); deltas.initialize(repeating: 0, count: m * L)
        diagonal = FloatBuffer(count: L); expOld = FloatBuffer(count: L); expNew = FloatBuffer(count: L)
        factors = (0..<4).map { _ in
            let f = UnsafeMutablePointer<Double>.allocate(capacity: L * L); f.initialize(repeating: 0, count: L * L); return f
        }
        factorDampings = [Double](repeating: .nan, count: 4)
        manyRightHandSides = .allocate(capacity: L * m); manyRightHandSides.initialize(repeating: 0, count: L * m)
        grouped = .allocate(capacity: m); grouped.initialize(repeating: false, count: m)
        let laneL = L <= GaussNewtonWorkspace.laneLatentLimit && net.layerCount > 1 ? L : 1
        laneSystem = .allocate(capacity: laneL * laneL); laneSystem.initialize(repeating: SIMD8(), count: laneL * laneL)
        laneRightHandSide = .allocate(capacity: laneL); laneRightHandSide.initialize(repeating: SIMD8(), count: laneL)
        members = .allocate(capacity: m); members.initialize(repeating: 0, count: m)
        keptPoints = .allocate(capacity: m); keptPoints.initialize(repeating: 0, count: m)
        temperatures = FloatBuffer(count: max(m * hidden.count, 1))
        trialTemperatures = FloatBuffer(count: max(m * hidden.count, 1))
        slopes = FloatBuffer(count: widest)
        // The workspace the smoothed iterations use holds the first layer's basis where they keep it there.
        let sharedSmoothed = smoothedKrylovDimension > 0 && smoothedKrylovDimension == krylovDimension
        krylov = krylovDimension > 0 && net.layerCount > 1
            ? KrylovWorkspace(decoder: decoder, maxPoints: m, dimension: krylovDimension, firstLayer: sharedSmoothed && smoothedKrylovInFirstLayer) : nil
        smoothedKrylov = smoothedKrylovDimension > 0 && smoothedKrylovDimension != krylovDimension && net.layerCount > 1
            ? KrylovWorkspace(decoder: decoder, maxPoints: m, dimension: smoothedKrylovDimension, firstLayer: smoothedKrylovInFirstLayer) : nil
    }

    deinit {
        rowOffsets.deallocate(); columnOffsets.deallocate(); rightRowOffsets.deallocate(); identity.deallocate(); denseRows.deallocate()
        index.deallocate(); activeA.deallocate(); activeB.deallocate(); before.deallocate(); sigmaBefore.deallocate(); sigmaAfter.deallocate()
        pending.deallocate(); system.deallocate(); deltas.deallocate(); factors.forEach { $0.deallocate() }
        manyRightHandSides.deallocate(); grouped.deallocate(); members.deallocate(); keptPoints.deallocate(); laneSystem.deallocate(); laneRightHandSide.deallocate()
        dataSpaceReduced.deallocate(); dataSpaceVector.deallocate(); dataSpaceRemainders.deallocate()
        laneSaved.deallocate(); laneCorrection.deallocate()
    }
}
