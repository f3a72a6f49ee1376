import Foundation
import Testing
@testable import PESVINumerics
import PESVIKernelsAVX512

/// Accuracy, special values, tails and aliasing of the vectorized `VectorMath` kernels.
@Suite struct VectorMathTests {
    /// Documented bounds (see `VectorMath`): 1.5e-7 ≈ 2.5 · 2^−24 (measured: 8.3e-8 and 7.9e-8).
    static let expRelBound = 1.5e-7
    static let logRelBound = 1.5e-7

    // MARK: helpers

    static func apply(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                if let a = px.baseAddress, let b = py.baseAddress { f(a, b, x.count) }
            }
        }
        return y
    }
    static func vexp(_ x: [Float]) -> [Float] { apply({ VectorMath.exp($0, $1, count: $2) }, x) }
    static func vlog(_ x: [Float]) -> [Float] { apply({ VectorMath.log($0, $1, count: $2) }, x) }

    /// Largest |y − ref| / |ref| with ref computed in Double.
    static func maxRel(_ x: [Float], _ y: [Float], _ ref: (Double) -> Double) -> (err: Double, at: Float) {
        var worst = 0.0, at: Float = 0
        for i in x.indices {
            let r = ref(Double(x[i]))
            let e = abs(Double(y[i]) - r) / abs(r)
            if !(e <= worst) { worst = e; at = x[i] }  // NaN counts as worst
        }
        return (worst, at)
    }

    // MARK: accuracy

    @Test func expDenseSweepRelativeError() {
        // 2 million points over the range where exp is a normal float.
        let n = 2_000_000
        let lo: Float = -87.3, hi: Float = 88.72
        var x = (0..<n).map { lo + (hi - lo) * Float($0) / Float(n - 1) }
        // Plus every float near 0, where r = x exactly and the polynomial alone matters.
        var b = Float(-1).bitPattern
        while Float(bitPattern: b) < -1e-3 { x.append(Float(bitPattern: b)); b -= 97 }
        x += (0..<100_000).map { Float($0 - 50_000) * 2e-8 }
        let y = Self.vexp(x)
        let (err, at) = Self.maxRel(x, y, Foundation.exp)
        #expect(err <= Self.expRelBound, "exp max relative error \(err) at x = \(at)")
    }

    @Test func expDenormalRangeIsGradualUnderflow() {
        let n = 200_000
        let x = (0..<n).map { -103.9 + (-87.34 + 103.9) * Float($0) / Float(n - 1) }
        let y = Self.vexp(x)
        let denormalStep = Double(Float.leastNonzeroMagnitude)
        var worst = 0.0
        for i in x.indices {
            #expect(y[i] >= 0)
            worst = max(worst, abs(Double(y[i]) - Foundation.exp(Double(x[i]))))
        }
        #expect(worst <= denormalStep, "absolute error \(worst) in the denormal range")
        // Nonzero all the way down to about −103.28 (exp = 2^−149).
        #expect(Self.vexp([-103.2])[0] > 0)
    }

    @Test func expScaledMatchesExpOfProduct() {
        let x = (0..<1000).map { Float($0 - 500) * 0.37 }
        let scale: Float = 0.5
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                VectorMath.expScaled(px.baseAddress!, scale: scale, py.baseAddress!, count: x.count)
            }
        }
        #expect(y == Self.vexp(x.map { scale * $0 }))
    }

    @Test func logSweepAllFloatsInHalfToTwo() {
        // Every float in [0.5, 2): where log is near 0 and cancellation would show.
        let start = Float(0.5).bitPattern, end = Float(2).bitPattern
        let x = (start..<end).map { Float(bitPattern: $0) }
        let y = Self.vlog(x)
        var worst = 0.0, at: Float = 0
        for i in x.indices {
            let r = Foundation.log(Double(x[i]))
            // Relative, except at x = 1 where log is exactly 0.
            let e = r == 0 ? abs(Double(y[i])) : abs(Double(y[i]) - r) / abs(r)
            if !(e <= worst) { worst = e; at = x[i] }
        }
        #expect(worst <= Self.logRelBound, "log max relative error \(worst) at x = \(at)")
        #expect(Self.vlog([1])[0] == 0)
    }

    @Test func logSweepAllNormalAndDenormalBinades() {
        // A regular sample of bit patterns from the smallest denormal to the largest float.
        var x: [Float] = []
        var b: UInt32 = 1
        while b < Float.greatestFiniteMagnitude.bitPattern { x.append(Float(bitPattern: b)); b += 1013 }
        x.append(.greatestFiniteMagnitude)
        x.append(.leastNormalMagnitude)
        x.append(.leastNonzeroMagnitude)
        let y = Self.vlog(x)
        let (err, at) = Self.maxRel(x, y, Foundation.log)
        #expect(err <= Self.logRelBound, "log max relative error \(err) at x = \(at)")
    }

    // MARK: special values

    @Test func expSpecialValues() {
        let x: [Float] = [0, -0, 1, .infinity, -.infinity, .nan, 88.72, 88.7229, 89, 1000,
                          -104, -1000, Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude]
        let y = Self.vexp(x)
        #expect(y[0] == 1 && y[1] == 1)
        #expect(abs(Double(y[2]) - M_E) / M_E < 1e-7)
        #expect(y[3] == .infinity)
        #expect(y[4] == 0)
        #expect(y[5].isNaN)
        #expect(y[6].isFinite && y[6] > 3.3e38)
        #expect(y[7] == .infinity && y[8] == .infinity && y[9] == .infinity)
        #expect(y[10] == 0 && y[11] == 0)
        #expect(y[12] == .infinity && y[13] == 0)
    }

    @Test func logSpecialValues() {
        let x: [Float] = [0, -0, -1, -.leastNonzeroMagnitude, .infinity, -.infinity, .nan, 1, 2,
                          .greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude]
        let y = Self.vlog(x)
        #expect(y[0] == -.infinity && y[1] == -.infinity)
        #expect(y[2].isNaN && y[3].isNaN)
        #expect(y[4] == .infinity)
        #expect(y[5].isNaN)
        #expect(y[6].isNaN)
        #expect(y[7] == 0)
        #expect(abs(Double(y[8]) - M_LN2) < 1e-7)
        #expect(abs(Double(y[9]) - Foundation.log(Double(Float.greatestFiniteMagnitude))) < 1e-5)
        #expect(abs(Double(y[10]) - (-149 * M_LN2)) < 1e-5)
        #expect(abs(Double(y[11]) - (-126 * M_LN2)) < 1e-5)
    }

    @Test func specialValuesInsideFullBlocksMatchIsolatedOnes() {
        // One odd value per 16-lane block, surrounded by ordinary ones: the block takes the
        // general path and the ordinary lanes must be unaffected.
        let odd: [Float] = [0, -1, .infinity, .nan, .leastNonzeroMagnitude, -0, Float(bitPattern: 0x0001_0000), .greatestFiniteMagnitude]
        var x = [Float]()
        for (k, v) in odd.enumerated() {
            var block = (0..<16).map { Float($0 + 1) * 0.5 }
            block[(k * 5) % 16] = v
            x += block
        }
        let all = Self.vlog(x)
        let one = x.map { Self.vlog([$0])[0] }
        for i in x.indices {
            #expect(all[i] == one[i] || (all[i].isNaN && one[i].isNaN), "lane \(i): \(all[i]) vs \(one[i])")
        }
        let e = Self.vexp(x), e1 = x.map { Self.vexp([$0])[0] }
        for i in x.indices { #expect(e[i] == e1[i] || (e[i].isNaN && e1[i].isNaN)) }
    }

    // MARK: tails and aliasing

    @Test func everyCountUpTo40TouchesExactlyCountElements() {
        for count in 0...40 {
            for which in 0..<3 {
                let x = (0..<count).map { Float($0) * 0.25 + 0.1 }
                // Output buffer with sentinels past the end; x with poison past the end.
                var xs = x + [Float](repeating: .nan, count: 20)
                var y = [Float](repeating: -7, count: count + 20)
                xs.withUnsafeMutableBufferPointer { px in
                    y.withUnsafeMutableBufferPointer { py in
                        let a = UnsafePointer(px.baseAddress!), b = py.baseAddress!
                        switch which {
                        case 0: VectorMath.exp(a, b, count: count)
                        case 1: VectorMath.log(a, b, count: count)
                        default: VectorMath.expScaled(a, scale: 0.5, b, count: count)
                        }
                    }
                }
                for i in 0..<count {
                    let ref: Double
                    switch which {
                    case 0: ref = Foundation.exp(Double(x[i]))
                    case 1: ref = Foundation.log(Double(x[i]))
                    default: ref = Foundation.exp(Double(0.5 * x[i]))
                    }
                    #expect(abs(Double(y[i]) - ref) <= 3e-7 * max(1, abs(ref)), "count \(count) kind \(which) i \(i)")
                }
                #expect(y[count...].allSatisfy { $0 == -7 }, "count \(count) kind \(which) wrote past the end")
            }
        }
    }

    @Test func inPlaceEqualsOutOfPlace() {
        for count in [1, 15, 16, 17, 33, 100] {
            let x = (0..<count).map { Float($0) * 0.731 - 20 }
            let pos = x.map { abs($0) + 0.01 }
            var a = x, b = pos, c = x
            a.withUnsafeMutableBufferPointer { p in VectorMath.exp(p.baseAddress!, p.baseAddress!, count: count) }
            b.withUnsafeMutableBufferPointer { p in VectorMath.log(p.baseAddress!, p.baseAddress!, count: count) }
            c.withUnsafeMutableBufferPointer { p in
                VectorMath.expScaled(p.baseAddress!, scale: 0.5, p.baseAddress!, count: count)
            }
            #expect(a == Self.vexp(x))
            #expect(b == Self.vlog(pos))
            #expect(c == Self.vexp(x.map { 0.5 * $0 }))
        }
    }

    @Test func tailLanesGiveSameBitsAsFullBlocks() {
        // Element i must not depend on whether it sits in a full block or in the padded tail.
        let x = (0..<37).map { Float($0) * 1.37 - 25 }
        let full = Self.vexp(x)
        for k in 1...x.count {
            #expect(Array(Self.vexp(Array(x[(x.count - k)...]))) == Array(full[(x.count - k)...]))
        }
    }

    @Test func benchmarkReportsPositiveFiniteTimes() {
        let t = VectorMath.benchmark(count: 256, repetitions: 3)
        for v in [t.expScalar, t.expVector, t.logScalar, t.logVector] { #expect(v.isFinite && v > 0) }
        #expect(t.count == 256)
        // PESVI_VMATH_BENCH=1 prints a real measurement (numbers in docs/BENCHMARKS-vmath.md).
        if ProcessInfo.processInfo.environment["PESVI_VMATH_BENCH"] != nil {
            for n in [1024, 16384, 262_144] { print("VectorMath.benchmark", VectorMath.benchmark(count: n, repetitions: 300)) }
        }
    }

    // MARK: softplus

    /// softplus_τ(x) = τ·log(1 + e^{x/τ}) against Double (log1p, exp) over x/τ in [−60, 60] at
    /// several temperatures: within 2·10⁻⁷ of max(|x|, τ) (the clamp at x/τ = −30 costs τ·e^{−30}),
    /// never negative, exactly max(x, 0) far from 0; in place too. Its derivative from the output,
    /// 1 − e^{−s/τ}, is the logistic σ(x/τ) to 3·10⁻⁷ absolute, in [0, 1].
    /// The kernels compiled for AVX-512 (``AVX512VectorMath``, what `VectorMath` runs where the
    /// GEMM is AVX-512) give the same bits as the ones compiled for x86-64-v3 (`LaneMath`'s
    /// inlinable functions, compiled into this test module with its x86-64-v3 flags): exp, log, the
    /// softplus at several temperatures and its derivative, on values that cross every branch
    /// (signs, the clamps, special values), every count up to 40 and a long buffer. Skipped
    /// (recorded as passing) without AVX-512.
    @Test func avx512KernelsGiveTheNarrowKernelsBits() {
        #if arch(x86_64)
        guard GEMMKernelKind.cpuHasAVX512 else { return }
        var values: [Float] = [0, -0.0, 1, -1, 1e-30, -1e-30, 88, 89, -87, -104, -110, 30, -30, .infinity, -.infinity, .nan,
                               Float.leastNonzeroMagnitude, Float.leastNormalMagnitude, Float.greatestFiniteMagnitude]
        var state: UInt32 = 12345
        for _ in 0..<2000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append((Float(state >> 8) / Float(1 << 24) - 0.5) * 60)
        }
        let positive = values.map { abs($0) }
        func same(_ a: [Float], _ b: [Float]) -> Bool { a.map(\.bitPattern) == b.map(\.bitPattern) }
        for count in Array(0...40) + [values.count] {
            let x = Array(values.prefix(count)), p = Array(positive.prefix(count))
            #expect(same(Self.apply({ AVX512VectorMath.exp($0, $1, count: $2) }, x), Self.apply({ LaneMath.exp($0, $1, count: $2) }, x)))
            #expect(same(Self.apply({ AVX512VectorMath.log($0, $1, count: $2) }, p), Self.apply({ LaneMath.log($0, $1, count: $2) }, p)))
            for tau: Float in [0.01, 0.3, 2] {
                let wide = Self.apply({ AVX512VectorMath.softplus($0, temperature: tau, $1, count: $2) }, x)
                #expect(same(wide, Self.apply({ LaneMath.softplus($0, temperature: tau, $1, count: $2) }, x)), "softplus τ \(tau), \(count)")
                #expect(same(Self.apply({ AVX512VectorMath.softplusDerivative(output: $0, temperature: tau, $1, count: $2) }, wide),
                             Self.apply({ LaneMath.softplusDerivative(output: $0, temperature: tau, $1, count: $2) }, wide)))
            }
        }
        #endif
    }

    /// ``VectorMath/softplusRows(_:rows:columns:temperatures:stride:)`` and
    /// ``VectorMath/softplusDerivativeRows(output:_:rows:columns:temperatures:stride:)`` give, bit
    /// for bit, what a call per row gives, rows with τ ≤ 0 the ReLU and its 0/1 slope; column
    /// counts with and without a tail, a temperature stride of 2.
    @Test func softplusRowsEqualsARowAtATime() {
        var state: UInt32 = 77
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return (Float(state >> 8) / Float(1 << 24) - 0.5) * 8 }
        for columns in [1, 16, 37, 64] {
            let rows = 6
            let temps: [Float] = [0.3, 9, 0, 9, 1.5, 9, -1, 9, 0.01, 9, 2, 9]  // stride 2: the odd entries belong to another layer
            let x = (0..<(rows * columns)).map { _ in next() }
            var byRow = x, batched = x
            for r in 0..<rows {
                let tau = temps[2 * r]
                byRow.withUnsafeMutableBufferPointer { b in
                    let row = b.baseAddress! + r * columns
                    if tau > 0 { VectorMath.softplus(row, temperature: tau, row, count: columns) } else { Elementwise.reluForward(row, count: columns) }
                }
            }
            batched.withUnsafeMutableBufferPointer { b in
                VectorMath.softplusRows(b.baseAddress!, rows: rows, columns: columns, temperatures: temps, stride: 2)
            }
            #expect(byRow.map(\.bitPattern) == batched.map(\.bitPattern), "softplus, \(columns) columns")
            var slopesByRow = [Float](repeating: .nan, count: rows * columns), slopes = slopesByRow
            for r in 0..<rows {
                let tau = temps[2 * r]
                for c in 0..<columns where !(tau > 0) { slopesByRow[r * columns + c] = byRow[r * columns + c] > 0 ? 1 : 0 }
                if tau > 0 {
                    byRow.withUnsafeBufferPointer { s in
                        slopesByRow.withUnsafeMutableBufferPointer { y in
                            VectorMath.softplusDerivative(output: s.baseAddress! + r * columns, temperature: tau, y.baseAddress! + r * columns, count: columns)
                        }
                    }
                }
            }
            byRow.withUnsafeBufferPointer { s in
                slopes.withUnsafeMutableBufferPointer { y in
                    VectorMath.softplusDerivativeRows(output: s.baseAddress!, y.baseAddress!, rows: rows, columns: columns, temperatures: temps, stride: 2)
                }
            }
            #expect(slopesByRow.map(\.bitPattern) == slopes.map(\.bitPattern), "slopes, \(columns) columns")
        }
    }

    @Test func softplusAndItsDerivativeFromTheOutput() {
        for tau: Float in [0.01, 0.3, 1, 7.5] {
            let x = (0..<2_001).map { Float(-60 + 0.06 * Double($0)) * tau }
            var y = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { VectorMath.softplus(px.baseAddress!, temperature: tau, $0.baseAddress!, count: x.count) } }
            var worst = 0.0, worstSlope = 0.0
            for i in x.indices {
                let u = Double(x[i]) / Double(tau)
                let ref = Double(tau) * (max(u, 0) + log1p(exp(-abs(u))))
                worst = max(worst, abs(Double(y[i]) - ref) / max(abs(Double(x[i])), Double(tau)))
                #expect(y[i] >= 0)
                if u > 20 { #expect(y[i] == x[i]) }
                if u < -40 { #expect(y[i] == 0) }
            }
            #expect(worst < 2e-7, "τ = \(tau): softplus off by \(worst)")
            var slope = [Float](repeating: .nan, count: x.count)
            y.withUnsafeBufferPointer { py in slope.withUnsafeMutableBufferPointer { VectorMath.softplusDerivative(output: py.baseAddress!, temperature: tau, $0.baseAddress!, count: x.count) } }
            for i in x.indices {
                let u = Double(x[i]) / Double(tau)
                worstSlope = max(worstSlope, abs(Double(slope[i]) - 1 / (1 + exp(-u))))
                #expect(slope[i] >= 0 && slope[i] <= 1)
            }
            #expect(worstSlope < 3e-7, "τ = \(tau): slope off by \(worstSlope)")
            // In place: the same values.
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { VectorMath.softplus($0.baseAddress!, temperature: tau, $0.baseAddress!, count: x.count) }
            #expect(inPlace == y)
        }
        // Special values, in a full block and in the padded tail: NaN stays NaN, +∞ gives +∞ and
        // −∞ gives 0 (the kernel takes log's core without log16's special-value path).
        let special: [Float] = [.nan, .infinity, -.infinity, 0, 1, -1, 3, -3, 0.5, -0.5, 2, -2, 4, -4, 5, -5, .nan, .infinity, -.infinity]
        var out = [Float](repeating: 7, count: special.count)
        special.withUnsafeBufferPointer { px in out.withUnsafeMutableBufferPointer { VectorMath.softplus(px.baseAddress!, temperature: 0.5, $0.baseAddress!, count: special.count) } }
        for i in [0, 16] { #expect(out[i].isNaN && out[i + 1] == .infinity && out[i + 2] == 0, "lane \(i): \(out[i..<(i + 3)])") }
        #expect(out[3] == 0.5 * Float(log(2.0)))
    }
}
