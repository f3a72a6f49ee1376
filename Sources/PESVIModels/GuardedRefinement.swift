import Foundation
import PESVINumerics

/// Settings of guarded Adam refinement (PE-SVI-auto).
public struct GuardedRefinementConfiguration: Sendable, Codable, Equatable {
    /// Adam rate at the start of every point (each point's own rate only ever shrinks).
    public var learningRate: Float
    /// A point finishes when `patience` accepted steps in a row each improved its objective
    /// by less than `tolerance` (relative).
    public var tolerance: Double = 1e-3
    public var patience: Int = 2
    /// Upper bound on steps per point.
    public var maxSteps: Int = 50
    /// Factor applied to a point's rate when its step is rejected.
    public var backoff: Float = 0.5
    /// Each point's fixed antithetic noise pair (ε, −ε) has Rademacher entries (±1) rather
    /// than Gaussian ones; see ``ChunkRequest/rademacherPointNoise``.
    public var rademacherNoise = true
    /// Evaluate each antithetic pair through the decoder's output layer once, at the pair's
    /// mean (``ChunkRequest/pairGram``): the same objective up to rounding, at about one
    /// sample's cost in the output layer. Used only when the output layer's input is no wider
    /// than the data (h ≤ d), where it saves work.
    public var pairedOutputLayer = true
    /// With the reconstruction objective, set each point's log σ² once to
    /// min(log σ², `logVarianceFloor`) and refine μ on the objective at z = μ, one row per point,
    /// instead of the antithetic pair. There, E_q (1/d)‖x − D(z)‖² = (1/d)‖x − D(μ)‖² + a σ
    /// part that is ≥ 0 and falls as σ → 0 (Σⱼ σⱼ²H̃ⱼⱼ/d under the linearization), so σ's best
    /// value is the floor, as PE-SVI-GN sets it; the pair only served to press σ down, at twice
    /// the hidden layers' work. Measured on the synthetic |z| = 32 models: an iteration 22–29 %
    /// cheaper (`pesvi bench auto`), the same steps to SVI or one more (`docs/RESULTS.md`, "Twelfth session").
    /// Objectives with a KL term (σ has an interior optimum) always use the pair.
    public var closedFormVariance = true
    /// The log σ² that `closedFormVariance` sets (a start already below it is kept): PE-SVI-GN's
    /// floor, σ² ≈ 1.5·10⁻⁸.
    public var logVarianceFloor: Float = GaussNewtonRefinement.defaultLogVarianceFloor
    /// How an accepted point moves; see ``StepRule``.
    public var stepRule: StepRule = .adam

    /// The step a point takes from its gradient g = ∇P(μ).
    public enum StepRule: String, Sendable, Codable, CaseIterable {
        /// Adam at `learningRate` (each point's own moments): PE-SVI-auto's rule.
        case adam
        /// The Cauchy step of the Gauss-Newton model: μ ← μ − s·α·g with
        /// α = ‖g‖² / (gᵀH̃g), H̃ = (2/d)JᵀJ the Gauss-Newton curvature of P(μ) = (1/d)‖x − D(μ)‖²,
        /// i.e. the minimizer of that model along −g (exact for a linear decoder), and
        /// s = `learningRate` times the point's backoff factor. One Jacobian-vector product per
        /// step up to the last hidden layer (v, rows × h) and, where h < d, ‖Jg‖² = v G vᵀ through
        /// the output layer's Gram matrix G = W Wᵀ (h² per point instead of h·d); no |z| × |z| system. Only at the mean with the
        /// reconstruction objective (`closedFormVariance`).
        case cauchy
        /// The Gauss-Newton model's minimizer over span{g, p}, p the point's last accepted step:
        /// s = c₁g + c₂p with (SᵀH̃S) c = −Sᵀg, S = [g p], scaled like the Cauchy step; the
        /// Cauchy step itself when there is no last step (the first, or after a rejected one) or
        /// g and p are (nearly) parallel in H̃'s metric. One Jacobian-vector product more than
        /// the Cauchy step (J·p) after the first iteration. Only where the Cauchy step applies.
        case subspace
        /// The Gauss-Newton model's minimizer over span{g, H̃g, p}: the subspace step with the
        /// second Krylov vector H̃g = (2/d)Jᵀ(Jg) beside the gradient, s = c₁g + c₂H̃g + c₃p with
        /// (SᵀH̃S) c = −Sᵀg, S = [g H̃g p] (a 3 × 3 system per point). H̃g costs one backward
        /// pass from the last hidden layer (from the output where h ≥ d), and its image J·H̃g one
        /// Jacobian-vector product more. A direction nearly dependent on the earlier ones in
        /// H̃'s metric is dropped (the first step has no p; a rejected step forgets it), so the
        /// step falls back to the subspace or the Cauchy step. Only where the Cauchy step applies.
        case krylov

        /// The rules whose step length comes from the Gauss-Newton model (no rate to tune).
        public var usesGaussNewtonModel: Bool { self != .adam }
        /// How many Krylov vectors g, H̃g, … span the step (0 for Adam).
        public var krylovVectors: Int {
            switch self {
            case .adam: 0
            case .cauchy, .subspace: 1
            case .krylov: 2
            }
        }
        /// Whether the point's last accepted step p spans the step too.
        public var usesLastStep: Bool { self == .subspace || self == .krylov }
    }

    public init(learningRate: Float, tolerance: Double = 1e-3, patience: Int = 2, maxSteps: Int = 50, backoff: Float = 0.5) {
        self.learningRate = learningRate
        self.tolerance = tolerance
        self.patience = patience
        self.maxSteps = maxSteps
        self.backoff = backoff
    }

