import Testing
import Foundation
import AllocationCounter
import PESVINumerics
@testable import PESVIModels

/// Once warm, a training step and a test-time step allocate nothing on the heap.
///
/// The counter sees every malloc in the process, so these tests only mean something when
/// nothing else runs: they are enabled by PESVI_COUNT_ALLOCATIONS=1, and CI runs them alone:
/// `PESVI_COUNT_ALLOCATIONS=1 swift test -c release -Xswiftc -enable-testing --filter AllocationTests`.
/// Even alone, the test library's own threads (event reporting) can allocate inside a measured
/// window on a loaded machine (seen: 4–5 allocations in one window out of three runs), so each
/// test measures several windows and keeps the fewest: an allocation in the step itself would
/// show in every window.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["PESVI_COUNT_ALLOCATIONS"] == "1",
                             "set PESVI_COUNT_ALLOCATIONS=1 and run this suite alone"))
struct AllocationTests {
    @Test(arguments: [1, 2])
    func trainingStepAllocatesNothingOnceWarm(threads: Int) throws {
        try #require(pesvi_allocation_count() >= 0, "allocation counting needs Linux/glibc")
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: 8, dataWidth: 20, architecture: .arch2, objective: .elbo(beta: 1, likelihood: .learnedVariance), rng: &rng)
        let data = Dataset(rows: 256, cols: 20, values: rng.normalArray(count: 256 * 20))
        var c = EarlyDecoderTrainingConfiguration(); c.batchSize = 64; c.threads = threads; c.chunkRows = 32
        let t = EarlyDecoderTraining(decoder: decoder, train: data, configuration: c)
        let batches = (0..<4).map { b in Array(b * 64..<(b + 1) * 64)[...] }
        for b in batches { t.step(rows: b) }
        let fewest = fewestAllocations { for _ in 0..<5 { for b in batches { t.step(rows: b) } } }
        #expect(fewest == 0, "\(fewest) allocations in 20 warm training steps with \(threads) thread(s), in every window")
    }

    @Test(arguments: [1, 2])
    func inferenceStepAllocatesNothingOnceWarm(threads: Int) throws {
        try #require(pesvi_allocation_count() >= 0, "allocation counting needs Linux/glibc")
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: 8, dataWidth: 20, architecture: .arch3, objective: .reconstruction, rng: &rng)
        let x = Dataset(rows: 300, cols: 20, values: rng.normalArray(count: 300 * 20))
        let table = PosteriorTable(rows: 300, latent: 8, adam: AdamConfiguration(learningRate: 0.01), initialization: .standard, rng: &rng)
        let stepper = LatentStepper(decoder: decoder, threads: threads, chunkRows: 64, maxRows: 300)
        for s in 0..<3 { stepper.step(x, table, seed: 1, step: s) }
        var step = 3
        let fewest = fewestAllocations { for _ in 0..<10 { stepper.step(x, table, seed: 1, step: step); step += 1 } }
        #expect(fewest == 0, "\(fewest) allocations in 10 warm inference steps with \(threads) thread(s), in every window")
    }

    /// The guarded refinement's evaluation: antithetic pairs through the output layer at their
    /// means (``ChunkRequest/pairGram``), fixed noise drawn beforehand, latent gradients.
    @Test func pairedEvaluationAllocatesNothingOnceWarm() throws {
        try #require(pesvi_allocation_count() >= 0, "allocation counting needs Linux/glibc")
        var rng = RandomGenerator(seed: 2)
        let L = 8, d = 20, n = 64
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3, objective: .reconstruction, rng: &rng)
        let x = FloatBuffer(rng.normalArray(count: n * d)), mu = FloatBuffer(rng.normalArray(count: n * L))
        let lv = FloatBuffer(rng.uniformArray(count: n * L, low: -2, high: 0))
        let gram = FloatBuffer(decoder.outputGram())
        let noise = decoder.fixedPointNoise(seed: 3, firstPoint: 0, count: n, samples: 2, antithetic: true, rademacher: true)
        let ws = ChunkWorkspace(decoder: decoder, maxPoints: n, samples: 2)
        let gMu = FloatBuffer(count: n * L), gLv = FloatBuffer(count: n * L)
        let pp = UnsafeMutablePointer<Double>.allocate(capacity: n); defer { pp.deallocate() }
        var req = ChunkRequest(x: x.pointer, count: n, mu: mu.pointer, muStride: L, logVariance: lv.pointer, logVarianceStride: L)
        req.antithetic = true; req.pointNoise = UnsafePointer(noise.pointer); req.pairGram = UnsafePointer(gram.pointer)
        req.gradMu = gMu.pointer; req.gradLogVariance = gLv.pointer; req.gradientStride = L; req.perPoint = pp
        var r = RandomGenerator(seed: 0)
        for _ in 0..<3 { decoder.evaluate(req, workspace: ws, rng: &r) }
        let fewest = fewestAllocations { for _ in 0..<10 { decoder.evaluate(req, workspace: ws, rng: &r) } }
        #expect(fewest == 0, "\(fewest) allocations in 10 warm paired evaluations, in every window")
    }

    /// PE-SVI-GN's smoothed Krylov iteration (linearization, basis, projected solve, trial):
    /// with the basis in the first hidden layer's space (widths 10 → 12 → 9 → 6: h₁ < 2|z|, no
    /// last step), in ℝ^|z| without the last step, in ℝ^|z| with it, and in ℝ^|z| with it and a
    /// Krylov preconditioner.
    @Test(arguments: [(true, false, false), (false, false, false), (false, true, false), (false, true, true)])
    func gaussNewtonKrylovIterationAllocatesNothingOnceWarm(firstLayer: Bool, lastStep: Bool, preconditioned: Bool) throws {
        try #require(pesvi_allocation_count() >= 0, "allocation counting needs Linux/glibc")
        var rng = RandomGenerator(seed: 4)
        let L = 10, n = 32
        let decoder = GaussianDecoder(network: DenseNetwork(widths: [L, 12, 9, 6], rng: &rng), objective: .reconstruction)
        let x = Dataset(rows: n, cols: 6, values: rng.normalArray(count: n * 6))
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: n, smoothing: GaussNewtonSmoothing(iterations: 100, scale: 0.4, factor: 0.9),
                                       smoothedKrylovDimension: 4, smoothedKrylovLastStep: lastStep, smoothedKrylovFirstLayer: firstLayer,
                                       krylovPreconditioner: preconditioned ? (0..<(L * L)).map { $0 % (L + 1) == 0 ? 2 : 0.1 } : nil)
        #expect(gn.smoothedKrylovInFirstLayer == firstLayer && (gn.krylovOperands?.preconditioner != nil) == preconditioned)
        gn.prepareShared()
        let table = PosteriorTable(mu: rng.normalArray(count: n * L), logVariance: [Float](repeating: -18, count: n * L), latent: L)
        let state = PointState(count: n, damping: 1e-3, hiddenLayers: 2, lastSteps: L)
        defer { state.deallocate() }
        let fewest = fewestIterationAllocations(gn, x, table, state)
        #expect((0..<n).filter { !state.finished[$0] }.count > n / 2, "most points finished: the iterations measured did little")
        #expect(fewest == 0, "\(fewest) allocations in 2 warm smoothed Krylov iterations (first layer \(firstLayer), last step \(lastStep), preconditioned \(preconditioned)), in every window")
    }

    /// PE-SVI-GN's iteration on the ReLU decoder with the exact solve (dense H̃ through the
    /// active units, Cholesky in SIMD lanes, the linearization cache), Arch2 and Arch3.
    @Test(arguments: [[10, 12, 6], [10, 12, 9, 6]])
    func gaussNewtonExactIterationAllocatesNothingOnceWarm(widths: [Int]) throws {
        try #require(pesvi_allocation_count() >= 0, "allocation counting needs Linux/glibc")
        var rng = RandomGenerator(seed: 5)
        let L = widths[0], d = widths.last!, n = 32
        let decoder = GaussianDecoder(network: DenseNetwork(widths: widths, rng: &rng), objective: .reconstruction)
        let x = Dataset(rows: n, cols: d, values: rng.normalArray(count: n * d))
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: n, tolerance: 0, smoothing: .off)
        gn.prepareShared()
        let table = PosteriorTable(mu: rng.normalArray(count: n * L), logVariance: [Float](repeating: -18, count: n * L), latent: L)
        let hidden = widths.count - 2
        let state = PointState(count: n, damping: 1e-3,
                               cache: LinearizationCache(count: n, hiddenWidths: Array(widths.dropFirst().dropLast()), projectedWidth: widths[hidden]),
                               hiddenLayers: hidden)
        defer { state.deallocate() }
        let fewest = fewestIterationAllocations(gn, x, table, state)
        #expect((0..<n).filter { !state.finished[$0] }.count > n / 2, "most points finished: the iterations measured did little")
        #expect(fewest == 0, "\(fewest) allocations in 2 warm exact iterations (widths \(widths)), in every window")
    }

    /// The fewest heap allocations in two PE-SVI-GN iterations over all of `x`'s rows (one chunk,
    /// `gn`'s first workspace), after three to warm up, over ``fewestAllocations(windows:_:)``'s windows.
    func fewestIterationAllocations(_ gn: GaussNewtonRefinement, _ x: Dataset, _ table: PosteriorTable, _ state: PointState) -> Int64 {
        let n = x.rows
        let points = UnsafeMutablePointer<Int>.allocate(capacity: n); defer { points.deallocate() }
        for i in 0..<n { points[i] = i }
        let ws = gn.workspaces[0]
        for _ in 0..<3 { gn.iterateChunk(x, table, state, workspace: ws, points: points, count: n) }
        return fewestAllocations { for _ in 0..<2 { gn.iterateChunk(x, table, state, workspace: ws, points: points, count: n) } }
    }

    /// The fewest heap allocations counted over `windows` runs of `body`.
    func fewestAllocations(windows: Int = 5, _ body: () -> Void) -> Int64 {
        var fewest = Int64.max
        for _ in 0..<windows {
            let before = pesvi_allocation_count()
            body()
            fewest = min(fewest, Int64(pesvi_allocation_count() - before))
        }
        return fewest
    }
}
