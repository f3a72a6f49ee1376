import PESVINumerics

/// Test-time SVI machinery with a frozen decoder: evaluates, and takes Adam steps on, every
/// row of a posterior table for the matching rows of a dataset, chunk-parallel.
///
/// Used for SVI inference from a random start, for PE-SVI refinement from the pseudo-encoder's
/// start, and for the validation rows during early decoder training.
public final class LatentStepper: ParallelJob, @unchecked Sendable {
    public let decoder: GaussianDecoder
    public let runner: ChunkRunner
    let workspaces: [ChunkWorkspace]
    /// The decoder's weights packed for the workspaces, if `packWeights` asked for them.
    let packedWeights: PackedWeights?
    let gradMu: [FloatBuffer]
    let gradLogVariance: [FloatBuffer]
    let perPointScratch: [UnsafeMutablePointer<Double>]
    let chunkTotals: SharedDoubles

    /// `packWeights`: pack the decoder's weights (``PackedWeights``) for test-time inference:
    /// they are a snapshot, taken again by ``refreshPackedWeights()`` (which the caller runs
    /// after the decoder changes; not for the validation rows during training, whose decoder
    /// changes between uses).
    public init(decoder: GaussianDecoder, threads: Int, chunkRows: Int = 128, samples: Int = 1, maxRows: Int = 1 << 20,
                packWeights: Bool = false) {
        self.decoder = decoder
        runner = ChunkRunner(threads: threads, chunkRows: chunkRows)
        let L = decoder.latent
        let packed = packWeights ? PackedWeights(network: decoder.network) : nil
        packedWeights = packed
        workspaces = (0..<threads).map { _ in ChunkWorkspace(decoder: decoder, maxPoints: chunkRows, samples: samples, packedWeights: packed) }
        gradMu = (0..<threads).map { _ in FloatBuffer(count: chunkRows * L) }
        gradLogVariance = (0..<threads).map { _ in FloatBuffer(count: chunkRows * L) }
        perPointScratch = (0..<threads).map { _ in
            let p = UnsafeMutablePointer<Double>.allocate(capacity: chunkRows)
            p.initialize(repeating: 0, count: chunkRows)
            return p
        }
        chunkTotals = SharedDoubles(count: runner.chunkCount(rows: maxRows))
    }

    deinit { perPointScratch.forEach { $0.deallocate() } }

    /// Packs the decoder's current weights again for the workspaces (if it packs them).
    public func refreshPackedWeights() { packedWeights?.refresh() }

    func totals(rows: Int) -> SharedDoubles {
        runner.chunkCount(rows: rows) <= chunkTotals.count ? chunkTotals : SharedDoubles(count: runner.chunkCount(rows: rows))
    }

    /// Σᵢ fᵢ over all rows at the table's current values, without updating anything.
    /// `perPoint` (rows values) receives each fᵢ if given; `atMean` evaluates at z = μ.
    public func evaluate(_ x: Dataset, _ table: PosteriorTable, seed: UInt64, step: Int,
                         atMean: Bool = false, perPoint: UnsafeMutablePointer<Double>? = nil,
                         perPointSquaredError: UnsafeMutablePointer<Double>? = nil) -> Double {
        precondition(x.rows == table.rows && x.cols == decoder.dataWidth && table.latent == decoder.latent,
                     "evaluate: data \(x.rows)×\(x.cols), table \(table.rows)×\(table.latent), decoder \(decoder.latent)→\(decoder.dataWidth)")
        let tot = totals(rows: x.rows)
        let L = table.latent, d = x.cols
        runner.run(rows: x.rows) { t, c, start, n in
            var rng = ChunkRunner.generator(seed: seed, step: step, chunk: c)
            var req = ChunkRequest(x: x.values.pointer + start * d, count: n,
                                   mu: table.mu.pointer + start * L, muStride: L,
                                   logVariance: table.logVariance.pointer + start * L, logVarianceStride: L)
            req.atMean = atMean
            req.perPoint = perPoint.map { $0 + start }
            req.perPointSquaredError = perPointSquaredError.map { $0 + start }
            tot.pointer[c] = self.decoder.evaluate(req, workspace: self.workspaces[t], rng: &rng)
        }
        var s = 0.0
        for c in 0..<runner.chunkCount(rows: x.rows) { s += tot.pointer[c] }
        return s
    }

