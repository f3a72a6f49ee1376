import Foundation
import PESVINumerics

/// Settings of phase 1, early decoder training (paper section 3.1).
public struct EarlyDecoderTrainingConfiguration: Sendable, Codable, Equatable {
    /// Upper bound on epochs; training may stop earlier on a validation plateau.
    public var epochs: Int = 300
    public var batchSize: Int = 64
    /// Adam rate for the decoder's weights (and learned noise variances).
    public var decoderLearningRate: Float = 1e-2
    /// Adam rate for the free posterior rows (μᵢ, log σ²ᵢ).
    public var latentLearningRate: Float = 1e-1
    /// Reparameterized samples per point per step.
    public var samples: Int = 1
    public var initialization: PosteriorInitialization = .standard
    /// Stop after this many epochs without a relative validation improvement of
    /// `minRelativeImprovement` (no validation data: the training objective is monitored).
    public var patience: Int = 30
    public var minRelativeImprovement: Double = 1e-3
    /// Frozen-decoder Adam steps each validation row takes per epoch. Training rows fit a
    /// decoder that adapts to them; validation rows only chase it, so with one step per epoch
    /// their objective lags far behind and says little about the decoder. A few steps let
    /// them keep up.
    public var validationStepsPerEpoch: Int = 3
    /// Optional global gradient-norm clipping of the decoder's gradient.
    public var clipNorm: Float? = nil
    public var seed: UInt64 = 0
    public var threads: Int = 1
    /// Rows per parallel chunk (results do not depend on `threads`, only on this).
    public var chunkRows: Int = 128

    public init() {}
}

/// One epoch of a training phase.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    /// Mean per-point objective over the epoch's batches (measured before each step).
    public var trainObjective: Double
    /// Mean per-point objective on the validation data, if any.
    public var validationObjective: Double?
    /// Wall time of the epoch in seconds.
    public var seconds: Double
}

/// Phase 1 of PE-SVI: the decoder and every training point's free posterior (μᵢ, log σ²ᵢ) are
/// trained together with Adam, at separate learning rates; a row is updated only when its
/// point is in the batch, once per epoch.
///
/// Validation points get free rows too. Each epoch they take `validationStepsPerEpoch` Adam
/// steps each with the decoder frozen, and the mean objective measured during the last of
/// those passes is the validation objective that drives plateau stopping.
public final class EarlyDecoderTraining: ParallelJob, @unchecked Sendable {
    public let decoder: GaussianDecoder
    public let configuration: EarlyDecoderTrainingConfiguration
    public let train: Dataset
    public let trainPosteriors: PosteriorTable
    public let validation: Dataset?
    public let validationPosteriors: PosteriorTable?
    public private(set) var history: [EpochRecord] = []
    /// Steps taken so far (batches).
    public private(set) var stepCount = 0

    let runner: ChunkRunner
    let decoderAdam: AdamOptimizer
    let noiseAdam: AdamOptimizer?
    let workspaces: [ChunkWorkspace]
    let chunkGradients: [FloatBuffer]       // per chunk of a batch: decoder ∂/∂θ
    let chunkNoiseGradients: [FloatBuffer]  // per chunk: ∂/∂log σₓ²
    let chunkTotals: SharedDoubles
    let batchX: FloatBuffer, batchMu: FloatBuffer, batchLv: FloatBuffer
    let batchGradMu: FloatBuffer, batchGradLv: FloatBuffer
    let gradientSum: FloatBuffer
    let noiseGradientSum: FloatBuffer
    let indexBuffer: UnsafeMutablePointer<Int>
    var rng: RandomGenerator
    let validationStepper: LatentStepper?

