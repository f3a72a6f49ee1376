import Testing
import TestSupport
import Foundation
import PESVINumerics
@testable import PESVIModels

/// The decoder's output at z, in Double (an independent reference for finite differences).
private func forwardDouble(_ net: DenseNetwork, _ z: [Double]) -> [Double] {
    let p = net.parameters.array.map(Double.init)
    var a = z
    for l in 1...net.layerCount {
        let nIn = net.widths[l - 1], nOut = net.widths[l]
        var y = Array(p[net.biasOffsets[l - 1]..<(net.biasOffsets[l - 1] + nOut)])
        for i in 0..<nIn { for o in 0..<nOut { y[o] += a[i] * p[net.weightOffsets[l - 1] + i * nOut + o] } }
        if l < net.layerCount { y = y.map { max($0, 0) } }
        a = y
    }
    return a
}

/// The decoder's output at z in Double with hidden layer l smoothed to τₗ·log(1 + e^{a/τₗ})
/// (`taus[l − 1]`; 0: the ReLU), and the spread (population standard deviation over the layer's
/// units) of each hidden layer's pre-activations on the way (with the given smoothing).
private func smoothedForwardDouble(_ net: DenseNetwork, _ z: [Double], taus: [Double]) -> (output: [Double], spreads: [Double]) {
    let p = net.parameters.array.map(Double.init)
    var a = z, spreads = [Double]()
    for l in 1...net.layerCount {
        let nIn = net.widths[l - 1], nOut = net.widths[l]
        var y = Array(p[net.biasOffsets[l - 1]..<(net.biasOffsets[l - 1] + nOut)])
        for i in 0..<nIn { for o in 0..<nOut { y[o] += a[i] * p[net.weightOffsets[l - 1] + i * nOut + o] } }
        if l < net.layerCount {
            let mean = y.reduce(0, +) / Double(nOut)
            spreads.append((y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(nOut)).squareRoot())
            let tau = taus[l - 1]
            y = y.map { tau > 0 ? max($0, 0) + tau * log1p(exp(-abs($0) / tau)) : max($0, 0) }
        }
        a = y
    }
    return (a, spreads)
}

/// n points x = D(z) + noise with z ~ N(0, I), from the decoder itself.
private func dataFrom(_ decoder: GaussianDecoder, n: Int, noise: Float, seed: UInt64) -> Dataset {
    var rng = RandomGenerator(seed: seed)
    let L = decoder.latent, d = decoder.dataWidth
    var v = [Float]()
    for _ in 0..<n {
        let y = forwardDouble(decoder.network, rng.normalArray(count: L).map(Double.init))
        for c in 0..<d { v.append(Float(y[c]) + noise * rng.standardNormal()) }
    }
    return Dataset(rows: n, cols: d, values: v)
}

/// The inverse of a symmetric positive definite n × n matrix (row-major, Double) by Gauss-Jordan
/// elimination on [A | I] (no pivoting needed for such a matrix): the tests' independent reference.
private func inverseOfPositiveDefinite(_ m: [Double], n: Int) -> [Double] {
    var a = [Double](repeating: 0, count: n * 2 * n)
    for i in 0..<n {
        for j in 0..<n { a[i * 2 * n + j] = m[i * n + j] }
        a[i * 2 * n + n + i] = 1
    }
    for c in 0..<n {
        let pivot = a[c * 2 * n + c]
        for j in 0..<(2 * n) { a[c * 2 * n + j] /= pivot }
        for i in 0..<n where i != c {
            let f = a[i * 2 * n + c]
            for j in 0..<(2 * n) { a[i * 2 * n + j] -= f * a[c * 2 * n + j] }
        }
    }
    return (0..<(n * n)).map { a[($0 / n) * 2 * n + n + $0 % n] }
}

/// The per-point objective at z = μ (`evaluate` with atMean), in the refinement's table layout.
private func objectiveAtMean(_ decoder: GaussianDecoder, _ x: Dataset, mu: [Float], logVariance: [Float]) -> [Double] {
    let table = PosteriorTable(mu: mu, logVariance: logVariance, latent: decoder.latent, adam: AdamConfiguration(learningRate: 0))
    let stepper = LatentStepper(decoder: decoder, threads: 1, chunkRows: 32)
    var out = [Double](repeating: 0, count: x.rows)
    out.withUnsafeMutableBufferPointer { _ = stepper.evaluate(x, table, seed: 0, step: 0, atMean: true, perPoint: $0.baseAddress!) }
    return out
}

