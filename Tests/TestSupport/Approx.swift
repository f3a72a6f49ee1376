/// Shared helpers for the test bundles.

/// Largest |a[i] − b[i]| / max(1, |b[i]|): a relative error that degrades to absolute near 0.
public func maxRelativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "maxRelativeError: counts \(a.count) and \(b.count) differ")
    var worst: Float = 0
    for i in a.indices {
        let e = abs(a[i] - b[i]) / max(1, abs(b[i]))
        if e.isNaN { return .nan }
        worst = max(worst, e)
    }
    return worst
}
