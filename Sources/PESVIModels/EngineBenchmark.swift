import Foundation
import PESVINumerics

/// Speed measurements of the engine on the reference shape: |z| = 64, Arch2
/// (64 → 128 → 300), d = 300, batch 256, reconstruction objective, one sample.
public enum EngineBenchmark {
    public struct TrainResult: Sendable, Codable {
        /// Training throughput: points per second through forward, backward, the decoder's Adam
        /// and the latent rows' Adam.
        public var samplesPerSecond: Double
        public var threads: Int
        public var batchSize: Int
        public var seconds: Double
    }

    public struct InferenceResult: Sendable, Codable {
        /// Milliseconds per test-time step (every point: sample, forward, backward to z, Adam).
        public var millisecondsPerStep: Double
        public var points: Int
        public var threads: Int
        public var steps: Int
    }

    static let latent = 64, dataWidth = 300

    static func randomData(rows: Int, seed: UInt64) -> Dataset {
        var rng = RandomGenerator(seed: seed)
        return Dataset(rows: rows, cols: dataWidth, values: rng.normalArray(count: rows * dataWidth))
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Phase-1 training throughput: epochs over `rows` random points (d = 300) until at least
    /// `minSeconds` have passed (after one warm-up epoch), for a decoder of `latent` inputs and
    /// `architecture`. The defaults are the reference shape (|z| = 64, Arch2, 10,240 rows, whose
    /// 12 MB fit in cache); `rows` = 45,000 and `batchSize` = 2,500 are the synthetic protocol's
    /// training split and batch (54 MB of rows, read from memory in shuffled order). With `vae`,
    /// the VAE baseline's end-to-end steps (encoder and decoder) instead of phase 1.
    public static func train(threads: Int, rows: Int = 256 * 40, batchSize: Int = 256, minSeconds: Double = 2,
                             latent: Int = 64, architecture: Architecture = .arch2, vae: Bool = false) -> TrainResult {
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: architecture, objective: .reconstruction, rng: &rng)
        let data = randomData(rows: rows, seed: 2)
        let chunkRows = min(128, max(batchSize / 2, 1))
        let epoch: () -> Void
        if vae {
            var c = VAETrainingConfiguration()
            c.batchSize = batchSize; c.threads = threads; c.chunkRows = chunkRows
            let encoder = GaussianEncoder(latent: latent, dataWidth: dataWidth, architecture: architecture, rng: &rng)
            let training = VAETraining(encoder: encoder, decoder: decoder, train: data, configuration: c)
            var order = RandomGenerator(seed: 3)
            epoch = {
                let perm = order.permutation(rows)
                var b = 0
                while b < rows { training.step(rows: perm[b..<min(b + batchSize, rows)]); b += batchSize }
            }
        } else {
            var c = EarlyDecoderTrainingConfiguration()
            c.batchSize = batchSize; c.threads = threads; c.chunkRows = chunkRows; c.epochs = Int.max
            let training = EarlyDecoderTraining(decoder: decoder, train: data, configuration: c)
            epoch = { training.runEpoch() }
        }
        epoch()
        let t0 = now()
        var points = 0
        while now() - t0 < minSeconds {
            epoch()
            points += rows
        }
        let dt = now() - t0
        return TrainResult(samplesPerSecond: Double(points) / dt, threads: threads, batchSize: batchSize, seconds: dt)
    }

    /// Test-time inference: ms per step over `points` random points (after 3 warm-up steps).
    public static func infer(threads: Int, points: Int = 5000, minSeconds: Double = 2) -> InferenceResult {
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let x = randomData(rows: points, seed: 3)
        let table = PosteriorTable(rows: points, latent: latent, adam: AdamConfiguration(learningRate: 0.01), initialization: .standard, rng: &rng)
        // As TestTimeInference runs SVI: the fixed decoder's weights packed once.
        let stepper = LatentStepper(decoder: decoder, threads: threads, chunkRows: 128, samples: 1, maxRows: points, packWeights: true)
        for s in 0..<3 { stepper.step(x, table, seed: 1, step: s) }
        let t0 = now()
        var steps = 0
        while now() - t0 < minSeconds || steps < 10 {
            stepper.step(x, table, seed: 1, step: steps + 3)
            steps += 1
        }
        let dt = now() - t0
        return InferenceResult(millisecondsPerStep: dt * 1000 / Double(steps), points: points, threads: threads, steps: steps)
    }

