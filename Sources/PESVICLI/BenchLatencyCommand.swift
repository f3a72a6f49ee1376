import ArgumentParser
import Foundation
import PESVIExperiments
import PESVIModels

/// `pesvi bench latency`: test-time latency of a trained model for batches of new points.
struct BenchLatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Test-time latency on a trained model: milliseconds to infer a batch of N new points (its test rows, repeated as needed): the pseudo-encoder pass, PE-SVI-auto at the model's pace and PE-SVI-GN, each point to its own stop.",
        discussion: "Medians of --repeats runs after one warm-up. PE-SVI-auto and PE-SVI-GN are each timed with their refiner reused across calls and with one made for each call (cold: scratch memory allocated and first touched; the construction not timed)."
    )
    @Option(help: "Model directory written by 'pesvi train'.") var model: String
    @Option(help: "Batch sizes, comma separated.") var points: String = "1,16,128"
    @Option(help: "Timed runs per batch size.") var repeats: Int = 30
    @Option(help: "Threads: 1 or 2.") var threads: Int = 1
    @Option(help: "Per-point step budget of both refinements.") var steps: Int = 50
    @Flag(help: "Print one JSON object.") var json = false

    func sizes() throws -> [Int] {
        let parts = points.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--points must be positive batch sizes separated by commas, got '\(points)'")
        }
        return parts.map { $0! }
    }

    func validate() throws {
        _ = try sizes()
        guard repeats >= 1 else { throw ValidationError("--repeats must be positive, got \(repeats)") }
        guard (1...2).contains(threads) else { throw ValidationError("--threads must be 1 or 2, got \(threads)") }
        guard steps >= 1 else { throw ValidationError("--steps must be positive, got \(steps)") }
    }

    func run() throws {
        let m = try ModelStore.load(from: model)
        guard let test = m.testData else { throw ModelStoreError.missing("\(model): has no test.npy to time inference on") }
        let x = try m.prepare(test, name: "\(model)/test.npy")
        var base = GuardedRefinementConfiguration(learningRate: m.configuration.pace?.learningRate ?? 0.1)
        base.maxSteps = steps
        // The model's stored automatic pace, as `evaluate` uses it (else Adam at the paper's pace).
        let automatic = m.configuration.automaticRefinement(base) ?? base
        let rows = LatencyBenchmark.run(model: m, rows: x, points: try sizes(), automatic: automatic, repeats: repeats, threads: threads)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            struct Report: Encodable { var bench = "latency"; var model: String; var threads: Int; var stepRule: String; var rows: [LatencyBenchmark.Row] }
            print(String(decoding: try e.encode(Report(model: model, threads: threads, stepRule: automatic.stepRule.rawValue, rows: rows)), as: UTF8.self))
        } else {
            print("latency  \(model)  |z|=\(m.configuration.latent)  threads \(threads)  PE-SVI-auto: \(automatic.stepRule.rawValue)  (medians of \(repeats) runs, ms)")
            print("points   encoder   PE-SVI-auto (steps)   new refiner   PE-SVI-GN (steps)   new refiner")
            for r in rows {
                print(String(format: "%6d  %8.3f  %10.3f (%5.1f)  %12.3f  %10.3f (%5.1f)  %12.3f", r.points, r.encoderMilliseconds, r.autoMilliseconds,
                             r.autoMeanSteps, r.autoColdMilliseconds, r.gaussNewtonMilliseconds, r.gaussNewtonMeanSteps,
                             r.gaussNewtonColdMilliseconds))
            }
        }
    }
}
