import Foundation
import PESVIData
import PESVIModels

/// One inference method's outcome on the evaluated points.
public struct MethodResult: Sendable, Codable, Equatable {
    /// Expected reconstruction error: mean over points and dimensions of the squared error,
    /// Monte Carlo over the posterior (in standardized units when the model standardizes).
    public var reconstruction: Double
    /// SVI: first step within 1 % of its own final plateau. PE-SVI-K: first step within 1 % of
    /// SVI's converged objective (0 for the encoder output itself). PE-SVI-auto and PE-SVI-GN:
    /// mean steps per point up to the first iteration after which their reconstruction (this
    /// metric, measured after every iteration) is within 1 % of SVI's. nil: never reached.
    public var steps: Double?
    /// Wall time of test-time inference alone: SVI from its random start to its convergence
    /// step; PE-SVI the encoder pass plus its steps (PE-SVI-auto and PE-SVI-GN: up to the
    /// iteration that reached SVI, else the whole run); VAE the encoder pass.
    public var seconds: Double
    /// Whether `steps` is part of this method's record (the VAE has none).
    public var hasSteps: Bool = true
    /// The objective curve (mean per point after t steps), for plots; not in the JSON.
    public var curve: [Double] = []
    /// Squared error at the posterior mean, (x − D(μ))² per point and dimension; not in the JSON.
    public var reconstructionAtMean: Double = .nan
    /// With an ELBO model: the mean per-point negative ELBO of the method's posteriors (nats,
    /// Monte Carlo with the same samples and seed as `reconstruction`), the objective the
    /// model was trained on; nil with the reconstruction objective. In the JSON as
    /// `negativeELBO` only then.
    public var negativeELBO: Double? = nil
    /// For per-point methods (PE-SVI-auto, PE-SVI-GN, PE-SVI-Cauchy): the most steps any point
    /// took in the whole run; in the JSON as `runMaxSteps`.
    public var maxStepsPerPoint: Int? = nil
    /// For per-point methods, the whole run to each point's own stop: mean steps per point and
    /// wall time (encoder pass included; with timing repeats the median). `steps` and `seconds`
    /// stop where SVI's level is reached. In the JSON as `runSteps` and `runSeconds`.
    public var runSteps: Double? = nil
    public var runSeconds: Double? = nil
    /// With ``ComparisonOptions/timingRepeats`` > 1: `seconds` of every repeat, in the order
    /// run (`seconds` is their median). In the JSON as `secondsRuns` only then.
    public var secondsRuns: [Double]? = nil
    /// With ``ComparisonOptions/perPoint``: each point's expected reconstruction (the points in
    /// order; their mean is `reconstruction`); not in the JSON.
    public var perPoint: [Double]? = nil
    /// With ``ComparisonOptions/perPoint`` and an ELBO model: each point's negative ELBO (their
    /// mean is `negativeELBO`); not in the JSON.
    public var perPointNegativeELBO: [Double]? = nil

    enum CodingKeys: String, CodingKey { case reconstruction, negativeELBO, steps, seconds, secondsRuns, runSteps, runMaxSteps, runSeconds }

    public init(reconstruction: Double, steps: Double?, seconds: Double, hasSteps: Bool = true, curve: [Double] = []) {
        self.reconstruction = reconstruction
        self.steps = steps
        self.seconds = seconds
        self.hasSteps = hasSteps
        self.curve = curve
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        reconstruction = try c.decode(Double.self, forKey: .reconstruction)
        negativeELBO = try c.decodeIfPresent(Double.self, forKey: .negativeELBO)
        seconds = try c.decode(Double.self, forKey: .seconds)
        hasSteps = c.contains(.steps)
        steps = try c.decodeIfPresent(Double.self, forKey: .steps)
        secondsRuns = try c.decodeIfPresent([Double].self, forKey: .secondsRuns)
        runSteps = try c.decodeIfPresent(Double.self, forKey: .runSteps)
        maxStepsPerPoint = try c.decodeIfPresent(Int.self, forKey: .runMaxSteps)
        runSeconds = try c.decodeIfPresent(Double.self, forKey: .runSeconds)
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(reconstruction, forKey: .reconstruction)
        try c.encodeIfPresent(negativeELBO, forKey: .negativeELBO)
        if hasSteps { try c.encode(steps, forKey: .steps) }   // null when never reached
        try c.encode(seconds, forKey: .seconds)
        if let runs = secondsRuns, runs.count > 1 { try c.encode(runs, forKey: .secondsRuns) }
        // Per-point methods: the whole run to each point's own stop.
        try c.encodeIfPresent(runSteps, forKey: .runSteps)
        try c.encodeIfPresent(maxStepsPerPoint, forKey: .runMaxSteps)
        try c.encodeIfPresent(runSeconds, forKey: .runSeconds)
    }
}

