import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// Options every computing subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(help: "Random seed: the same seed gives the same numbers.") var seed: UInt64 = 0
    @Option(help: "Threads to compute on (1 or 2).") var threads: Int = 2
    @Flag(help: "No progress output on stderr.") var quiet = false

    func validate() throws {
        guard (1...2).contains(threads) else { throw ValidationError("--threads must be 1 or 2, got \(threads)") }
    }
}

/// Damped Gauss-Newton's control, shared by `infer --method gn` and PE-SVI-GN in `evaluate`,
/// `demo` (defaults: ``ComparisonOptions``; meaning: ``GaussNewtonRefinement``).
struct GaussNewtonFlags: ParsableArguments {
    @Option(help: "Gauss-Newton: a point stops when an accepted step improves its objective by less than this fraction.")
    var gnTolerance: Double = ComparisonOptions().gaussNewtonTolerance
    @Option(help: "Gauss-Newton: every point's initial damping λ (relative to the curvature's diagonal).")
    var gnDamping: Double = ComparisonOptions().gaussNewtonDamping
    @Option(help: "Gauss-Newton: accept a step only if the objective fell by at least this fraction of the decrease its damped model predicted (0: any decrease).")
    var gnAcceptance: Double = ComparisonOptions().gaussNewtonAcceptance
    @Option(help: "Gauss-Newton: damping trials per iteration on one linearization.") var gnTrials: Int = ComparisonOptions().gaussNewtonTrials
    @Option(help: "Gauss-Newton with a ReLU decoder: each point's first K iterations work on the decoder with its ReLUs smoothed to a softplus (a continuation that escapes the start's activation pattern); 0: plain Levenberg–Marquardt. Default: the schedule the model chose on its validation rows (config.json), else \(GaussNewtonSmoothing.standard.iterations). Giving this or any other --gn-smoothing*, --gn-smoothed-krylov, --gn-smoothed-last-step, --gn-preconditioner or --gn-krylov flag sets the schedule from the flags alone.")
    var gnSmoothing: Int?
    @Option(help: "Gauss-Newton smoothing: the first temperature, in units of the spread of the point's own pre-activations (default \(GaussNewtonSmoothing.standard.scale) when the schedule comes from the flags).")
    var gnSmoothingScale: Double?
    @Option(help: "Gauss-Newton smoothing: the temperature's factor per iteration, in (0, 1] (default \(GaussNewtonSmoothing.standard.factor) when the schedule comes from the flags).")
    var gnSmoothingFactor: Double?
    @Option(help: "Gauss-Newton smoothing: after an accepted smoothed step the damping λ is held ('hold', the default) or lowered to λ/3 as on the ReLU decoder ('lower').")
    var gnSmoothingDamping: SmoothingDamping?
    @Option(help: "Gauss-Newton with a ReLU decoder and the reconstruction objective: solve each step in the span of the gradient, K−1 curvature products of it and the last step (batched Jacobian-vector products, no |z|×|z| system); 0: the exact solve.")
    var gnKrylov: Int = ComparisonOptions().gaussNewtonKrylov
    @Option(help: "Gauss-Newton with a ReLU decoder and the reconstruction objective: solve the smoothed iterations' steps (--gn-smoothing) in Krylov subspaces of K vectors as --gn-krylov does, the later ones as --gn-krylov says (exactly when it is 0); 0: the smoothed iterations solve as the others do. Default, from |z| = 32 on: 8 where the latent is wider than the data (d < |z|), else min(|z|/4, 16), or 3|z|/16 with the Krylov preconditioner (--gn-preconditioner; by default at 32 ≤ |z| < 64); below |z| = 32, or when --gn-krylov is given: 0.")
    var gnSmoothedKrylov: Int?
    @Option(help: "Gauss-Newton: whether the smoothed iterations' Krylov basis (--gn-smoothed-krylov) takes the point's last step besides the Krylov vectors (true or false). Default: true unless the latent is wider than the data (d < |z|) or the Krylov vectors are preconditioned (--gn-preconditioner).")
    var gnSmoothedLastStep: Bool?
    @Option(help: "Gauss-Newton: whether the smoothed iterations' Krylov basis may be held in the first hidden layer's space, each vector q = s·W₁ᵀ kept as s (true or false). It applies only without the last step and where the first hidden layer is narrower than twice the latent (h₁ < 2|z|), where it saves the products with W₁ and W₁ᵀ; the steps are the same up to rounding.")
    var gnSmoothedFirstLayer: Bool = ComparisonOptions().gaussNewtonSmoothedKrylovFirstLayer
    @Option(help: "Gauss-Newton: whether the Krylov solves (--gn-smoothed-krylov, --gn-krylov) with the basis in the latent space are preconditioned by the inverse of the mean curvature at the pseudo-encoder's starts of the model's validation rows (true or false); the smoothed iterations then default to 3|z|/16 Krylov vectors without the last step, and the basis stays in the latent space. Default: where the data is at least as wide as the latent and 32 ≤ |z| < 64. Without validation rows there is none.")
    var gnPreconditioner: Bool?
    @Option(help: "Gauss-Newton: Krylov vectors of the last smoothed iteration where the smoothed Krylov basis is in the latent space (at most --gn-smoothed-krylov's K). Default: 2K/3 with the Krylov preconditioner (--gn-preconditioner; 4 of 6 at |z| = 32), else K.")
    var gnLastSmoothedKrylov: Int?