@Suite struct GaussNewtonRefinementTests {
    /// Linear decoder, reconstruction: one undamped GN step from any start — near, zero, far —
    /// is the least-squares μ* = argmin ‖x − μW − b‖² (normal equations in Double); both as the
    /// exact step formed as an affine map (the default) and as the iterative path's first step.
    @Test(arguments: [true, false])
    func oneStepSolvesLinearLeastSquares(exact: Bool) {
        var rng = RandomGenerator(seed: 11)
        let L = 5, d = 12, n = 40
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.3, seed: 12)
        let ls = leastSquares(decoder: decoder.network, x: x)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, damping: 1e-12, tolerance: 0, absoluteDamping: 0, minimumDamping: 0,
                                       exactLinearStep: exact)
        #expect(gn.takesExactLinearStep == exact)
        for (k, scale) in [Float(0), 1, 30].enumerated() {
            var srng = RandomGenerator(seed: 100 + UInt64(k))
            let mu0 = srng.normalArray(count: n * L, std: max(scale, 1)).map { scale == 0 ? 0 : $0 }
            let r = gn.refine(x, start: (mu0, [Float](repeating: 0, count: n * L)), maxSteps: 1, seed: 1)
            var worst = 0.0
            for i in 0..<n {
                var err = 0.0, norm = 0.0
                for j in 0..<L { err += pow(Double(r.mu[i * L + j]) - ls[i * L + j], 2); norm += ls[i * L + j] * ls[i * L + j] }
                worst = max(worst, (err / max(norm, 1e-12)).squareRoot())
            }
            #expect(worst < 1e-4, "start scale \(scale): worst relative error \(worst) after one step")
            #expect(r.stepsPerPoint.allSatisfy { $0 == 1 } && r.iterations == 1 && r.usedStart == !exact)
        }
        // From μ ~ 1000 a float μ resolves only ~6e-5 (and D(μ) ~ 1e3 rounds the residual at
        // ~1e-4), so one step is exact relative to the distance travelled, and its error
        // (~1e-4 absolute) costs no more than float rounding in the objective.
        do {
            var srng = RandomGenerator(seed: 200)
            let mu0 = srng.normalArray(count: n * L, std: 1000)
            let lv0 = [Float](repeating: 0, count: n * L)
            let one = gn.refine(x, start: (mu0, lv0), maxSteps: 1, seed: 1)
            let best = objectiveAtMean(decoder, x, mu: ls.map { Float($0) }, logVariance: lv0)
            var worst = 0.0
            for i in 0..<n {
                var e = 0.0, dist = 0.0
                for j in 0..<L {
                    let t = ls[i * L + j]
                    e += pow(Double(one.mu[i * L + j]) - t, 2); dist += pow(Double(mu0[i * L + j]) - t, 2)
                }
                worst = max(worst, (e / dist).squareRoot())
                #expect(one.objectiveAtMean[i] <= best[i] * (1 + 1e-6), "far start, point \(i): \(one.objectiveAtMean[i]) vs optimum \(best[i])")
            }
            #expect(worst < 1e-5, "far start, one step: error / distance \(worst)")
        }
        // With the default damping λ = 1e-3 the step is damped, but LM converges to μ* in a few steps.
        let damped = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 0, absoluteDamping: 0, exactLinearStep: false)
        var srng = RandomGenerator(seed: 7)
        let r = damped.refine(x, start: (srng.normalArray(count: n * L, std: 10), [Float](repeating: 0, count: n * L)), maxSteps: 6, seed: 1)
        var worst = 0.0
        for i in 0..<(n * L) { worst = max(worst, abs(Double(r.mu[i]) - ls[i]) / max(abs(ls[i]), 1)) }
        #expect(worst < 1e-4, "damped LM after 6 steps: \(worst)")
    }

    /// H̃ = JᵀΛJ and JᵀΛr match J from central differences of D (in Double) for Arch2 and Arch3,
    /// with Λ = I (reconstruction), I/σₓ² and a learned diagonal; at |z| = 6 (products read in
    /// place through offsets) and |z| = 130 (above `gatheredLatentLimit`: gathered copies and
    /// packed gemm; d < |z|: C for the data-space solve, H̃ = C·Cᵀ by the test helper, and with
    /// that solve off H̃ itself); d = 15 ≥ h = 12 (through G[S, S]) and d = 7 < h (C = Bᵀ·F[S, :],
    /// then H̃ = C·Cᵀ).
    @Test(arguments: [Architecture.arch2, .arch3], [(latent: 6, data: 15, dataSpace: true), (latent: 6, data: 7, dataSpace: true),
                                                    (latent: 130, data: 15, dataSpace: true), (latent: 130, data: 15, dataSpace: false)])
    func jacobianProductsMatchFiniteDifferences(_ arch: Architecture, shape: (latent: Int, data: Int, dataSpace: Bool)) {
        let L = shape.latent, d = shape.data, n = 20
        var rng = RandomGenerator(seed: 21)
        let net = DenseNetwork(widths: arch.decoderWidths(latent: L, data: d), rng: &rng)
        let learnedLV = rng.uniformArray(count: d, low: -1, high: 1)
        let objectives: [(Objective, [Float]?)] = [(.reconstruction, nil), (.elbo(beta: 0.5, likelihood: .fixedVariance(sigma: 0.3)), nil),
                                                   (.elbo(beta: 1, likelihood: .learnedVariance), learnedLV)]
        for (objective, lv) in objectives {
            let decoder = GaussianDecoder(network: net, objective: objective, logNoiseVariance: lv)
            let x = dataFrom(decoder, n: n, noise: 0.2, seed: 22)
            let mu = rng.normalArray(count: n * L)
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 8)
            gn.dataSpaceSolve = shape.dataSpace
            #expect(gn.solvesInDataSpace == (shape.dataSpace && d < L))
            gn.compactActiveUnits = false
            let dense = gn.linearization(x, mu: mu)
            gn.compactActiveUnits = true
            let lin = gn.linearization(x, mu: mu)
            // The active-unit path and the dense masked path agree to float rounding.
            for e in 0..<lin.hessian.count { #expect(abs(lin.hessian[e] - dense.hessian[e]) <= 1e-4 * max(1, abs(dense.hessian[e]))) }
            let lambda: [Double] = {
                switch objective.likelihood {
                case _ where objective.kind == .reconstruction: return [Double](repeating: 1, count: d)
                case .fixedVariance(let s): return [Double](repeating: 1 / (Double(s) * Double(s)), count: d)
                case .learnedVariance: return learnedLV.map { exp(-Double($0)) }
                }
            }()
            var worstH = 0.0, worstG = 0.0
            for i in 0..<n {
                let z = (0..<L).map { Double(mu[i * L + $0]) }
                let y = forwardDouble(net, z)
                var J = [Double](repeating: 0, count: d * L)  // d × L
                let h = 1e-6
                for j in 0..<L {
                    var zp = z, zm = z
                    zp[j] += h; zm[j] -= h
                    let yp = forwardDouble(net, zp), ym = forwardDouble(net, zm)
                    for c in 0..<d { J[c * L + j] = (yp[c] - ym[c]) / (2 * h) }
                }
                var scaleH = 0.0, scaleG = 0.0
                var refH = [Double](repeating: 0, count: L * L), refG = [Double](repeating: 0, count: L)
                for a in 0..<L {
                    for b in 0..<L { for c in 0..<d { refH[a * L + b] += J[c * L + a] * lambda[c] * J[c * L + b] } }
                    for c in 0..<d { refG[a] += J[c * L + a] * lambda[c] * (Double(x.row(i)[c]) - y[c]) }
                }
                for v in refH { scaleH = max(scaleH, abs(v)) }
                for v in refG { scaleG = max(scaleG, abs(v)) }
                for e in 0..<(L * L) { worstH = max(worstH, abs(Double(lin.hessian[i * L * L + e]) - refH[e]) / scaleH) }
                for e in 0..<L { worstG = max(worstG, abs(Double(lin.gradient[i * L + e]) - refG[e]) / max(scaleG, 1e-12)) }
            }
            #expect(worstH < 1e-4, "\(arch) \(objective): JᵀΛJ off by \(worstH) (relative to the largest entry)")
            #expect(worstG < 1e-4, "\(arch) \(objective): JᵀΛr off by \(worstG)")
            // P(μ) is the objective at the mean minus the σ part of β·KL (log σ² = 0 here: that part is 0).
            let atMean = objectiveAtMean(decoder, x, mu: mu, logVariance: [Float](repeating: 0, count: n * L))
            for i in 0..<n { #expect(abs(lin.objective[i] - atMean[i]) <= 1e-5 * max(1, abs(atMean[i]))) }
        }
    }

    /// With smoothed hidden layers (``GaussNewtonSmoothing``; each point its own temperatures,
    /// one point at τ = 0, i.e. its ReLU): H̃ = JᵀΛJ, JᵀΛr and P(μ) of the smoothed decoder match
    /// J from central differences of it in Double, for Arch2 and Arch3 and both objectives; with
    /// d = 15 ≥ h = 12 (H̃ = (A·G)·Aᵀ), d = 7 < h (H̃ = C·Cᵀ, C = A·W_L Λ^{1/2}) and d = 4 < |z|
    /// (only C formed, for the data-space solve; H̃ = C·Cᵀ by the test helper).
    @Test(arguments: [Architecture.arch2, .arch3], [15, 7, 4])
    func smoothedJacobianProductsMatchFiniteDifferences(_ arch: Architecture, dataWidth d: Int) {
        let L = 6, n = 20
        var rng = RandomGenerator(seed: 23)
        let net = DenseNetwork(widths: arch.decoderWidths(latent: L, data: d), rng: &rng)
        let hidden = net.layerCount - 1
        for objective in [Objective.reconstruction, .elbo(beta: 0.5, likelihood: .fixedVariance(sigma: 0.3))] {
            let decoder = GaussianDecoder(network: net, objective: objective)
            let x = dataFrom(decoder, n: n, noise: 0.2, seed: 24)
            let mu = rng.normalArray(count: n * L)
            let taus = (0..<(n * hidden)).map { $0 / hidden == 3 ? Float(0) : 0.05 + 1.45 * rng.uniformFloat() }
            let lin = GaussNewtonRefinement(decoder: decoder, chunkRows: 8).linearization(x, mu: mu, temperatures: taus)
            let lambda = objective.kind == .reconstruction ? 1.0 : 1 / (0.3 * 0.3)
            var worstH = 0.0, worstG = 0.0, worstP = 0.0
            for i in 0..<n {
                let t = (0..<hidden).map { Double(taus[i * hidden + $0]) }
                let z = (0..<L).map { Double(mu[i * L + $0]) }
                let y = smoothedForwardDouble(net, z, taus: t).output
                var J = [Double](repeating: 0, count: d * L)
                let h = 1e-6
                for j in 0..<L {
                    var zp = z, zm = z
                    zp[j] += h; zm[j] -= h
                    let yp = smoothedForwardDouble(net, zp, taus: t).output, ym = smoothedForwardDouble(net, zm, taus: t).output
                    for c in 0..<d { J[c * L + j] = (yp[c] - ym[c]) / (2 * h) }
                }
                var refH = [Double](repeating: 0, count: L * L), refG = [Double](repeating: 0, count: L), sq = 0.0
                for a in 0..<L {
                    for b in 0..<L { for c in 0..<d { refH[a * L + b] += J[c * L + a] * lambda * J[c * L + b] } }
                    for c in 0..<d { refG[a] += J[c * L + a] * lambda * (Double(x.row(i)[c]) - y[c]) }
                }
                for c in 0..<d { sq += (Double(x.row(i)[c]) - y[c]) * (Double(x.row(i)[c]) - y[c]) }
                let scaleH = refH.map(abs).max()!, scaleG = max(refG.map(abs).max()!, 1e-12)
                for e in 0..<(L * L) { worstH = max(worstH, abs(Double(lin.hessian[i * L * L + e]) - refH[e]) / scaleH) }
                for e in 0..<L { worstG = max(worstG, abs(Double(lin.gradient[i * L + e]) - refG[e]) / scaleG) }
                // P(μ): (1/d)‖r‖² or ½‖r‖²_Λ + c + ½β‖μ‖²; compared through its data term.
                let refP: Double, c: Double
                switch objective.kind {
                case .reconstruction: refP = sq / Double(d); c = 0
                case .elbo(let beta):
                    c = 0.5 * Double(d) * log(2 * Double.pi * 0.09)
                    refP = 0.5 * lambda * sq + c + 0.5 * Double(beta) * z.map { $0 * $0 }.reduce(0, +)
                }
                worstP = max(worstP, abs(lin.objective[i] - refP) / max(1, abs(refP - c)))
            }
            #expect(worstH < 1e-4, "\(arch) \(objective): smoothed JᵀΛJ off by \(worstH)")
            #expect(worstG < 1e-4, "\(arch) \(objective): smoothed JᵀΛr off by \(worstG)")
            #expect(worstP < 1e-5, "\(arch) \(objective): smoothed P(μ) off by \(worstP)")
        }
    }

    /// The smoothing schedule (``GaussNewtonSmoothing``, K = 3): in each smoothed iteration t a
    /// point's step never raises the objective of the decoder smoothed at that iteration's
    /// temperatures, τ = c·s·fᵗ with s the spread of its pre-activations at the start (computed
    /// here in Double); from iteration K on, plain Gauss-Newton never raises the ReLU objective;
    /// no point stops on small progress before K; and the result's P(μ) is the ReLU decoder's
    /// whenever the run ends (inside the smoothing too).
    /// Also with the Krylov solve in every iteration and in the smoothed ones only.
    @Test(arguments: [(0, 0), (3, 0), (0, 3)])
    func smoothingLowersEachIterationsSmoothedObjectiveThenTheReLUObjective(krylov: Int, smoothedKrylov: Int) {
        let L = 4, d = 20, n = 48
        var rng = RandomGenerator(seed: 33)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3, objective: .reconstruction, rng: &rng)
        let net = decoder.network, hidden = net.layerCount - 1
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 34)
        let mu0 = rng.normalArray(count: n * L, std: 3)
        let lv0 = [Float](repeating: -18, count: n * L)
        let schedule = GaussNewtonSmoothing(iterations: 3, scale: 0.5, factor: 0.5)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 0.05, trialsPerIteration: 3, smoothing: schedule,
                                       krylovDimension: krylov, smoothedKrylovDimension: smoothedKrylov)
        #expect(gn.solvesInKrylovSubspace == (krylov > 0))
        #expect(gn.krylovDimension(smoothed: true) == max(krylov, smoothedKrylov) && gn.krylovDimension(smoothed: false) == krylov)
        let spreads = (0..<n).map { i in smoothedForwardDouble(net, (0..<L).map { Double(mu0[i * L + $0]) }, taus: [0, 0]).spreads }
        var previous = gn.refine(x, start: (mu0, lv0), maxSteps: 0, seed: 5)
        var smoothedDrops = 0, reluRises = 0
        for t in 1...10 {
            let r = gn.refine(x, start: (mu0, lv0), maxSteps: t, seed: 5)
            let independent = objectiveAtMean(decoder, x, mu: r.mu, logVariance: r.logVariance)
            for i in 0..<n { #expect(abs(independent[i] - r.objectiveAtMean[i]) <= 1e-6 * max(abs(independent[i]), 1e-12)) }
            if t <= schedule.iterations {
                // τ = c·s·fᵗ⁻¹ at iteration t, computed here, not by the schedule.
                let taus = (0..<(n * hidden)).map { e in Float(schedule.scale * pow(schedule.factor, Double(t - 1)) * spreads[e / hidden][e % hidden]) }
                let before = gn.linearization(x, mu: previous.mu, temperatures: taus).objective
                let after = gn.linearization(x, mu: r.mu, temperatures: taus).objective
                for i in 0..<n {
                    #expect(after[i] <= before[i] + 1e-6 * abs(before[i]), "iteration \(t), point \(i): smoothed objective rose")
                    if after[i] < before[i] { smoothedDrops += 1 }
                }
                #expect(r.stepsPerPoint.allSatisfy { $0 == t }, "a point stopped inside the smoothing")
            } else {
                for i in 0..<n where !(r.objectiveAtMean[i] <= previous.objectiveAtMean[i]) { reluRises += 1 }
            }
            previous = r
        }
        #expect(smoothedDrops > n, "the smoothed steps hardly moved: \(smoothedDrops)")
        for t in 0..<6 {
            let expected = t < schedule.iterations ? Float(schedule.scale * pow(schedule.factor, Double(t))) : 0
            #expect(abs(schedule.multiplier(iteration: t) - expected) <= 1e-7 * max(expected, 1), "multiplier at \(t)")
        }
        #expect(GaussNewtonSmoothing.off.multiplier(iteration: 0) == 0 && !GaussNewtonSmoothing.off.isActive)
        #expect(reluRises == 0, "\(reluRises) point-iterations raised the ReLU objective after the smoothing")
        #expect(previous.meanSteps < 10, "no point finished after the smoothing")
    }

    /// ``GaussNewtonSmoothing/holdsDamping``: a point's second smoothed step, after an accepted
    /// first, solves the damped system at the first step's λ when the schedule holds it, and at
    /// λ/3 when it does not. The reference step is solved here in Double from the smoothed
    /// linearization at the point's μ after one iteration, at the second iteration's
    /// temperatures (computed here), with one trial per iteration and λ₀ = 1, where λ and λ/3
    /// give steps far apart.
    @Test(arguments: [true, false]) func smoothedStepsHoldOrLowerTheDamping(holds: Bool) {
        let L = 4, d = 16, n = 24, lambda0 = 1.0
        var rng = RandomGenerator(seed: 41)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let net = decoder.network
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 42)
        let mu0 = rng.normalArray(count: n * L, std: 1.5)
        let lv0 = [Float](repeating: -18, count: n * L)
        let schedule = GaussNewtonSmoothing(iterations: 3, scale: 0.5, factor: 0.5, holdsDamping: holds)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 8, damping: lambda0, acceptanceRatio: 0, smoothing: schedule)
        let one = gn.refine(x, start: (mu0, lv0), maxSteps: 1, seed: 1)
        let two = gn.refine(x, start: (mu0, lv0), maxSteps: 2, seed: 1)
        let spreads = (0..<n).map { i in smoothedForwardDouble(net, (0..<L).map { Double(mu0[i * L + $0]) }, taus: [0]).spreads[0] }
        let taus = spreads.map { Float(schedule.scale * schedule.factor * $0) }
        let lin = gn.linearization(x, mu: one.mu, temperatures: taus)
        func step(_ i: Int, lambda: Double) -> [Double] {
            var a = (0..<(L * L)).map { Double(lin.hessian[i * L * L + $0]) }
            for j in 0..<L { a[j * L + j] += lambda * a[j * L + j] + gn.absoluteDamping }
            return solveLinearSystem(a, (0..<L).map { Double(lin.gradient[i * L + $0]) })
        }
        var compared = 0, worstHeld = 0.0, worstLowered = 0.0
        for i in 0..<n {
            let moved1 = (0..<L).contains { one.mu[i * L + $0] != mu0[i * L + $0] }
            let moved2 = (0..<L).contains { two.mu[i * L + $0] != one.mu[i * L + $0] }
            guard moved1 && moved2 else { continue }  // both trials accepted
            compared += 1
            let taken = (0..<L).map { Double(two.mu[i * L + $0]) - Double(one.mu[i * L + $0]) }
            let held = step(i, lambda: lambda0), lowered = step(i, lambda: lambda0 / 3)
            let scale = held.map(abs).max()! + lowered.map(abs).max()!
            worstHeld = max(worstHeld, (0..<L).map { abs(taken[$0] - held[$0]) }.max()! / scale)
            worstLowered = max(worstLowered, (0..<L).map { abs(taken[$0] - lowered[$0]) }.max()! / scale)
        }
        #expect(compared >= n / 2, "only \(compared) points accepted both steps")
        if holds {
            #expect(worstHeld < 1e-3, "held λ: the step differs by \(worstHeld)")
            #expect(worstLowered > 0.05, "held and lowered λ give the same step (\(worstLowered)): the test cannot tell them apart")
        } else {
            #expect(worstLowered < 1e-3, "lowered λ: the step differs by \(worstLowered)")
            #expect(worstHeld > 0.05, "held and lowered λ give the same step (\(worstHeld)): the test cannot tell them apart")
        }
    }

    /// A schedule round-trips through JSON; one written before `holdsDamping` (no such key)
    /// decodes with λ lowered, as it ran then.
    @Test func smoothingScheduleDecodesOldAndNewJSON() throws {
        let data = try JSONEncoder().encode(GaussNewtonSmoothing.standard)
        #expect(try JSONDecoder().decode(GaussNewtonSmoothing.self, from: data) == .standard)
        let old = try JSONDecoder().decode(GaussNewtonSmoothing.self, from: Data(#"{"iterations":4,"scale":0.3,"factor":0.5}"#.utf8))
        #expect(old == GaussNewtonSmoothing(iterations: 4, scale: 0.3, factor: 0.5, holdsDamping: false))
    }

    /// The Krylov solve's batched products against the dense linearization (itself checked
    /// against central differences above), plain and smoothed, Arch2 and Arch3: JᵀΛr is the
    /// same, H̃v = Jᵀ_h((J_h v)·G) is H̃ times v, and the projected M = QᵀH̃Q and b = Qᵀg of the
    /// basis are those of the dense H̃ and g, with Q orthonormal. With d = 4 < h = 12 the
    /// products and M go through F = W_L Λ^{1/2} (``GaussNewtonRefinement/krylovThroughRoot``);
    /// with d = 15 through G.
    @Test(arguments: [Architecture.arch2, .arch3], [15, 4])
    func krylovProductsMatchTheDenseLinearization(_ arch: Architecture, d: Int) {
        let L = 6, n = 8, k = 3
        var rng = RandomGenerator(seed: 25)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: .reconstruction, rng: &rng)
        let hidden = decoder.network.layerCount - 1, h = decoder.network.widths[hidden]
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 26)
        let mu = rng.normalArray(count: n * L)
        for smoothed in [false, true] {
            let taus = (0..<(n * hidden)).map { _ in smoothed ? 0.1 + rng.uniformFloat() : Float(0) }
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: n, krylovDimension: k)
            #expect(gn.krylovThroughRoot == (d < h))
            let dense = gn.linearization(x, mu: mu, temperatures: smoothed ? taus : nil)
            withKrylovLinearization(gn, x, rows: n, mu: mu, taus: taus, smoothed: smoothed) { ws, kw in
                var worstG = 0.0, worstH = 0.0, worstM = 0.0, worstQ = 0.0
                for r in 0..<n {
                    let g = (0..<L).map { Double(dense.gradient[r * L + $0]) }, scaleG = g.map(abs).max()!
                    for j in 0..<L { worstG = max(worstG, abs(Double(ws.gradient.pointer[r * L + j]) - g[j]) / scaleG) }
                }
                // H̃v for random v.
                let v = FloatBuffer(rng.normalArray(count: n * L)), y = FloatBuffer(count: n * h), w = FloatBuffer(count: n * h)
                let hv = FloatBuffer(count: n * L), root = FloatBuffer(count: n * d)
                for throughRoot in gn.krylovThroughRoot ? [false, true] : [false] {
                    gn.krylovProduct(v.pointer, rows: n, image: y.pointer, gramImage: w.pointer, rootImage: throughRoot ? root.pointer : nil,
                                     result: hv.pointer, workspace: ws, krylov: kw)
                    for r in 0..<n {
                        var ref = [Double](repeating: 0, count: L)
                        for a in 0..<L { for b in 0..<L { ref[a] += Double(dense.hessian[r * L * L + a * L + b]) * Double(v[r * L + b]) } }
                        let scale = ref.map(abs).max()!
                        for a in 0..<L { worstH = max(worstH, abs(Double(hv[r * L + a]) - ref[a]) / scale) }
                        if throughRoot {
                            // vᵀH̃v = ‖(J_h v)·F‖².
                            let vHv = (0..<L).reduce(0.0) { $0 + Double(v[r * L + $1]) * ref[$1] }
                            let zz = (0..<d).reduce(0.0) { $0 + Double(root[r * d + $1]) * Double(root[r * d + $1]) }
                            #expect(abs(zz - vHv) <= 1e-4 * max(abs(vHv), 1e-6), "vᵀH̃v \(vHv), ‖yF‖² \(zz)")
                        }
                    }
                }
                // M and b of the basis over its kept vectors (no last step: at most k; fewer where
                // g lies in a smaller invariant subspace of H̃).
                let nb = k + 1
                var keptTotal = 0
                for r in 0..<n {
                    #expect(!kw.kept[k * n + r], "point \(r): a last step without one")
                    let keptRows = (0..<k).filter { kw.kept[$0 * n + r] }
                    keptTotal += keptRows.count
                    let q = (0..<k).map { a in (0..<L).map { Double(kw.basis.pointer[(a * n + r) * L + $0]) } }
                    let Hr = (0..<(L * L)).map { Double(dense.hessian[r * L * L + $0]) }
                    var scale = 0.0, err = 0.0
                    for a in keptRows { for b in keptRows {
                        var ref = 0.0
                        for i in 0..<L { for j in 0..<L { ref += q[a][i] * Hr[i * L + j] * q[b][j] } }
                        scale = max(scale, abs(ref))
                        err = max(err, abs(kw.projected[r * nb * nb + a * nb + b] - ref))
                        let dot = (0..<L).reduce(0.0) { $0 + q[a][$1] * q[b][$1] }
                        worstQ = max(worstQ, abs(dot - (a == b ? 1 : 0)))
                    } }
                    if scale > 0 { worstM = max(worstM, err / scale) }
                    for a in keptRows {
                        let b = (0..<L).reduce(0.0) { $0 + q[a][$1] * Double(dense.gradient[r * L + $1]) }
                        #expect(abs(kw.projectedGradient[r * nb + a] - b) <= 1e-4 * max(1, abs(b)))
                    }
                }
                #expect(keptTotal > n * (k - 1), "too few Krylov vectors kept: \(keptTotal) of \(n * k)")
                #expect(worstG < 1e-4, "\(arch) d \(d) smoothed \(smoothed): JᵀΛr off by \(worstG)")
                #expect(worstH < 1e-4, "\(arch) smoothed \(smoothed): H̃v off by \(worstH)")
                #expect(worstM < 1e-4, "\(arch) smoothed \(smoothed): QᵀH̃Q off by \(worstM)")
                #expect(worstQ < 1e-5, "\(arch) smoothed \(smoothed): Q not orthonormal by \(worstQ)")
            }
        }
    }

    /// ``GaussNewtonRefinement/smoothedKrylovLastStep``: with every point holding a last step,
    /// a smoothed Krylov linearization keeps it as the basis's last vector when the option is
    /// on and drops it for every point when it is off, while the Krylov vectors before it, M
    /// and b over them are the same bit for bit; an iteration on the ReLU decoder keeps the
    /// last step either way.
    @Test(arguments: [Architecture.arch2, .arch3])
    func smoothedKrylovBasisTakesTheLastStepOnlyWhenAsked(_ arch: Architecture) {
        let L = 10, d = 6, n = 16, k = 3, nb = k + 1
        var rng = RandomGenerator(seed: 97)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: .reconstruction, rng: &rng)
        let hidden = decoder.network.layerCount - 1
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 98)
        let mu = rng.normalArray(count: n * L), last = rng.normalArray(count: n * L)
        let taus = (0..<(n * hidden)).map { _ in 0.1 + rng.uniformFloat() }
        func linearize(smoothed: Bool, lastStep: Bool) -> (kept: [Bool], basis: [Float], projected: [Double], gradient: [Double]) {
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: n, krylovDimension: k, smoothedKrylovLastStep: lastStep)
            #expect(gn.smoothedKrylovLastStep == lastStep)
            return withKrylovLinearization(gn, x, rows: n, mu: mu, taus: taus, smoothed: smoothed, lastSteps: last) { _, kw in
                let kept = (0..<(nb * n)).map { kw.kept[$0] }
                let basis = Array(UnsafeBufferPointer(start: kw.basis.pointer, count: k * n * L))
                var projected = [Double](), gradient = [Double]()
                for r in 0..<n {
                    for a in 0..<k { for b in 0..<k { projected.append(kw.projected[r * nb * nb + a * nb + b]) } }
                    for a in 0..<k { gradient.append(kw.projectedGradient[r * nb + a]) }
                }
                return (kept, basis, projected, gradient)
            }
        }
        for smoothed in [false, true] {
            let on = linearize(smoothed: smoothed, lastStep: true), off = linearize(smoothed: smoothed, lastStep: false)
            let keptLastOn = (0..<n).filter { on.kept[k * n + $0] }.count, keptLastOff = (0..<n).filter { off.kept[k * n + $0] }.count
            #expect(keptLastOn > n / 2, "\(arch) smoothed \(smoothed): the last step kept for \(keptLastOn) of \(n) points")
            #expect(keptLastOff == (smoothed ? 0 : keptLastOn), "\(arch) smoothed \(smoothed): the last step kept for \(keptLastOff) points without it")
            #expect(Array(on.kept[0..<(k * n)]) == Array(off.kept[0..<(k * n)]))
            #expect(on.basis == off.basis && on.projected == off.projected && on.gradient == off.gradient,
                    "\(arch) smoothed \(smoothed): the Krylov vectors changed with the last step")
        }
    }

    /// ``GaussNewtonRefinement/smoothedKrylovInFirstLayer``: a smoothed Krylov linearization
    /// with its basis in the first hidden layer's space (h₁ = 12 < 2|z| = 20) spans the same
    /// vectors as the one in ℝ^|z|: each sₐ·W₁ᵀ is that basis's qₐ, orthonormal in ℝ^|z|, and M,
    /// b and the damped step δ agree, Arch2- and Arch3-shaped, through F (d = 6 < h) and
    /// through G (d = 14); the iterations on the ReLU decoder keep the basis in ℝ^|z|.
    @Test(arguments: [[10, 12, 6], [10, 12, 9, 6], [10, 12, 14], [10, 12, 9, 14]])
    func firstLayerKrylovBasisIsTheLatentBasis(_ widths: [Int]) {
        let L = widths[0], h1 = widths[1], n = 16, k = 4, nb = k + 1
        var rng = RandomGenerator(seed: 113)
        let (decoder, x, mu, taus) = krylovProblem(widths, points: n, rng: &rng, dataSeed: 114)
        func make(_ firstLayer: Bool) -> GaussNewtonRefinement {
            GaussNewtonRefinement(decoder: decoder, chunkRows: n, krylovDimension: k, smoothedKrylovDimension: k, smoothedKrylovLastStep: false,
                                  smoothedKrylovFirstLayer: firstLayer)
        }
        let latentRun = make(false), firstRun = make(true)
        #expect(!latentRun.smoothedKrylovInFirstLayer && firstRun.smoothedKrylovInFirstLayer)
        typealias Linearization = (kept: [Bool], q: [[Double]], projected: [Double], gradient: [Double], delta: [Double], inFirst: Bool)
        func linearize(_ gn: GaussNewtonRefinement, smoothed: Bool) -> Linearization {
            withKrylovLinearization(gn, x, rows: n, mu: mu, taus: taus, smoothed: smoothed, solve: true) { ws, kw in
                let kept = (0..<(nb * n)).map { kw.kept[$0] }
                var q = [[Double]]()
                let w1 = decoder.network.parameters.pointer + decoder.network.weightOffsets[0]
                for a in 0..<k {
                    for r in 0..<n {
                        if kw.inFirstLayer {
                            let sa = kw.firstBasis.pointer + (a * n + r) * h1
                            q.append((0..<L).map { j in (0..<h1).reduce(0.0) { $0 + Double(w1[j * h1 + $1]) * Double(sa[$1]) } })
                        } else {
                            q.append((0..<L).map { Double(kw.basis.pointer[(a * n + r) * L + $0]) })
                        }
                    }
                }
                let projected = (0..<(n * nb * nb)).map { kw.projected[$0] }, gradient = (0..<(n * nb)).map { kw.projectedGradient[$0] }
                let delta = (0..<(n * L)).map { ws.deltas[$0] }
                return (kept, q, projected, gradient, delta, kw.inFirstLayer)
            }
        }
        func worst(_ a: [Double], _ b: [Double]) -> Double {
            let scale = b.map(abs).max()!
            return zip(a, b).map { abs($0 - $1) }.max()! / scale
        }
        let ref = linearize(latentRun, smoothed: true), first = linearize(firstRun, smoothed: true)
        #expect(!ref.inFirst && first.inFirst)
        #expect(first.kept == ref.kept, "\(widths): kept vectors differ")
        #expect((0..<n).filter { first.kept[(k - 1) * n + $0] }.count > n / 2, "\(widths): too few full bases")
        var worstQ = 0.0, worstOrtho = 0.0
        for r in 0..<n {
            let rows = (0..<k).filter { ref.kept[$0 * n + r] }
            for a in rows {
                worstQ = max(worstQ, worst(first.q[a * n + r], ref.q[a * n + r]))
                for b in rows {
                    let dot = (0..<L).reduce(0.0) { $0 + first.q[a * n + r][$1] * first.q[b * n + r][$1] }
                    worstOrtho = max(worstOrtho, abs(dot - (a == b ? 1 : 0)))
                }
            }
        }
        #expect(worstQ < 1e-3, "\(widths): sₐ·W₁ᵀ differs from qₐ by \(worstQ)")
        #expect(worstOrtho < 1e-4, "\(widths): sₐ·W₁ᵀ not orthonormal by \(worstOrtho)")
        #expect(worst(first.projected, ref.projected) < 1e-3, "\(widths): M differs")
        #expect(worst(first.gradient, ref.gradient) < 1e-3, "\(widths): b differs")
        #expect(worst(first.delta, ref.delta) < 1e-3, "\(widths): δ differs by \(worst(first.delta, ref.delta))")
        // On the ReLU decoder the basis stays in ℝ^|z| (with the last step where one is held).
        #expect(!linearize(firstRun, smoothed: false).inFirst)
    }

    /// ``GaussNewtonRefinement/balancedChunkRows(points:)``: chunks of whole lane groups (or
    /// `chunkRows` itself), never more than `chunkRows`, enough of them to cover the points, and
    /// on two threads an even number of chunks where there are enough points.
    @Test func balancedChunksAreWholeLaneGroups() {
        var rng = RandomGenerator(seed: 161)
        let decoder = GaussianDecoder(latent: 4, dataWidth: 6, architecture: .arch2, objective: .reconstruction, rng: &rng)
        for (threads, chunkRows) in [(1, 64), (2, 64), (1, 50), (2, 30)] {
            let gn = GaussNewtonRefinement(decoder: decoder, threads: threads, chunkRows: chunkRows)
            for points in [1, 7, 8, 9, 60, 64, 65, 100, 180, 181, 999] {
                let rows = gn.balancedChunkRows(points: points), chunks = (points + rows - 1) / rows
                #expect(rows >= 1 && rows <= chunkRows, "\(threads) threads, \(chunkRows) rows, \(points) points: \(rows)")
                #expect(rows % GaussNewtonWorkspace.lanes == 0 || rows == chunkRows, "\(points) points: \(rows) rows")
                #expect(chunks * rows >= points && (chunks - 1) * rows < points)
                if threads == 2 && points >= 4 * GaussNewtonWorkspace.lanes && chunkRows % GaussNewtonWorkspace.lanes == 0 {
                    #expect(chunks % 2 == 0, "\(chunkRows) rows, \(points) points: \(chunks) chunks of \(rows)")
                }
            }
        }
        #expect(GaussNewtonRefinement(decoder: decoder, chunkRows: 64).balancedChunkRows(points: 180) == 64)
        #expect(GaussNewtonRefinement(decoder: decoder, threads: 2, chunkRows: 64).balancedChunkRows(points: 180) == 48)
    }

    /// ``GaussNewtonRefinement/krylovPreconditioner``: with a preconditioner C the Krylov basis
    /// is an orthonormal basis of span{Cg, (CH̃)Cg, …, (CH̃)ᵏ⁻¹Cg}, checked against those vectors
    /// formed from the dense H̃ and g (``GaussNewtonRefinement/linearization(_:mu:temperatures:)``)
    /// in Double; M = QᵀH̃Q and b = Qᵀg as before. The identity as C gives the plain basis bit
    /// for bit. Arch2- and Arch3-shaped, smoothed and on the ReLU decoder.
    @Test(arguments: [[10, 16, 14], [10, 16, 12, 14]])
    func preconditionedKrylovBasisSpansThePreconditionedKrylovSpace(_ widths: [Int]) {
        let L = widths[0], n = 12, k = 4, nb = k + 1
        var rng = RandomGenerator(seed: 131)
        let (decoder, x, mu, taus) = krylovProblem(widths, points: n, rng: &rng, dataSeed: 132)
        // C = AAᵀ/L + I/2: symmetric positive definite, far from a multiple of the identity.
        let a = rng.normalArray(count: L * L)
        var c = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in 0..<L { c[i * L + j] = (0..<L).reduce(0) { $0 + a[i * L + $1] * a[j * L + $1] } / Float(L) + (i == j ? 0.5 : 0) } }
        var identity = [Float](repeating: 0, count: L * L)
        for j in 0..<L { identity[j * L + j] = 1 }
        func make(_ p: [Float]?) -> GaussNewtonRefinement {
            GaussNewtonRefinement(decoder: decoder, chunkRows: n, krylovDimension: k, smoothedKrylovDimension: k, krylovPreconditioner: p)
        }
        typealias Basis = (kept: [Bool], q: [Float], projected: [Double], gradient: [Double])
        func linearize(_ gn: GaussNewtonRefinement, smoothed: Bool) -> Basis {
            withKrylovLinearization(gn, x, rows: n, mu: mu, taus: taus, smoothed: smoothed) { _, kw in
                ((0..<(nb * n)).map { kw.kept[$0] }, Array(UnsafeBufferPointer(start: kw.basis.pointer, count: nb * n * L)),
                 (0..<(n * nb * nb)).map { kw.projected[$0] }, (0..<(n * nb)).map { kw.projectedGradient[$0] })
            }
        }
        for smoothed in [false, true] {
            let plain = linearize(make(nil), smoothed: smoothed), unit = linearize(make(identity), smoothed: smoothed)
            #expect(unit.kept == plain.kept && unit.q == plain.q && unit.projected == plain.projected && unit.gradient == plain.gradient,
                    "\(widths) smoothed \(smoothed): the identity changed the basis")
            let gn = make(c), pre = linearize(gn, smoothed: smoothed)
            #expect(pre.q != plain.q, "\(widths) smoothed \(smoothed): the preconditioner changed nothing")
            let dense = gn.linearization(x, mu: mu, temperatures: smoothed ? taus : nil)
            var worstSpan = 0.0, worstOrtho = 0.0, worstM = 0.0, worstB = 0.0, full = 0
            for r in 0..<n {
                let h = dense.hessian[(r * L * L)..<((r + 1) * L * L)].map(Double.init), g = dense.gradient[(r * L)..<((r + 1) * L)].map(Double.init)
                func times(_ m: [Float], _ v: [Double]) -> [Double] { (0..<L).map { i in (0..<L).reduce(0.0) { $0 + Double(m[i * L + $1]) * v[$1] } } }
                func timesH(_ v: [Double]) -> [Double] { (0..<L).map { i in (0..<L).reduce(0.0) { $0 + h[i * L + $1] * v[$1] } } }
                let rows = (0..<k).filter { pre.kept[$0 * n + r] }
                if rows.count == k { full += 1 }
                let q = rows.map { a in (0..<L).map { Double(pre.q[(a * n + r) * L + $0]) } }
                func dot(_ u: [Double], _ v: [Double]) -> Double { zip(u, v).reduce(0) { $0 + $1.0 * $1.1 } }
                for (i, qa) in q.enumerated() { for (j, qb) in q.enumerated() { worstOrtho = max(worstOrtho, abs(dot(qa, qb) - (i == j ? 1 : 0))) } }
                // Each explicit vector (CH̃)ʲCg, j < kept count, lies in span Q.
                var v = times(c, g)
                for _ in 0..<rows.count {
                    var rest = v
                    for qa in q { let f = dot(qa, v); for e in 0..<L { rest[e] -= f * qa[e] } }
                    worstSpan = max(worstSpan, dot(rest, rest).squareRoot() / dot(v, v).squareRoot())
                    v = times(c, timesH(v))
                }
                for (i, a) in rows.enumerated() {
                    let scale = max(h.map(abs).max()!, 1e-12), gScale = max(g.map(abs).max()!, 1e-12)
                    worstB = max(worstB, abs(pre.gradient[r * nb + a] - dot(q[i], g)) / gScale)
                    for (j, b) in rows.enumerated() { worstM = max(worstM, abs(pre.projected[r * nb * nb + a * nb + b] - dot(q[i], timesH(q[j]))) / scale) }
                }
            }
            #expect(full > n / 2, "\(widths) smoothed \(smoothed): \(full) of \(n) points kept all \(k) vectors")
            #expect(worstSpan < 1e-3, "\(widths) smoothed \(smoothed): (CH̃)ʲCg outside span Q by \(worstSpan)")
            #expect(worstOrtho < 1e-4, "\(widths) smoothed \(smoothed): Q not orthonormal by \(worstOrtho)")
            #expect(worstM < 1e-3 && worstB < 1e-3, "\(widths) smoothed \(smoothed): M off by \(worstM), b by \(worstB)")
        }
    }

    /// A Krylov linearization that takes fewer vectors than its workspace holds (`vectors`, the
    /// last smoothed iteration's ``GaussNewtonRefinement/lastSmoothedKrylovDimension``) is the
    /// linearization of a workspace of that many: the same kept vectors, basis, M, b and damped
    /// step, the later Krylov vectors dropped for every point, the point's last step (where it is
    /// taken) orthogonalized against the vectors taken only. Plain and preconditioned, Arch2- and
    /// Arch3-shaped, smoothed and on the ReLU decoder with a last step.
    @Test(arguments: [[10, 16, 14], [10, 16, 12, 14]])
    func fewerKrylovVectorsThanTheWorkspaceIsTheSmallerSubspace(_ widths: [Int]) {
        let L = widths[0], n = 12, k = 5, used = 3
        var rng = RandomGenerator(seed: 171)
        let (decoder, x, mu, taus) = krylovProblem(widths, points: n, rng: &rng, dataSeed: 172)
        let lastSteps = rng.normalArray(count: n * L)
        let a = rng.normalArray(count: L * L)
        var c = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in 0..<L { c[i * L + j] = (0..<L).reduce(0) { $0 + a[i * L + $1] * a[j * L + $1] } / Float(L) + (i == j ? 0.5 : 0) } }
        typealias Linearization = (kept: [Bool], q: [[Float]], projected: [[Double]], gradient: [[Double]], delta: [Double])
        /// Per point: the kept vectors (in order, the last step last), their basis rows, M and b over them, and δ.
        func linearize(_ dimension: Int, vectors: Int?, preconditioner: [Float]?, smoothed: Bool) -> Linearization {
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: n, krylovDimension: dimension, smoothedKrylovDimension: dimension,
                                           smoothedKrylovLastStep: true, smoothedKrylovFirstLayer: false, krylovPreconditioner: preconditioner)
            func read(_ ws: GaussNewtonWorkspace, _ kw: KrylovWorkspace) -> Linearization {
                let nb = dimension + 1, taken = vectors ?? dimension
                var kept: [Bool] = [], q: [[Float]] = [], projected: [[Double]] = [], gradient: [[Double]] = []
                for r in 0..<n {
                    var rows: [Int] = (0..<taken).filter { kw.kept[$0 * n + r] }
                    if kw.kept[dimension * n + r] { rows.append(dimension) }
                    for a in 0..<taken { kept.append(kw.kept[a * n + r]) }
                    kept.append(kw.kept[dimension * n + r])
                    for a in rows { q.append(Array(UnsafeBufferPointer(start: kw.basis.pointer + (a * n + r) * L, count: L))) }
                    var m: [Double] = []
                    for a in rows { for b in rows { m.append(kw.projected[r * nb * nb + a * nb + b]) } }
                    projected.append(m)
                    gradient.append(rows.map { kw.projectedGradient[r * nb + $0] })
                    for a in taken..<dimension { #expect(!kw.kept[a * n + r], "\(widths): vector \(a) kept past \(taken)") }
                }
                return (kept, q, projected, gradient, Array(UnsafeBufferPointer(start: ws.deltas, count: n * L)))
            }
            return withKrylovLinearization(gn, x, rows: n, mu: mu, taus: taus, smoothed: smoothed, lastSteps: lastSteps, solve: true,
                                           vectors: vectors, read)
        }
        for preconditioner in [nil, c] {
            for smoothed in [true, false] {
                let small = linearize(used, vectors: nil, preconditioner: preconditioner, smoothed: smoothed)
                let fewer = linearize(k, vectors: used, preconditioner: preconditioner, smoothed: smoothed)
                let label = "\(widths) preconditioned \(preconditioner != nil) smoothed \(smoothed)"
                #expect(fewer.kept == small.kept, "\(label): kept vectors differ")
                #expect(fewer.kept.filter { $0 }.count > n * used / 2, "\(label): too few vectors kept")
                #expect(fewer.q == small.q && fewer.projected == small.projected && fewer.gradient == small.gradient, "\(label): basis, M or b differ")
                let scale = small.delta.map { abs($0) }.max()!
                let worst = zip(fewer.delta, small.delta).map { abs($0 - $1) }.max()! / scale
                #expect(worst < 1e-6, "\(label): δ differs by \(worst)")
                let full = linearize(k, vectors: nil, preconditioner: preconditioner, smoothed: smoothed)
                #expect(full.delta != fewer.delta, "\(label): all \(k) vectors gave the same step")
            }
        }
    }

    /// The last smoothed iteration takes ``GaussNewtonRefinement/lastSmoothedKrylovDimension``
    /// vectors and the others ``GaussNewtonRefinement/smoothedKrylovDimension``: with one smoothed
    /// iteration, K = 5 with 3 in the last is a refinement with K = 3, bit for bit over iterations
    /// on the ReLU decoder after it (exact solves); with two, it is not (the first takes 5). The
    /// default is 2K/3 with a preconditioner, K without; at most K.
    @Test func lastSmoothedIterationTakesItsOwnKrylovDimension() {
        var rng = RandomGenerator(seed: 181)
        let (decoder, x, _, _) = krylovProblem([10, 16, 12, 14], points: 24, rng: &rng, dataSeed: 182)
        let start = (mu: rng.normalArray(count: 24 * 10), logVariance: [Float](repeating: 0, count: 24 * 10))
        func run(_ iterations: Int, k: Int, last: Int?) -> GaussNewtonResult {
            GaussNewtonRefinement(decoder: decoder, chunkRows: 16, trialsPerIteration: 3,
                                  smoothing: GaussNewtonSmoothing(iterations: iterations, scale: 0.4, factor: 0.5), smoothedKrylovDimension: k,
                                  smoothedKrylovLastStep: false, smoothedKrylovFirstLayer: false, lastSmoothedKrylovDimension: last)
                .refine(x, start: start, maxSteps: 4, seed: 1, recordCurve: false)
        }
        let one = run(1, k: 5, last: 3), reference = run(1, k: 3, last: nil)
        #expect(one.mu == reference.mu && one.logVariance == reference.logVariance && one.stepsPerPoint == reference.stepsPerPoint)
        #expect(run(1, k: 5, last: nil).mu != one.mu)
        let two = run(2, k: 5, last: 3)
        #expect(two.mu != run(2, k: 3, last: nil).mu && two.mu != run(2, k: 5, last: nil).mu)
        #expect(GaussNewtonRefinement.defaultLastSmoothedKrylovDimension(6, preconditioned: true) == 4)
        #expect(GaussNewtonRefinement.defaultLastSmoothedKrylovDimension(9, preconditioned: true) == 6)
        #expect(GaussNewtonRefinement.defaultLastSmoothedKrylovDimension(1, preconditioned: true) == 1)
        #expect(GaussNewtonRefinement.defaultLastSmoothedKrylovDimension(16, preconditioned: false) == 16)
        var identity = [Float](repeating: 0, count: 100)
        for j in 0..<10 { identity[j * 10 + j] = 1 }
        #expect(GaussNewtonRefinement(decoder: decoder, smoothedKrylovDimension: 6, krylovPreconditioner: identity).lastSmoothedKrylovDimension == 4)
        #expect(GaussNewtonRefinement(decoder: decoder, smoothedKrylovDimension: 6).lastSmoothedKrylovDimension == 6)
        #expect(GaussNewtonRefinement(decoder: decoder, smoothedKrylovDimension: 6, lastSmoothedKrylovDimension: 9).lastSmoothedKrylovDimension == 6)
    }

    /// ``GaussNewtonRefinement/curvaturePreconditioner(decoder:points:starts:ridge:rows:)``
    /// is (H̄ + ε·tr(H̄)/|z|·I)⁻¹ for H̄ the mean of the dense curvatures at the starts, symmetric;
    /// `rows` takes the first rows only; none for a linear decoder or no rows.
    @Test func curvaturePreconditionerInvertsTheRidgedMeanCurvature() {
        let L = 8, n = 20
        var rng = RandomGenerator(seed: 141)
        let decoder = GaussianDecoder(latent: L, dataWidth: 14, architecture: .arch3, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 142)
        let mu = rng.normalArray(count: n * L)
        let ridge = 0.05
        guard let c = GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x, starts: mu, ridge: ridge) else {
            Issue.record("no preconditioner"); return
        }
        let hessians = GaussNewtonRefinement(decoder: decoder, smoothing: .off).linearization(x, mu: mu).hessian
        var mean = [Double](repeating: 0, count: L * L)
        for r in 0..<n { for e in 0..<(L * L) { mean[e] += Double(hessians[r * L * L + e]) / Double(n) } }
        let t = (0..<L).reduce(0.0) { $0 + mean[$1 * L + $1] } / Double(L)
        for j in 0..<L { mean[j * L + j] += ridge * t }
        var worst = 0.0, asymmetric = 0
        for i in 0..<L {
            for j in 0..<L {
                let v = (0..<L).reduce(0.0) { $0 + Double(c[i * L + $1]) * mean[$1 * L + j] }
                worst = max(worst, abs(v - (i == j ? 1 : 0)))
                if c[i * L + j] != c[j * L + i] { asymmetric += 1 }
            }
        }
        #expect(worst < 1e-4, "C·(H̄ + εtI) differs from I by \(worst)")
        #expect(asymmetric == 0)
        let firstFive = GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x.subset(Array(0..<5)), starts: Array(mu.prefix(5 * L)))
        #expect(GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x, starts: mu, rows: 5) == firstFive)
        #expect(firstFive != GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x, starts: mu))
        let linear = GaussianDecoder(latent: L, dataWidth: 14, architecture: .arch1, objective: .reconstruction, rng: &rng)
        #expect(GaussNewtonRefinement.curvaturePreconditioner(decoder: linear, points: x, starts: mu) == nil)
        #expect(GaussNewtonRefinement.curvaturePreconditioner(decoder: decoder, points: x, starts: mu, rows: 0) == nil)
    }

    /// Where `pesvi` preconditions by default (``GaussNewtonRefinement/defaultKrylovPreconditioned(latent:dataWidth:)``,
    /// 32 ≤ |z| < 64 with d ≥ |z|), the smoothed Krylov dimension it then takes (3|z|/16), the
    /// last step left out, and the basis kept in ℝ^|z|.
    @Test func krylovPreconditionerDefaultsAreTheRule() {
        let cases: [(L: Int, d: Int, on: Bool, k: Int)] = [(16, 64, false, 0), (32, 64, true, 6), (48, 100, true, 9), (32, 16, false, 8),
                                                           (64, 64, false, 12), (128, 300, false, 16), (128, 64, false, 8)]
        for c in cases {
            #expect(GaussNewtonRefinement.defaultKrylovPreconditioned(latent: c.L, dataWidth: c.d) == c.on, "|z| = \(c.L), d = \(c.d)")
            #expect(GaussNewtonRefinement.defaultSmoothedKrylovDimension(latent: c.L, dataWidth: c.d, preconditioned: true) == c.k,
                    "|z| = \(c.L), d = \(c.d)")
        }
        var rng = RandomGenerator(seed: 151)
        let dec = GaussianDecoder(latent: 32, dataWidth: 64, architecture: .arch2, objective: .reconstruction, rng: &rng)
        var identity = [Float](repeating: 0, count: 32 * 32)
        for j in 0..<32 { identity[j * 32 + j] = 1 }
        #expect(GaussNewtonRefinement(decoder: dec, krylovPreconditioner: identity).smoothedKrylovDimension == 6)
        #expect(GaussNewtonRefinement(decoder: dec).smoothedKrylovDimension == 8)
        #expect(GaussNewtonRefinement(decoder: dec, smoothedKrylovDimension: 8, krylovPreconditioner: identity).smoothedKrylovDimension == 8)
        // With a preconditioner the smoothed basis leaves out the last step unless asked, and
        // stays in ℝ^|z| where the first layer's space would otherwise apply (|z| = 72, d < |z|).
        #expect(GaussNewtonRefinement(decoder: dec).smoothedKrylovLastStep)
        #expect(!GaussNewtonRefinement(decoder: dec, krylovPreconditioner: identity).smoothedKrylovLastStep)
        #expect(GaussNewtonRefinement(decoder: dec, smoothedKrylovLastStep: true, krylovPreconditioner: identity).smoothedKrylovLastStep)
        #expect(!GaussNewtonRefinement.defaultSmoothedKrylovLastStep(latent: 32, dataWidth: 64, preconditioned: true))
        let wide = GaussianDecoder(latent: 72, dataWidth: 8, architecture: .arch2, objective: .reconstruction, rng: &rng)
        var identity72 = [Float](repeating: 0, count: 72 * 72)
        for j in 0..<72 { identity72[j * 72 + j] = 1 }
        #expect(GaussNewtonRefinement(decoder: wide).smoothedKrylovInFirstLayer)
        #expect(!GaussNewtonRefinement(decoder: wide, krylovPreconditioner: identity72).smoothedKrylovInFirstLayer)
    }

    /// Where the first-layer basis applies (``GaussNewtonRefinement/firstLayerKrylovApplies(decoder:smoothedKrylovDimension:lastStep:)``):
    /// a ReLU decoder with the reconstruction objective, smoothed Krylov iterations without the
    /// last step, and h₁ < 2|z|; by default on for the digits' |z| = 128 decoders only.
    @Test func firstLayerKrylovAppliesWhereItSavesWork() {
        var rng = RandomGenerator(seed: 115)
        func decoder(_ L: Int, _ d: Int, _ arch: Architecture, _ objective: Objective = .reconstruction) -> GaussianDecoder {
            GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: objective, rng: &rng)
        }
        let z128 = decoder(128, 64, .arch3)
        #expect(GaussNewtonRefinement.firstLayerKrylovApplies(decoder: z128, smoothedKrylovDimension: 8, lastStep: false))
        #expect(!GaussNewtonRefinement.firstLayerKrylovApplies(decoder: z128, smoothedKrylovDimension: 8, lastStep: true))
        #expect(!GaussNewtonRefinement.firstLayerKrylovApplies(decoder: z128, smoothedKrylovDimension: 0, lastStep: false))
        #expect(!GaussNewtonRefinement.firstLayerKrylovApplies(decoder: decoder(64, 12, .arch2), smoothedKrylovDimension: 8, lastStep: false))
        #expect(!GaussNewtonRefinement.firstLayerKrylovApplies(decoder: decoder(128, 64, .arch1), smoothedKrylovDimension: 8, lastStep: false))
        #expect(!GaussNewtonRefinement.firstLayerKrylovApplies(decoder: decoder(128, 64, .arch2, .elbo(likelihood: .fixedVariance(sigma: 0.3))),
                                                               smoothedKrylovDimension: 8, lastStep: false))
        #expect(GaussNewtonRefinement(decoder: z128).smoothedKrylovInFirstLayer)
        #expect(GaussNewtonRefinement(decoder: decoder(128, 64, .arch2)).smoothedKrylovInFirstLayer)
        #expect(!GaussNewtonRefinement(decoder: z128, smoothedKrylovFirstLayer: false).smoothedKrylovInFirstLayer)
        #expect(!GaussNewtonRefinement(decoder: z128, smoothedKrylovLastStep: true).smoothedKrylovInFirstLayer)
        for (L, d) in [(64, 64), (32, 64), (128, 300)] {
            #expect(!GaussNewtonRefinement(decoder: decoder(L, d, .arch3)).smoothedKrylovInFirstLayer, "|z| = \(L), d = \(d)")
        }
    }

    /// A whole refinement with the first-layer basis takes the steps the latent basis takes:
    /// after the smoothed iterations and two on the ReLU decoder, every point's objective at the
    /// mean within 10⁻³ relative of the latent basis's run, and well below the start's.
    @Test func firstLayerKrylovRefinementFollowsTheLatentOne() {
        let L = 10, n = 48
        var rng = RandomGenerator(seed: 117)
        let decoder = GaussianDecoder(network: DenseNetwork(widths: [L, 12, 9, 6], rng: &rng), objective: .reconstruction)
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 118)
        let start = (rng.normalArray(count: n * L), [Float](repeating: -18, count: n * L))
        func run(_ firstLayer: Bool, steps: Int) -> GaussNewtonResult {
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, smoothing: GaussNewtonSmoothing(iterations: 3, scale: 0.4, factor: 0.5),
                                           smoothedKrylovDimension: 4, smoothedKrylovLastStep: false, smoothedKrylovFirstLayer: firstLayer)
            #expect(gn.smoothedKrylovInFirstLayer == firstLayer)
            return gn.refine(x, start: start, maxSteps: steps, seed: 1, recordCurve: false)
        }
        let first = run(true, steps: 5), latent = run(false, steps: 5)
        var worst = 0.0
        for i in 0..<n {
            worst = max(worst, abs(first.objectiveAtMean[i] - latent.objectiveAtMean[i]) / max(abs(latent.objectiveAtMean[i]), 1e-12))
        }
        #expect(worst < 1e-3, "objectives differ by \(worst) relative")
        let startObjective = run(false, steps: 0).objectiveAtMean.reduce(0, +)
        #expect(first.objectiveAtMean.reduce(0, +) < 0.5 * startObjective)
    }

    /// The Krylov products' packed operands (W_Lᵀ, G, F, Fᵀ, and with a preconditioner C the
    /// folded W₁ᵀC: ``KrylovOperands``) are packed afresh by every call: a refinement object
    /// reused after the decoder's first and last layers change gives what a fresh one gives, bit
    /// for bit, and both make progress from the start.
    @Test(arguments: [false, true])
    func krylovOperandsFollowTheDecodersWeights(preconditioned: Bool) {
        let L = 12, d = 6, n = 24
        var rng = RandomGenerator(seed: 101)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 102)
        let start = (rng.normalArray(count: n * L), [Float](repeating: -18, count: n * L))
        let c: [Float]? = preconditioned ? (0..<(L * L)).map { e in e / L == e % L ? 1.5 : ((e / L + e % L) % 5 == 0 ? 0.05 : 0) } : nil
        let symmetric = c.map { v in (0..<L).allSatisfy { i in (0..<L).allSatisfy { v[i * L + $0] == v[$0 * L + i] } } } ?? true
        #expect(symmetric)
        func make() -> GaussNewtonRefinement {
            GaussNewtonRefinement(decoder: decoder, chunkRows: 16, smoothing: GaussNewtonSmoothing(iterations: 3, scale: 0.4, factor: 0.5),
                                  smoothedKrylovDimension: 4, krylovPreconditioner: c)
        }
        let reused = make()
        #expect(reused.krylovThroughRoot && (reused.krylovOperands?.firstBackwardPreconditioned != nil) == preconditioned)
        let before = reused.refine(x, start: start, maxSteps: 3, seed: 1, recordCurve: false)
        let net = decoder.network, w = net.parameters.pointer + net.weightOffsets[net.layerCount - 1]
        for k in 0..<(net.widths[net.layerCount - 1] * d) { w[k] *= 1.3 }
        let w1 = net.parameters.pointer + net.weightOffsets[0]
        for k in 0..<(L * net.widths[1]) { w1[k] *= 0.9 }
        let again = reused.refine(x, start: start, maxSteps: 3, seed: 1, recordCurve: false)
        let fresh = make().refine(x, start: start, maxSteps: 3, seed: 1, recordCurve: false)
        let sameAsFresh = again.mu == fresh.mu && again.objectiveAtMean == fresh.objectiveAtMean, moved = again.mu != before.mu
        #expect(sameAsFresh, "a reused refinement kept stale Krylov operands")
        #expect(moved, "the new weights changed nothing")
        // Progress: the points' objective at the mean fell well below the start's.
        let startObjective = make().refine(x, start: start, maxSteps: 0, seed: 1, recordCurve: false).objectiveAtMean.reduce(0, +)
        let endObjective = fresh.objectiveAtMean.reduce(0, +)
        #expect(endObjective < 0.5 * startObjective, "Krylov refinement made little progress: \(endObjective) from \(startObjective)")
    }

    /// The default ``GaussNewtonRefinement/smoothedKrylovLastStep`` is
    /// ``GaussNewtonRefinement/defaultSmoothedKrylovLastStep(latent:dataWidth:)``: kept unless
    /// d < |z|; an explicit value wins.
    @Test func smoothedKrylovLastStepDefaultIsTheRule() {
        var rng = RandomGenerator(seed: 99)
        for (L, d, expected) in [(16, 64, true), (64, 64, true), (128, 300, true), (128, 64, false), (64, 12, false)] {
            let dec = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
            #expect(GaussNewtonRefinement.defaultSmoothedKrylovLastStep(latent: L, dataWidth: d) == expected)
            #expect(GaussNewtonRefinement(decoder: dec).smoothedKrylovLastStep == expected, "|z| = \(L), d = \(d)")
            #expect(GaussNewtonRefinement(decoder: dec, smoothedKrylovLastStep: !expected).smoothedKrylovLastStep == !expected)
        }
    }

    /// With as many Krylov vectors as latent dimensions the subspace is all of ℝ^|z|, so
    /// without damping one Krylov step is the exact Gauss-Newton step H̃⁻¹JᵀΛr (plain and
    /// smoothed); and where the Krylov solve does not apply (the ELBO) the run is the exact
    /// one bit for bit.
    @Test func fullKrylovStepIsTheExactStep() {
        let L = 4, d = 20, n = 32
        var rng = RandomGenerator(seed: 27)
        // A wide hidden layer, so H̃ has full rank at every point.
        let decoder = GaussianDecoder(network: DenseNetwork(widths: [L, 48, d], rng: &rng), objective: .reconstruction)
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 28)
        let start = (rng.normalArray(count: n * L), [Float](repeating: -18, count: n * L))
        for smoothing in [GaussNewtonSmoothing.off, .standard] {
            func run(_ k: Int) -> GaussNewtonResult {
                GaussNewtonRefinement(decoder: decoder, chunkRows: 16, damping: 0, tolerance: 0, absoluteDamping: 0, minimumDamping: 0,
                                      acceptanceRatio: 0, smoothing: smoothing, krylovDimension: k).refine(x, start: start, maxSteps: 1, seed: 1)
            }
            let exact = run(0), krylov = run(L)
            var worst = 0.0, moved = 0
            for i in 0..<n {
                let row = i * L..<(i + 1) * L
                let scale = row.map { abs(Double(exact.mu[$0]) - Double(start.0[$0])) }.max()!
                if Array(exact.mu[row]) != Array(start.0[row]) { moved += 1 }
                for e in row { worst = max(worst, abs(Double(krylov.mu[e]) - Double(exact.mu[e])) / max(scale, 1e-6)) }
            }
            #expect(moved > n / 2, "few points moved: \(moved)")
            #expect(worst < 1e-3, "\(smoothing): full Krylov step differs from the exact one by \(worst) of the step")
        }
        let elbo = GaussianDecoder(network: decoder.network, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.3)))
        let a = GaussNewtonRefinement(decoder: elbo, chunkRows: 16).refine(x, start: start, maxSteps: 6, seed: 1)
        let kr = GaussNewtonRefinement(decoder: elbo, chunkRows: 16, krylovDimension: 3)
        #expect(!kr.solvesInKrylovSubspace)
        let b = kr.refine(x, start: start, maxSteps: 6, seed: 1)
        #expect(a.mu == b.mu && a.logVariance == b.logVariance && a.stepsPerPoint == b.stepsPerPoint)
    }

    /// The Krylov solve in the smoothed iterations only (``GaussNewtonRefinement/smoothedKrylovDimension``):
    /// through the smoothing every point's μ, σ, rejections and P(μ) are those of the Krylov
    /// solve in every iteration, bit for bit; the iterations on the ReLU decoder then differ
    /// from it (they take the exact solve); with the ELBO, where the Krylov solve does not
    /// apply, and with the smoothing off, the run is the exact solve's, bit for bit.
    @Test(arguments: [Architecture.arch2, .arch3])
    func smoothedKrylovSolvesOnlyTheSmoothedIterations(_ arch: Architecture) {
        let L = 12, d = 20, n = 40, k = 4
        var rng = RandomGenerator(seed: 91)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 92)
        let start = (rng.normalArray(count: n * L, std: 1.5), [Float](repeating: -18, count: n * L))
        let schedule = GaussNewtonSmoothing(iterations: 3, scale: 0.4, factor: 0.5)
        func run(_ dec: GaussianDecoder, krylov: Int, smoothedKrylov: Int, steps: Int, smoothing: GaussNewtonSmoothing = schedule)
            -> GaussNewtonResult {
            GaussNewtonRefinement(decoder: dec, chunkRows: 16, tolerance: 1e-6, smoothing: smoothing, krylovDimension: krylov,
                                  smoothedKrylovDimension: smoothedKrylov)
                .refine(x, start: start, maxSteps: steps, seed: 1, recordCurve: false)
        }
        let hybrid = run(decoder, krylov: 0, smoothedKrylov: k, steps: schedule.iterations)
        let krylov = run(decoder, krylov: k, smoothedKrylov: 0, steps: schedule.iterations)
        let exact = run(decoder, krylov: 0, smoothedKrylov: 0, steps: schedule.iterations)
        let likeKrylov = hybrid.mu == krylov.mu && hybrid.logVariance == krylov.logVariance && hybrid.rejectedSteps == krylov.rejectedSteps
            && hybrid.objectiveAtMean == krylov.objectiveAtMean
        #expect(likeKrylov, "\(arch): the smoothed iterations are not the Krylov solve's")
        let likeExact = hybrid.mu == exact.mu
        #expect(!likeExact, "\(arch): the smoothed iterations took the exact solve")
        let later = schedule.iterations + 2
        let hybridLater = run(decoder, krylov: 0, smoothedKrylov: k, steps: later)
        let krylovLater = run(decoder, krylov: k, smoothedKrylov: 0, steps: later)
        let laterLikeKrylov = hybridLater.mu == krylovLater.mu
        #expect(!laterLikeKrylov, "\(arch): the ReLU iterations took the Krylov solve")
        for i in 0..<n { #expect(hybridLater.objectiveAtMean[i] <= hybrid.objectiveAtMean[i], "\(arch) point \(i): the ReLU iterations raised P") }
        // Where it does not apply: the ELBO, and no smoothing.
        var erng = RandomGenerator(seed: 93)
        let elbo = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.3)),
                                   rng: &erng)
        let e1 = run(elbo, krylov: 0, smoothedKrylov: k, steps: later), e0 = run(elbo, krylov: 0, smoothedKrylov: 0, steps: later)
        let elboSame = e1.mu == e0.mu && e1.logVariance == e0.logVariance && e1.objectiveAtMean == e0.objectiveAtMean
        #expect(elboSame, "\(arch): the ELBO run changed")
        let o1 = run(decoder, krylov: 0, smoothedKrylov: k, steps: 4, smoothing: .off)
        let o0 = run(decoder, krylov: 0, smoothedKrylov: 0, steps: 4, smoothing: .off)
        let offSame = o1.mu == o0.mu && o1.logVariance == o0.logVariance && o1.objectiveAtMean == o0.objectiveAtMean
        #expect(offSame, "\(arch): the run without smoothing changed")
    }

    /// The initializer's default smoothed Krylov dimension is `pesvi`'s rule
    /// (``GaussNewtonRefinement/defaultSmoothedKrylovDimension(latent:dataWidth:)``): exact below
    /// |z| = 32, 8 where d < |z|, else min(|z|/4, 16); none with a Krylov solve throughout or
    /// without smoothing; an explicit value wins.
    @Test func initializerDefaultSmoothedKrylovDimensionIsTheRule() {
        var rng = RandomGenerator(seed: 95)
        func decoder(_ L: Int, _ d: Int) -> GaussianDecoder {
            GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
        }
        let cases: [(L: Int, d: Int, k: Int)] = [(16, 64, 0), (32, 64, 8), (48, 100, 12), (64, 64, 16), (64, 12, 8), (128, 300, 16), (128, 64, 8)]
        for c in cases {
            let dec = decoder(c.L, c.d)
            #expect(GaussNewtonRefinement(decoder: dec).smoothedKrylovDimension == c.k, "|z| = \(c.L), d = \(c.d)")
            #expect(GaussNewtonRefinement.defaultSmoothedKrylovDimension(latent: c.L, dataWidth: c.d) == c.k)
        }
        let dec = decoder(64, 64)
        #expect(GaussNewtonRefinement(decoder: dec, krylovDimension: 4).smoothedKrylovDimension == 0)
        #expect(GaussNewtonRefinement(decoder: dec, smoothing: .off).smoothedKrylovDimension == 0)
        #expect(GaussNewtonRefinement(decoder: dec, smoothedKrylovDimension: 5).smoothedKrylovDimension == 5)
        #expect(GaussNewtonRefinement(decoder: dec, smoothedKrylovDimension: 0).smoothedKrylovDimension == 0)
    }

    /// With no absolute damping and a tiny λ on a nonlinear decoder from far starts, full GN
    /// steps often overshoot; the guard rejects them, so no point's objective ever rises and
    /// the curve never goes up.
    @Test(arguments: [1, 3])
    func divergenceGuardNeverLetsTheObjectiveRise(trials: Int) {
        let L = 4, d = 20, n = 48
        var rng = RandomGenerator(seed: 31)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.05, seed: 32)
        let mu0 = rng.normalArray(count: n * L, std: 3)
        let lv0 = [Float](repeating: -18, count: n * L)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, damping: 1e-9, tolerance: 0, absoluteDamping: 0, minimumDamping: 0,
                                       trialsPerIteration: trials, smoothing: .off)
        let T = 12
        var previousResult = gn.refine(x, start: (mu0, lv0), maxSteps: 0, seed: 5)
        var rejections = 0, rises = 0
        for t in 1...T {
            let r = gn.refine(x, start: (mu0, lv0), maxSteps: t, seed: 5)
            // The guard's own measurement: exactly non-increasing.
            for i in 0..<n where !(r.objectiveAtMean[i] <= previousResult.objectiveAtMean[i]) { rises += 1 }
            // An independent evaluation (float SIMD sums) agrees with it to rounding.
            let independent = objectiveAtMean(decoder, x, mu: r.mu, logVariance: r.logVariance)
            for i in 0..<n {
                #expect(abs(independent[i] - r.objectiveAtMean[i]) <= 1e-6 * abs(independent[i]))
                let stepped = r.stepsPerPoint[i] > previousResult.stepsPerPoint[i]
                let moved = (0..<L).contains { r.mu[i * L + $0] != previousResult.mu[i * L + $0] }
                if stepped && !moved { rejections += 1 }
            }
            // Runs are prefixes of one another: the first t−1 curve values agree exactly.
            #expect(Array(r.curve.prefix(previousResult.curve.count)) == previousResult.curve)
            previousResult = r
        }
        #expect(rises == 0, "\(rises) point-iterations raised the objective")
        if trials == 1 { #expect(rejections > 0, "the guard was never exercised") }
        if trials == 1 { #expect(previousResult.rejectedSteps > 0 && previousResult.rejectedSteps <= rejections) }
        else { #expect(previousResult.rejectedSteps > 0) }
        let curve = previousResult.curve
        for t in 1..<curve.count { #expect(curve[t] <= curve[t - 1], "curve rose at \(t): \(curve[t - 1]) → \(curve[t])") }
        #expect(curve.last! < 0.5 * curve[0], "no progress: \(curve)")
    }

    /// A point that finished is left bit-for-bit untouched by further iterations, and its
    /// step count stops.
    @Test func finishedPointsAreLeftUntouched() {
        let L = 4, d = 16, n = 64
        var rng = RandomGenerator(seed: 41)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.2)), rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.1, seed: 42)
        let mu0 = rng.normalArray(count: n * L, std: 1)
        let lv0 = [Float](repeating: 0, count: n * L)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 1e-3)
        let long = gn.refine(x, start: (mu0, lv0), maxSteps: 200, seed: 3)
        let longer = gn.refine(x, start: (mu0, lv0), maxSteps: 400, seed: 3)
        #expect(long.iterations < 200, "every point should finish well within 200 iterations, ran \(long.iterations)")
        #expect(long.mu == longer.mu && long.logVariance == longer.logVariance && long.stepsPerPoint == longer.stepsPerPoint)
        #expect(long.maxSteps == long.iterations && long.meanSteps < Double(long.maxSteps))
        #expect(long.curve.count == long.iterations + 1)
        // The point that finished first: after its last step, nothing about it changes.
        let first = (0..<n).min { long.stepsPerPoint[$0] < long.stepsPerPoint[$1] }!
        let s = long.stepsPerPoint[first]
        #expect(s < long.iterations)
        let atFinish = gn.refine(x, start: (mu0, lv0), maxSteps: s, seed: 3)
        let row = first * L..<(first + 1) * L
        #expect(Array(atFinish.mu[row]) == Array(long.mu[row]) && Array(atFinish.logVariance[row]) == Array(long.logVariance[row]))
        #expect(atFinish.stepsPerPoint[first] == s)
        let mean = Double(long.stepsPerPoint.reduce(0, +)) / Double(n)
        #expect(abs(long.meanSteps - mean) < 1e-12 && long.maxSteps == long.stepsPerPoint.max()!)
    }

    /// ELBO with a linear decoder: log σⱼ² = log(β / (Σ_c W_jc² Λ_c + β)) — ‖Wⱼ‖²/σₓ² for a fixed
    /// σₓ — and one undamped step lands on the MAP μ = (WΛWᵀ + βI)⁻¹ WΛ(x − b).
    @Test(arguments: [true, false])
    func elboClosedFormVarianceForLinearDecoder(exact: Bool) {
        let L = 4, d = 10, n = 12
        var rng = RandomGenerator(seed: 51)
        let net = DenseNetwork(widths: [L, d], rng: &rng)
        let learned = rng.uniformArray(count: d, low: -2, high: 1)
        let beta: Float = 0.7, sigmaX: Float = 0.5
        for (likelihood, lv) in [(Likelihood.fixedVariance(sigma: sigmaX), nil as [Float]?), (.learnedVariance, learned)] {
            let decoder = GaussianDecoder(network: net, objective: .elbo(beta: beta, likelihood: likelihood), logNoiseVariance: lv)
            let lambda: [Double] = lv.map { $0.map { exp(-Double($0)) } } ?? [Double](repeating: 1 / Double(sigmaX * sigmaX), count: d)
            let x = dataFrom(decoder, n: n, noise: 0.3, seed: 52)
            let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 5, damping: 1e-12, tolerance: 0, absoluteDamping: 0, minimumDamping: 0,
                                           exactLinearStep: exact)
            let mu0 = rng.normalArray(count: n * L, std: 2), lv0 = rng.uniformArray(count: n * L, low: -3, high: 1)
            let r = gn.refine(x, start: (mu0, lv0), maxSteps: 1, seed: 1)
            let W = net.parameters.array.map(Double.init)
            var A = [Double](repeating: 0, count: L * L)
            for a in 0..<L { for b in 0..<L { for c in 0..<d { A[a * L + b] += W[a * d + c] * lambda[c] * W[b * d + c] } } }
            for j in 0..<L {
                let expected = log(Double(beta) / (A[j * L + j] + Double(beta)))
                for i in 0..<n { #expect(abs(Double(r.logVariance[i * L + j]) - expected) < 1e-5, "\(likelihood) j=\(j): \(r.logVariance[i * L + j]) vs \(expected)") }
            }
            for a in 0..<L { A[a * L + a] += Double(beta) }
            for i in 0..<n {
                var rhs = [Double](repeating: 0, count: L)
                for a in 0..<L { for c in 0..<d { rhs[a] += W[a * d + c] * lambda[c] * (Double(x.row(i)[c]) - W[L * d + c]) } }
                let map = solveLinearSystem(A, rhs)
                for j in 0..<L { #expect(abs(Double(r.mu[i * L + j]) - map[j]) < 1e-4 * max(1, abs(map[j]))) }
            }
        }
    }

    /// The exact linear step does not read the start: starts far apart, and one full of NaN,
    /// give bit-identical posteriors; one thread or two, too (over several 256-row chunks). It
    /// is the optimum the damped iterations converge to, never above it, and for the ELBO its
    /// σ is that path's closed form.
    @Test func exactLinearStepIgnoresTheStartAndIsTheIterationsLimit() {
        let L = 6, d = 17, n = 600
        var rng = RandomGenerator(seed: 301)
        let objectives: [Objective] = [.reconstruction, .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.4)), .elbo(beta: 0.5, likelihood: .learnedVariance)]
        for objective in objectives {
            let net = DenseNetwork(widths: [L, d], rng: &rng)
            let lv = objective.likelihood == .learnedVariance ? rng.uniformArray(count: d, low: -2, high: 0.5) : nil
            let decoder = GaussianDecoder(network: net, objective: objective, logNoiseVariance: lv)
            let x = dataFrom(decoder, n: n, noise: 0.3, seed: 302)
            let near = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
            let far = (rng.normalArray(count: n * L, std: 300), rng.uniformArray(count: n * L, low: -25, high: 3))
            let nan = ([Float](repeating: .nan, count: n * L), [Float](repeating: .nan, count: n * L))
            let one = GaussNewtonRefinement(decoder: decoder, threads: 1, chunkRows: 16)
            let two = GaussNewtonRefinement(decoder: decoder, threads: 2, chunkRows: 16)
            #expect(one.takesExactLinearStep)
            let a = one.refine(x, start: near, maxSteps: 50, seed: 1)
            #expect(!a.usedStart && a.iterations == 1 && a.stepsPerPoint.allSatisfy { $0 == 1 } && a.rejectedSteps == 0)
            #expect(a.meanStepsAfter == [1] && a.secondsAfter == [a.seconds] && a.curve.count == 2)
            for (r, what) in [(one.refine(x, start: far, maxSteps: 1, seed: 1), "far start"),
                              (one.refine(x, start: nan, maxSteps: 3, seed: 1, recordCurve: false), "NaN start"),
                              (two.refine(x, start: far, maxSteps: 5, seed: 1), "two threads")] {
                #expect(r.mu == a.mu && r.logVariance == a.logVariance && r.objectiveAtMean == a.objectiveAtMean, "\(objective): \(what)")
            }
            // The damped iterations from the near start, run until every point stops.
            let iterative = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 0, exactLinearStep: false)
                .refine(x, start: near, maxSteps: 60, seed: 1)
            #expect(iterative.iterations > 1)
            var worst = 0.0
            for i in 0..<n {
                #expect(a.objectiveAtMean[i] <= iterative.objectiveAtMean[i] + 1e-6 * abs(iterative.objectiveAtMean[i]),
                        "\(objective) point \(i): exact \(a.objectiveAtMean[i]), iterated \(iterative.objectiveAtMean[i])")
                for j in 0..<L { worst = max(worst, Double(abs(a.mu[i * L + j] - iterative.mu[i * L + j])) / max(1, Double(abs(iterative.mu[i * L + j])))) }
            }
            #expect(worst < 1e-4, "\(objective): exact vs iterated μ differ by \(worst)")
            if case .elbo = objective.kind { #expect(zip(a.logVariance, iterative.logVariance).allSatisfy { abs($0 - $1) < 1e-5 }) }
            else { #expect(a.logVariance.allSatisfy { $0 == one.logVarianceFloor }) }
        }
    }

    /// Where H is singular (reconstruction with |z| > d: many μ fit x equally well) the exact
    /// step needs the start: one step to the minimum-norm fit from each point's μ₀,
    /// μ = μ₀ + r₀(WᵀW)⁻¹Wᵀ with r₀ = x − b − μ₀W (W of full column rank here), against that
    /// formula in Double (the ridge, 10⁻⁵ of H's largest diagonal entry, moves it by about 10⁻⁵
    /// relative); its fit is exact where LM's five iterations are not. Without the exact step
    /// the iterative path runs, as before.
    @Test func exactLinearStepFromTheStartWhenTheMinimizerIsNotUnique() {
        let L = 9, d = 6, n = 30
        var rng = RandomGenerator(seed: 311)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 312)
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16)
        #expect(!gn.takesExactLinearStep, "the step from the start must not be taken without the start")
        let r = gn.refine(x, start: start, maxSteps: 5, seed: 1)
        #expect(r.exactStep && r.usedStart && r.iterations == 1 && r.stepsPerPoint == [Int](repeating: 1, count: n))
        #expect(r.logVariance.allSatisfy { $0 == gn.logVarianceFloor })
        // The reference in Double: K = (WᵀW)⁻¹Wᵀ (d × |z|).
        let net = decoder.network
        let w = (0..<(L * d)).map { Double(net.parameters[net.weightOffsets[0] + $0]) }  // |z| × d
        let b = (0..<d).map { Double(net.parameters[net.biasOffsets[0] + $0]) }
        let gramInverse = inverseOfPositiveDefinite((0..<(d * d)).map { e in
            (0..<L).reduce(0.0) { $0 + w[$1 * d + e / d] * w[$1 * d + e % d] }
        }, n: d)  // (WᵀW)⁻¹
        var worst = 0.0
        for i in 0..<n {
            let mu0 = (0..<L).map { Double(start.0[i * L + $0]) }
            let r0 = (0..<d).map { q in Double(x.values[i * d + q]) - b[q] - (0..<L).reduce(0.0) { $0 + mu0[$1] * w[$1 * d + q] } }
            // δ = r₀ (WᵀW)⁻¹ Wᵀ
            let s = (0..<d).map { j in (0..<d).reduce(0.0) { $0 + r0[$1] * gramInverse[$1 * d + j] } }
            for k in 0..<L {
                let expected = mu0[k] + (0..<d).reduce(0.0) { $0 + s[$1] * w[k * d + $1] }
                worst = max(worst, abs(Double(r.mu[i * L + k]) - expected) / max(1, abs(expected)))
            }
        }
        #expect(worst < 2e-4, "minimum-norm step from the start: worst relative difference \(worst)")
        let startObjective = objectiveAtMean(decoder, x, mu: start.0, logVariance: start.1).reduce(0, +)
        let exactObjective = r.objectiveAtMean.reduce(0, +)
        let iterative = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, exactLinearStep: false).refine(x, start: start, maxSteps: 5, seed: 1)
        #expect(exactObjective < 1e-6 * startObjective, "exact fit: \(exactObjective) from \(startObjective)")
        // No worse than five LM iterations, up to Float rounding (both fit to ~10⁻¹³).
        #expect(exactObjective <= iterative.objectiveAtMean.reduce(0, +) + 1e-9 * startObjective)
        #expect(!iterative.exactStep && iterative.usedStart)
        // With β > 0 the same shape has a unique minimizer, and the exact step is taken without a start.
        let elbo = GaussianDecoder(network: decoder.network, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5)), logNoiseVariance: nil)
        #expect(GaussNewtonRefinement(decoder: elbo).takesExactLinearStep)
    }

    /// A singular H with |z| < d (two latent coordinates with the same row of W, as a collapsed
    /// or duplicated unit leaves): the exact step from the start reaches the least-squares
    /// minimum, computed here on the reduced decoder without the duplicate (W' of full row
    /// rank, normal equations in Double), and leaves the start's part along the null direction
    /// e_i − e_j as it was.
    @Test func exactLinearStepFromTheStartWithARankDeficientW() {
        let L = 5, d = 9, n = 24
        var rng = RandomGenerator(seed: 411)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let net = decoder.network, w0 = net.weightOffsets[0]
        for q in 0..<d { net.parameters[w0 + 4 * d + q] = net.parameters[w0 + 1 * d + q] }  // row 4 = row 1
        let x = dataFrom(decoder, n: n, noise: 0.3, seed: 412)
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16)
        #expect(!gn.takesExactLinearStep)
        let r = gn.refine(x, start: start, maxSteps: 5, seed: 1)
        #expect(r.exactStep && r.usedStart && r.iterations == 1)
        // The reduced problem: rows 0…3 of W (row 4 duplicates row 1), y = x − b.
        let rows = 4
        let w = (0..<(rows * d)).map { Double(net.parameters[w0 + $0]) }
        let b = (0..<d).map { Double(net.parameters[net.biasOffsets[0] + $0]) }
        let gramInverse = inverseOfPositiveDefinite((0..<(rows * rows)).map { e in
            (0..<d).reduce(0.0) { $0 + w[(e / rows) * d + $1] * w[(e % rows) * d + $1] }
        }, n: rows)  // (W'W'ᵀ)⁻¹
        var worstObjective = 0.0, worstNull = 0.0
        for i in 0..<n {
            let y = (0..<d).map { Double(x.values[i * d + $0]) - b[$0] }
            // Least squares over the reduced rows: c = y W'ᵀ (W'W'ᵀ)⁻¹, residual y − c W'.
            let yw = (0..<rows).map { k in (0..<d).reduce(0.0) { $0 + y[$1] * w[k * d + $1] } }
            let c = (0..<rows).map { j in (0..<rows).reduce(0.0) { $0 + yw[$1] * gramInverse[$1 * rows + j] } }
            let best = (0..<d).reduce(0.0) { acc, q in
                let fit = (0..<rows).reduce(0.0) { $0 + c[$1] * w[$1 * d + q] }
                return acc + (y[q] - fit) * (y[q] - fit)
            } / Double(d)
            worstObjective = max(worstObjective, abs(r.objectiveAtMean[i] - best) / max(best, 1e-12))
            // Along the null direction e₁ − e₄ the step leaves μ₀'s component alone.
            let before = Double(start.0[i * L + 1]) - Double(start.0[i * L + 4])
            let after = Double(r.mu[i * L + 1]) - Double(r.mu[i * L + 4])
            worstNull = max(worstNull, abs(after - before) / max(1, abs(before)))
        }
        #expect(worstObjective < 1e-3, "rank-deficient W: objective vs least squares, worst relative gap \(worstObjective)")
        #expect(worstNull < 1e-3, "rank-deficient W: the null direction moved by \(worstNull)")
    }

    /// Reconstruction has no σ optimum: log σ² drops to the floor, and a start below the floor is kept.
    @Test func reconstructionVarianceGoesToTheFloor() {
        var rng = RandomGenerator(seed: 61)
        let decoder = GaussianDecoder(latent: 3, dataWidth: 9, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let x = dataFrom(decoder, n: 4, noise: 0.1, seed: 62)
        let lv0: [Float] = [0, -5, -30, 2, 0, 0, -18, -19, 1, 0, 0, 0]
        let r = GaussNewtonRefinement(decoder: decoder, logVarianceFloor: -12).refine(x, start: (rng.normalArray(count: 12), lv0), maxSteps: 1, seed: 1)
        // Every point's first step from a random start lowers the error, so it is accepted.
        #expect(r.logVariance == lv0.map { min($0, -12) })
    }

    /// A linear decoder shares one factored system per λ across points (and iterations). Its
    /// refinement must match the same affine map written as a ReLU network whose hidden units
    /// are always on (hidden = z + c, then W, b − c·1ᵀW), which takes the per-point path; and a
    /// refinement object reused after the weights change must not keep a stale factor.
    @Test func linearSharedFactorMatchesPerPointPath() {
        let L = 4, d = 10, n = 60, c: Float = 8
        var rng = RandomGenerator(seed: 81)
        let objective = Objective.elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5))
        let linear = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: objective, rng: &rng)
        let x = dataFrom(linear, n: n, noise: 0.3, seed: 82)
        let w = Array(linear.network.parameters.array[linear.network.weightOffsets[0]..<(linear.network.weightOffsets[0] + L * d)])
        let b = Array(linear.network.parameters.array[linear.network.biasOffsets[0]..<(linear.network.biasOffsets[0] + d)])
        let relu = GaussianDecoder(latent: L, dataWidth: d, architecture: .custom(hidden: [L]), objective: objective, rng: &rng)
        let net = relu.network, p = net.parameters.pointer
        for i in 0..<L { for j in 0..<L { p[net.weightOffsets[0] + i * L + j] = i == j ? 1 : 0 }; p[net.biasOffsets[0] + i] = c }
        for k in 0..<(L * d) { p[net.weightOffsets[1] + k] = w[k] }
        for o in 0..<d {
            var s: Float = 0
            for i in 0..<L { s += w[i * d + o] }
            let shifted: Float = b[o] - c * s
            p[net.biasOffsets[1] + o] = shifted
        }
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        // Damping 3 makes every step partial, so several factorizations (λ = 3, 1, 1/3, …) are used.
        let shared = GaussNewtonRefinement(decoder: linear, chunkRows: 16, damping: 3, tolerance: 0, exactLinearStep: false)
        // No smoothing: the linear decoder has none, and a held λ would make the paths differ.
        let perPoint = GaussNewtonRefinement(decoder: relu, chunkRows: 16, damping: 3, tolerance: 0, smoothing: .off)
        let a = shared.refine(x, start: start, maxSteps: 6, seed: 1)
        let r = perPoint.refine(x, start: start, maxSteps: 6, seed: 1)
        #expect(a.stepsPerPoint == r.stepsPerPoint && a.rejectedSteps == r.rejectedSteps)
        var worst: Float = 0
        for k in 0..<(n * L) {
            worst = max(worst, abs(a.mu[k] - r.mu[k]) / max(abs(r.mu[k]), 1))
            worst = max(worst, abs(a.logVariance[k] - r.logVariance[k]) / max(abs(r.logVariance[k]), 1))
        }
        #expect(worst < 1e-4, "linear shared factor vs per-point path: worst relative difference \(worst)")
        #expect(a.objectiveAtMean.reduce(0, +) < r.objectiveAtMean.reduce(0, +) * 1.0001)

        // New weights: the reused object must factor the new G, as a fresh one does. (One
        // iteration first, so the factor it holds is for λ = 3, the next call's first λ.)
        _ = shared.refine(x, start: start, maxSteps: 1, seed: 1)
        let q = linear.network.parameters.pointer
        for k in 0..<(L * d) { q[linear.network.weightOffsets[0] + k] *= 1.7 }
        let reused = shared.refine(x, start: start, maxSteps: 6, seed: 1)
        let fresh = GaussNewtonRefinement(decoder: linear, chunkRows: 16, damping: 3, tolerance: 0, exactLinearStep: false)
            .refine(x, start: start, maxSteps: 6, seed: 1)
        #expect(reused.mu == fresh.mu && reused.logVariance == fresh.logVariance)
        #expect(reused.mu != a.mu)
    }

    /// The linear decoder's shared solve groups the pending points by λ: with λ differing
    /// between points (as after a rejection), every point's δ equals its own damped system
    /// factored and solved alone, over more λ than the factor cache holds (4 slots).
    @Test func sharedSolveGroupsPointsByDamping() {
        let L = 5, d = 9, m = 24
        var rng = RandomGenerator(seed: 91)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1,
                                      objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.7)), rng: &rng)
        let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: m)
        gn.prepareShared()
        let ws = gn.workspaces[0]
        let st = PointState(count: m, damping: 0)
        defer { st.deallocate() }
        let lambdas = [3.0, 1, 1e-3, 0.25, 12, 1, 3, 40]
        let g = rng.normalArray(count: m * L), zs = rng.normalArray(count: m * L)
        // Pending points are every other chunk row, in reverse, so pending q ≠ chunk row k ≠ point i.
        var pendingCount = 0
        for k in stride(from: m - 1, through: 0, by: -2) { ws.pending[pendingCount] = k; pendingCount += 1 }
        for k in 0..<m {
            ws.index[k] = m - 1 - k
            st.damping[m - 1 - k] = lambdas[k % lambdas.count]
            for r in 0..<L { ws.gradient.pointer[k * L + r] = g[k * L + r]; ws.z.pointer[k * L + r] = zs[k * L + r] }
        }
        let beta = 1.0
        gn.solveShared(gn.gram.pointer, gradient: ws.gradient.pointer, pendingCount: pendingCount, beta: beta, state: st, workspace: ws)
        var worst = 0.0
        var sys = [Double](repeating: 0, count: L * L)
        for q in 0..<pendingCount {
            let k = ws.pending[q]
            var b = (0..<L).map { Double(g[k * L + $0]) - beta * Double(zs[k * L + $0]) }
            sys.withUnsafeMutableBufferPointer { sp in
                gn.dampedSystem(gn.gram.pointer, damping: st.damping[ws.index[k]], beta: beta, into: sp.baseAddress!, n: L)
                b.withUnsafeMutableBufferPointer { GaussNewtonRefinement.choleskySubstitute(sp.baseAddress!, $0.baseAddress!, n: L) }
            }
            for r in 0..<L { worst = max(worst, abs(ws.deltas[q * L + r] - b[r]) / max(1, abs(b[r]))) }
        }
        #expect(worst < 1e-12, "grouped shared solve vs one system per point: \(worst)")
        #expect(pendingCount == m / 2 && Set(lambdas).count > ws.factors.count)
    }

    /// Same inputs, same outputs; one thread or two, bit for bit; with or without the recorded curve.
    @Test func deterministicAcrossRunsAndThreads() {
        let L = 5, d = 14, n = 150
        var rng = RandomGenerator(seed: 71)
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3, objective: .elbo(beta: 1, likelihood: .learnedVariance), rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 72)
        let start = (rng.normalArray(count: n * L), [Float](repeating: 0, count: n * L))
        for trials in [1, 3] {
            let one = GaussNewtonRefinement(decoder: decoder, threads: 1, chunkRows: 16, trialsPerIteration: trials)
            let two = GaussNewtonRefinement(decoder: decoder, threads: 2, chunkRows: 16, trialsPerIteration: trials)
            let a = one.refine(x, start: start, maxSteps: 15, seed: 9)
            let b = one.refine(x, start: start, maxSteps: 15, seed: 9)
            let c = two.refine(x, start: start, maxSteps: 15, seed: 9)
            for r in [b, c] {
                #expect(r.mu == a.mu && r.logVariance == a.logVariance && r.curve == a.curve && r.stepsPerPoint == a.stepsPerPoint
                        && r.rejectedSteps == a.rejectedSteps && r.objectiveAtMean == a.objectiveAtMean)
            }
            #expect(a.curve.last! < a.curve[0])
            // Without the recorded curve: the same refinement, and no curve.
            let quiet = one.refine(x, start: start, maxSteps: 15, seed: 9, recordCurve: false)
            #expect(quiet.curve.isEmpty && quiet.mu == a.mu && quiet.logVariance == a.logVariance
                    && quiet.stepsPerPoint == a.stepsPerPoint && quiet.objectiveAtMean == a.objectiveAtMean
                    && quiet.iterations == a.iterations && quiet.meanStepsAfter == a.meanStepsAfter)
        }
        // The Krylov solve (reconstruction objective) too: its batched products are per chunk.
        let reconstruction = GaussianDecoder(network: decoder.network, objective: .reconstruction)
        let one = GaussNewtonRefinement(decoder: reconstruction, threads: 1, chunkRows: 16, trialsPerIteration: 3, krylovDimension: 3)
        let two = GaussNewtonRefinement(decoder: reconstruction, threads: 2, chunkRows: 16, trialsPerIteration: 3, krylovDimension: 3)
        #expect(one.solvesInKrylovSubspace)
        let a = one.refine(x, start: start, maxSteps: 12, seed: 9), c = two.refine(x, start: start, maxSteps: 12, seed: 9)
        #expect(c.mu == a.mu && c.stepsPerPoint == a.stepsPerPoint && c.objectiveAtMean == a.objectiveAtMean && a.curve.last! < a.curve[0])
        // The data-space solve (d < |z|) with C from the right, whose products put a chunk's
        // points side by side: the same on two threads and with another chunk size.
        let wide = GaussianDecoder(latent: 14, dataWidth: 5, architecture: .arch3, objective: .elbo(beta: 1, likelihood: .learnedVariance), rng: &rng)
        let xw = dataFrom(wide, n: n, noise: 0.2, seed: 73)
        let sw = (rng.normalArray(count: n * 14), [Float](repeating: 0, count: n * 14))
        let w1 = GaussNewtonRefinement(decoder: wide, threads: 1, chunkRows: 16, trialsPerIteration: 3)
        let w2 = GaussNewtonRefinement(decoder: wide, threads: 2, chunkRows: 11, trialsPerIteration: 3)
        #expect(w1.solvesInDataSpace && w1.formsFactorFromTheRight)
        let p = w1.refine(xw, start: sw, maxSteps: 12, seed: 9), q = w2.refine(xw, start: sw, maxSteps: 12, seed: 9)
        #expect(q.mu == p.mu && q.stepsPerPoint == p.stepsPerPoint && q.objectiveAtMean == p.objectiveAtMean && p.curve.last! < p.curve[0])
    }

    /// A point's refinement does not depend on which points share its chunk: chunks of 5, 16 and
    /// 64 rows (and so every batched product's row count) give the same μ, σ, steps, rejections
    /// and P(μ) bit for bit, for both ReLU architectures and objectives, with the smoothing, and
    /// with the Krylov solve. This is what lets the iterations split the points that are still
    /// going into chunks afresh each time (``GaussNewtonRefinement/refine``).
    @Test(arguments: [Architecture.arch2, .arch3])
    func chunkMembershipChangesNothing(_ arch: Architecture) {
        var rng = RandomGenerator(seed: 171)
        for (L, d) in [(5, 17), (24, 40)] {
            for objective in [Objective.reconstruction, .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.3))] {
                let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: objective, rng: &rng)
                let n = 83
                let x = dataFrom(decoder, n: n, noise: 0.1, seed: 172)
                let start = (rng.normalArray(count: n * L, std: 1.5), [Float](repeating: -1, count: n * L))
                for (krylov, smoothedKrylov) in objective == .reconstruction ? [(0, 0), (3, 0), (0, 3)] : [(0, 0)] {
                    let runs = [5, 16, 64].map {
                        GaussNewtonRefinement(decoder: decoder, threads: 2, chunkRows: $0, tolerance: 1e-3, trialsPerIteration: 3,
                                              krylovDimension: krylov, smoothedKrylovDimension: smoothedKrylov)
                            .refine(x, start: start, maxSteps: 12, seed: 3, recordCurve: false)
                    }
                    let a = runs[0]
                    #expect(a.iterations >= 5 && Set(a.stepsPerPoint).count >= 3,
                            "\(arch) L \(L) \(objective) Krylov \(krylov)/\(smoothedKrylov): \(a.iterations) iterations, steps \(Set(a.stepsPerPoint))")
                    for (r, rows) in zip(runs.dropFirst(), [16, 64]) {
                        #expect(r.mu == a.mu && r.logVariance == a.logVariance && r.stepsPerPoint == a.stepsPerPoint
                                && r.rejectedSteps == a.rejectedSteps && r.objectiveAtMean == a.objectiveAtMean,
                                "\(arch) L \(L) \(objective) Krylov \(krylov)/\(smoothedKrylov): chunks of \(rows) rows differ from chunks of 5")
                    }
                }
            }
        }
    }

    /// Reusing each point's forward pass at μ (the accepted trial's, or the last linearization's
    /// after a rejection) changes nothing: the same μ, σ, curve, steps and rejections bit for bit
    /// as recomputing it every iteration, for linear and ReLU decoders, both objectives, one and
    /// three trials per iteration, over enough iterations that points finish at different times.
    @Test(arguments: [Architecture.arch1, .arch2, .arch3])
    func forwardPassReuseChangesNothing(_ arch: Architecture) {
        let L = 6, d = 20, n = 90
        var rng = RandomGenerator(seed: 81)
        let objectives: [Objective] = [.reconstruction, .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.3))]
        for objective in objectives {
            let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: arch, objective: objective, rng: &rng)
            let x = dataFrom(decoder, n: n, noise: 0.1, seed: 82)
            let start = (rng.normalArray(count: n * L, std: 2), [Float](repeating: -1, count: n * L))
            for trials in [1, 3] {
                let reuse = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, trialsPerIteration: trials, exactLinearStep: false)
                let fresh = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, trialsPerIteration: trials, exactLinearStep: false)
                fresh.reuseForwardPass = false
                let a = reuse.refine(x, start: start, maxSteps: 12, seed: 3)
                let b = fresh.refine(x, start: start, maxSteps: 12, seed: 3)
                #expect(a.mu == b.mu && a.logVariance == b.logVariance, "\(arch) \(objective) trials \(trials): posteriors differ")
                #expect(a.curve == b.curve && a.objectiveAtMean == b.objectiveAtMean && a.stepsPerPoint == b.stepsPerPoint
                        && a.rejectedSteps == b.rejectedSteps, "\(arch) \(objective) trials \(trials): run differs")
                // The case is not trivial: several iterations, points finishing at different times.
                #expect(a.iterations >= 3 && Set(a.stepsPerPoint).count >= 2, "\(arch): \(a.iterations) iterations, steps \(Set(a.stepsPerPoint))")
            }
        }
    }

    /// Eight systems in SIMD lanes (the ReLU decoders' solve at |z| ≤ 256) factor bit for bit as
    /// one at a time (the lanes hold L = Uᵀ in the lower triangle), and solve to rounding, including a lane with a frozen coordinate (no
    /// curvature), one with a NaN pivot and one of very different scale. Odd and even n: the
    /// lanes' factor takes columns in pairs and the rows below them in pairs: an even n leaves no
    /// remainder, an odd n a single row below every pair of columns and a last single column.
    @Test(arguments: [12, 13, 21]) func laneCholeskyMatchesOneSystemAtATime(n: Int) {
        let W = GaussNewtonWorkspace.lanes
        var rng = RandomGenerator(seed: 93)
        var systems: [[Double]] = [], rhs: [[Double]] = []
        for p in 0..<W {
            let r = rng.normalArray(count: n * n).map(Double.init)
            var spd = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<n { spd[i * n + j] += r[i * n + k] * r[j * n + k] } }; spd[i * n + i] += 0.05 }
            if p == 2 { for k in 0..<n { spd[5 * n + k] = 0; spd[k * n + 5] = 0 } }
            if p == 4 { spd[7 * n + 7] = .nan }
            if p == 6 { spd = spd.map { $0 * 1e6 } }
            systems.append(spd)
            rhs.append(rng.normalArray(count: n).map(Double.init))
        }
        let a = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: n * n), b = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: n)
        defer { a.deallocate(); b.deallocate() }
        var tolerance = SIMD8<Double>()
        for p in 0..<W {
            for k in 0..<(n * n) { a[k][p] = systems[p][k] }
            for r in 0..<n { b[r][p] = rhs[p][r] }
            tolerance[p] = 1e-12 * (0..<n).map { systems[p][$0 * n + $0] }.filter { !$0.isNaN }.max()!
        }
        GaussNewtonRefinement.choleskyFactorLanes(a, n: n, pivotTolerance: tolerance)
        GaussNewtonRefinement.choleskySubstituteLanes(a, b, n: n)
        for p in 0..<W {
            var u = systems[p], x = rhs[p]
            u.withUnsafeMutableBufferPointer { up in x.withUnsafeMutableBufferPointer { xp in
                GaussNewtonRefinement.choleskyFactor(up.baseAddress!, n: n, pivotTolerance: tolerance[p])
                GaussNewtonRefinement.choleskySubstitute(up.baseAddress!, xp.baseAddress!, n: n)
            } }
            var sameFactor = true, worst = 0.0
            for i in 0..<n { for j in i..<n where !(a[j * n + i][p] == u[i * n + j]) { sameFactor = false } }  // L = Uᵀ
            for r in 0..<n { worst = max(worst, abs(b[r][p] - x[r]) / max(1, abs(x[r]))) }
            #expect(sameFactor, "lane \(p): factor differs from the one-system factor")
            #expect(worst < 1e-12, "lane \(p): solution differs by \(worst)")
            let finite = x.allSatisfy { $0.isFinite }
            #expect(finite)
        }
        #expect(b[5][2] == 0 && b[7][4] == 0)
    }

    /// The data-space solve (d < |z|): each point's δ equals the damped system's solution
    /// (H̃ + βI + λ·diag(H̃ + βI) + λ₀·I)⁻¹ g̃ formed and inverted in Double from the same
    /// linearization (H̃ = C·Cᵀ summed in Double), to 10⁻⁵ relative (measured ≤ 2.5·10⁻⁷; without
    /// the iterative refinement step up to 0.55 at λ = 10⁻⁶, where K in Float loses the digits;
    /// the primal solve on H̃ in Float is off by 3–11 % there, and more on two), for λ from 10⁻⁶ to 10, both objectives, C from
    /// the active-unit products (ReLU) and from the dense ones (smoothed), at |z| = 12 (read in
    /// place) and 130 (gathered copies). Latent coordinate 0 reaches no unit (W₁'s row zeroed):
    /// with the reconstruction objective its δ is exactly 0, as the primal solve's frozen pivot.
    @Test(arguments: [Architecture.arch2, .arch3], [12, 130])
    func dataSpaceSolveIsTheDampedSystemsSolution(_ arch: Architecture, latent L: Int) {
        let d = 5, n = 11
        var rng = RandomGenerator(seed: 131)
        let net = DenseNetwork(widths: arch.decoderWidths(latent: L, data: d), rng: &rng)
        let h1 = net.widths[1]
        for c in 0..<h1 { net.parameters.pointer[net.weightOffsets[0] + c] = 0 }  // row 0 of W₁
        let lambdas = [1e-6, 1e-3, 0.5, 10]
        for objective in [Objective.reconstruction, .elbo(beta: 0.5, likelihood: .fixedVariance(sigma: 0.3))] {
            let decoder = GaussianDecoder(network: net, objective: objective)
            let x = dataFrom(decoder, n: n, noise: 0.2, seed: 132)
            let mu = rng.normalArray(count: n * L)
            let hidden = net.layerCount - 1
            let taus = (0..<(n * hidden)).map { _ in 0.05 + 0.5 * rng.uniformFloat() }
            for smoothed in [false, true] {
                let gn = GaussNewtonRefinement(decoder: decoder, chunkRows: 16)
                #expect(gn.solvesInDataSpace)
                let (_, beta, _) = gn.objectiveWeights()
                let lin = gn.linearization(x, mu: mu, temperatures: smoothed ? taus : nil)
                let ws = gn.workspaces[0]
                for k in 0..<n { ws.index[k] = k; ws.pending[k] = k }
                if smoothed { for e in 0..<(n * hidden) { ws.temperatures.pointer[e] = taus[e] } }
                let st = PointState(count: n, damping: 0)
                defer { st.deallocate() }
                for k in 0..<n { st.damping[k] = lambdas[k % lambdas.count] }
                mu.withUnsafeBufferPointer { gn.linearizeChunk(x, mu: $0.baseAddress!, count: n, workspace: ws, smoothed: smoothed) }
                gn.solveInDataSpace(gradient: ws.gradient.pointer, pendingCount: n, beta: beta, state: st, workspace: ws)
                var worst = [Double](repeating: 0, count: lambdas.count)
                for k in 0..<n {
                    let lam = st.damping[k]
                    // H̃ = C·Cᵀ from the solve's own C, in Double, plus β + λ·(H̃ᵢᵢ + β) + λ₀ on the
                    // diagonal with H̃ᵢᵢ as the solve read it (in Float).
                    let ck = ws.timesGram.pointer + k * L * d
                    var m = [Double](repeating: 0, count: L * L)
                    for i in 0..<L {
                        for j in 0..<L { for e in 0..<d { m[i * L + j] += Double(ck[i * d + e]) * Double(ck[j * d + e]) } }
                        m[i * L + i] += beta + lam * (Double(ws.hessian.pointer[k * L * L + i * L + i]) + beta) + gn.absoluteDamping
                    }
                    let inv = inverseOfPositiveDefinite(m, n: L)
                    let g = (0..<L).map { Double(lin.gradient[k * L + $0]) - beta * Double(mu[k * L + $0]) }
                    var ref = [Double](repeating: 0, count: L)
                    for i in 0..<L { for j in 0..<L { ref[i] += inv[i * L + j] * g[j] } }
                    let scale = max(ref.map(abs).max()!, 1e-12)
                    let delta = ws.deltas + k * L
                    for i in 0..<L { worst[k % lambdas.count] = max(worst[k % lambdas.count], abs(delta[i] - ref[i]) / scale) }
                    if objective.kind == .reconstruction { #expect(delta[0] == 0, "coordinate 0 reaches no unit: δ₀ = \(delta[0])") }
                }
                for (c, lam) in lambdas.enumerated() {
                    #expect(worst[c] < 1e-5, "\(arch) |z| \(L) \(objective) smoothed \(smoothed) λ \(lam): δ off by \(worst[c]) (relative)")
                }
            }
        }
    }

    /// Whole refinements through the data space and through the primal |z| × |z| systems end
    /// at the same objective (d < |z|, both objectives, smoothing then the ReLU): their steps
    /// differ only by the primal's rounding (H̃ in Float), so the sums of P(μ) agree to 10⁻⁵ and
    /// the mean steps to 2 % (measured: 4·10⁻⁶ and 3·10⁻¹⁰; 8.0 and 8.0, 7.275 and 7.325).
    @Test func dataSpaceAndPrimalSolvesEndAtTheSameObjective() {
        var rng = RandomGenerator(seed: 133)
        let L = 10, d = 6, n = 40
        for objective in [Objective.reconstruction, .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.4))] {
            let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3, objective: objective, rng: &rng)
            let x = dataFrom(decoder, n: n, noise: 0.2, seed: 134)
            let start = (rng.normalArray(count: n * L, std: 1.5), [Float](repeating: -1, count: n * L))
            let dual = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 1e-6, trialsPerIteration: 3)
            let primal = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 1e-6, trialsPerIteration: 3)
            primal.dataSpaceSolve = false
            #expect(dual.solvesInDataSpace && !primal.solvesInDataSpace)
            // Without λ₀ (or with λ = 0 to start) E could vanish: the primal solve is taken.
            #expect(!GaussNewtonRefinement(decoder: decoder, absoluteDamping: 0).solvesInDataSpace)
            #expect(!GaussNewtonRefinement(decoder: decoder, damping: 0).solvesInDataSpace)
            let a = dual.refine(x, start: start, maxSteps: 8, seed: 1)
            let b = primal.refine(x, start: start, maxSteps: 8, seed: 1)
            let pa = a.objectiveAtMean.reduce(0, +), pb = b.objectiveAtMean.reduce(0, +)
            let p0 = dual.linearization(x, mu: start.0).objective.reduce(0, +)
            #expect(abs(pa - pb) <= 1e-5 * abs(pb), "\(objective): P summed \(pa) (data space) against \(pb) (primal)")
            #expect(pa < p0 - 0.1 * abs(p0), "\(objective): the refinement should make progress (\(p0) → \(pa))")
            #expect(abs(a.meanSteps - b.meanSteps) <= 0.02 * b.meanSteps, "\(objective): mean steps \(a.meanSteps) against \(b.meanSteps)")
            #expect(a.rejectedSteps > 0, "the problem should exercise rejected trials too")
        }
    }

    /// The ReLU decoders' two solve paths, eight points in SIMD lanes (|z| ≤ 256) and one point
    /// at a time (above), take the same steps to rounding on the same problem.
    @Test func laneSolveMatchesOnePointAtATime() {
        var rng = RandomGenerator(seed: 97)
        let L = 6, d = 11, n = 37
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch3,
                                      objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.4)), rng: &rng)
        let x = dataFrom(decoder, n: n, noise: 0.2, seed: 98)
        let start = (rng.normalArray(count: n * L, std: 1.5), [Float](repeating: -1, count: n * L))
        let lanes = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 1e-6, trialsPerIteration: 3)
        let single = GaussNewtonRefinement(decoder: decoder, chunkRows: 16, tolerance: 1e-6, trialsPerIteration: 3)
        single.laneLatentLimit = 0
        let a = lanes.refine(x, start: start, maxSteps: 8, seed: 1)
        let b = single.refine(x, start: start, maxSteps: 8, seed: 1)
        #expect(a.stepsPerPoint == b.stepsPerPoint && a.rejectedSteps == b.rejectedSteps)
        var worst: Float = 0
        for k in 0..<(n * L) {
            worst = max(worst, abs(a.mu[k] - b.mu[k]) / max(abs(b.mu[k]), 1), abs(a.logVariance[k] - b.logVariance[k]) / max(abs(b.logVariance[k]), 1))
        }
        #expect(worst < 1e-4, "lanes vs one point at a time: worst relative difference \(worst)")
        #expect(a.rejectedSteps > 0, "the problem should exercise rejected trials too")
    }

    /// The gain-ratio test's prediction is the damped quadratic model's decrease of P, for both
    /// objectives and any λ: perD·(δᵀg̃ + δᵀ(λ·diag H + λ₀I)δ) equals 2·perD·(δᵀg̃ − ½δᵀHδ)
    /// formed directly from H = H̃ + βI, with δ from the refinement's own damped solve.
    @Test func predictedDecreaseIsTheDampedModelsDecrease() {
        let L = 7
        var rng = RandomGenerator(seed: 61)
        for objective in [Objective.reconstruction, .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.5))] {
            let decoder = GaussianDecoder(latent: L, dataWidth: 9, architecture: .arch2, objective: objective, rng: &rng)
            let gn = GaussNewtonRefinement(decoder: decoder, absoluteDamping: 1e-3)
            let (perD, beta, _) = gn.objectiveWeights()
            let r = rng.normalArray(count: L * L)
            var h = [Float](repeating: 0, count: L * L)
            for i in 0..<L { for j in 0..<L { for k in 0..<L { h[i * L + j] += r[i * L + k] * r[j * L + k] } } }
            let g = rng.normalArray(count: L), mu = rng.normalArray(count: L)
            for lam in [0.0, 1e-3, 0.5, 10] {
                var u = [Double](repeating: 0, count: L * L)
                var delta = (0..<L).map { Double(g[$0]) - beta * Double(mu[$0]) }
                h.withUnsafeBufferPointer { hp in u.withUnsafeMutableBufferPointer { up in delta.withUnsafeMutableBufferPointer { dp in
                    gn.dampedSystem(hp.baseAddress!, damping: lam, beta: beta, into: up.baseAddress!, n: L)
                    GaussNewtonRefinement.choleskySubstitute(up.baseAddress!, dp.baseAddress!, n: L)
                } } }
                var linear = 0.0, quadratic = 0.0
                for i in 0..<L {
                    linear += delta[i] * (Double(g[i]) - beta * Double(mu[i]))
                    for j in 0..<L { quadratic += delta[i] * (Double(h[i * L + j]) + (i == j ? beta : 0)) * delta[j] }
                }
                let direct = 2 * perD * (linear - 0.5 * quadratic)
                let predicted = delta.withUnsafeBufferPointer { dp in g.withUnsafeBufferPointer { gp in mu.withUnsafeBufferPointer { mp in
                    h.withUnsafeBufferPointer { hp in
                        gn.predictedDecrease(delta: dp.baseAddress!, gradient: gp.baseAddress!, mu: mp.baseAddress!, hessian: hp.baseAddress!,
                                             damping: lam, beta: beta, perD: perD)
                    } } } }
                #expect(predicted > 0 && abs(predicted - direct) <= 1e-8 * abs(direct), "\(objective) λ \(lam): predicted \(predicted), model \(direct)")
            }
        }
    }

    /// With a linear decoder the damped model is exact: the decrease of P one heavily damped
    /// step achieves is the predicted one (ρ = 1), so η = 0.99 accepts the same steps as η = 0.
    /// On a ReLU decoder η = 0.9 rejects trials that η = 0 accepts, and P still never rises.
    @Test func gainRatioTestAcceptsExactModelsAndRejectsPoorSteps() {
        var rng = RandomGenerator(seed: 63)
        let L = 5, d = 12, n = 40
        let linear = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch1, objective: .reconstruction, rng: &rng)
        let x = dataFrom(linear, n: n, noise: 0.3, seed: 64)
        let mu0 = rng.normalArray(count: n * L, std: 10), lv0 = [Float](repeating: 0, count: n * L)
        let lam = 0.3
        let strict = GaussNewtonRefinement(decoder: linear, chunkRows: 16, damping: lam, tolerance: 0, acceptanceRatio: 0.99, exactLinearStep: false)
        let any = GaussNewtonRefinement(decoder: linear, chunkRows: 16, damping: lam, tolerance: 0, acceptanceRatio: 0, exactLinearStep: false)
        let a = strict.refine(x, start: (mu0, lv0), maxSteps: 1, seed: 1), b = any.refine(x, start: (mu0, lv0), maxSteps: 1, seed: 1)
        #expect(a.rejectedSteps == 0 && b.rejectedSteps == 0 && a.mu == b.mu)
        let start = any.linearization(x, mu: mu0)
        let (perD, beta, _) = any.objectiveWeights()
        var worst = 0.0
        for i in 0..<n {
            let delta = (0..<L).map { Double(b.mu[i * L + $0]) - Double(mu0[i * L + $0]) }
            let predicted = delta.withUnsafeBufferPointer { dp in start.gradient.withUnsafeBufferPointer { gp in mu0.withUnsafeBufferPointer { mp in
                start.hessian.withUnsafeBufferPointer { hp in
                    any.predictedDecrease(delta: dp.baseAddress!, gradient: gp.baseAddress! + i * L, mu: mp.baseAddress! + i * L,
                                          hessian: hp.baseAddress! + i * L * L, damping: lam, beta: beta, perD: perD)
                } } } }
            let achieved = start.objective[i] - b.objectiveAtMean[i]
            worst = max(worst, abs(achieved - predicted) / predicted)
        }
        #expect(worst < 1e-3, "linear decoder: achieved vs predicted decrease differ by \(worst) (relative)")

        let relu = GaussianDecoder(latent: 6, dataWidth: 20, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let xr = dataFrom(relu, n: 90, noise: 0.1, seed: 65)
        let startR = (rng.normalArray(count: 90 * 6, std: 2), [Float](repeating: 0, count: 90 * 6))
        let initial = GaussNewtonRefinement(decoder: relu).linearization(xr, mu: startR.0).objective
        let loose = GaussNewtonRefinement(decoder: relu, chunkRows: 16, acceptanceRatio: 0, smoothing: .off).refine(xr, start: startR, maxSteps: 12, seed: 1)
        let tight = GaussNewtonRefinement(decoder: relu, chunkRows: 16, acceptanceRatio: 0.9, smoothing: .off).refine(xr, start: startR, maxSteps: 12, seed: 1)
        #expect(tight.rejectedSteps > loose.rejectedSteps && tight.mu != loose.mu,
                "η = 0.9: \(tight.rejectedSteps) rejected trials, η = 0: \(loose.rejectedSteps)")
        for run in [loose, tight] { for i in 0..<90 { #expect(run.objectiveAtMean[i] <= initial[i]) } }
    }

    /// The Cholesky solve freezes a coordinate with no curvature instead of dividing by zero.
    @Test func choleskyFreezesSingularDirections() {
        // M = [[4, 0, 2], [0, 0, 0], [2, 0, 5]], b = [2, 7, 3]: coordinate 1 frozen, the rest solved.
        var m: [Double] = [4, 0, 2, 0, 0, 0, 2, 0, 5], b: [Double] = [2, 7, 3]
        m.withUnsafeMutableBufferPointer { mp in b.withUnsafeMutableBufferPointer { bp in
            GaussNewtonRefinement.choleskyFactor(mp.baseAddress!, n: 3, pivotTolerance: 1e-12)
            GaussNewtonRefinement.choleskySubstitute(mp.baseAddress!, bp.baseAddress!, n: 3)
        } }
        let expected = solveLinearSystem([4, 2, 2, 5], [2, 3])
        #expect(b[1] == 0 && abs(b[0] - expected[0]) < 1e-12 && abs(b[2] - expected[1]) < 1e-12)
        // A random SPD system of size 40 (upper triangle read) against Gaussian elimination.
        var rng = RandomGenerator(seed: 91)
        let n = 40
        let r = rng.normalArray(count: n * n).map(Double.init)
        var spd = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { spd[i * n + j] += r[i * n + k] * r[j * n + k] } }; spd[i * n + i] += 0.1 }
        let rhs = rng.normalArray(count: n).map(Double.init)
        let reference = solveLinearSystem(spd, rhs)
        var lowerGarbage = spd, x = rhs
        for i in 0..<n { for j in 0..<i { lowerGarbage[i * n + j] = .nan } }
        lowerGarbage.withUnsafeMutableBufferPointer { mp in x.withUnsafeMutableBufferPointer { bp in
            GaussNewtonRefinement.choleskyFactor(mp.baseAddress!, n: n, pivotTolerance: 0)
            GaussNewtonRefinement.choleskySubstitute(mp.baseAddress!, bp.baseAddress!, n: n)
        } }
        var worst = 0.0
        for i in 0..<n { worst = max(worst, abs(x[i] - reference[i]) / max(1, abs(reference[i]))) }
        #expect(worst < 1e-8, "Cholesky vs elimination: \(worst)")

        // Many right-hand sides at once (the linear decoder's shared solve) equal the single
        // substitution column by column, including a frozen coordinate (row 1 of X is zero).
        for (size, system, columns) in [(3, [4.0, 0, 2, 0, 0, 0, 2, 0, 5], [[2.0, 7, 3], [-1.0, 4, 0.5]]),
                                        (n, spd, [rhs, rhs.map { -2 * $0 + 1 }, rhs.reversed(), rhs.map { $0 * $0 }, rhs, rhs])] {
            var u = system
            let m = columns.count
            var many = [Double](repeating: .nan, count: size * m)
            for c in 0..<m { for r in 0..<size { many[r * m + c] = columns[c][r] } }
            var worstMany = 0.0
            u.withUnsafeMutableBufferPointer { up in
                GaussNewtonRefinement.choleskyFactor(up.baseAddress!, n: size, pivotTolerance: 1e-12)
                many.withUnsafeMutableBufferPointer { GaussNewtonRefinement.choleskySubstituteMany(up.baseAddress!, $0.baseAddress!, n: size, columns: m) }
                for c in 0..<m {
                    var single = columns[c]
                    single.withUnsafeMutableBufferPointer { GaussNewtonRefinement.choleskySubstitute(up.baseAddress!, $0.baseAddress!, n: size) }
                    for r in 0..<size { worstMany = max(worstMany, abs(many[r * m + c] - single[r]) / max(1, abs(single[r]))) }
                }
            }
            #expect(worstMany < 1e-12, "many right-hand sides vs one at a time, n = \(size): \(worstMany)")
            if size == 3 { #expect(many[1 * m] == 0 && many[1 * m + 1] == 0) }
        }
    }
}