/// The four-method comparison on one set of points (the `evaluate --json` schema).
public struct ComparisonReport: Sendable, Codable, Equatable {
    public var dataset: String
    public var z: Int
    public var arch: String
    /// Methods in report order: VAE, SVI, PE-SVI-0, PE-SVI-K (and any added later).
    public var methods: [String: MethodResult]
    public var order: [String] = []
    /// SVI's converged objective and rate, and the pace used, for reports.
    public var sviObjective: Double = .nan
    public var sviLearningRate: Float = 0
    public var pace: Float = 0
    public var points: Int = 0
    /// PE-SVI-GN's schedule with a ReLU decoder (``GaussNewtonSchedule/name``: the model's chosen
    /// one or the options'); nil without PE-SVI-GN or with a linear decoder. JSON: `gnSchedule`.
    public var gaussNewtonSchedule: String? = nil

    enum CodingKeys: String, CodingKey { case dataset, z, arch, methods, gaussNewtonSchedule = "gnSchedule" }

    public init(dataset: String, z: Int, arch: String, methods: [String: MethodResult], order: [String]) {
        self.dataset = dataset; self.z = z; self.arch = arch; self.methods = methods; self.order = order
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataset = try c.decode(String.self, forKey: .dataset)
        z = try c.decode(Int.self, forKey: .z)
        arch = try c.decode(String.self, forKey: .arch)
        methods = try c.decode([String: MethodResult].self, forKey: .methods)
        gaussNewtonSchedule = try c.decodeIfPresent(String.self, forKey: .gaussNewtonSchedule)
        order = methods.keys.sorted()
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(z, forKey: .z)
        try c.encode(arch, forKey: .arch)
        try c.encode(methods, forKey: .methods)
        try c.encodeIfPresent(gaussNewtonSchedule, forKey: .gaussNewtonSchedule)
    }

