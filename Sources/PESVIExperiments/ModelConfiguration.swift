import Foundation
import PESVIData
import PESVIModels

/// How the chosen refinement pace was found.
public struct PaceRecord: Codable, Sendable, Equatable {
    /// The refinement learning rate (Adam) used from the pseudo-encoder start.
    public var learningRate: Float
    /// The number of refinement steps it was chosen for.
    public var steps: Int
    /// "paper-grid" (section 3.3's grid search) or "auto" (log-scale search).
    public var method: String
    /// Each candidate's outcome on the validation split.
    public var trials: [PaceSelection.Trial]
}

/// The seeded split of the rows the model was trained on.
public struct SplitRecord: Codable, Sendable, Equatable {
    public var rows: Int
    public var validationFraction: Double
    public var testFraction: Double
    public var seed: UInt64
}

/// Everything about a trained model except its weights: `config.json` in a model directory.
public struct ModelConfiguration: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1
    public var formatVersion: Int = ModelConfiguration.currentFormatVersion
    /// Latent size |z|.
    public var latent: Int
    /// Data width d.
    public var dataWidth: Int
    public var architecture: Architecture
    public var objective: Objective
    /// Per-column standardization fitted on the training rows (nil: data used as is).
    public var standardizer: Standardizer?
    public var columnNames: [String]?
    /// The refinement pace for PE-SVI (nil until chosen).
    public var pace: PaceRecord?
    /// The automatic pace of guarded refinement (PE-SVI-auto), found by a log-scale search on
    /// the validation split (nil until found; `pesvi infer --lr auto` finds and stores it).
    public var autoPace: Float? = nil
    /// The step rule the automatic pace chose with it (``AutomaticPace/Outcome/stepRule``): Adam
    /// at `autoPace`, or the Cauchy, subspace or Krylov step (`autoPace` then 1, the step's own length).
    /// nil: Adam (models whose pace was found before the rule was part of the search).
    public var autoStepRule: GuardedRefinementConfiguration.StepRule? = nil

    /// PE-SVI-auto's stored choice applied to `base`: nil until the automatic pace is found.
    public func automaticRefinement(_ base: GuardedRefinementConfiguration) -> GuardedRefinementConfiguration? {
        guard let autoPace else { return nil }
        var c = base
        c.learningRate = autoPace
        c.stepRule = autoStepRule ?? .adam
        return c
    }

    /// Stores an automatic-pace outcome (nil: not found, e.g. no validation rows).
    public mutating func storeAutomaticPace(_ outcome: AutomaticPace.Outcome?) {
        autoPace = outcome?.learningRate
        autoStepRule = outcome?.stepRule
    }
    /// PE-SVI-GN's schedule, chosen on the validation split among
    /// ``GaussNewtonSchedule/candidates`` (nil: not chosen, e.g. a linear decoder, another
    /// objective or a model from an older pesvi; PE-SVI-GN then takes the standard schedule).
    /// The `--gn-smoothing*`, `--gn-smoothed-*` and `--gn-preconditioner` flags override it.
    public var gaussNewtonSchedule: GaussNewtonScheduleChoice? = nil
    /// The Adam rate of test-time SVI from a random start (default: phase 1's latent rate).
    public var sviLearningRate: Float
    public var phase1: EarlyDecoderTrainingConfiguration
    public var phase2: DeferredEncoderTrainingConfiguration
    /// The VAE baseline's settings, if one was trained.
    public var vae: VAETrainingConfiguration?
    public var seed: UInt64
    public var split: SplitRecord
    /// Where the training data came from (a path, "digits", "synthetic:…").
    public var dataSource: String
    /// Epochs run and seconds spent in each phase.
    public var trainingSummary: [String: Double]

    public var decoderWidths: [Int] { architecture.decoderWidths(latent: latent, data: dataWidth) }
    public var encoderWidths: [Int] { architecture.encoderWidths(latent: latent, data: dataWidth) }
}
