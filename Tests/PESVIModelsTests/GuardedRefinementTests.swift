import Foundation
import Testing
import TestSupport
import PESVINumerics
@testable import PESVIModels

@Suite struct GuardedRefinementTests {
    func setup(objective: Objective = .reconstruction) -> (GaussianDecoder, Dataset, (mu: [Float], logVariance: [Float])) {
        var rng = RandomGenerator(seed: 31)
        let decoder = GaussianDecoder(latent: 4, dataWidth: 12, architecture: .arch3, objective: objective, rng: &rng)
        let x = Dataset(rows: 200, cols: 12, values: rng.normalArray(count: 200 * 12))
        let start = (rng.normalArray(count: 800), rng.uniformArray(count: 800, low: -3, high: -1))
        return (decoder, x, start)
    }

    /// A reconstruction-objective decoder (|z| = 4, d = 30, so h < d), Gaussian rows x and a
    /// Gaussian start with log σ² far below the floor.
    func reconstructionProblem(seed: UInt64, architecture: Architecture, rows n: Int) -> (GaussianDecoder, Dataset, (mu: [Float], logVariance: [Float])) {
        var rng = RandomGenerator(seed: seed)
        let L = 4, d = 30
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: architecture, objective: .reconstruction, rng: &rng)
        let x = Dataset(rows: n, cols: d, values: rng.normalArray(count: n * d))
        return (decoder, x, (rng.normalArray(count: n * L), [Float](repeating: -20, count: n * L)))
    }

    /// Per-point objectives under the refinement's own noise (common random numbers), so they
    /// can be compared exactly between iterations.
    /// On both evaluation paths: the reconstruction objective at the mean, and the antithetic pair.
    @Test(arguments: [true, false])
    func divergenceGuardNeverLetsTheObjectiveRiseEvenAtAHugeRate(atMean: Bool) {
        let (decoder, x, start) = setup()
        let g = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32)
        var c = GuardedRefinementConfiguration(learningRate: 50)   // deliberately huge
        c.maxSteps = 30
        c.closedFormVariance = atMean
        let r = g.refine(x, start: start, configuration: c, seed: 4)
        #expect(r.rejectedSteps > 0, "a rate of 50 should have been rejected somewhere")
        for t in 1..<r.curve.count { #expect(r.curve[t] <= r.curve[t - 1], "mean objective rose at iteration \(t): \(r.curve[t - 1]) → \(r.curve[t])") }
        #expect(r.curve.allSatisfy { $0.isFinite })
        #expect(r.mu.allSatisfy { $0.isFinite } && r.logVariance.allSatisfy { $0.isFinite })
    }

    /// A point that has finished is never evaluated or changed again: refining with a larger
    /// step budget leaves it bit for bit as it was.
    @Test(arguments: [true, false])
    func earlyExitLeavesFinishedPointsUntouched(atMean: Bool) {
        let (decoder, x, start) = setup()
        let g = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 64)
        var short = GuardedRefinementConfiguration(learningRate: 0.05, tolerance: 1e-2)
        short.maxSteps = 40
        short.closedFormVariance = atMean
        var long = short
        long.maxSteps = 200
        let a = g.refine(x, start: start, configuration: short, seed: 4)
        let b = g.refine(x, start: start, configuration: long, seed: 4)
        var finishedEarly = 0
        for p in 0..<x.rows where a.finishedEarly[p] {
            finishedEarly += 1
            #expect(b.stepsPerPoint[p] == a.stepsPerPoint[p])
            #expect(Array(a.mu[(p * 4)..<(p * 4 + 4)]) == Array(b.mu[(p * 4)..<(p * 4 + 4)]))
            #expect(Array(a.logVariance[(p * 4)..<(p * 4 + 4)]) == Array(b.logVariance[(p * 4)..<(p * 4 + 4)]))
        }
        #expect(finishedEarly > 0, "no point finished before the step limit")
        #expect(a.stepsPerPoint.min()! < a.stepsPerPoint.max()!, "early exit should make points differ in steps")
        #expect(a.meanSteps < Double(short.maxSteps))
    }

    /// Pairs through the output layer once (the default where h ≤ d, as here: h = 8, d = 12)
    /// follow the same path as evaluating both samples: the same objective up to rounding.
    @Test func pairedOutputLayerFollowsTheSamePath() {
        let (decoder, x, start) = setup()
        #expect(decoder.outputLayerInputWidth <= decoder.dataWidth)
        let g = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 64)
        var paired = GuardedRefinementConfiguration(learningRate: 0.05)
        paired.maxSteps = 20
        paired.closedFormVariance = false   // the pair, not the reconstruction objective's evaluation at the mean
        var direct = paired
        direct.pairedOutputLayer = false
        let a = g.refine(x, start: start, configuration: paired, seed: 4)
        let b = g.refine(x, start: start, configuration: direct, seed: 4)
        #expect(a.curve.count == b.curve.count)
        for t in 0..<min(a.curve.count, b.curve.count) {
            #expect(abs(a.curve[t] - b.curve[t]) <= 1e-4 * abs(b.curve[t]), "iteration \(t): \(a.curve[t]) vs \(b.curve[t])")
        }
        #expect(abs(a.meanSteps - b.meanSteps) <= 0.05 * b.meanSteps)
        #expect(a.curve.last! < a.curve.first!)
    }

    @Test func refinementImprovesAndIsDeterministicOnAnyThreadCount() {
        let (decoder, x, start) = setup(objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)))
        let c = GuardedRefinementConfiguration(learningRate: 0.05)
        let one = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32).refine(x, start: start, configuration: c, seed: 9)
        let two = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32).refine(x, start: start, configuration: c, seed: 9)
        #expect(one.mu == two.mu && one.logVariance == two.logVariance && one.curve == two.curve)
        #expect(one.curve.last! < 0.9 * one.curve.first!)
    }

    /// A linear reconstruction decoder D(z) = zW + b (|z| = `L`, d) on n Gaussian rows, refined
    /// from a Gaussian start by `rule` at scale 1 for `steps` steps (tolerance 0), and the
    /// quadratic P(μ) = (1/d)‖D(μ) − x‖² in Double for working the steps out by hand.
    struct LinearCase {
        let L: Int, d: Int, n: Int
        let start: [Float], x: [Float], W: [Double], b: [Double]
        let result: GuardedRefinementResult
        /// D(z) − xᵢ.
        func residual(_ z: [Double], _ i: Int) -> [Double] {
            (0..<d).map { j -> Double in
                var v = b[j]
                for k in 0..<L { v += z[k] * W[k * d + j] }
                return v - Double(x[i * d + j])
            }
        }
        /// ∇P(z) = (2/d)(D(z) − xᵢ)Wᵀ.
        func gradient(_ z: [Double], _ i: Int) -> [Double] {
            let res = residual(z, i)
            return (0..<L).map { k in 2 / Double(d) * (0..<d).reduce(0.0) { $0 + res[$1] * W[k * d + $1] } }
        }
        /// uW = J·u.
        func image(_ u: [Double]) -> [Double] { (0..<d).map { j in (0..<L).reduce(0.0) { $0 + u[$1] * W[$1 * d + j] } } }
        /// Point i's start μ₀.
        func mu0(_ i: Int) -> [Double] { (0..<L).map { Double(start[i * L + $0]) } }
    }

    func linearCase(seed: UInt64, latent L: Int, data d: Int, rows n: Int, startLogVariance: Float,
                    rule: GuardedRefinementConfiguration.StepRule, steps: Int, throughGram: Bool) -> LinearCase {
        var rng = RandomGenerator(seed: seed)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = Dataset(rows: n, cols: d, values: rng.normalArray(count: n * d))
        let start = (rng.normalArray(count: n * L), [Float](repeating: startLogVariance, count: n * L))
        var c = GuardedRefinementConfiguration(learningRate: 1, tolerance: 0)
        c.maxSteps = steps
        c.stepRule = rule
        let refiner = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 4)
        refiner.cauchyThroughGram = throughGram
        let r = refiner.refine(x, start: start, configuration: c, seed: 1)
        let net = decoder.network, w = net.parameters.pointer
        return LinearCase(L: L, d: d, n: n, start: start.0, x: x.values.array,
                          W: (0..<L * d).map { Double(w[net.weightOffsets[0] + $0]) }, b: (0..<d).map { Double(w[net.biasOffsets[0] + $0]) },
                          result: r)
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// With a linear decoder D(z) = zW + b the Cauchy step is the exact minimizer of
    /// P(μ) = (1/d)‖x − D(μ)‖² along −g: one step lands on μ − αg with g = (2/d)(D(μ) − x)Wᵀ and
    /// α = ‖g‖² / ((2/d)‖gW‖²), computed here by hand in Double, and P's slope along g is 0 there;
    /// with ‖gW‖² through the Gram matrix W Wᵀ (|z| < d) and by forming gW.
    @Test(arguments: [true, false])
    func cauchyStepMinimizesALinearDecodersObjectiveAlongTheGradient(throughGram: Bool) {
        let t = linearCase(seed: 17, latent: 3, data: 7, rows: 9, startLogVariance: -2, rule: .cauchy, steps: 1, throughGram: throughGram)
        let L = t.L, r = t.result
        for i in 0..<t.n {
            let mu = t.mu0(i), g = t.gradient(mu, i), gW = t.image(g)
            let alpha = dot(g, g) / (2 / Double(t.d) * dot(gW, gW))
            let expected = (0..<L).map { mu[$0] - alpha * g[$0] }
            for k in 0..<L { #expect(abs(Double(r.mu[i * L + k]) - expected[k]) <= 1e-4 * max(1, abs(expected[k]))) }
            let slope = dot(t.residual(expected, i), gW)
            #expect(abs(slope) <= 1e-9 * max(1, dot(gW, gW)))
            #expect(r.stepsPerPoint[i] == 1)
        }
    }

    /// With a linear decoder the subspace step's second step is the exact minimizer of each
    /// point's quadratic P over μ₁ + span{g₁, p} (p = μ₁ − μ₀, the Cauchy first step), worked out
    /// here by hand in Double: μ₂ matches, and P's slope along g₁ and along p is 0 there.
    @Test(arguments: [true, false])
    func subspaceStepMinimizesALinearDecodersObjectiveOverTwoDirections(throughGram: Bool) {
        let t = linearCase(seed: 19, latent: 4, data: 9, rows: 7, startLogVariance: -20, rule: .subspace, steps: 2, throughGram: throughGram)
        let L = t.L, r = t.result
        for i in 0..<t.n {
            let mu0 = t.mu0(i), g0 = t.gradient(mu0, i)
            let alpha = dot(g0, g0) / (2 / Double(t.d) * dot(t.image(g0), t.image(g0)))
            let mu1 = (0..<L).map { mu0[$0] - alpha * g0[$0] }
            let p = (0..<L).map { mu1[$0] - mu0[$0] }, g1 = t.gradient(mu1, i)
            let jg = t.image(g1), jp = t.image(p), h = 2 / Double(t.d)
            let a11 = h * dot(jg, jg), a12 = h * dot(jg, jp), a22 = h * dot(jp, jp)
            let det = a11 * a22 - a12 * a12
            let c1 = (-dot(g1, g1) * a22 + dot(g1, p) * a12) / det, c2 = (-dot(g1, p) * a11 + dot(g1, g1) * a12) / det
            let mu2 = (0..<L).map { mu1[$0] + c1 * g1[$0] + c2 * p[$0] }
            for k in 0..<L { #expect(abs(Double(r.mu[i * L + k]) - mu2[k]) <= 1e-3 * max(1, abs(mu2[k])), "point \(i)") }
            let g2 = t.gradient(mu2, i), scale = dot(g1, g1).squareRoot()
            #expect(abs(dot(g2, g1)) <= 1e-9 * max(1, scale * scale) && abs(dot(g2, p)) <= 1e-9 * max(1, scale * dot(p, p).squareRoot()))
            #expect(r.stepsPerPoint[i] == 2)
        }
    }

    /// Minimizes ½cᵀAc + bᵀc: c = −A⁻¹b, by the shared elimination reference (Double).
    func solveByElimination(_ a: [[Double]], _ b: [Double]) -> [Double] {
        solveLinearSystem(a.flatMap { $0 }, b.map { -$0 })
    }

    /// The minimizer of a linear decoder's quadratic P over z + span(dirs), worked out in Double:
    /// (SᵀH̃S) c = −Sᵀg with H̃ = (2/d)WWᵀ.
    func subspaceMinimizer(_ t: LinearCase, _ z: [Double], _ i: Int, _ dirs: [[Double]]) -> [Double] {
        let g = t.gradient(z, i), images = dirs.map { t.image($0) }, h = 2 / Double(t.d)
        let a = images.map { u in images.map { v in h * dot(u, v) } }
        let c = solveByElimination(a, dirs.map { dot($0, g) })
        return (0..<t.L).map { k in z[k] + zip(c, dirs).reduce(0.0) { $0 + $1.0 * $1.1[k] } }
    }

    /// With a linear decoder the Krylov step is the exact minimizer of each point's quadratic P
    /// over μ + span{g, H̃g} in the first iteration and over μ₁ + span{g₁, H̃g₁, p} (p = μ₁ − μ₀)
    /// in the second, H̃ = (2/d)WWᵀ; worked out here by hand in Double (|z| = 6, so the three
    /// directions do not span the space and the step is not the least-squares solution): μ₁ and
    /// μ₂ match, and P's slope along each direction is 0 at μ₂. Through G and directly.
    @Test(arguments: [true, false])
    func krylovStepMinimizesALinearDecodersObjectiveOverThreeDirections(throughGram: Bool) {
        let one = linearCase(seed: 29, latent: 6, data: 11, rows: 7, startLogVariance: -20, rule: .krylov, steps: 1, throughGram: throughGram)
        let t = linearCase(seed: 29, latent: 6, data: 11, rows: 7, startLogVariance: -20, rule: .krylov, steps: 2, throughGram: throughGram)
        let L = t.L, h = 2 / Double(t.d)
        /// H̃u = (2/d)(uW)Wᵀ.
        func curvatureTimes(_ u: [Double]) -> [Double] {
            let img = t.image(u)
            return (0..<L).map { k in h * (0..<t.d).reduce(0.0) { $0 + img[$1] * t.W[k * t.d + $1] } }
        }
        for i in 0..<t.n {
            let mu0 = t.mu0(i), g0 = t.gradient(mu0, i)
            let mu1 = subspaceMinimizer(t, mu0, i, [g0, curvatureTimes(g0)])
            for k in 0..<L { #expect(abs(Double(one.result.mu[i * L + k]) - mu1[k]) <= 1e-3 * max(1, abs(mu1[k])), "point \(i), first step") }
            let p = (0..<L).map { mu1[$0] - mu0[$0] }, g1 = t.gradient(mu1, i), hg1 = curvatureTimes(g1)
            let mu2 = subspaceMinimizer(t, mu1, i, [g1, hg1, p])
            for k in 0..<L { #expect(abs(Double(t.result.mu[i * L + k]) - mu2[k]) <= 1e-3 * max(1, abs(mu2[k])), "point \(i), second step") }
            let g2 = t.gradient(mu2, i), scale = dot(g1, g1).squareRoot()
            for u in [g1, hg1, p] { #expect(abs(dot(g2, u)) <= 1e-9 * max(1, scale * dot(u, u).squareRoot())) }
            #expect(t.result.stepsPerPoint[i] == 2)
        }
    }

    /// The small model solve on systems worked out by hand: an SPD 3 × 3 system gives −A⁻¹b; a
    /// direction equal to an earlier one (pivot 0) is dropped and the rest solved alone; a
    /// direction without curvature (a zero last step) is dropped; no curvature along the first
    /// direction gives no step.
    @Test func modelSolveDropsDependentDirections() {
        func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
            let n = b.count
            var flat = a.flatMap { $0 }, rhs = b
            var factor = [Double](repeating: .nan, count: n * n), c = [Double](repeating: .nan, count: n)
            GuardedRefinement.minimizeModel(&flat, &rhs, stride: n, count: n, factor: &factor, coefficients: &c)
            return c
        }
        func close(_ x: [Double], _ y: [Double]) -> Bool { zip(x, y).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) } }
        // A = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], b = [2, −1, 4]: A c = −b by Cramer's rule
        // (det A = 44): c = (−42, 40, −72) / 44.
        let a: [[Double]] = [[4, 2, 0], [2, 5, 1], [0, 1, 3]], b: [Double] = [2, -1, 4]
        let expected = solveByElimination(a, b)
        #expect(close(expected, [-42.0 / 44, 40.0 / 44, -72.0 / 44]))
        #expect(close(solve(a, b), expected))
        // The third direction equal to the first: A's third row and column are the first's.
        let dep: [[Double]] = [[4, 2, 4], [2, 5, 2], [4, 2, 4]]
        let two = solveByElimination([[4, 2], [2, 5]], [2, -1])
        #expect(close(solve(dep, [2, -1, 2]), [two[0], two[1], 0]))
        // A zero third direction (no last step): dropped.
        #expect(close(solve([[4, 2, 0], [2, 5, 0], [0, 0, 0]], [2, -1, 0]), [two[0], two[1], 0]))
        // No curvature along g: no step at all.
        #expect(solve([[0, 0, 0], [0, 5, 1], [0, 1, 3]], [2, -1, 4]) == [0, 0, 0])
        // One direction: the Cauchy step −b₀/A₀₀.
        #expect(close(solve([[4]], [2]), [-0.5]))
    }

    /// On a ReLU decoder (h = 8 < d = 30) the curvature through the output layer's Gram matrix is
    /// the one of forming J·g (and J·p), up to rounding: the same steps, objectives within 1e-5
    /// relative; for the Cauchy, the subspace and the Krylov step (whose H̃g comes back from the
    /// last hidden layer through G, or from the output; its 3 × 3 systems of Float products carry
    /// more rounding: within 1e-4).
    @Test(arguments: [GuardedRefinementConfiguration.StepRule.cauchy, .subspace, .krylov])
    func curvatureThroughTheGramMatrixIsTheDirectOne(rule: GuardedRefinementConfiguration.StepRule) {
        let n = 100
        let (decoder, x, start) = reconstructionProblem(seed: 23, architecture: .arch3, rows: n)
        var c = GuardedRefinementConfiguration.cauchy(maxSteps: 3)
        c.stepRule = rule
        c.tolerance = 0
        let g = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32)
        let viaGram = g.refine(x, start: start, configuration: c, seed: 1)
        g.cauchyThroughGram = false
        let direct = g.refine(x, start: start, configuration: c, seed: 1)
        #expect(viaGram.stepsPerPoint == direct.stepsPerPoint)
        for i in 0..<n {
            #expect(abs(viaGram.perPointObjective[i] - direct.perPointObjective[i]) <= (rule == .krylov ? 1e-4 : 1e-5) * direct.perPointObjective[i])
        }
        #expect(viaGram.curve.last! < viaGram.curve[0])
    }

    /// The Cauchy, subspace and Krylov steps on a ReLU decoder, scaled far past their length: the
    /// guard still never lets a point's objective rise, and at their own length (scale 1) they
    /// end below the start.
    @Test(arguments: [GuardedRefinementConfiguration.StepRule.cauchy, .subspace, .krylov])
    func gaussNewtonModelStepIsGuardedAndImproves(rule: GuardedRefinementConfiguration.StepRule) {
        let (decoder, x, start) = setup()
        let g = GuardedRefinement(decoder: decoder, threads: 2, chunkRows: 32)
        var huge = GuardedRefinementConfiguration(learningRate: 50)
        huge.maxSteps = 20
        huge.stepRule = rule
        let r = g.refine(x, start: start, configuration: huge, seed: 4)
        #expect(r.rejectedSteps > 0)
        for t in 1..<r.curve.count { #expect(r.curve[t] <= r.curve[t - 1]) }
        var unit = huge
        unit.learningRate = 1
        let u = g.refine(x, start: start, configuration: unit, seed: 4)
        #expect(u.curve.last! < u.curve[0] * 0.9)
        #expect(u.mu.allSatisfy { $0.isFinite })
    }

    /// [final objective, early progress] of a refinement with `c`, from its curve.
    func finalAndEarly(_ decoder: GaussianDecoder, _ x: Dataset, _ start: (mu: [Float], logVariance: [Float]),
                       _ c: GuardedRefinementConfiguration) -> (final: Double, early: Double) {
        let r = GuardedRefinement(decoder: decoder, threads: 1).refine(x, start: start, configuration: c, seed: 1)
        let early = (1...AutomaticPace.earlySteps).reduce(0.0) { $0 + r.curve[min($1, r.curve.count - 1)] }
        return (r.curve.last!, early)
    }

    /// Adam rates alone (`includeGaussNewtonRules: false`, as for an ELBO model): both searches ran, and
    /// the chosen rate is, among the rates within the band of the best final objective, the one
    /// of the fastest early progress, whose recorded numbers are those of a refinement at it.
    @Test func automaticPacePicksARateFromTheSearch() {
        let (decoder, x, start) = setup()
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = 20
        let out = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1, includeGaussNewtonRules: false)
        #expect(out.stepRule == .adam && out.cauchy == nil && out.subspace == nil && out.krylov == nil)
        // The coarse scan (9 rates) and the first golden-section search (8 more) leave the second
        // search, of early progress within the band, at least one new rate to try.
        #expect(out.tried.count > 9 + 8)
        let best = out.tried.map { $0[1] }.min()!
        let chosen = out.tried.first { abs(Float(pow(10, $0[0])) - out.learningRate) < 1e-6 * out.learningRate }!
        #expect(chosen[1] <= best + AutomaticPace.tieBand * abs(best))
        #expect(out.learningRate >= 1e-3 && out.learningRate <= 10)
        let eligible = out.tried.filter { $0[1] <= best + AutomaticPace.tieBand * abs(best) }
        #expect(eligible.allSatisfy { chosen[3] <= $0[3] })
        // Early progress is Σ of the mean objective after steps 1 … 5 of a refinement at that rate.
        let run = finalAndEarly(decoder, x, start, out.configuration(base))
        #expect(abs(run.early - chosen[3]) <= 1e-9 * abs(run.early))
        #expect(abs(run.final - chosen[1]) <= 1e-9 * abs(chosen[1]))
    }

    /// With the reconstruction objective the Cauchy, subspace and Krylov steps are candidates too: their
    /// rows hold those refinements' numbers, the band is around the best final objective of all
    /// candidates, and the choice (whichever rule) is the eligible one of the fastest early
    /// progress. The Adam rates tried are the same as without them up to the second search.
    @Test func automaticPaceWeighsTheGaussNewtonRulesWithTheRates() {
        let (decoder, x, start) = setup()
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = 20
        let out = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1)
        let rows = [try! #require(out.cauchy), try! #require(out.subspace), try! #require(out.krylov)]
        for (rule, row) in zip(AutomaticPace.gaussNewtonRules, rows) {
            var c = base
            c.learningRate = 1
            c.stepRule = rule
            let run = finalAndEarly(decoder, x, start, c)
            #expect(abs(run.final - row[0]) <= 1e-9 * run.final && abs(run.early - row[2]) <= 1e-9 * run.early, "\(rule)")
        }
        let best = min(out.tried.map { $0[1] }.min()!, rows.map { $0[0] }.min()!)
        let band = best + AutomaticPace.tieBand * abs(best)
        let eligibleEarly = out.tried.filter { $0[1] <= band }.map { $0[3] } + rows.filter { $0[0] <= band }.map { $0[2] }
        // The chosen candidate is in the band and made the fastest early progress of those in it.
        let chosen: [Double]
        if let k = AutomaticPace.gaussNewtonRules.firstIndex(of: out.stepRule) {
            #expect(out.learningRate == 1)
            chosen = [rows[k][0], rows[k][2]]
        } else {
            let row = out.tried.first { abs(Float(pow(10, $0[0])) - out.learningRate) < 1e-6 * out.learningRate }!
            chosen = [row[1], row[3]]
        }
        #expect(chosen[0] <= band && chosen[1] == eligibleEarly.min()!)
        // The chosen configuration refines with the chosen rule, and gives the recorded numbers.
        let chosenRun = finalAndEarly(decoder, x, start, out.configuration(base))
        #expect(abs(chosenRun.early - chosen[1]) <= 1e-9 * chosen[1])
        let adamOnly = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1, includeGaussNewtonRules: false)
        #expect(Array(out.tried.prefix(17)) == Array(adamOnly.tried.prefix(17)))
    }

    /// The choice among candidates, on rows worked out by hand: Adam rows are [log10 rate,
    /// final, mean steps, early progress], the rule rows (Cauchy, subspace) [final, mean steps,
    /// early progress]; the band is 1 % of the best final objective of all of them.
    @Test func automaticPaceChoiceOnHandMadeCandidates() {
        let rates: [[Double]] = [[-1, 1.000, 9, 6.0], [-0.5, 1.005, 7, 5.5], [0, 1.020, 5, 5.2]]
        typealias C = AutomaticPace.Choice
        // The rates alone: 10^-0.5 is in the band (1.005 ≤ 1.01) and faster than 0.1; rate 1 is out.
        #expect(AutomaticPace.choice(tried: rates, rules: []) == C.rate(1))
        // A rule in the band and faster than every eligible rate wins…
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.008, 2, 5.4]]) == C.rule(0))
        // …but not when slower than the fastest eligible rate (rate 1's 5.2 does not count: out of the band),
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.008, 2, 5.6]]) == C.rate(1))
        // nor when out of the band, however fast,
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.011, 2, 1.0]]) == C.rate(1))
        // and a tie in early progress goes to the lower final objective, then to Adam, then to the earlier rule.
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.004, 2, 5.5]]) == C.rule(0))
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.005, 2, 5.5]]) == C.rate(1))
        #expect(AutomaticPace.choice(tried: [], rules: [[1.0, 2, 5.0], [1.0, 2, 5.0]]) == C.rule(0))
        // Of two rules the faster eligible one: the subspace step here, unless it is out of the band.
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.003, 2, 5.3], [1.002, 2, 5.1]]) == C.rule(1))
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.003, 2, 5.3], [1.02, 2, 5.1]]) == C.rule(0))
        // Of three rules (Cauchy, subspace, Krylov) the fastest eligible one; on a tie the earlier.
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.003, 2, 5.3], [1.002, 2, 5.1], [1.001, 1, 5.0]]) == C.rule(2))
        #expect(AutomaticPace.choice(tried: rates, rules: [[1.003, 2, 5.3], [1.002, 2, 5.0], [1.002, 1, 5.0]]) == C.rule(1))
        // A rule far better than every rate moves the band to it: no rate is eligible.
        #expect(AutomaticPace.choice(tried: rates, rules: [[0.9, 4, 9.0]]) == C.rule(0))
        #expect(AutomaticPace.choice(tried: [], rules: [[0.9, 4, 9.0]]) == C.rule(0))
    }

    /// The work model's multiply-adds per point and iteration, worked out by hand from the layer
    /// widths (F = Σ wₗ₋₁wₗ; Adam 2F; each direction its image, through G when h < d, and its
    /// model row; the Krylov step's H̃g one backward pass more).
    @Test func iterationCostCountsTheLayersProducts() {
        var rng = RandomGenerator(seed: 3)
        func decoder(_ L: Int, _ d: Int, _ a: Architecture) -> GaussianDecoder {
            GaussianDecoder(latent: L, dataWidth: d, architecture: a, objective: .reconstruction, rng: &rng)
        }
        typealias R = GuardedRefinementConfiguration.StepRule
        func costs(_ dec: GaussianDecoder) -> [Double] { [R.adam, .cauchy, .subspace, .krylov].map { AutomaticPace.iterationCost($0, decoder: dec) } }
        // Arch2, |z| = 2, h = 4 < d = 5: F = 8 + 20 = 28; an image through G is 8 + 16 = 24.
        // Adam 56; Cauchy 56 + (24 + 4); subspace + (24 + 8); Krylov + (24 + 12) + 8 (H̃g: 28 − 20).
        #expect(costs(decoder(2, 5, .arch2)) == [56, 84, 116, 160] as [Double])
        // Arch2, |z| = 3, h = 6 ≥ d = 4: F = 18 + 24 = 42, images at the output (42), rows of d = 4.
        // Adam 84; Cauchy 84 + (42 + 4); subspace + (42 + 8); Krylov + (42 + 12) + 42.
        #expect(costs(decoder(3, 4, .arch2)) == [84, 130, 180, 276] as [Double])
        // Arch3, |z| = 2, h = 4 < d = 5: F = 8 + 16 + 20 = 44; image 8 + 16 + 16 = 40; H̃g's pass 24.
        // Adam 88; Cauchy 88 + (40 + 4); subspace + (40 + 8); Krylov + (40 + 12) + 24.
        #expect(costs(decoder(2, 5, .arch3)) == [88, 132, 180, 256] as [Double])
        // Arch1 (linear), |z| = 3, d = 5: F = 15, h = |z| = 3 < d: image 9, H̃g from G alone.
        // Adam 30; Cauchy 30 + (9 + 3); subspace + (9 + 6); Krylov + (9 + 9).
        #expect(costs(decoder(3, 5, .arch1)) == [30, 42, 57, 75] as [Double])
    }

    /// With SVI's level the choice is the least work to it among the eligible candidates that
    /// reach it within five iterations (rows end with the mean steps to it, +∞ when not); only
    /// when none does, early progress decides as before. Rows and costs worked out by hand.
    @Test func automaticPaceChoiceByWorkToSVIsLevel() {
        typealias C = AutomaticPace.Choice
        let inf = Double.infinity
        let rates: [[Double]] = [[-1, 1.000, 9, 6.0, inf], [-0.5, 1.005, 7, 5.5, 3], [0, 1.020, 5, 5.2, 1]]
        let costs = (adam: 10.0, rules: [12.0, 14.0, 16.0])
        func pick(_ rules: [[Double]], _ c: (adam: Double, rules: [Double])? = costs) -> (C, Bool) {
            let r = AutomaticPace.choice(tried: rates, rules: rules, costs: c)
            return (r.choice, r.byTarget)
        }
        func expectPick(_ rules: [[Double]], _ c: (adam: Double, rules: [Double])?, _ want: C, byTarget: Bool) {
            let (got, by) = pick(rules, c)
            #expect(got == want && by == byTarget, "\(rules)")
        }
        let allInOne: [[Double]] = [[1.003, 2, 5.3, 1], [1.002, 2, 5.1, 1], [1.001, 1, 5.0, 1]]
        // All three rules reach the level in one step: the cheapest, the Cauchy step (12), wins over
        // the Krylov step's better early progress and the rate 10^-0.5's 3 steps (30).
        expectPick(allInOne, costs, .rule(0), byTarget: true)
        // The Cauchy step does not reach it: the Krylov step's 1 × 16 beats the subspace step's 2 × 14.
        expectPick([[1.003, 2, 5.3, inf], [1.002, 2, 5.1, 2], [1.001, 1, 5.0, 1]], costs, .rule(2), byTarget: true)
        // Krylov in 2.5 steps (40) loses to 3 Adam steps (30); rate 1's one step (10) is out of the band.
        expectPick([[1.003, 2, 5.3, inf], [1.002, 2, 5.1, inf], [1.001, 1, 5.0, 2.5]], costs, .rate(1), byTarget: true)
        // Equal work goes to the lower early progress: Cauchy and subspace at 12 each, the subspace step's 5.1.
        expectPick(allInOne, (adam: 10, rules: [12, 12, 16]), .rule(1), byTarget: true)
        // Without costs the level's column is ignored: early progress, the Krylov step's 5.0.
        expectPick(allInOne, nil, .rule(2), byTarget: false)
        // Nobody eligible reaches it: early progress, as without a level.
        let none: [[Double]] = [[1.003, 2, 5.3, inf], [1.002, 2, 5.1, inf], [1.001, 1, 5.0, inf]]
        let ratesNone: [[Double]] = [[-1, 1.000, 9, 6.0, inf], [-0.5, 1.005, 7, 5.5, inf], [0, 1.020, 5, 5.2, 1]]
        let plainRates: [[Double]] = ratesNone.map { Array($0.prefix(4)) }
        let plainRules: [[Double]] = none.map { Array($0.prefix(3)) }
        let withLevel = AutomaticPace.choice(tried: ratesNone, rules: none, costs: costs)
        #expect(withLevel.choice == AutomaticPace.choice(tried: plainRates, rules: plainRules) && !withLevel.byTarget)
    }

    /// A refinement's mean steps per point to its first iteration within 1 % of `level` (+∞: not
    /// within five), as the search records it.
    func stepsTo(_ level: Double, _ decoder: GaussianDecoder, _ x: Dataset, _ start: (mu: [Float], logVariance: [Float]),
                 _ c: GuardedRefinementConfiguration) -> Double {
        let r = GuardedRefinement(decoder: decoder, threads: 1).refine(x, start: start, configuration: c, seed: 1)
        guard let t = r.curve.firstIndex(where: { $0 <= level + 0.01 * abs(level) }), t <= AutomaticPace.earlySteps else { return .infinity }
        return t == 0 ? 0 : r.meanStepsAfter[t - 1]
    }

    /// The search given a level: each row records its refinement's steps to it, and the chosen
    /// candidate is the eligible one of the least work to it. An ELBO model's curves are not
    /// reconstructions: its level is ignored.
    @Test func automaticPaceWithALevelChoosesTheLeastWorkToIt() {
        let (decoder, x, start) = reconstructionProblem(seed: 12, architecture: .arch2, rows: 120)
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = 20
        func ruled(_ rule: GuardedRefinementConfiguration.StepRule) -> GuardedRefinementConfiguration {
            var c = base
            c.learningRate = 1
            c.stepRule = rule
            return c
        }
        // A level every rule reaches by its third iteration: the highest of their objectives after three.
        let level = AutomaticPace.gaussNewtonRules.map { rule -> Double in
            let r = GuardedRefinement(decoder: decoder, threads: 1).refine(x, start: start, configuration: ruled(rule), seed: 1)
            return r.curve[min(3, r.curve.count - 1)]
        }.max()!
        let out = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1, target: level)
        #expect(out.target == level && out.chosenByTarget)
        let rows = [try! #require(out.cauchy), try! #require(out.subspace), try! #require(out.krylov)]
        for (rule, row) in zip(AutomaticPace.gaussNewtonRules, rows) {
            #expect(row.count == 4 && row[3] == stepsTo(level, decoder, x, start, ruled(rule)) && row[3].isFinite, "\(rule)")
        }
        let best = min(out.tried.map { $0[1] }.min()!, rows.map { $0[0] }.min()!)
        let band = best + AutomaticPace.tieBand * abs(best)
        let adamCost = AutomaticPace.iterationCost(.adam, decoder: decoder)
        let works = out.tried.filter { $0[1] <= band }.map { $0[4] * adamCost }
            + zip(AutomaticPace.gaussNewtonRules, rows).filter { $0.1[0] <= band }.map { $0.1[3] * AutomaticPace.iterationCost($0.0, decoder: decoder) }
        let chosenWork: Double
        if let k = AutomaticPace.gaussNewtonRules.firstIndex(of: out.stepRule) {
            chosenWork = rows[k][3] * AutomaticPace.iterationCost(out.stepRule, decoder: decoder)
        } else {
            let row = out.tried.first { abs(Float(pow(10, $0[0])) - out.learningRate) < 1e-6 * out.learningRate }!
            #expect(row[4] == stepsTo(level, decoder, x, start, out.configuration(base)))
            chosenWork = row[4] * adamCost
        }
        #expect(chosenWork == works.min()!)
        // Without a level the rows keep three numbers and early progress decides.
        let plain = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 2, seed: 1)
        #expect(plain.target == nil && !plain.chosenByTarget && plain.krylov!.count == 3)
        let (elbo, ex, es) = setup(objective: .elbo(beta: 1))
        let e = AutomaticPace.select(decoder: elbo, x: ex, start: es, base: base, threads: 2, seed: 1, target: 0.5)
        #expect(e.target == nil && !e.chosenByTarget && e.tried.allSatisfy { $0.count == 4 })
    }

    /// A linear decoder with the reconstruction objective, where the Cauchy step is steepest
    /// descent with an exact line search on each point's quadratic (and the subspace step a
    /// two-term conjugate-direction step): they make faster early progress than any Adam rate,
    /// and the search chooses one of them. Refined off the mean, or with an ELBO objective, they
    /// are never candidates.
    @Test func automaticPaceChoosesAGaussNewtonRuleWhereItIsFasterAndOnlyWhereItApplies() {
        let (decoder, x, start) = reconstructionProblem(seed: 12, architecture: .arch1, rows: 120)
        var base = GuardedRefinementConfiguration(learningRate: 0.1)
        base.maxSteps = 20
        let out = AutomaticPace.select(decoder: decoder, x: x, start: start, base: base, threads: 1, seed: 1)
        #expect(out.stepRule.usesGaussNewtonModel, "rates \(out.tried), Cauchy \(String(describing: out.cauchy)), subspace \(String(describing: out.subspace))")
        var noMean = base
        noMean.closedFormVariance = false
        #expect(!AutomaticPace.cauchyApplies(decoder: decoder, base: noMean))
        let offMean = AutomaticPace.select(decoder: decoder, x: x, start: start, base: noMean, threads: 1, seed: 1)
        #expect(offMean.stepRule == .adam && offMean.cauchy == nil && offMean.subspace == nil && offMean.krylov == nil)
        let (elbo, ex, es) = setup(objective: .elbo(beta: 1))
        let e = AutomaticPace.select(decoder: elbo, x: ex, start: es, base: base, threads: 2, seed: 1)
        #expect(e.stepRule == .adam && e.cauchy == nil && e.subspace == nil && e.krylov == nil)
    }

    /// With a fixed noise pair, a Gaussian εⱼ near 0 leaves nothing pushing σⱼ down, and the
    /// Monte Carlo reconstruction stays far above its value at the mean. Rademacher pairs
    /// (|εⱼ| = 1) press every coordinate: under the reconstruction objective (optimum σ → 0)
    /// every log σ² falls, and the expected reconstruction ends close to the at-mean one.
    @Test func rademacherNoiseShrinksEveryPosteriorVariance() {
        var rng = RandomGenerator(seed: 5)
        let L = 8, d = 40, n = 64
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = Dataset(rows: n, cols: d, values: rng.normalArray(count: n * d))
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        var c = GuardedRefinementConfiguration(learningRate: 0.1, tolerance: 0, patience: 1_000, maxSteps: 60)
        c.rademacherNoise = true
        c.closedFormVariance = false   // the pair itself is under test
        let r = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32).refine(x, start: start, configuration: c, seed: 3)
        let worst = r.logVariance.max()!
        #expect(worst < -2, "some log σ² stayed at \(worst) (start 0)")
        let m = Metrics.evaluate(decoder: decoder, x: x, mu: r.mu, logVariance: r.logVariance, samples: 64, seed: 1)
        #expect(m.expectedReconstruction < 1.1 * m.reconstructionAtMean,
                "expected \(m.expectedReconstruction) against \(m.reconstructionAtMean) at the mean")
    }

    /// (1/d)‖xᵢ − D(μ)‖² of one point, at the mean (Double sums of the Float forward pass).
    func objectiveAtMean(_ decoder: GaussianDecoder, _ x: Dataset, point i: Int, mu: [Float]) -> Double {
        let ws = ChunkWorkspace(decoder: decoder, maxPoints: 1, samples: 1)
        var rng = RandomGenerator(seed: 0)
        let lv = [Float](repeating: -18, count: mu.count)
        return mu.withUnsafeBufferPointer { m in
            lv.withUnsafeBufferPointer { l in
                var req = ChunkRequest(x: x.values.pointer + i * x.cols, count: 1, mu: m.baseAddress!, muStride: mu.count,
                                       logVariance: l.baseAddress!, logVarianceStride: mu.count)
                req.atMean = true
                return decoder.evaluate(req, workspace: ws, rng: &rng)
            }
        }
    }

    /// The reconstruction objective: log σ² goes to the floor once (a start below it is kept),
    /// and one accepted step is Adam's first, μ − rate·g/(|g| + ε) ≈ μ − rate·sign(g), with g
    /// the gradient of the objective at the mean (here by central differences, coordinates
    /// with |g| clearly above rounding); each point's reported objective is that at the mean.
    @Test func reconstructionRefinesTheMeanWithTheVarianceAtTheFloor() {
        let (decoder, x, start0) = setup()
        var start = start0
        start.logVariance[0] = -20   // below the floor: kept
        let L = decoder.latent, rate: Float = 1e-3
        var c = GuardedRefinementConfiguration(learningRate: rate)
        c.maxSteps = 1
        let r = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32).refine(x, start: start, configuration: c, seed: 4)
        #expect(r.logVariance == start.logVariance.map { min($0, -18) })
        var accepted = 0, checked = 0
        for i in 0..<x.rows {
            let mu0 = Array(start.mu[(i * L)..<(i * L + L)]), mu1 = Array(r.mu[(i * L)..<(i * L + L)])
            #expect(abs(r.perPointObjective[i] - objectiveAtMean(decoder, x, point: i, mu: mu1)) <= 1e-6 * r.perPointObjective[i])
            guard mu1 != mu0 else { continue }   // the step was rejected by the closing evaluation
            accepted += 1
            for j in 0..<L {
                var plus = mu0, minus = mu0
                plus[j] += 1e-2; minus[j] -= 1e-2
                let g = (objectiveAtMean(decoder, x, point: i, mu: plus) - objectiveAtMean(decoder, x, point: i, mu: minus)) / 2e-2
                guard abs(g) > 1e-3 else { continue }
                checked += 1
                let expected = mu0[j] - rate * (g > 0 ? 1 : -1)
                #expect(abs(mu1[j] - expected) <= 1e-5, "point \(i), μ\(j): \(mu1[j]) against \(expected) (g \(g))")
            }
        }
        #expect(accepted > x.rows / 2 && checked > x.rows)
    }

    /// With a KL term (the ELBO) σ has an interior optimum: the antithetic pair is used whatever
    /// `closedFormVariance` says, bit for bit.
    @Test func elboKeepsThePair() {
        let (decoder, x, start) = setup(objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)))
        var c = GuardedRefinementConfiguration(learningRate: 0.05)
        c.maxSteps = 10
        var off = c
        off.closedFormVariance = false
        let g = GuardedRefinement(decoder: decoder, threads: 1, chunkRows: 32)
        let a = g.refine(x, start: start, configuration: c, seed: 2), b = g.refine(x, start: start, configuration: off, seed: 2)
        #expect(a.mu == b.mu && a.logVariance == b.logVariance && a.curve == b.curve)
        #expect(a.logVariance != start.logVariance)
    }
}
