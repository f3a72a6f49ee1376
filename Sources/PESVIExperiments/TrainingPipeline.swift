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

/// A data matrix split (seeded) and standardized with its training rows' statistics.
public struct PreparedData: Sendable {
    public var rawTrain: DataMatrix, rawValidation: DataMatrix, rawTest: DataMatrix
    public var train: Dataset, validation: Dataset, test: Dataset
    public var standardizer: Standardizer?
    public var split: SplitRecord
    public var columnNames: [String]?
    public var width: Int { train.cols }
}

/// The whole PE-SVI training procedure on a data matrix, and its phases for callers (such as
/// `reproduce`) that search hyperparameters: seeded split, standardization, phase 1 (decoder +
/// free posteriors, validation rows alongside), phase 2 (pseudo-encoder regressed on the
/// learned training posteriors, validated on a held-out tenth of them), the VAE baseline if
/// asked, and pace selection on the validation rows.
public enum TrainingPipeline {
    /// Splits and standardizes. Refuses non-finite values and fewer than 10 rows.
    public static func prepare(_ data: DataMatrix, validationFraction: Double = 0.1, testFraction: Double = 0.1,
                               standardize: Bool = true, seed: UInt64) throws -> PreparedData {
        guard data.rows >= 10 else { throw DataError.invalidArgument("need at least 10 rows to split into train, validation and test; got \(data.rows)") }
        if let bad = data.firstNonFinite() {
            throw DataError.invalidArgument("data has a non-finite value at row \(bad.row + 1), column \(bad.col + 1)")
        }
        let split = try DatasetSplit(rows: data.rows, validationFraction: validationFraction, testFraction: testFraction, seed: seed)
        let (rawTrain, rawValidation, rawTest) = try split.apply(to: data)
        let standardizer = standardize ? try Standardizer.fit(rawTrain) : nil
        func prep(_ m: DataMatrix) throws -> Dataset { DataFiles.dataset(try standardizer.map { try $0.transform(m) } ?? m) }
        return PreparedData(rawTrain: rawTrain, rawValidation: rawValidation, rawTest: rawTest,
                            train: try prep(rawTrain), validation: try prep(rawValidation), test: try prep(rawTest),
                            standardizer: standardizer,
                            split: SplitRecord(rows: data.rows, validationFraction: validationFraction, testFraction: testFraction, seed: seed),
                            columnNames: data.columnNames)
    }

    /// Phase 1: a fresh decoder (initialized from `seed`) and the free posteriors, trained together.
    public static func phase1(_ data: PreparedData, latent: Int, architecture: Architecture, objective: Objective,
                              configuration c: EarlyDecoderTrainingConfiguration, seed: UInt64,
                              progress: PipelineProgress? = nil) -> EarlyDecoderTraining {
        var rng = RandomGenerator(seed: seed).forked(stream: 11)
        let decoder = GaussianDecoder(latent: latent, dataWidth: data.width, architecture: architecture, objective: objective, rng: &rng)
        let phase1 = EarlyDecoderTraining(decoder: decoder, train: data.train, validation: data.validation.rows > 0 ? data.validation : nil,
                                          configuration: c)
        phase1.run { r in progress?("phase 1: decoder (SVI)", r, c.epochs); return true }
        return phase1
    }

    /// Phase 2: the pseudo-encoder learns x ↦ (μ*, log σ²*) of the training rows, validated on
    /// a seeded tenth of them held out from its training. (The validation split's rows are
    /// fitted by another process — frozen-decoder steps — so their posteriors are not the
    /// same targets.)
    public static func phase2(_ data: PreparedData, posteriors: PosteriorTable, architecture: Architecture,
                              configuration c: DeferredEncoderTrainingConfiguration, seed: UInt64,
                              progress: PipelineProgress? = nil) -> DeferredEncoderTraining {
        var rng = RandomGenerator(seed: seed).forked(stream: 12)
        let encoder = GaussianEncoder(latent: posteriors.latent, dataWidth: data.width, architecture: architecture, rng: &rng)
        let allTargets = DeferredEncoderTraining.targets(from: posteriors)
        var splitRng = RandomGenerator(seed: seed &+ 5)
        let n = data.train.rows
        let order = splitRng.permutation(n)
        let held = n >= 20 ? max(1, n / 10) : 0
        let fitRows = Array(order[held...]).sorted(), heldRows = Array(order[..<held]).sorted()
        let phase2 = DeferredEncoderTraining(encoder: encoder, x: data.train.subset(fitRows), targets: allTargets.subset(fitRows),
                                             validationX: held > 0 ? data.train.subset(heldRows) : nil,
                                             validationTargets: held > 0 ? allTargets.subset(heldRows) : nil,
                                             configuration: c)
        phase2.run { r in progress?("phase 2: pseudo-encoder", r, c.epochs); return true }
        return phase2
    }

