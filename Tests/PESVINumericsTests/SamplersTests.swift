import Foundation
import Testing
@testable import PESVINumerics

/// Moment checks for the samplers in Samplers.swift.
///
/// For each distribution and parameter setting we draw n = 200,000 values and compare the
/// sample mean and the sample variance with the closed-form values. The tolerance is five
/// standard errors, computed from the closed-form moments:
///   SE(mean) = σ / √n,   SE(variance) ≈ σ² · √((κ + 2) / n),
/// where κ is the excess kurtosis. A wrong sampler (a wrong constant, a missing boost, a
/// swapped parameter) misses by far more than that; a correct one fails about once in 10⁶.
@Suite struct SamplersTests {
    struct Moments { var mean: Double; var variance: Double; var excessKurtosis: Double }

    static let n = 200_000

    func checkMoments(_ name: String, _ expected: Moments, seed: UInt64,
                      _ draw: (inout RandomGenerator) -> Double) {
        var g = RandomGenerator(seed: seed)
        var s = 0.0, s2 = 0.0
        var allFinite = true
        let values = (0..<Self.n).map { _ in draw(&g) }
        for x in values { s += x; if !x.isFinite { allFinite = false } }
        let mean = s / Double(Self.n)
        for x in values { s2 += (x - mean) * (x - mean) }
        let variance = s2 / Double(Self.n - 1)
        let seMean = (expected.variance / Double(Self.n)).squareRoot()
        let seVar = expected.variance * ((expected.excessKurtosis + 2) / Double(Self.n)).squareRoot()
        #expect(allFinite, "\(name): non-finite draw")
        #expect(abs(mean - expected.mean) < 5 * seMean,
                "\(name): mean \(mean), expected \(expected.mean) ± \(5 * seMean)")
        #expect(abs(variance - expected.variance) < 5 * seVar,
                "\(name): variance \(variance), expected \(expected.variance) ± \(5 * seVar)")
    }

    @Test(arguments: [(0.0, 1.0), (-3.5, 0.25), (10.0, 4.0)])
    func normalMoments(mean: Double, std: Double) {
        checkMoments("normal(\(mean), \(std))", Moments(mean: mean, variance: std * std, excessKurtosis: 0),
                     seed: 101) { $0.normal(mean: mean, std: std) }
    }

    @Test(arguments: [(0.0, 1.0), (-3.0, 5.0), (100.0, 100.5)])
    func uniformMoments(low: Double, high: Double) {
        var g = RandomGenerator(seed: 9)
        for _ in 0..<10_000 {
            let x = g.uniform(low: low, high: high)
            #expect(x >= low && x < high)
        }
        let w = high - low
        checkMoments("uniform(\(low), \(high))", Moments(mean: (low + high) / 2, variance: w * w / 12, excessKurtosis: -1.2),
                     seed: 102) { $0.uniform(low: low, high: high) }
    }

    @Test(arguments: [(0.0, 1.0), (2.0, 0.3), (-5.0, 3.0)])
    func logisticMoments(location: Double, scale: Double) {
        checkMoments("logistic(\(location), \(scale))",
                     Moments(mean: location, variance: scale * scale * .pi * .pi / 3, excessKurtosis: 1.2),
                     seed: 103) { $0.logistic(location: location, scale: scale) }
    }

    @Test(arguments: [(0.0, 1.0), (2.0, 0.3), (-5.0, 3.0)])
    func gumbelMoments(location: Double, scale: Double) {
        let eulerGamma = 0.577_215_664_901_532_9
        checkMoments("gumbel(\(location), \(scale))",
                     Moments(mean: location + scale * eulerGamma, variance: scale * scale * .pi * .pi / 6, excessKurtosis: 2.4),
                     seed: 104) { $0.gumbel(location: location, scale: scale) }
    }

    /// Shapes below 1 exercise the boost; 1 is the exponential; 7.5 the main branch.
    @Test(arguments: [(0.3, 2.0), (1.0, 1.0), (7.5, 0.5)])
    func gammaMoments(shape: Double, scale: Double) {
        var g = RandomGenerator(seed: 5)
        for _ in 0..<10_000 { #expect(g.gamma(shape: shape, scale: scale) >= 0) }
        checkMoments("gamma(\(shape), \(scale))",
                     Moments(mean: shape * scale, variance: shape * scale * scale, excessKurtosis: 6 / shape),
                     seed: 105) { $0.gamma(shape: shape, scale: scale) }
    }

    @Test(arguments: [(0.5, 0.5), (2.0, 5.0), (0.2, 3.0)])
    func betaMoments(a: Double, b: Double) {
        var g = RandomGenerator(seed: 6)
        for _ in 0..<10_000 {
            let x = g.beta(a, b)
            #expect(x >= 0 && x <= 1)
        }
        let s = a + b
        let variance = a * b / (s * s * (s + 1))
        let kurt = 6 * ((a - b) * (a - b) * (s + 1) - a * b * (s + 2)) / (a * b * (s + 2) * (s + 3))
        checkMoments("beta(\(a), \(b))", Moments(mean: a / s, variance: variance, excessKurtosis: kurt),
                     seed: 106) { $0.beta(a, b) }
    }

    /// Tiny shapes: both gammas underflow in linear space; the beta must still be in [0, 1]
    /// and take the value 0 or 1 with about the right frequencies (mean a/(a+b)).
    @Test func betaWithTinyShapesStaysInRange() {
        var g = RandomGenerator(seed: 8)
        var sum = 0.0
        let n = 20_000
        for _ in 0..<n {
            let x = g.beta(0.01, 0.03)
            #expect(x >= 0 && x <= 1)
            sum += x
        }
        // Mean 0.25, variance ab/((a+b)²(a+b+1)) ≈ 0.1803, SE ≈ 0.003.
        #expect(abs(sum / Double(n) - 0.25) < 0.015)
    }

    @Test func seedReproducesEveryStream() {
        func stream(_ seed: UInt64) -> [Double] {
            var g = RandomGenerator(seed: seed)
            var out: [Double] = []
            for _ in 0..<200 {
                out.append(g.gamma(shape: 0.7, scale: 1.5))
                out.append(g.gamma(shape: 3, scale: 1))
                out.append(g.beta(2, 3))
                out.append(g.logistic(location: 0, scale: 1))
                out.append(g.gumbel(location: 1, scale: 2))
                out.append(g.uniform(low: -1, high: 1))
                out.append(g.normal(mean: 0, std: 1))
            }
            return out
        }
        let a = stream(77), b = stream(77), c = stream(78)
        #expect(a == b)
        #expect(a != c)
    }
}