    public struct GaussNewtonResult: Sendable, Codable {
        /// Milliseconds per Gauss-Newton iteration with every point active (Jacobian products,
        /// one damped Cholesky solve and one trial forward pass per point, two forward passes).
        public var millisecondsPerIteration: Double
        /// Milliseconds per SVI step (sample, forward, backward to z, Adam) on the same decoder
        /// and points, and the ratio: how many SVI steps one GN iteration costs.
        public var millisecondsPerSVIStep: Double
        public var sviStepsPerIteration: Double
        /// The same for an iteration on the smoothed decoder (``GaussNewtonSmoothing``: dense
        /// Jacobian products, softplus passes); nil for a linear decoder (nothing to smooth).
        public var millisecondsPerSmoothedIteration: Double?
        public var sviStepsPerSmoothedIteration: Double?
        /// The same for a plain iteration solved in a Krylov subspace of dimension 4
        /// (``GaussNewtonRefinement/krylovDimension``); nil for a linear decoder.
        public var millisecondsPerKrylovIteration: Double?
        /// The same for a smoothed iteration solved in a Krylov subspace of dimension
        /// `smoothedKrylovDimension` (``GaussNewtonRefinement/smoothedKrylovDimension``, the
        /// smoothed iterations' default solve from |z| = 32 on); nil for a linear decoder or 0.
        public var millisecondsPerSmoothedKrylovIteration: Double?
        public var smoothedKrylovDimension: Int
        /// Whether that smoothed Krylov iteration was preconditioned
        /// (``GaussNewtonRefinement/krylovPreconditioner``, formed from the benchmark's own points
        /// and starts; its basis then leaves out the last step).
        public var smoothedKrylovPreconditioned: Bool = false
        /// How the exact iterations solve: "exact linear step" (linear decoder), "data space"
        /// (a ReLU decoder with d < |z|: d × d systems, ``GaussNewtonRefinement/solvesInDataSpace``)
        /// or "primal" (|z| × |z| systems).
        public var solve: String
        public var points: Int, latent: Int, dataWidth: Int, threads: Int
        public var architecture: String
        public var iterations: Int
    }