    func validate() throws {
        guard gnTolerance >= 0, gnTolerance.isFinite else { throw ValidationError("--gn-tolerance must be a non-negative number, got \(gnTolerance)") }
        guard gnDamping >= 0, gnDamping.isFinite else { throw ValidationError("--gn-damping must be a non-negative number, got \(gnDamping)") }
        guard gnAcceptance >= 0, gnAcceptance < 1 else { throw ValidationError("--gn-acceptance must be in [0, 1), got \(gnAcceptance)") }
        guard gnTrials >= 1 else { throw ValidationError("--gn-trials must be at least 1, got \(gnTrials)") }
        guard gnKrylov >= 0 else { throw ValidationError("--gn-krylov must be 0 or more vectors, got \(gnKrylov)") }
        if let k = gnSmoothedKrylov, k < 0 { throw ValidationError("--gn-smoothed-krylov must be 0 or more vectors, got \(k)") }
        if let k = gnLastSmoothedKrylov, k < 1 { throw ValidationError("--gn-last-smoothed-krylov must be 1 or more vectors, got \(k)") }
        if let k = gnSmoothing, k < 0 { throw ValidationError("--gn-smoothing must be 0 or more iterations, got \(k)") }
        if let c = gnSmoothingScale, !(c >= 0 && c.isFinite) {
            throw ValidationError("--gn-smoothing-scale must be a non-negative number, got \(c)")
        }
        if let f = gnSmoothingFactor, !(f > 0 && f <= 1) {
            throw ValidationError("--gn-smoothing-factor must be in (0, 1], got \(f)")
        }
    }

    /// The smoothing schedule these flags set (the standard one's value for each flag not given).
    var smoothing: GaussNewtonSmoothing {
        let s = GaussNewtonSmoothing.standard
        return GaussNewtonSmoothing(iterations: gnSmoothing ?? s.iterations, scale: gnSmoothingScale ?? s.scale, factor: gnSmoothingFactor ?? s.factor,
                                    holdsDamping: (gnSmoothingDamping ?? (s.holdsDamping ? .hold : .lower)) == .hold)
    }

    /// Whether any flag that sets PE-SVI-GN's schedule was given (then the model's chosen
    /// schedule is not used).
    var setsSchedule: Bool {
        gnSmoothing != nil || gnSmoothingScale != nil || gnSmoothingFactor != nil || gnSmoothingDamping != nil
            || gnSmoothedKrylov != nil || gnSmoothedLastStep != nil || gnPreconditioner != nil || gnKrylov != ComparisonOptions().gaussNewtonKrylov
    }

