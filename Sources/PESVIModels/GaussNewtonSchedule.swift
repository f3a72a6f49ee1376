import Foundation

/// A PE-SVI-GN schedule for a ReLU decoder: the continuation over smoothed ReLUs
/// (``GaussNewtonSmoothing``) and how its smoothed iterations solve (Krylov dimension, whether
/// the point's last step joins the basis, whether the Krylov vectors are preconditioned). A nil
/// setting means `pesvi`'s default for the model's shape
/// (``GaussNewtonRefinement/defaultSmoothedKrylovDimension(latent:dataWidth:preconditioned:)``,
/// ``GaussNewtonRefinement/defaultSmoothedKrylovLastStep(latent:dataWidth:preconditioned:)``,
/// ``GaussNewtonRefinement/defaultKrylovPreconditioned(latent:dataWidth:)``).
///
/// A model chooses between ``candidates(latent:dataWidth:)`` on its validation rows when it is trained: the one
/// that reaches SVI's level there in the fewest steps per point, the standard one unless another
/// saves at least ``GaussNewtonScheduleChoice/margin`` steps (`docs/RESULTS.md`, twenty-ninth
/// session).
public struct GaussNewtonSchedule: Sendable, Equatable, Codable {
    public var smoothing: GaussNewtonSmoothing
    /// Krylov vectors of the smoothed iterations (0: the exact solve; nil: the default).
    public var smoothedKrylov: Int?
    /// Whether the smoothed iterations' Krylov basis takes the point's last step (nil: the default).
    public var smoothedLastStep: Bool?
    /// Whether the Krylov vectors are preconditioned by the mean curvature at the starts of the
    /// model's validation rows (nil: the default).
    public var preconditioned: Bool?

    public init(smoothing: GaussNewtonSmoothing, smoothedKrylov: Int? = nil, smoothedLastStep: Bool? = nil, preconditioned: Bool? = nil) {
        precondition(smoothedKrylov.map { $0 >= 0 } ?? true, "GaussNewtonSchedule: smoothedKrylov must be ≥ 0, got \(smoothedKrylov!)")
        self.smoothing = smoothing
        self.smoothedKrylov = smoothedKrylov
        self.smoothedLastStep = smoothedLastStep
        self.preconditioned = preconditioned
    }

    /// Checks a decoded schedule (a hand-edited config.json must not reach a precondition).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let k = try c.decodeIfPresent(Int.self, forKey: .smoothedKrylov)
        if let k, k < 0 {
            throw DecodingError.dataCorruptedError(forKey: .smoothedKrylov, in: c, debugDescription: "smoothedKrylov must be 0 or more, got \(k)")
        }
        self.init(smoothing: try c.decode(GaussNewtonSmoothing.self, forKey: .smoothing),
                  smoothedKrylov: k, smoothedLastStep: try c.decodeIfPresent(Bool.self, forKey: .smoothedLastStep),
                  preconditioned: try c.decodeIfPresent(Bool.self, forKey: .preconditioned))
    }

    /// `pesvi`'s default: ``GaussNewtonSmoothing/standard`` (4 smoothed iterations at c = 0.4,
    /// f = 0.5), every solve setting at its default for the model's shape.
    public static let standard = GaussNewtonSchedule(smoothing: .standard)

    /// The continuation of ``smoothedToTheEnd(latent:dataWidth:)``: 9 smoothed iterations at
    /// c = 0.8, f = 0.6 (the temperature falls more slowly than the standard one's and is still
    /// 0.8·0.6⁵ ≈ 0.06 of the spread at the sixth iteration).
    public static let smoothingToTheEnd = GaussNewtonSmoothing(iterations: 9, scale: 0.8, factor: 0.6)

    /// Smoothing until the fit is made: ``smoothingToTheEnd``; where the data is at least as
    /// wide as the latent and the smoothed iterations solve in Krylov subspaces by default
    /// (|z| ≥ 32), in 8 preconditioned Krylov vectors without the last step; elsewhere each
    /// solve at the shape's default. On digits |z| = 64 Arch3, whose points from the
    /// pseudo-encoder's start fall into poorer ReLU basins once the standard schedule's four
    /// smoothed iterations end, it reached SVI's level in 6 steps where the standard one took
    /// 8 on the test rows (10.9 → 8 on the validation rows), and cost every other digits ReLU
    /// cell 1–2 steps (`docs/RESULTS.md`, twenty-eighth session).
    public static func smoothedToTheEnd(latent: Int, dataWidth: Int) -> GaussNewtonSchedule {
        guard dataWidth >= latent, GaussNewtonRefinement.defaultSmoothedKrylovDimension(latent: latent, dataWidth: dataWidth) > 0 else {
            return GaussNewtonSchedule(smoothing: smoothingToTheEnd)
        }
        return GaussNewtonSchedule(smoothing: smoothingToTheEnd, smoothedKrylov: 8, smoothedLastStep: false, preconditioned: true)
    }

    /// The schedules a model of latent size `latent` and data width `dataWidth` chooses
    /// between, the standard one first.
    public static func candidates(latent: Int, dataWidth: Int) -> [GaussNewtonSchedule] {
        [.standard, smoothedToTheEnd(latent: latent, dataWidth: dataWidth)]
    }

    /// A short name: "standard" (``standard``), "smoothed to the end" (``smoothingToTheEnd``'s
    /// continuation, solved as ``smoothedToTheEnd(latent:dataWidth:)`` says for some shape),
    /// else the settings.
    public var name: String {
        if self == .standard { return "standard" }
        if smoothing == Self.smoothingToTheEnd
            && (smoothedKrylov == nil && smoothedLastStep == nil && preconditioned == nil
                || smoothedKrylov == 8 && smoothedLastStep == false && preconditioned == true) {
            return "smoothed to the end"
        }
        func n(_ v: Double) -> String { String(format: "%g", v) }
        var s = !smoothing.isActive ? "no smoothing"
            : "\(smoothing.iterations) smoothed at c = \(n(smoothing.scale)), f = \(n(smoothing.factor))" + (smoothing.holdsDamping ? "" : ", λ lowered")
        if let k = smoothedKrylov { s += ", K = \(k)" }
        if let p = preconditioned { s += p ? ", preconditioned" : ", not preconditioned" }
        if let l = smoothedLastStep { s += l ? ", last step" : ", no last step" }
        return s
    }
}

