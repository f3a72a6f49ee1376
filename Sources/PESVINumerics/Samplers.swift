import Foundation

/// Samplers for the univariate distributions used by the paper's synthetic data (§4.1).
///
/// All of them take and return `Double`: the gamma and beta samplers need the range (a
/// gamma variate with shape 0.1 is often below 1e-30), and the callers convert to `Float`
/// once, at the end. Each sampler consumes draws from this generator only, so a seed
/// reproduces the whole stream. The normal core is `standardNormal()` (ziggurat, 32-bit
/// resolution, delivered as `Float` and widened exactly).
///
/// Parameters outside the domain (a non-positive or non-finite scale or shape, `high < low`)
/// are programming errors: the sampler stops with a message naming the parameter, in every
/// build configuration (it uses `fatalError`, which `-Ounchecked` keeps), rather than
/// returning NaN.
extension RandomGenerator {
    /// Normal N(mean, std²). Mean `mean`, variance `std²`. Requires `std ≥ 0`, both finite.
    @inlinable
    public mutating func normal(mean: Double, std: Double) -> Double {
        if !(std >= 0 && std.isFinite && mean.isFinite) {
            fatalError("normal(mean:std:) needs finite mean and std ≥ 0, got mean \(mean), std \(std)")
        }
        return mean + std * Double(standardNormal())
    }

    /// Uniform on [low, high). Mean (low+high)/2, variance (high−low)²/12.
    /// Requires `low ≤ high`, both finite (`low == high` returns `low`).
    @inlinable
    public mutating func uniform(low: Double, high: Double) -> Double {
        if !(low <= high && low.isFinite && high.isFinite) {
            fatalError("uniform(low:high:) needs finite low ≤ high, got low \(low), high \(high)")
        }
        let x = low + (high - low) * uniformDouble()
        return x < high ? x : low   // guard the rounding of low + span·u up to high
    }

    /// Logistic(location μ, scale s) by inversion, x = μ + s·log(u/(1−u)).
    /// Mean μ, variance s²π²/3. Requires `scale > 0`, both finite.
    @inlinable
    public mutating func logistic(location: Double, scale: Double) -> Double {
        if !(scale > 0 && scale.isFinite && location.isFinite) {
            fatalError("logistic(location:scale:) needs finite location and scale > 0, got \(location), \(scale)")
        }
        // u in (0, 1): 53-bit grid shifted by half a step, so neither log argument is 0.
        let u = (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
        return location + scale * Foundation.log(u / (1 - u))
    }

    /// Gumbel (maximum) with location μ and scale β by inversion, x = μ − β·log(−log u).
    /// Mean μ + βγ (γ = 0.5772156649…, Euler–Mascheroni), variance β²π²/6.
    /// Requires `scale > 0`, both finite.
    @inlinable
    public mutating func gumbel(location: Double, scale: Double) -> Double {
        if !(scale > 0 && scale.isFinite && location.isFinite) {
            fatalError("gumbel(location:scale:) needs finite location and scale > 0, got \(location), \(scale)")
        }
        // u in (0, 1) exclusive at both ends, so −log u is in (0, ∞) and its log is finite.
        let u = (Double(next() >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
        return location - scale * Foundation.log(-Foundation.log(u))
    }

    /// Gamma(shape k, scale θ) by Marsaglia & Tsang (2000), "A simple method for generating
    /// gamma variables": for k ≥ 1 the squeeze-and-reject method on d·v with d = k − 1/3;
    /// for k < 1 the boost X = G(k+1)·U^(1/k). Mean kθ, variance kθ².
    /// Requires `shape > 0` and `scale > 0`, both finite. For very small shapes the result
    /// can underflow to 0 (Gamma(0.01) is below 1e-300 with probability about 0.001).
    @inlinable
    public mutating func gamma(shape: Double, scale: Double) -> Double {
        if !(shape > 0 && shape.isFinite && scale > 0 && scale.isFinite) {
            fatalError("gamma(shape:scale:) needs finite shape > 0 and scale > 0, got shape \(shape), scale \(scale)")
        }
        return scale * Foundation.exp(logStandardGamma(shape: shape))
    }

    /// Beta(a, b) as X/(X+Y) with X ~ Gamma(a, 1), Y ~ Gamma(b, 1), computed from the gammas'
    /// logarithms so that small shapes (where both gammas can underflow) still give a value in
    /// [0, 1] instead of 0/0. Mean a/(a+b), variance ab/((a+b)²(a+b+1)).
    /// Requires `a > 0` and `b > 0`, both finite.
    @inlinable
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        if !(a > 0 && a.isFinite && b > 0 && b.isFinite) {
            fatalError("beta(_:_:) needs finite a > 0 and b > 0, got a \(a), b \(b)")
        }
        let lx = logStandardGamma(shape: a), ly = logStandardGamma(shape: b)
        // X/(X+Y) = 1/(1 + exp(ly − lx)); exp overflows to +inf → 0, underflows to 0 → 1.
        return 1 / (1 + Foundation.exp(ly - lx))
    }

    /// log of a Gamma(shape, 1) variate, Marsaglia–Tsang; the k < 1 boost is applied in log
    /// space (log G(k+1) + log(U)/k), so it never underflows.
    @inlinable
    mutating func logStandardGamma(shape: Double) -> Double {
        if shape < 1 {
            let boost = Foundation.log(uniformDoubleOpenZero()) / shape
            return logStandardGamma(shape: shape + 1) + boost
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = Double(standardNormal())
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = uniformDoubleOpenZero()
            let x2 = x * x
            if u < 1 - 0.0331 * x2 * x2 { return Foundation.log(d * v) }
            if Foundation.log(u) < 0.5 * x2 + d * (1 - v + Foundation.log(v)) { return Foundation.log(d * v) }
        }
    }
}
