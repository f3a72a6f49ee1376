import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// `pesvi infer`: posteriors for new points: pseudo-encoder start plus K paced Adam steps.
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Infer posteriors for new points: pseudo-encoder start, then refinement (paced Adam, or Gauss-Newton with --method gn).",
        discussion: """
        Writes one row per point: μ (|z| columns mu0…) then log σ² (|z| columns logvar0…), as .npy or .csv by the \
        extension of --out. With --lr auto (the default) each point is refined by guarded refinement at the model's \
        automatic pace (found on the model's validation rows by a log-scale search the first time, or again with \
        --search-pace, then stored in config.json: among the Adam rates, and for the reconstruction objective the \
        Cauchy, subspace and Krylov steps, whose final objective is within 1 % of the best: with the reconstruction objective \
        the one that comes within 1 % of SVI's level on the validation rows in at most five steps with the least work, \
        steps times multiply-adds per step; else, or when none does, the one with the fastest progress over the first \
        five steps), stopping on its own when it stops improving (at most --steps steps). With --lr RATE, exactly --steps Adam steps \
        at RATE (the paper's PE-SVI-K). With --method gn, damped Gauss-Newton on μ with closed-form log σ² (at most \
        --steps iterations per point, each point stopping on its own). With --method cauchy (reconstruction objective \
        only), guarded refinement whose step is the Gauss-Newton model's minimizer along the gradient, log σ² at the \
        floor (no pace; at most --steps steps, each point stopping on its own).
        """
    )
    @Option(help: "Model directory written by 'pesvi train'.") var model: String
    @Option(help: "Data file (.csv or .npy) with the model's columns.") var data: String
    @Option(help: "Refinement steps K (0: the pseudo-encoder's output); with --lr auto, the most any point may take.") var steps: Int = 25
    @Option(help: "Refinement rate, or 'auto' for guarded refinement at the automatic pace.") var lr: String = "auto"
    @Option(help: "Output file (.npy or .csv).") var out: String
    @Option(help: "Refinement: 'adam' (paced Adam, see --lr), 'gn' (Gauss-Newton) or 'cauchy' (the Gauss-Newton step length along the gradient).") var method: String = "adam"
    @Flag(help: "With --lr auto: search the automatic pace again (and store it) even if the model has one, e.g. one found by an older pesvi. With --method gn: choose the Gauss-Newton schedule again (and store it).")
    var searchPace = false
    @Flag(help: "Print a summary as one JSON object on stdout: points, method, step rule and rate, mean and largest steps per point, seconds, the output file.")
    var json = false
    @OptionGroup var gaussNewton: GaussNewtonFlags
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be 0 or more, got \(steps)") }
        guard ["adam", "gn", "cauchy"].contains(method) else { throw ValidationError("--method must be 'adam', 'gn' or 'cauchy', got '\(method)'") }
        if lr != "auto" { guard let v = Float(lr), v > 0, v.isFinite else { throw ValidationError("--lr must be a positive number or 'auto', got '\(lr)'") } }
        if searchPace && !(method == "gn" || method == "adam" && lr == "auto") {
            throw ValidationError("--search-pace goes with --lr auto and --method adam, or with --method gn")
        }
        if searchPace && method == "gn" && gaussNewton.setsSchedule {
            throw ValidationError("--search-pace chooses the Gauss-Newton schedule; it does not go with the --gn flags that set one")
        }
    }

    func run() throws {
        let m = try ModelStore.load(from: model)
        let raw = try loadData(data)
        let x = try m.prepare(raw, name: data)
        if method == "cauchy" { try requireCauchyObjective(m, at: model, flag: "--method cauchy") }
        var rate: Float = 0
        var automatic: GuardedRefinementConfiguration? = nil
        if method == "gn" || method == "cauchy" {
            // Gauss-Newton and its Cauchy step need no pace.
        } else if lr == "auto" {
            var base = GuardedRefinementConfiguration(learningRate: 0.1)
            base.maxSteps = steps
            if !searchPace, let stored = m.configuration.automaticRefinement(base) {
                automatic = stored
            } else {
                guard let v = m.validationData else { throw ModelStoreError.missing("\(model): no validation.npy to find the automatic pace on; pass --lr RATE") }
                if !common.quiet { printErr("finding the automatic pace on \(v.rows) validation rows…") }
                let vx = try m.prepare(v, name: "\(model)/validation.npy")
                let svi = (m.configuration.phase1.initialization, m.configuration.sviLearningRate)
                guard let found = TrainingPipeline.automaticPace(vx, decoder: m.decoder, encoder: m.pseudoEncoder, svi: svi,
                                                                 threads: common.threads, seed: common.seed) else {
                    throw ModelStoreError.missing("\(model): validation.npy has no rows to find the automatic pace on; pass --lr RATE")
                }
                m.configuration.storeAutomaticPace(found)
                try ModelStore.saveConfiguration(m.configuration, to: model)
                automatic = found.configuration(base)
                if !common.quiet { printErr("automatic pace: \(Self.describe(found.stepRule, rate: found.learningRate)), stored in \(model)/config.json") }
            }
            rate = automatic!.learningRate
        } else {
            rate = Float(lr)!
        }
        var gnOptions = ComparisonOptions()
        gaussNewton.apply(to: &gnOptions)
        // PE-SVI-GN's schedule: the model's choice, made on its validation rows the first time
        // (or again with --search-pace) and stored in config.json, unless the flags set one.
        if method == "gn" && steps > 0 && gnOptions.gaussNewtonScheduleFromModel && m.decoder.network.layerCount > 1
            && m.configuration.objective.kind == .reconstruction && (m.configuration.gaussNewtonSchedule == nil || searchPace) {
            try chooseSchedule(m, options: gnOptions)
        }
        gnOptions = gnOptions.applyingSchedule(of: m)
        // PE-SVI-GN's Krylov preconditioner, where these options use one: formed once from the
        // validation rows and stored with the model (as the automatic pace is).
        if method == "gn" && steps > 0 && m.krylovPreconditioner == nil
            && gnOptions.gaussNewtonPreconditioned(latent: m.configuration.latent, dataWidth: m.configuration.dataWidth),
           let c = ComparisonOptions.formKrylovPreconditioner(for: m, threads: common.threads) {
            m.krylovPreconditioner = c
            try ModelStore.savePreconditioner(c, latent: m.configuration.latent, to: model)
            if !common.quiet {
                printErr("Krylov preconditioner formed on \(ComparisonOptions.krylovPreconditionerRows(for: m)) validation rows, stored in \(model)/\(ModelStore.preconditionerFile)")
            }
        }
        let gn = method == "gn" && steps > 0 ? gnOptions.gaussNewtonRefinement(model: m, threads: common.threads) : nil
        let t0 = Date()
        // A linear decoder's exact Gauss-Newton step does not read the start: the pseudo-encoder
        // is not run (a zero start stands in, used only if the exact step is refused).
        let start = gn?.takesExactLinearStep == true
            ? (mu: [Float](repeating: 0, count: x.rows * m.configuration.latent), logVariance: [Float](repeating: 0, count: x.rows * m.configuration.latent))
            : m.pseudoEncoder.encode(x, threads: common.threads)
        var mu = start.mu, lv = start.logVariance
        var stepsNote = "\(steps) steps"
        var summary = InferSummary(points: x.rows, latent: m.configuration.latent, method: method, stepRule: nil, learningRate: nil,
                                   meanSteps: Double(steps), maxSteps: steps, rejectedTrials: nil, exactStep: nil, seconds: 0, out: out)
        if let gn {
            let r = gn.refine(x, start: start, maxSteps: steps, seed: common.seed, recordCurve: false)
            mu = r.mu; lv = r.logVariance
            summary.meanSteps = r.meanSteps; summary.maxSteps = r.maxSteps
            summary.rejectedTrials = r.rejectedSteps; summary.exactStep = r.exactStep
            if m.decoder.network.layerCount > 1 { summary.schedule = gnOptions.gaussNewtonSchedule.name }
            stepsNote = !r.exactStep
                ? String(format: "Gauss-Newton (%@ schedule), mean %.1f / max %d steps per point, %d rejected trials",
                         summary.schedule ?? "standard", r.meanSteps, r.maxSteps, r.rejectedSteps)
                : r.usedStart ? "Gauss-Newton, one exact minimum-norm step per point from the pseudo-encoder's start (linear decoder, singular H)"
                : "Gauss-Newton, one exact step per point (linear decoder)"
        } else if steps > 0 && method == "cauchy" {
            let r = GuardedRefinement(decoder: m.decoder, threads: common.threads).refine(x, start: start, configuration: .cauchy(maxSteps: steps), seed: common.seed)
            mu = r.mu; lv = r.logVariance
            summary.stepRule = "cauchy"; summary.meanSteps = r.meanSteps; summary.maxSteps = r.maxSteps
            stepsNote = String(format: "Cauchy steps, mean %.1f / max %d steps per point", r.meanSteps, r.maxSteps)
        } else if steps > 0, let automatic {
            let r = GuardedRefinement(decoder: m.decoder, threads: common.threads).refine(x, start: start, configuration: automatic, seed: common.seed)
            mu = r.mu; lv = r.logVariance
            summary.stepRule = automatic.stepRule.rawValue
            summary.learningRate = automatic.stepRule == .adam ? Double(rate) : nil
            summary.meanSteps = r.meanSteps; summary.maxSteps = r.maxSteps
            stepsNote = String(format: "guarded, %@, mean %.1f / max %d steps per point", Self.describe(automatic.stepRule, rate: rate), r.meanSteps, r.maxSteps)
        } else if steps > 0 {
            let r = TestTimeInference(decoder: m.decoder, threads: common.threads)
                .refine(x, start: start, learningRate: rate, steps: steps, seed: common.seed)
            mu = r.mu; lv = r.logVariance
            summary.stepRule = "adam"; summary.learningRate = Double(rate)
        }
        let seconds = Date().timeIntervalSince(t0)
        summary.seconds = seconds
        if let bad = mu.firstIndex(where: { !$0.isFinite }) ?? lv.firstIndex(where: { !$0.isFinite }) {
            throw DataError.invalidArgument(steps > 0
                ? "inference diverged: point \(bad / m.configuration.latent + 1) has a non-finite posterior after \(steps) steps at rate \(rate); try a smaller --lr or fewer --steps"
                : "the pseudo-encoder gave a non-finite posterior for point \(bad / m.configuration.latent + 1)")
        }
        let L = m.configuration.latent
        var values = [Float](); values.reserveCapacity(x.rows * 2 * L)
        for i in 0..<x.rows { values += mu[(i * L)..<((i + 1) * L)]; values += lv[(i * L)..<((i + 1) * L)] }
        let names = (0..<L).map { "mu\($0)" } + (0..<L).map { "logvar\($0)" }
        try DataFiles.write(try DataMatrix(rows: x.rows, cols: 2 * L, values: values, columnNames: names), to: out)
        if !common.quiet {
            let how = method == "adam" && automatic == nil ? String(format: "%@ at rate %g", stepsNote, rate) : stepsNote
            printErr(String(format: "inferred %d points (%@) in %.3f s; wrote %@", x.rows, how, seconds, out))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        }
    }

    /// Races PE-SVI-GN's schedules on the model's validation rows to SVI's level there
    /// (``TrainingPipeline/chooseGaussNewtonSchedule(for:validation:target:base:threads:seed:)``)
    /// and stores the choice (and a Krylov preconditioner it keeps) in the model directory;
    /// without validation rows (or a finite level) the standard schedule, nothing stored.
    func chooseSchedule(_ m: PESVIModel, options: ComparisonOptions) throws {
        guard let v = m.validationData, v.rows > 0 else {
            // Nothing to race on: the standard schedule, as for a model without a choice.
            if !common.quiet { printErr("\(model) has no validation rows to choose the Gauss-Newton schedule on: the standard schedule") }
            return
        }
        let vx = try m.prepare(v, name: "\(model)/validation.npy")
        if !common.quiet { printErr("choosing the Gauss-Newton schedule on \(vx.rows) validation rows (SVI's level from \(TrainingPipeline.scheduleRaceStarts) random starts first)…") }
        let level = TrainingPipeline.sviLevels(vx, for: m, threads: common.threads, seed: common.seed)?.median
        guard let choice = TrainingPipeline.chooseGaussNewtonSchedule(for: m, validation: vx, target: level, base: options,
                                                                      threads: common.threads, seed: common.seed) else {
            if !common.quiet { printErr("SVI's level on \(model)'s validation rows is not a finite number: the standard Gauss-Newton schedule") }
            return
        }
        let hadPreconditioner = FileManager.default.fileExists(atPath: URL(fileURLWithPath: model).appendingPathComponent(ModelStore.preconditionerFile).path)
        m.configuration.gaussNewtonSchedule = choice
        try ModelStore.saveConfiguration(m.configuration, to: model)
        if let c = m.krylovPreconditioner, !hadPreconditioner { try ModelStore.savePreconditioner(c, latent: m.configuration.latent, to: model) }
        if !common.quiet {
            printErr("Gauss-Newton schedule: \(choice.summary), stored in \(model)/config.json")
        }
    }

    /// `infer --json`: what was run and what it took. `stepRule` is "adam", "cauchy",
    /// "subspace" or "krylov" (nil with `--steps 0` and for Gauss-Newton); `learningRate` the
    /// Adam rate when Adam ran; `meanSteps`/`maxSteps` per point (Gauss-Newton: iterations;
    /// a fixed rate: exactly --steps); `rejectedTrials` and `exactStep` for Gauss-Newton only;
    /// `seconds` the wall time of the encoder pass and the refinement.
    struct InferSummary: Codable {
        var points: Int
        var latent: Int
        var method: String
        var stepRule: String?
        var learningRate: Double?
        var meanSteps: Double
        var maxSteps: Int
        var rejectedTrials: Int?
        var exactStep: Bool?
        /// Gauss-Newton with a ReLU decoder: its schedule ("standard", "smoothed to the end", or the flags' settings).
        var schedule: String? = nil
        var seconds: Double
        var out: String
    }

    /// "Adam at rate R", "the Cauchy step", "the subspace step" or "the Krylov step".
    static func describe(_ rule: GuardedRefinementConfiguration.StepRule, rate: Float) -> String {
        switch rule {
        case .cauchy: "the Cauchy step"
        case .subspace: "the subspace step"
        case .krylov: "the Krylov step"
        case .adam: String(format: "Adam at rate %g", rate)
        }
    }
}
