import Foundation
import PESVIData
import PESVIModels

/// The hyperparameter search and budgets of a reproduction run (paper section 4.3).
public struct ReproductionOptions: Sendable {
    public var latents: [Int] = [16, 32, 64, 128]
    public var architectures: [Architecture] = [.arch1, .arch2, .arch3]
    public var objective: Objective = .reconstruction
    /// VAE rates: the paper's {1, 5, 8} × 10^{−2…−5}.
    public var vaeRates: [Float] = [1e-2, 5e-2, 8e-2, 1e-3, 5e-3, 8e-3, 1e-4, 5e-4, 8e-4, 1e-5, 5e-5, 8e-5]
    /// SVI model (decoder) rates 10^{−2, −3} × latent rates 10^{−1, −2, −3}.
    public var decoderRates: [Float] = [1e-2, 1e-3]
    public var latentRates: [Float] = [1e-1, 1e-2, 1e-3]
    /// Initial log σ² of the free posteriors (μ ~ U(−1, 1)), searched with the SVI rates. Not
    /// in the paper's grid: added because it decides whether phase 1 learns at all (measured:
    /// on digits 0 is far better than −4; on the synthetic data −4 is far better than 0,
    /// where σ = 1 noise lets the decoder settle on the mean before the latents organize).
    public var initialLogVariances: [Float] = [0, -4]
    /// Pace candidates {1, 5} × 10^{0, −1, −2} for `paceSteps` = 25 steps.
    public var paceCandidates: [Float] = PaceSelection.paperCandidates
    public var paceSteps = 25
    /// Epoch limit of every training run (the paper: 3,000) and plateau patience.
    public var maxEpochs = 3000
    public var patience = 100
    public var encoderEpochs = 1000
    /// Batch size of every phase; nil: ``ReproductionOptions/automaticBatchSize(trainingRows:)``.
    public var batchSize: Int? = nil

    /// max(64, ⌈rows/20⌉): about 20 decoder steps per epoch, i.e. per latent-row step. The
    /// paper gives no batch size. With a fixed 64, 40,000 synthetic rows give the decoder 625
    /// steps for each step of a latent row, and it settles on the mean before the latents
    /// organize (measured: validation 0.996 after 41 epochs at batch 64, 0.33 after 60 at 2,048).
    public static func automaticBatchSize(trainingRows: Int) -> Int { max(64, (trainingRows + 19) / 20) }
    /// Phase 2 is plain supervised regression, with no latent rows to keep pace with, so it
    /// does not need phase 1's large batches: min(256, phase-1 batch). Measured on synthetic
    /// |z|=64 Arch2 (40,000 rows, 400 epochs): batch 2,000 → 256 moved the validation loss from
    /// 1.745 to 1.721 and PE-SVI-0 from 0.963 to 0.916, a small gain; the regression itself is
    /// hard (μ* has heavy tails), not starved of steps.
    public static func automaticEncoderBatchSize(phase1BatchSize: Int) -> Int { min(256, phase1BatchSize) }
    public var sviRule: StoppingRule = .sviDefault
    public var seed: UInt64 = 0
    /// Threads of the timed comparison on each cell's test split.
    public var threads = 1
    /// Threads of each cell's training work (the SVI and VAE searches, the pseudo-encoder, the
    /// pace searches); nil: ``threads``. Training reduces its chunk gradients in chunk order, so
    /// the trained models, and every number but the wall times, are the same for any count:
    /// two training threads shorten a cell that runs alone (one process on two cores) while its
    /// comparison stays timed on ``threads``, like the other cells'.
    public var trainingThreads: Int? = nil
    /// ``trainingThreads`` or, when unset, ``threads``.
    public var searchThreads: Int { trainingThreads ?? threads }
    /// Whether this is the reduced `--quick` protocol (said in every output).
    public var quick = false
    /// When set, each cell's chosen model (SVI decoder, pseudo-encoder, VAE, paces and the
    /// held-out rows) is saved to `modelsDirectory/<cell>` (see ``modelName(z:architecture:)``),
    /// so `pesvi evaluate --model` can re-run or extend its comparison; with `--seed` equal to
    /// ``comparisonSeed`` it repeats the cell's numbers.
    public var modelsDirectory: String? = nil
    /// The seed the cells' comparisons use: `seed + 9`.
    public var comparisonSeed: UInt64 { seed &+ 9 }
    /// The comparison every cell runs on its test split (the defaults otherwise).
    public var comparisonOptions: ComparisonOptions {
        var co = ComparisonOptions()
        co.refineSteps = paceSteps
        co.sviRule = sviRule
        co.threads = threads
        co.seed = comparisonSeed
        return co
    }
    public init() {}

