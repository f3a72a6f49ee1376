import Testing
import PESVINumerics
@testable import PESVIModels

@Suite struct AdamTests {
    /// Two steps worked by hand with β₁ = 0.9, β₂ = 0.999, ε = 1e-8, lr = 0.1, bias correction on.
    @Test func matchesHandComputedSteps() {
        let p = FloatBuffer([1.0, -2.0])
        let adam = AdamOptimizer(parameterCount: 2, configuration: AdamConfiguration(learningRate: 0.1))
        var g: [Float] = [0.5, -4.0]
        adam.update(p, gradients: g)
        // Step 1: m = 0.1 g, v = 0.001 g²; m̂ = g, v̂ = g²: p −= 0.1 · g / (|g| + 1e-8) = 0.1 · sign(g).
        #expect(abs(p[0] - 0.9) < 1e-6)
        #expect(abs(p[1] - (-1.9)) < 1e-6)
        g = [1.0, 0.0]
        adam.update(p, gradients: g)
        // Step 2, coordinate 0: m = 0.9·0.05 + 0.1·1 = 0.145; v = 0.999·0.00025 + 0.001·1 = 0.00124975
        // m̂ = 0.145/0.19 = 0.7631579; v̂ = 0.00124975/0.001999 = 0.6251876; step = 0.1·0.7631579/0.7906881
        let step0 = 0.1 * (0.145 / 0.19) / ((0.00124975 / 0.001999).squareRoot() + 1e-8)
        #expect(abs(Double(p[0]) - (0.9 - step0)) < 1e-6)
        // Coordinate 1: m = 0.9·(−0.4) = −0.36; v = 0.999·0.016 = 0.015984; m̂ = −1.8947368; v̂ = 7.9959980
        let step1 = 0.1 * (-0.36 / 0.19) / ((0.015984 / 0.001999).squareRoot() + 1e-8)
        #expect(abs(Double(p[1]) - (-1.9 - step1)) < 1e-6)
        #expect(adam.step == 2)
    }

    @Test func withoutBiasCorrectionFirstStepIsSmaller() {
        let p = FloatBuffer([0.0])
        let adam = AdamOptimizer(parameterCount: 1, configuration: AdamConfiguration(learningRate: 0.1, biasCorrection: false))
        adam.update(p, gradients: [2.0])
        // m = 0.2, v = 0.004: step = 0.1 · 0.2 / (0.0632456 + 1e-8) = 0.3162278 (to float precision:
        // 1 − 0.999 in Float is 0.00099998713, which moves v, and so the step, by 3e-6 relative).
        #expect(abs(Double(p[0]) + 0.1 * 0.2 / (0.004.squareRoot() + 1e-8)) < 2e-6 * 0.32 * 10)
    }

    @Test func clippingScalesTheGradient() {
        let a = FloatBuffer([0.0, 0.0]), b = FloatBuffer([0.0, 0.0])
        let clipped = AdamOptimizer(parameterCount: 2, configuration: AdamConfiguration(learningRate: 0.1, biasCorrection: false, clipNorm: 1))
        let plain = AdamOptimizer(parameterCount: 2, configuration: AdamConfiguration(learningRate: 0.1, biasCorrection: false))
        let norm = clipped.update(a, gradients: [3, 4])
        plain.update(b, gradients: [0.6, 0.8])
        #expect(abs(norm - 5) < 1e-6)
        #expect(a.array == b.array)
    }

    /// Long vectors run the SIMD body; the result equals the scalar update element by element.
    @Test func simdAndScalarPathsAgree() {
        var rng = RandomGenerator(seed: 1)
        let n = 37
        let p1 = FloatBuffer(rng.normalArray(count: n)), g = rng.normalArray(count: n)
        let p2 = FloatBuffer(count: 1)
        let adam = AdamOptimizer(parameterCount: n, configuration: AdamConfiguration(learningRate: 0.01))
        let before = p1.array
        adam.update(p1, gradients: g)
        for i in 0..<n {
            p2[0] = before[i]
            let one = AdamOptimizer(parameterCount: 1, configuration: AdamConfiguration(learningRate: 0.01))
            one.update(p2, gradients: [g[i]])
            #expect(abs(p1[i] - p2[0]) < 1e-7)
        }
    }
}
