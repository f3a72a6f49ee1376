import Foundation
import PESVINumerics

/// Settings of the VAE baseline: encoder and decoder trained end to end with one Adam rate.
public struct VAETrainingConfiguration: Sendable, Codable, Equatable {
    public var epochs: Int = 300
    public var batchSize: Int = 64
    public var learningRate: Float = 1e-3
    public var samples: Int = 1
    /// Stop after this many epochs without a relative validation improvement; the weights of
    /// the best validation epoch are kept.
    public var patience: Int = 30
    public var minRelativeImprovement: Double = 1e-3
    public var clipNorm: Float? = nil
    public var seed: UInt64 = 0
    public var threads: Int = 1
    public var chunkRows: Int = 128
    public init() {}
}

/// The VAE baseline (Kingma & Welling, 2013): q(z|x) = N(E_μ(x), diag exp E_logσ²(x)), the
/// same decoder, likelihood and objective as PE-SVI, trained end to end by backpropagating
/// through the reparameterized samples into the encoder.
public final class VAETraining: @unchecked Sendable {
    public let encoder: GaussianEncoder
    public let decoder: GaussianDecoder
    public let configuration: VAETrainingConfiguration
    public private(set) var history: [EpochRecord] = []
    let x: Dataset, validation: Dataset?
    let encoderAdam: AdamOptimizer, decoderAdam: AdamOptimizer, noiseAdam: AdamOptimizer?
    let runner: ChunkRunner
    let decoderWorkspaces: [ChunkWorkspace]
    let encoderWorkspaces: [NetworkWorkspace]
    let encoderOutputGradients: [FloatBuffer]
    let grads: ChunkGradients
    let batchX: FloatBuffer
    /// The current batch's row indices (read by the chunks that gather them).
    let indexBuffer: UnsafeMutablePointer<Int>
    var rng: RandomGenerator
    var stepCount = 0

    public init(encoder: GaussianEncoder, decoder: GaussianDecoder, train: Dataset, validation: Dataset? = nil,
                configuration c: VAETrainingConfiguration) {
        precondition(encoder.latent == decoder.latent && encoder.dataWidth == decoder.dataWidth && train.cols == decoder.dataWidth,
                     "VAE: encoder \(encoder.dataWidth)→2×\(encoder.latent), decoder \(decoder.latent)→\(decoder.dataWidth), data width \(train.cols)")
        self.encoder = encoder
        self.decoder = decoder
        self.configuration = c
        self.x = train
        self.validation = validation
        rng = RandomGenerator(seed: c.seed)
        let adam = AdamConfiguration(learningRate: c.learningRate, clipNorm: c.clipNorm)
        encoderAdam = AdamOptimizer(parameterCount: encoder.network.parameterCount, configuration: adam)
        decoderAdam = AdamOptimizer(parameterCount: decoder.network.parameterCount, configuration: adam)
        noiseAdam = decoder.logNoiseVariance.map { AdamOptimizer(parameterCount: $0.count, configuration: AdamConfiguration(learningRate: c.learningRate)) }
        runner = ChunkRunner(threads: c.threads, chunkRows: c.chunkRows)
        decoderWorkspaces = (0..<c.threads).map { _ in ChunkWorkspace(decoder: decoder, maxPoints: c.chunkRows, samples: c.samples) }
        encoderWorkspaces = (0..<c.threads).map { _ in NetworkWorkspace(network: encoder.network, maxRows: c.chunkRows) }
        encoderOutputGradients = (0..<c.threads).map { _ in FloatBuffer(count: c.chunkRows * 2 * encoder.latent) }
        let B = min(c.batchSize, max(train.rows, 1))
        grads = ChunkGradients(chunks: runner.chunkCount(rows: B),
                               parameterCounts: [encoder.network.parameterCount, decoder.network.parameterCount, decoder.logNoiseVariance?.count ?? 0])
        batchX = FloatBuffer(count: B * train.cols)
        indexBuffer = .allocate(capacity: max(B, 1))
    }

    deinit { indexBuffer.deallocate() }