    /// PE-SVI-Cauchy's settings: the Cauchy step at its own length (scale 1, no pace), with
    /// the default guard and early exit, at most `maxSteps` steps per point.
    public static func cauchy(maxSteps: Int) -> GuardedRefinementConfiguration {
        var c = GuardedRefinementConfiguration(learningRate: 1, maxSteps: maxSteps)
        c.stepRule = .cauchy
        return c
    }
}

/// The result of a guarded refinement.
public struct GuardedRefinementResult: Sendable {
    public var mu: [Float]
    public var logVariance: [Float]
    /// Mean per-point objective after t iterations (finished points keep their last value).
    public var curve: [Double]
    /// Adam steps each point took (evaluations that led to an accepted or rejected step).
    public var stepsPerPoint: [Int]
    /// Each point's final objective.
    public var perPointObjective: [Double]
    /// Whether each point finished by the early-exit rule (it stopped improving).
    public var finishedEarly: [Bool]
    public var meanSteps: Double { stepsPerPoint.isEmpty ? 0 : Double(stepsPerPoint.reduce(0, +)) / Double(stepsPerPoint.count) }
    public var maxSteps: Int { stepsPerPoint.max() ?? 0 }
    /// Wall time of the refinement (plus `startSeconds`), seconds.
    public var seconds: Double
    /// Steps rejected by the divergence guard, over all points.
    public var rejectedSteps: Int
    /// After iteration t (index t − 1): the mean over points of the steps taken so far, and the
    /// wall time so far (plus `startSeconds`, without the observer's time).
    public var meanStepsAfter: [Double] = []
    public var secondsAfter: [Double] = []
}

/// Called after each iteration of a refinement with its number (1, 2, …) and the current μ
/// and log σ² (n × |z| each). The time it takes is not counted in the refinement's seconds.
public typealias RefinementObserver = (_ iteration: Int, _ mu: UnsafePointer<Float>, _ logVariance: UnsafePointer<Float>) -> Void

/// Adam refinement from a start (the pseudo-encoder's output) with per-point control:
///
/// - **Common random numbers, antithetic.** Each point's noise is one fixed pair (ε, −ε) drawn
///   from its index, so its objective is a deterministic function of its own (μ, log σ²) and the
///   guard below compares like with like. The pair matters: with a single fixed ε the optimizer
///   can fit x with μ + σ⊙ε instead of shrinking σ (seen on digits: the refined posterior ended
///   worse than its start); with (ε, −ε) the cross terms cancel for a locally linear decoder.
///   Each step therefore costs two samples per point in the hidden layers; the output layer,
///   linear, takes each pair once, at its mean, when h ≤ d (``ChunkRequest/pairGram``).
/// - **Reconstruction objective: at the mean.** Without a KL term σ's optimum is the floor, so
///   by default (``GuardedRefinementConfiguration/closedFormVariance``) log σ² is set there
///   once and Adam refines μ on the deterministic objective at z = μ: no noise, one row per
///   point. The objective the guard compares is then exactly (1/d)‖x − D(μ)‖².
/// - **Divergence guard.** A step after which the point's objective rose, or became
///   non-finite, is undone for that point (values and Adam state restored) and its rate is
///   multiplied by `backoff`: the point's objective never rises.
/// - **Step rule.** Adam by default (PE-SVI-auto); with ``GuardedRefinementConfiguration/StepRule/cauchy``
///   each accepted point instead moves to the Gauss-Newton model's minimizer along its gradient
///   (PE-SVI-Cauchy), with the same guard, backoff and early exit; with
///   ``GuardedRefinementConfiguration/StepRule/subspace`` to its minimizer over the gradient and
///   the point's last accepted step (forgotten when a step is rejected); with
///   ``GuardedRefinementConfiguration/StepRule/krylov`` over the gradient, H̃ times the gradient
///   and the last step.
/// - **Per-point early exit.** A point whose accepted steps stop improving (relative change
///   below `tolerance` for `patience` steps) is finished: it is neither evaluated nor changed
///   again, so it costs nothing more and stays bit-for-bit as it was.
///
/// The decoder's weights are packed (``PackedWeights``) at the start of every call: the
/// decoder must not change during one.
public final class GuardedRefinement: @unchecked Sendable {
    public let decoder: GaussianDecoder
    public let threads: Int
    public let chunkRows: Int
    let workspaces: [ChunkWorkspace]
    /// The decoder's weights packed for the workspaces; packed again at the start of every call.
    let packedWeights: PackedWeights
    let gradMu: [FloatBuffer], gradLv: [FloatBuffer]
    let scratch: [UnsafeMutablePointer<Double>]
    /// The Gauss-Newton-model steps (Cauchy, subspace, Krylov) take their curvatures, and H̃g,
    /// through the output layer's Gram matrix when h < d (else, or when false, by forming J·g
    /// and J·p at the output); tests turn it off to compare the two.
    var cauchyThroughGram = true

