import Testing
@testable import PESVINumerics

/// Each kernel against a plain scalar loop, for every length 0…40 (SIMD bodies and tails).
@Suite struct ElementwiseTests {
    func data(_ n: Int, _ seed: UInt64) -> [Float] { var g = RandomGenerator(seed: seed); return g.normalArray(count: n) }

    @Test func axpyAddScaleFill() {
        for n in 0...40 {
            let x = data(n, 1), y = data(n, 2)
            var a = y
            a.withUnsafeMutableBufferPointer { ap in x.withUnsafeBufferPointer { Elementwise.axpy(-1.5, $0.baseAddress!, ap.baseAddress!, count: n) } }
            // The SIMD body fuses the multiply-add (one rounding): equal to the two-rounding
            // scalar loop within an ulp or two.
            let ref = zip(x, y).map { $1 + -1.5 * $0 }
            for i in 0..<n { #expect(abs(a[i] - ref[i]) <= 2.5e-7 * max(1, abs(ref[i]), abs(1.5 * x[i]))) }
            var b = y
            b.withUnsafeMutableBufferPointer { bp in x.withUnsafeBufferPointer { Elementwise.add($0.baseAddress!, to: bp.baseAddress!, count: n) } }
            #expect(b == zip(x, y).map { $1 + $0 } || n == 0)
            var c = x
            c.withUnsafeMutableBufferPointer { Elementwise.scale($0.baseAddress!, by: 3, count: n) }
            #expect(c == x.map { $0 * 3 } || n == 0)
        }
    }

    @Test func reluForwardAndBackward() {
        for n in 1...40 {
            var x = data(n, 3)
            let original = x
            x.withUnsafeMutableBufferPointer { Elementwise.reluForward($0.baseAddress!, count: n) }
            #expect(x == original.map { max($0, 0) })
            var g = data(n, 4)
            let gOriginal = g
            x.withUnsafeBufferPointer { xp in g.withUnsafeMutableBufferPointer { Elementwise.reluBackward(output: xp.baseAddress!, gradient: $0.baseAddress!, count: n) } }
            #expect(g == zip(gOriginal, original).map { $1 > 0 ? $0 : 0 })
        }
    }

    @Test func biasAndColumnSums() {
        let rows = 7, cols = 19
        let x = data(rows * cols, 5), bias = data(cols, 6)
        var y = x
        y.withUnsafeMutableBufferPointer { yp in bias.withUnsafeBufferPointer { Elementwise.addBias($0.baseAddress!, to: yp.baseAddress!, rows: rows, cols: cols) } }
        for r in 0..<rows { for c in 0..<cols { #expect(y[r * cols + c] == x[r * cols + c] + bias[c]) } }
        var sums = [Float](repeating: 9, count: cols)
        x.withUnsafeBufferPointer { xp in sums.withUnsafeMutableBufferPointer { Elementwise.columnSums(xp.baseAddress!, rows: rows, cols: cols, into: $0.baseAddress!, accumulate: false) } }
        for c in 0..<cols {
            var s: Float = 0
            for r in 0..<rows { s += x[r * cols + c] }
            #expect(abs(sums[c] - s) <= 1e-5 * max(1, abs(s)))
        }
        x.withUnsafeBufferPointer { xp in sums.withUnsafeMutableBufferPointer { Elementwise.columnSums(xp.baseAddress!, rows: rows, cols: cols, into: $0.baseAddress!, accumulate: true) } }
        for c in 0..<cols {
            var s: Float = 0
            for r in 0..<rows { s += x[r * cols + c] }
            #expect(abs(sums[c] - 2 * s) <= 1e-5 * max(1, abs(2 * s)))
        }
    }

    @Test func reductions() {
        for n in 0...40 {
            let a = data(n, 7), b = data(n, 8)
            var r = [Float](repeating: 0, count: n)
            let refSE = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
            let refSum = a.reduce(0.0) { $0 + Double($1) }
            let refSS = a.reduce(0.0) { $0 + Double($1 * $1) }
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in r.withUnsafeMutableBufferPointer { rp in
                let base = ap.baseAddress ?? UnsafePointer(bitPattern: 64)!, bb = bp.baseAddress ?? UnsafePointer(bitPattern: 64)!
                #expect(abs(Elementwise.squaredDistance(base, bb, count: n) - refSE) <= 1e-5 * max(1, refSE))
                #expect(abs(Double(Elementwise.sum(base, count: n)) - refSum) <= 1e-5 * max(1, abs(refSum)))
                #expect(abs(Elementwise.sumOfSquares(base, count: n) - refSS) <= 1e-5 * max(1, refSS))
                if n > 0 {
                    let se = Elementwise.residual(base, minus: bb, into: rp.baseAddress!, count: n)
                    #expect(abs(se - refSE) <= 1e-5 * max(1, refSE))
                }
            } } }
            if n > 0 { #expect(r == zip(a, b).map { $0 - $1 }) }
        }
    }

    /// The Gaussian data term: the stored Λr is the scalar loop's Float product, and the sum is
    /// that of the Float terms r·(r·w) in Double, up to Double rounding (the order differs),
    /// so it stays exact far beyond a Float accumulation (terms of mixed scale: 1e4 and 1e-4).
    @Test func weightedSquaredResidual() {
        for n in [0, 1, 15, 16, 17, 300, 301] {
            var a = data(n, 11), b = data(n, 12), w = data(n, 13).map { abs($0) + 0.5 }
            if n > 2 { a[0] = 1e4; b[0] = 0; a[1] = 1e-4; b[1] = 0 }
            var out = [Float](repeating: .nan, count: n)
            var refTerms = [Double](), refOut = [Float]()
            for i in 0..<n { let r = a[i] - b[i], wr = r * w[i]; refOut.append(wr); refTerms.append(Double(r * wr)) }
            let ref = refTerms.reduce(0, +)
            let base = UnsafePointer<Float>(bitPattern: 64)!
            let (withOut, without) = a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    (Elementwise.weightedSquaredResidual(ap.baseAddress ?? base, minus: bp.baseAddress ?? base, weights: wp.baseAddress ?? base,
                                                         into: op.baseAddress, count: n),
                     Elementwise.weightedSquaredResidual(ap.baseAddress ?? base, minus: bp.baseAddress ?? base, weights: wp.baseAddress ?? base,
                                                         into: nil, count: n))
                } } } }
            #expect(withOut == without, "n=\(n): the stored Λr changed the sum")
            #expect(abs(withOut - ref) <= 1e-13 * max(ref, 1e-300), "n=\(n): \(withOut) against \(ref)")
            #expect(out == refOut, "n=\(n): Λr is not the scalar loop's")
        }
    }

    @Test func finiteCheck() {
        var x = data(37, 9)
        x.withUnsafeBufferPointer { #expect(Elementwise.allFinite($0.baseAddress!, count: 37)) }
        for bad in [Float.nan, .infinity, -.infinity] {
            for i in [0, 16, 36] {
                var y = x
                y[i] = bad
                y.withUnsafeBufferPointer { #expect(!Elementwise.allFinite($0.baseAddress!, count: 37)) }
            }
        }
        x[0] = 0
    }
}
