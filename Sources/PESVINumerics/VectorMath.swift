import Foundation

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
        apply(x, y, count: count, padding: 0, ExpKernel())
    }

    /// y = log(x). log(0) = −inf, log(negative) = NaN, log(+inf) = +inf, log(NaN) = NaN.
    /// See the type's documentation for accuracy.
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 1, LogKernel())
    }

    /// y = exp(scale · x): the standard deviation exp(½ log σ²) with scale = 0.5.
    /// The product `scale · x` is rounded to Float first, then `exp` as above is applied.
    public static func expScaled(_ x: UnsafePointer<Float>, scale: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 0, ExpScaledKernel(scale: SIMD16<Float>(repeating: scale)))
    }

    /// y = τ·log(1 + e^{x/τ}) = max(x, 0) + τ·log(1 + e^{−|x|/τ}), the softplus at temperature
    /// τ > 0 (a ReLU smoothed over a width of about τ; → ReLU as τ → 0). The second form never
    /// overflows; `exp` and `log` as above (log of a value in [1, 2]). In place when x == y.
    public static func softplus(_ x: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(tau > 0, "VectorMath.softplus: temperature must be > 0, got \(tau)")
        apply(x, y, count: count, padding: 0,
              SoftplusKernel(temperature: SIMD16<Float>(repeating: tau), minusInverse: SIMD16<Float>(repeating: -1 / tau)))
    }

    /// y = 1 − e^{−s/τ}: the softplus's derivative σ(x/τ) (the logistic sigmoid) from its
    /// output s = softplus_τ(x) alone (e^{s/τ} = 1 + e^{x/τ}). In [0, 1]; absolute error about
    /// one Float ulp of 1. In place when s == y.
    public static func softplusDerivative(output s: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        precondition(tau > 0, "VectorMath.softplusDerivative: temperature must be > 0, got \(tau)")
        apply(s, y, count: count, padding: 0, SoftplusDerivativeKernel(minusInverse: SIMD16<Float>(repeating: -1 / tau)))
    }

    /// The softplus kernels clamp their exponents at −30 (e^{−30} ≈ 9·10⁻¹⁴, below half a Float
    /// ulp of 1), which changes no result and keeps exp out of the denormal range.
    static let softplusExponentFloor: Float = 30

    // MARK: - Driver

    /// Runs `kernel` over full 16-lane blocks, then over a copy of the tail padded with
    /// `padding` (a value the kernel handles without special cases). The kernel is a generic
    /// parameter, not a closure: a closure was compiled as a function of its own taking SIMD16
    /// in four 128-bit halves, with exp and log as calls, which halved the kernels' vector width
    /// (`docs/BENCHMARKS.md`, twenty-fourth session); specialized per kernel type, its block
    /// code is inlined into this loop.
    @inline(__always)
    private static func apply<K: LaneKernel>(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, padding: Float, _ kernel: K
    ) {
        precondition(count >= 0, "VectorMath: negative count \(count)")
        let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
        let stride = MemoryLayout<SIMD16<Float>>.size
        let blocks = count / 16
        var b = 0
        while b < blocks {
            let v = xr.loadUnaligned(fromByteOffset: b * stride, as: SIMD16<Float>.self)
            yr.storeBytes(of: kernel.block(v), toByteOffset: b * stride, as: SIMD16<Float>.self)
            b += 1
        }
        let start = blocks * 16
        let rest = count - start
        if rest > 0 {
            var v = SIMD16<Float>(repeating: padding)
            for i in 0..<rest { v[i] = x[start + i] }
            let r = kernel.block(v)
            for i in 0..<rest { y[start + i] = r[i] }
        }
    }

    /// One elementwise function on 16 lanes, for ``apply(_:_:count:padding:_:)``.
    private protocol LaneKernel {
        func block(_ v: SIMD16<Float>) -> SIMD16<Float>
    }

    private struct ExpKernel: LaneKernel {
        @_transparent func block(_ v: SIMD16<Float>) -> SIMD16<Float> { exp16(v) }
    }

    private struct LogKernel: LaneKernel {
        @_transparent func block(_ v: SIMD16<Float>) -> SIMD16<Float> { log16(v) }
    }

    private struct ExpScaledKernel: LaneKernel {
        let scale: SIMD16<Float>
        @_transparent func block(_ v: SIMD16<Float>) -> SIMD16<Float> { exp16(v * scale) }
    }

    /// softplus_τ on 16 lanes (`minusInverse` = −1/τ).
    private struct SoftplusKernel: LaneKernel {
        let temperature: SIMD16<Float>, minusInverse: SIMD16<Float>
        @_transparent func block(_ v: SIMD16<Float>) -> SIMD16<Float> {
            let zero = SIMD16<Float>(repeating: 0), one = SIMD16<Float>(repeating: 1), floor = SIMD16<Float>(repeating: -softplusExponentFloor)
            // e^{−|x|/τ} below e^{−30} leaves 1 + e = 1 in Float: clamped there, so exp never
            // makes denormals (each costs a microcode assist on x86). Blends, not pointwiseMax
            // (which compiles to a loop over the lanes); NaN fails every comparison and stays NaN.
            let negative = v .< zero
            var u = v.replacing(with: -v, where: negative) * minusInverse
            u.replace(with: floor, where: u .< floor)
            // 1 + e^u lies in [1, 2] (or is NaN, which the sum below keeps): log's core directly,
            // without log16's check for special values.
            return v.replacing(with: zero, where: negative) + temperature * logCore(one + exp16(u), exponentOffset: zero)
        }
    }

    /// The softplus's derivative from its output on 16 lanes (`minusInverse` = −1/τ).
    private struct SoftplusDerivativeKernel: LaneKernel {
        let minusInverse: SIMD16<Float>
        @_transparent func block(_ v: SIMD16<Float>) -> SIMD16<Float> {
            let floor = SIMD16<Float>(repeating: -softplusExponentFloor)
            var u = v * minusInverse
            u.replace(with: floor, where: u .< floor)
            return SIMD16<Float>(repeating: 1) - exp16(u)
        }
    }

    // MARK: - Kernels

    /// exp on 16 lanes (Cephes expf polynomial).
    @_transparent
    static func exp16(_ x0: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        typealias I = SIMD16<Int32>
        // Clamp so that n stays in [−150, 128]; beyond, the result is 0 or +inf anyway.
        // Comparisons are false for NaN, so NaN passes through to the arithmetic below.
        var x = x0.replacing(with: 89.0, where: x0 .> 89.0)
        x.replace(with: -104.0, where: x .< -104.0)

        // n = round(x · log2 e) by the 1.5·2^23 trick: the integer sits in the low mantissa bits.
        let magic = V(repeating: 12_582_912.0)
        let tm = magic.addingProduct(x, V(repeating: 1.44269504088896341))
        let n = tm - magic
        let ni = unsafeBitCast(tm, to: I.self) &- I(repeating: 0x4B40_0000)

        // r = x − n·ln2 in two parts (0.693359375 is exact in 9 bits).
        var r = x.addingProduct(n, V(repeating: -0.693359375))
        r = r.addingProduct(n, V(repeating: 2.12194440e-4))

        var p = V(repeating: 1.9875691500e-4)
        p = V(repeating: 1.3981999507e-3).addingProduct(p, r)
        p = V(repeating: 8.3334519073e-3).addingProduct(p, r)
        p = V(repeating: 4.1665795894e-2).addingProduct(p, r)
        p = V(repeating: 1.6666665459e-1).addingProduct(p, r)
        p = V(repeating: 5.0000001201e-1).addingProduct(p, r)
        let r2 = r * r
        let e = (r.addingProduct(p, r2)) + V(repeating: 1)

        // 2^n = 2^n1 · 2^n2 with both halves normal, so n in [−150, 128] scales exactly
        // (one rounding at most, into the denormal range or to +inf).
        let n1 = ni &>> 1
        let n2 = ni &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: V.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: V.self)
        return e * s1 * s2
    }

    /// log on 16 lanes (Cephes logf polynomial). Blocks of positive normal finite floats take
    /// the short path; any other lane sends the block through the path with special cases.
    @inline(__always)
    static func log16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        // NaN fails both comparisons, so it takes the general path.
        let normal = (x .>= V(repeating: Float.leastNormalMagnitude)) .& (x .< V(repeating: .infinity))
        if all(normal) { return logCore(x, exponentOffset: V(repeating: 0)) }
        return logGeneral(x)
    }

    /// log with denormal inputs rescaled and the special values patched in.
    @inline(never)
    static func logGeneral(_ x0: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        // Denormals: scale by 2^23 into the normal range, remember −23 in the exponent.
        let tiny = x0 .< V(repeating: Float.leastNormalMagnitude)
        let x = x0.replacing(with: x0 * V(repeating: 8_388_608.0), where: tiny)
        let eAdj = V(repeating: 0).replacing(with: -23, where: tiny)
        var result = logCore(x, exponentOffset: eAdj)
        result.replace(with: -.infinity, where: x0 .== 0)
        result.replace(with: .nan, where: x0 .< 0)
        result.replace(with: .infinity, where: x0 .== .infinity)
        result.replace(with: x0, where: x0 .!= x0)
        return result
    }

    /// log for positive normal finite lanes (other lanes give garbage, never a trap).
    /// `exponentOffset` is added to the binary exponent (−23 for rescaled denormals).
    @_transparent
    static func logCore(_ x: SIMD16<Float>, exponentOffset: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        typealias I = SIMD16<Int32>
        let bits = unsafeBitCast(x, to: I.self)
        // x = m · 2^e with m in [0.5, 1).
        // (Integer → float by the 1.5·2^23 trick: exact for |e| < 2^22.)
        let ei = ((bits &>> 23) & 0xFF) &- 126
        var e = unsafeBitCast(ei &+ 0x4B40_0000, to: V.self) - V(repeating: 12_582_912.0) + exponentOffset
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: V.self)
        // Bring m into [√½, √2) (m − 1 into [√½ − 1, √2 − 1)), where the polynomial holds.
        let small = m .< V(repeating: 0.707106781186547524)
        e = e.replacing(with: e - 1, where: small)
        m = m.replacing(with: m + m, where: small) - 1

        let z = m * m
        var p = V(repeating: 7.0376836292e-2)
        p = V(repeating: -1.1514610310e-1).addingProduct(p, m)
        p = V(repeating: 1.1676998740e-1).addingProduct(p, m)
        p = V(repeating: -1.2420140846e-1).addingProduct(p, m)
        p = V(repeating: 1.4249322787e-1).addingProduct(p, m)
        p = V(repeating: -1.6668057665e-1).addingProduct(p, m)
        p = V(repeating: 2.0000714765e-1).addingProduct(p, m)
        p = V(repeating: -2.4999993993e-1).addingProduct(p, m)
        p = V(repeating: 3.3333331174e-1).addingProduct(p, m)
        var y = p * m * z
        y = y.addingProduct(e, V(repeating: -2.12194440e-4))
        y = y.addingProduct(z, V(repeating: -0.5))
        let result = m + y
        return result.addingProduct(e, V(repeating: 0.693359375))
    }

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