    public init(decoder: GaussianDecoder, threads: Int = 1, chunkRows: Int = 128, samples: Int = 2) {
        precondition(samples >= 2 && samples % 2 == 0, "guarded refinement draws antithetic pairs: samples must be even, got \(samples)")
        self.decoder = decoder
        self.threads = threads
        self.chunkRows = chunkRows
        let L = decoder.latent
        let packed = PackedWeights(network: decoder.network)
        packedWeights = packed
        workspaces = (0..<threads).map { _ in ChunkWorkspace(decoder: decoder, maxPoints: chunkRows, samples: samples, packedWeights: packed) }
        gradMu = (0..<threads).map { _ in FloatBuffer(count: chunkRows * L) }
        gradLv = (0..<threads).map { _ in FloatBuffer(count: chunkRows * L) }
        scratch = (0..<threads).map { _ in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: chunkRows); p.initialize(repeating: 0, count: chunkRows); return p
        }
    }

    deinit { scratch.forEach { $0.deallocate() } }

    /// Whether the Gauss-Newton-model steps take their images through the output layer's Gram
    /// matrix (h × h per row) rather than at the output (d per row): when the output layer's
    /// input is narrower than the data and the noise is fixed (``refine`` and
    /// ``AutomaticPace/iterationCost(_:decoder:)`` both follow it).
    static func modelImagesThroughGram(_ decoder: GaussianDecoder) -> Bool {
        decoder.outputLayerInputWidth < decoder.dataWidth && decoder.logNoiseVariance == nil
    }

    /// Refines every point from `start` (μ, log σ², n × |z| each). `startSeconds` (the encoder
    /// pass) is added to the reported time.
    public func refine(_ x: Dataset, start: (mu: [Float], logVariance: [Float]), configuration c: GuardedRefinementConfiguration,
                       seed: UInt64, startSeconds: Double = 0, observer: RefinementObserver? = nil) -> GuardedRefinementResult {
        let n = x.rows, L = decoder.latent, d = x.cols
        // The reconstruction objective's σ optimum is the floor: μ alone is refined, at the mean.
        let atMean = c.closedFormVariance && decoder.objective.kind == .reconstruction
        let modelStep = c.stepRule.usesGaussNewtonModel, keepsLastStep = c.stepRule.usesLastStep
        precondition(!modelStep || atMean, "the Gauss-Newton-model steps need the reconstruction objective at the mean (closedFormVariance)")
        let startLogVariance = atMean ? start.logVariance.map { Swift.min($0, c.logVarianceFloor) } : start.logVariance
        let table = PosteriorTable(mu: start.mu, logVariance: startLogVariance, latent: L, adam: AdamConfiguration(learningRate: c.learningRate))
        let runner = ChunkRunner(threads: threads, chunkRows: chunkRows)
        let active = UnsafeMutablePointer<Bool>.allocate(capacity: max(n, 1)); active.initialize(repeating: true, count: max(n, 1))
        let rate = FloatBuffer([Float](repeating: 1, count: n))
        let previous = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1)); previous.initialize(repeating: .infinity, count: max(n, 1))
        let stalls = UnsafeMutablePointer<Int32>.allocate(capacity: max(n, 1)); stalls.initialize(repeating: 0, count: max(n, 1))
        let steps = UnsafeMutablePointer<Int32>.allocate(capacity: max(n, 1)); steps.initialize(repeating: 0, count: max(n, 1))
        let converged = UnsafeMutablePointer<Bool>.allocate(capacity: max(n, 1)); converged.initialize(repeating: false, count: max(n, 1))
        let rowState = 6 * L + 1
        let saved = FloatBuffer(count: n * rowState)
        defer { active.deallocate(); previous.deallocate(); stalls.deallocate(); steps.deallocate(); converged.deallocate() }
        let rejected = SharedDoubles(count: runner.chunkCount(rows: n))
        let noiseSeed = seed &* 0xA24B_AED4_963E_E407
        let clock = ContinuousClock(), t0 = clock.now
        packedWeights.refresh()  // the decoder's current weights (timed: part of the call's work)
        let gram: FloatBuffer? = !atMean && c.pairedOutputLayer && decoder.outputLayerInputWidth <= d ? FloatBuffer(decoder.outputGram()) : nil
        // Each point's fixed noise, drawn once rather than on every evaluation.
        let noise = decoder.fixedPointNoise(seed: noiseSeed, firstPoint: 0, count: atMean ? 0 : n, samples: workspaces[0].samples,
                                            antithetic: true, rademacher: c.rademacherNoise)
        let perPointNoise = ChunkRequest.pointNoiseWidth(samples: workspaces[0].samples, antithetic: true, latent: L)
        var curve: [Double] = []
        // The Gauss-Newton-model steps minimize P's Gauss-Newton model over the span of the
        // directions S = [g, H̃g, …, p] (k Krylov vectors, then the last step p where the rule
        // uses it): (SᵀH̃S) c = −Sᵀg. Each direction's image J·s is needed for SᵀH̃S. When the
        // output layer's input is narrower than the data (h < d), through the output layer's
        // Gram matrix G = W Wᵀ (h × h, once per call): with v = ∂a_{L−1}/∂z · s (rows × h),
        // (Js)·(Js′) = v G v′ᵀ, h² per row instead of h·d, and H̃s = (2/d)·backward(v G) from the
        // last hidden layer. Else J·s itself (rows × d) and H̃s = (2/d)·backward(J·s).
        let h = decoder.outputLayerInputWidth
        let throughGram = modelStep && cauchyThroughGram && GuardedRefinement.modelImagesThroughGram(decoder)
        let outputGram = throughGram ? FloatBuffer(decoder.outputGram()) : nil
        let krylovCount = c.stepRule.krylovVectors
        let directionCount = krylovCount + (keepsLastStep ? 1 : 0)
        let imageWidth = throughGram ? h : d
        // Per thread: the directions' images (direction-major, rows × imageWidth each), v·G of the
        // current one, the Krylov vectors after g (rows × |z| each), the step direction (rows ×
        // |z|), and each point's (SᵀH̃S, Sᵀg) in Double.
        let images = modelStep ? (0..<threads).map { _ in FloatBuffer(count: directionCount * chunkRows * imageWidth) } : []
        let gramImage = throughGram ? (0..<threads).map { _ in FloatBuffer(count: chunkRows * h) } : []
        let krylovBasis = krylovCount > 1 ? (0..<threads).map { _ in FloatBuffer(count: (krylovCount - 1) * chunkRows * L) } : []
        let direction = modelStep ? (0..<threads).map { _ in FloatBuffer(count: chunkRows * L) } : []
        // Per point: SᵀH̃S, Sᵀg, the Cholesky factor and the coefficients.
        let systemSize = 2 * directionCount * directionCount + 2 * directionCount
        let systems: [UnsafeMutablePointer<Double>] = modelStep ? (0..<threads).map { _ in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: chunkRows * systemSize); p.initialize(repeating: 0, count: chunkRows * systemSize); return p
        } : []
        defer { systems.forEach { $0.deallocate() } }
        // Each point's last accepted step p (n × |z|, zero when there is none).
        let lastStep = keepsLastStep ? FloatBuffer(count: n * L) : FloatBuffer(count: 0)
        let curvatureScale = 2 / Double(d)

        /// The Gauss-Newton model's minimizer over the rule's directions for the chunk rows
        /// `firstRow` ..< `firstRow + rows`, J at the μ just evaluated, gradient `g` (rows × |z|):
        /// the unscaled step into `direction[t]`. The directions are taken in order (g, H̃g, …, p)
        /// and one nearly dependent on those before it in H̃'s metric (its Cholesky pivot at most
        /// 10⁻⁴ of its curvature) is dropped; no step when g itself has no positive curvature.
        func gaussNewtonModelSteps(rows m: Int, firstRow s0: Int, gradient gm: UnsafeMutablePointer<Float>, thread t: Int, withLastStep: Bool) {
            let network = decoder.network, ws = workspaces[t].network
            let img = images[t].pointer, dir = direction[t].pointer, sys = systems[t]
            let withP = keepsLastStep && withLastStep
            let count = krylovCount + (withP ? 1 : 0)
            /// Direction i's rows (|z| each): g, the Krylov vectors after it, then p.
            func basis(_ i: Int) -> UnsafeMutablePointer<Float> {
                i == 0 ? gm : i < krylovCount ? krylovBasis[t].pointer + (i - 1) * chunkRows * L : lastStep.pointer + s0 * L
            }
            for i in 0..<count {
                let u = basis(i), v = img + i * chunkRows * imageWidth
                // v = J·u (through G: ∂a_{L−1}/∂z·u, then v·G into gramImage).
                let vg: UnsafePointer<Float>
                if let outputGram {
                    network.jacobianVectorProduct(u, rows: m, workspace: ws, output: v, layers: network.layerCount - 1)
                    gemm(.none, .none, m: m, n: h, k: h, alpha: 1, a: v, lda: h, b: outputGram.pointer, ldb: h,
                         beta: 0, c: gramImage[t].pointer, ldc: h)
                    vg = UnsafePointer(gramImage[t].pointer)
                } else {
                    network.jacobianVectorProduct(u, rows: m, workspace: ws, output: v)
                    vg = UnsafePointer(v)
                }
                // Row i of SᵀH̃S against the directions so far, and (Sᵀg)ᵢ.
                for k in 0..<m {
                    let a = sys + k * systemSize
                    for j in 0...i {
                        let hij = curvatureScale * Elementwise.dot(img + j * chunkRows * imageWidth + k * imageWidth, vg + k * imageWidth, count: imageWidth)
                        a[i * directionCount + j] = hij
                        a[j * directionCount + i] = hij
                    }
                    a[directionCount * directionCount + i] = Elementwise.dot(u + k * L, gm + k * L, count: L)
                }
                // The next Krylov vector H̃u = (2/d)·Jᵀ(J·u).
                if i + 1 < krylovCount {
                    let next = basis(i + 1)
                    if outputGram != nil {
                        if network.layerCount > 1 {
                            network.inputGradient(fromHidden: network.layerCount - 1, table.mu.pointer + s0 * L, rows: m, workspace: ws,
                                                  hiddenGradient: gramImage[t].pointer, inputGradient: next)
                        } else {
                            next.update(from: gramImage[t].pointer, count: m * L)  // a linear decoder: v = u, H̃u ∝ u·G
                        }
                    } else {
                        network.backward(table.mu.pointer + s0 * L, rows: m, workspace: ws, outputGradient: v,
                                         parameterGradients: nil, inputGradient: next)
                    }
                    Elementwise.scale(next, by: Float(curvatureScale), count: m * L)
                }
            }
            for k in 0..<m {
                let a = sys + k * systemSize, rhs = a + directionCount * directionCount
                let factor = rhs + directionCount, c = factor + directionCount * directionCount
                let out = dir + k * L
                out.update(repeating: 0, count: L)
                GuardedRefinement.minimizeModel(a, rhs, stride: directionCount, count: count, factor: factor, coefficients: c)
                for i in 0..<count where c[i] != 0 {
                    let u = basis(i) + k * L, ci = Float(c[i])
                    for j in 0..<L { out[j] += ci * u[j] }
                }
            }
        }

        // One pass: evaluate each active point; reject (restore, back off) or accept (save,
        // step); finish points that stopped improving.
        func pass(iteration: Int, update: Bool) {
            runner.run(rows: n) { t, c0, start0, count in
                var rng = RandomGenerator(seed: 0)  // unused: the noise is drawn beforehand
                let gm = gradMu[t].pointer, gl = gradLv[t].pointer, pp = scratch[t]
                var i = 0
                var memo = AdamFactorMemo()
                while i < count {
                    if !active[start0 + i] { i += 1; continue }
                    var j = i + 1
                    while j < count && active[start0 + j] { j += 1 }
                    let s0 = start0 + i, m = j - i
                    var req = ChunkRequest(x: x.values.pointer + s0 * d, count: m, mu: table.mu.pointer + s0 * L, muStride: L,
                                           logVariance: table.logVariance.pointer + s0 * L, logVarianceStride: L)
                    if atMean {
                        req.atMean = true
                    } else {
                        req.pointNoise = UnsafePointer(noise.pointer + s0 * perPointNoise)
                        req.antithetic = true
                    }
                    req.firstPoint = s0
                    req.rademacherPointNoise = c.rademacherNoise
                    req.pairGram = gram.map { UnsafePointer($0.pointer) }
                    req.perPoint = pp
                    if update { req.gradMu = gm; req.gradLogVariance = gl; req.gradientStride = L }
                    decoder.evaluate(req, workspace: workspaces[t], rng: &rng)
                    if update && modelStep {
                        // The last step is in the span from the second iteration on (zero after a rejected one).
                        gaussNewtonModelSteps(rows: m, firstRow: s0, gradient: gm, thread: t, withLastStep: iteration > 0)
                    }
                    for k in 0..<m {
                        let p = s0 + k, f = pp[k], before = previous[p]
                        let state = saved.pointer + p * rowState
                        if !f.isFinite || f > before {
                            // The last step made things worse: undo it and slow this point down.
                            table.restoreRow(p, from: state)
                            if keepsLastStep { (lastStep.pointer + p * L).update(repeating: 0, count: L) }
                            rate[p] *= c.backoff
                            rejected.pointer[c0] += 1
                            stalls[p] = -1  // the next evaluation repeats `before` exactly: not a stall
                            if rate[p] < 1e-6 { active[p] = false }
                            continue
                        }
                        if stalls[p] < 0 {
                            stalls[p] = 0
                        } else if before.isFinite && before - f < c.tolerance * abs(before) {
                            stalls[p] += 1
                            if stalls[p] >= Int32(c.patience) { active[p] = false; converged[p] = true; previous[p] = f; continue }
                        } else {
                            stalls[p] = 0
                        }
                        previous[p] = f
                        guard update, Int(steps[p]) < c.maxSteps else { if update { active[p] = false }; continue }
                        table.saveRow(p, into: state)
                        if modelStep {
                            // s = scale·(the model's minimizer); with the last step in the span, it
                            // becomes the point's last step.
                            let scale = c.learningRate * rate[p]
                            let mu = table.mu.pointer + p * L, dir = direction[t].pointer + k * L
                            if keepsLastStep {
                                let last = lastStep.pointer + p * L
                                for j in 0..<L { let s = scale * dir[j]; last[j] = s; mu[j] += s }
                            } else {
                                for j in 0..<L { mu[j] += scale * dir[j] }
                            }
                        } else {
                            table.updateRow(p, gradMu: gm + k * L, gradLogVariance: gl + k * L, learningRateScale: rate[p], memo: &memo)
                        }
                        steps[p] += 1
                    }
                    i = j
                }
            }
            var total = 0.0
            for p in 0..<n { total += previous[p] }
            curve.append(total / Double(max(n, 1)))
        }
        var observing = Duration.zero
        func secondsSoFar() -> Double {
            let e = clock.now - t0 - observing
            return Double(e.components.seconds) + Double(e.components.attoseconds) * 1e-18 + startSeconds
        }
        var meanStepsAfter: [Double] = [], secondsAfter: [Double] = []
        var iteration = 0
        while iteration < c.maxSteps {
            var any = false
            for p in 0..<n where active[p] { any = true; break }
            if !any { break }
            pass(iteration: iteration, update: true)
            iteration += 1
            secondsAfter.append(secondsSoFar())
            var total = 0
            for p in 0..<n { total += Int(steps[p]) }
            meanStepsAfter.append(Double(total) / Double(max(n, 1)))
            if let observer {
                let o0 = clock.now
                observer(iteration, table.mu.pointer, table.logVariance.pointer)
                observing += clock.now - o0
            }
        }
        // A final evaluation settles the last step of each still-active point (it may be rejected).
        pass(iteration: iteration, update: false)
        let seconds = secondsSoFar()
        return GuardedRefinementResult(mu: table.mu.array, logVariance: table.logVariance.array, curve: curve,
                                       stepsPerPoint: (0..<n).map { Int(steps[$0]) },
                                       perPointObjective: (0..<n).map { previous[$0] },
                                       finishedEarly: (0..<n).map { converged[$0] },
                                       seconds: seconds, rejectedSteps: Int(rejected.sum()),
                                       meanStepsAfter: meanStepsAfter, secondsAfter: secondsAfter)
    }
}

