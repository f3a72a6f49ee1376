import Testing
import PESVINumerics
import TestSupport
@testable import PESVIModels

/// Finite-difference checks of the whole objective with respect to decoder weights, learned
/// noise variances, μ and log σ², in each architecture and each objective.
@Suite struct GaussianDecoderTests {
    static let objectives: [Objective] = [
        .reconstruction,
        .elbo(beta: 1, likelihood: .fixedVariance(sigma: 0.7)),
        .elbo(beta: 0.5, likelihood: .learnedVariance),
    ]
    static let architectures: [Architecture] = [.arch1, .arch2, .arch3]

    @Test(arguments: architectures, objectives)
    func objectiveGradientsMatchFiniteDifferences(architecture: Architecture, objective: Objective) {
        var rng = RandomGenerator(seed: 17)
        let L = 3, d = 5, n = 4, S = 2
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: architecture, objective: objective, rng: &rng)
        if let lv = decoder.logNoiseVariance { rng.fillUniform(lv.pointer, count: d, low: -0.5, high: 0.5) }
        let x = FloatBuffer(rng.normalArray(count: n * d))
        let mu = FloatBuffer(rng.normalArray(count: n * L))
        let lv = FloatBuffer(rng.uniformArray(count: n * L, low: -1.5, high: 0))
        let ws = ChunkWorkspace(decoder: decoder, maxPoints: n, samples: S)
        func request() -> ChunkRequest {
            ChunkRequest(x: x.pointer, count: n, mu: mu.pointer, muStride: L, logVariance: lv.pointer, logVarianceStride: L)
        }
        func f() -> Double {
            var r = RandomGenerator(seed: 99)  // the same ε every time: f is then deterministic
            return decoder.evaluate(request(), workspace: ws, rng: &r)
        }
        let gMu = FloatBuffer(count: n * L), gLv = FloatBuffer(count: n * L)
        let gTheta = FloatBuffer(count: decoder.network.parameterCount), gNoise = FloatBuffer(count: d)
        var req = request()
        req.gradMu = gMu.pointer; req.gradLogVariance = gLv.pointer; req.gradientStride = L
        req.decoderGradient = gTheta.pointer
        if decoder.logNoiseVariance != nil { req.noiseGradient = gNoise.pointer }
        var r = RandomGenerator(seed: 99)
        let value = decoder.evaluate(req, workspace: ws, rng: &r)
        #expect(abs(value - f()) < 1e-9 * max(1, abs(value)))