    /// One-line JSON with keys in a fixed order.
    public func jsonLine() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

/// Settings of a comparison run.
public struct ComparisonOptions: Sendable {
    /// K of PE-SVI-K (the paper's 25).
    public var refineSteps = 25
    /// The refinement pace; nil uses the model's chosen pace (or 0.1 if none was chosen).
    public var pace: Float? = nil
    /// SVI from a random start: its rate (nil: the model's) and convergence rule.
    public var sviLearningRate: Float? = nil
    public var sviRule: StoppingRule = .sviDefault
    /// SVI's random start (nil: the distribution phase 1 started its rows from).
    public var sviInitialization: PosteriorInitialization? = nil
    /// Samples per point for the reported reconstruction error.
    public var metricSamples = 8
    public var threads = 1
    public var seed: UInt64 = 0
    public var includeVAE = true
    /// Run PE-SVI-auto: guarded refinement at the automatic pace. `autoPace`: an Adam rate
    /// instead of the model's stored choice (nil: the model's rate and step rule).
    public var includeAuto = true
    public var autoPace: Float? = nil
    public var autoMaxSteps = 50
    /// Also run PE-SVI-Cauchy: guarded refinement from the pseudo-encoder start whose step is
    /// the Gauss-Newton model's minimizer along the gradient
    /// (``GuardedRefinementConfiguration/StepRule/cauchy``; no pace), with PE-SVI-auto's
    /// early exit, guard and step budget. Only with the reconstruction objective.
    public var includeCauchy = false
    /// Run PE-SVI-GN: Levenberg–Marquardt refinement from the pseudo-encoder start.
    public var includeGaussNewton = true
    public var gaussNewtonMaxSteps = 50
    /// A point finishes when an accepted step improves its objective by less than this
    /// (relative). Measured on digits |z|=16 Arch2: 1e-4 → 4.7 mean steps, 1e-3 → 4.0 with the
    /// same reconstruction to 0.1 %, 1e-2 → 3.1 with 0.4 % worse.
    public var gaussNewtonTolerance = 1e-3
    /// Damping trials per iteration on the same linearization. A rejected trial retried within
    /// the iteration costs a solve and a forward pass; retried in the next iteration it also
    /// costs a Jacobian, and the accepted steps are the same either way. 3 measured about twice
    /// as fast as 1; 5 cut the mean steps to reach SVI on digits (`pesvi train` models) from
    /// 3.6 to 2.9 (|z|=16 Arch2), 5.5 to 4.7 (|z|=32 Arch2), 6.6 to 5.7 (|z|=16 Arch3), with the
    /// same reconstructions; 8 changed little more (2.9, 4.7, 5.6).
    public var gaussNewtonTrials = 5
    /// Every point's initial λ (Marquardt damping, relative to diag H).
    public var gaussNewtonDamping = 1e-3
    /// PE-SVI-GN's gain-ratio threshold η (``GaussNewtonRefinement/acceptanceRatio``).
    public var gaussNewtonAcceptance = 0.1
    /// PE-SVI-GN's continuation over smoothed ReLUs at each point's first iterations
    /// (``GaussNewtonSmoothing``; ``GaussNewtonSmoothing/off`` for plain Levenberg–Marquardt).
    public var gaussNewtonSmoothing = GaussNewtonSmoothing.standard
    /// PE-SVI-GN's Krylov-subspace solve (``GaussNewtonRefinement/krylovDimension``; 0: the
    /// exact solve, the default).
    public var gaussNewtonKrylov = 0
    /// PE-SVI-GN's Krylov-subspace solve in the smoothed iterations only
    /// (``GaussNewtonRefinement/smoothedKrylovDimension``; 0: they solve as the others do; nil,
    /// the default: ``GaussNewtonRefinement/defaultSmoothedKrylovDimension(latent:dataWidth:)`` of the model,
    /// or 0 with ``gaussNewtonKrylov`` set, whose solve then takes every iteration as before).
    public var gaussNewtonSmoothedKrylov: Int? = nil
    /// Whether the smoothed iterations' Krylov basis takes each point's last step
    /// (``GaussNewtonRefinement/smoothedKrylovLastStep``; nil, the default:
    /// ``GaussNewtonRefinement/defaultSmoothedKrylovLastStep(latent:dataWidth:preconditioned:)`` of the model).
    public var gaussNewtonSmoothedKrylovLastStep: Bool? = nil
    /// Whether the smoothed iterations may keep their Krylov basis in the first hidden layer's
    /// space (``GaussNewtonRefinement/smoothedKrylovInFirstLayer``; it applies only where it
    /// saves work). The same steps up to rounding; false is the basis in ℝ^|z| as before.
    public var gaussNewtonSmoothedKrylovFirstLayer = true
    /// Whether PE-SVI-GN's Krylov solves with the basis in ℝ^|z| are preconditioned by the
    /// inverse of the mean curvature at the pseudo-encoder's starts of the model's validation
    /// rows (``GaussNewtonRefinement/curvaturePreconditioner(decoder:points:starts:ridge:rows:)``;
    /// nil, the default: ``GaussNewtonRefinement/defaultKrylovPreconditioned(latent:dataWidth:)``).
    /// Without validation rows there is none. The preconditioner is part of preparing the model
    /// (as the automatic pace is), not of a refinement's time.
    public var gaussNewtonPreconditioner: Bool? = nil
    /// Krylov vectors of the last smoothed iteration where its basis is in ℝ^|z|
    /// (``GaussNewtonRefinement/lastSmoothedKrylovDimension``; nil, the default:
    /// ``GaussNewtonRefinement/defaultLastSmoothedKrylovDimension(_:preconditioned:)``, 2K/3
    /// with the preconditioner, else K).
    public var gaussNewtonLastSmoothedKrylov: Int? = nil
    /// Whether these options precondition a model of latent size `latent` and data width
    /// `dataWidth` that has validation rows.
    public func gaussNewtonPreconditioned(latent: Int, dataWidth: Int) -> Bool {
        gaussNewtonPreconditioner ?? GaussNewtonRefinement.defaultKrylovPreconditioned(latent: latent, dataWidth: dataWidth)
    }
    /// The smoothed iterations' Krylov dimension these options give a decoder of latent size
    /// `latent` and data width `dataWidth` (`preconditioned`: with a Krylov preconditioner).
    public func gaussNewtonSmoothedKrylov(latent: Int, dataWidth: Int, preconditioned: Bool = false) -> Int {
        GaussNewtonRefinement.smoothedKrylovDimension(gaussNewtonSmoothedKrylov, krylovDimension: gaussNewtonKrylov, latent: latent, dataWidth: dataWidth,
                                                      preconditioned: preconditioned)
    }
    /// The Krylov preconditioner these options give `model` (nil: none, or no validation rows
    /// to form it from): the model's own (``PESVIModel/krylovPreconditioner``), else formed from
    /// the pseudo-encoder's starts of its validation rows (``formKrylovPreconditioner(for:threads:)``).
    public func gaussNewtonPreconditioner(for model: PESVIModel, threads: Int) -> [Float]? {
        let c = model.configuration
        guard gaussNewtonPreconditioned(latent: c.latent, dataWidth: c.dataWidth) else { return nil }
        return model.krylovPreconditioner ?? ComparisonOptions.formKrylovPreconditioner(for: model, threads: threads)
    }
    /// How many of `model`'s validation rows ``formKrylovPreconditioner(for:threads:)`` forms
    /// the preconditioner on: the first min(rows, ``GaussNewtonRefinement/defaultPreconditionerRows``)
    /// (0 without validation rows).
    public static func krylovPreconditionerRows(for model: PESVIModel) -> Int {
        min(model.validationData?.rows ?? 0, GaussNewtonRefinement.defaultPreconditionerRows)
    }
    /// The Krylov preconditioner of `model` formed from the pseudo-encoder's starts of (at most
    /// ``GaussNewtonRefinement/defaultPreconditionerRows`` of) its validation rows; nil without
    /// them, or where it cannot be formed (a linear decoder, a zero curvature).
    public static func formKrylovPreconditioner(for model: PESVIModel, threads: Int) -> [Float]? {
        guard let raw = model.validationData, raw.rows > 0, let v = try? model.prepare(raw, name: "validation rows") else { return nil }
        let rows = krylovPreconditionerRows(for: model)
        let vx = rows == v.rows ? v : v.subset(Array(0..<rows))
        let starts = model.pseudoEncoder.encode(vx, threads: threads).mu
        return GaussNewtonRefinement.curvaturePreconditioner(decoder: model.decoder, points: vx, starts: starts)
    }
    /// PE-SVI-GN as these options set it (damping, stop, trials, gain ratio, smoothing, chunk
    /// rows, Krylov preconditioner): the one construction `evaluate`, `infer --method gn` and
    /// `bench latency` share.
    public func gaussNewtonRefinement(decoder: GaussianDecoder, threads: Int, preconditioner: [Float]? = nil) -> GaussNewtonRefinement {
        GaussNewtonRefinement(decoder: decoder, threads: threads, chunkRows: gaussNewtonChunkRows, damping: gaussNewtonDamping,
                              tolerance: gaussNewtonTolerance, trialsPerIteration: gaussNewtonTrials,
                              acceptanceRatio: gaussNewtonAcceptance, smoothing: gaussNewtonSmoothing, krylovDimension: gaussNewtonKrylov,
                              smoothedKrylovDimension: gaussNewtonSmoothedKrylov, smoothedKrylovLastStep: gaussNewtonSmoothedKrylovLastStep,
                              smoothedKrylovFirstLayer: gaussNewtonSmoothedKrylovFirstLayer, krylovPreconditioner: preconditioner,
                              lastSmoothedKrylovDimension: gaussNewtonLastSmoothedKrylov)
    }
    /// PE-SVI-GN for `model`: with its chosen schedule where these options take it
    /// (``applyingSchedule(of:)``), and the Krylov preconditioner that gives it.
    public func gaussNewtonRefinement(model: PESVIModel, threads: Int) -> GaussNewtonRefinement {
        let o = applyingSchedule(of: model)
        return o.gaussNewtonRefinement(decoder: model.decoder, threads: threads, preconditioner: o.gaussNewtonPreconditioner(for: model, threads: threads))
    }
    /// Whether PE-SVI-GN takes a model's chosen schedule (``ModelConfiguration/gaussNewtonSchedule``)
    /// in place of ``gaussNewtonSmoothing``, ``gaussNewtonSmoothedKrylov``,
    /// ``gaussNewtonSmoothedKrylovLastStep`` and ``gaussNewtonPreconditioner`` where it has one.
    /// `pesvi` sets it false when any of their flags, or `--gn-krylov`, is given.
    public var gaussNewtonScheduleFromModel = true
    /// These options with `schedule`'s smoothing and smoothed solve.
    public func with(_ schedule: GaussNewtonSchedule) -> ComparisonOptions {
        var o = self
        o.gaussNewtonSmoothing = schedule.smoothing
        o.gaussNewtonSmoothedKrylov = schedule.smoothedKrylov
        o.gaussNewtonSmoothedKrylovLastStep = schedule.smoothedLastStep
        o.gaussNewtonPreconditioner = schedule.preconditioned
        return o
    }
    /// These options as PE-SVI-GN applies them to `model`: with its chosen schedule when
    /// ``gaussNewtonScheduleFromModel`` and it has one, else as they are.
    public func applyingSchedule(of model: PESVIModel) -> ComparisonOptions {
        guard gaussNewtonScheduleFromModel, let choice = model.configuration.gaussNewtonSchedule else { return self }
        return with(choice.schedule)
    }
    /// The schedule these options give PE-SVI-GN (their own settings as a schedule).
    public var gaussNewtonSchedule: GaussNewtonSchedule {
        GaussNewtonSchedule(smoothing: gaussNewtonSmoothing, smoothedKrylov: gaussNewtonSmoothedKrylov,
                            smoothedLastStep: gaussNewtonSmoothedKrylovLastStep, preconditioned: gaussNewtonPreconditioner)
    }
    /// How ``gaussNewtonSmoothedKrylovLastStep`` reads in the method description.
    var smoothedLastStep: String {
        switch gaussNewtonSmoothedKrylovLastStep {
        case nil: return " and, where the data is at least as wide as the latent and no preconditioner is used, the point's last step"
        case true?: return " and the point's last step"
        case false?: return " (not the point's last step)"
        }
    }
    /// Points per chunk of the Gauss-Newton work (results do not depend on it; 32, 48, 96 and
    /// 192 for 180 points were no faster at digits |z| = 32 and 128 Arch3, `docs/RESULTS.md`,
    /// twenty-fifth session).
    public var gaussNewtonChunkRows = 64
    /// Times every method this many times and reports the median of its seconds (and of a
    /// per-point method's whole run). The methods run in turn, all of them once per repeat, so
    /// a slow stretch of the machine falls on each alike; every repeat computes the same
    /// numbers (the runs are seeded), and the first repeat's results are reported.
    public var timingRepeats = 1
    /// Keep each method's per-point expected reconstruction (``MethodResult/perPoint``), e.g.
    /// to find the points one method fails on.
    public var perPoint = false
    public init() {}

