import Testing
import Foundation
import PESVIModels
@testable import PESVIExperiments

/// How a per-point refinement's steps and seconds to reach SVI are read off its iterations.
@Suite struct MethodComparisonTests {
    /// PE-SVI-GN's Krylov preconditioner for a model (``ComparisonOptions/gaussNewtonPreconditioner(for:threads:)``):
    /// formed from the pseudo-encoder's starts of the model's validation rows when asked (or by
    /// the default rule, off at |z| = 3), and handed to the refinement; none without validation rows.
    @Test func gaussNewtonPreconditionerComesFromTheValidationRows() throws {
        let model = try tinyModel(architecture: .arch3)
        var o = ComparisonOptions()
        o.gaussNewtonScheduleFromModel = false  // these options' own settings, not the model's chosen schedule
        #expect(o.gaussNewtonPreconditioner(for: model, threads: 1) == nil, "the default rule is off at |z| = 3")
        #expect(o.gaussNewtonRefinement(model: model, threads: 1).krylovPreconditioner == nil)
        o.gaussNewtonPreconditioner = true
        let raw = try #require(model.validationData)
        let v = try model.prepare(raw, name: "validation")
        let expected = GaussNewtonRefinement.curvaturePreconditioner(decoder: model.decoder, points: v,
                                                                     starts: model.pseudoEncoder.encode(v, threads: 1).mu)
        let c = try #require(o.gaussNewtonPreconditioner(for: model, threads: 1))
        #expect(c == expected && c.count == 9)
        #expect(o.gaussNewtonRefinement(model: model, threads: 1).krylovPreconditioner == c)
        let without = PESVIModel(configuration: model.configuration, decoder: model.decoder, pseudoEncoder: model.pseudoEncoder, vae: nil,
                                 trainPosteriors: nil, validationData: nil, testData: nil)
        #expect(o.gaussNewtonPreconditioner(for: without, threads: 1) == nil)
        o.gaussNewtonPreconditioner = false
        #expect(o.gaussNewtonPreconditioner(for: model, threads: 1) == nil)
    }

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

    /// With an ELBO model every method reports the negative ELBO of its posteriors (the same
    /// Monte Carlo estimate as its reconstruction: for the encoder's output exactly what
    /// ``Metrics/evaluate`` gives on the encoder's posteriors), in the JSON and the table; with
    /// the reconstruction objective none does and neither shows it.
    @Test func elboModelsReportTheNegativeELBO() throws {
        var o = ComparisonOptions()
        o.sviRule = .plateau(window: 20, tolerance: 1e-3, maxSteps: 200)
        o.metricSamples = 2
        o.seed = 4
        let elbo = try tinyModel(objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)))
        let x = try elbo.prepare(elbo.testData!, name: "test")
        let report = MethodComparison.run(model: elbo, points: x, dataset: "t", options: o)
        #expect(report.methods.count >= 6)
        for (name, m) in report.methods {
            let v = try #require(m.negativeELBO, "\(name): no negative ELBO")
            #expect(v.isFinite && v > 0, "\(name): \(v)")
        }
        let start = elbo.pseudoEncoder.encode(x, threads: 1)
        let reference = Metrics.evaluate(decoder: elbo.decoder, x: x, mu: start.mu, logVariance: start.logVariance,
                                         samples: o.metricSamples, seed: o.seed &+ 77, threads: o.threads)
        #expect(report.methods["PE-SVI-0"]?.negativeELBO == reference.negativeELBO)
        let json = try JSONEncoder().encode(report)
        #expect(String(decoding: json, as: UTF8.self).contains("\"negativeELBO\""))
        let decoded = try JSONDecoder().decode(ComparisonReport.self, from: json)
        #expect(decoded.methods.mapValues(\.negativeELBO) == report.methods.mapValues(\.negativeELBO))
        #expect(MethodComparison.table(report).contains("−ELBO"))
        // Per point (with perPoint): each method's values average to its negative ELBO, and
        // asking for them changes no reported number.
        var withPoints = o
        withPoints.perPoint = true
        let pointwise = MethodComparison.run(model: elbo, points: x, dataset: "t", options: withPoints)
        for (name, m) in pointwise.methods {
            let values = try #require(m.perPointNegativeELBO, "\(name): no per-point negative ELBO")
            #expect(values.count == x.rows && values.allSatisfy(\.isFinite))
            let mean = values.reduce(0, +) / Double(values.count)
            #expect(abs(mean - m.negativeELBO!) <= 1e-9 * abs(m.negativeELBO!), "\(name): mean \(mean), reported \(m.negativeELBO!)")
            #expect(m.negativeELBO == report.methods[name]?.negativeELBO && m.reconstruction == report.methods[name]?.reconstruction)
        }

        let plain = try tinyModel()
        let y = try plain.prepare(plain.testData!, name: "test")
        let other = MethodComparison.run(model: plain, points: y, dataset: "t", options: o)
        #expect(other.methods.values.allSatisfy { $0.negativeELBO == nil })
        var plainPoints = o
        plainPoints.perPoint = true
        let plainPointwise = MethodComparison.run(model: plain, points: y, dataset: "t", options: plainPoints)
        #expect(plainPointwise.methods.values.allSatisfy { $0.perPointNegativeELBO == nil && $0.perPoint != nil })
        #expect(!String(decoding: try JSONEncoder().encode(other), as: UTF8.self).contains("negativeELBO"))
        #expect(!MethodComparison.table(other).contains("−ELBO"))
    }
}