    /// Mean per-point objective on `data` with the encoder's posteriors (sampled with `seed`).
    public func objective(on data: Dataset, seed: UInt64) -> Double {
        let L = encoder.latent, d = data.cols
        let tot = SharedDoubles(count: runner.chunkCount(rows: data.rows))
        runner.run(rows: data.rows) { t, c, start, n in
            var chunkRng = ChunkRunner.generator(seed: seed, step: 0, chunk: c)
            let input = data.values.pointer + start * d
            let out = self.encoder.network.forward(input, rows: n, workspace: self.encoderWorkspaces[t])
            let req = ChunkRequest(x: input, count: n, mu: out, muStride: 2 * L, logVariance: out + L, logVarianceStride: 2 * L)
            tot.pointer[c] = self.decoder.evaluate(req, workspace: self.decoderWorkspaces[t], rng: &chunkRng)
        }
        return tot.sum() / Double(max(data.rows, 1))
    }

    /// One end-to-end Adam step on the listed rows; returns the batch's mean objective before it.
    @discardableResult
    public func step(rows indices: ArraySlice<Int>) -> Double {
        let B = indices.count, d = x.cols, L = encoder.latent
        precondition(B > 0 && B <= batchX.count / d, "step: batch of \(B) rows, capacity \(batchX.count / d)")
        for (k, i) in indices.enumerated() { indexBuffer[k] = i }
        let seed = configuration.seed, stepIndex = stepCount
        let learned = decoder.logNoiseVariance != nil
        runner.run(rows: B) { t, c, start, n in
            var chunkRng = ChunkRunner.generator(seed: seed, step: stepIndex, chunk: c)
            let input = self.batchX.pointer + start * d
            // Gathered per chunk, on its thread, so the rows are still in cache when used.
            self.x.gather(self.indexBuffer + start, count: n, into: input)
            let ews = self.encoderWorkspaces[t]
            let out = self.encoder.network.forward(input, rows: n, workspace: ews)
            let gOut = self.encoderOutputGradients[t].pointer
            var req = ChunkRequest(x: input, count: n, mu: out, muStride: 2 * L, logVariance: out + L, logVarianceStride: 2 * L)
            req.gradMu = gOut
            req.gradLogVariance = gOut + L
            req.gradientStride = 2 * L
            req.decoderGradient = self.grads.buffers[c][1].pointer
            if learned { req.noiseGradient = self.grads.buffers[c][2].pointer }
            self.grads.totals.pointer[c] = self.decoder.evaluate(req, workspace: self.decoderWorkspaces[t], rng: &chunkRng)
            self.encoder.network.backward(input, rows: n, workspace: ews, outputGradient: gOut,
                                          parameterGradients: self.grads.buffers[c][0].pointer, inputGradient: nil)
        }
        let total = grads.reduce(chunks: runner.chunkCount(rows: B))
        encoderAdam.update(encoder.network.parameters, gradients: grads.sums[0].pointer, gradientScale: 1 / Float(B))
        decoderAdam.update(decoder.network.parameters, gradients: grads.sums[1].pointer, gradientScale: 1 / Float(B))
        if let noiseAdam, let lv = decoder.logNoiseVariance {
            noiseAdam.update(lv, gradients: grads.sums[2].pointer, gradientScale: 1 / Float(B))
        }
        stepCount += 1
        return total / Double(B)
    }

    /// Trains until `epochs` or a validation plateau; keeps the best-validation weights.
    @discardableResult
    public func run(progress: ((EpochRecord) -> Bool)? = nil) -> Bool {
        var bestEncoder = encoder.network.parameters.copy(), bestDecoder = decoder.network.parameters.copy()
        var bestNoise = decoder.logNoiseVariance?.copy()
        let c = configuration
        let stopped = runEpochs(epochs: c.epochs, rows: x.rows, batchSize: c.batchSize, patience: c.patience,
                                minRelativeImprovement: c.minRelativeImprovement, rng: &rng, history: &history,
                                step: { step(rows: $0) },
                                validate: {
                                    guard let val = validation, val.rows > 0 else { return nil }
                                    return objective(on: val, seed: c.seed ^ 0xA5A5)
                                },
                                newBest: {
                                    bestEncoder = encoder.network.parameters.copy()
                                    bestDecoder = decoder.network.parameters.copy()
                                    bestNoise = decoder.logNoiseVariance?.copy()
                                },
                                progress: progress)
        encoder.network.parameters.assign(bestEncoder)
        decoder.network.parameters.assign(bestDecoder)
        if let b = bestNoise { decoder.logNoiseVariance?.assign(b) }
        return stopped
    }
}
