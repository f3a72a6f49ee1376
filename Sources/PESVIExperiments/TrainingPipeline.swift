import Foundation
import PESVIData
import PESVIModels
import PESVINumerics

/// Everything `pesvi train` decides: model shape, objective, the three phases' settings.
public struct PipelineOptions: Sendable {
    public var latent: Int = 16
    public var architecture: Architecture = .arch2
    public var objective: Objective = .reconstruction
    public var phase1 = EarlyDecoderTrainingConfiguration()
    public var phase2 = DeferredEncoderTrainingConfiguration()
    /// Train the VAE baseline with these settings (nil: no VAE).
    public var vae: VAETrainingConfiguration? = nil
    /// Pace candidates for the paper's grid search (section 3.3), tried for `paceSteps` steps.
    public var paceCandidates: [Float] = PaceSelection.paperCandidates
    public var paceSteps: Int = 25
    public var validationFraction = 0.1
    public var testFraction = 0.1
    /// Standardize columns with training statistics (stored with the model).
    public var standardize = true
    /// Keep the training posteriors (μᵢ, log σ²ᵢ) in the checkpoint.
    public var keepPosteriors = false
    public var seed: UInt64 = 0
    public var threads: Int = 1
    public var dataSource = "unknown"
    public init() {}
}

/// What happened during training, for reports.
public struct PipelineReport: Sendable {
    public var phase1: [EpochRecord] = []
    public var phase2: [EpochRecord] = []
    public var vae: [EpochRecord] = []
    public var paceTrials: [PaceSelection.Trial] = []
    public var seconds: [String: Double] = [:]
}

/// Reports progress of a long phase: (phase name, epoch record, epoch limit).
public typealias PipelineProgress = (_ phase: String, _ record: EpochRecord, _ limit: Int) -> Void

