import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// `pesvi train`: phases 1 and 2 (and the VAE baseline with --vae), then pace selection.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a PE-SVI model: decoder by SVI (phase 1), pseudo-encoder (phase 2), pace; optionally the VAE baseline.",
        discussion: """
        The data (CSV or .npy, one point per row; 'digits' for the built-in digits) is split at random into \
        80 % train, 10 % validation and 10 % test (seeded), and standardized with the training statistics. \
        The model directory receives model.safetensors, config.json and the held-out rows.
        """
    )
    @Option(help: "Data file (.csv or .npy), or 'digits'.") var data: String
    @Option(help: "Model directory to write.") var out: String
    @Flag(help: "Also train the VAE baseline.") var vae = false
    @Flag(help: "Keep the training posteriors (μᵢ, log σ²ᵢ) in the checkpoint.") var keepPosteriors = false
    @OptionGroup var model: ModelOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        let matrix = try loadData(data)
        var options = try model.pipelineOptions(common: common, vae: vae, source: data, rows: matrix.rows)
        options.keepPosteriors = keepPosteriors
        let progress = PhaseProgress(quiet: common.quiet)
        let (trained, report) = try TrainingPipeline.train(matrix, options: options, progress: progress.callback())
        progress.finish()
        try ModelStore.save(trained, to: out)
        let c = trained.configuration
        print("trained |z|=\(c.latent) \(c.architecture) on \(matrix.rows)×\(matrix.cols) (\(data)); model written to \(out)")
        print(String(format: "phase 1: %d epochs, %.1f s, validation objective %.5f", report.phase1.count, report.seconds["phase1"] ?? 0,
                     report.phase1.last?.validationObjective ?? .nan))
        print(String(format: "phase 2: %d epochs, %.1f s, validation loss %.5f", report.phase2.count, report.seconds["phase2"] ?? 0,
                     report.phase2.last?.validationObjective ?? .nan))
        if vae { print(String(format: "VAE: %d epochs, %.1f s", report.vae.count, report.seconds["vae"] ?? 0)) }
        if let p = c.pace { print("pace: \(p.learningRate) for \(p.steps) steps (\(p.method))") }
        if let auto = c.autoPace { print("automatic pace: \(InferCommand.describe(c.autoStepRule ?? .adam, rate: auto))") }
        if let g = c.gaussNewtonSchedule { print("Gauss-Newton schedule: \(g.summary)") }
    }
}