/// A model's choice of PE-SVI-GN schedule, made on its validation rows (stored in config.json).
public struct GaussNewtonScheduleChoice: Sendable, Equatable, Codable {
    /// The chosen schedule.
    public var schedule: GaussNewtonSchedule
    /// SVI's level on the validation rows (its expected reconstruction) that the candidates raced to.
    public var target: Double
    /// Each candidate tried, in order, with the mean steps per point to the first iteration
    /// within 1 % of `target` (nil: not within the race's iterations) and its final expected
    /// reconstruction.
    public var trials: [Trial]

    public struct Trial: Sendable, Equatable, Codable {
        public var schedule: GaussNewtonSchedule
        public var stepsToTarget: Double?
        public var reconstruction: Double
        public init(schedule: GaussNewtonSchedule, stepsToTarget: Double?, reconstruction: Double) {
            self.schedule = schedule
            self.stepsToTarget = stepsToTarget
            self.reconstruction = reconstruction
        }
    }

    public init(schedule: GaussNewtonSchedule, target: Double, trials: [Trial]) {
        self.schedule = schedule
        self.target = target
        self.trials = trials
    }

    /// The choice and the race in a line: "standard (steps per point to SVI's level 0.0032 on the
    /// validation rows: standard 10.91, smoothed to the end 8.00)" ("never": not within the race).
    public var summary: String {
        let steps = trials.map { "\($0.schedule.name) \($0.stepsToTarget.map { String(format: "%.2f", $0) } ?? "never")" }
        return "\(schedule.name) (steps per point to SVI's level \(String(format: "%.5g", target)) on the validation rows: "
            + steps.joined(separator: ", ") + ")"
    }

    /// Steps per point a later candidate must save over the first (the standard schedule) to be
    /// chosen: the race runs on a few hundred validation rows, and a fraction of a step there
    /// is within what the rows chosen move it.
    public static let margin = 1.0

    /// The rule: the first trial unless another reaches the target in at least ``margin`` fewer
    /// steps per point (or the first never reaches it and another does); among those, the
    /// fewest steps (ties: the earlier). `trials` not empty.
    public static func choose(_ trials: [Trial]) -> Int {
        precondition(!trials.isEmpty, "GaussNewtonScheduleChoice.choose: no trials")
        var best = 0
        for i in 1..<trials.count {
            guard let s = trials[i].stepsToTarget else { continue }
            let first = trials[0].stepsToTarget ?? .infinity
            let current = best == 0 ? first - margin : trials[best].stepsToTarget!
            if s <= current && (best == 0 || s < current) { best = i }
        }
        return best
    }
}
