import Foundation
import PESVINumerics

/// Settings of phase 2, deferred encoder training (paper section 3.2).
public struct DeferredEncoderTrainingConfiguration: Sendable, Codable, Equatable {
    public var epochs: Int = 300
    public var batchSize: Int = 64
    public var learningRate: Float = 1e-3
    /// Stop after this many epochs without a relative validation improvement of
    /// `minRelativeImprovement`; the weights of the best validation epoch are kept.
    public var patience: Int = 30
    public var minRelativeImprovement: Double = 1e-3
    public var seed: UInt64 = 0
    public var threads: Int = 1
    public var chunkRows: Int = 128
    /// Weight of the log σ² half of the loss relative to the μ half. In reconstruction mode
    /// log σ²* only drifts down (the objective has no optimum in σ), so its targets are noisy
    /// and large; weighting them down lets the encoder spend its capacity on μ.
    public var logVarianceWeight: Float = 1
    public init() {}
}

/// Phase 2 of PE-SVI: the pseudo-encoder is regressed, supervised, from xᵢ to the posterior
/// parameters (μᵢ*, log σ²ᵢ*) learned in phase 1. The loss per point is the mean squared
/// error over the 2|z| outputs: (1/2|z|)·(‖E_μ(xᵢ) − μᵢ*‖² + w·‖E_logσ²(xᵢ) − log σ²ᵢ*‖²), w the
/// configuration's `logVarianceWeight`.
public final class DeferredEncoderTraining: @unchecked Sendable {
    public let encoder: GaussianEncoder
    public let configuration: DeferredEncoderTrainingConfiguration
    public private(set) var history: [EpochRecord] = []
    let x: Dataset, targets: Dataset
    let validationX: Dataset?, validationTargets: Dataset?
    let adam: AdamOptimizer
    let runner: ChunkRunner
    let workspaces: [NetworkWorkspace]
    let outputGradients: [FloatBuffer]
    let grads: ChunkGradients
    let batchX: FloatBuffer, batchT: FloatBuffer
    /// The current batch's row indices (read by the chunks that gather them).
    let indexBuffer: UnsafeMutablePointer<Int>
    var rng: RandomGenerator

    /// `targets` rows are [μᵢ*, log σ²ᵢ*] (2|z| values), one per row of `x`.
    public init(encoder: GaussianEncoder, x: Dataset, targets: Dataset, validationX: Dataset? = nil, validationTargets: Dataset? = nil,
                configuration c: DeferredEncoderTrainingConfiguration) {
        precondition(x.rows == targets.rows && targets.cols == 2 * encoder.latent && x.cols == encoder.dataWidth,
                     "pseudo-encoder data \(x.rows)×\(x.cols), targets \(targets.rows)×\(targets.cols), encoder \(encoder.dataWidth)→\(2 * encoder.latent)")
        self.encoder = encoder
        self.configuration = c
        self.x = x
        self.targets = targets
        self.validationX = validationX
        self.validationTargets = validationTargets
        rng = RandomGenerator(seed: c.seed)
        adam = AdamOptimizer(parameterCount: encoder.network.parameterCount, configuration: AdamConfiguration(learningRate: c.learningRate))
        runner = ChunkRunner(threads: c.threads, chunkRows: c.chunkRows)
        let B = min(c.batchSize, max(x.rows, 1))
        workspaces = (0..<c.threads).map { _ in NetworkWorkspace(network: encoder.network, maxRows: c.chunkRows) }
        outputGradients = (0..<c.threads).map { _ in FloatBuffer(count: c.chunkRows * 2 * encoder.latent) }
        grads = ChunkGradients(chunks: runner.chunkCount(rows: B), parameterCounts: [encoder.network.parameterCount])
        batchX = FloatBuffer(count: B * x.cols)
        batchT = FloatBuffer(count: B * targets.cols)
        indexBuffer = .allocate(capacity: max(B, 1))
    }

    deinit { indexBuffer.deallocate() }

