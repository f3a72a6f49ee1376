import Testing
import TestSupport
import Foundation
import PESVINumerics
@testable import PESVIModels

/// A small linear problem: x = z·W + b + noise, d = 8, |z| = 3, z ~ N(0, I). W and b are
/// fixed by `problem`; `seed` draws the points.
func linearProblem(n: Int, seed: UInt64, problem: UInt64 = 1000) -> Dataset {
    var prng = RandomGenerator(seed: problem)
    var rng = RandomGenerator(seed: seed)
    let L = 3, d = 8
    let w = prng.normalArray(count: L * d), b = prng.normalArray(count: d)
    var v = [Float](repeating: 0, count: n * d)
    for i in 0..<n {
        let z = rng.normalArray(count: L)
        for k in 0..<d {
            var s = b[k] + 0.05 * rng.standardNormal()
            for j in 0..<L { s += z[j] * w[j * d + k] }
            v[i * d + k] = s
        }
    }
    return Dataset(rows: n, cols: d, values: v)
}

/// The least-squares μ* for each row under a linear decoder D(z) = z·W + b:
/// μ* = argmin ‖x − μW − b‖² = (W Wᵀ)⁻¹ W (x − b)ᵀ, solved in Double.
func leastSquares(decoder: DenseNetwork, x: Dataset) -> [Double] {
    let L = decoder.widths[0], d = decoder.widths[1]
    let p = decoder.parameters.array.map(Double.init)
    let W = Array(p[0..<(L * d)]), b = Array(p[(L * d)...])
    var out: [Double] = []
    for i in 0..<x.rows {
        var A = [Double](repeating: 0, count: L * L), r = [Double](repeating: 0, count: L)
        for j in 0..<L {
            for k in 0..<L { for c in 0..<d { A[j * L + k] += W[j * d + c] * W[k * d + c] } }
            for c in 0..<d { r[j] += W[j * d + c] * (Double(x.row(i)[c]) - b[c]) }
        }
        let sol = solveLinearSystem(A, r)
        out.append(contentsOf: sol)
    }
    return out
}

@Suite struct InferenceTests {
    /// With a linear decoder the best μ is the least-squares solution: SVI from a random start
    /// reaches it, and PE-SVI (pseudo-encoder start, larger pace) reaches SVI's objective in
    /// far fewer steps.
    @Test func linearDecoderSVIReachesLeastSquaresAndPESVIIsFaster() {
        let train = linearProblem(n: 600, seed: 1), test = linearProblem(n: 100, seed: 2)
        var rng = RandomGenerator(seed: 5)
        let decoder = GaussianDecoder(latent: 3, dataWidth: 8, architecture: .arch1, objective: .reconstruction, rng: &rng)
        var c1 = EarlyDecoderTrainingConfiguration()
        c1.epochs = 300; c1.batchSize = 32; c1.decoderLearningRate = 1e-2; c1.latentLearningRate = 1e-1; c1.seed = 3
        let phase1 = EarlyDecoderTraining(decoder: decoder, train: train, validation: linearProblem(n: 60, seed: 3), configuration: c1)
        phase1.run()
        let encoder = GaussianEncoder(latent: 3, dataWidth: 8, architecture: .arch1, rng: &rng)
        var c2 = DeferredEncoderTrainingConfiguration()
        c2.epochs = 200; c2.learningRate = 1e-2; c2.batchSize = 32
        DeferredEncoderTraining(encoder: encoder, x: train, targets: DeferredEncoderTraining.targets(from: phase1.trainPosteriors), configuration: c2).run()

        // 16 samples per step quiet the gradient noise enough to land within 1 % of the optimum.
        let inference = TestTimeInference(decoder: decoder, threads: 1, samples: 16)
        let svi = inference.svi(test, learningRate: 1e-2, rule: .plateau(window: 50, tolerance: 1e-4, maxSteps: 20_000), seed: 9)
        let ls = leastSquares(decoder: decoder.network, x: test)
        // With one reparameterized sample the SVI iterate jitters around μ*: Adam's steps stay
        // ~lr-sized while the gradient noise (from σ ≈ 0.1 at the plateau) dominates. So check
        // the mean error, and that the reconstruction at SVI's μ is that of μ* to 1 %.
        var meanError = 0.0
        for i in 0..<ls.count { meanError += abs(Double(svi.mu[i]) - ls[i]) / Double(ls.count) }
        #expect(meanError < 0.03, "SVI μ differs from least squares by \(meanError) on average after \(svi.steps) steps")
        let atSVI = Metrics.evaluate(decoder: decoder, x: test, mu: svi.mu, logVariance: svi.logVariance).reconstructionAtMean
        let atLS = Metrics.evaluate(decoder: decoder, x: test, mu: ls.map { Float($0) }, logVariance: svi.logVariance).reconstructionAtMean
        #expect(atLS <= atSVI * (1 + 1e-4), "μ* must be the best mean: \(atLS) vs SVI \(atSVI)")
        #expect(atSVI <= atLS * 1.01, "reconstruction at SVI's μ \(atSVI), at least squares \(atLS)")

        // Steps until μ gives a reconstruction at the mean within 1 % of μ*'s: SVI from a random
        // start at its usual rate, PE-SVI from the pseudo-encoder's start at a larger pace.
        func stepsToLeastSquares(_ table: PosteriorTable, maxSteps: Int) -> Int? {
            for t in 0...maxSteps {
                let atMean = inference.stepper.evaluate(test, table, seed: 1, step: t, atMean: true) / Double(test.rows)
                if atMean <= atLS * 1.01 { return t }
                inference.stepper.step(test, table, seed: 2, step: t)
            }
            return nil
        }
        var rng2 = RandomGenerator(seed: 21)
        let randomStart = PosteriorTable(rows: test.rows, latent: 3, adam: AdamConfiguration(learningRate: 1e-2), initialization: .standard, rng: &rng2)
        let sviSteps = stepsToLeastSquares(randomStart, maxSteps: 20_000)
        let start = encoder.encode(test)
        let peStart = PosteriorTable(mu: start.mu, logVariance: start.logVariance, latent: 3, adam: AdamConfiguration(learningRate: 0.1))
        let peSteps = stepsToLeastSquares(peStart, maxSteps: 1_000)
        #expect(sviSteps != nil && peSteps != nil, "SVI \(String(describing: sviSteps)), PE-SVI \(String(describing: peSteps))")
        if let sviSteps, let peSteps { #expect(peSteps * 10 <= sviSteps, "PE-SVI \(peSteps) steps vs SVI \(sviSteps)") }
    }

    @Test func convergenceRules() {
        let curve: [Double] = [10, 5, 2, 1.5, 1.02, 1.005, 1.0]
        #expect(Convergence.firstStep(reaching: 1.0, in: curve) == 5)
        #expect(Convergence.firstStep(reaching: 0.5, in: curve) == nil)
        #expect(Convergence.firstStep(reaching: -2.0, in: [0, -1.95, -1.99]) == 2)
        var s = PlateauStopper(patience: 2, minRelativeImprovement: 0.01)
        s.record(10, index: 1); s.record(9.95, index: 2)
        #expect(!s.shouldStop)
        s.record(9.99, index: 3)
        #expect(s.shouldStop && s.bestIndex == 1)
    }
}
