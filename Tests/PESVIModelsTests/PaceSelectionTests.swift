import Testing
@testable import PESVIModels

/// The pace rule on hand-made validation curves (mean objective after 0…K steps).
@Suite struct PaceSelectionTests {
    /// F* = 1.0 (rate 0.1). Within 1 %: ≤ 1.01. Rate 0.5 gets there at step 2, rate 0.1 at 3,
    /// rate 1 at step 1 but ends at 1.05 (not eligible); rate 0.05 never gets there.
    @Test func fastestEligibleRateWins() {
        let (lr, trials) = PaceSelection.choose([
            (1, [2.0, 1.0, 1.05, 1.05]),
            (0.5, [2.0, 1.5, 1.009, 1.005]),
            (0.1, [2.0, 1.8, 1.2, 1.0]),
            (0.05, [2.0, 1.9, 1.6, 1.3]),
        ])
        #expect(lr == 0.5)
        #expect(trials.map(\.stepsToBest) == [1, 2, 3, nil])
        #expect(trials.map(\.finalObjective) == [1.05, 1.005, 1.0, 1.3])
    }

    /// The start (2.00) is already within 1 % of F* = 1.985: every rate counts 0 steps. The
    /// tie goes to the lowest final objective (rate 0.1), not to the smallest rate (0.005).
    @Test func tieOnStepsGoesToTheMostAccurate() {
        let (lr, trials) = PaceSelection.choose([
            (1, [2.0, 1.99, 1.995]),
            (0.1, [2.0, 1.99, 1.985]),
            (0.005, [2.0, 1.999, 1.998]),
        ])
        #expect(trials.allSatisfy { $0.stepsToBest == 0 })
        #expect(lr == 0.1)
    }

    /// Same steps and same final value: the smaller rate.
    @Test func fullTieGoesToTheSmallerRate() {
        #expect(PaceSelection.choose([(0.5, [3.0, 1.0]), (0.05, [3.0, 1.0])]).learningRate == 0.05)
        #expect(PaceSelection.choose([(0.05, [3.0, 1.0]), (0.5, [3.0, 1.0])]).learningRate == 0.05)
    }

    /// A diverged rate (NaN/∞ at the end) is never chosen and does not set F*; with no
    /// eligible rate at all the first candidate is returned.
    @Test func nonFiniteRatesAreNotEligible() {
        let (lr, trials) = PaceSelection.choose([(1, [2.0, .nan]), (0.5, [2.0, .infinity]), (0.1, [2.0, 1.5])])
        #expect(lr == 0.1)
        #expect(trials[0].stepsToBest == nil && trials[2].stepsToBest == 1)
        #expect(PaceSelection.choose([(1, [2.0, .nan]), (0.5, [2.0, .infinity])]).learningRate == 1)
    }
}
