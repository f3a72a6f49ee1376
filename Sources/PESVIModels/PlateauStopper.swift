import PESVINumerics

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

/// The epoch loop shared by the supervised phases (pseudo-encoder, VAE): each epoch a seeded
/// shuffle of `rows`, one `step` per batch, then `validate` (nil: the training objective is
/// monitored). `newBest` is called whenever the monitored value improves, so the caller can
/// snapshot its weights. Returns true when stopped on a plateau, false at the epoch limit or
/// when `progress` returned false.
func runEpochs(epochs: Int, rows: Int, batchSize: Int, patience: Int, minRelativeImprovement: Double,
               rng: inout RandomGenerator, history: inout [EpochRecord],
               step: (ArraySlice<Int>) -> Double, validate: () -> Double?, newBest: () -> Void,
               progress: ((EpochRecord) -> Bool)?) -> Bool {
    var stopper = PlateauStopper(patience: patience, minRelativeImprovement: minRelativeImprovement)
    while history.count < epochs {
        let start = ContinuousClock.now
        let order = rng.permutation(rows)
        var sum = 0.0, b = 0
        while b < order.count {
            let batch = order[b..<min(b + batchSize, order.count)]
            sum += step(batch) * Double(batch.count)
            b += batchSize
        }
        let v = validate()
        let elapsed = ContinuousClock.now - start
        let r = EpochRecord(epoch: history.count + 1, trainObjective: sum / Double(max(rows, 1)), validationObjective: v,
                            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        history.append(r)
        if stopper.record(v ?? r.trainObjective, index: r.epoch) { newBest() }
        if let progress, !progress(r) { return false }
        if stopper.shouldStop { return true }
    }
    return false
}