    /// The VAE baseline: a fresh encoder and decoder trained end to end.
    public static func vae(_ data: PreparedData, latent: Int, architecture: Architecture, objective: Objective,
                           configuration c: VAETrainingConfiguration, seed: UInt64, progress: PipelineProgress? = nil) -> VAETraining {
        var rng = RandomGenerator(seed: seed).forked(stream: 13)
        let ve = GaussianEncoder(latent: latent, dataWidth: data.width, architecture: architecture, rng: &rng)
        let vd = GaussianDecoder(latent: latent, dataWidth: data.width, architecture: architecture, objective: objective, rng: &rng)
        let vae = VAETraining(encoder: ve, decoder: vd, train: data.train, validation: data.validation.rows > 0 ? data.validation : nil, configuration: c)
        vae.run { r in progress?("VAE baseline", r, c.epochs); return true }
        return vae
    }

    /// Pace adjustment (paper section 3.3): the paper's grid of rates tried for `steps` steps
    /// from the pseudo-encoder start on the validation rows.
    public static func selectPace(_ data: PreparedData, decoder: GaussianDecoder, encoder: GaussianEncoder, candidates: [Float],
                                  steps: Int, threads: Int, seed: UInt64) -> PaceRecord? {
        guard data.validation.rows > 0, !candidates.isEmpty else { return nil }
        let inference = TestTimeInference(decoder: decoder, threads: threads)
        let start = encoder.encode(data.validation, threads: threads)
        let (lr, trials) = PaceSelection.select(inference: inference, x: data.validation, start: start, candidates: candidates,
                                                steps: steps, seed: seed)
        return PaceRecord(learningRate: lr, steps: steps, method: "paper-grid", trials: trials)
    }

    /// The automatic pace (PE-SVI-auto): guarded refinement's rate and step rule found by a
    /// log-scale search on the validation rows, from the pseudo-encoder start
    /// (``AutomaticPace/select``; nil without validation rows). With `svi` (SVI's random start
    /// and Adam rate: phase 1's) and the reconstruction objective, SVI is first run on the
    /// validation rows from that start to its plateau (``StoppingRule/sviDefault``), and its
    /// expected reconstruction (8 samples) is the level the search's candidates race to.
    /// `target`: SVI's level on these rows, when the caller has it (``sviLevel(_:decoder:svi:threads:seed:)``
    /// with the same seed gives the same number); then `svi` is not run again.
    public static func automaticPace(_ validation: Dataset, decoder: GaussianDecoder, encoder: GaussianEncoder,
                                     svi: (initialization: PosteriorInitialization, learningRate: Float)? = nil,
                                     target given: Double? = nil,
                                     maxSteps: Int = 50, threads: Int, seed: UInt64) -> AutomaticPace.Outcome? {
        guard validation.rows > 0 else { return nil }
        let start = encoder.encode(validation, threads: threads)
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = maxSteps
        var target: Double? = nil
        if AutomaticPace.cauchyApplies(decoder: decoder, base: base) {
            target = given ?? svi.flatMap { sviLevel(validation, decoder: decoder, svi: $0, threads: threads, seed: seed) }
        }
        return AutomaticPace.select(decoder: decoder, x: validation, start: start, base: base, threads: threads, seed: seed, target: target)
    }

    /// SVI's level on `rows`: its expected reconstruction (8 samples, seed `seed` + 2) after SVI
    /// from its random start (`svi`: phase 1's initialization and latent rate; seed `seed` + 1)
    /// to its plateau (``StoppingRule/sviDefault``). nil without rows or with another objective
    /// than the reconstruction.
    public static func sviLevel(_ rows: Dataset, decoder: GaussianDecoder, svi: (initialization: PosteriorInitialization, learningRate: Float),
                                threads: Int, seed: UInt64) -> Double? {
        sviLevels(rows, decoder: decoder, svi: svi, starts: 1, threads: threads, seed: seed)?.first
    }

