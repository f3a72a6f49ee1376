import Foundation
import Testing
@testable import PESVIModels

/// PE-SVI-GN's schedules and the rule that chooses between them on a model's validation rows.
@Suite struct GaussNewtonScheduleTests {
    typealias Trial = GaussNewtonScheduleChoice.Trial

    static func trials(_ steps: [Double?]) -> [Trial] {
        steps.enumerated().map { Trial(schedule: GaussNewtonSchedule(smoothing: GaussNewtonSmoothing(iterations: $0.offset, scale: 0.5, factor: 0.5)),
                                       stepsToTarget: $0.element, reconstruction: 1) }
    }

    /// The standard schedule (first) stands unless another saves at least a whole step per
    /// point, or it never reaches SVI's level and another does; among those the fewest steps
    /// win, ties going to the earlier candidate.
    @Test(arguments: [
        ([8, 7.5], 0), ([8, 7], 1), ([nil, 12], 1), ([nil, nil], 0), ([5, nil], 0), ([3, 3], 0),
        ([10, 8, 7], 2), ([10, 8, 8], 1), ([10, 9.5, 8], 2), ([10, 9.5, nil], 0), ([nil, 4, 3.5], 2),
    ] as [([Double?], Int)])
    func choiceNeedsAWholeStepSaved(_ steps: [Double?], _ chosen: Int) {
        #expect(GaussNewtonScheduleChoice.choose(Self.trials(steps)) == chosen, "\(steps)")
    }

    /// The second candidate keeps the slower continuation everywhere, and solves its smoothed
    /// iterations in 8 preconditioned Krylov vectors without the last step only where the
    /// smoothed solve is a Krylov one in ℝ^|z| by default (d ≥ |z| ≥ 32); elsewhere at the
    /// shape's defaults. Names read back.
    @Test func candidatesFollowTheShape() {
        for (latent, width, krylov) in [(64, 64, true), (32, 300, true), (16, 64, false), (128, 64, false), (3, 12, false)] {
            let c = GaussNewtonSchedule.candidates(latent: latent, dataWidth: width)
            #expect(c.count == 2 && c[0] == .standard && c[1].smoothing == GaussNewtonSchedule.smoothingToTheEnd)
            #expect((c[1].smoothedKrylov == 8 && c[1].smoothedLastStep == false && c[1].preconditioned == true) == krylov, "\(latent), \(width)")
            if !krylov { #expect(c[1].smoothedKrylov == nil && c[1].smoothedLastStep == nil && c[1].preconditioned == nil) }
            #expect(c[0].name == "standard" && c[1].name == "smoothed to the end")
        }
        #expect(GaussNewtonSchedule.smoothingToTheEnd == GaussNewtonSmoothing(iterations: 9, scale: 0.8, factor: 0.6, holdsDamping: true))
        #expect(GaussNewtonSchedule(smoothing: .off).name == "no smoothing")
        #expect(GaussNewtonSchedule(smoothing: GaussNewtonSmoothing(iterations: 2, scale: 0.7, factor: 0.25), smoothedKrylov: 6, preconditioned: false).name
                == "2 smoothed at c = 0.7, f = 0.25, K = 6, not preconditioned")
    }

    /// A choice goes through JSON and back unchanged (a never-reaching trial as null); a schedule
    /// with impossible settings is a decoding error, not a crash.
    @Test func choiceRoundTripsAndBadSchedulesAreRefused() throws {
        let choice = GaussNewtonScheduleChoice(schedule: .smoothedToTheEnd(latent: 64, dataWidth: 64), target: 0.0032,
                                               trials: [Trial(schedule: .standard, stepsToTarget: nil, reconstruction: 0.004),
                                                        Trial(schedule: .smoothedToTheEnd(latent: 64, dataWidth: 64), stepsToTarget: 7.5,
                                                              reconstruction: 0.0021)])
        #expect(choice.summary == "smoothed to the end (steps per point to SVI's level 0.0032 on the validation rows: standard never, smoothed to the end 7.50)")
        let data = try JSONEncoder().encode(choice)
        #expect(try JSONDecoder().decode(GaussNewtonScheduleChoice.self, from: data) == choice)
        let good = #"{"smoothing":{"iterations":4,"scale":0.4,"factor":0.5,"holdsDamping":true}}"#
        #expect(try JSONDecoder().decode(GaussNewtonSchedule.self, from: Data(good.utf8)) == .standard)
        for bad in [#"{"smoothing":{"iterations":4,"scale":0.4,"factor":0,"holdsDamping":true}}"#,
                    #"{"smoothing":{"iterations":-1,"scale":0.4,"factor":0.5}}"#,
                    #"{"smoothing":{"iterations":4,"scale":-0.4,"factor":0.5}}"#,
                    #"{"smoothing":{"iterations":4,"scale":0.4,"factor":1.5}}"#,
                    #"{"smoothing":{"iterations":4,"scale":0.4,"factor":0.5},"smoothedKrylov":-8}"#,
                    #"{"smoothedKrylov":8}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(GaussNewtonSchedule.self, from: Data(bad.utf8)) }
        }
    }
}
