import Foundation
import PESVINumerics

/// How one column of the synthetic data is made. Independent columns are drawn from a
/// distribution; dependent columns combine independent columns (by index) row by row.
public enum SyntheticColumn: Equatable, Sendable, CustomStringConvertible {
    case normal(mean: Double, std: Double)
    case uniform(low: Double, high: Double)
    case beta(a: Double, b: Double)
    case logistic(location: Double, scale: Double)
    case gumbel(location: Double, scale: Double)
    /// w · x[a] · x[b] (two sources).
    case product(weight: Double, sources: [Int])
    /// Σⱼ wⱼ · x[sⱼ] + bias.
    case affine(weights: [Double], sources: [Int], bias: Double)
    /// f(Σⱼ wⱼ · x[sⱼ] + bias) with f = tanh, ReLU or the logistic sigmoid.
    case activation(SyntheticActivation, weights: [Double], sources: [Int], bias: Double)

    public var isIndependent: Bool {
        switch self {
        case .normal, .uniform, .beta, .logistic, .gumbel: return true
        case .product, .affine, .activation: return false
        }
    }

    public var description: String {
        func f(_ x: Double) -> String { String(format: "%.3g", x) }
        func terms(_ w: [Double], _ s: [Int]) -> String { zip(w, s).map { "\(f($0))·x\($1)" }.joined(separator: " + ") }
        switch self {
        case .normal(let m, let s): return "Normal(mean \(f(m)), std \(f(s)))"
        case .uniform(let l, let h): return "Uniform[\(f(l)), \(f(h)))"
        case .beta(let a, let b): return "Beta(\(f(a)), \(f(b)))"
        case .logistic(let l, let s): return "Logistic(location \(f(l)), scale \(f(s)))"
        case .gumbel(let l, let s): return "Gumbel(location \(f(l)), scale \(f(s)))"
        case .product(let w, let s): return "\(f(w))·x\(s[0])·x\(s[1])"
        case .affine(let w, let s, let c): return "\(terms(w, s)) + \(f(c))"
        case .activation(let a, let w, let s, let c): return "\(a.rawValue)(\(terms(w, s)) + \(f(c)))"
        }
    }
}

public enum SyntheticActivation: String, Equatable, Sendable, CaseIterable {
    case tanh, relu, sigmoid
}

/// The synthetic data of the paper (§4.1): N = 50,000 points in d = 300 dimensions, some
/// independent, the rest functions of them.
///
/// Recipe (also in docs/SYNTHETIC.md). Everything is drawn from `seed`; the same
/// (n, dim, seed, independentFraction, noiseLevel) gives the same matrix bit for bit.
/// 1. The first `k = max(min(dim, 2), round(independentFraction · dim))` columns (120 of 300 by
///    default) are independent. Each picks one of Normal, Uniform, Beta, Logistic, Gumbel with
///    equal probability and its parameters uniformly in:
///    Normal mean [−2, 2], std [0.5, 2]; Uniform low [−3, 1], width [0.5, 4];
///    Beta a and b [0.5, 5]; Logistic location [−2, 2], scale [0.2, 1.5];
///    Gumbel location [−2, 2], scale [0.2, 1.5].
/// 2. Each remaining column picks one operation with equal probability and combines a random
///    subset of distinct independent columns (the paper's "independent components"):
///    - weighted multiplication: w·x_a·x_b, two sources, |w| in [0.5, 1.5] with a random sign;
///    - affine addition: Σ wⱼ·xⱼ + c over 2–4 sources (count uniform), wⱼ in [−1.5, 1.5], c in [−1, 1];
///    - activation: tanh, ReLU or sigmoid (equal probability) of Σ wⱼ·xⱼ + c over 2–4 sources,
///      wⱼ in [−1, 1], c in [−0.5, 0.5].
///    Then Gaussian noise N(0, (noiseLevel · s)²) is added, s being the column's population
///    standard deviation over the n rows before noise (default noiseLevel 0.05; none if s = 0).
/// 3. The recipe is drawn from `RandomGenerator(seed:)`; column j's values (its samples, or its
///    noise) from that generator's `forked(stream: j + 1)`, taken before the recipe is drawn, so
///    an independent column's first rows do not depend on n.
///
/// With these ranges every value is bounded by a few hundred (the products of two tails), so
/// the data is always finite; `generate()` checks this anyway.
public struct SyntheticDataGenerator: Sendable {
    public var n: Int
    public var dim: Int
    public var seed: UInt64
    /// Fraction of independent columns (0, 1]; default 0.4.
    public var independentFraction: Double
    /// Noise standard deviation on dependent columns, relative to the column's own; default 0.05.
    public var noiseLevel: Double

    public init(n: Int = 50_000, dim: Int = 300, seed: UInt64 = 0,
                independentFraction: Double = 0.4, noiseLevel: Double = 0.05) {
        self.n = n; self.dim = dim; self.seed = seed
        self.independentFraction = independentFraction; self.noiseLevel = noiseLevel
    }

    /// Number of independent columns (they come first).
    public var independentCount: Int {
        max(min(dim, 2), min(dim, Int((independentFraction * Double(dim)).rounded())))
    }

    func validate() throws {
        guard n >= 1, dim >= 1 else { throw DataError.invalidArgument("SyntheticDataGenerator: n and dim must be ≥ 1, got n \(n), dim \(dim)") }
        guard independentFraction > 0, independentFraction <= 1 else {
            throw DataError.invalidArgument("SyntheticDataGenerator: independentFraction must be in (0, 1], got \(independentFraction)")
        }
        guard noiseLevel >= 0, noiseLevel.isFinite else {
            throw DataError.invalidArgument("SyntheticDataGenerator: noiseLevel must be finite and ≥ 0, got \(noiseLevel)")
        }
    }

