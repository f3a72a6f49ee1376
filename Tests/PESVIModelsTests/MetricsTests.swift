import Testing
import Foundation
import PESVINumerics
@testable import PESVIModels

@Suite struct MetricsTests {
    /// A linear decoder D(z) = 2z + 1 on one dimension, worked by hand:
    /// at the mean, (x − D(μ))²; in expectation, (x − D(μ))² + 4σ² (Monte Carlo, so a tolerance).
    @Test func reconstructionMetricsByHand() {
        let net = DenseNetwork(widths: [1, 1], parameters: [2, 1])
        let dec = GaussianDecoder(network: net, objective: .reconstruction)
        let x = Dataset(rows: 2, cols: 1, values: [3, -1])
        let mu: [Float] = [0.5, 0], lv: [Float] = [log(0.25), log(0.01)]
        let m = Metrics.evaluate(decoder: dec, x: x, mu: mu, logVariance: lv, samples: 20_000, seed: 3)
        // At the mean: (3 − 2)² = 1 and (−1 − 1)² = 4: mean 2.5.
        #expect(abs(m.reconstructionAtMean - 2.5) < 1e-6)
        // Expected: 1 + 4·0.25 = 2 and 4 + 4·0.01 = 4.04: mean 3.02.
        #expect(abs(m.expectedReconstruction - 3.02) < 0.03)
        #expect(m.negativeELBO == nil)
    }

    @Test func negativeELBOIsReportedForTheELBOObjective() {
        let net = DenseNetwork(widths: [1, 1], parameters: [1, 0])
        let dec = GaussianDecoder(network: net, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 1)))
        let x = Dataset(rows: 1, cols: 1, values: [0])
        // q = N(0, 1) = the prior: KL = 0; E[(0 − z)²]/2 + ½ log 2π = ½ + 0.9189385.
        let m = Metrics.evaluate(decoder: dec, x: x, mu: [0], logVariance: [0], samples: 50_000, seed: 5)
        #expect(abs(m.negativeELBO! - (0.5 + 0.5 * log(2 * Double.pi))) < 0.02)
        // Per point: two points, the second worked by hand as well: x = 2, q = N(1, e⁻²):
        // E[(2 − z)²]/2 = (1 + e⁻²)/2, KL = ½(e⁻² + 1 − 1 + 2); their mean is negativeELBO.
        let two = Dataset(rows: 2, cols: 1, values: [0, 2])
        var values = [Double](repeating: .nan, count: 2)
        let m2 = values.withUnsafeMutableBufferPointer {
            Metrics.evaluate(decoder: dec, x: two, mu: [0, 1], logVariance: [0, -2], samples: 50_000, seed: 5, perPointNegativeELBO: $0.baseAddress)
        }
        let e2 = exp(-2.0)
        #expect(abs(values[0] - (0.5 + 0.5 * log(2 * Double.pi))) < 0.02)
        #expect(abs(values[1] - ((1 + e2) / 2 + 0.5 * log(2 * Double.pi) + 0.5 * (e2 + 2))) < 0.02)
        #expect(abs((values[0] + values[1]) / 2 - m2.negativeELBO!) < 1e-12)
    }

    /// With the reconstruction objective the per-point negative ELBO is not written.
    @Test func perPointNegativeELBOIsLeftAloneForReconstruction() {
        let dec = GaussianDecoder(network: DenseNetwork(widths: [1, 1], parameters: [1, 0]), objective: .reconstruction)
        var values: [Double] = [7]
        let m = values.withUnsafeMutableBufferPointer {
            Metrics.evaluate(decoder: dec, x: Dataset(rows: 1, cols: 1, values: [1]), mu: [0], logVariance: [0], perPointNegativeELBO: $0.baseAddress)
        }
        #expect(m.negativeELBO == nil && values == [7])
    }
}
