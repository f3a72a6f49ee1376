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

    /// A smaller `pivotRatio` than this refuses the map: H is then (nearly) singular, the
    /// minimizer is not unique or not representable to Float precision, and the iterative
    /// refinement, which freezes such coordinates, is used instead.
    static let minimumPivotRatio = 1e-9

    /// Forms the map for `decoder`, which must be linear, from `gram` = WΛWᵀ (|z| × |z|) and
    /// Λ (`precision`, d) as ``GaussNewtonRefinement/prepareGram()`` computes them. Returns nil
    /// when H's pivots fall under ``minimumPivotRatio``.
    init?(decoder: GaussianDecoder, gram: UnsafePointer<Float>, precision: UnsafePointer<Float>, beta: Double,
          logVarianceFloor: Float) {
        let net = decoder.network
        precondition(net.layerCount == 1, "ExactLinearStep: the decoder has hidden layers")
        let L = decoder.latent, d = decoder.dataWidth
        latent = L
        dataWidth = d
        guard let (u, hDiag, ratio) = ExactLinearStep.factor(gram: gram, latent: L, beta: beta) else { return nil }
        pivotRatio = ratio
        // Mᵀ = H⁻¹ W Λ (|z| × d), 32 right-hand sides (columns of WΛ) at a time, so the block
        // being solved stays in L1 (one sweep over all d columns streams it through L2 |z| times).
        let w = UnsafePointer(net.parameters.pointer + net.weightOffsets[0])
        let bias = UnsafePointer(net.parameters.pointer + net.biasOffsets[0])
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
        let offset = offsetSums.map { Float(-$0) }
        guard map.allSatisfy(\.isFinite), offset.allSatisfy(\.isFinite) else { return nil }
        self.map = map
        negatedOffset = offset
        logVariance = beta > 0 ? hDiag.map { Float(Foundation.log(beta / $0)) } : [Float](repeating: logVarianceFloor, count: L)
    }

    /// U with UᵀU = H = G + βI (|z| × |z|, Double), H's diagonal, and the pivot ratio; nil when
    /// the ratio is under ``minimumPivotRatio`` (or H is not finite).
    static func factor(gram: UnsafePointer<Float>, latent L: Int, beta: Double) -> (u: [Double], diagonal: [Double], pivotRatio: Double)? {
        var u = [Double](repeating: 0, count: L * L)
        var maxDiag = 0.0
        for r in 0..<L {
            for c in r..<L { u[r * L + c] = Double(gram[r * L + c]) }
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

    /// μ (n × |z|) = x·M − c for the rows of `x` (n × d), and every row's log σ² (n × |z|).
    /// Rows are independent, so the result does not depend on `threads`.
    func apply(_ x: Dataset, threads: Int, chunkRows: Int = 256) -> (mu: [Float], logVariance: [Float]) {
        precondition(x.cols == dataWidth, "ExactLinearStep: data has \(x.cols) columns, the decoder \(dataWidth)")
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