extension GuardedRefinement {
    /// The minimizer c of the quadratic model ½cᵀAc + bᵀc over the first `count` directions:
    /// A c = −b, A (`stride` × `stride`, symmetric, row-major; the leading `count` × `count`
    /// block is read) and b in Double. The directions are taken in order; one whose Cholesky
    /// pivot is at most 10⁻⁴ of its diagonal (less than 1 % of its length in A's metric lies
    /// outside the span of those before it, whose entries are Float products; or without
    /// curvature) is dropped, its coefficient 0. When the first is dropped, or the solution is
    /// not finite, every coefficient is 0, except that a finite first-direction minimizer
    /// −b₀/A₀₀ is kept when A₀₀ > 0 (the Cauchy step). `factor` (stride²) is scratch;
    /// `coefficients` (count values) receives c.
    static func minimizeModel(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, stride n: Int, count: Int,
                              factor l: UnsafeMutablePointer<Double>, coefficients c: UnsafeMutablePointer<Double>) {
        c.update(repeating: 0, count: count)
        guard count > 0 else { return }
        let a00 = a[0]
        guard a00 > 0, a00.isFinite else { return }
        // Row-wise Cholesky over the kept directions: l[i * n + r] is L's entry for direction i
        // and kept position r (kept[r] the direction).
        var kept = (0, 0, 0, 0, 0, 0, 0, 0)  // at most 8 directions
        precondition(count <= 8, "minimizeModel: at most 8 directions, got \(count)")
        var keptCount = 0
        withUnsafeMutableBytes(of: &kept) { raw in
            let kept = raw.bindMemory(to: Int.self).baseAddress!
            for i in 0..<count {
                let aii = a[i * n + i]
                guard aii > 0, aii.isFinite else { continue }
                var pivot = aii
                for r in 0..<keptCount {
                    let j = kept[r]
                    var v = a[i * n + j]
                    for q in 0..<r { v -= l[i * n + q] * l[j * n + q] }
                    v /= l[j * n + r]
                    l[i * n + r] = v
                    pivot -= v * v
                }
                guard pivot > 1e-4 * aii, pivot.isFinite else { continue }
                l[i * n + keptCount] = pivot.squareRoot()
                kept[keptCount] = i
                keptCount += 1
            }
            guard keptCount > 0, kept[0] == 0 else { return }
            // L y = −b over the kept directions, then Lᵀ c = y.
            var y = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            withUnsafeMutableBytes(of: &y) { rawY in
                let y = rawY.bindMemory(to: Double.self).baseAddress!
                for r in 0..<keptCount {
                    let i = kept[r]
                    var v = -b[i]
                    for q in 0..<r { v -= l[i * n + q] * y[q] }
                    y[r] = v / l[i * n + r]
                }
                for r in stride(from: keptCount - 1, through: 0, by: -1) {
                    let i = kept[r]
                    var v = y[r]
                    for q in (r + 1)..<keptCount { v -= l[kept[q] * n + r] * c[kept[q]] }
                    c[i] = v / l[i * n + r]
                }
            }
            var finite = true
            for r in 0..<keptCount where !c[kept[r]].isFinite { finite = false }
            if !finite {
                c.update(repeating: 0, count: count)
                let cauchy = -b[0] / a00
                if cauchy.isFinite { c[0] = cauchy }
            }
        }
    }
}