    /// The `--quick` protocol: a reduced grid and budget (stated in the outputs).
    public static func quick() -> ReproductionOptions {
        var o = ReproductionOptions()
        o.quick = true
        o.vaeRates = [1e-2, 5e-3, 1e-3]
        // Both of the paper's decoder rates: 1e-3 decides whether deeper decoders learn
        // (measured on digits |z|=16 Arch3: phase-1 validation 0.146 at 1e-3 against 0.306 at
        // 1e-2), and the first quick grid, with 1e-2 alone, left SVI behind the VAE there.
        o.decoderRates = [1e-2, 1e-3]
        o.latentRates = [1e-1]
        // Phase 1 improves slowly and steadily; a 40-epoch patience stopped it early (digits
        // |z|=64 Arch2: test SVI 0.0106 after 455 epochs, 0.0038 after 1,218 with patience 200).
        o.maxEpochs = 3000
        o.patience = 100
        o.encoderEpochs = 400
        o.sviRule = .sviDefault
        return o
    }

    public var protocolDescription: String {
        func list(_ v: [Float]) -> String { v.map { String(format: "%g", $0) }.joined(separator: ", ") }
        return """
        \(quick ? "QUICK protocol (reduced grid and budget, not the paper's)" : "full protocol (paper section 4.3)"): \
        VAE rates {\(list(vaeRates))}; SVI decoder rates {\(list(decoderRates))} × latent rates {\(list(latentRates))} × initial log σ² {\(list(initialLogVariances))}; \
        pace {\(list(paceCandidates))} for \(paceSteps) steps; at most \(maxEpochs) epochs (plateau patience \(patience)), \
        pseudo-encoder at most \(encoderEpochs) epochs, batch \(batchSize.map(String.init) ?? "max(64, ⌈training rows/20⌉)") (pseudo-encoder: at most 256); SVI test-time rule \(sviRule); seed \(seed).
        """
    }
}

/// One (|z|, architecture) cell of the tables.
public struct ReproductionCell: Sendable, Codable {
    public var comparison: ComparisonReport
    public var vaeLearningRate: Float?
    public var decoderLearningRate: Float
    public var latentLearningRate: Float
    /// The chosen initial log σ² of the free posteriors.
    public var initialLogVariance: Float = 0
    public var pace: Float
    /// The automatic pace of PE-SVI-auto, and the step rule chosen with it (nil: Adam).
    public var autoPace: Float? = nil
    public var autoStepRule: GuardedRefinementConfiguration.StepRule? = nil
    /// PE-SVI-GN's schedule chosen on the validation rows (nil: none chosen, the standard one).
    public var gaussNewtonSchedule: GaussNewtonSchedule? = nil
    /// Wall time of the cell's whole search and evaluation, seconds.
    public var seconds: Double
}

