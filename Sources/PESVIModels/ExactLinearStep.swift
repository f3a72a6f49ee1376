import Foundation
import PESVINumerics

/// Gauss-Newton's step for a linear decoder, taken exactly as an affine map of x (formed once
/// per refinement call, then applied to every point).
///
/// For a decoder with no hidden layer, D(z) = zW + b (W: |z| × d), Gauss-Newton's μ part
/// P(μ) = perD·‖x − μW − b‖²_Λ + ½β‖μ‖² (``GaussNewtonRefinement``) is quadratic in μ, so one
/// undamped step lands on its minimizer from any start:
///
///     μ* = (x − b)·M = x·M − c,   M = ΛWᵀH⁻¹ (d × |z|),   H = WΛWᵀ + βI,   c = b·M,
///
/// (reconstruction: Λ = I, β = 0), and σ in closed form is the same for every point:
/// σⱼ² = β/Hⱼⱼ for β > 0, else log σⱼ² at the refinement's floor (where the iterative path
/// would keep a start already below the floor; here the start is not read at all). Forming M costs one Cholesky of H (in Double) and a solve with d
/// right-hand sides; applying it, one product n × d by d × |z| (half the multiply-adds of an
/// Arch1 pseudo-encoder's pass, which writes 2|z| outputs).
///
/// Damping would only shorten this step: the quadratic model is the objective itself (the
/// gain ratio ρ is 1), which is why the iterative refinement's damped first step lands short
/// of the minimizer and needs further iterations.
///
/// **From a start, when the minimizer is not unique.** With the reconstruction objective
/// (β = 0) and H = WΛWᵀ singular (|z| > d, or W of lower rank), every μ with μW as close to
/// x − b as W allows is a minimizer. Then ``init(decoder:gram:precision:beta:logVarianceFloor:ridge:)``
/// with a `ridge` ε > 0 forms M = ΛWᵀ(H + εI)⁻¹ and the step from each point's start μ₀ is the
/// Gauss-Newton step with absolute damping ε, the minimum-norm step as ε → 0, taken twice
/// (iterated Tikhonov) and composed into one affine map per point:
///
///     μ₁ = μ₀ + (x − b − μ₀W)·M = (x − b)·M + μ₀·P,   P = I − W·M (|z| × |z|),
///     μ  = μ₁·P + (x − b)·M = (x − b)·M(I + P) + μ₀·P²,
///
/// which keeps the start's part in W's null space and fits the rest. Along a direction of H
/// with eigenvalue λ a fraction (ε/(λ + ε))² of the fit is left undone, so the objective
/// exceeds the minimum by at most the residual along W's directions of curvature below about
/// ε (damped, not inverted).
struct ExactLinearStep {
    let latent: Int
    let dataWidth: Int
    /// M, d × |z| row-major.
    let map: [Float]
    /// −c = −b·M (|z|), added to x·M.
    let negatedOffset: [Float]
    /// log σ² of every point (|z|).
    let logVariance: [Float]
    /// The smallest Cholesky pivot of H, squared, over H's largest diagonal entry.
    let pivotRatio: Double
    /// P = I − W·M (|z| × |z|, row-major) when the step starts from each point's μ₀ (a
    /// ridge was given), else nil.
    let startProjector: [Float]?

    /// The ridge of the minimum-norm step from the start, relative to H's largest diagonal
    /// entry: large enough that H + εI is well conditioned (the step's map is used in Float),
    /// small enough that, applied twice, the damped directions hold little of the fit (digits
    /// quick |z| = 64 and 128 Arch1, `pesvi evaluate`: expected reconstruction 4.5·10⁻⁷ and
    /// 9·10⁻⁹ against SVI's 2.8·10⁻⁵ and 5.2·10⁻⁵; docs/RESULTS.md).
    static let minimumNormRidge = 1e-5

    /// A smaller `pivotRatio` than this refuses the map: H is then (nearly) singular, the
    /// minimizer is not unique or not representable to Float precision, and the iterative
    /// refinement, which freezes such coordinates, is used instead.
    static let minimumPivotRatio = 1e-9

