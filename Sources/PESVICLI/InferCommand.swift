import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// `pesvi infer`: posteriors for new points: pseudo-encoder start plus K paced Adam steps.
struct InferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Infer posteriors for new points: pseudo-encoder start, then K Adam steps at the pace.",
        discussion: "Writes one row per point: μ (|z| columns mu0…) then log σ² (|z| columns logvar0…), as .npy or .csv by the extension of --out."
    )
    @Option(help: "Model directory written by 'pesvi train'.") var model: String
    @Option(help: "Data file (.csv or .npy) with the model's columns.") var data: String
    @Option(help: "Refinement steps K (0: the pseudo-encoder's output).") var steps: Int = 25
    @Option(help: "Refinement rate, or 'auto' for the model's chosen pace.") var lr: String = "auto"
    @Option(help: "Output file (.npy or .csv).") var out: String
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be 0 or more, got \(steps)") }
        if lr != "auto" { guard let v = Float(lr), v > 0, v.isFinite else { throw ValidationError("--lr must be a positive number or 'auto', got '\(lr)'") } }
    }

    func run() throws {
        let m = try ModelStore.load(from: model)
        let raw = try loadData(data)
        let x = try m.prepare(raw, name: data)
        let rate: Float = lr == "auto" ? (m.configuration.pace?.learningRate ?? 0.1) : Float(lr)!
        let t0 = Date()
        let start = m.pseudoEncoder.encode(x, threads: common.threads)
        var mu = start.mu, lv = start.logVariance
        if steps > 0 {
            let r = TestTimeInference(decoder: m.decoder, threads: common.threads)
                .refine(x, start: start, learningRate: rate, steps: steps, seed: common.seed)
            mu = r.mu; lv = r.logVariance
        }
        let seconds = Date().timeIntervalSince(t0)
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
            printErr(String(format: "inferred %d points (%d steps at rate %g) in %.3f s; wrote %@", x.rows, steps, rate, seconds, out))
        }
    }
}
