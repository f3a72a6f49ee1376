import Foundation
import PESVINumerics

/// The result of test-time inference on a set of points.
public struct InferenceResult: Sendable {
    /// Final posterior means and log-variances, n × |z| each.
    public var mu: [Float]
    public var logVariance: [Float]
    /// Mean per-point objective after t steps, t = 0 … steps (curve[0] is the start).
    public var curve: [Double]
    /// Steps taken.
    public var steps: Int
    /// The converged objective under a plateau rule (mean of the last window), else the
    /// final curve value.
    public var finalObjective: Double
    /// Wall time of the inference in seconds (encoder pass, if any, plus steps), excluding
    /// the extra evaluations that only record the curve when `recordCurve` asked for them.
    public var seconds: Double
    /// Wall time at which each step finished, seconds from the start (index t−1 for step t).
    public var stepTimes: [Double]
}

/// Test-time inference with a frozen decoder (paper sections 3.3 and 4.2):
/// - ``svi(_:initialization:learningRate:rule:seed:)``: SVI from a random start, run to its plateau;
/// - ``refine(_:start:learningRate:steps:seed:)``: PE-SVI-K, K Adam steps from a given start
///   (the pseudo-encoder's output) at the adjusted rate, the pace.
/// Points are processed chunk-parallel on `threads` threads; every point has its own Adam state.
/// The decoder's weights are packed (``PackedWeights``) at the start of every run: the decoder
/// must not change during one.
public final class TestTimeInference: @unchecked Sendable {
    public let decoder: GaussianDecoder
    public let threads: Int
    public let samples: Int
    public let stepper: LatentStepper

    public init(decoder: GaussianDecoder, threads: Int = 1, samples: Int = 1, chunkRows: Int = 128) {
        self.decoder = decoder
        self.threads = threads
        self.samples = samples
        stepper = LatentStepper(decoder: decoder, threads: threads, chunkRows: chunkRows, samples: samples, packWeights: true)
    }

    /// SVI from a random start: posteriors initialized by `initialization` (seeded), then
    /// Adam at `learningRate` until `rule` stops it.
    public func svi(_ x: Dataset, initialization: PosteriorInitialization = .standard, learningRate: Float,
                    rule: StoppingRule = .sviDefault, seed: UInt64) -> InferenceResult {
        var rng = RandomGenerator(seed: seed)
        let table = PosteriorTable(rows: x.rows, latent: decoder.latent, adam: AdamConfiguration(learningRate: learningRate),
                                   initialization: initialization, rng: &rng)
        return run(x, table: table, rule: rule, seed: seed, startSeconds: 0)
    }

    /// PE-SVI-K: `steps` Adam steps at `learningRate` from the given start (μ, log σ², n × |z|
    /// each). `startSeconds` (the encoder pass) is added to the reported time.
    public func refine(_ x: Dataset, start: (mu: [Float], logVariance: [Float]), learningRate: Float,
                       steps: Int, seed: UInt64, startSeconds: Double = 0) -> InferenceResult {
        let table = PosteriorTable(mu: start.mu, logVariance: start.logVariance, latent: decoder.latent,
                                   adam: AdamConfiguration(learningRate: learningRate))
        return run(x, table: table, rule: .fixedSteps(steps), seed: seed, startSeconds: startSeconds)
    }