    /// The refinement benchmarks' problem: a random decoder (reconstruction objective),
    /// x = D(z) + 0.1·noise for z ~ N(0, I), and the start μ = z + 0.3·noise, log σ² = −4.
    static func refinementProblem(points: Int, latent L: Int, dataWidth d: Int, architecture: Architecture)
        -> (GaussianDecoder, Dataset, (mu: [Float], logVariance: [Float])) {
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: architecture, objective: .reconstruction, rng: &rng)
        let zTrue = rng.normalArray(count: points * L)
        let ws = NetworkWorkspace(network: decoder.network, maxRows: points)
        let out = zTrue.withUnsafeBufferPointer { decoder.network.forward($0.baseAddress!, rows: points, workspace: ws) }
        let noise = rng.normalArray(count: points * d, std: 0.1)
        var v = [Float](repeating: 0, count: points * d)
        for i in 0..<(points * d) { v[i] = out[i] + noise[i] }
        let x = Dataset(rows: points, cols: d, values: v)
        let mu0 = zip(zTrue, rng.normalArray(count: points * L, std: 0.3)).map { $0 + $1 }
        let start = (mu0, [Float](repeating: -4, count: points * L))
        return (decoder, x, start)
    }

    /// Milliseconds per SVI step (Adam at rate 0.1 from `start`), measured for at least
    /// `minSeconds` (and 10 steps) in runs of 25 steps after a warm-up.
    static func sviStepMilliseconds(decoder: GaussianDecoder, x: Dataset, start: (mu: [Float], logVariance: [Float]),
                                    threads: Int, minSeconds: Double) -> Double {
        let inference = TestTimeInference(decoder: decoder, threads: threads)
        _ = inference.refine(x, start: start, learningRate: 0.1, steps: 3, seed: 1)
        var sviSeconds = 0.0, steps = 0
        while sviSeconds < minSeconds || steps < 10 {
            let r = inference.refine(x, start: start, learningRate: 0.1, steps: 25, seed: 1)
            sviSeconds += r.seconds
            steps += 25
        }
        return sviSeconds * 1000 / Double(steps)
    }

    /// Gauss-Newton against SVI on ``refinementProblem(points:latent:dataWidth:architecture:)``.
    /// GN runs iterations with tolerance 0 and one trial, so every point stays active (a full
    /// iteration; a linear decoder takes its one exact step, ``ExactLinearStep``, which is what
    /// is then timed): plain LM iterations, and for a ReLU decoder smoothed ones and plain ones
    /// solved in a Krylov subspace of dimension 4 too, and smoothed ones solved exactly
    /// (`smoothedKrylov` 0) and in a Krylov subspace of dimension `smoothedKrylov`; SVI runs Adam
    /// steps at rate 0.1 from the same start.
    /// Each side is measured for at least `minSeconds` after one warm-up.
    public static func gaussNewton(threads: Int, points: Int = 5000, latent L: Int = 64, dataWidth d: Int = 300,
                                   architecture: Architecture = .arch2, minSeconds: Double = 2, smoothedKrylov: Int = 16,
                                   preconditioned: Bool = false) -> GaussNewtonResult {
        let (decoder, x, start) = refinementProblem(points: points, latent: L, dataWidth: d, architecture: architecture)
        let preconditioner = preconditioned && smoothedKrylov > 0
            ? GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x, starts: start.mu) : nil

        // Milliseconds per iteration and iterations run: plain LM, or every iteration smoothed
        // (the first three of the standard schedule).
        func measure(_ smoothing: GaussNewtonSmoothing, krylov: Int = 0, smoothedKrylov: Int = 0, preconditioner: [Float]? = nil)
            -> (Double, Int, dataSpace: Bool) {
            let gn = GaussNewtonRefinement(decoder: decoder, threads: threads, tolerance: 0, trialsPerIteration: 1, smoothing: smoothing,
                                           krylovDimension: krylov, smoothedKrylovDimension: smoothedKrylov, krylovPreconditioner: preconditioner)
            _ = gn.refine(x, start: start, maxSteps: 1, seed: 1)
            var gnSeconds = 0.0, iterations = 0
            while gnSeconds < minSeconds || iterations < 3 {
                let r = gn.refine(x, start: start, maxSteps: 3, seed: 1, recordCurve: false)
                gnSeconds += r.seconds
                iterations += r.iterations
            }
            return (gnSeconds * 1000 / Double(iterations), iterations, gn.solvesInDataSpace)
        }
        let (gnMs, iterations, dataSpace) = measure(.off)
        let smoothedMs = decoder.network.layerCount > 1 ? measure(.standard).0 : nil
        let krylovMs = decoder.network.layerCount > 1 ? measure(.off, krylov: 4).0 : nil
        let smoothedKrylovMs = decoder.network.layerCount > 1 && smoothedKrylov > 0
            ? measure(.standard, smoothedKrylov: smoothedKrylov, preconditioner: preconditioner).0 : nil
        let sviMs = sviStepMilliseconds(decoder: decoder, x: x, start: start, threads: threads, minSeconds: minSeconds)
        let solve = decoder.network.layerCount == 1 ? "exact linear step" : dataSpace ? "data space" : "primal"
        return GaussNewtonResult(millisecondsPerIteration: gnMs, millisecondsPerSVIStep: sviMs, sviStepsPerIteration: gnMs / sviMs,
                                 millisecondsPerSmoothedIteration: smoothedMs, sviStepsPerSmoothedIteration: smoothedMs.map { $0 / sviMs },
                                 millisecondsPerKrylovIteration: krylovMs, millisecondsPerSmoothedKrylovIteration: smoothedKrylovMs,
                                 smoothedKrylovDimension: smoothedKrylov, smoothedKrylovPreconditioned: preconditioner != nil, solve: solve,
                                 points: points, latent: L, dataWidth: d, threads: threads, architecture: architecture.description,
                                 iterations: iterations)
    }

    public struct GuardedRefinementBenchmarkResult: Sendable, Codable {
        /// Milliseconds per PE-SVI-auto iteration with every point active (one evaluation with
        /// gradients, the guard and an Adam step per point): at the mean with log σ² at the floor
        /// (``GuardedRefinementConfiguration/closedFormVariance``, the default for this
        /// reconstruction objective), with the antithetic pair taken through the output layer
        /// once (``ChunkRequest/pairGram``), and with both samples evaluated; and per SVI step
        /// on the same decoder and points.
        public var millisecondsPerIterationAtMean: Double
        public var millisecondsPerIteration: Double
        public var millisecondsPerIterationBothSamples: Double
        public var millisecondsPerSVIStep: Double
        /// How many SVI steps one iteration costs: at the mean, paired, with both samples.
        public var sviStepsPerIterationAtMean: Double
        public var sviStepsPerIteration: Double
        public var sviStepsPerIterationBothSamples: Double
        /// Milliseconds per iteration with the Cauchy step (at the mean, one Jacobian-vector
        /// product more): its curvature through the output layer's Gram matrix where h < d (the
        /// default), and by forming J·g; and both in SVI steps.
        public var millisecondsPerCauchyIteration: Double
        public var millisecondsPerCauchyIterationFormingJg: Double
        public var sviStepsPerCauchyIteration: Double
        public var sviStepsPerCauchyIterationFormingJg: Double
        /// Milliseconds per iteration with the subspace step (through G where h < d; its first
        /// iteration is a Cauchy step, the others add J·p), and in SVI steps.
        public var millisecondsPerSubspaceIteration: Double
        public var sviStepsPerSubspaceIteration: Double
        /// Milliseconds per iteration with the Krylov step (through G where h < d; H̃g, its image,
        /// and from the second iteration J·p), and in SVI steps.
        public var millisecondsPerKrylovIteration: Double
        public var sviStepsPerKrylovIteration: Double
        public var points: Int, latent: Int, dataWidth: Int, threads: Int
        public var architecture: String
        public var iterations: Int
    }

    /// Guarded Adam refinement (PE-SVI-auto) against SVI on
    /// ``refinementProblem(points:latent:dataWidth:architecture:)``.
    /// The refinement runs at rate 0.01 with tolerance 0, so points stay active; an iteration's
    /// time is the refinement's own clock up to its last iteration (the drawing of the fixed
    /// noise and G included, the closing evaluation not). The Cauchy step runs at scale 0.01
    /// (``GuardedRefinementConfiguration/learningRate``) for the same reason. Each variant is
    /// measured for at least `minSeconds` after one warm-up, the seven refinement variants alternating.
    public static func guardedRefinement(threads: Int, points: Int = 5000, latent L: Int = 32, dataWidth d: Int = 300,
                                         architecture: Architecture = .arch3, minSeconds: Double = 2) -> GuardedRefinementBenchmarkResult {
        let (decoder, x, start) = refinementProblem(points: points, latent: L, dataWidth: d, architecture: architecture)

        let refiner = GuardedRefinement(decoder: decoder, threads: threads)
        let atMean = GuardedRefinementConfiguration(learningRate: 0.01, tolerance: 0, patience: 1_000, maxSteps: 5)
        var paired = atMean
        paired.closedFormVariance = false
        paired.pairedOutputLayer = true
        var both = paired
        both.pairedOutputLayer = false
        var cauchy = GuardedRefinementConfiguration.cauchy(maxSteps: 5)
        cauchy.learningRate = 0.01
        cauchy.tolerance = 0
        cauchy.patience = 1_000
        var subspace = cauchy
        subspace.stepRule = .subspace
        var krylov = cauchy
        krylov.stepRule = .krylov
        let variants = [atMean, paired, both, cauchy, cauchy, subspace, krylov]
        let formingJg = GuardedRefinement(decoder: decoder, threads: threads)
        formingJg.cauchyThroughGram = false
        func refinerFor(_ k: Int) -> GuardedRefinement { k == 4 ? formingJg : refiner }
        for (k, c) in variants.enumerated() { _ = refinerFor(k).refine(x, start: start, configuration: c, seed: 1) }
        var seconds = [Double](repeating: 0, count: variants.count), iterations = [Int](repeating: 0, count: variants.count)
        while seconds.min()! < minSeconds || iterations.min()! < 10 {
            for (k, c) in variants.enumerated() {
                let r = refinerFor(k).refine(x, start: start, configuration: c, seed: 1)
                seconds[k] += r.secondsAfter.last ?? 0
                iterations[k] += r.secondsAfter.count
            }
        }
        let sviMs = sviStepMilliseconds(decoder: decoder, x: x, start: start, threads: threads, minSeconds: minSeconds)
        let ms = variants.indices.map { seconds[$0] * 1000 / Double(iterations[$0]) }
        return GuardedRefinementBenchmarkResult(millisecondsPerIterationAtMean: ms[0], millisecondsPerIteration: ms[1],
                                                millisecondsPerIterationBothSamples: ms[2],
                                                millisecondsPerSVIStep: sviMs, sviStepsPerIterationAtMean: ms[0] / sviMs,
                                                sviStepsPerIteration: ms[1] / sviMs, sviStepsPerIterationBothSamples: ms[2] / sviMs,
                                                millisecondsPerCauchyIteration: ms[3], millisecondsPerCauchyIterationFormingJg: ms[4],
                                                sviStepsPerCauchyIteration: ms[3] / sviMs, sviStepsPerCauchyIterationFormingJg: ms[4] / sviMs,
                                                millisecondsPerSubspaceIteration: ms[5], sviStepsPerSubspaceIteration: ms[5] / sviMs,
                                                millisecondsPerKrylovIteration: ms[6], sviStepsPerKrylovIteration: ms[6] / sviMs,
                                                points: points, latent: L, dataWidth: d, threads: threads,
                                                architecture: architecture.description, iterations: iterations[0])
    }
}
