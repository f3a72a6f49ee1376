/// Elementwise and reduction kernels over flat row-major float32 buffers: what an MLP's
/// forward and backward passes need besides matrix products.
///
/// All functions are unchecked: the caller guarantees the buffers hold the stated counts.
/// Loops run over raw pointers with 16-lane SIMD bodies and scalar tails.
public enum Elementwise {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }
    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// y[r·cols + c] += bias[c] for r in 0..<rows, c in 0..<cols (y is rows×cols, packed).
    public static func addBias(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows { add(bias, to: y + r * cols, count: cols) }
    }

    /// y[i] += x[i].
    public static func add(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count { store(load(y + i) + load(x + i), y + i); i += 16 }
        while i < count { y[i] += x[i]; i += 1 }
    }

    /// y[i] += alpha · x[i] (BLAS saxpy).
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let a = SIMD16<Float>(repeating: alpha)
        while i + 16 <= count { store(load(y + i).addingProduct(a, load(x + i)), y + i); i += 16 }
        while i < count { y[i] += alpha * x[i]; i += 1 }
    }

    /// x[i] *= alpha.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        var i = 0
        let a = SIMD16<Float>(repeating: alpha)
        while i + 16 <= count { store(load(x + i) * a, x + i); i += 16 }
        while i < count { x[i] *= alpha; i += 1 }
    }

    /// x[i] = value.
    public static func fill(_ x: UnsafeMutablePointer<Float>, with value: Float, count: Int) {
        x.update(repeating: value, count: count)
    }

    /// In-place ReLU: x[i] = max(x[i], 0).
    public static func reluForward(_ x: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let z = SIMD16<Float>(repeating: 0)
        while i + 16 <= count { store(pointwiseMax(load(x + i), z), x + i); i += 16 }
        while i < count { x[i] = max(x[i], 0); i += 1 }
    }

    /// ReLU backward, in place on the gradient: g[i] = 0 where the ReLU output y[i] ≤ 0.
    /// (y > 0 exactly where the pre-activation was > 0, so the output serves as the mask.)
    public static func reluBackward(output y: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        let z = SIMD16<Float>(repeating: 0)
        while i + 16 <= count {
            let keep = load(y + i) .> z
            store(load(g + i).replacing(with: z, where: .!keep), g + i)
            i += 16
        }
        while i < count { if !(y[i] > 0) { g[i] = 0 }; i += 1 }
    }

    /// Column sums of a rows×cols matrix: out[c] (+)= Σ_r x[r·cols + c].
    /// With `accumulate == false`, `out` is overwritten.
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if !accumulate { out.update(repeating: 0, count: cols) }
        for r in 0..<rows { add(x + r * cols, to: out, count: cols) }
    }

    /// Σ x[i] with SIMD accumulators (the summation order differs from a scalar loop).
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { acc += load(x + i); i += 16 }
        var s = acc.sum()
        while i < count { s += x[i]; i += 1 }
        return s
    }

    /// Σ (a[i] − b[i])², accumulated in Float SIMD lanes and summed in Double.
    public static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { let d = load(a + i) - load(b + i); acc.addProduct(d, d); i += 16 }
        var s = Double(acc.sum())
        while i < count { let d = Double(a[i] - b[i]); s += d * d; i += 1 }
        return s
    }

    /// Σ a[i]·b[i], accumulated in Float SIMD lanes and summed in Double.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { acc.addProduct(load(a + i), load(b + i)); i += 16 }
        var s = Double(acc.sum())
        while i < count { s += Double(a[i] * b[i]); i += 1 }
        return s
    }

    /// Σ x[i]².
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { let v = load(x + i); acc.addProduct(v, v); i += 16 }
        var s = Double(acc.sum())
        while i < count { s += Double(x[i] * x[i]); i += 1 }
        return s
    }

    /// Residual and its squared sum in one pass: r[i] = a[i] − b[i]; returns Σ r[i]².
    public static func residual(_ a: UnsafePointer<Float>, minus b: UnsafePointer<Float>, into r: UnsafeMutablePointer<Float>, count: Int) -> Double {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { let d = load(a + i) - load(b + i); store(d, r + i); acc.addProduct(d, d); i += 16 }
        var s = Double(acc.sum())
        while i < count { let d = a[i] - b[i]; r[i] = d; s += Double(d * d); i += 1 }
        return s
    }

    /// Weighted squared residual, the data term of a Gaussian likelihood with precision w:
    /// with rᵢ = a[i] − b[i] and (when `into` is given) out[i] = rᵢ·w[i], returns
    /// Σᵢ Double(rᵢ·(rᵢ·w[i])). Every term is the Float product a scalar loop would form; the
    /// terms are summed in Double, in 16 interleaved partial sums (so the total can differ from
    /// an in-order sum in the last bits, never by Float accumulation error).
    public static func weightedSquaredResidual(_ a: UnsafePointer<Float>, minus b: UnsafePointer<Float>,
                                               weights w: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>?,
                                               count: Int) -> Double {
        var lo = SIMD8<Double>(repeating: 0), hi = SIMD8<Double>(repeating: 0)
        var i = 0
        while i + 16 <= count {
            let r = load(a + i) - load(b + i)
            let wr = r * load(w + i)
            if let out { store(wr, out + i) }
            let t = r * wr
            lo += SIMD8<Double>(t.lowHalf)
            hi += SIMD8<Double>(t.highHalf)
            i += 16
        }
        var s = (lo + hi).sum()
        while i < count {
            let r = a[i] - b[i], wr = r * w[i]
            out?[i] = wr
            s += Double(r * wr)
            i += 1
        }
        return s
    }

    /// True when every x[i] is finite.
    public static func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        // x − x is 0 for finite x and NaN for ±inf and NaN; NaN propagates through the sum.
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count { let v = load(x + i); acc += v - v; i += 16 }
        var s = acc.sum()
        while i < count { s += x[i] - x[i]; i += 1 }
        return s == 0
    }
}