    /// SVI's level on `rows` from one random start (``sviLevel(_:decoder:svi:threads:seed:)``,
    /// `first`) and from `starts` of them (`median`: the mean over points of each point's median
    /// expected reconstruction over the starts; start k from seed `seed` + 1 + 2k, every one
    /// measured with seed `seed` + 2). One start's mean is at the mercy of the few points its
    /// random start leaves in a poor optimum: on digits |z| = 64 Arch3's 180 validation rows six
    /// starts gave 0.0031–0.0043 and one 0.0219, where the median over three starts gave
    /// 0.0027–0.0031 (`docs/RESULTS.md`, twenty-ninth session). nil as there.
    public static func sviLevels(_ rows: Dataset, decoder: GaussianDecoder, svi: (initialization: PosteriorInitialization, learningRate: Float),
                                 starts: Int, threads: Int, seed: UInt64) -> (first: Double, median: Double)? {
        precondition(starts >= 1, "sviLevels: starts must be ≥ 1, got \(starts)")
        guard rows.rows > 0, decoder.objective.kind == .reconstruction else { return nil }
        let inference = TestTimeInference(decoder: decoder, threads: threads)
        var first = 0.0
        var perStart: [[Double]] = []
        for k in 0..<starts {
            let r = inference.svi(rows, initialization: svi.initialization, learningRate: svi.learningRate, seed: seed &+ 1 &+ UInt64(2 * k))
            var values = [Double](repeating: 0, count: rows.rows)
            let m = values.withUnsafeMutableBufferPointer {
                Metrics.evaluate(decoder: decoder, x: rows, mu: r.mu, logVariance: r.logVariance, seed: seed &+ 2, threads: threads,
                                 perPoint: $0.baseAddress)
            }
            if k == 0 { first = m.expectedReconstruction }
            perStart.append(values)
        }
        guard starts > 1 else { return (first, first) }
        var sum = 0.0
        for i in 0..<rows.rows { sum += MethodComparison.median(perStart.map { $0[i] }) }
        return (first, sum / Double(rows.rows))
    }

    /// Random SVI starts whose per-point median is the level PE-SVI-GN's schedules race to
    /// (``sviLevels(_:decoder:svi:starts:threads:seed:)``).
    public static let scheduleRaceStarts = 3
    /// Iterations each schedule may take in the race.
    public static let scheduleRaceIterations = 20

    /// PE-SVI-GN's schedule for `model`, chosen on its validation rows `validation` (prepared,
    /// the rows `target` was measured on, as the automatic pace's search runs on them): each of
    /// ``GaussNewtonSchedule/candidates(latent:dataWidth:)`` runs
    /// from the pseudo-encoder's start with `base`'s other settings (damping, trials, stop, …)
    /// for at most ``scheduleRaceIterations`` iterations, and after each iteration the expected
    /// reconstruction (8 samples) is measured until it is within 1 % of `target`, SVI's level on
    /// those rows (`pesvi`: the median over ``scheduleRaceStarts`` random starts); ``GaussNewtonScheduleChoice/choose(_:)`` picks. A preconditioned candidate
    /// forms the model's Krylov preconditioner if it has none; the model keeps it only if that
    /// candidate is chosen or `pesvi` preconditions the shape by default. nil (no choice: the
    /// standard schedule) for a decoder without hidden layers, another objective than the
    /// reconstruction, no validation rows or no finite target.
    public static func chooseGaussNewtonSchedule(for model: PESVIModel, validation: Dataset, target: Double?,
                                                 base: ComparisonOptions = ComparisonOptions(), threads: Int, seed: UInt64) -> GaussNewtonScheduleChoice? {
        let decoder = model.decoder
        guard decoder.network.layerCount > 1, decoder.objective.kind == .reconstruction, validation.rows > 0,
              let target, target.isFinite, target >= 0 else { return nil }
        let x = validation  // the race's rows
        let start = model.pseudoEncoder.encode(x, threads: threads)
        let hadPreconditioner = model.krylovPreconditioner
        var trials: [GaussNewtonScheduleChoice.Trial] = []
        for schedule in GaussNewtonSchedule.candidates(latent: decoder.latent, dataWidth: decoder.dataWidth) {
            var o = base.with(schedule)
            o.gaussNewtonScheduleFromModel = false
            o.threads = threads
            if model.krylovPreconditioner == nil, o.gaussNewtonPreconditioned(latent: decoder.latent, dataWidth: decoder.dataWidth) {
                model.krylovPreconditioner = ComparisonOptions.formKrylovPreconditioner(for: model, threads: threads)
            }
            let watch = ReachWatch(reaches: { Convergence.reaches($0.expectedReconstruction, target) }, startReaches: false) {
                Metrics.evaluate(decoder: decoder, x: x, mu: $0, logVariance: $1, seed: seed &+ 2, threads: threads)
            }
            let r = o.gaussNewtonRefinement(model: model, threads: threads)
                .refine(x, start: start, maxSteps: scheduleRaceIterations, seed: seed, recordCurve: false,
                        observer: watch.observer(n: x.rows, latent: decoder.latent))
            let steps = watch.outcome(meanStepsAfter: r.meanStepsAfter, secondsAfter: r.secondsAfter, startSeconds: 0).0
            let final = Metrics.evaluate(decoder: decoder, x: x, mu: r.mu, logVariance: r.logVariance, seed: seed &+ 2, threads: threads)
            trials.append(.init(schedule: schedule, stepsToTarget: steps, reconstruction: final.expectedReconstruction))
        }
        let chosen = trials[GaussNewtonScheduleChoice.choose(trials)].schedule
        let keeps = (chosen.preconditioned ?? GaussNewtonRefinement.defaultKrylovPreconditioned(latent: decoder.latent, dataWidth: decoder.dataWidth))
        model.krylovPreconditioner = keeps ? model.krylovPreconditioner : hadPreconditioner
        return GaussNewtonScheduleChoice(schedule: chosen, target: target, trials: trials)
    }

