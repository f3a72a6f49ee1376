import Foundation
import Testing
import PESVIData
import PESVIModels
@testable import PESVIExperiments

/// PE-SVI-GN's schedule chosen on a model's validation rows
/// (``TrainingPipeline/chooseGaussNewtonSchedule(for:validation:target:base:threads:seed:)``),
/// stored with the model and taken by PE-SVI-GN unless the options set their own.
@Suite struct GaussNewtonScheduleChoiceTests {
    /// Each candidate's steps to the level are the mean steps per point up to the first
    /// iteration whose expected reconstruction is within 1 % of it, as an independent run of that
    /// schedule measured after every iteration gives them; the choice follows the rule on them;
    /// an unreachable level leaves every trial nil and the standard schedule chosen.
    @Test func raceMeasuresStepsToTheLevelAndFollowsTheRule() throws {
        let model = try tinyModel(architecture: .arch3, vae: false)
        let v = try model.prepare(try #require(model.validationData), name: "validation")
        let start = model.pseudoEncoder.encode(v, threads: 1)
        let seed: UInt64 = 11
        func measure(_ mu: [Float], _ lv: [Float]) -> Double {
            Metrics.evaluate(decoder: model.decoder, x: v, mu: mu, logVariance: lv, seed: seed &+ 2, threads: 1).expectedReconstruction
        }
        // The standard schedule's level after its second iteration, read by an independent run.
        var o = ComparisonOptions()
        o.gaussNewtonScheduleFromModel = false
        var after: [Double] = []
        let run = o.gaussNewtonRefinement(model: model, threads: 1)
            .refine(v, start: start, maxSteps: TrainingPipeline.scheduleRaceIterations, seed: seed, recordCurve: false) { _, mu, lv in
                let n = v.rows * model.configuration.latent
                after.append(measure(Array(UnsafeBufferPointer(start: mu, count: n)), Array(UnsafeBufferPointer(start: lv, count: n))))
            }
        try #require(after.count >= 2)
        let target = after[1]
        let first = try #require(after.firstIndex { Convergence.reaches($0, target) })
        let choice = try #require(TrainingPipeline.chooseGaussNewtonSchedule(for: model, validation: v, target: target, threads: 1, seed: seed))
        #expect(choice.target == target && choice.trials.count == 2)
        #expect(choice.trials.map(\.schedule) == GaussNewtonSchedule.candidates(latent: 3, dataWidth: model.configuration.dataWidth))
        #expect(choice.trials[0].stepsToTarget == run.meanStepsAfter[first], "\(choice.trials[0]) against \(run.meanStepsAfter)")
        #expect(choice.trials[0].reconstruction == measure(run.mu, run.logVariance))
        #expect(choice.schedule == choice.trials[GaussNewtonScheduleChoice.choose(choice.trials)].schedule)
        #expect(model.krylovPreconditioner == nil, "|z| = 3: neither candidate is preconditioned")

        let unreachable = try #require(TrainingPipeline.chooseGaussNewtonSchedule(for: model, validation: v, target: 0, threads: 1, seed: seed))
        #expect(unreachable.trials.allSatisfy { $0.stepsToTarget == nil } && unreachable.schedule == .standard)
        #expect(TrainingPipeline.chooseGaussNewtonSchedule(for: model, validation: v, target: nil, threads: 1, seed: seed) == nil)
        #expect(TrainingPipeline.chooseGaussNewtonSchedule(for: model, validation: v, target: .nan, threads: 1, seed: seed) == nil)
    }

    /// The race's level: each point's median expected reconstruction over three random SVI starts
    /// (seeds s + 1, s + 3, s + 5, measured with s + 2), averaged, recomputed here by hand from
    /// the three runs; the first start alone is the automatic pace's level.
    @Test func sviLevelsTakeEachPointsMedianOverStarts() throws {
        let model = try tinyModel(architecture: .arch2, vae: false)
        let v = try model.prepare(try #require(model.validationData), name: "validation")
        let rule = (model.configuration.phase1.initialization, model.configuration.sviLearningRate)
        let seed: UInt64 = 5
        let levels = try #require(TrainingPipeline.sviLevels(v, decoder: model.decoder, svi: rule, starts: 3, threads: 1, seed: seed))
        let inference = TestTimeInference(decoder: model.decoder, threads: 1)
        let runs: [[Double]] = [UInt64(1), 3, 5].map { k in
            let r = inference.svi(v, initialization: rule.0, learningRate: rule.1, seed: seed + k)
            var values = [Double](repeating: 0, count: v.rows)
            _ = values.withUnsafeMutableBufferPointer {
                Metrics.evaluate(decoder: model.decoder, x: v, mu: r.mu, logVariance: r.logVariance, seed: seed + 2, threads: 1, perPoint: $0.baseAddress)
            }
            return values
        }
        var sum = 0.0
        for i in 0..<v.rows { sum += [runs[0][i], runs[1][i], runs[2][i]].sorted()[1] }
        #expect(abs(levels.median - sum / Double(v.rows)) <= 1e-12 * abs(levels.median))
        let single = try #require(TrainingPipeline.sviLevel(v, decoder: model.decoder, svi: rule, threads: 1, seed: seed))
        #expect(levels.first == single && abs(single - runs[0].reduce(0, +) / Double(v.rows)) <= 1e-9 * single)
        #expect(runs[0] != runs[1], "the starts differ")
        let one = try #require(TrainingPipeline.sviLevels(v, decoder: model.decoder, svi: rule, starts: 1, threads: 1, seed: seed))
        #expect(one.first == single && one.median == single)
        // The model's own SVI (phase 1's initialization and rate) over the race's three starts.
        let own = try #require(TrainingPipeline.sviLevels(v, for: model, threads: 1, seed: seed))
        #expect(TrainingPipeline.scheduleRaceStarts == 3 && own.first == levels.first && own.median == levels.median)
    }

    /// `train` chooses for a ReLU decoder with the reconstruction objective (the level: SVI's on
    /// the validation rows, as the automatic pace's race uses), not for a linear decoder or the
    /// ELBO; the choice survives save and load; a choice on a model it cannot apply to is refused.
    @Test func trainStoresTheChoiceAndTheStoreKeepsIt() throws {
        let model = try tinyModel(architecture: .arch2, vae: false)
        let choice = try #require(model.configuration.gaussNewtonSchedule)
        #expect(choice.target > 0 && choice.target.isFinite && choice.trials.count == 2)
        #expect(model.configuration.trainingSummary["seconds_gn_schedule"] != nil)
        #expect(try tinyModel(architecture: .arch1, vae: false).configuration.gaussNewtonSchedule == nil)
        #expect(try tinyModel(objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)), architecture: .arch2, vae: false)
                    .configuration.gaussNewtonSchedule == nil)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-schedule-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        model.configuration.gaussNewtonSchedule?.schedule = .smoothedToTheEnd(latent: 3, dataWidth: 10)
        try ModelStore.save(model, to: dir)
        let loaded = try ModelStore.load(from: dir)
        #expect(loaded.configuration.gaussNewtonSchedule == model.configuration.gaussNewtonSchedule)

        // A hand-edited schedule the refinement cannot take is a clear error on load, not a crash.
        let configURL = URL(fileURLWithPath: dir).appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any])
        var stored = try #require(json["gaussNewtonSchedule"] as? [String: Any]), schedule = try #require(stored["schedule"] as? [String: Any])
        var smoothing = try #require(schedule["smoothing"] as? [String: Any])
        smoothing["factor"] = 0
        schedule["smoothing"] = smoothing; stored["schedule"] = schedule; json["gaussNewtonSchedule"] = stored
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        #expect { try ModelStore.load(from: dir) } throws: { "\($0)".contains("config.json") && "\($0)".contains("factor") }