/// The whole PE-SVI training procedure on a data matrix: seeded split, standardization,
/// phase 1 (decoder + free posteriors, validation rows alongside), phase 2 (pseudo-encoder
/// regressed on the learned posteriors, validated on the validation rows'), the VAE baseline
/// if asked, and pace selection on the validation rows.
public enum TrainingPipeline {
    public static func train(_ data: DataMatrix, options o: PipelineOptions, progress: PipelineProgress? = nil) throws -> (PESVIModel, PipelineReport) {
        guard o.latent > 0 else { throw DataError.invalidArgument("latent size must be positive, got \(o.latent)") }
        guard data.rows >= 10 else { throw DataError.invalidArgument("need at least 10 rows to split into train, validation and test; got \(data.rows)") }
        if let bad = data.firstNonFinite() {
            throw DataError.invalidArgument("data has a non-finite value at row \(bad.row + 1), column \(bad.col + 1)")
        }
        var report = PipelineReport()
        let split = try DatasetSplit(rows: data.rows, validationFraction: o.validationFraction, testFraction: o.testFraction, seed: o.seed)
        let (rawTrain, rawValidation, rawTest) = try split.apply(to: data)
        let standardizer = o.standardize ? try Standardizer.fit(rawTrain) : nil
        func prep(_ m: DataMatrix) throws -> Dataset { DataFiles.dataset(try standardizer.map { try $0.transform(m) } ?? m) }
        let train = try prep(rawTrain), validation = try prep(rawValidation)

        var rng = RandomGenerator(seed: o.seed)
        var decoderRng = rng.forked(stream: 11), encoderRng = rng.forked(stream: 12), vaeRng = rng.forked(stream: 13)
        let d = data.cols

        // Phase 1: early decoder training.
        var c1 = o.phase1
        c1.seed = o.seed &+ 1; c1.threads = o.threads
        let decoder = GaussianDecoder(latent: o.latent, dataWidth: d, architecture: o.architecture, objective: o.objective, rng: &decoderRng)
        let phase1 = EarlyDecoderTraining(decoder: decoder, train: train, validation: validation.rows > 0 ? validation : nil, configuration: c1)
        var t0 = Date()
        phase1.run { r in progress?("phase 1: decoder (SVI)", r, c1.epochs); return true }
        report.phase1 = phase1.history
        report.seconds["phase1"] = Date().timeIntervalSince(t0)

        // Phase 2: deferred encoder training on the learned posteriors.
        var c2 = o.phase2
        c2.seed = o.seed &+ 2; c2.threads = o.threads
        let encoder = GaussianEncoder(latent: o.latent, dataWidth: d, architecture: o.architecture, rng: &encoderRng)
        let targets = DeferredEncoderTraining.targets(from: phase1.trainPosteriors)
        let validationTargets = phase1.validationPosteriors.map { DeferredEncoderTraining.targets(from: $0) }
        let phase2 = DeferredEncoderTraining(encoder: encoder, x: train, targets: targets,
                                             validationX: validationTargets == nil ? nil : validation, validationTargets: validationTargets,
                                             configuration: c2)
        t0 = Date()
        phase2.run { r in progress?("phase 2: pseudo-encoder", r, c2.epochs); return true }
        report.phase2 = phase2.history
        report.seconds["phase2"] = Date().timeIntervalSince(t0)

        // The VAE baseline.
        var vaePair: (GaussianEncoder, GaussianDecoder)? = nil
        var c3: VAETrainingConfiguration? = nil
        if var cv = o.vae {
            cv.seed = o.seed &+ 3; cv.threads = o.threads
            c3 = cv
            let ve = GaussianEncoder(latent: o.latent, dataWidth: d, architecture: o.architecture, rng: &vaeRng)
            let vd = GaussianDecoder(latent: o.latent, dataWidth: d, architecture: o.architecture, objective: o.objective, rng: &vaeRng)
            let vae = VAETraining(encoder: ve, decoder: vd, train: train, validation: validation.rows > 0 ? validation : nil, configuration: cv)
            t0 = Date()
            vae.run { r in progress?("VAE baseline", r, cv.epochs); return true }
            report.vae = vae.history
            report.seconds["vae"] = Date().timeIntervalSince(t0)
            vaePair = (ve, vd)
        }

        // Pace adjustment on the validation rows.
        var pace: PaceRecord? = nil
        if validation.rows > 0 && !o.paceCandidates.isEmpty {
            t0 = Date()
            let inference = TestTimeInference(decoder: decoder, threads: o.threads)
            let start = encoder.encode(validation, threads: o.threads)
            let (lr, trials) = PaceSelection.select(inference: inference, x: validation, start: start, candidates: o.paceCandidates,
                                                    steps: o.paceSteps, seed: o.seed &+ 4)
            pace = PaceRecord(learningRate: lr, steps: o.paceSteps, method: "paper-grid", trials: trials)
            report.paceTrials = trials
            report.seconds["pace"] = Date().timeIntervalSince(t0)
        }

        var summary: [String: Double] = report.seconds.mapKeys { "seconds_\($0)" }
        summary["epochs_phase1"] = Double(report.phase1.count)
        summary["epochs_phase2"] = Double(report.phase2.count)
        if o.vae != nil { summary["epochs_vae"] = Double(report.vae.count) }
        let config = ModelConfiguration(
            latent: o.latent, dataWidth: d, architecture: o.architecture, objective: o.objective,
            standardizer: standardizer, columnNames: data.columnNames, pace: pace,
            sviLearningRate: c1.latentLearningRate, phase1: c1, phase2: c2, vae: c3, seed: o.seed,
            split: SplitRecord(rows: data.rows, validationFraction: o.validationFraction, testFraction: o.testFraction, seed: o.seed),
            dataSource: o.dataSource, trainingSummary: summary)
        let model = PESVIModel(configuration: config, decoder: decoder, pseudoEncoder: encoder, vae: vaePair,
                               trainPosteriors: o.keepPosteriors ? phase1.trainPosteriors : nil,
                               validationData: rawValidation, testData: rawTest)
        return (model, report)
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] {
        var out: [K: Value] = [:]
        for (k, v) in self { out[f(k)] = v }
        return out
    }
}