    /// SVI's levels on `rows` (prepared) for `model`: ``sviLevels(_:decoder:svi:starts:threads:seed:)``
    /// from ``scheduleRaceStarts`` random starts with SVI as phase 1 set it (its initialization
    /// and test-time rate).
    public static func sviLevels(_ rows: Dataset, for model: PESVIModel, threads: Int, seed: UInt64) -> (first: Double, median: Double)? {
        let c = model.configuration
        return sviLevels(rows, decoder: model.decoder, svi: (c.phase1.initialization, c.sviLearningRate), starts: scheduleRaceStarts,
                         threads: threads, seed: seed)
    }

    /// The refinements' choices for `model` on its validation rows `validation` (prepared), stored
    /// in its configuration: SVI's level there from ``scheduleRaceStarts`` random starts
    /// (``sviLevels(_:decoder:svi:starts:threads:seed:)``; SVI as phase 1 set it), the automatic
    /// pace raced to the first start's level (``automaticPace(_:decoder:encoder:svi:target:maxSteps:threads:seed:)``)
    /// and PE-SVI-GN's schedule raced to the median level
    /// (``chooseGaussNewtonSchedule(for:validation:target:base:threads:seed:)``, with `base`'s
    /// other Gauss-Newton settings). Returns the seconds each took (the levels counted with the pace).
    public static func chooseRefinements(for model: PESVIModel, validation: Dataset, base: ComparisonOptions = ComparisonOptions(),
                                         threads: Int, seed: UInt64) -> (autoPace: Double, schedule: Double) {
        var t0 = Date()
        let c = model.configuration
        let levels = sviLevels(validation, for: model, threads: threads, seed: seed)
        model.configuration.storeAutomaticPace(automaticPace(validation, decoder: model.decoder, encoder: model.pseudoEncoder,
                                                             svi: (c.phase1.initialization, c.sviLearningRate),
                                                             target: levels?.first, threads: threads, seed: seed))
        let autoPace = Date().timeIntervalSince(t0)
        t0 = Date()
        model.configuration.gaussNewtonSchedule = chooseGaussNewtonSchedule(for: model, validation: validation, target: levels?.median,
                                                                            base: base, threads: threads, seed: seed)
        return (autoPace, Date().timeIntervalSince(t0))
    }

