/// Central finite differences of a scalar function of a float buffer, coordinate by coordinate.
///
/// `f` is evaluated with p[i] ± h; p is restored afterwards. Returns the numeric gradient at
/// the listed coordinates.
public func numericGradient(_ p: UnsafeMutablePointer<Float>, indices: [Int], h: Float = 1e-2, _ f: () -> Double) -> [Double] {
    indices.map { i in
        let keep = p[i]
        p[i] = keep + h
        let up = f()
        p[i] = keep - h
        let down = f()
        p[i] = keep
        return (up - down) / (2 * Double(h))
    }
}

/// Asserts-free comparison: the worst |analytic − numeric| / max(scale, |numeric|) over entries.
public func worstGradientError(analytic: [Double], numeric: [Double], scale: Double) -> Double {
    var worst = 0.0
    for (a, n) in zip(analytic, numeric) { worst = max(worst, abs(a - n) / max(scale, abs(n))) }
    return worst
}

/// The worst relative disagreement between an analytic gradient and central differences,
/// checking each coordinate at several step sizes and keeping the best agreement.
///
/// ReLU networks are piecewise linear: a step that carries a pre-activation across zero makes
/// that one difference quotient wrong while the gradient is right. A wrong gradient disagrees
/// at every step size, so taking the best of a few sizes keeps the check sharp.
public func worstKinkRobustError(analytic: [Double], at p: UnsafeMutablePointer<Float>, indices: [Int],
                                 steps: [Float] = [2e-3, 5e-4], scale: Double, _ f: () -> Double) -> Double {
    var worst = 0.0
    for (k, i) in indices.enumerated() {
        var best = Double.infinity
        for h in steps {
            let n = numericGradient(p, indices: [i], h: h, f)[0]
            best = min(best, abs(analytic[k] - n) / max(scale, abs(n)))
        }
        worst = max(worst, best)
    }
    return worst
}