    /// Runs steps on `table` (modified in place) under `rule`, recording the curve.
    ///
    /// Each step's forward pass measures the objective at the current values, so curve[t]
    /// for t < steps costs nothing extra; the final value is one forward-only evaluation
    /// (not counted in `seconds`).
    public func run(_ x: Dataset, table: PosteriorTable, rule: StoppingRule, seed: UInt64, startSeconds: Double = 0) -> InferenceResult {
        let n = Double(max(x.rows, 1))
        var curve: [Double] = []
        var stepTimes: [Double] = []
        let clock = ContinuousClock()
        let t0 = clock.now
        stepper.refreshPackedWeights()  // the decoder's current weights (timed: part of the run)
        var finalObjective = Double.nan
        var t = 0
        func elapsed() -> Double { let d = clock.now - t0; return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
        switch rule {
        case .fixedSteps(let k):
            while t < k {
                curve.append(stepper.step(x, table, seed: seed, step: t) / n)
                t += 1
                stepTimes.append(elapsed() + startSeconds)
            }
        case .plateau(let window, let tolerance, let maxSteps):
            var previousWindowMean = Double.infinity
            var windowSum = 0.0
            while t < maxSteps {
                let v = stepper.step(x, table, seed: seed, step: t) / n
                curve.append(v)
                windowSum += v
                t += 1
                stepTimes.append(elapsed() + startSeconds)
                if t % window == 0 {
                    let mean = windowSum / Double(window)
                    windowSum = 0
                    finalObjective = mean
                    if previousWindowMean.isFinite && !(mean < previousWindowMean - tolerance * abs(previousWindowMean)) { break }
                    previousWindowMean = mean
                }
            }
        }
        let seconds = elapsed() + startSeconds
        let last = stepper.evaluate(x, table, seed: seed, step: t) / n
        curve.append(last)
        if case .fixedSteps = rule { finalObjective = last }
        if !finalObjective.isFinite { finalObjective = last }
        return InferenceResult(mu: table.mu.array, logVariance: table.logVariance.array, curve: curve, steps: t,
                               finalObjective: finalObjective, seconds: seconds, stepTimes: stepTimes)
    }
}

/// Pace adjustment (paper section 3.3): choose the refinement learning rate on validation data.
public enum PaceSelection {
    /// One candidate's outcome on the validation points.
    public struct Trial: Sendable, Codable, Equatable {
        public var learningRate: Float
        /// Mean per-point objective after the K steps.
        public var finalObjective: Double
        /// First step within 1 % of the best final objective over all candidates (nil: never).
        public var stepsToBest: Int?
    }

    /// The paper's grid for 25 steps: {1, 5} × 10^{0, −1, −2}.
    public static let paperCandidates: [Float] = [1, 0.5, 0.1, 0.05, 0.01, 0.005]

    /// Runs K steps from the pseudo-encoder start for every candidate rate and keeps the
    /// fastest and most accurate, by ``choose(_:)`` on the validation curves.
    public static func select(inference: TestTimeInference, x: Dataset, start: (mu: [Float], logVariance: [Float]),
                              candidates: [Float] = paperCandidates, steps: Int, seed: UInt64) -> (learningRate: Float, trials: [Trial]) {
        precondition(!candidates.isEmpty, "pace selection needs at least one candidate rate")
        let curves = candidates.map { lr in (lr, inference.refine(x, start: start, learningRate: lr, steps: steps, seed: seed).curve) }
        return choose(curves)
    }

    /// The paper's "fastest and most accurate convergence", on each candidate's curve (mean
    /// objective after 0…K steps). F* is the best final objective over all candidates; a
    /// rate is eligible when its final value is finite and within 1 % of F*; among eligible
    /// rates the one whose curve first gets within 1 % of F* wins. Ties on that step go to
    /// the lower final objective, then to the smaller rate. (Ties are common when the start
    /// is already within 1 % of F*: every rate then counts 0 steps, and breaking them by the
    /// smaller rate, as before 2026-11-30, picked the rate that barely moves — digits
    /// |z| = 16 Arch1: 0.005, whose final objective was the worst of the six.)
    /// With no eligible rate, the first candidate.
    public static func choose(_ curves: [(learningRate: Float, curve: [Double])]) -> (learningRate: Float, trials: [Trial]) {
        precondition(!curves.isEmpty && curves.allSatisfy { !$0.curve.isEmpty }, "pace selection needs a curve per candidate")
        let best = curves.map { $0.curve.last! }.filter { $0.isFinite }.min() ?? .infinity
        var trials: [Trial] = []
        var chosen: (lr: Float, steps: Int, final: Double)? = nil
        for (lr, curve) in curves {
            let final = curve.last!
            let s = best.isFinite ? Convergence.firstStep(reaching: best, in: curve) : nil
            trials.append(Trial(learningRate: lr, finalObjective: final, stepsToBest: s))
            guard final.isFinite, Convergence.reaches(final, best), let s else { continue }
            if let c = chosen, (c.steps, c.final, c.lr) <= (s, final, lr) { continue }
            chosen = (lr, s, final)
        }
        return (chosen?.lr ?? curves[0].learningRate, trials)
    }
}