    /// Everything in order, with `options`' single setting of each hyperparameter.
    public static func train(_ data: DataMatrix, options o: PipelineOptions, progress: PipelineProgress? = nil) throws -> (PESVIModel, PipelineReport) {
        guard o.latent > 0 else { throw DataError.invalidArgument("latent size must be positive, got \(o.latent)") }
        let prepared = try prepare(data, validationFraction: o.validationFraction, testFraction: o.testFraction, standardize: o.standardize, seed: o.seed)
        var report = PipelineReport()
        var c1 = o.phase1
        c1.seed = o.seed &+ 1; c1.threads = o.threads
        var t0 = Date()
        let p1 = phase1(prepared, latent: o.latent, architecture: o.architecture, objective: o.objective, configuration: c1, seed: o.seed, progress: progress)
        report.phase1 = p1.history
        report.seconds["phase1"] = Date().timeIntervalSince(t0)

        var c2 = o.phase2
        c2.seed = o.seed &+ 2; c2.threads = o.threads
        t0 = Date()
        let p2 = phase2(prepared, posteriors: p1.trainPosteriors, architecture: o.architecture, configuration: c2, seed: o.seed, progress: progress)
        report.phase2 = p2.history
        report.seconds["phase2"] = Date().timeIntervalSince(t0)

        var vaePair: (GaussianEncoder, GaussianDecoder)? = nil
        var c3: VAETrainingConfiguration? = nil
        if var cv = o.vae {
            cv.seed = o.seed &+ 3; cv.threads = o.threads
            c3 = cv
            t0 = Date()
            let v = vae(prepared, latent: o.latent, architecture: o.architecture, objective: o.objective, configuration: cv, seed: o.seed, progress: progress)
            report.vae = v.history
            report.seconds["vae"] = Date().timeIntervalSince(t0)
            vaePair = (v.encoder, v.decoder)
        }

        t0 = Date()
        let pace = selectPace(prepared, decoder: p1.decoder, encoder: p2.encoder, candidates: o.paceCandidates, steps: o.paceSteps,
                              threads: o.threads, seed: o.seed &+ 4)
        report.paceTrials = pace?.trials ?? []
        report.seconds["pace"] = Date().timeIntervalSince(t0)
        let model = assemble(prepared, options: o, phase1: p1, phase2: p2, vae: vaePair, vaeConfiguration: c3, pace: pace, report: report)
        let seconds = chooseRefinements(for: model, validation: prepared.validation, threads: o.threads, seed: o.seed &+ 6)
        report.seconds["auto_pace"] = seconds.autoPace
        model.configuration.trainingSummary["seconds_auto_pace"] = seconds.autoPace
        model.configuration.trainingSummary["seconds_gn_schedule"] = seconds.schedule
        return (model, report)
    }

    /// Builds the model bundle from trained phases.
    public static func assemble(_ prepared: PreparedData, options o: PipelineOptions, phase1 p1: EarlyDecoderTraining,
                                phase2 p2: DeferredEncoderTraining, vae: (GaussianEncoder, GaussianDecoder)?,
                                vaeConfiguration: VAETrainingConfiguration?, pace: PaceRecord?, report: PipelineReport) -> PESVIModel {
        assemble(prepared, options: o, decoder: p1.decoder, phase1Configuration: p1.configuration, posteriors: p1.trainPosteriors,
                 phase2: p2, vae: vae, vaeConfiguration: vaeConfiguration, pace: pace, report: report)
    }

    /// As above, from phase 1's parts: its decoder, settings and training posteriors.
    public static func assemble(_ prepared: PreparedData, options o: PipelineOptions, decoder: GaussianDecoder,
                                phase1Configuration: EarlyDecoderTrainingConfiguration, posteriors: PosteriorTable,
                                phase2 p2: DeferredEncoderTraining, vae: (GaussianEncoder, GaussianDecoder)?,
                                vaeConfiguration: VAETrainingConfiguration?, pace: PaceRecord?, report: PipelineReport) -> PESVIModel {
        var summary: [String: Double] = report.seconds.mapKeys { "seconds_\($0)" }
        summary["epochs_phase1"] = Double(report.phase1.count)
        summary["epochs_phase2"] = Double(report.phase2.count)
        if vae != nil { summary["epochs_vae"] = Double(report.vae.count) }
        let config = ModelConfiguration(
            latent: decoder.latent, dataWidth: prepared.width, architecture: o.architecture, objective: o.objective,
            standardizer: prepared.standardizer, columnNames: prepared.columnNames, pace: pace,
            sviLearningRate: phase1Configuration.latentLearningRate, phase1: phase1Configuration, phase2: p2.configuration,
            vae: vaeConfiguration, seed: o.seed, split: prepared.split, dataSource: o.dataSource, trainingSummary: summary)
        let model = PESVIModel(configuration: config, decoder: decoder, pseudoEncoder: p2.encoder, vae: vae,
                               trainPosteriors: o.keepPosteriors ? posteriors : nil,
                               validationData: prepared.rawValidation, testData: prepared.rawTest)
        // PE-SVI-GN's Krylov preconditioner, where `pesvi` uses one by default: formed once here
        // from the validation rows and kept with the model.
        if GaussNewtonRefinement.defaultKrylovPreconditioned(latent: decoder.latent, dataWidth: prepared.width) {
            model.krylovPreconditioner = ComparisonOptions.formKrylovPreconditioner(for: model, threads: o.threads)
        }
        return model
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] {
        var out: [K: Value] = [:]
        for (k, v) in self { out[f(k)] = v }
        return out
    }
}