/// Automatic pace: the refinement rate chosen on validation data by a search over a log scale,
/// and, with the reconstruction objective, the step rule (Adam at that rate, or a step whose
/// length each point takes from the Gauss-Newton model: the Cauchy, subspace or Krylov step).
public enum AutomaticPace {
    public struct Outcome: Sendable, Codable, Equatable {
        /// The chosen Adam rate; 1 (the step's own length, unscaled) when `stepRule` is one of
        /// the Gauss-Newton-model rules.
        public var learningRate: Float
        /// The chosen step rule.
        public var stepRule: GuardedRefinementConfiguration.StepRule = .adam
        /// (log10 rate, mean final objective, mean steps, early progress) of every Adam rate
        /// tried, in order; early progress is Σ over t = 1 … `earlySteps` of the mean objective
        /// after t steps (the final one once the run has ended).
        public var tried: [[Double]]
        /// The Cauchy, subspace and Krylov steps' (mean final objective, mean steps, early
        /// progress), when they were candidates (reconstruction objective at the mean); nil
        /// otherwise.
        public var cauchy: [Double]? = nil
        public var subspace: [Double]? = nil
        public var krylov: [Double]? = nil
        /// SVI's level on the search's rows, when one was given (``select``'s `target`), and
        /// whether it decided the choice: some eligible candidate reached it within
        /// ``earlySteps`` iterations, and of those the least modelled work won. Each row then
        /// ends with the mean steps per point to the first iteration within 1 % of the target
        /// (+∞: not within ``earlySteps``).
        public var target: Double? = nil
        public var chosenByTarget = false

