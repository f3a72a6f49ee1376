/// Step-counting rules on objective curves (lower is better). `curve[t]` is the mean
/// per-point objective after t steps; `curve[0]` is the start.
public enum Convergence {
    /// True when `value` is within `relativeTolerance` of `target` from above or below it:
    /// value ≤ target + relativeTolerance·|target|.
    @inline(__always)
    public static func reaches(_ value: Double, _ target: Double, relativeTolerance: Double = 0.01) -> Bool {
        value <= target + relativeTolerance * abs(target)
    }

    /// The first step t with curve[t] within `relativeTolerance` (default 1 %) of `target`,
    /// or nil if none. For SVI, `target` is its own final plateau ("steps to converge"); for
    /// PE-SVI it is SVI's converged objective ("steps to reach SVI").
    public static func firstStep(reaching target: Double, in curve: [Double], relativeTolerance: Double = 0.01) -> Int? {
        curve.firstIndex { reaches($0, target, relativeTolerance: relativeTolerance) }
    }
}

/// When test-time refinement stops.
public enum StoppingRule: Sendable, Equatable, Codable {
    /// Exactly this many steps.
    case fixedSteps(Int)
    /// SVI's convergence rule: after every `window` steps, compare the mean objective of the
    /// last window with that of the window before; stop when it improved by less than
    /// `tolerance` (relative), or after `maxSteps`. The plateau value is the last window's mean.
    case plateau(window: Int, tolerance: Double, maxSteps: Int)

    /// The default SVI rule: windows of 100 steps, 0.01 % relative improvement, at most 20,000
    /// steps. (0.1 % per 50 steps stopped SVI on 50,000 synthetic points at 429 steps and an
    /// objective of 0.372 while the same decoder's validation rows, stepped longer, reached 0.248.)
    public static let sviDefault = StoppingRule.plateau(window: 100, tolerance: 1e-4, maxSteps: 20_000)
}
