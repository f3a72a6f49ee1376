/// Stops a training loop when a monitored objective (lower is better) has not improved by a
/// relative `minRelativeImprovement` for `patience` consecutive checks.
public struct PlateauStopper: Sendable, Codable, Equatable {
    public var patience: Int
    public var minRelativeImprovement: Double
    public private(set) var best: Double = .infinity
    public private(set) var bestIndex: Int = -1
    public private(set) var checksWithoutImprovement = 0

    public init(patience: Int, minRelativeImprovement: Double = 1e-3) {
        self.patience = patience
        self.minRelativeImprovement = minRelativeImprovement
    }

    /// Records the value of check `index`; returns true when it is a new best.
    @discardableResult
    public mutating func record(_ value: Double, index: Int) -> Bool {
        if value.isFinite && (best == .infinity || value < best - minRelativeImprovement * abs(best)) {
            best = value
            bestIndex = index
            checksWithoutImprovement = 0
            return true
        }
        checksWithoutImprovement += 1
        return false
    }

    /// True once `patience` checks in a row brought no improvement.
    public var shouldStop: Bool { checksWithoutImprovement >= patience }
}