        let scale = 1e-1
        let all = Array(0..<(n * L))
        #expect(worstKinkRobustError(analytic: all.map { Double(gMu[$0]) }, at: mu.pointer, indices: all, scale: scale, f) < 2e-2)
        #expect(worstKinkRobustError(analytic: all.map { Double(gLv[$0]) }, at: lv.pointer, indices: all, scale: scale, f) < 2e-2)
        let idx = Array(0..<decoder.network.parameterCount)
        #expect(worstKinkRobustError(analytic: idx.map { Double(gTheta[$0]) }, at: decoder.network.parameters.pointer,
                                     indices: idx, scale: scale, f) < 2e-2)
        if let noise = decoder.logNoiseVariance {
            let dims = Array(0..<d)
            #expect(worstKinkRobustError(analytic: dims.map { Double(gNoise[$0]) }, at: noise.pointer, indices: dims, scale: scale, f) < 2e-2)
        }
    }

    /// Antithetic pairs through the output layer once, at their means (``ChunkRequest/pairGram``),
    /// give the same per-point objectives and latent gradients as evaluating both samples of
    /// every pair, in each architecture and objective, for one pair and for two.
    @Test(arguments: architectures, objectives)
    func pairedOutputLayerMatchesEverySampleEvaluated(architecture: Architecture, objective: Objective) {
        var rng = RandomGenerator(seed: 23)
        let L = 3, d = 9, n = 5
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: architecture, objective: objective, rng: &rng)
        if let lv = decoder.logNoiseVariance { rng.fillUniform(lv.pointer, count: d, low: -0.5, high: 0.5) }
        let x = FloatBuffer(rng.normalArray(count: n * d))
        let mu = FloatBuffer(rng.normalArray(count: n * L))
        let lv = FloatBuffer(rng.uniformArray(count: n * L, low: -1.5, high: 0.5))
        let gram = FloatBuffer(decoder.outputGram())
        for samples in [2, 4] {
            for rademacher in [true, false] {
                let ws = ChunkWorkspace(decoder: decoder, maxPoints: n, samples: samples)
                func run(paired: Bool) -> (total: Double, perPoint: [Double], gMu: [Float], gLv: [Float]) {
                    let gMu = FloatBuffer(count: n * L), gLv = FloatBuffer(count: n * L)
                    let pp = UnsafeMutablePointer<Double>.allocate(capacity: n); defer { pp.deallocate() }
                    var req = ChunkRequest(x: x.pointer, count: n, mu: mu.pointer, muStride: L, logVariance: lv.pointer, logVarianceStride: L)
                    req.pointNoiseSeed = 5; req.firstPoint = 7; req.antithetic = true; req.rademacherPointNoise = rademacher
                    req.gradMu = gMu.pointer; req.gradLogVariance = gLv.pointer; req.gradientStride = L
                    req.perPoint = pp
                    if paired { req.pairGram = UnsafePointer(gram.pointer) }
                    var r = RandomGenerator(seed: 0)
                    let total = decoder.evaluate(req, workspace: ws, rng: &r)
                    return (total, Array(UnsafeBufferPointer(start: pp, count: n)), gMu.array, gLv.array)
                }
                let direct = run(paired: false), paired = run(paired: true)
                #expect(abs(paired.total - direct.total) <= 1e-5 * max(1, abs(direct.total)))
                for i in 0..<n { #expect(abs(paired.perPoint[i] - direct.perPoint[i]) <= 1e-5 * max(1, abs(direct.perPoint[i]))) }
                let gScale = max(1, direct.gMu.map { abs($0) }.max()!, direct.gLv.map { abs($0) }.max()!)
                for j in 0..<(n * L) {
                    #expect(abs(paired.gMu[j] - direct.gMu[j]) <= 1e-5 * gScale)
                    #expect(abs(paired.gLv[j] - direct.gLv[j]) <= 1e-5 * gScale)
                }
            }
        }
    }

    /// Fixed noise drawn once (``ChunkRequest/pointNoise``) gives bit for bit what drawing it
    /// from `pointNoiseSeed` on every call gives, for a chunk that starts inside the table.
    @Test(arguments: [(2, true, true), (2, false, false), (4, true, false), (3, false, true)])
    func noiseDrawnOnceEqualsNoiseDrawnPerCall(samples: Int, antithetic: Bool, rademacher: Bool) {
        var rng = RandomGenerator(seed: 41)
        let L = 3, d = 5, n = 4, first = 6
        let decoder = GaussianDecoder(latent: L, dataWidth: d, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let x = FloatBuffer(rng.normalArray(count: n * d)), mu = FloatBuffer(rng.normalArray(count: n * L))
        let lv = FloatBuffer(rng.uniformArray(count: n * L, low: -1, high: 0))
        let table = decoder.fixedPointNoise(seed: 77, firstPoint: 0, count: first + n, samples: samples, antithetic: antithetic, rademacher: rademacher)
        let perPoint = (antithetic ? samples / 2 : samples) * L
        let ws = ChunkWorkspace(decoder: decoder, maxPoints: n, samples: samples)
        func run(drawnOnce: Bool) -> ([Double], [Float]) {
            let gMu = FloatBuffer(count: n * L), gLv = FloatBuffer(count: n * L)
            let pp = UnsafeMutablePointer<Double>.allocate(capacity: n); defer { pp.deallocate() }
            var req = ChunkRequest(x: x.pointer, count: n, mu: mu.pointer, muStride: L, logVariance: lv.pointer, logVarianceStride: L)
            req.antithetic = antithetic; req.rademacherPointNoise = rademacher; req.firstPoint = first
            if drawnOnce { req.pointNoise = UnsafePointer(table.pointer + first * perPoint) } else { req.pointNoiseSeed = 77 }
            req.gradMu = gMu.pointer; req.gradLogVariance = gLv.pointer; req.gradientStride = L; req.perPoint = pp
            var r = RandomGenerator(seed: 0)
            decoder.evaluate(req, workspace: ws, rng: &r)
            return (Array(UnsafeBufferPointer(start: pp, count: n)), gMu.array + gLv.array)
        }
        let once = run(drawnOnce: true), perCall = run(drawnOnce: false)
        #expect(once.0 == perCall.0)
        #expect(once.1 == perCall.1)
    }

    /// G = W diag(λ) Wᵀ of the output layer: u G uᵀ = Σ_d λ_d (uW)_d², by a direct sum.
    @Test(arguments: objectives)
    func outputGramGivesTheWeightedSquaredNorm(objective: Objective) {
        var rng = RandomGenerator(seed: 29)
        let decoder = GaussianDecoder(latent: 4, dataWidth: 6, architecture: .arch2, objective: objective, rng: &rng)
        if let lv = decoder.logNoiseVariance { rng.fillUniform(lv.pointer, count: 6, low: -1, high: 1) }
        let h = decoder.outputLayerInputWidth, d = 6
        #expect(h == 8)
        let g = decoder.outputGram()
        let w = decoder.network.parameters.pointer + decoder.network.weightOffsets[1]
        for _ in 0..<3 {
            let u = rng.normalArray(count: h)
            var quadratic = 0.0, direct = 0.0
            for i in 0..<h { for j in 0..<h { quadratic += Double(u[i]) * Double(g[i * h + j]) * Double(u[j]) } }
            for k in 0..<d {
                var y = 0.0
                for i in 0..<h { y += Double(u[i]) * Double(w[i * d + k]) }
                let lambda = decoder.logNoiseVariance.map { Foundation.exp(-Double($0.pointer[k])) } ?? 1
                direct += lambda * y * y
            }
            #expect(abs(quadratic - direct) <= 1e-5 * max(1, direct))
        }
    }

    /// The reconstruction objective at z = μ with a hand-computed decoder: D(z) = W z + b.
    @Test func reconstructionValueByHand() {
        // Arch1 with |z| = 1, d = 2: W = [2, −1] (1×2), b = [0.5, 0].
        let net = DenseNetwork(widths: [1, 2], parameters: [2, -1, 0.5, 0])
        let dec = GaussianDecoder(network: net, objective: .reconstruction)
        let ws = ChunkWorkspace(decoder: dec, maxPoints: 1, samples: 1)
        let x: [Float] = [1, 1], mu: [Float] = [0.25], lv: [Float] = [0]
        var rng = RandomGenerator(seed: 0)
        let v = x.withUnsafeBufferPointer { xp in mu.withUnsafeBufferPointer { mp in lv.withUnsafeBufferPointer { lp in
            var req = ChunkRequest(x: xp.baseAddress!, count: 1, mu: mp.baseAddress!, muStride: 1, logVariance: lp.baseAddress!, logVarianceStride: 1)
            req.atMean = true
            return dec.evaluate(req, workspace: ws, rng: &rng)
        } } }
        // D(0.25) = [1.0, −0.25]; errors [0, 1.25]; mean over d = 2: 1.5625 / 2.
        #expect(abs(v - 0.78125) < 1e-6)
    }

    /// The negative ELBO with a fixed σₓ and β = 1 at z = μ, against the closed form.
    @Test func elboValueByHand() {
        let net = DenseNetwork(widths: [1, 1], parameters: [1, 0])   // D(z) = z
        let dec = GaussianDecoder(network: net, objective: .elbo(beta: 1, likelihood: .fixedVariance(sigma: 2)))
        let ws = ChunkWorkspace(decoder: dec, maxPoints: 1, samples: 1)
        let x: [Float] = [3], mu: [Float] = [1], lv: [Float] = [Float(0.5).squareRoot() * 0 + -0.5]
        var rng = RandomGenerator(seed: 0)
        let v = x.withUnsafeBufferPointer { xp in mu.withUnsafeBufferPointer { mp in lv.withUnsafeBufferPointer { lp in
            var req = ChunkRequest(x: xp.baseAddress!, count: 1, mu: mp.baseAddress!, muStride: 1, logVariance: lp.baseAddress!, logVarianceStride: 1)
            req.atMean = true
            return dec.evaluate(req, workspace: ws, rng: &rng)
        } } }
        // NLL = (3−1)²/(2·4) + ½ log(2π·4) = 0.5 + 1.6120857;  KL = ½(1 + e^{−0.5} + 0.5 − 1) = 0.5532653
        let expected = 0.5 + 0.5 * log(2 * Double.pi * 4) + 0.5 * (1 + exp(-0.5) + 0.5 - 1)
        #expect(abs(v - expected) < 1e-5)
    }
}

import Foundation