    /// The settings of PE-SVI-auto and PE-SVI-GN, in words (for `results.md`).
    public var refinementDescription: String {
        let g = GuardedRefinementConfiguration(learningRate: 1)
        func n(_ v: Double) -> String { String(format: "%g", v) }
        return "PE-SVI-auto is guarded refinement at the model's automatic pace: Adam at the chosen rate or, where the search "
            + "on the validation rows chose it (reconstruction objective), the Cauchy step (μ moved to the Gauss-Newton model's "
            + "minimizer along the gradient), the subspace step (its minimizer over the gradient and the point's last step) "
            + "or the Krylov step (its minimizer over the gradient, the curvature times the gradient and the last step); "
            + "the \"auto pace\" column says which (on μ at the mean with log σ² at the floor for the "
            + "reconstruction objective, else an antithetic pair per point; a rising step is undone and "
            + "the point's rate multiplied by \(n(Double(g.backoff))); a point stops after \(g.patience) accepted steps in a row "
            + "gaining less than \(n(g.tolerance)) relative; at most \(autoMaxSteps) steps). PE-SVI-GN is Levenberg–Marquardt on μ "
            + "with closed-form σ from the pseudo-encoder start: initial damping \(n(gaussNewtonDamping)) relative to diag H, "
            + "up to \(gaussNewtonTrials) trials per iteration (×4 damping after a rejected one), a trial accepted when it "
            + "achieves \(n(gaussNewtonAcceptance)) of its damped model's predicted decrease, a point stops when an accepted step "
            + "gains less than \(n(gaussNewtonTolerance)) relative; at most \(gaussNewtonMaxSteps) iterations"
            + (gaussNewtonSmoothing.isActive
                ? "; a point's first \(gaussNewtonSmoothing.iterations) iterations work on the decoder with its ReLUs smoothed to "
                    + "softplus at temperature \(n(gaussNewtonSmoothing.scale)) × the spread of the point's pre-activations, "
                    + "× \(n(gaussNewtonSmoothing.factor)) per iteration (a continuation; no early stop meanwhile"
                    + (gaussNewtonSmoothing.holdsDamping ? ", and an accepted step keeps its damping" : "") + ")" : "")
            + (gaussNewtonKrylov > 0
                ? "; each step solved in the span of the gradient, \(gaussNewtonKrylov - 1) curvature products of it and the "
                    + "point's last step (reconstruction objective)" : "")
            + (!gaussNewtonSmoothing.isActive || gaussNewtonKrylov > 0 && gaussNewtonSmoothedKrylov == nil ? ""
                : gaussNewtonSmoothedKrylov.map { k in k > 0 && k != gaussNewtonKrylov
                    ? "; each smoothed step solved in the span of the gradient, \(k - 1) curvature products of it\(smoothedLastStep) "
                        + "(reconstruction objective)" : "" }
                    ?? ("; each smoothed step solved in the span of the gradient, K − 1 curvature products of it\(smoothedLastStep) "
                        + "with K = 8 where the latent is wider than the data, else K = min(|z|/4, 16), from |z| = 32 on (reconstruction "
                        + "objective)"))
            + (gaussNewtonPreconditioner == false ? ""
                : gaussNewtonPreconditioner == true
                    ? "; the Krylov vectors preconditioned by the inverse of the mean curvature at the starts of the model's validation rows"
                    : "; where the data is at least as wide as the latent and 32 ≤ |z| < 64, the Krylov vectors preconditioned by the "
                        + "inverse of the mean curvature at the starts of the model's validation rows, with K = 3|z|/16 in the smoothed "
                        + "iterations")
            + (gaussNewtonLastSmoothedKrylov.map { "; the last smoothed iteration with at most \($0) Krylov vectors (basis in ℝ^|z|)" }
                ?? (gaussNewtonPreconditioner == false ? "" : "; with the preconditioner, the last smoothed iteration with 2K/3 of the K vectors"))
            + (gaussNewtonScheduleFromModel
                ? ". That is the standard schedule; each ReLU model with the reconstruction objective chooses on its validation rows "
                    + "between it and smoothing to the end (9 smoothed iterations at c = 0.8, f = 0.6; where d ≥ |z| ≥ 32 each solved in 8 "
                    + "preconditioned Krylov vectors without the last step), keeping the standard one unless the other reaches SVI's "
                    + "level there at least a whole step per point sooner (the \"GN schedule\" column)" : "")
            + ". With a linear "
            + "decoder PE-SVI-GN is one exact, undamped step (an affine map of x; the start is not used, and its time excludes the "
            + "encoder pass)."
    }
}

/// Finds the first iteration of a per-point refinement whose posteriors reach SVI's level, by
/// the reported metric: after each iteration (until it has been reached) the observer measures
/// the current μ and log σ². Measuring is not counted in the refinement's time.
final class ReachWatch {
    let reaches: (ReconstructionMetrics) -> Bool
    let measure: ([Float], [Float]) -> ReconstructionMetrics
    /// The first iteration (1, 2, …) that reached; 0 when the start already did.
    private(set) var reachedAt: Int?