        /// The settings a refinement at this outcome uses: `base` with the chosen rate and rule.
        public func configuration(_ base: GuardedRefinementConfiguration) -> GuardedRefinementConfiguration {
            var c = base
            c.learningRate = learningRate
            c.stepRule = stepRule
            return c
        }
    }

    /// Relative band around the best final objective inside which the candidates count as
    /// equally good (1 %, issue 6's own tolerance for "as good as SVI"), and the steps whose
    /// objectives make up the early progress that picks among them.
    public static let tieBand = 1e-2
    public static let earlySteps = 5
    /// The rules without a rate that are candidates where they apply, in order of preference
    /// on a tie.
    public static let gaussNewtonRules: [GuardedRefinementConfiguration.StepRule] = [.cauchy, .subspace, .krylov]

    /// Whether the Gauss-Newton-model rules (Cauchy, subspace, Krylov) can be candidates: the
    /// reconstruction objective, refined at the mean (``GuardedRefinementConfiguration/closedFormVariance``).
    public static func cauchyApplies(decoder: GaussianDecoder, base: GuardedRefinementConfiguration) -> Bool {
        base.closedFormVariance && decoder.objective.kind == .reconstruction
    }

    /// Multiply-adds per point of one iteration of guarded refinement at the mean (the
    /// reconstruction objective) with `rule`, from the decoder's layer widths w₀ = |z|, …, w_K = d:
    /// with F = Σₗ wₗ₋₁·wₗ, the forward pass and the backward pass to μ cost F each (Adam: 2F).
    /// Each direction s of a Gauss-Newton-model step adds its image J·s: through the output
    /// layer's Gram matrix when h = w_{K−1} < d (as ``GuardedRefinement/refine`` takes it),
    /// F − h·d + h² (the hidden layers' Jacobian-vector product, then v·G), else F; and its row of
    /// SᵀH̃S, (i + 1)·(h or d) for the i-th direction (i from 0). The Krylov step's H̃g adds one
    /// backward pass, F − h·d from the last hidden layer through G, else F. Directions: the
    /// Cauchy step g; the subspace step g and the last step p; the Krylov step g, H̃g and p.
    /// Elementwise work and the guard's bookkeeping are not counted (they make the measured
    /// ratios a little larger: `docs/BENCHMARKS.md`, `pesvi bench auto`).
    public static func iterationCost(_ rule: GuardedRefinementConfiguration.StepRule, decoder: GaussianDecoder) -> Double {
        let w = decoder.network.widths
        var f = 0.0
        for l in 1..<w.count { f += Double(w[l - 1] * w[l]) }
        let adam = 2 * f
        guard rule.usesGaussNewtonModel else { return adam }
        let d = Double(decoder.dataWidth), h = Double(decoder.outputLayerInputWidth)
        let throughGram = GuardedRefinement.modelImagesThroughGram(decoder)
        let image = throughGram ? f - h * d + h * h : f
        let width = throughGram ? h : d
        let directions = rule.krylovVectors + (rule.usesLastStep ? 1 : 0)
        var cost = adam
        for i in 0..<directions { cost += image + Double(i + 1) * width }
        if rule.krylovVectors > 1 { cost += Double(rule.krylovVectors - 1) * (throughGram ? f - h * d : f) }
        return cost
    }