/// `pesvi reproduce`: for every cell, train VAE and SVI over the paper's grid, choose on the
/// validation split, fit the pseudo-encoder to the chosen SVI model, choose the pace on
/// validation, and compare the methods on the test split.
public enum PaperReproduction {
    ///
    /// With a `store`, every finished cell is written to it; with `resume` as well, a cell the
    /// store already holds (under the same protocol) is read back instead of recomputed, an
    /// interrupted cell's search continues from its checkpoint, and a cell another live run
    /// has claimed is skipped (not in the returned cells).
    /// `cellFinished` is called after every cell, kept or computed, with all cells so far.
    public static func run(data: DataMatrix, dataset: String, options o: ReproductionOptions,
                           store: ReproductionCellStore? = nil, resume: Bool = false,
                           log: (String) -> Void = { _ in },
                           cellFinished: ([ReproductionCell]) throws -> Void = { _ in }) throws -> [ReproductionCell] {
        let prepared = try TrainingPipeline.prepare(data, seed: o.seed)
        let batch = o.batchSize ?? ReproductionOptions.automaticBatchSize(trainingRows: prepared.train.rows)
        var cells: [ReproductionCell] = []
        for arch in o.architectures {
            for z in o.latents {
                if resume, let store, let kept = try store.load(z: z, architecture: arch) {
                    log("cell |z|=\(z) \(arch): kept from \(store.url(z: z, architecture: arch).path) (computed in \(String(format: "%.1f", kept.seconds)) s)")
                    cells.append(kept)
                    try cellFinished(cells)
                    continue
                }
                // Several --resume runs on one directory share its cells: skip one another holds.
                var claim: CellClaim? = nil
                if resume, let store {
                    let (c, holder) = try store.claim(z: z, architecture: arch)
                    guard let c else {
                        log("cell |z|=\(z) \(arch): being computed by another run (\(holder ?? "?")); skipped, run --resume again when it is done")
                        continue
                    }
                    claim = c
                }
                defer { claim?.release() }
                let t0 = Date()
                // The search checkpoint: configurations a previous, interrupted run finished.
                var search = SearchCheckpoint(protocolKey: store?.protocolKey ?? "")
                if resume, let store, let kept = try store.loadSearch(z: z, architecture: arch) {
                    search = kept
                    log("cell |z|=\(z) \(arch): resuming its search from \(store.searchURL(z: z, architecture: arch).path) "
                        + String(format: "(%d SVI and %d VAE configurations done, %.1f s)", kept.svi.count, kept.vae.count, kept.journaledSeconds))
                }
                search.sviTotal = o.decoderRates.count * o.latentRates.count * o.initialLogVariances.count
                search.vaeTotal = o.vaeRates.count
                let resumedSeconds = search.journaledSeconds
                func checkpoint() throws {
                    guard let store else { return }
                    if try !store.saveSearch(search, z: z, architecture: arch) {
                        log("  (search checkpoint not written: a trained state holds a non-finite value)")
                    }
                }
                log("cell |z|=\(z) \(arch): searching SVI rates")
                // SVI (phase 1) over the grid, chosen by the validation objective.
                for dlr in o.decoderRates {
                    for llr in o.latentRates {
                      for lv0 in o.initialLogVariances {
                        if let run = search.sviRun(decoderRate: dlr, latentRate: llr, initialLogVariance: lv0) {
                            log(String(format: "  SVI decoder %g latent %g initial log σ² %g: %d epochs, validation %.5f (kept from the search checkpoint)",
                                       dlr, llr, lv0, run.epochs, run.validation))
                            continue
                        }
                        let tc = Date()
                        var c = EarlyDecoderTrainingConfiguration()
                        c.initialization = .uniform(low: -1, high: 1, logVariance: lv0)
                        c.epochs = o.maxEpochs; c.patience = o.patience; c.batchSize = batch
                        c.decoderLearningRate = dlr; c.latentLearningRate = llr
                        c.seed = o.seed &+ 1; c.threads = o.searchThreads
                        let p1 = TrainingPipeline.phase1(prepared, latent: z, architecture: arch, objective: o.objective, configuration: c, seed: o.seed)
                        let v = p1.history.last?.validationObjective ?? .infinity
                        log(String(format: "  SVI decoder %g latent %g initial log σ² %g: %d epochs, validation %.5f", dlr, llr, lv0, p1.history.count, v))
                        search.svi.append(.init(decoderRate: dlr, latentRate: llr, initialLogVariance: lv0, epochs: p1.history.count,
                                                validation: v, seconds: Date().timeIntervalSince(tc)))
                        if search.bestSVI == nil || v < search.bestSVI!.validation { search.bestSVI = SearchCheckpoint.state(of: p1, validation: v) }
                        try checkpoint()
                      }
                    }
                }
                // VAE over its grid, chosen by the validation objective (best epoch kept).
                for lr in o.vaeRates {
                    if let run = search.vaeRun(rate: lr) {
                        log(String(format: "  VAE %g: %d epochs, validation %.5f (kept from the search checkpoint)", lr, run.epochs, run.score))
                        continue
                    }
                    let tc = Date()
                    var c = VAETrainingConfiguration()
                    c.epochs = o.maxEpochs; c.patience = o.patience; c.batchSize = batch; c.learningRate = lr
                    c.seed = o.seed &+ 3; c.threads = o.searchThreads
                    let v = TrainingPipeline.vae(prepared, latent: z, architecture: arch, objective: o.objective, configuration: c, seed: o.seed)
                    let score = v.history.compactMap(\.validationObjective).filter(\.isFinite).min() ?? .infinity
                    log(String(format: "  VAE %g: %d epochs, validation %.5f", lr, v.history.count, score))
                    search.vae.append(.init(rate: lr, epochs: v.history.count, score: score, seconds: Date().timeIntervalSince(tc)))
                    if search.bestVAE == nil || score < search.bestVAE!.score { search.bestVAE = SearchCheckpoint.state(of: v, score: score) }
                    try checkpoint()
                }
                // The winners, rebuilt from their stored floats (the same path whether they were
                // trained in this run or read back from the checkpoint).
                guard let sviBest = search.bestSVI else {
                    throw ModelStoreError.invalid("reproduce: the SVI grid is empty")
                }
                let p1 = (decoder: try SearchCheckpoint.decoder(latent: z, dataWidth: prepared.width, architecture: arch, objective: o.objective,
                                                                parameters: sviBest.decoder, noise: sviBest.noise),
                          configuration: sviBest.configuration,
                          posteriors: PosteriorTable(mu: sviBest.mu, logVariance: sviBest.logVariance, latent: z,
                                                     adam: AdamConfiguration(learningRate: sviBest.configuration.latentLearningRate)))
                let bestVAE = try search.bestVAE.map { b in
                    (encoder: try SearchCheckpoint.encoder(latent: z, dataWidth: prepared.width, architecture: arch, parameters: b.encoder),
                     decoder: try SearchCheckpoint.decoder(latent: z, dataWidth: prepared.width, architecture: arch, objective: o.objective,
                                                           parameters: b.decoder, noise: b.noise),
                     configuration: b.configuration)
                }
                // Pseudo-encoder and pace for the chosen SVI model.
                var c2 = DeferredEncoderTrainingConfiguration()
                c2.epochs = o.encoderEpochs; c2.patience = o.patience
                c2.batchSize = ReproductionOptions.automaticEncoderBatchSize(phase1BatchSize: batch)
                c2.seed = o.seed &+ 2; c2.threads = o.searchThreads
                let p2 = TrainingPipeline.phase2(prepared, posteriors: p1.posteriors, architecture: arch, configuration: c2, seed: o.seed)
                let pace = TrainingPipeline.selectPace(prepared, decoder: p1.decoder, encoder: p2.encoder, candidates: o.paceCandidates,
                                                       steps: o.paceSteps, threads: o.searchThreads, seed: o.seed &+ 4)
                var po = PipelineOptions()
                po.latent = z; po.architecture = arch; po.objective = o.objective; po.seed = o.seed; po.dataSource = dataset
                let model = TrainingPipeline.assemble(prepared, options: po, decoder: p1.decoder, phase1Configuration: p1.configuration,
                                                      posteriors: p1.posteriors, phase2: p2,
                                                      vae: bestVAE.map { ($0.encoder, $0.decoder) },
                                                      vaeConfiguration: bestVAE?.configuration, pace: pace, report: PipelineReport())
                _ = TrainingPipeline.chooseRefinements(for: model, validation: prepared.validation, base: o.comparisonOptions,
                                                       threads: o.searchThreads, seed: o.seed &+ 6)
                if let root = o.modelsDirectory {
                    try ModelStore.save(model, to: URL(fileURLWithPath: root).appendingPathComponent(modelName(z: z, architecture: arch)).path)
                }
                let comparison = MethodComparison.run(model: model, points: prepared.test, dataset: dataset, options: o.comparisonOptions)
                let cell = ReproductionCell(comparison: comparison, vaeLearningRate: bestVAE?.configuration.learningRate,
                                            decoderLearningRate: p1.configuration.decoderLearningRate,
                                            latentLearningRate: p1.configuration.latentLearningRate,
                                            initialLogVariance: {
                                                if case .uniform(_, _, let lv) = p1.configuration.initialization { return lv }
                                                return 0
                                            }(),
                                            pace: comparison.pace, autoPace: model.configuration.autoPace,
                                            autoStepRule: model.configuration.autoStepRule,
                                            gaussNewtonSchedule: model.configuration.gaussNewtonSchedule?.schedule,
                                            seconds: Date().timeIntervalSince(t0) + resumedSeconds)
                log(MethodComparison.table(comparison))
                try store?.save(cell, architecture: arch)
                store?.removeSearch(z: z, architecture: arch)
                cells.append(cell)
                try cellFinished(cells)
            }
        }
        return cells
    }