    init(reaches: @escaping (ReconstructionMetrics) -> Bool, startReaches: Bool, measure: @escaping ([Float], [Float]) -> ReconstructionMetrics) {
        self.reaches = reaches
        self.measure = measure
        reachedAt = startReaches ? 0 : nil
    }

    func observer(n: Int, latent: Int) -> RefinementObserver {
        { [self] iteration, mu, logVariance in
            guard reachedAt == nil else { return }
            let count = n * latent
            let m = measure(Array(UnsafeBufferPointer(start: mu, count: count)), Array(UnsafeBufferPointer(start: logVariance, count: count)))
            if reaches(m) { reachedAt = iteration }
        }
    }

    /// Mean steps per point and seconds (encoder pass included) up to the reaching iteration;
    /// (nil, nil) when it never reached.
    func outcome(meanStepsAfter: [Double], secondsAfter: [Double], startSeconds: Double) -> (Double?, Double?) {
        guard let t = reachedAt else { return (nil, nil) }
        if t == 0 { return (0, startSeconds) }
        return (meanStepsAfter[t - 1], secondsAfter[t - 1])
    }
}

/// Runs VAE, SVI, PE-SVI-0 and PE-SVI-K on the same points with a trained model.
public enum MethodComparison {
    static func seconds(_ f: () -> Void) -> Double {
        let t0 = ContinuousClock.now
        f()
        let d = ContinuousClock.now - t0
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    public static func run(model: PESVIModel, points x: Dataset, dataset: String, options o: ComparisonOptions) -> ComparisonReport {
        var passes: [ComparisonPass] = []
        for _ in 0..<max(1, o.timingRepeats) { passes.append(pass(model: model, points: x, options: o)) }
        let first = passes[0]
        var methods = first.methods
        if passes.count > 1 {
            for name in first.order {
                guard var m = methods[name] else { continue }
                let runs = passes.compactMap { $0.methods[name]?.seconds }
                m.secondsRuns = runs
                m.seconds = median(runs)
                let whole = passes.compactMap { $0.methods[name]?.runSeconds }
                if whole.count == passes.count { m.runSeconds = median(whole) }
                methods[name] = m
            }
        }
        var r = ComparisonReport(dataset: dataset, z: model.configuration.latent, arch: model.configuration.architecture.description,
                                 methods: methods, order: first.order)
        r.sviObjective = first.sviObjective
        r.sviLearningRate = first.sviLearningRate
        r.pace = first.pace
        r.points = x.rows
        if o.includeGaussNewton && model.decoder.network.layerCount > 1 { r.gaussNewtonSchedule = o.applyingSchedule(of: model).gaussNewtonSchedule.name }
        return r
    }

    /// The median of `v` (the mean of the middle two for an even count); `v` not empty.
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])
    }

    /// What one pass over the methods measured.
    struct ComparisonPass {
        var methods: [String: MethodResult]
        var order: [String]
        var sviObjective: Double
        var sviLearningRate: Float
        var pace: Float
    }

    /// Every method once, in report order: results and wall times.
    static func pass(model: PESVIModel, points x: Dataset, options o: ComparisonOptions) -> ComparisonPass {
        let decoder = model.decoder
        let c = model.configuration
        let inference = TestTimeInference(decoder: decoder, threads: o.threads)
        func metric(_ dec: GaussianDecoder, _ mu: [Float], _ lv: [Float]) -> ReconstructionMetrics {
            Metrics.evaluate(decoder: dec, x: x, mu: mu, logVariance: lv, samples: o.metricSamples, seed: o.seed &+ 77, threads: o.threads)
        }
        /// The reported metric of a method's final posteriors, with its per-point values when asked for.
        var pending: [Double]? = nil, pendingELBO: [Double]? = nil
        func final(_ dec: GaussianDecoder, _ mu: [Float], _ lv: [Float]) -> ReconstructionMetrics {
            guard o.perPoint else { return metric(dec, mu, lv) }
            var values = [Double](repeating: 0, count: x.rows), elbo = [Double](repeating: .nan, count: x.rows)
            let m = values.withUnsafeMutableBufferPointer { v in
                elbo.withUnsafeMutableBufferPointer { e in
                    Metrics.evaluate(decoder: dec, x: x, mu: mu, logVariance: lv, samples: o.metricSamples, seed: o.seed &+ 77,
                                     threads: o.threads, perPoint: v.baseAddress, perPointNegativeELBO: e.baseAddress)
                }
            }
            pending = values
            pendingELBO = m.negativeELBO == nil ? nil : elbo
            return m
        }
        func result(_ m: ReconstructionMetrics, steps: Double?, seconds: Double, hasSteps: Bool = true, curve: [Double] = []) -> MethodResult {
            var r = MethodResult(reconstruction: m.expectedReconstruction, steps: steps, seconds: seconds, hasSteps: hasSteps, curve: curve)
            r.reconstructionAtMean = m.reconstructionAtMean
            r.negativeELBO = m.negativeELBO
            r.perPoint = pending
            r.perPointNegativeELBO = pendingELBO
            pending = nil; pendingELBO = nil
            return r
        }
        var methods: [String: MethodResult] = [:]
        var order: [String] = []

        if o.includeVAE, let vae = model.vae {
            var start: (mu: [Float], logVariance: [Float]) = ([], [])
            let s = seconds { start = vae.encoder.encode(x, threads: o.threads) }
            methods["VAE"] = result(final(vae.decoder, start.mu, start.logVariance), steps: nil, seconds: s, hasSteps: false)
            order.append("VAE")
        }

        // SVI from a random start, to its plateau.
        let sviRate = o.sviLearningRate ?? c.sviLearningRate
        let svi = inference.svi(x, initialization: o.sviInitialization ?? c.phase1.initialization, learningRate: sviRate, rule: o.sviRule, seed: o.seed &+ 1)
        let sviTarget = svi.finalObjective
        let sviSteps = Convergence.firstStep(reaching: sviTarget, in: svi.curve)
        let sviStepsValue = sviSteps.map(Double.init)
        let sviSeconds = sviSteps.map { $0 == 0 ? 0 : svi.stepTimes[$0 - 1] } ?? svi.seconds
        let sviMetric = final(decoder, svi.mu, svi.logVariance)
        methods["SVI"] = result(sviMetric, steps: sviStepsValue, seconds: sviSeconds, curve: svi.curve)
        // A per-point method reaches SVI when its reported reconstruction (the same Monte Carlo
        // estimate, same seed) is within 1 % of SVI's. Its own objective is not used: guarded
        // refinement's fixed-noise objective and Gauss-Newton's at-mean one can read lower than
        // the expected reconstruction they leave behind.
        func reachesSVI(_ m: ReconstructionMetrics) -> Bool {
            Convergence.reaches(m.expectedReconstruction, sviMetric.expectedReconstruction)
        }
        order.append("SVI")

        // PE-SVI-0: the pseudo-encoder's output.
        var start: (mu: [Float], logVariance: [Float]) = ([], [])
        let encodeSeconds = seconds { start = model.pseudoEncoder.encode(x, threads: o.threads) }
        let pace = o.pace ?? c.pace?.learningRate ?? 0.1
        let refined = inference.refine(x, start: start, learningRate: pace, steps: o.refineSteps, seed: o.seed &+ 2, startSeconds: encodeSeconds)
        let startMetric = final(decoder, start.mu, start.logVariance)
        methods["PE-SVI-0"] = result(startMetric,
                                           steps: Convergence.reaches(refined.curve[0], sviTarget) ? 0 : nil, seconds: encodeSeconds,
                                           curve: [refined.curve[0]])
        order.append("PE-SVI-0")

        // PE-SVI-K: K steps at the pace.
        let name = "PE-SVI-\(o.refineSteps)"
        methods[name] = result(final(decoder, refined.mu, refined.logVariance),
                                     steps: Convergence.firstStep(reaching: sviTarget, in: refined.curve).map(Double.init), seconds: refined.seconds,
                                     curve: refined.curve)
        order.append(name)

        // The per-point methods: a watch measures after each iteration whether SVI is reached;
        // `seconds` and `secondsAfter` include the encoder pass.
        func watch(fromStart: Bool = true) -> ReachWatch {
            ReachWatch(reaches: reachesSVI, startReaches: fromStart && reachesSVI(startMetric)) { metric(decoder, $0, $1) }
        }
        func record(_ name: String, _ w: ReachWatch, mu: [Float], logVariance: [Float], curve: [Double], meanSteps: Double, maxSteps: Int,
                    seconds: Double, meanStepsAfter: [Double], secondsAfter: [Double]) {
            let (steps, reachSeconds) = w.outcome(meanStepsAfter: meanStepsAfter, secondsAfter: secondsAfter, startSeconds: encodeSeconds)
            var r = result(final(decoder, mu, logVariance), steps: steps, seconds: reachSeconds ?? seconds, curve: curve)
            r.maxStepsPerPoint = maxSteps
            r.runSteps = meanSteps
            r.runSeconds = seconds
            methods[name] = r
            order.append(name)
        }

        // PE-SVI-auto: guarded refinement at the automatic pace, with per-point early exit.
        if o.includeAuto {
            var base = GuardedRefinementConfiguration(learningRate: o.autoPace ?? pace)
            base.maxSteps = o.autoMaxSteps
            // The model's choice (its rate, and Adam or the Cauchy step) unless a rate is given.
            let gc = o.autoPace == nil ? model.configuration.automaticRefinement(base) ?? base : base
            let w = watch()
            let g = GuardedRefinement(decoder: decoder, threads: o.threads).refine(x, start: start, configuration: gc, seed: o.seed &+ 3,
                                                                                   startSeconds: encodeSeconds, observer: w.observer(n: x.rows, latent: c.latent))
            record("PE-SVI-auto", w, mu: g.mu, logVariance: g.logVariance, curve: g.curve, meanSteps: g.meanSteps, maxSteps: g.maxSteps,
                   seconds: g.seconds, meanStepsAfter: g.meanStepsAfter, secondsAfter: g.secondsAfter)
        }

        // PE-SVI-Cauchy: guarded refinement with the Cauchy step, with PE-SVI-auto's exit and budget.
        if o.includeCauchy && decoder.objective.kind == .reconstruction {
            let w = watch()
            let g = GuardedRefinement(decoder: decoder, threads: o.threads).refine(x, start: start, configuration: .cauchy(maxSteps: o.autoMaxSteps), seed: o.seed &+ 7,
                                                                                   startSeconds: encodeSeconds, observer: w.observer(n: x.rows, latent: c.latent))
            record("PE-SVI-Cauchy", w, mu: g.mu, logVariance: g.logVariance, curve: g.curve, meanSteps: g.meanSteps, maxSteps: g.maxSteps,
                   seconds: g.seconds, meanStepsAfter: g.meanStepsAfter, secondsAfter: g.secondsAfter)
        }

        // PE-SVI-GN: damped Gauss-Newton on μ (closed-form σ) from the pseudo-encoder start.
        if o.includeGaussNewton {
            let gn = o.gaussNewtonRefinement(model: model, threads: o.threads)
            // A linear decoder's exact step does not read the start: the encoder pass is not
            // part of its time, and the start's own level does not count as reached by it.
            let w = watch(fromStart: !gn.takesExactLinearStep)
            let g = gn.refine(x, start: start, maxSteps: o.gaussNewtonMaxSteps, seed: o.seed &+ 5, observer: w.observer(n: x.rows, latent: c.latent))
            let startCost = g.usedStart ? encodeSeconds : 0
            record("PE-SVI-GN", w, mu: g.mu, logVariance: g.logVariance, curve: g.curve, meanSteps: g.meanSteps, maxSteps: g.maxSteps,
                   seconds: g.seconds + startCost, meanStepsAfter: g.meanStepsAfter, secondsAfter: g.secondsAfter.map { $0 + startCost })
        }

        return ComparisonPass(methods: methods, order: order, sviObjective: sviTarget, sviLearningRate: sviRate, pace: pace)
    }

    /// The comparison as a text table: method, reconstruction, at the mean, the negative ELBO
    /// (ELBO models only), steps, seconds.
    public static func table(_ r: ComparisonReport) -> String {
        let repeats = r.methods.values.compactMap { $0.secondsRuns?.count }.max() ?? 1
        let timing = repeats > 1 ? "  seconds: median of \(repeats) timed runs" : ""
        let elbo = r.methods.values.contains { $0.negativeELBO != nil }
        var lines = ["\(r.dataset)  |z|=\(r.z)  \(r.arch)  \(r.points) points  (SVI rate \(r.sviLearningRate), pace \(r.pace))" + timing,
                     pad("method", 12) + pad("reconstruction", 16) + pad("at mean", 12) + (elbo ? pad("−ELBO", 12) : "")
                         + pad("steps", 14) + "seconds"]
        for m in r.order {
            guard let v = r.methods[m] else { continue }
            let steps = v.hasSteps ? (v.steps.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.1f", $0) } ?? "never") : "-"
            var run = ""
            if let rs = v.runSteps, let rt = v.runSeconds {
                run = String(format: "  (run to its own stop: %.1f steps, max %d; %.4f s)", rs, v.maxStepsPerPoint ?? 0, rt)
            }
            let negativeELBO = elbo ? pad(v.negativeELBO.map { String(format: "%.3f", $0) } ?? "-", 12) : ""
            let schedule = m == "PE-SVI-GN" ? r.gaussNewtonSchedule.map { "  [\($0) schedule]" } ?? "" : ""
            lines.append(pad(m, 12) + pad(String(format: "%.5f", v.reconstruction), 16) + pad(String(format: "%.5f", v.reconstructionAtMean), 12)
                         + negativeELBO + pad(steps, 14) + String(format: "%.4f", v.seconds) + run + schedule)
        }
        return lines.joined(separator: "\n")
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
}