    /// One Adam step (at the table's configuration) on every row for which `active` is nil or
    /// true. Returns Σᵢ fᵢ over the stepped rows, measured before the step. `perPoint`
    /// receives each stepped row's fᵢ. Rows not active are neither evaluated nor changed.
    /// `learningRateScale`, if given, multiplies row i's rate. Allocates nothing once warm.
    @discardableResult
    public func step(_ x: Dataset, _ table: PosteriorTable, seed: UInt64, step: Int,
                     active: UnsafePointer<Bool>? = nil, learningRateScale: UnsafePointer<Float>? = nil,
                     perPoint: UnsafeMutablePointer<Double>? = nil) -> Double {
        precondition(x.rows == table.rows && x.cols == decoder.dataWidth && table.latent == decoder.latent,
                     "step: data \(x.rows)×\(x.cols), table \(table.rows)×\(table.latent), decoder \(decoder.latent)→\(decoder.dataWidth)")
        let tot = totals(rows: x.rows)
        call = StepCall(x: x, table: table, seed: seed, step: step, active: active, learningRateScale: learningRateScale,
                        perPoint: perPoint, totals: tot)
        runner.run(rows: x.rows, job: self)
        call = nil
        var s = 0.0
        for c in 0..<runner.chunkCount(rows: x.rows) { s += tot.pointer[c] }
        return s
    }

    /// The arguments of the step in progress, read by the threads running it.
    struct StepCall {
        let x: Dataset, table: PosteriorTable, seed: UInt64, step: Int
        let active: UnsafePointer<Bool>?, learningRateScale: UnsafePointer<Float>?
        let perPoint: UnsafeMutablePointer<Double>?, totals: SharedDoubles
    }
    var call: StepCall? = nil

    public func run(thread t: Int, of threads: Int) {
        guard let a = call else { return }
        runner.forEachChunk(rows: a.x.rows, thread: t, of: threads) { c, start, n in
            stepChunk(a, thread: t, chunk: c, start: start, count: n)
        }
    }

    func stepChunk(_ a: StepCall, thread t: Int, chunk c: Int, start: Int, count n: Int) {
        let L = a.table.latent, d = a.x.cols, x = a.x, table = a.table
        var rng = ChunkRunner.generator(seed: a.seed, step: a.step, chunk: c)
        let gm = gradMu[t].pointer, gl = gradLogVariance[t].pointer
        let pp = perPointScratch[t]
        var total = 0.0
        var i = 0
        // Evaluate runs of consecutive active rows (all rows when `active` is nil).
        while i < n {
            if let active = a.active, !active[start + i] { i += 1; continue }
            var j = i + 1
            if let active = a.active { while j < n && active[start + j] { j += 1 } } else { j = n }
            let s0 = start + i, m = j - i
            var req = ChunkRequest(x: x.values.pointer + s0 * d, count: m,
                                   mu: table.mu.pointer + s0 * L, muStride: L,
                                   logVariance: table.logVariance.pointer + s0 * L, logVarianceStride: L)
            req.gradMu = gm; req.gradLogVariance = gl; req.gradientStride = L
            req.perPoint = pp
            total += decoder.evaluate(req, workspace: workspaces[t], rng: &rng)
            var memo = AdamFactorMemo()
            for k in 0..<m {
                table.updateRow(s0 + k, gradMu: gm + k * L, gradLogVariance: gl + k * L,
                                learningRateScale: a.learningRateScale?[s0 + k] ?? 1, memo: &memo)
                a.perPoint?[s0 + k] = pp[k]
            }
            i = j
        }
        a.totals.pointer[c] = total
    }
}