    /// The recipe: one `SyntheticColumn` per column, drawn from the seed (independent of n).
    public func columns() throws -> [SyntheticColumn] {
        try validate()
        var g = RandomGenerator(seed: seed)
        let k = independentCount
        func pick(_ count: Int) -> Int { Int(g.next() % UInt64(count)) }
        func u(_ lo: Double, _ hi: Double) -> Double { g.uniform(low: lo, high: hi) }
        var out: [SyntheticColumn] = []
        out.reserveCapacity(dim)
        for _ in 0..<k {
            switch pick(5) {
            case 0: out.append(.normal(mean: u(-2, 2), std: u(0.5, 2)))
            case 1: let low = u(-3, 1); out.append(.uniform(low: low, high: low + u(0.5, 4)))
            case 2: out.append(.beta(a: u(0.5, 5), b: u(0.5, 5)))
            case 3: out.append(.logistic(location: u(-2, 2), scale: u(0.2, 1.5)))
            default: out.append(.gumbel(location: u(-2, 2), scale: u(0.2, 1.5)))
            }
        }
        for _ in k..<dim {
            let op = pick(3)
            let count = op == 0 ? 2 : min(k, 2 + pick(3))
            let sources = Array(g.permutation(k).prefix(count))
            switch op {
            case 0:
                let w = u(0.5, 1.5) * (g.next() & 1 == 0 ? 1 : -1)
                out.append(.product(weight: w, sources: sources))
            case 1:
                out.append(.affine(weights: sources.map { _ in u(-1.5, 1.5) }, sources: sources, bias: u(-1, 1)))
            default:
                let f = SyntheticActivation.allCases[pick(3)]
                out.append(.activation(f, weights: sources.map { _ in u(-1, 1) }, sources: sources, bias: u(-0.5, 0.5)))
            }
        }
        return out
    }

    /// Generates the `n × dim` matrix (row-major, column names x0…x{dim−1}). Throws
    /// `DataError.invalidArgument` for bad settings; the result is always finite (checked).
    public func generate() throws -> DataMatrix {
        let recipe = try columns()
        let root = RandomGenerator(seed: seed)
        // Column-major while generating: column j is cols[j*n ..< (j+1)*n].
        var byColumn = [Float](repeating: 0, count: n * dim)
        let n = self.n
        byColumn.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            for (j, spec) in recipe.enumerated() {
                var g = root.forked(stream: UInt64(j) + 1)
                let out = base + j * n
                func fill(_ draw: (inout RandomGenerator) -> Double) { for i in 0..<n { out[i] = Float(draw(&g)) } }
                func linear(_ w: [Double], _ s: [Int], _ c: Double, _ i: Int) -> Double {
                    var z = 0.0
                    for t in 0..<w.count { z += w[t] * Double(base[s[t] * n + i]) }
                    return z + c
                }
                switch spec {
                case .normal(let m, let s): fill { $0.normal(mean: m, std: s) }
                case .uniform(let l, let h): fill { $0.uniform(low: l, high: h) }
                case .beta(let a, let b): fill { $0.beta(a, b) }
                case .logistic(let l, let s): fill { $0.logistic(location: l, scale: s) }
                case .gumbel(let l, let s): fill { $0.gumbel(location: l, scale: s) }
                case .product(let w, let s):
                    let a = base + s[0] * n, b = base + s[1] * n
                    for i in 0..<n { out[i] = Float(w * Double(a[i]) * Double(b[i])) }
                case .affine(let w, let s, let c):
                    for i in 0..<n { out[i] = Float(linear(w, s, c, i)) }
                case .activation(let f, let w, let s, let c):
                    for i in 0..<n {
                        let z = linear(w, s, c, i)
                        switch f {
                        case .tanh: out[i] = Float(Foundation.tanh(z))
                        case .relu: out[i] = Float(max(0, z))
                        case .sigmoid: out[i] = Float(1 / (1 + Foundation.exp(-z)))
                        }
                    }
                }
                if !spec.isIndependent && noiseLevel > 0 {
                    var sum = 0.0
                    for i in 0..<n { sum += Double(out[i]) }
                    let mean = sum / Double(n)
                    var ss = 0.0
                    for i in 0..<n { let d = Double(out[i]) - mean; ss += d * d }
                    let std = noiseLevel * (ss / Double(n)).squareRoot()
                    if std > 0 { for i in 0..<n { out[i] = Float(Double(out[i]) + std * Double(g.standardNormal())) } }
                }
            }
        }
        // Transpose to row-major.
        var values = [Float](repeating: 0, count: n * dim)
        let dim = self.dim
        values.withUnsafeMutableBufferPointer { dst in
            byColumn.withUnsafeBufferPointer { src in
                let blk = 64
                for i0 in stride(from: 0, to: n, by: blk) {
                    for j0 in stride(from: 0, to: dim, by: blk) {
                        for j in j0..<min(j0 + blk, dim) {
                            for i in i0..<min(i0 + blk, n) { dst[i * dim + j] = src[j * n + i] }
                        }
                    }
                }
            }
        }
        let m = DataMatrix(uncheckedRows: n, cols: dim, values: values, columnNames: (0..<dim).map { "x\($0)" })
        if let bad = m.firstNonFinite() {
            throw DataError.invalidArgument("SyntheticDataGenerator: non-finite value at row \(bad.row), column \(bad.col) (\(recipe[bad.col]))")
        }
        return m
    }
}