    /// Forms the map for `decoder`, which must be linear, from `gram` = WΛWᵀ (|z| × |z|) and
    /// Λ (`precision`, d) as ``GaussNewtonRefinement/prepareGram()`` computes them. Returns nil
    /// when H's pivots fall under ``minimumPivotRatio``.
    ///
    /// `ridge` > 0 (relative to H's largest diagonal entry): the step from each point's start
    /// with H + ε·I, ε = ridge × that entry (see the type's notes; for a singular H).
    init?(decoder: GaussianDecoder, gram: UnsafePointer<Float>, precision: UnsafePointer<Float>, beta: Double,
          logVarianceFloor: Float, ridge: Double = 0) {
        let net = decoder.network
        precondition(net.layerCount == 1, "ExactLinearStep: the decoder has hidden layers")
        let L = decoder.latent, d = decoder.dataWidth
        latent = L
        dataWidth = d
        let w = UnsafePointer(net.parameters.pointer + net.weightOffsets[0])
        let bias = UnsafePointer(net.parameters.pointer + net.biasOffsets[0])
        var shift = beta
        let factored: (u: [Double], diagonal: [Double], pivotRatio: Double)?
        if ridge > 0 {
            // H in Double sums: with a ridge the near-null directions of H have curvature ε, so
            // an error E in H mixes them with the others by about E/ε — Float's H (E ~ 10⁻⁷ of
            // its largest entry) moved the minimum-norm step by 1 % (test); Double's does not.
            var upper = [Double](repeating: 0, count: L * L)
            let wd = (0..<(L * d)).map { Double(w[$0]) }
            let wl = (0..<(L * d)).map { Double(w[$0]) * Double(precision[$0 % d]) }
            for r in 0..<L {
                for c in r..<L {
                    // Four partial sums (independent chains), then their total.
                    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                    var q = 0
                    while q + 4 <= d {
                        s0 += wl[r * d + q] * wd[c * d + q]; s1 += wl[r * d + q + 1] * wd[c * d + q + 1]
                        s2 += wl[r * d + q + 2] * wd[c * d + q + 2]; s3 += wl[r * d + q + 3] * wd[c * d + q + 3]
                        q += 4
                    }
                    while q < d { s0 += wl[r * d + q] * wd[c * d + q]; q += 1 }
                    upper[r * L + c] = (s0 + s1) + (s2 + s3)
                }
            }
            var maxDiag = 0.0
            for j in 0..<L { maxDiag = max(maxDiag, upper[j * L + j]) }
            shift += ridge * maxDiag
            factored = ExactLinearStep.factor(upper: upper, latent: L, beta: shift)
        } else {
            factored = ExactLinearStep.factor(gram: gram, latent: L, beta: shift)
        }
        guard let (u, hDiag, ratio) = factored else { return nil }
        pivotRatio = ratio
        // Mᵀ = H⁻¹ W Λ (|z| × d), 32 right-hand sides (columns of WΛ) at a time, so the block
        // being solved stays in L1 (one sweep over all d columns streams it through L2 |z| times).
        let block = 32
        var map = [Float](repeating: 0, count: d * L)
        var offsetSums = [Double](repeating: 0, count: L)
        var rhs = [Double](repeating: 0, count: L * block)
        u.withUnsafeBufferPointer { up in
            var c0 = 0
            while c0 < d {
                let m = min(block, d - c0)
                rhs.withUnsafeMutableBufferPointer { rp in
                    let r = rp.baseAddress!
                    for j in 0..<L { for q in 0..<m { r[j * m + q] = Double(w[j * d + c0 + q]) * Double(precision[c0 + q]) } }
                    GaussNewtonRefinement.choleskySubstituteMany(up.baseAddress!, r, n: L, columns: m)
                    for q in 0..<m {
                        let bq = Double(bias[c0 + q])
                        for j in 0..<L { map[(c0 + q) * L + j] = Float(r[j * m + q]); offsetSums[j] += bq * r[j * m + q] }
                    }
                }
                c0 += m
            }
        }
        var offset = offsetSums.map { Float(-$0) }
        guard map.allSatisfy(\.isFinite), offset.allSatisfy(\.isFinite) else { return nil }
        // σ's closed form reads H without the ridge: Hⱼⱼ = diagonal − ridge.
        logVariance = beta > 0 ? hDiag.map { Float(Foundation.log(beta / ($0 - (shift - beta)))) } : [Float](repeating: logVarianceFloor, count: L)
        if ridge > 0 {
            // P = I − W·M (one product, then the identity added).
            var p = [Float](repeating: 0, count: L * L)
            map.withUnsafeBufferPointer { mp in
                p.withUnsafeMutableBufferPointer { pp in
                    gemm(.none, .none, m: L, n: L, k: d, alpha: -1, a: w, lda: d, b: mp.baseAddress!, ldb: L, beta: 0, c: pp.baseAddress!, ldc: L)
                }
            }
            for i in 0..<L { p[i * L + i] += 1 }
            // The damped step taken twice, composed into one map (iterated Tikhonov): from
            // μ₁ = μ₀P + yM (y = x − b), μ₂ = μ₁P + yM = μ₀P² + y·M(I + P). Along a direction of
            // curvature λ the ridge leaves a fraction ε/(λ + ε) of the fit undone; twice, its
            // square (a plain ridge of 10⁻⁵ missed 1 % of the minimum-norm step on a 9 × 6 W
            // whose smallest curvature is 10⁻³ of the largest: test).
            var twice = map, squared = [Float](repeating: 0, count: L * L)
            map.withUnsafeBufferPointer { mp in
                p.withUnsafeBufferPointer { pp in
                    twice.withUnsafeMutableBufferPointer { tp in
                        gemm(.none, .none, m: d, n: L, k: L, alpha: 1, a: mp.baseAddress!, lda: L, b: pp.baseAddress!, ldb: L,
                             beta: 1, c: tp.baseAddress!, ldc: L)
                    }
                    squared.withUnsafeMutableBufferPointer { sp in
                        gemm(.none, .none, m: L, n: L, k: L, alpha: 1, a: pp.baseAddress!, lda: L, b: pp.baseAddress!, ldb: L,
                             beta: 0, c: sp.baseAddress!, ldc: L)
                    }
                }
            }
            var sums = [Double](repeating: 0, count: L)
            for q in 0..<d { let bq = Double(bias[q]); for j in 0..<L { sums[j] += bq * Double(twice[q * L + j]) } }
            offset = sums.map { Float(-$0) }
            guard twice.allSatisfy(\.isFinite), squared.allSatisfy(\.isFinite), offset.allSatisfy(\.isFinite) else { return nil }
            map = twice
            startProjector = squared
        } else {
            startProjector = nil
        }
        self.map = map
        negatedOffset = offset
    }

