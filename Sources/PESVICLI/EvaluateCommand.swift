import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// Test-time comparison options shared by `evaluate` and `demo`.
struct ComparisonFlags: ParsableArguments {
    @Option(help: "K of PE-SVI-K.") var steps: Int = 25
    @Option(help: "Refinement pace, or 'auto' for the model's chosen pace.") var lr: String = "auto"
    @Option(help: "SVI from a random start: Adam rate ('auto': the model's phase-1 latent rate).") var sviLr: String = "auto"
    @Option(help: "SVI: at most this many steps.") var sviMaxSteps: Int = 20_000
    @Option(help: "SVI: plateau window in steps.") var sviWindow: Int = 100
    @Option(help: "SVI: stop when a window improves the objective by less than this fraction.") var sviTolerance: Double = 1e-4
    @Option(help: "PE-SVI-GN: at most this many iterations per point.") var gnMaxSteps: Int = ComparisonOptions().gaussNewtonMaxSteps
    @OptionGroup var gaussNewton: GaussNewtonFlags
    @Option(help: "Time every method this many times, in turn, and report the median seconds (every repeat computes the same numbers).")
    var timingRepeats: Int = 1
    @Flag(help: "Also run PE-SVI-Cauchy: guarded refinement whose step is the Gauss-Newton minimizer along the gradient (no pace; reconstruction objective only).")
    var cauchy = false

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be 0 or more") }
        guard sviMaxSteps > 0, sviWindow > 0, sviTolerance >= 0 else { throw ValidationError("--svi-max-steps and --svi-window must be positive, --svi-tolerance non-negative") }
        guard timingRepeats >= 1 else { throw ValidationError("--timing-repeats must be 1 or more, got \(timingRepeats)") }
        guard gnMaxSteps >= 0 else { throw ValidationError("--gn-max-steps must be 0 or more, got \(gnMaxSteps)") }
        for (name, v) in [("--lr", lr), ("--svi-lr", sviLr)] where v != "auto" {
            guard let f = Float(v), f > 0, f.isFinite else { throw ValidationError("\(name) must be a positive number or 'auto', got '\(v)'") }
        }
    }

    func options(common: CommonOptions) -> ComparisonOptions {
        var o = ComparisonOptions()
        o.refineSteps = steps
        o.pace = lr == "auto" ? nil : Float(lr)
        o.sviLearningRate = sviLr == "auto" ? nil : Float(sviLr)
        o.sviRule = .plateau(window: sviWindow, tolerance: sviTolerance, maxSteps: sviMaxSteps)
        o.gaussNewtonMaxSteps = gnMaxSteps
        o.timingRepeats = timingRepeats
        o.includeCauchy = cauchy
        gaussNewton.apply(to: &o)
        o.threads = common.threads
        o.seed = common.seed
        return o
    }
}

/// `pesvi evaluate`: VAE, SVI, PE-SVI-0 and PE-SVI-K on the model's test split or on a file.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Compare VAE, SVI, PE-SVI-0, PE-SVI-K, PE-SVI-auto and PE-SVI-GN on the model's test split (or --data FILE).",
        discussion: """
        reconstruction: expected squared error per point and dimension (standardized units). steps: SVI's first \
        step within 1 % of its own plateau; PE-SVI-K's first step within 1 % of SVI's converged objective; \
        PE-SVI-auto's and PE-SVI-GN's mean steps per point up to the first iteration whose reconstruction is within \
        1 % of SVI's (null: never). seconds: test-time inference alone, up to those steps. With an ELBO model, \
        negativeELBO: each method's mean per-point negative ELBO (nats).
        """
    )
    @Option(help: "Model directory written by 'pesvi train'.") var model: String
    @Option(help: "Evaluate on this file instead of the model's test split.") var data: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: ArgumentHelp("Also write each point's reconstruction under every method to this file (.csv or .npy): one row per point, one column per method, in report order.",
                               discussion: "Their column means are the reported reconstructions; e.g. to find the points one method fails on. With an ELBO model the columns '<method> negativeELBO' follow, each point's negative ELBO."))
    var perPoint: String?
    @OptionGroup var comparison: ComparisonFlags
    @OptionGroup var common: CommonOptions

    func run() throws {
        let m = try ModelStore.load(from: model)
        if comparison.cauchy { try requireCauchyObjective(m, at: model, flag: "--cauchy") }
        let (raw, name): (DataMatrix, String)
        if let data {
            raw = try loadData(data); name = data
        } else {
            guard let t = m.testData else { throw ModelStoreError.missing("\(model): has no test.npy; pass --data FILE") }
            raw = t; name = "\(m.configuration.dataSource) (test split)"
        }
        let x = try m.prepare(raw, name: name)
        if let perPoint { try DataFiles.checkOutputType(perPoint) }
        var options = comparison.options(common: common)
        options.perPoint = perPoint != nil
        let r = MethodComparison.run(model: m, points: x, dataset: name, options: options)
        if let perPoint {
            // Reconstruction per method, then (ELBO models) the negative ELBO per method.
            var columns: [(name: String, values: [Double])] = r.order.map { ($0, r.methods[$0]?.perPoint ?? []) }
            if r.methods.values.contains(where: { $0.perPointNegativeELBO != nil }) {
                columns += r.order.map { ("\($0) negativeELBO", r.methods[$0]?.perPointNegativeELBO ?? []) }
            }
            var values = [Float](repeating: 0, count: x.rows * columns.count)
            for (j, column) in columns.enumerated() {
                for i in 0..<min(x.rows, column.values.count) { values[i * columns.count + j] = Float(column.values[i]) }
            }
            try DataFiles.write(try DataMatrix(rows: x.rows, cols: columns.count, values: values, columnNames: columns.map(\.name)),
                                to: perPoint)
        }
        print(json ? try r.jsonLine() : MethodComparison.table(r))
    }
}
