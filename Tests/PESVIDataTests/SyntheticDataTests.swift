import Foundation
import Testing
@testable import PESVIData

@Suite struct SyntheticDataTests {
    @Test func defaultsAreThePapersSize() {
        let g = SyntheticDataGenerator()
        #expect(g.n == 50_000 && g.dim == 300)
        #expect(g.independentCount == 120)
    }

    @Test func shapeNamesAndDeterminism() throws {
        let a = try SyntheticDataGenerator(n: 500, dim: 40, seed: 9).generate()
        #expect(a.rows == 500 && a.cols == 40 && a.values.count == 20_000)
        #expect(a.columnNames?.first == "x0" && a.columnNames?.last == "x39")
        let b = try SyntheticDataGenerator(n: 500, dim: 40, seed: 9).generate()
        #expect(bits(a.values) == bits(b.values))
        let c = try SyntheticDataGenerator(n: 500, dim: 40, seed: 10).generate()
        #expect(a.values != c.values)
    }

    @Test func recipeFollowsTheDocumentedRanges() throws {
        let g = SyntheticDataGenerator(n: 10, dim: 300, seed: 4)
        let recipe = try g.columns()
        let k = g.independentCount
        #expect(recipe.count == 300)
        #expect(recipe[..<k].allSatisfy { $0.isIndependent })
        #expect(!recipe[k...].contains { $0.isIndependent })
        var kinds = Set<String>()
        func within(_ x: Double, _ lo: Double, _ hi: Double) -> Bool { x >= lo && x <= hi }
        for spec in recipe {
            switch spec {
            case .normal(let m, let s): kinds.insert("normal"); #expect(within(m, -2, 2) && within(s, 0.5, 2))
            case .uniform(let l, let h): kinds.insert("uniform"); #expect(within(l, -3, 1) && within(h - l, 0.5, 4))
            case .beta(let a, let b): kinds.insert("beta"); #expect(within(a, 0.5, 5) && within(b, 0.5, 5))
            case .logistic(let l, let s): kinds.insert("logistic"); #expect(within(l, -2, 2) && within(s, 0.2, 1.5))
            case .gumbel(let l, let s): kinds.insert("gumbel"); #expect(within(l, -2, 2) && within(s, 0.2, 1.5))
            case .product(let w, let s):
                kinds.insert("product")
                #expect(within(abs(w), 0.5, 1.5) && s.count == 2 && s[0] != s[1] && s.allSatisfy { $0 < k })
            case .affine(let w, let s, let c):
                kinds.insert("affine")
                #expect((2...4).contains(s.count) && Set(s).count == s.count && s.allSatisfy { $0 < k } && w.count == s.count)
                #expect(w.allSatisfy { within($0, -1.5, 1.5) } && within(c, -1, 1))
            case .activation(let f, let w, let s, let c):
                kinds.insert(f.rawValue)
                #expect((2...4).contains(s.count) && Set(s).count == s.count && s.allSatisfy { $0 < k })
                #expect(w.allSatisfy { within($0, -1, 1) } && within(c, -0.5, 0.5))
            }
        }
        #expect(kinds == ["normal", "uniform", "beta", "logistic", "gumbel", "product", "affine", "tanh", "relu", "sigmoid"])
    }

    /// Independent columns have the closed-form mean and variance of their distribution
    /// (within 5 standard errors; SE of the variance from the excess kurtosis κ).
    @Test func independentColumnsHaveTheirDistributionsMoments() throws {
        let n = 20_000
        let g = SyntheticDataGenerator(n: n, dim: 100, seed: 17)
        let m = try g.generate()
        let recipe = try g.columns()
        let euler = 0.577_215_664_901_532_9
        for j in 0..<g.independentCount {
            let (mean, variance, kurt): (Double, Double, Double)
            switch recipe[j] {
            case .normal(let mu, let s): (mean, variance, kurt) = (mu, s * s, 0)
            case .uniform(let l, let h): (mean, variance, kurt) = ((l + h) / 2, (h - l) * (h - l) / 12, -1.2)
            case .beta(let a, let b):
                let s = a + b
                (mean, variance, kurt) = (a / s, a * b / (s * s * (s + 1)),
                                          6 * ((a - b) * (a - b) * (s + 1) - a * b * (s + 2)) / (a * b * (s + 2) * (s + 3)))
            case .logistic(let l, let s): (mean, variance, kurt) = (l, s * s * .pi * .pi / 3, 1.2)
            case .gumbel(let l, let s): (mean, variance, kurt) = (l + s * euler, s * s * .pi * .pi / 6, 2.4)
            default: Issue.record("column \(j) is not independent"); continue
            }
            let column = (0..<n).map { Double(m[$0, j]) }
            let sampleMean = column.reduce(0, +) / Double(n)
            let sampleVar = column.reduce(0) { $0 + ($1 - sampleMean) * ($1 - sampleMean) } / Double(n - 1)
            #expect(abs(sampleMean - mean) < 5 * (variance / Double(n)).squareRoot(), "column \(j) \(recipe[j]): mean \(sampleMean)")
            #expect(abs(sampleVar - variance) < 5 * variance * ((kurt + 2) / Double(n)).squareRoot(), "column \(j) \(recipe[j]): variance \(sampleVar)")
        }
    }