    /// Searches log10(rate) ∈ [low, high] for the mean final objective of guarded Adam
    /// refinement: a coarse scan at half-decade spacing, then golden-section refinement around
    /// the best (no hand grid). Where ``cauchyApplies(decoder:base:)`` and `includeGaussNewtonRules`,
    /// the Cauchy, the subspace and the Krylov step (`base` with that rule, scale 1) are candidates too,
    /// run once each. Among the candidates whose final objective is within ``tieBand`` (1 %) of
    /// the best of all, the one with the fastest early progress wins: the lowest Σ of the mean
    /// objective after steps 1 … ``earlySteps`` (issue 6 asks for a handful of steps; ties: the
    /// lower final objective, then Adam, then the Cauchy, subspace and Krylov step in that order). That progress is searched for
    /// too: a second golden-section search, around the eligible Adam rate of the fastest
    /// progress so far, of the early progress, with the rates outside the band counting as +∞
    /// (skipped when no Adam rate is in the band). The final objective is flat to about a per
    /// cent across a wide range of rates (`docs/RESULTS.md`, issue 6), so within that range the
    /// choice is about speed.
    ///
    /// `target`: SVI's converged level on these rows (its expected reconstruction), used where
    /// the candidates' curves are that reconstruction at the mean (``cauchyApplies(decoder:base:)``).
    /// Then the eligible candidates that come within 1 % of it in at most ``earlySteps``
    /// iterations are ranked by the work to get there, mean steps per point times
    /// ``iterationCost(_:decoder:)``, and the least wins (ties: the rule above); only when none
    /// gets there does early progress decide. This is issue 6's own measure (steps and time to
    /// SVI's level): where the Cauchy step reaches it in one step as the Krylov step does, the
    /// cheaper Cauchy iteration wins.
    public static func select(decoder: GaussianDecoder, x: Dataset, start: (mu: [Float], logVariance: [Float]),
                              base: GuardedRefinementConfiguration, threads: Int, seed: UInt64,
                              low: Double = -3, high: Double = 1, includeGaussNewtonRules: Bool = true,
                              target: Double? = nil) -> Outcome {
        let refiner = GuardedRefinement(decoder: decoder, threads: threads)
        var tried: [[Double]] = []
        let level = cauchyApplies(decoder: decoder, base: base) ? target.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } : nil
        /// [final objective, mean steps, early progress] of one refinement, and with a level the
        /// mean steps per point to it (+∞: not within ``earlySteps`` iterations).
        func run(_ c: GuardedRefinementConfiguration) -> [Double] {
            let r = refiner.refine(x, start: start, configuration: c, seed: seed)
            let f = r.curve.last ?? .infinity
            // curve[t] is the mean objective after t steps (curve[0] the start).
            var early = 0.0
            for t in 1...earlySteps { early += r.curve.isEmpty ? .infinity : r.curve[min(t, r.curve.count - 1)] }
            let row = [f.isFinite ? f : .infinity, r.meanSteps, early.isFinite ? early : .infinity]
            guard let level else { return row }
            var toLevel = Double.infinity
            if let t = Convergence.firstStep(reaching: level, in: r.curve), t <= earlySteps {
                toLevel = t == 0 ? 0 : r.meanStepsAfter[t - 1]
            }
            return row + [toLevel]
        }
        let rules = includeGaussNewtonRules && cauchyApplies(decoder: decoder, base: base) ? gaussNewtonRules : []
        let ruleRows: [[Double]] = rules.map { rule in
            var c = base
            c.learningRate = 1
            c.stepRule = rule
            return run(c)
        }
        /// Refines at rate 10^e once (remembered): [e, final objective, mean steps, early progress].
        func score(_ e: Double) -> [Double] {
            if let hit = tried.first(where: { abs($0[0] - e) < 1e-9 }) { return hit }
            var c = base
            c.learningRate = Float(pow(10, e))
            c.stepRule = .adam
            tried.append([e] + run(c))
            return tried[tried.count - 1]
        }
        /// Six golden-section steps minimizing `f` over log10(rate) ∈ [centre ± 0.5] ∩ [low, high].
        func goldenSection(around centre: Double, _ f: (Double) -> Double) {
            let phi = (5.0.squareRoot() - 1) / 2
            var a = max(low, centre - 0.5), b = min(high, centre + 0.5)
            var x1 = b - phi * (b - a), x2 = a + phi * (b - a)
            var f1 = f(x1), f2 = f(x2)
            for _ in 0..<6 {
                if f1 <= f2 { b = x2; x2 = x1; f2 = f1; x1 = b - phi * (b - a); f1 = f(x1) }
                else { a = x1; x1 = x2; f1 = f2; x2 = a + phi * (b - a); f2 = f(x2) }
            }
        }
        var e = low
        while e <= high + 1e-9 { _ = score(e); e += 0.5 }
        goldenSection(around: tried.min { $0[1] < $1[1] }![0]) { score($0)[1] }
        // The second search: early progress over the band, from the fastest eligible rate so far.
        if let fastest = tried.filter({ isEligible($0[1], tried: tried, rules: ruleRows) }).min(by: { ($0[3], $0[1]) < ($1[3], $1[1]) }) {
            goldenSection(around: fastest[0]) {
                let row = score($0)
                return isEligible(row[1], tried: tried, rules: ruleRows) ? row[3] : .infinity
            }
        }
        let row = { (rule: GuardedRefinementConfiguration.StepRule) in rules.firstIndex(of: rule).map { ruleRows[$0] } }
        let costs = level == nil ? nil : (adam: iterationCost(.adam, decoder: decoder), rules: rules.map { iterationCost($0, decoder: decoder) })
        let chosen = choice(tried: tried, rules: ruleRows, costs: costs)
        var out: Outcome
        switch chosen.choice {
        case .rule(let k):
            out = Outcome(learningRate: 1, stepRule: rules[k], tried: tried, cauchy: row(.cauchy), subspace: row(.subspace), krylov: row(.krylov))
        case .rate(let i):
            out = Outcome(learningRate: Float(pow(10, tried[i][0])), stepRule: .adam, tried: tried, cauchy: row(.cauchy), subspace: row(.subspace), krylov: row(.krylov))
        }
        out.target = level
        out.chosenByTarget = chosen.byTarget
        return out
    }

    /// Whether a final objective is within ``tieBand`` of the best final objective among the
    /// Adam rows `tried` ([e, final, steps, early]) and the rule rows `rules` ([final, steps, early]).
    static func isEligible(_ final: Double, tried: [[Double]], rules: [[Double]]) -> Bool {
        let best = min(tried.map { $0[1] }.min() ?? .infinity, rules.map { $0[0] }.min() ?? .infinity)
        return final <= best + tieBand * abs(best)
    }

    /// A candidate: an Adam row of `tried`, or a rule row (index into the rules).
    enum Choice: Equatable { case rate(Int), rule(Int) }

    /// The rule's choice among the candidates: the eligible one (``isEligible(_:tried:rules:)``)
    /// of the lowest early progress; ties go to the lower final objective, then to Adam, then
    /// to the earlier rule. At least one candidate must be given.
    static func choice(tried: [[Double]], rules: [[Double]]) -> Choice {
        choice(tried: tried, rules: rules, costs: nil).choice
    }

    /// With `costs` (multiply-adds per iteration of an Adam step and of each rule) and rows that
    /// end with the mean steps per point to SVI's level (Adam rows [e, final, steps, early,
    /// to level], rule rows [final, steps, early, to level]): the eligible candidate of the least
    /// work to that level, steps × cost, when any reached it (`byTarget`); ties go to the lower
    /// early progress, then as above. Else, or without costs, the choice above.
    static func choice(tried: [[Double]], rules: [[Double]], costs: (adam: Double, rules: [Double])?) -> (choice: Choice, byTarget: Bool) {
        precondition(!tried.isEmpty || !rules.isEmpty, "AutomaticPace.choice: no candidate")
        typealias Key = (Double, Double, Double, Int)
        var fastest: (key: Key, choice: Choice)? = nil, best: (key: Key, choice: Choice)? = nil
        func consider(_ key: Key, _ c: Choice, into slot: inout (key: Key, choice: Choice)?) { if slot == nil || key < slot!.key { slot = (key, c) } }
        for (i, r) in tried.enumerated() where isEligible(r[1], tried: tried, rules: rules) {
            consider((0, r[3], r[1], 0), .rate(i), into: &best)
            if let costs, r.count > 4, r[4].isFinite { consider((r[4] * costs.adam, r[3], r[1], 0), .rate(i), into: &fastest) }
        }
        for (k, r) in rules.enumerated() where isEligible(r[0], tried: tried, rules: rules) {
            consider((0, r[2], r[0], 1 + k), .rule(k), into: &best)
            if let costs, r.count > 3, r[3].isFinite { consider((r[3] * costs.rules[k], r[2], r[0], 1 + k), .rule(k), into: &fastest) }
        }
        if let fastest { return (fastest.choice, true) }
        // The best final objective is itself eligible, so some candidate is.
        return (best!.choice, false)
    }
}