    /// These settings written into `o`.
    func apply(to o: inout ComparisonOptions) {
        o.gaussNewtonTolerance = gnTolerance
        o.gaussNewtonDamping = gnDamping
        o.gaussNewtonAcceptance = gnAcceptance
        o.gaussNewtonTrials = gnTrials
        o.gaussNewtonSmoothing = smoothing
        o.gaussNewtonKrylov = gnKrylov
        o.gaussNewtonSmoothedKrylov = gnSmoothedKrylov
        o.gaussNewtonSmoothedKrylovLastStep = gnSmoothedLastStep
        o.gaussNewtonSmoothedKrylovFirstLayer = gnSmoothedFirstLayer
        o.gaussNewtonPreconditioner = gnPreconditioner
        o.gaussNewtonLastSmoothedKrylov = gnLastSmoothedKrylov
        o.gaussNewtonScheduleFromModel = !setsSchedule
    }
}

/// Model shape, objective and the training phases' hyperparameters.
struct ModelOptions: ParsableArguments {
    @Option(help: "Latent size |z|.") var z: Int = 16
    @Option(help: "Decoder architecture: 1 (z→x), 2 (z→h→x), 3 (z→h→h→x) with h = min(2|z|,128), or hidden widths like 64,128.")
    var arch: String = "2"
    @Option(help: "Objective: 'reconstruction' (the paper's expected squared error) or 'elbo'.") var objective: String = "reconstruction"
    @Option(help: "KL weight β of the ELBO objective.") var beta: Float = 1
    @Option(help: "Likelihood σₓ for the ELBO objective, or 'learned' for a learned per-dimension variance.") var sigma: String = "1"

    @Option(help: "Phase 1 (decoder + posteriors): maximum epochs.") var epochs: Int = 3000
    @Option(help: "Batch size of every training phase (default: max(64, ⌈training rows/20⌉), about 20 decoder steps per epoch).") var batchSize: Int?
    @Option(help: "Phase 1: Adam rate of the decoder's weights (1e-3 won the validation search in every digits cell of 'reproduce --quick').") var decoderLr: Float = 1e-3
    @Option(help: "Phase 1: Adam rate of the free posteriors (μᵢ, log σ²ᵢ).") var latentLr: Float = 1e-1
    @Option(help: "Epochs without validation improvement before a phase stops.") var patience: Int = 100
    @Option(parsing: .unconditional, help: "Initial log σ² of the free posteriors (μ starts uniform in [−1, 1)), in phase 1 and test-time SVI; negative values may be written as --init-logvar -4.") var initLogvar: Float = 0
    @Option(help: "Phase 2 (pseudo-encoder): maximum epochs.") var encoderEpochs: Int = 1000
    @Option(help: "Phase 2: Adam rate.") var encoderLr: Float = 1e-3
    @Option(help: "Phase 2: batch size (default: the smaller of 256 and the phase-1 batch).") var encoderBatchSize: Int?
    @Option(help: "Phase 2: weight of the log σ² targets relative to μ in the pseudo-encoder's loss.") var encoderLogvarWeight: Float = 1
    @Option(help: "VAE baseline: maximum epochs.") var vaeEpochs: Int = 3000
    @Option(help: "VAE baseline: Adam rate.") var vaeLr: Float = 1e-3

    func validate() throws {
        guard z > 0 else { throw ValidationError("--z must be positive, got \(z)") }
        _ = try architecture()
        _ = try objectiveValue()
        for (name, v) in [("--epochs", epochs), ("--batch-size", batchSize ?? 1), ("--encoder-batch-size", encoderBatchSize ?? 1), ("--patience", patience), ("--encoder-epochs", encoderEpochs), ("--vae-epochs", vaeEpochs)] where v <= 0 {
            throw ValidationError("\(name) must be positive, got \(v)")
        }
        for (name, v) in [("--decoder-lr", decoderLr), ("--latent-lr", latentLr), ("--encoder-lr", encoderLr), ("--vae-lr", vaeLr)] where !(v > 0 && v.isFinite) {
            throw ValidationError("\(name) must be a positive number, got \(v)")
        }
    }

