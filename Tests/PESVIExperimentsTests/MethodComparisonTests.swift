import Testing
import PESVIModels
@testable import PESVIExperiments

/// How a per-point refinement's steps and seconds to reach SVI are read off its iterations.
@Suite struct MethodComparisonTests {
    static func metrics(_ v: Double) -> ReconstructionMetrics {
        ReconstructionMetrics(expectedReconstruction: v, reconstructionAtMean: v, negativeELBO: nil)
    }

    /// The observer measures after each iteration until SVI's level (within 1 % of 1.0) is first
    /// reached, then stops measuring; steps and seconds are those after that iteration.
    @Test func firstReachingIterationGivesStepsAndSeconds() {
        let values: [Double] = [1.5, 1.2, 1.009, 0.9, 0.8]   // iterations 1 … 5
        var measured: [Int] = []
        let watch = ReachWatch(reaches: { Convergence.reaches($0.expectedReconstruction, 1.0) }, startReaches: false) { mu, _ in
            measured.append(Int(mu[0])); return Self.metrics(values[Int(mu[0]) - 1])
        }
        let observe = watch.observer(n: 1, latent: 1)
        var mu: [Float] = [0], lv: [Float] = [0]
        for t in 1...5 { mu[0] = Float(t); observe(t, &mu, &lv) }
        #expect(measured == [1, 2, 3], "measuring should stop at the first iteration that reaches")
        #expect(watch.reachedAt == 3)
        let (steps, seconds) = watch.outcome(meanStepsAfter: [1, 2, 2.5, 3, 3.2], secondsAfter: [0.1, 0.2, 0.3, 0.4, 0.5], startSeconds: 0.05)
        #expect(steps == 2.5 && seconds == 0.3)
    }

    @Test func aStartThatReachesCountsZeroStepsAndNeverReachingIsNil() {
        let atStart = ReachWatch(reaches: { _ in true }, startReaches: true) { _, _ in Self.metrics(0) }
        #expect(atStart.outcome(meanStepsAfter: [1], secondsAfter: [0.2], startSeconds: 0.05) == (0, 0.05))
        let never = ReachWatch(reaches: { _ in false }, startReaches: false) { _, _ in Self.metrics(2) }
        var mu: [Float] = [0], lv: [Float] = [0]
        never.observer(n: 1, latent: 1)(1, &mu, &lv)
        let (steps, seconds) = never.outcome(meanStepsAfter: [1], secondsAfter: [0.2], startSeconds: 0.05)
        #expect(steps == nil && seconds == nil)
    }

    /// With timed repeats, a method's seconds are the median of its runs.
    @Test func medianOfOddAndEvenCounts() {
        #expect(MethodComparison.median([3, 1, 2]) == 2)
        #expect(MethodComparison.median([4, 1, 3, 2]) == 2.5)
        #expect(MethodComparison.median([0.7]) == 0.7)
    }

    /// PE-SVI-auto refines with the model's stored choice: with the Cauchy step stored it is
    /// PE-SVI-Cauchy (the same reconstruction, curve and steps), with a rate stored it is Adam at
    /// that rate, and an explicit `autoPace` is an Adam rate whatever the model stored.
    @Test func autoFollowsTheModelsStoredStepRule() throws {
        let model = try tinyModel()
        var o = ComparisonOptions()
        o.sviRule = .plateau(window: 20, tolerance: 1e-3, maxSteps: 200)
        o.includeVAE = false
        o.includeGaussNewton = false
        o.includeCauchy = true
        o.metricSamples = 2
        model.configuration.autoPace = 1
        model.configuration.autoStepRule = .cauchy
        let x = try model.prepare(model.testData!, name: "test")
        let withCauchy = MethodComparison.run(model: model, points: x, dataset: "t", options: o)
        let auto = try #require(withCauchy.methods["PE-SVI-auto"]), cauchy = try #require(withCauchy.methods["PE-SVI-Cauchy"])
        #expect(auto.reconstruction == cauchy.reconstruction && auto.curve == cauchy.curve && auto.runSteps == cauchy.runSteps)
        model.configuration.autoStepRule = .adam
        let withAdam = MethodComparison.run(model: model, points: x, dataset: "t", options: o)
        #expect(try #require(withAdam.methods["PE-SVI-auto"]).curve != cauchy.curve)
        model.configuration.autoStepRule = .cauchy
        o.autoPace = 1
        let given = MethodComparison.run(model: model, points: x, dataset: "t", options: o)
        #expect(try #require(given.methods["PE-SVI-auto"]).curve == withAdam.methods["PE-SVI-auto"]!.curve)
    }
}