/// The Krylov linearization of the `n` rows `x` at the means `mu` (n × |z|) on `gn`'s first
/// workspace (its solve with ``GaussNewtonRefinement/krylovDimension`` > 0), as an iteration
/// runs it: temperatures `taus` (n × hidden layers) when smoothed, and every point holding the
/// last step `lastSteps` (n × |z|) when given, none otherwise; `body` then reads the workspaces.
/// `solve`: every point's damped step (λ = 10⁻³) is then solved in its basis too, into ws.deltas.
/// A Krylov test problem: a reconstruction decoder of `widths` (random weights), `points` rows
/// of data from it (noise 0.2), random means and per-point, per-hidden-layer temperatures in
/// [0.1, 1.1).
private func krylovProblem(_ widths: [Int], points n: Int, rng: inout RandomGenerator, dataSeed: UInt64)
    -> (decoder: GaussianDecoder, x: Dataset, mu: [Float], taus: [Float]) {
    let decoder = GaussianDecoder(network: DenseNetwork(widths: widths, rng: &rng), objective: .reconstruction)
    let hidden = decoder.network.layerCount - 1
    let x = dataFrom(decoder, n: n, noise: 0.2, seed: dataSeed)
    let mu = rng.normalArray(count: n * widths[0])
    let taus = (0..<(n * hidden)).map { _ in 0.1 + rng.uniformFloat() }
    return (decoder, x, mu, taus)
}

