import Foundation
import PESVINumerics

/// Hyperparameters of Adam (Kingma & Ba, 2014, algorithm 1).
///
/// Defaults are the paper's: β₁ = 0.9, β₂ = 0.999, ε = 1e-8. Bias correction is ON by
/// default: the first steps then move each parameter by about `learningRate`, which is what
/// makes a 25-step refinement behave; without it the first step is ~√(1−β₂)/(1−β₁) ≈ 0.32×.
public struct AdamConfiguration: Sendable, Equatable, Codable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// Divide the moment estimates by (1 − βᵗ).
    public var biasCorrection: Bool = true
    /// If set, gradients are rescaled so their global L2 norm is at most this value.
    public var clipNorm: Float? = nil

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                biasCorrection: Bool = true, clipNorm: Float? = nil) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.biasCorrection = biasCorrection
        self.clipNorm = clipNorm
    }

    /// The step-size factors for step t (1-based): returns (lr / (1 − β₁ᵗ), 1 / (1 − β₂ᵗ)), so
    /// the update is θ −= a · m / (√(v · b) + ε).
    @inline(__always)
    func factors(step t: Int, memo: inout AdamFactorMemo) -> (Float, Float) {
        if memo.step != t { (memo.a, memo.b) = factors(step: t); memo.step = t }
        return (memo.a, memo.b)
    }

    @inline(__always)
    func factors(step t: Int) -> (Float, Float) {
        guard biasCorrection else { return (learningRate, 1) }
        let c1 = 1 - Foundation.pow(Double(beta1), Double(t)), c2 = 1 - Foundation.pow(Double(beta2), Double(t))
        return (Float(Double(learningRate) / c1), Float(1 / c2))
    }
}


/// The last step count whose bias-correction factors were computed, and those factors: rows
/// updated one after another mostly share a step count (at test time all do), so a loop over
/// rows computes the two powers once instead of per row. Same values as without it.
public struct AdamFactorMemo: Sendable {
    var step = 0
    var a: Float = 0
    var b: Float = 0
    public init() {}
}

/// The Adam update of `count` parameters at `p` with gradients `g` and moments `m`, `v`:
///
///     m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − a·m / (√(b·v) + ε)
///
/// with (a, b) from ``AdamConfiguration/factors(step:)``. `gradScale` multiplies g first
/// (for clipping or averaging).
@inline(__always)
func adamUpdate(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                count: Int, a: Float, b: Float, config c: AdamConfiguration, gradScale: Float = 1) {
    let b1 = SIMD16<Float>(repeating: c.beta1), b2 = SIMD16<Float>(repeating: c.beta2)
    let ob1 = SIMD16<Float>(repeating: 1 - c.beta1), ob2 = SIMD16<Float>(repeating: 1 - c.beta2)
    let va = SIMD16<Float>(repeating: a), vb = SIMD16<Float>(repeating: b)
    let eps = SIMD16<Float>(repeating: c.epsilon), gs = SIMD16<Float>(repeating: gradScale)
    var i = 0
    while i + 16 <= count {
        let gi = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD16<Float>.self) * gs
        let mi = b1 * UnsafeRawPointer(m + i).loadUnaligned(as: SIMD16<Float>.self) + ob1 * gi
        let vi = b2 * UnsafeRawPointer(v + i).loadUnaligned(as: SIMD16<Float>.self) + ob2 * gi * gi
        UnsafeMutableRawPointer(m + i).storeBytes(of: mi, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(v + i).storeBytes(of: vi, as: SIMD16<Float>.self)
        let pi = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
        let step = va * mi / ((vb * vi).squareRoot() + eps)
        UnsafeMutableRawPointer(p + i).storeBytes(of: pi - step, as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        let gi = g[i] * gradScale
        m[i] = c.beta1 * m[i] + (1 - c.beta1) * gi
        v[i] = c.beta2 * v[i] + (1 - c.beta2) * gi * gi
        p[i] -= a * m[i] / ((b * v[i]).squareRoot() + c.epsilon)
        i += 1
    }
}

/// Adam over one flat parameter buffer (all of a network's weights, say), with its moment
/// buffers and a single step count.
public final class AdamOptimizer: @unchecked Sendable {
    public var configuration: AdamConfiguration
    /// Steps taken so far (t in the bias correction).
    public private(set) var step: Int = 0
    public let m: FloatBuffer
    public let v: FloatBuffer

    public init(parameterCount: Int, configuration: AdamConfiguration) {
        self.configuration = configuration
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
    }

    /// One Adam step on `parameters` with `gradients` (same count), after multiplying the
    /// gradients by `gradientScale` and, if configured, clipping their global norm.
    /// Returns the gradient norm before clipping (after `gradientScale`).
    @discardableResult
    public func update(_ parameters: FloatBuffer, gradients: UnsafePointer<Float>, gradientScale: Float = 1) -> Float {
        precondition(parameters.count == m.count, "Adam: \(parameters.count) parameters, optimizer sized for \(m.count)")
        step += 1
        let (a, b) = configuration.factors(step: step)
        let norm = Float(Elementwise.sumOfSquares(gradients, count: m.count).squareRoot()) * abs(gradientScale)
        var scale = gradientScale
        if let clip = configuration.clipNorm, norm > clip, norm > 0 { scale *= clip / norm }
        adamUpdate(parameters.pointer, gradients, m.pointer, v.pointer, count: m.count, a: a, b: b,
                   config: configuration, gradScale: scale)
        return norm
    }

    /// Forgets the moments and the step count.
    public func reset() { step = 0; m.zero(); v.zero() }
}