    /// Without noise each dependent column is exactly its formula of the source columns,
    /// recomputed here independently.
    @Test func dependentColumnsAreTheirFormulas() throws {
        let g = SyntheticDataGenerator(n: 300, dim: 60, seed: 23, noiseLevel: 0)
        let m = try g.generate()
        let recipe = try g.columns()
        for j in g.independentCount..<g.dim {
            for i in 0..<m.rows {
                let x = { (c: Int) in Double(m[i, c]) }
                let expected: Double
                switch recipe[j] {
                case .product(let w, let s): expected = w * x(s[0]) * x(s[1])
                case .affine(let w, let s, let c): expected = zip(w, s).map { $0 * x($1) }.reduce(0, +) + c
                case .activation(let f, let w, let s, let c):
                    let z = zip(w, s).map { $0 * x($1) }.reduce(0, +) + c
                    switch f {
                    case .tanh: expected = tanh(z)
                    case .relu: expected = max(0, z)
                    case .sigmoid: expected = 1 / (1 + exp(-z))
                    }
                default: Issue.record("column \(j) should be dependent"); return
                }
                let got = Double(m[i, j])
                if abs(got - expected) > 1e-6 * max(1, abs(expected)) {
                    Issue.record("row \(i), column \(j) \(recipe[j]): \(got) ≠ \(expected)"); return
                }
            }
        }
    }

    @Test func noiseHasTheStatedRelativeSize() throws {
        let clean = try SyntheticDataGenerator(n: 20_000, dim: 30, seed: 5, noiseLevel: 0).generate()
        let noisy = try SyntheticDataGenerator(n: 20_000, dim: 30, seed: 5, noiseLevel: 0.05).generate()
        let k = SyntheticDataGenerator(dim: 30).independentCount
        for j in 0..<30 {
            let a = (0..<clean.rows).map { Double(clean[$0, j]) }
            let b = (0..<clean.rows).map { Double(noisy[$0, j]) }
            if j < k { #expect(a == b); continue }
            let mean = a.reduce(0, +) / Double(a.count)
            let s = (a.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(a.count)).squareRoot()
            let r = zip(a, b).map { $1 - $0 }
            let rs = (r.reduce(0) { $0 + $1 * $1 } / Double(r.count)).squareRoot()
            #expect(abs(rs / (0.05 * s) - 1) < 0.03, "column \(j): noise std \(rs), expected \(0.05 * s)")
        }
    }

    @Test func valuesAreFiniteAndBoundedAcrossSeeds() throws {
        for seed: UInt64 in [0, 1, 2, 3] {
            let m = try SyntheticDataGenerator(n: 5_000, dim: 300, seed: seed).generate()
            #expect(m.firstNonFinite() == nil)
            let largest = m.values.map(abs).max() ?? 0
            #expect(largest < 1_000, "seed \(seed): largest |value| \(largest)")
        }
    }

    @Test func independentColumnsDoNotDependOnN() throws {
        let small = try SyntheticDataGenerator(n: 100, dim: 20, seed: 8).generate()
        let large = try SyntheticDataGenerator(n: 1_000, dim: 20, seed: 8).generate()
        let k = SyntheticDataGenerator(dim: 20).independentCount
        for i in 0..<100 { for j in 0..<k { #expect(small[i, j] == large[i, j]) } }
    }

    @Test func badSettingsAreRefused() throws {
        #expect(throws: DataError.self) { _ = try SyntheticDataGenerator(n: 0).generate() }
        #expect(throws: DataError.self) { _ = try SyntheticDataGenerator(n: 10, dim: 5, independentFraction: 0).generate() }
        #expect(throws: DataError.self) { _ = try SyntheticDataGenerator(n: 10, dim: 5, noiseLevel: -1).generate() }
        // Tiny dimensions still work: at least two independent columns feed the rest.
        #expect(try SyntheticDataGenerator(n: 10, dim: 3, independentFraction: 0.1).generate().cols == 3)
        #expect(try SyntheticDataGenerator(n: 10, dim: 1).generate().cols == 1)
    }
}
