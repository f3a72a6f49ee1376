import Foundation
import PESVIKernelsAVX512

/// Elementwise transcendental functions over flat buffers, vectorized with `SIMD16<Float>`.
///
/// Contract for every function: `y[i] = f(x[i])` for `i in 0..<count`; nothing outside
/// `0..<count` is read or written; `x` and `y` may be the same buffer (in place), but must not
/// otherwise overlap; `count` may be 0.
///
/// Accuracy (measured against Double `exp`/`log` by `VectorMathTests`):
/// - `exp`: relative error ≤ 1.5e-7 (measured maximum 8.3e-8, about 1.4 ulp) for x in
///   [−87.3, 88.72], where the result is a normal float. Below that, results are gradual-
///   underflow denormals (absolute error below one denormal step, 2^−149), and exp(x) = 0 for
///   x < −103.97.
///   exp(x) = +inf for x > 88.7228 (= ln(Float.greatestFiniteMagnitude)); exp(+inf) = +inf,
///   exp(−inf) = 0, exp(NaN) = NaN.
/// - `log`: relative error ≤ 1.5e-7 (measured maximum 7.9e-8) on positive floats, normal and
///   denormal (denormal inputs are rescaled by 2^23 first); log(1) = 0 exactly. log(±0) = −inf,
///   log(x < 0) = NaN, log(−inf) = NaN, log(+inf) = +inf, log(NaN) = NaN.
///
/// Method (Cephes `expf`/`logf`): exp by n = round(x·log2 e), r = x − n·ln 2 with a two-part
/// ln 2, a degree-6 polynomial in r, and a 2^n scale built from exponent bits (split into two
/// factors so results near overflow and in the denormal range are exact scalings).
/// log by an exponent/mantissa split with the mantissa in [√½, √2) and a degree-8 polynomial;
/// 16-lane blocks holding only positive normal finite floats skip the special-case patching.
/// The last `count % 16` elements go through the same kernel on a padded copy, so every
/// element gets bit-identical results whatever its position.
public enum VectorMath {
    /// y = exp(x). Overflow (x > 88.7228) gives +inf, underflow gives denormals then 0,
    /// NaN stays NaN. See the type's documentation for accuracy.
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        #if arch(x86_64)
        if wide { AVX512VectorMath.exp(x, y, count: count); return }
        #endif
        LaneMath.exp(x, y, count: count)
    }

    /// y = log(x). log(0) = −inf, log(negative) = NaN, log(+inf) = +inf, log(NaN) = NaN.
    /// See the type's documentation for accuracy.
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        #if arch(x86_64)
        if wide { AVX512VectorMath.log(x, y, count: count); return }
        #endif
        LaneMath.log(x, y, count: count)
    }

    /// y = exp(scale · x): the standard deviation exp(½ log σ²) with scale = 0.5.
    /// The product `scale · x` is rounded to Float first, then `exp` as above is applied.
    public static func expScaled(_ x: UnsafePointer<Float>, scale: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        #if arch(x86_64)
        if wide { AVX512VectorMath.expScaled(x, scale: scale, y, count: count); return }
        #endif
        LaneMath.expScaled(x, scale: scale, y, count: count)
    }

    /// y = τ·log(1 + e^{x/τ}) = max(x, 0) + τ·log(1 + e^{−|x|/τ}), the softplus at temperature
    /// τ > 0 (a ReLU smoothed over a width of about τ; → ReLU as τ → 0). The second form never
    /// overflows; `exp` and `log` as above (log of a value in [1, 2]); e^{−|x|/τ} is clamped at
    /// e^{−30} (below half a Float ulp of 1: no result changes, and exp stays out of the denormal
    /// range). In place when x == y.
    public static func softplus(_ x: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(tau > 0, "VectorMath.softplus: temperature must be > 0, got \(tau)")
        #if arch(x86_64)
        if wide { AVX512VectorMath.softplus(x, temperature: tau, y, count: count); return }
        #endif
        LaneMath.softplus(x, temperature: tau, y, count: count)
    }

    /// y = 1 − e^{−s/τ}: the softplus's derivative σ(x/τ) (the logistic sigmoid) from its
    /// output s = softplus_τ(x) alone (e^{s/τ} = 1 + e^{x/τ}). In [0, 1]; absolute error about
    /// one Float ulp of 1. In place when s == y.
    public static func softplusDerivative(output s: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(tau > 0, "VectorMath.softplusDerivative: temperature must be > 0, got \(tau)")
        #if arch(x86_64)
        if wide { AVX512VectorMath.softplusDerivative(output: s, temperature: tau, y, count: count); return }
        #endif
        LaneMath.softplusDerivative(output: s, temperature: tau, y, count: count)
    }

    /// ``softplus(_:temperature:_:count:)`` in place on each row r < `rows` of `x` (`columns`
    /// values a row, contiguous) at its own temperature τ = `temperatures[r·stride]`, or where
    /// τ ≤ 0 the ReLU (``Elementwise/reluForward(_:count:)``): the same values as a call per row,
    /// in one call.
    public static func softplusRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, temperatures: UnsafePointer<Float>, stride: Int) {
        softplusRows(x, x, rows: rows, columns: columns, temperatures: temperatures, stride: stride, derivative: false)
        for r in 0..<rows where !(temperatures[r * stride] > 0) { Elementwise.reluForward(x + r * columns, count: columns) }
    }

    /// ``softplusDerivative(output:temperature:_:count:)`` of each row r < `rows` of the outputs
    /// `s` into the same row of `y` at its own temperature τ = `temperatures[r·stride]`, or where
    /// τ ≤ 0 the ReLU's slope (1 where s > 0, else 0): the same values as a call per row.
    public static func softplusDerivativeRows(output s: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                              temperatures: UnsafePointer<Float>, stride: Int) {
        softplusRows(UnsafeMutablePointer(mutating: s), y, rows: rows, columns: columns, temperatures: temperatures, stride: stride, derivative: true)
        for r in 0..<rows where !(temperatures[r * stride] > 0) {
            let a = s + r * columns, out = y + r * columns
            for c in 0..<columns { out[c] = a[c] > 0 ? 1 : 0 }
        }
    }

    private static func softplusRows(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                     temperatures: UnsafePointer<Float>, stride: Int, derivative: Bool) {
        precondition(rows >= 0 && columns >= 0 && stride >= 0, "VectorMath.softplusRows: negative rows, columns or stride")
        #if arch(x86_64)
        if wide {
            AVX512VectorMath.softplusRows(x, y, rows: rows, columns: columns, temperatures: temperatures, stride: stride, derivative: derivative)
            return
        }
        #endif
        LaneMath.softplusRows(x, y, rows: rows, columns: columns, temperatures: temperatures, stride: stride, derivative: derivative)
    }

    /// Whether the kernels run as compiled for AVX-512 (``AVX512VectorMath``): where the GEMM
    /// does (``GEMMKernelKind/current``, so `PESVI_GEMM_KERNEL=avx2` sets both). The same bits
    /// either way; one 512-bit register per 16 lanes instead of two 256-bit halves.
    static let wide = GEMMKernelKind.current == .avx512

    // MARK: - Benchmark

    /// Speeds in nanoseconds per element, scalar library calls vs the vector kernels.
    public struct Timing: Sendable, CustomStringConvertible {
        public var count: Int
        public var expScalar: Double
        public var expVector: Double
        public var logScalar: Double
        public var logVector: Double
        public var description: String {
            func f(_ v: Double) -> String { String(format: "%.3f", v) }
            return "n=\(count): exp scalar \(f(expScalar)) ns/elt, vector \(f(expVector)) ns/elt; "
                + "log scalar \(f(logScalar)) ns/elt, vector \(f(logVector)) ns/elt"
        }
    }

    /// Measures `exp` and `log` on a buffer of `count` elements (inputs in [−10, 10] for exp,
    /// (0, 100] for log), best of `repetitions` passes, against the Foundation scalar loop.
    /// Costs about `repetitions · count · 10 ns`.
    public static func benchmark(count: Int = 4096, repetitions: Int = 200) -> Timing {
        precondition(count > 0 && repetitions > 0, "VectorMath.benchmark: count and repetitions must be positive")
        var xe = [Float](repeating: 0, count: count), xl = xe, out = xe
        for i in 0..<count {
            let u = Float(i) / Float(count)
            xe[i] = -10 + 20 * u
            xl[i] = 1e-3 + 100 * u
        }
        var sink: Float = 0
        func best(_ body: () -> Void) -> Double {
            var bestNs = Double.infinity
            for _ in 0..<repetitions {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                let t1 = DispatchTime.now().uptimeNanoseconds
                bestNs = min(bestNs, Double(t1 - t0))
            }
            return bestNs / Double(count)
        }
        return xe.withUnsafeBufferPointer { pe in
            xl.withUnsafeBufferPointer { pl in
                out.withUnsafeMutableBufferPointer { po in
                    let e = pe.baseAddress!, l = pl.baseAddress!, o = po.baseAddress!
                    let es = best { scalarExp(e, o, count: count); sink += o[count / 2] }
                    let ev = best { exp(e, o, count: count); sink += o[count / 2] }
                    let ls = best { scalarLog(l, o, count: count); sink += o[count / 2] }
                    let lv = best { log(l, o, count: count); sink += o[count / 2] }
                    if sink == 42 { print("") }  // keeps the results observable
                    return Timing(count: count, expScalar: es, expVector: ev, logScalar: ls, logVector: lv)
                }
            }
        }
    }

    /// The scalar library loops the vector kernels replaced (for benchmarks and tests).
    @inline(never)
    static func scalarExp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.exp(x[i]) }
    }

    @inline(never)
    static func scalarLog(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.log(x[i]) }
    }
}