    public init(decoder: GaussianDecoder, train: Dataset, validation: Dataset? = nil,
                configuration c: EarlyDecoderTrainingConfiguration) {
        precondition(train.cols == decoder.dataWidth, "training data has \(train.cols) columns, the decoder makes \(decoder.dataWidth)")
        precondition(validation == nil || validation!.cols == decoder.dataWidth,
                     "validation data has \(validation!.cols) columns, the decoder makes \(decoder.dataWidth)")
        precondition(c.batchSize > 0 && c.samples > 0 && c.threads > 0, "batch size, samples and threads must be positive")
        self.decoder = decoder
        self.configuration = c
        self.train = train
        self.validation = validation
        rng = RandomGenerator(seed: c.seed)
        let L = decoder.latent, d = decoder.dataWidth
        let latentAdam = AdamConfiguration(learningRate: c.latentLearningRate)
        var initRng = rng.forked(stream: 1)
        trainPosteriors = PosteriorTable(rows: train.rows, latent: L, adam: latentAdam, initialization: c.initialization, rng: &initRng)
        if let v = validation {
            validationPosteriors = PosteriorTable(rows: v.rows, latent: L, adam: latentAdam, initialization: c.initialization, rng: &initRng)
            validationStepper = LatentStepper(decoder: decoder, threads: c.threads, chunkRows: c.chunkRows, samples: c.samples, maxRows: v.rows)
        } else {
            validationPosteriors = nil
            validationStepper = nil
        }
        runner = ChunkRunner(threads: c.threads, chunkRows: c.chunkRows)
        decoderAdam = AdamOptimizer(parameterCount: decoder.network.parameterCount,
                                    configuration: AdamConfiguration(learningRate: c.decoderLearningRate, clipNorm: c.clipNorm))
        noiseAdam = decoder.logNoiseVariance.map { AdamOptimizer(parameterCount: $0.count, configuration: AdamConfiguration(learningRate: c.decoderLearningRate)) }
        let B = min(c.batchSize, max(train.rows, 1))
        let chunks = runner.chunkCount(rows: B)
        workspaces = (0..<c.threads).map { _ in ChunkWorkspace(decoder: decoder, maxPoints: c.chunkRows, samples: c.samples) }
        chunkGradients = (0..<chunks).map { _ in FloatBuffer(count: decoder.network.parameterCount) }
        chunkNoiseGradients = (0..<chunks).map { _ in FloatBuffer(count: decoder.logNoiseVariance == nil ? 0 : d) }
        chunkTotals = SharedDoubles(count: chunks)
        batchX = FloatBuffer(count: B * d)
        batchMu = FloatBuffer(count: B * L); batchLv = FloatBuffer(count: B * L)
        batchGradMu = FloatBuffer(count: B * L); batchGradLv = FloatBuffer(count: B * L)
        gradientSum = FloatBuffer(count: decoder.network.parameterCount)
        noiseGradientSum = FloatBuffer(count: decoder.logNoiseVariance == nil ? 0 : d)
        indexBuffer = .allocate(capacity: max(B, 1))
    }

    deinit { indexBuffer.deallocate() }

    /// Rows in the batch being stepped (read by the threads running it).
    var batchRows = 0

    /// One thread's share of a training step, chunk by chunk: gather the chunk's rows (data,
    /// μ, log σ²) into the batch buffers, evaluate, then take the Adam step of the chunk's
    /// posterior rows. Gathering per chunk keeps the rows in cache for the evaluation (a
    /// whole batch of synthetic rows, 2,500 × 300 floats, does not fit), and the row steps
    /// run on the chunk's thread. A row's step needs only its own gradient, which its chunk
    /// has finished, and no chunk reads another chunk's rows (the batch's rows are distinct),
    /// so the result is the same as gathering before and stepping after the whole batch.
    public func run(thread t: Int, of threads: Int) {
        let L = decoder.latent, d = decoder.dataWidth
        let learned = decoder.logNoiseVariance != nil
        runner.forEachChunk(rows: batchRows, thread: t, of: threads) { c, start, n in
            train.gather(indexBuffer + start, count: n, into: batchX.pointer + start * d)
            trainPosteriors.gather(indexBuffer + start, count: n, mu: batchMu.pointer + start * L, logVariance: batchLv.pointer + start * L)
            var chunkRng = ChunkRunner.generator(seed: configuration.seed, step: stepCount, chunk: c)
            var req = ChunkRequest(x: batchX.pointer + start * d, count: n,
                                   mu: batchMu.pointer + start * L, muStride: L,
                                   logVariance: batchLv.pointer + start * L, logVarianceStride: L)
            req.gradMu = batchGradMu.pointer + start * L
            req.gradLogVariance = batchGradLv.pointer + start * L
            req.gradientStride = L
            req.decoderGradient = chunkGradients[c].pointer
            if learned { req.noiseGradient = chunkNoiseGradients[c].pointer }
            chunkTotals.pointer[c] = decoder.evaluate(req, workspace: workspaces[t], rng: &chunkRng)
            trainPosteriors.update(rows: indexBuffer + start, count: n,
                                   gradMu: batchGradMu.pointer + start * L, gradLogVariance: batchGradLv.pointer + start * L)
        }
    }

