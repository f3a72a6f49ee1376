import Foundation
import Testing
import PESVINumerics
@testable import PESVIModels

@Suite struct GuardedRefinementTests {
    func setup(objective: Objective = .reconstruction) -> (GaussianDecoder, Dataset, (mu: [Float], logVariance: [Float])) {
        var rng = RandomGenerator(seed: 31)
        let decoder = GaussianDecoder(latent: 4, dataWidth: 12, architecture: .arch3, objective: objective, rng: &rng)
        let x = Dataset(rows: 200, cols: 12, values: rng.normalArray(count: 200 * 12))
        let start = (rng.normalArray(count: 800), rng.uniformArray(count: 800, low: -3, high: -1))
        return (decoder, x, start)
    }

    /// Per-point objectives under the refinement's own noise (common random numbers), so they
    /// can be compared exactly between iterations.
    @Test func divergenceGuardNeverLetsTheObjectiveRiseEvenAtAHugeRate() {
        let (decoder, x, start) = setup()
        let g = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32)
        var c = GuardedRefinementConfiguration(learningRate: 50)   // deliberately huge
        c.maxSteps = 30
        let r = g.refine(x, start: start, configuration: c, seed: 4)
        #expect(r.rejectedSteps > 0, "a rate of 50 should have been rejected somewhere")
        for t in 1..<r.curve.count { #expect(r.curve[t] <= r.curve[t - 1], "mean objective rose at iteration \(t): \(r.curve[t - 1]) → \(r.curve[t])") }
        #expect(r.curve.allSatisfy { $0.isFinite })
        #expect(r.mu.allSatisfy { $0.isFinite } && r.logVariance.allSatisfy { $0.isFinite })
    }

    /// A point that has finished is never evaluated or changed again: refining with a larger
    /// step budget leaves it bit for bit as it was.
    @Test func earlyExitLeavesFinishedPointsUntouched() {
        let (decoder, x, start) = setup()
        let g = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 64)
        var short = GuardedRefinementConfiguration(learningRate: 0.05, tolerance: 1e-2)
        short.maxSteps = 40
        var long = short
        long.maxSteps = 200
        let a = g.refine(x, start: start, configuration: short, seed: 4)
        let b = g.refine(x, start: start, configuration: long, seed: 4)
        var finishedEarly = 0
        for p in 0..<x.rows where a.finishedEarly[p] {
            finishedEarly += 1
            #expect(b.stepsPerPoint[p] == a.stepsPerPoint[p])
            #expect(Array(a.mu[(p * 4)..<(p * 4 + 4)]) == Array(b.mu[(p * 4)..<(p * 4 + 4)]))
            #expect(Array(a.logVariance[(p * 4)..<(p * 4 + 4)]) == Array(b.logVariance[(p * 4)..<(p * 4 + 4)]))
        }
        #expect(finishedEarly > 0, "no point finished before the step limit")
        #expect(a.stepsPerPoint.min()! < a.stepsPerPoint.max()!, "early exit should make points differ in steps")
        #expect(a.meanSteps < Double(short.maxSteps))
    }

    /// Pairs through the output layer once (the default where h ≤ d, as here: h = 8, d = 12)
    /// follow the same path as evaluating both samples: the same objective up to rounding.
    @Test func pairedOutputLayerFollowsTheSamePath() {
        let (decoder, x, start) = setup()
        #expect(decoder.outputLayerInputWidth <= decoder.dataWidth)
        let g = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 64)
        var paired = GuardedRefinementConfiguration(learningRate: 0.05)
        paired.maxSteps = 20
        var direct = paired
        direct.pairedOutputLayer = false
        let a = g.refine(x, start: start, configuration: paired, seed: 4)
        let b = g.refine(x, start: start, configuration: direct, seed: 4)
        #expect(a.curve.count == b.curve.count)
        for t in 0..<min(a.curve.count, b.curve.count) {
            #expect(abs(a.curve[t] - b.curve[t]) <= 1e-4 * abs(b.curve[t]), "iteration \(t): \(a.curve[t]) vs \(b.curve[t])")
        }
        #expect(abs(a.meanSteps - b.meanSteps) <= 0.05 * b.meanSteps)
        #expect(a.curve.last! < a.curve.first!)
    }

    @Test func refinementImprovesAndIsDeterministicOnAnyThreadCount() {
        let (decoder, x, start) = setup(objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)))
        let c = GuardedRefinementConfiguration(learningRate: 0.05)
        let one = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32).refine(x, start: start, configuration: c, seed: 9)
        let two = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32).refine(x, start: start, configuration: c, seed: 9)
        #expect(one.mu == two.mu && one.logVariance == two.logVariance && one.curve == two.curve)
        #expect(one.curve.last! < 0.9 * one.curve.first!)
    }

    @Test func automaticPacePicksARateFromTheSearch() {
        let (decoder, x, start) = setup()
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = 20
        let out = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1)
        #expect(out.tried.count >= 9 + 2)
        let best = out.tried.map { $0[1] }.min()!
        let chosen = out.tried.first { abs(Float(pow(10, $0[0])) - out.learningRate) < 1e-6 * out.learningRate }!
        #expect(chosen[1] <= best + AutomaticPace.tieBand * abs(best))
        #expect(out.learningRate >= 1e-3 && out.learningRate <= 10)
        // Among the rates as good as the best (within the band), the chosen one made the
        // fastest early progress.
        let eligible = out.tried.filter { $0[1] <= best + AutomaticPace.tieBand * abs(best) }
        #expect(eligible.allSatisfy { chosen[3] <= $0[3] })
        // Early progress is Σ of the mean objective after steps 1 … 5 of a refinement at that rate.
        var c = base
        c.learningRate = out.learningRate
        let r = GuardedRefinement(decoder: decoder, threads: 1).refine(x, start: start, configuration: c, seed: 1)
        let early = (1...AutomaticPace.earlySteps).reduce(0.0) { $0 + r.curve[min($1, r.curve.count - 1)] }
        #expect(abs(early - chosen[3]) <= 1e-9 * abs(early))
        #expect(abs(r.curve.last! - chosen[1]) <= 1e-9 * abs(chosen[1]))
    }
    /// With a fixed noise pair, a Gaussian εⱼ near 0 leaves nothing pushing σⱼ down, and the
    /// Monte Carlo reconstruction stays far above its value at the mean. Rademacher pairs
    /// (|εⱼ| = 1) press every coordinate: under the reconstruction objective (optimum σ → 0)
    /// every log σ² falls, and the expected reconstruction ends close to the at-mean one.
    @Test func rademacherNoiseShrinksEveryPosteriorVariance() {
        var rng = RandomGenerator(seed: 5)
        let L = 8, d = 40, n = 64
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = Dataset(rows: n, cols: d, values: rng.normalArray(count: n * d))
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        var c = GuardedRefinementConfiguration(learningRate: 0.1, tolerance: 0, patience: 1_000, maxSteps: 60)
        c.rademacherNoise = true
        let r = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32).refine(x, start: start, configuration: c, seed: 3)
        let worst = r.logVariance.max()!
        #expect(worst < -2, "some log σ² stayed at \(worst) (start 0)")
        let m = Metrics.evaluate(decoder: decoder, x: x, mu: r.mu, logVariance: r.logVariance, samples: 64, seed: 1)
        #expect(m.expectedReconstruction < 1.1 * m.reconstructionAtMean,
                "expected \(m.expectedReconstruction) against \(m.reconstructionAtMean) at the mean")
    }
}
