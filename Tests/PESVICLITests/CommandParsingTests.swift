import Testing
import PESVIExperiments
import PESVIModels
import PESVINumerics
@testable import PESVICLI

@Suite struct CommandParsingTests {
    @Test func unknownOptionIsRejected() {
        #expect(throws: (any Error).self) { try PESVICommand.parseAsRoot(["--no-such-flag"]) }
    }

    /// `--init-logvar -4` (a negative value after a space) parses as the value, not as an
    /// unknown flag `-4`; `--init-logvar=-4` keeps working.
    @Test(arguments: [["--init-logvar", "-4"], ["--init-logvar=-4"]])
    func negativeInitialLogVarianceParses(_ words: [String]) throws {
        let options = try ModelOptions.parse(words)
        #expect(options.initLogvar == -4)
    }

    /// The Gauss-Newton settings reach the comparison; nonsense values are refused.
    @Test func gaussNewtonFlagsParseAndValidate() throws {
        let flags = try ComparisonFlags.parse(["--gn-max-steps", "7", "--gn-tolerance", "1e-5", "--gn-trials", "2", "--gn-damping", "0.1",
                                                "--gn-acceptance", "0.25", "--gn-smoothing", "2", "--gn-smoothing-scale", "0.7",
                                                "--gn-smoothing-factor", "0.25", "--gn-krylov", "4", "--gn-smoothed-krylov", "6"])
        let o = flags.options(common: try CommonOptions.parse([]))
        #expect(o.gaussNewtonMaxSteps == 7 && o.gaussNewtonTolerance == 1e-5 && o.gaussNewtonTrials == 2 && o.gaussNewtonDamping == 0.1
                && o.gaussNewtonAcceptance == 0.25)
        #expect(o.gaussNewtonSmoothing == GaussNewtonSmoothing(iterations: 2, scale: 0.7, factor: 0.25) && o.gaussNewtonKrylov == 4)
        #expect(o.gaussNewtonSmoothedKrylov == 6 && o.gaussNewtonSmoothedKrylov(latent: 64, dataWidth: 64) == 6)
        let defaults = try ComparisonFlags.parse([]).options(common: try CommonOptions.parse([]))
        #expect(defaults.gaussNewtonDamping == 1e-3 && defaults.gaussNewtonAcceptance == 0.1)
        #expect(defaults.gaussNewtonSmoothing == .standard && GaussNewtonSmoothing.standard.isActive && defaults.gaussNewtonKrylov == 0)
        // The smoothed iterations' Krylov dimension by default: min(|z|/4, 16) where that is ≥ 8,
        // and 8 where the latent is wider than the data (from |z| = 32 on).
        #expect(defaults.gaussNewtonSmoothedKrylov == nil)
        #expect([8, 16, 31, 32, 48, 64, 128, 300].map { defaults.gaussNewtonSmoothedKrylov(latent: $0, dataWidth: 300) } == [0, 0, 0, 8, 12, 16, 16, 16])
        #expect([8, 16, 31, 32, 48, 64, 65, 128, 300].map { defaults.gaussNewtonSmoothedKrylov(latent: $0, dataWidth: 64) }
                == [0, 0, 0, 8, 12, 16, 8, 8, 8])
        #expect([16, 32, 64].map { defaults.gaussNewtonSmoothedKrylov(latent: $0, dataWidth: 8) } == [0, 8, 8])
        let exact = try ComparisonFlags.parse(["--gn-smoothed-krylov", "0"]).options(common: try CommonOptions.parse([]))
        #expect(exact.gaussNewtonSmoothedKrylov(latent: 64, dataWidth: 64) == 0 && exact.gaussNewtonSmoothedKrylov(latent: 128, dataWidth: 64) == 0)
        // --gn-krylov alone: its solve in every iteration, the smoothed ones included.
        let krylov = try ComparisonFlags.parse(["--gn-krylov", "4"]).options(common: try CommonOptions.parse([]))
        #expect(krylov.gaussNewtonSmoothedKrylov(latent: 64, dataWidth: 64) == 0 && krylov.gaussNewtonSmoothedKrylov(latent: 128, dataWidth: 64) == 0)
        // The smoothed Krylov basis's last step: the model's rule by default, or as given.
        #expect(defaults.gaussNewtonSmoothedKrylovLastStep == nil)
        #expect(defaults.gaussNewtonRefinement(decoder: tinyDecoder(latent: 8, dataWidth: 4), threads: 1).smoothedKrylovLastStep == false)
        #expect(defaults.gaussNewtonRefinement(decoder: tinyDecoder(latent: 4, dataWidth: 8), threads: 1).smoothedKrylovLastStep == true)
        for (word, value) in [("false", false), ("true", true)] {
            let given = try ComparisonFlags.parse(["--gn-smoothed-last-step", word]).options(common: try CommonOptions.parse([]))
            #expect(given.gaussNewtonSmoothedKrylovLastStep == value)
            #expect(given.gaussNewtonRefinement(decoder: tinyDecoder(latent: 4, dataWidth: 8), threads: 1).smoothedKrylovLastStep == value)
            #expect(given.gaussNewtonRefinement(decoder: tinyDecoder(latent: 8, dataWidth: 4), threads: 1).smoothedKrylovLastStep == value)
        }
        #expect(throws: (any Error).self) { try ComparisonFlags.parse(["--gn-smoothed-last-step", "maybe"]) }
        // The first-layer basis: on by default where it applies (|z| = 72, h₁ = 128 < 144, d < |z|), off when asked.
        #expect(defaults.gaussNewtonSmoothedKrylovFirstLayer)
        #expect(defaults.gaussNewtonRefinement(decoder: tinyDecoder(latent: 72, dataWidth: 4), threads: 1).smoothedKrylovInFirstLayer)
        #expect(!defaults.gaussNewtonRefinement(decoder: tinyDecoder(latent: 40, dataWidth: 4), threads: 1).smoothedKrylovInFirstLayer)
        let latentBasis = try ComparisonFlags.parse(["--gn-smoothed-first-layer", "false"]).options(common: try CommonOptions.parse([]))
        #expect(!latentBasis.gaussNewtonSmoothedKrylovFirstLayer)
        #expect(!latentBasis.gaussNewtonRefinement(decoder: tinyDecoder(latent: 72, dataWidth: 4), threads: 1).smoothedKrylovInFirstLayer)
        #expect(throws: (any Error).self) { try ComparisonFlags.parse(["--gn-smoothed-first-layer", "maybe"]) }
        // The Krylov preconditioner: the rule by default, or as asked.
        #expect(defaults.gaussNewtonPreconditioner == nil)
        #expect(defaults.gaussNewtonPreconditioned(latent: 32, dataWidth: 64) && !defaults.gaussNewtonPreconditioned(latent: 64, dataWidth: 64))
        #expect(defaults.gaussNewtonSmoothedKrylov(latent: 32, dataWidth: 64, preconditioned: true) == 6
                && defaults.gaussNewtonSmoothedKrylov(latent: 32, dataWidth: 64) == 8)
        for (word, value) in [("true", true), ("false", false)] {
            let given = try ComparisonFlags.parse(["--gn-preconditioner", word]).options(common: try CommonOptions.parse([]))
            #expect(given.gaussNewtonPreconditioner == value)
            #expect(given.gaussNewtonPreconditioned(latent: 64, dataWidth: 64) == value)
        }
        #expect(throws: (any Error).self) { try ComparisonFlags.parse(["--gn-preconditioner", "maybe"]) }
        let off = try ComparisonFlags.parse(["--gn-smoothing", "0"]).options(common: try CommonOptions.parse([]))
        #expect(!off.gaussNewtonSmoothing.isActive)
        #expect(defaults.gaussNewtonSmoothing.holdsDamping)
        let lower = try ComparisonFlags.parse(["--gn-smoothing-damping", "lower"]).options(common: try CommonOptions.parse([]))
        #expect(!lower.gaussNewtonSmoothing.holdsDamping && lower.gaussNewtonSmoothing.scale == GaussNewtonSmoothing.standard.scale)
        for bad in [["--gn-trials", "0"], ["--gn-max-steps=-1"], ["--gn-tolerance=-1"], ["--gn-tolerance", "nan"],
                    ["--gn-damping=-1"], ["--gn-damping", "inf"], ["--gn-acceptance", "1"], ["--gn-acceptance=-0.1"],
                    ["--gn-acceptance", "nan"], ["--gn-smoothing=-1"], ["--gn-smoothing-scale=-0.1"], ["--gn-smoothing-scale", "inf"],
                    ["--gn-smoothing-factor", "0"], ["--gn-smoothing-factor", "1.5"], ["--gn-smoothing-factor", "nan"],
                    ["--gn-krylov=-1"], ["--gn-smoothed-krylov=-2"], ["--gn-smoothing-damping", "halve"], ["--gn-last-smoothed-krylov", "0"]] {
            #expect(throws: (any Error).self, "\(bad)") { try ComparisonFlags.parse(bad) }
            #expect(throws: (any Error).self, "infer \(bad)") { try InferCommand.parse(Self.inferWords + bad) }
        }
    }

    static let inferWords = ["--model", "M", "--data", "x.csv", "--out", "P.npy", "--method", "gn"]

    /// Without a schedule flag PE-SVI-GN takes the model's chosen schedule; any flag that sets
    /// part of one (the smoothing's four, the smoothed solve's three, --gn-krylov) makes the
    /// flags the whole schedule, the standard values standing in for those not given; other
    /// Gauss-Newton flags leave the model's choice in force. `infer --search-pace` chooses the
    /// schedule again with --method gn, and refuses the flags that would set one.
    @Test func scheduleFlagsOverrideTheModelsChoice() throws {
        let common = try CommonOptions.parse([])
        #expect(try ComparisonFlags.parse([]).options(common: common).gaussNewtonScheduleFromModel)
        #expect(try ComparisonFlags.parse(["--gn-trials", "3", "--gn-damping", "0.01", "--gn-smoothed-first-layer", "false"])
                    .options(common: common).gaussNewtonScheduleFromModel)
        for words in [["--gn-smoothing", "4"], ["--gn-smoothing-scale", "0.4"], ["--gn-smoothing-factor", "0.5"],
                      ["--gn-smoothing-damping", "hold"], ["--gn-smoothed-krylov", "8"], ["--gn-smoothed-last-step", "true"],
                      ["--gn-preconditioner", "false"], ["--gn-krylov", "4"]] {
            let o = try ComparisonFlags.parse(words).options(common: common)
            #expect(!o.gaussNewtonScheduleFromModel, "\(words)")
        }
        let last = try ComparisonFlags.parse(["--gn-last-smoothed-krylov", "3"]).options(common: common)
        #expect(last.gaussNewtonLastSmoothedKrylov == 3 && last.gaussNewtonScheduleFromModel)
        #expect(try ComparisonFlags.parse([]).options(common: common).gaussNewtonLastSmoothedKrylov == nil)
        let scale = try ComparisonFlags.parse(["--gn-smoothing-scale", "0.8"]).options(common: common)
        #expect(scale.gaussNewtonSmoothing == GaussNewtonSmoothing(iterations: 4, scale: 0.8, factor: 0.5))
        #expect(try InferCommand.parse(Self.inferWords + ["--search-pace"]).searchPace)
        #expect(throws: (any Error).self) { try InferCommand.parse(Self.inferWords + ["--search-pace", "--gn-smoothing", "9"]) }
        #expect(throws: (any Error).self) { try InferCommand.parse(["--model", "M", "--data", "x.csv", "--out", "P.npy", "--method", "cauchy", "--search-pace"]) }
    }

    /// `infer --method gn` takes the same Gauss-Newton flags (one definition, one check).
    @Test func inferTakesTheGaussNewtonFlags() throws {
        let c = try InferCommand.parse(Self.inferWords + ["--gn-tolerance", "1e-5", "--gn-trials", "2", "--gn-damping", "0.1",
                                                          "--gn-acceptance", "0.25"])
        #expect(c.gaussNewton.gnTolerance == 1e-5 && c.gaussNewton.gnTrials == 2 && c.gaussNewton.gnDamping == 0.1
                && c.gaussNewton.gnAcceptance == 0.25)
        let unsmoothed = try InferCommand.parse(Self.inferWords + ["--gn-smoothing", "0"]).gaussNewton.smoothing
        let standard = try InferCommand.parse(Self.inferWords).gaussNewton.smoothing
        #expect(!unsmoothed.isActive && standard == ComparisonOptions().gaussNewtonSmoothing)
        let d = try InferCommand.parse(Self.inferWords).gaussNewton
        let o = ComparisonOptions()
        #expect(d.gnTolerance == o.gaussNewtonTolerance && d.gnTrials == o.gaussNewtonTrials && d.gnDamping == o.gaussNewtonDamping
                && d.gnAcceptance == o.gaussNewtonAcceptance)
    }
}

/// A small untrained Arch2 decoder |z| → d for checking which options reach the refinement.
private func tinyDecoder(latent: Int, dataWidth: Int) -> GaussianDecoder {
    var rng = RandomGenerator(seed: 3)
    return GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: .arch2, objective: .reconstruction, rng: &rng)
}