    /// One training step on the listed training rows (distinct, at most `batchSize`): decoder
    /// and those rows take one Adam step each. Returns the batch's mean objective, measured
    /// before the step.
    @discardableResult
    public func step(rows indices: ArraySlice<Int>) -> Double {
        let B = indices.count
        precondition(B > 0 && B <= batchX.count / decoder.dataWidth, "step: batch of \(B) rows, capacity \(batchX.count / decoder.dataWidth)")
        for (k, i) in indices.enumerated() { indexBuffer[k] = i }
        batchRows = B
        // Gathers, evaluates and steps the rows, chunk by chunk (see `run(thread:of:)`).
        runner.run(rows: B, job: self)
        // Reduce chunk gradients in chunk order (independent of the thread count).
        let chunks = runner.chunkCount(rows: B)
        var total = 0.0
        gradientSum.assign(chunkGradients[0])
        for c in 1..<max(chunks, 1) { Elementwise.add(chunkGradients[c].pointer, to: gradientSum.pointer, count: gradientSum.count) }
        for c in 0..<chunks { total += chunkTotals.pointer[c] }
        decoderAdam.update(decoder.network.parameters, gradients: gradientSum.pointer, gradientScale: 1 / Float(B))
        if let noiseAdam, let lv = decoder.logNoiseVariance {
            noiseGradientSum.assign(chunkNoiseGradients[0])
            for c in 1..<max(chunks, 1) { Elementwise.add(chunkNoiseGradients[c].pointer, to: noiseGradientSum.pointer, count: noiseGradientSum.count) }
            noiseAdam.update(lv, gradients: noiseGradientSum.pointer, gradientScale: 1 / Float(B))
        }
        stepCount += 1
        return total / Double(B)
    }

    /// One epoch: a seeded shuffle of the training rows, one step per batch, then one
    /// frozen-decoder Adam step on every validation row. Returns the epoch's record.
    @discardableResult
    public func runEpoch() -> EpochRecord {
        let start = Date()
        let order = rng.permutation(train.rows)
        let B = configuration.batchSize
        var sum = 0.0
        var b = 0
        while b < order.count {
            let batch = order[b..<min(b + B, order.count)]
            sum += step(rows: batch) * Double(batch.count)
            b += B
        }
        var validationObjective: Double? = nil
        if let v = validation, let vp = validationPosteriors, let stepper = validationStepper, v.rows > 0 {
            var total = 0.0
            for k in 0..<max(configuration.validationStepsPerEpoch, 1) {
                total = stepper.step(v, vp, seed: configuration.seed ^ 0x5A5A_5A5A, step: history.count * 64 + k)
            }
            validationObjective = total / Double(v.rows)
        }
        let record = EpochRecord(epoch: history.count + 1, trainObjective: sum / Double(max(train.rows, 1)),
                                 validationObjective: validationObjective, seconds: Date().timeIntervalSince(start))
        history.append(record)
        return record
    }

    /// Runs epochs until `epochs` or a plateau of the monitored objective (validation if
    /// present, else training). `progress` is called after every epoch; returning false stops.
    /// Returns true when stopped on a plateau.
    @discardableResult
    public func run(progress: ((EpochRecord) -> Bool)? = nil) -> Bool {
        var stopper = PlateauStopper(patience: configuration.patience, minRelativeImprovement: configuration.minRelativeImprovement)
        while history.count < configuration.epochs {
            let r = runEpoch()
            stopper.record(r.validationObjective ?? r.trainObjective, index: r.epoch)
            if let progress, !progress(r) { return false }
            if stopper.shouldStop { return true }
        }
        return false
    }
}