    /// U with UᵀU = H = G + βI (|z| × |z|, Double), H's diagonal, and the pivot ratio; nil when
    /// the ratio is under ``minimumPivotRatio`` (or H is not finite).
    static func factor(gram: UnsafePointer<Float>, latent L: Int, beta: Double) -> (u: [Double], diagonal: [Double], pivotRatio: Double)? {
        var upper = [Double](repeating: 0, count: L * L)
        for r in 0..<L { for c in r..<L { upper[r * L + c] = Double(gram[r * L + c]) } }
        return factor(upper: upper, latent: L, beta: beta)
    }

    /// ``factor(gram:latent:beta:)`` from G's upper triangle in Double (row-major |z| × |z|).
    static func factor(upper: [Double], latent L: Int, beta: Double) -> (u: [Double], diagonal: [Double], pivotRatio: Double)? {
        var u = upper
        var maxDiag = 0.0
        for r in 0..<L {
            u[r * L + r] += beta
            maxDiag = max(maxDiag, u[r * L + r])
        }
        guard maxDiag > 0, maxDiag.isFinite, u.allSatisfy(\.isFinite) else { return nil }
        let diagonal = (0..<L).map { u[$0 * L + $0] }
        u.withUnsafeMutableBufferPointer {
            GaussNewtonRefinement.choleskyFactor($0.baseAddress!, n: L, pivotTolerance: GaussNewtonRefinement.relativePivotTolerance * maxDiag)
        }
        var smallest = Double.infinity
        for j in 0..<L { smallest = min(smallest, u[j * L + j] * u[j * L + j]) }
        let ratio = smallest / maxDiag
        return ratio >= minimumPivotRatio ? (u, diagonal, ratio) : nil
    }

    /// μ (n × |z|) = x·M − c for the rows of `x` (n × d), plus start·P when the step starts
    /// from each point's μ₀ (`start`, n × |z|, required then), and every row's log σ² (n × |z|).
    /// Rows are independent, so the result does not depend on `threads`.
    func apply(_ x: Dataset, start origins: UnsafePointer<Float>? = nil, threads: Int, chunkRows: Int = 256) -> (mu: [Float], logVariance: [Float]) {
        precondition(x.cols == dataWidth, "ExactLinearStep: data has \(x.cols) columns, the decoder \(dataWidth)")
        precondition((startProjector == nil) == (origins == nil), "ExactLinearStep: a start is needed exactly for the step from the start")
        let L = latent, d = dataWidth, n = x.rows
        if n == 0 || L == 0 { return ([], []) }
        let runner = ChunkRunner(threads: threads, chunkRows: chunkRows)
        var lv: [Float] = []
        let mu = [Float](unsafeUninitializedCapacity: n * L) { muBuffer, muCount in
            lv = [Float](unsafeUninitializedCapacity: n * L) { lvBuffer, lvCount in
                let muOut = muBuffer.baseAddress!, lvOut = lvBuffer.baseAddress!
                map.withUnsafeBufferPointer { mp in
                    negatedOffset.withUnsafeBufferPointer { op in
                        logVariance.withUnsafeBufferPointer { vp in
                            runner.run(rows: n) { _, _, start, count in
                                let out = muOut + start * L
                                gemm(.none, .none, m: count, n: L, k: d, alpha: 1, a: x.values.pointer + start * d, lda: d,
                                     b: mp.baseAddress!, ldb: L, beta: 0, c: out, ldc: L)
                                Elementwise.addBias(op.baseAddress!, to: out, rows: count, cols: L)
                                if let origins, let projector = self.startProjector {
                                    // μ += μ₀·P
                                    projector.withUnsafeBufferPointer { pp in
                                        gemm(.none, .none, m: count, n: L, k: L, alpha: 1, a: origins + start * L, lda: L,
                                             b: pp.baseAddress!, ldb: L, beta: 1, c: out, ldc: L)
                                    }
                                }
                                for i in 0..<count { (lvOut + (start + i) * L).initialize(from: vp.baseAddress!, count: L) }
                            }
                        }
                    }
                }
                lvCount = n * L
            }
            muCount = n * L
        }
        return (mu, lv)
    }
}