    func architecture() throws -> Architecture {
        if let n = Int(arch), let a = Architecture(number: n) { return a }
        let parts = arch.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--arch must be 1, 2, 3 or a list of positive hidden widths like 64,128; got '\(arch)'")
        }
        return .custom(hidden: parts.map { $0! })
    }

    func objectiveValue() throws -> Objective {
        switch objective.lowercased() {
        case "reconstruction", "recon", "mse": return .reconstruction
        case "elbo":
            if sigma.lowercased() == "learned" { return .elbo(beta: beta, likelihood: .learnedVariance) }
            guard let s = Float(sigma), s > 0, s.isFinite else { throw ValidationError("--sigma must be a positive number or 'learned', got '\(sigma)'") }
            return .elbo(beta: beta, likelihood: .fixedVariance(sigma: s))
        default: throw ValidationError("--objective must be 'reconstruction' or 'elbo', got '\(objective)'")
        }
    }

    func pipelineOptions(common: CommonOptions, vae: Bool, source: String, rows: Int) throws -> PipelineOptions {
        var o = PipelineOptions()
        // The training split holds about 80 % of the rows.
        let batchSize = self.batchSize ?? ReproductionOptions.automaticBatchSize(trainingRows: rows * 8 / 10)
        o.latent = z
        o.architecture = try architecture()
        o.objective = try objectiveValue()
        o.phase1.epochs = epochs; o.phase1.batchSize = batchSize; o.phase1.patience = patience
        o.phase1.decoderLearningRate = decoderLr; o.phase1.latentLearningRate = latentLr
        o.phase1.initialization = .uniform(low: -1, high: 1, logVariance: initLogvar)
        o.phase2.epochs = encoderEpochs
        o.phase2.batchSize = encoderBatchSize ?? ReproductionOptions.automaticEncoderBatchSize(phase1BatchSize: batchSize); o.phase2.patience = patience; o.phase2.learningRate = encoderLr; o.phase2.logVarianceWeight = encoderLogvarWeight
        if vae {
            var v = VAETrainingConfiguration()
            v.epochs = vaeEpochs; v.batchSize = batchSize; v.patience = patience; v.learningRate = vaeLr
            o.vae = v
        }
        o.seed = common.seed
        o.threads = common.threads
        o.dataSource = source
        return o
    }
}

/// Shows each training phase's progress on stderr (a bar on a terminal, lines otherwise).
final class PhaseProgress {
    let quiet: Bool
    var reporter: ProgressReporter? = nil
    var phase = ""

    init(quiet: Bool) { self.quiet = quiet }

    func callback() -> PipelineProgress {
        { [self] phase, record, limit in
            guard !quiet else { return }
            if phase != self.phase {
                reporter?.finish()
                reporter = ProgressReporter(title: phase, total: limit)
                self.phase = phase
            }
            var metrics: [(String, Double)] = [("train", record.trainObjective)]
            if let v = record.validationObjective { metrics.append(("valid", v)) }
            reporter?.update(done: record.epoch, metrics: metrics)
        }
    }

    func finish() { reporter?.finish(); reporter = nil; phase = "" }
}

/// Loads a data file, or the built-in digits for the name "digits".
func loadData(_ path: String) throws -> DataMatrix {
    if path == "digits" && !FileManager.default.fileExists(atPath: path) { return BuiltinDatasets.digits() }
    return try DataFiles.read(path)
}

/// PE-SVI-Cauchy's step is defined for the reconstruction objective only: refuses `flag` for
/// the model at `path` otherwise, with one line naming both.
func requireCauchyObjective(_ model: PESVIModel, at path: String, flag: String) throws {
    guard model.decoder.objective.kind == .reconstruction else {
        throw ValidationError("\(flag) needs a model trained with the reconstruction objective; \(path) uses \(model.decoder.objective.kind)")
    }
}

func printErr(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// `--gn-smoothing-damping`: what an accepted smoothed Gauss-Newton step does to λ
/// (``GaussNewtonSmoothing/holdsDamping``).
enum SmoothingDamping: String, ExpressibleByArgument, CaseIterable {
    case hold
    case lower
}