private func withKrylovLinearization<R>(_ gn: GaussNewtonRefinement, _ x: Dataset, rows n: Int, mu: [Float], taus: [Float],
                                        smoothed: Bool, lastSteps: [Float]? = nil, solve: Bool = false, vectors: Int? = nil,
                                        _ body: (GaussNewtonWorkspace, KrylovWorkspace) -> R) -> R {
    let L = gn.decoder.latent, hidden = gn.decoder.network.layerCount - 1
    let ws = gn.workspaces[0], kw = ws.krylov!
    gn.prepareShared()
    for r in 0..<n { ws.index[r] = r }
    for e in 0..<(n * hidden) { ws.temperatures.pointer[e] = taus[e] }
    let state = PointState(count: n, damping: 1e-3, hiddenLayers: hidden, lastSteps: L)
    defer { state.deallocate() }
    if let lastSteps {
        for e in 0..<(n * L) { state.lastStep![e] = lastSteps[e] }
        for i in 0..<n { state.hasLastStep![i] = true }
    }
    mu.withUnsafeBufferPointer { gn.measureChunk(x, mu: $0.baseAddress!, count: n, workspace: ws, smoothed: smoothed) }
    gn.krylovLinearize(rows: n, smoothed: smoothed, state: state, workspace: ws, krylov: kw, vectors: vectors)
    if solve {
        for q in 0..<n { ws.pending[q] = q }
        gn.solveInKrylovSubspace(pendingCount: n, perD: 1, state: state, workspace: ws, krylov: kw)
    }
    return body(ws, kw)
}