        let linear = try tinyModel(architecture: .arch1, vae: false)
        linear.configuration.gaussNewtonSchedule = choice
        try ModelStore.save(linear, to: dir)
        #expect { try ModelStore.load(from: dir) } throws: { "\($0)".contains("gaussNewtonSchedule") }
    }

    /// PE-SVI-GN takes the model's schedule, unless the options say otherwise; without a choice
    /// the options' own settings stand.
    @Test func refinementTakesTheModelsSchedule() throws {
        let model = try tinyModel(architecture: .arch2, vae: false)
        let chosen = GaussNewtonSchedule(smoothing: GaussNewtonSmoothing(iterations: 7, scale: 0.9, factor: 0.7), smoothedKrylov: 2,
                                         smoothedLastStep: false, preconditioned: false)
        model.configuration.gaussNewtonSchedule = GaussNewtonScheduleChoice(schedule: chosen, target: 1, trials: [])
        var o = ComparisonOptions()
        let applied = o.applyingSchedule(of: model)
        #expect(applied.gaussNewtonSchedule == chosen)
        let gn = o.gaussNewtonRefinement(model: model, threads: 1)
        #expect(gn.smoothing == chosen.smoothing && gn.smoothedKrylovDimension == 2 && !gn.smoothedKrylovLastStep)
        o.gaussNewtonScheduleFromModel = false
        #expect(o.applyingSchedule(of: model).gaussNewtonSchedule == .standard)
        #expect(o.gaussNewtonRefinement(model: model, threads: 1).smoothing == .standard)
        model.configuration.gaussNewtonSchedule = nil
        o.gaussNewtonScheduleFromModel = true
        #expect(o.gaussNewtonRefinement(model: model, threads: 1).smoothing == .standard)
    }
}
