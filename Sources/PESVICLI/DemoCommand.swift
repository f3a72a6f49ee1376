import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// `pesvi demo`: the whole method on the built-in handwritten digits.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole method on the built-in digits (1,797×64): train SVI decoder, pseudo-encoder and VAE, then compare VAE, SVI, PE-SVI-0, PE-SVI-25, PE-SVI-auto and PE-SVI-GN on the test split."
    )
    @Option(help: "Also write the trained model to this directory.") var out: String?
    @Flag(help: "Print the comparison as one JSON object.") var json = false
    @OptionGroup var model: ModelOptions
    @OptionGroup var comparison: ComparisonFlags
    @OptionGroup var common: CommonOptions

    func run() throws {
        let digits = BuiltinDatasets.digits()
        if !common.quiet {
            printErr("PESVI demo: optical handwritten digits (UCI; Alpaydin & Kaynak 1998; CC BY 4.0), \(digits.rows)×\(digits.cols)")
        }
        let t0 = Date()
        let options = try model.pipelineOptions(common: common, vae: true, source: "digits", rows: digits.rows)
        let progress = PhaseProgress(quiet: common.quiet)
        let (trained, _) = try TrainingPipeline.train(digits, options: options, progress: progress.callback())
        progress.finish()
        if let out { try ModelStore.save(trained, to: out) }
        let x = try trained.prepare(trained.testData!, name: "digits test split")
        let r = MethodComparison.run(model: trained, points: x, dataset: "digits (test split)", options: comparison.options(common: common))
        print(json ? try r.jsonLine() : MethodComparison.table(r))
        if !common.quiet { printErr(String(format: "total %.1f s", Date().timeIntervalSince(t0))) }
    }
}