    /// Builds the targets [μ, log σ²] per row from a posterior table.
    public static func targets(from table: PosteriorTable) -> Dataset {
        let L = table.latent
        var v = [Float](); v.reserveCapacity(table.rows * 2 * L)
        for r in 0..<table.rows {
            let row = table.row(r)
            v.append(contentsOf: row.mu); v.append(contentsOf: row.logVariance)
        }
        return Dataset(rows: table.rows, cols: 2 * L, values: v)
    }

    /// Mean per-point loss of the encoder on (x, targets), without training.
    public func loss(x: Dataset, targets: Dataset) -> Double {
        let w = targets.cols
        let tot = SharedDoubles(count: runner.chunkCount(rows: x.rows))
        runner.run(rows: x.rows) { t, c, start, n in
            let out = self.encoder.network.forward(x.values.pointer + start * x.cols, rows: n, workspace: self.workspaces[t])
            let L = w / 2, lw = Double(self.configuration.logVarianceWeight)
            var s = 0.0
            for i in 0..<n {
                let o = out + i * w, tg = targets.values.pointer + (start + i) * w
                s += Elementwise.squaredDistance(o, tg, count: L) + lw * Elementwise.squaredDistance(o + L, tg + L, count: L)
            }
            tot.pointer[c] = s / Double(w)
        }
        return tot.sum() / Double(max(x.rows, 1))
    }

    /// One Adam step on the listed rows; returns the batch's mean loss before the step.
    @discardableResult
    public func step(rows indices: ArraySlice<Int>) -> Double {
        let B = indices.count, d = x.cols, w = targets.cols
        precondition(B > 0 && B <= batchX.count / d, "step: batch of \(B) rows, capacity \(batchX.count / d)")
        for (k, i) in indices.enumerated() { indexBuffer[k] = i }
        runner.run(rows: B) { t, c, start, n in
            let ws = self.workspaces[t], g = self.outputGradients[t].pointer
            let input = self.batchX.pointer + start * d
            // Gathered per chunk, on its thread, so the rows are still in cache when used.
            self.x.gather(self.indexBuffer + start, count: n, into: input)
            self.targets.gather(self.indexBuffer + start, count: n, into: self.batchT.pointer + start * w)
            let out = self.encoder.network.forward(input, rows: n, workspace: ws)
            let L = w / 2, lw = self.configuration.logVarianceWeight
            var se = 0.0
            for i in 0..<n {
                let o = out + i * w, tg = self.batchT.pointer + (start + i) * w, gi = g + i * w
                se += Elementwise.residual(o, minus: tg, into: gi, count: L)
                se += Double(lw) * Elementwise.residual(o + L, minus: tg + L, into: gi + L, count: L)
                Elementwise.scale(gi + L, by: lw, count: L)
            }
            Elementwise.scale(g, by: 2 / Float(w), count: n * w)
            self.encoder.network.backward(input, rows: n, workspace: ws, outputGradient: g,
                                          parameterGradients: self.grads.buffers[c][0].pointer, inputGradient: nil)
            self.grads.totals.pointer[c] = se / Double(w)
        }
        let total = grads.reduce(chunks: runner.chunkCount(rows: B))
        adam.update(encoder.network.parameters, gradients: grads.sums[0].pointer, gradientScale: 1 / Float(B))
        return total / Double(B)
    }

    /// Trains until `epochs` or a validation plateau, then restores the best-validation weights.
    @discardableResult
    public func run(progress: ((EpochRecord) -> Bool)? = nil) -> Bool {
        var best = encoder.network.parameters.copy()
        let c = configuration
        let stopped = runEpochs(epochs: c.epochs, rows: x.rows, batchSize: c.batchSize, patience: c.patience,
                                minRelativeImprovement: c.minRelativeImprovement, rng: &rng, history: &history,
                                step: { step(rows: $0) },
                                validate: {
                                    guard let vx = validationX, let vt = validationTargets, vx.rows > 0 else { return nil }
                                    return loss(x: vx, targets: vt)
                                },
                                newBest: { best = encoder.network.parameters.copy() }, progress: progress)
        encoder.network.parameters.assign(best)
        return stopped
    }
}