    /// The directory name of a cell's saved model: `z64-arch2`.
    public static func modelName(z: Int, architecture: Architecture) -> String {
        "z\(z)-\(architecture.description.lowercased())"
    }

    // MARK: - Outputs

    /// Writes results.md, results.json and one SVG plot per cell into `directory`.
    public static func write(_ cells: [ReproductionCell], dataset: String, options o: ReproductionOptions,
                             totalSeconds: Double, to directory: String) throws {
        let dir = URL(fileURLWithPath: directory)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ModelStoreError.invalid("\(directory): cannot create the output directory: \(error.localizedDescription)")
        }
        try AtomicFile.write(Data(markdown(cells, dataset: dataset, options: o, totalSeconds: totalSeconds).utf8),
                             to: dir.appendingPathComponent("results.md"))
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try e.encode(cells.map(\.comparison)), to: dir.appendingPathComponent("results.json"))
        for cell in cells {
            try AtomicFile.write(Data(plot(cell).svg().utf8), to: dir.appendingPathComponent(plotName(cell)))
        }
    }

    public static func plotName(_ cell: ReproductionCell) -> String {
        "curve-z\(cell.comparison.z)-\(cell.comparison.arch.lowercased()).svg"
    }

    /// Test objective against step (log-log) for SVI and PE-SVI at the chosen pace.
    public static func plot(_ cell: ReproductionCell) -> LinePlot {
        let c = cell.comparison
        var series: [LinePlot.Series] = []
        let paced = c.order.first { $0.hasPrefix("PE-SVI-") && Int($0.dropFirst(7)) ?? 0 > 0 } ?? "PE-SVI-25"
        for (name, color) in [("SVI", "#d62728"), (paced, "#1f77b4"), ("PE-SVI-auto", "#2ca02c"), ("PE-SVI-GN", "#9467bd")] {
            guard let m = c.methods[name], !m.curve.isEmpty else { continue }
            let label = name == "SVI" ? "SVI (rate \(c.sviLearningRate))" : name == paced ? "\(name) (pace \(c.pace))" : name
            series.append(.init(name: label,
                                xs: m.curve.indices.map { Double($0 + 1) }, ys: m.curve, color: color))
        }
        if c.sviObjective.isFinite, let last = series.map({ $0.xs.last ?? 1 }).max() {
            series.append(.init(name: "SVI converged", xs: [1, last], ys: [c.sviObjective, c.sviObjective], color: "#7f7f7f"))
        }
        return LinePlot(title: "\(c.dataset): |z|=\(c.z) \(c.arch), test objective", xLabel: "step + 1", yLabel: "mean objective per point",
                        xLog: true, yLog: true, series: series)
    }

    static func f(_ v: Double?) -> String { v.map { $0.isFinite ? String(format: "%.4f", $0) : "n/a" } ?? "n/a" }

    public static func markdown(_ cells: [ReproductionCell], dataset: String, options o: ReproductionOptions, totalSeconds: Double) -> String {
        var out = "# PE-SVI reproduction: \(dataset)\n\n"
        out += o.protocolDescription + "\n\n"
        out += String(format: "Total run time: %.1f s (%.1f min).", totalSeconds, totalSeconds / 60)
        let cellSeconds = cells.reduce(0) { $0 + $1.seconds }
        out += String(format: " The %d cells' own times add up to %.1f s (%.1f h); a cell kept by --resume counts with the time it took when computed, a cell whose search was resumed with its journaled configurations' times plus the resumed run's (work lost to an interruption is not counted).\n\n",
                      cells.count, cellSeconds, cellSeconds / 3600)
        out += "Reconstruction is the expected squared error per point and dimension on the test split (standardized units), "
        out += "as in the paper's tables.\n"
        let zs = o.latents
        for arch in o.architectures {
            let name = arch.description
            let row = cells.filter { $0.comparison.arch == name }
            guard !row.isEmpty else { continue }
            out += "\n## \(name)\n\n| Model \\ |z| | " + zs.map(String.init).joined(separator: " | ") + " |\n|---|" + zs.map { _ in "---|" }.joined() + "\n"
            let methods = ["VAE", "SVI", "PE-SVI-0", "PE-SVI-\(o.paceSteps)"]
            for m in methods {
                out += "| \(m) | " + zs.map { z in f(row.first { $0.comparison.z == z }?.comparison.methods[m]?.reconstruction) }.joined(separator: " | ") + " |\n"
            }
        }
        out += "\n## Steps\n\nSVI: first step within 1 % of its own plateau at its chosen rate. PE-SVI: first step within 1 % of SVI's converged objective at the chosen pace (never: not within \(o.paceSteps) steps). Seconds are test-time inference alone.\n\n"
        out += "| cell | SVI rate | SVI steps | PE-SVI pace | PE-SVI steps | ratio | SVI s | PE-SVI s |\n|---|---|---|---|---|---|---|---|\n"
        var ratios: [Double] = [], peSteps: [Double] = [], sviSteps: [Double] = []
        func steps(_ v: Double?) -> String { v.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.1f", $0) } ?? "never" }
        for cell in cells {
            let c = cell.comparison
            let svi = c.methods["SVI"], pe = c.methods["PE-SVI-\(o.paceSteps)"]
            let s = svi?.steps, p = pe?.steps
            var ratio = "n/a"
            if let s, let p {
                ratio = p == 0 ? "∞" : String(format: "%.1f", s / p)
                if p > 0 { ratios.append(s / p) }
            }
            if let s { sviSteps.append(s) }
            if let p { peSteps.append(p) }
            out += "| |z|=\(c.z) \(c.arch) | \(c.sviLearningRate) | \(steps(s)) | \(c.pace) | \(steps(p)) | \(ratio) | "
            out += String(format: "%.3f | %.4f |\n", svi?.seconds ?? .nan, pe?.seconds ?? .nan)
        }
        func mean(_ v: [Double]) -> String { v.isEmpty ? "n/a" : String(format: "%.1f", v.reduce(0, +) / Double(v.count)) }
        out += "\nMean SVI steps: \(mean(sviSteps)); mean PE-SVI steps (cells that reached SVI): \(mean(peSteps)) "
        out += "(\(peSteps.count) of \(cells.count) cells reached it); mean ratio \(mean(ratios)). The paper: 1,826.1 and 15.2.\n"
        // Beyond the paper: guarded refinement at the automatic pace, and Gauss-Newton.
        let extra = ["PE-SVI-auto", "PE-SVI-GN"].filter { m in cells.contains { $0.comparison.methods[m] != nil } }
        if !extra.isEmpty {
            out += "\n## Beyond the paper\n\nReconstruction; mean steps per point and seconds (encoder pass included) up to the first iteration after which "
            out += "the reconstruction is within 1 % of SVI's (never: not reached); SVI's seconds divided by those; and the whole run to each point's own stop "
            out += "(mean steps, the most any point took, seconds). " + o.comparisonOptions.refinementDescription + "\n\n"
            out += "| cell | SVI recon. | " + extra.map { "\($0) recon. | steps to SVI | s to SVI | SVI s ÷ s | run steps (max) | run s" }.joined(separator: " | ") + " |\n|---|---|"
            out += extra.map { _ in "---|---|---|---|---|---|" }.joined() + "\n"
            for cell in cells {
                let c = cell.comparison
                let svi = c.methods["SVI"]
                out += "| |z|=\(c.z) \(c.arch) | \(f(svi?.reconstruction)) | "
                out += extra.map { m in
                    guard let r = c.methods[m] else { return "n/a | n/a | n/a | n/a | n/a | n/a" }
                    let reached = r.steps != nil
                    let speedup = reached ? String(format: "%.0f×", (svi?.seconds ?? .nan) / r.seconds) : "–"
                    let toSVI = reached ? String(format: "%.4f", r.seconds) : "–"
                    let run = "\(r.runSteps.map { String(format: "%.1f", $0) } ?? "n/a") (\(r.maxStepsPerPoint.map(String.init) ?? "n/a")) | "
                        + String(format: "%.4f", r.runSeconds ?? r.seconds)
                    return "\(f(r.reconstruction)) | \(steps(r.steps)) | \(toSVI) | \(speedup) | " + run
                }.joined(separator: " | ") + " |\n"
            }
        }
        out += "\n## Chosen hyperparameters\n\n| cell | VAE rate | SVI decoder rate | SVI latent rate | initial log σ² | pace | auto pace | GN schedule | cell seconds |\n|---|---|---|---|---|---|---|---|---|\n"
        for cell in cells {
            out += "| |z|=\(cell.comparison.z) \(cell.comparison.arch) | \(cell.vaeLearningRate.map { "\($0)" } ?? "n/a") | \(cell.decoderLearningRate) | \(cell.latentLearningRate) | \(cell.initialLogVariance) | \(cell.pace) | \(cell.autoStepRule == .cauchy ? "Cauchy step" : cell.autoStepRule == .subspace ? "subspace step" : cell.autoStepRule == .krylov ? "Krylov step" : cell.autoPace.map { String(format: "%.3g", $0) } ?? "n/a") | "
            out += "\(cell.gaussNewtonSchedule?.name ?? "standard") | " + String(format: "%.1f |\n", cell.seconds)
        }
        out += "\nPlots: " + cells.map { "`\(plotName($0))`" }.joined(separator: ", ") + ".\n"
        return out
    }
}
