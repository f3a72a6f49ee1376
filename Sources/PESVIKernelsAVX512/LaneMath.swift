// The 16-lane kernels of PESVINumerics' `VectorMath` (exp, log, and the softplus and its
// derivative), and the driver that runs one over a buffer.
//
// Everything here is `@inlinable`: the code is compiled into each module that calls it, with
// that module's flags. PESVINumerics (x86-64-v3) runs it on two 256-bit halves per
// `SIMD16<Float>`; `AVX512VectorMath` below, compiled in this target (x86-64-v4), runs it on one
// zmm register, and PESVINumerics calls those entry points only where `GEMMKernelKind.current`
// is `.avx512`. The operations are the same IEEE ones (with explicit fused multiply-adds), so
// both give the same bits (tested).

/// The lane kernels and their driver (see the file's header).
public enum LaneMath {
    /// The five functions of `VectorMath` over a buffer (their contracts there), as one call of
    /// ``apply(_:_:count:padding:_:)`` each: compiled into whichever module calls them.
    @inlinable @inline(__always)
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 0, ExpKernel())
    }
    @inlinable @inline(__always)
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 1, LogKernel())
    }
    @inlinable @inline(__always)
    public static func expScaled(_ x: UnsafePointer<Float>, scale: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 0, ExpScaledKernel(scale: SIMD16<Float>(repeating: scale)))
    }
    @inlinable @inline(__always)
    public static func softplus(_ x: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(x, y, count: count, padding: 0, SoftplusKernel(temperature: SIMD16<Float>(repeating: tau), minusInverse: SIMD16<Float>(repeating: -1 / tau)))
    }
    @inlinable @inline(__always)
    public static func softplusDerivative(output s: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        apply(s, y, count: count, padding: 0, SoftplusDerivativeKernel(minusInverse: SIMD16<Float>(repeating: -1 / tau)))
    }

    /// The softplus (`derivative` false, in place on `x`) or its derivative from the output
    /// (`derivative` true, `x` the outputs, into `y`) of the rows r < `rows` of `columns` values
    /// (row r at `x + r·columns`, `y + r·columns`) whose temperature τ = `temperatures[r·stride]`
    /// is > 0, each at its own τ; rows with τ ≤ 0 are left alone. One call for all the rows (the
    /// kernels' constants loaded once), each row's values as ``apply(_:_:count:padding:_:)``
    /// gives them.
    @inlinable @inline(__always)
    public static func softplusRows(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                    temperatures: UnsafePointer<Float>, stride: Int, derivative: Bool) {
        for r in 0..<rows {
            let tau = temperatures[r * stride]
            guard tau > 0 else { continue }
            let minusInverse = SIMD16<Float>(repeating: -1 / tau)
            if derivative {
                apply(x + r * columns, y + r * columns, count: columns, padding: 0, SoftplusDerivativeKernel(minusInverse: minusInverse))
            } else {
                apply(x + r * columns, x + r * columns, count: columns, padding: 0,
                      SoftplusKernel(temperature: SIMD16<Float>(repeating: tau), minusInverse: minusInverse))
            }
        }
    }

    /// The softplus kernels clamp their exponents at −30 (e^{−30} ≈ 9·10⁻¹⁴, below half a Float
    /// ulp of 1), which changes no result and keeps exp out of the denormal range.
    @inlinable public static var softplusExponentFloor: Float { 30 }

    // MARK: - Driver

    /// Runs `kernel` over full 16-lane blocks, then over a copy of the tail padded with
    /// `padding` (a value the kernel handles without special cases). The kernel is a generic
    /// parameter, not a closure: a closure was compiled as a function of its own taking SIMD16
    /// in four 128-bit halves, with exp and log as calls, which halved the kernels' vector width
    /// (`docs/BENCHMARKS.md`, twenty-fourth session); specialized per kernel type, its block
    /// code is inlined into this loop.
    @inlinable @inline(__always)
    public static func apply<K: LaneKernel>(
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
    public protocol LaneKernel {
        func block(_ v: SIMD16<Float>) -> SIMD16<Float>
    }

    public struct ExpKernel: LaneKernel {
        @inlinable public init() {}
        @_transparent public func block(_ v: SIMD16<Float>) -> SIMD16<Float> { exp16(v) }
    }

    public struct LogKernel: LaneKernel {
        @inlinable public init() {}
        @_transparent public func block(_ v: SIMD16<Float>) -> SIMD16<Float> { log16(v) }
    }

    public struct ExpScaledKernel: LaneKernel {
        public let scale: SIMD16<Float>
        @inlinable public init(scale: SIMD16<Float>) { self.scale = scale }
        @_transparent public func block(_ v: SIMD16<Float>) -> SIMD16<Float> { exp16(v * scale) }
    }

    /// softplus_τ on 16 lanes (`minusInverse` = −1/τ).
    public struct SoftplusKernel: LaneKernel {
        public let temperature: SIMD16<Float>, minusInverse: SIMD16<Float>
        @inlinable public init(temperature: SIMD16<Float>, minusInverse: SIMD16<Float>) {
            self.temperature = temperature
            self.minusInverse = minusInverse
        }
        @_transparent public func block(_ v: SIMD16<Float>) -> SIMD16<Float> {
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
    public struct SoftplusDerivativeKernel: LaneKernel {
        public let minusInverse: SIMD16<Float>
        @inlinable public init(minusInverse: SIMD16<Float>) { self.minusInverse = minusInverse }
        @_transparent public func block(_ v: SIMD16<Float>) -> SIMD16<Float> {
            let floor = SIMD16<Float>(repeating: -softplusExponentFloor)
            var u = v * minusInverse
            u.replace(with: floor, where: u .< floor)
            return SIMD16<Float>(repeating: 1) - exp16(u)
        }
    }

    // MARK: - Kernels

    /// exp on 16 lanes (Cephes expf polynomial).
    @_transparent
    public static func exp16(_ x0: SIMD16<Float>) -> SIMD16<Float> {
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
    @inlinable @inline(__always)
    public static func log16(_ x: SIMD16<Float>) -> SIMD16<Float> {
        typealias V = SIMD16<Float>
        // NaN fails both comparisons, so it takes the general path.
        let normal = (x .>= V(repeating: Float.leastNormalMagnitude)) .& (x .< V(repeating: .infinity))
        if all(normal) { return logCore(x, exponentOffset: V(repeating: 0)) }
        return logGeneral(x)
    }

    /// log with denormal inputs rescaled and the special values patched in.
    @inlinable @inline(never)
    public static func logGeneral(_ x0: SIMD16<Float>) -> SIMD16<Float> {
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
    public static func logCore(_ x: SIMD16<Float>, exponentOffset: SIMD16<Float>) -> SIMD16<Float> {
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

}

#if arch(x86_64)

/// `VectorMath`'s functions compiled for AVX-512 (this target's x86-64-v4): the same kernels
/// on one zmm register per 16 lanes. Call only where the CPU has AVX-512 (PESVINumerics'
/// `VectorMath` does so when `GEMMKernelKind.current` is `.avx512`). Not inlinable: their bodies
/// are the ones compiled here. Contracts: `VectorMath`'s functions of the same names.
public enum AVX512VectorMath {
    @inline(never)
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        LaneMath.exp(x, y, count: count)
    }

    @inline(never)
    public static func log(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        LaneMath.log(x, y, count: count)
    }

    @inline(never)
    public static func expScaled(_ x: UnsafePointer<Float>, scale: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        LaneMath.expScaled(x, scale: scale, y, count: count)
    }

    @inline(never)
    public static func softplus(_ x: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        LaneMath.softplus(x, temperature: tau, y, count: count)
    }

    @inline(never)
    public static func softplusRows(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                    temperatures: UnsafePointer<Float>, stride: Int, derivative: Bool) {
        LaneMath.softplusRows(x, y, rows: rows, columns: columns, temperatures: temperatures, stride: stride, derivative: derivative)
    }

    @inline(never)
    public static func softplusDerivative(output s: UnsafePointer<Float>, temperature tau: Float, _ y: UnsafeMutablePointer<Float>, count: Int) {
        LaneMath.softplusDerivative(output: s, temperature: tau, y, count: count)
    }
}

#endif
