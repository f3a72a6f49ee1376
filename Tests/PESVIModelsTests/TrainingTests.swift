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

    /// One phase-1 step, which gathers, evaluates and steps the rows chunk by chunk, equals
    /// the step assembled by hand from the parts: gather the whole batch, evaluate each chunk
    /// with its generator, then one row-wise Adam step of the listed rows with their gradients.
    /// Rows outside the batch are untouched.
    @Test(arguments: [1, 2])
    func phase1StepEqualsGatherEvaluateThenRowSteps(threads: Int) {
        let data = linearProblem(n: 90, seed: 4)
        let L = 3, d = 8, chunkRows = 16
        var rng = RandomGenerator(seed: 5)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
        var c = EarlyDecoderTrainingConfiguration()
        c.batchSize = 70; c.seed = 11; c.threads = threads; c.chunkRows = chunkRows
        c.initialization = .uniform(low: -1, high: 1, logVariance: -2)
        let t = EarlyDecoderTraining(decoder: decoder, train: data, configuration: c)
        // The reference table: the same start (the training draws it from stream 1 of its seed).
        var initRng = RandomGenerator(seed: c.seed).forked(stream: 1)
        let reference = PosteriorTable(rows: data.rows, latent: L, adam: AdamConfiguration(learningRate: c.latentLearningRate),
                                       initialization: c.initialization, rng: &initRng)
        #expect(reference.mu.array == t.trainPosteriors.mu.array)
        var order = RandomGenerator(seed: 3)
        let batch = Array(order.permutation(data.rows).prefix(c.batchSize))   // 70 rows: 4 full chunks and one of 6

        let B = batch.count
        var x = [Float](repeating: 0, count: B * d), mu = [Float](repeating: 0, count: B * L), lv = mu
        var gMu = mu, gLv = mu
        var expectedTotal = 0.0
        let ws = ChunkWorkspace(decoder: decoder, maxPoints: chunkRows, samples: 1)
        var scratch = [Float](repeating: 0, count: decoder.network.parameterCount)
        batch.withUnsafeBufferPointer { idx in
            for (k, i) in batch.enumerated() {
                for j in 0..<d { x[k * d + j] = data.row(i)[j] }
                let r = reference.row(i)
                for j in 0..<L { mu[k * L + j] = r.mu[j]; lv[k * L + j] = r.logVariance[j] }
            }
            var start = 0, chunk = 0
            while start < B {
                let n = min(chunkRows, B - start)
                var chunkRng = ChunkRunner.generator(seed: c.seed, step: 0, chunk: chunk)
                x.withUnsafeBufferPointer { xp in mu.withUnsafeBufferPointer { mp in lv.withUnsafeBufferPointer { lp in
                gMu.withUnsafeMutableBufferPointer { gm in gLv.withUnsafeMutableBufferPointer { gl in scratch.withUnsafeMutableBufferPointer { sp in
                    var req = ChunkRequest(x: xp.baseAddress! + start * d, count: n, mu: mp.baseAddress! + start * L, muStride: L,
                                           logVariance: lp.baseAddress! + start * L, logVarianceStride: L)
                    req.gradMu = gm.baseAddress! + start * L; req.gradLogVariance = gl.baseAddress! + start * L
                    req.gradientStride = L; req.decoderGradient = sp.baseAddress!
                    expectedTotal += decoder.evaluate(req, workspace: ws, rng: &chunkRng)
                }}}}}}
                start += n; chunk += 1
            }
            reference.update(rows: idx.baseAddress!, count: B, gradMu: gMu, gradLogVariance: gLv)
        }
        let objective = t.step(rows: batch[...])
        #expect(objective == expectedTotal / Double(B))
        #expect(t.trainPosteriors.mu.array == reference.mu.array)
        #expect(t.trainPosteriors.logVariance.array == reference.logVariance.array)
        for r in 0..<data.rows {
            #expect(t.trainPosteriors.optimizerState(row: r) == reference.optimizerState(row: r))
            #expect(t.trainPosteriors.stepCount(row: r) == (batch.contains(r) ? 1 : 0))
        }
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
