import Foundation
import PESVIModels

/// Test-time latency on a trained model: how long inference takes for a batch of n new points,
/// from the data rows to their posteriors (`pesvi bench latency`).
public enum LatencyBenchmark {
    /// Median wall times, in milliseconds, of one batch of `points` rows.
    public struct Row: Sendable, Codable, Equatable {
        public var points: Int
        /// The pseudo-encoder's pass (PE-SVI-0).
        public var encoderMilliseconds: Double
        /// PE-SVI-auto at the model's automatic pace, every point to its own stop, after the
        /// encoder pass (the pass included); with a refiner made for the call ("cold": its
        /// scratch memory allocated and first touched) and with one reused across calls.
        public var autoMilliseconds: Double
        public var autoColdMilliseconds: Double
        /// Mean steps per point of that run.
        public var autoMeanSteps: Double
        /// PE-SVI-GN every point to its own stop (the encoder pass included unless a linear
        /// decoder's exact step does not read the start), a reused refiner, with the settings
        /// `evaluate` and `infer --method gn` use by default (``ComparisonOptions``).
        public var gaussNewtonMilliseconds: Double
        /// The same with a refiner made for the call (cold: as `evaluate` times it, each timed
        /// run with its own), its construction not included.
        public var gaussNewtonColdMilliseconds: Double
        public var gaussNewtonMeanSteps: Double
    }

    /// Times batches of each size in `points` (rows of `rows` repeated as needed), each
    /// `repeats` times after one warm-up run, on `threads` threads; medians. `automatic` is the
    /// model's PE-SVI-auto configuration (its stored pace), `maxSteps` every point's budget.
    public static func run(model: PESVIModel, rows: Dataset, points: [Int], automatic: GuardedRefinementConfiguration,
                           repeats: Int, threads: Int) -> [Row] {
        precondition(rows.rows > 0 && repeats > 0 && points.allSatisfy { $0 > 0 }, "LatencyBenchmark: rows, repeats and points must be positive")
        let d = rows.cols
        return points.map { n in
            var values = [Float](repeating: 0, count: n * d)
            for i in 0..<n {
                let source = rows.values.pointer + (i % rows.rows) * d
                for q in 0..<d { values[i * d + q] = source[q] }
            }
            let x = Dataset(rows: n, cols: d, values: values)
            let refiner = GuardedRefinement(decoder: model.decoder, threads: threads)
            let gn = ComparisonOptions().gaussNewtonRefinement(model: model, threads: threads)
            let exact = gn.takesExactLinearStep
            var encoder: [Double] = [], auto: [Double] = [], cold: [Double] = [], gnTimes: [Double] = [], gnCold: [Double] = []
            var autoSteps = 0.0, gnSteps = 0.0
            for r in 0...repeats {
                var start: (mu: [Float], logVariance: [Float]) = ([], [])
                let e = MethodComparison.seconds { start = model.pseudoEncoder.encode(x, threads: threads) }
                let a = MethodComparison.seconds {
                    let s = model.pseudoEncoder.encode(x, threads: threads)
                    autoSteps = refiner.refine(x, start: s, configuration: automatic, seed: 1).meanSteps
                }
                let c = MethodComparison.seconds {
                    let s = model.pseudoEncoder.encode(x, threads: threads)
                    _ = GuardedRefinement(decoder: model.decoder, threads: threads).refine(x, start: s, configuration: automatic, seed: 1)
                }
                let g = MethodComparison.seconds {
                    let s = exact ? start : model.pseudoEncoder.encode(x, threads: threads)
                    gnSteps = gn.refine(x, start: s, maxSteps: automatic.maxSteps, seed: 1, recordCurve: false).meanSteps
                }
                let fresh = ComparisonOptions().gaussNewtonRefinement(model: model, threads: threads)
                let gc = MethodComparison.seconds {
                    let s = exact ? start : model.pseudoEncoder.encode(x, threads: threads)
                    _ = fresh.refine(x, start: s, maxSteps: automatic.maxSteps, seed: 1, recordCurve: false)
                }
                if r == 0 { continue }  // warm-up
                encoder.append(e); auto.append(a); cold.append(c); gnTimes.append(g); gnCold.append(gc)
            }
            let median = MethodComparison.median
            return Row(points: n, encoderMilliseconds: median(encoder) * 1e3, autoMilliseconds: median(auto) * 1e3,
                       autoColdMilliseconds: median(cold) * 1e3, autoMeanSteps: autoSteps,
                       gaussNewtonMilliseconds: median(gnTimes) * 1e3, gaussNewtonColdMilliseconds: median(gnCold) * 1e3,
                       gaussNewtonMeanSteps: gnSteps)
        }
    }
}
