import Testing
import PESVINumerics
import TestSupport
@testable import PESVIModels

@Suite struct TrainingTests {
    func runPhase1(threads: Int, seed: UInt64, objective: Objective = .reconstruction) -> (EarlyDecoderTraining, [Float]) {
        let data = linearProblem(n: 300, seed: 4)
        var rng = RandomGenerator(seed: seed)
        let decoder = GaussianDecoder(latent: 3, dataWidth: 8, architecture: .arch2, objective: objective, rng: &rng)
        var c = EarlyDecoderTrainingConfiguration()
        c.epochs = 5; c.batchSize = 100; c.seed = seed; c.threads = threads; c.chunkRows = 32
        let t = EarlyDecoderTraining(decoder: decoder, train: data, validation: linearProblem(n: 50, seed: 5), configuration: c)
        t.run()
        return (t, decoder.network.parameters.array + t.trainPosteriors.mu.array)
    }

    @Test func sameSeedSameNumbersOnAnyThreadCount() {
        let (a, pa) = runPhase1(threads: 1, seed: 7)
        let (b, pb) = runPhase1(threads: 1, seed: 7)
        let (c, pc) = runPhase1(threads: 2, seed: 7)
        #expect(pa == pb)
        #expect(pa == pc)
        #expect(a.history.map(\.trainObjective) == c.history.map(\.trainObjective))
        #expect(a.history.map(\.validationObjective) == b.history.map(\.validationObjective))
        let (_, pd) = runPhase1(threads: 1, seed: 8)
        #expect(pa != pd)
    }

    @Test(arguments: [Objective.reconstruction, .elbo(beta: 1, likelihood: .learnedVariance)])
    func phase1LowersTrainingAndValidationObjective(objective: Objective) {
        let data = linearProblem(n: 400, seed: 4)
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: 3, dataWidth: 8, architecture: .arch2, objective: objective, rng: &rng)
        var c = EarlyDecoderTrainingConfiguration()
        c.epochs = 60; c.batchSize = 32; c.decoderLearningRate = 1e-2; c.latentLearningRate = 1e-1
        let t = EarlyDecoderTraining(decoder: decoder, train: data, validation: linearProblem(n: 60, seed: 5), configuration: c)
        t.run()
        let h = t.history
        #expect(h.last!.trainObjective < h.first!.trainObjective - 0.3 * abs(h.first!.trainObjective))
        #expect(h.last!.validationObjective! < h.first!.validationObjective!)
    }

    @Test func plateauStopsTraining() {
        let data = linearProblem(n: 100, seed: 4)
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: 3, dataWidth: 8, architecture: .arch1, objective: .reconstruction, rng: &rng)
        var c = EarlyDecoderTrainingConfiguration()
        c.epochs = 10_000; c.patience = 3; c.minRelativeImprovement = 0.5
        let t = EarlyDecoderTraining(decoder: decoder, train: data, configuration: c)
        #expect(t.run())
        #expect(t.history.count < 100)
    }

    /// The VAE's end-to-end gradient with respect to the encoder's weights, by finite differences
    /// of its objective with ε held fixed.
    @Test func vaeEncoderGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 12)
        let x = Dataset(rows: 6, cols: 5, values: rng.normalArray(count: 30))
        let decoder = GaussianDecoder(latent: 2, dataWidth: 5, architecture: .arch2, objective: .elbo(beta: 1), rng: &rng)
        let encoder = GaussianEncoder(latent: 2, dataWidth: 5, architecture: .arch2, rng: &rng)
        var c = VAETrainingConfiguration(); c.batchSize = 6; c.learningRate = 0
        let vae = VAETraining(encoder: encoder, decoder: decoder, train: x, configuration: c)
        // With lr = 0 a step leaves the weights alone but fills the reduced gradients.
        let before = vae.step(rows: ArraySlice(0..<6))
        let analytic = vae.grads.sums[0].array.map { Double($0) / 6 }
        let f: () -> Double = {
            // The objective of step 0's chunk 0, re-evaluated with the same ε.
            let ws = ChunkWorkspace(decoder: decoder, maxPoints: 6, samples: 1)
            let ews = NetworkWorkspace(network: encoder.network, maxRows: 6)
            var r = ChunkRunner.generator(seed: 0, step: 0, chunk: 0)
            let out = encoder.network.forward(x.values.pointer, rows: 6, workspace: ews)
            let req = ChunkRequest(x: x.values.pointer, count: 6, mu: out, muStride: 4, logVariance: out + 2, logVarianceStride: 4)
            return decoder.evaluate(req, workspace: ws, rng: &r) / 6
        }
        #expect(abs(f() - before) < 1e-9 * max(1, abs(before)))
        let idx = Array(0..<encoder.network.parameterCount)
        #expect(worstKinkRobustError(analytic: analytic, at: encoder.network.parameters.pointer, indices: idx, scale: 0.1, f) < 2e-2)
    }

    @Test func pseudoEncoderLearnsTheTargets() {
        let data = linearProblem(n: 300, seed: 4)
        var rng = RandomGenerator(seed: 3)
        // Targets that are a linear function of x: a linear (Arch1) encoder can fit them exactly.
        var t = [Float]()
        for i in 0..<data.rows { let r = data.row(i); t += [r[0] - r[1], 0.5 * r[2], r[3], -r[4] - 1, 0.1 * r[5], r[6] + r[7]] }
        let targets = Dataset(rows: 300, cols: 6, values: t)
        let encoder = GaussianEncoder(latent: 3, dataWidth: 8, architecture: .arch1, rng: &rng)
        var c = DeferredEncoderTrainingConfiguration(); c.epochs = 300; c.learningRate = 1e-2; c.batchSize = 32
        let phase2 = DeferredEncoderTraining(encoder: encoder, x: data, targets: targets, validationX: data, validationTargets: targets, configuration: c)
        let first = phase2.loss(x: data, targets: targets)
        phase2.run()
        let last = phase2.loss(x: data, targets: targets)
        #expect(last < 1e-3 * first, "loss \(first) → \(last)")
    }
}
