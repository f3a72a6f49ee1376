import Foundation

/// A seedable pseudo-random generator: xoshiro256** (Blackman & Vigna, 2018), seeded by
/// SplitMix64 from one 64-bit seed.
///
/// Same seed, same stream, on every machine: the algorithm uses only 64-bit integer
/// arithmetic, and the float conversions below are exact. It is a value type; copying it
/// copies the stream position. Period 2^256 − 1; passes BigCrush.
public struct RandomGenerator: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Seeds the four state words from SplitMix64(seed), which never yields an all-zero state.
    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    /// An independent generator for sub-stream `stream` (for example one per thread or per
    /// phase), derived from this generator's current state without advancing it.
    public func forked(stream: UInt64) -> RandomGenerator {
        RandomGenerator(seed: s0 ^ (s3 &* 0x2545_F491_4F6C_DD1D) ^ (stream &* 0x9E37_79B9_7F4A_7C15 &+ 0x632B_E59B_D9B4_E019))
    }

    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform Float in [0, 1), with 24 random bits (every value a multiple of 2⁻²⁴).
    @inlinable @inline(__always)
    public mutating func uniformFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform Double in [0, 1), with 53 random bits.
    @inlinable @inline(__always)
    public mutating func uniformDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform Double in (0, 1]: never zero, safe under `log`.
    @inlinable @inline(__always)
    public mutating func uniformDoubleOpenZero() -> Double {
        (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal N(0, 1) by the 128-layer ziggurat of Marsaglia & Tsang (2000), with
    /// the layer index and the magnitude taken from disjoint bits of one 64-bit draw.
    @inlinable
    public mutating func standardNormal() -> Float {
        Ziggurat.withTables { standardNormal(ziggurat: $0) }
    }

    /// One N(0, 1) draw with the ziggurat's tables already in hand: reading the lazily built
    /// static tables costs a `swift_once` check and a bounds check per access, which was 5 % of
    /// a test-time step (perf, |z| = 64 Arch2, 5,000 points); loops hoist them once.
    @inlinable @inline(__always)
    mutating func standardNormal(ziggurat z: ZigguratTables) -> Float {
        while true {
            let u = next()
            let layer = Int(u & 127)
            let hz = Int32(truncatingIfNeeded: u >> 32)
            let x = Double(hz) * z.w[layer]
            if Int64(hz.magnitude) < z.k[layer] { return Float(x) }
            if layer == 0 {
                // The tail beyond r, by Marsaglia's exponential method.
                var xt = 0.0, y = 0.0
                repeat {
                    xt = -Foundation.log(uniformDoubleOpenZero()) / Ziggurat.r
                    y = -Foundation.log(uniformDoubleOpenZero())
                } while y + y < xt * xt
                return Float(hz > 0 ? Ziggurat.r + xt : -Ziggurat.r - xt)
            }
            let f0 = z.f[layer], f1 = z.f[layer - 1]
            if f0 + uniformDouble() * (f1 - f0) < Foundation.exp(-0.5 * x * x) { return Float(x) }
        }
    }

    /// Fills `count` floats at `p` with uniform values in [low, high).
    public mutating func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, low: Float = 0, high: Float = 1) {
        let span = high - low
        for i in 0..<count { p[i] = low + span * uniformFloat() }
    }

    /// Fills `count` floats at `p` with N(mean, std²) values (the same stream as `count` calls
    /// of ``standardNormal()``).
    public mutating func fillNormal(_ p: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        Ziggurat.withTables { z in
            for i in 0..<count { p[i] = mean + std * standardNormal(ziggurat: z) }
        }
    }

    /// Fills `count` floats at `p` with Rademacher values: +1 or −1, each with probability ½
    /// (mean 0, variance 1, like N(0, 1), but never near 0). One 64-bit draw gives 64 signs.
    public mutating func fillRademacher(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            var bits = next()
            let end = min(i + 64, count)
            while i < end { p[i] = bits & 1 == 0 ? 1 : -1; bits >>= 1; i += 1 }
        }
    }

    /// `count` uniform values in [low, high).
    public mutating func uniformArray(count: Int, low: Float = 0, high: Float = 1) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buf, n in
            fillUniform(buf.baseAddress!, count: count, low: low, high: high); n = count
        }
    }

    /// `count` values from N(mean, std²).
    public mutating func normalArray(count: Int, mean: Float = 0, std: Float = 1) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buf, n in
            fillNormal(buf.baseAddress!, count: count, mean: mean, std: std); n = count
        }
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates), reproducible from the seed.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffleInPlace(&p)
        return p
    }

    /// Fisher–Yates shuffle using this generator; reproducible from the seed on every platform
    /// (unlike `Array.shuffle(using:)`, whose algorithm the standard library may change).
    public mutating func shuffleInPlace<T>(_ a: inout [T]) {
        if a.count < 2 { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(next() % UInt64(i + 1))
            a.swapAt(i, j)
        }
    }
}

/// Tables of the 128-layer normal ziggurat (Marsaglia & Tsang, 2000), built once.
@usableFromInline
enum Ziggurat {
    @usableFromInline static let r = 3.442619855899
    @usableFromInline static let tables: (k: [Int64], w: [Double], f: [Double]) = {
        let m1 = 2_147_483_648.0
        var dn = r, tn = r
        let vn = 9.91256303526217e-3
        var k = [Int64](repeating: 0, count: 128)
        var w = [Double](repeating: 0, count: 128)
        var f = [Double](repeating: 0, count: 128)
        let q = vn / Foundation.exp(-0.5 * dn * dn)
        k[0] = Int64((dn / q) * m1)
        k[1] = 0
        w[0] = q / m1
        w[127] = dn / m1
        f[0] = 1
        f[127] = Foundation.exp(-0.5 * dn * dn)
        for i in stride(from: 126, through: 1, by: -1) {
            dn = (-2 * Foundation.log(vn / dn + Foundation.exp(-0.5 * dn * dn))).squareRoot()
            k[i + 1] = Int64((dn / tn) * m1)
            tn = dn
            f[i] = Foundation.exp(-0.5 * dn * dn)
            w[i] = dn / m1
        }
        return (k, w, f)
    }()
    @usableFromInline static let k = tables.k
    @usableFromInline static let w = tables.w
    @usableFromInline static let f = tables.f

    /// Calls `body` with unchecked pointers to the three tables.
    @inlinable
    static func withTables<R>(_ body: (ZigguratTables) -> R) -> R {
        k.withUnsafeBufferPointer { kp in
            w.withUnsafeBufferPointer { wp in
                f.withUnsafeBufferPointer { fp in
                    body(ZigguratTables(k: kp.baseAddress!, w: wp.baseAddress!, f: fp.baseAddress!))
                }
            }
        }
    }
}

/// Pointers to the ziggurat's 128-entry tables (valid inside ``Ziggurat/withTables(_:)``).
@usableFromInline
struct ZigguratTables {
    @usableFromInline let k: UnsafePointer<Int64>
    @usableFromInline let w: UnsafePointer<Double>
    @usableFromInline let f: UnsafePointer<Double>
    @inlinable init(k: UnsafePointer<Int64>, w: UnsafePointer<Double>, f: UnsafePointer<Double>) { self.k = k; self.w = w; self.f = f }
}
