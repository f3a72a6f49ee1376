import Foundation
import PESVINumerics

/// The generative model p(x|z) = N(D(z), diag σₓ²) with a dense decoder D and the objective
/// it is trained with. With a learned likelihood, `logNoiseVariance` holds log σₓ² per data
/// dimension (d values), trained with the decoder's weights.
public final class GaussianDecoder: @unchecked Sendable {
    public let network: DenseNetwork
    public let objective: Objective
    public let logNoiseVariance: FloatBuffer?

    public var latent: Int { network.inputWidth }
    public var dataWidth: Int { network.outputWidth }

    public init(network: DenseNetwork, objective: Objective, logNoiseVariance: [Float]? = nil) {
        self.network = network
        self.objective = objective
        if objective.usesLearnedVariance {
            let lv = logNoiseVariance ?? [Float](repeating: 0, count: network.outputWidth)
            precondition(lv.count == network.outputWidth,
                         "learned noise variance needs \(network.outputWidth) values, got \(lv.count)")
            self.logNoiseVariance = FloatBuffer(lv)
        } else {
            self.logNoiseVariance = nil
        }
    }

    /// A decoder of the given architecture with random weights from `rng`.
    public convenience init(latent: Int, dataWidth: Int, architecture: Architecture, objective: Objective, rng: inout RandomGenerator) {
        let net = DenseNetwork(widths: architecture.decoderWidths(latent: latent, data: dataWidth), rng: &rng)
        self.init(network: net, objective: objective)
    }

    /// An independent copy.
    public func copy() -> GaussianDecoder {
        GaussianDecoder(network: network.copy(), objective: objective, logNoiseVariance: logNoiseVariance?.array)
    }

    /// Width of the output layer's input: the last hidden width, or |z| for a one-layer decoder.
    public var outputLayerInputWidth: Int { network.widths[network.layerCount - 1] }

    /// The output layer's Gram matrix G = W diag(λ) Wᵀ (h × h, row-major, h =
    /// ``outputLayerInputWidth``), with W the output layer's h × d weights and λ the
    /// likelihood's per-dimension weight on the squared residual: 1, or e^{−log σₓ²} for a
    /// learned variance. For any u ∈ ℝʰ, ‖uW‖²_λ = u G uᵀ. Valid while the weights (and the
    /// learned variance) stay as they are.
    public func outputGram() -> [Float] {
        let h = outputLayerInputWidth, d = dataWidth
        let w = network.parameters.pointer + network.weightOffsets[network.layerCount - 1]
        var g = [Float](repeating: 0, count: h * h)
        func product(_ left: UnsafePointer<Float>) {  // G = left · Wᵀ
            g.withUnsafeMutableBufferPointer {
                gemm(.none, .transpose, m: h, n: h, k: d, alpha: 1, a: left, lda: d, b: w, ldb: d, beta: 0, c: $0.baseAddress!, ldc: h)
            }
        }
        if let lv = logNoiseVariance {
            let lambda = FloatBuffer(count: d), weighted = FloatBuffer(count: h * d)
            VectorMath.expScaled(lv.pointer, scale: -1, lambda.pointer, count: d)
            for i in 0..<h { for k in 0..<d { weighted.pointer[i * d + k] = w[i * d + k] * lambda.pointer[k] } }
            product(weighted.pointer)
        } else {
            product(w)
        }
        return g
    }
}

/// Scratch memory for evaluating the objective on up to `maxPoints` points with `samples`
/// reparameterized samples each. One per thread; nothing is allocated per call.
public final class ChunkWorkspace: @unchecked Sendable {
    public let maxPoints: Int
    public let samples: Int
    let network: NetworkWorkspace
    let z: FloatBuffer        // (samples·maxPoints) × latent; sample s of point i at row s·n + i
    let epsilon: FloatBuffer  // same shape
    let sigma: FloatBuffer    // maxPoints × latent: exp(½ log σ²)
    let outputGradient: FloatBuffer  // (samples·maxPoints) × d
    let latentGradient: FloatBuffer  // (samples·maxPoints) × latent
    let precision: FloatBuffer       // d: exp(−log σₓ²) for a learned likelihood
    let gradMu: FloatBuffer          // maxPoints × latent, scratch when the caller wants none
    let gradLogVariance: FloatBuffer
    // Antithetic pairs through the output layer (see ``ChunkRequest/pairGram``), h = the output
    // layer's input width: pair means and half-differences ((samples/2)·maxPoints × h each),
    // the half-differences times G, ∂f/∂(pair mean), and ∂f/∂(output layer input) per sample.
    let pairMean: FloatBuffer
    let pairHalfDifference: FloatBuffer
    let pairGramProduct: FloatBuffer
    let pairMeanGradient: FloatBuffer
    let hiddenGradient: FloatBuffer

    /// `packedWeights`: the decoder network's weights, packed, for a decoder that stays fixed
    /// while the workspace is used (test-time inference; see ``PackedWeights``).
    public init(decoder: GaussianDecoder, maxPoints: Int, samples: Int, packedWeights: PackedWeights? = nil) {
        precondition(maxPoints > 0 && samples > 0, "ChunkWorkspace needs maxPoints > 0 and samples > 0")
        self.maxPoints = maxPoints
        self.samples = samples
        let rows = maxPoints * samples, L = decoder.latent, d = decoder.dataWidth
        network = NetworkWorkspace(network: decoder.network, maxRows: rows, packedWeights: packedWeights)
        z = FloatBuffer(count: rows * L)
        epsilon = FloatBuffer(count: rows * L)
        sigma = FloatBuffer(count: maxPoints * L)
        outputGradient = FloatBuffer(count: rows * d)
        latentGradient = FloatBuffer(count: rows * L)
        precision = FloatBuffer(count: d)
        gradMu = FloatBuffer(count: maxPoints * L)
        gradLogVariance = FloatBuffer(count: maxPoints * L)
        // Pairs need an even number of samples; other workspaces (SVI, training) get none.
        let h = samples % 2 == 0 ? decoder.outputLayerInputWidth : 0, pairRows = maxPoints * (samples / 2)
        pairMean = FloatBuffer(count: pairRows * h)
        pairHalfDifference = FloatBuffer(count: pairRows * h)
        pairGramProduct = FloatBuffer(count: pairRows * h)
        pairMeanGradient = FloatBuffer(count: pairRows * h)
        hiddenGradient = FloatBuffer(count: rows * h)
    }
}

/// Where ``GaussianDecoder/evaluate(_:)`` reads a chunk's points and posteriors and writes
/// what was asked for. Row strides let μ and log σ² live in a table (stride |z|) or in an
/// encoder's output (μ and log σ² halves of rows of width 2|z|).
public struct ChunkRequest {
    /// n × d data rows, packed.
    public var x: UnsafePointer<Float>
    public var count: Int
    public var mu: UnsafePointer<Float>
    public var muStride: Int
    public var logVariance: UnsafePointer<Float>
    public var logVarianceStride: Int
    /// Evaluate at z = μ (no sampling) instead of the reparameterized samples.
    public var atMean: Bool = false
    /// Per-point ∂fᵢ/∂μᵢ and ∂fᵢ/∂log σ²ᵢ (each point's own objective), written with `gradientStride`.
    public var gradMu: UnsafeMutablePointer<Float>? = nil
    public var gradLogVariance: UnsafeMutablePointer<Float>? = nil
    public var gradientStride: Int = 0
    /// Σᵢ ∂fᵢ/∂θ over the chunk's points, in the decoder network's parameter layout (overwritten).
    public var decoderGradient: UnsafeMutablePointer<Float>? = nil
    /// Σᵢ ∂fᵢ/∂log σₓ² (d values, overwritten), for a learned likelihood.
    public var noiseGradient: UnsafeMutablePointer<Float>? = nil
    /// Each point's objective fᵢ (n values, overwritten).
    public var perPoint: UnsafeMutablePointer<Double>? = nil
    /// Each point's squared error Σ_d (x − D(z))² averaged over samples (n values, overwritten).
    public var perPointSquaredError: UnsafeMutablePointer<Double>? = nil
    /// If set, point i's noise ε comes from a generator seeded by (pointNoiseSeed, firstPoint + i)
    /// instead of `rng`: the same ε for the same point on every call (common random numbers),
    /// so each point's objective is a deterministic function of its own parameters.
    public var pointNoiseSeed: UInt64? = nil
    public var firstPoint: Int = 0
    /// Instead of drawing it from `pointNoiseSeed` on every call: the chunk's fixed noise drawn
    /// once (``GaussianDecoder/fixedPointNoise(seed:firstPoint:count:samples:antithetic:rademacher:)``),
    /// starting at this chunk's first point. `antithetic` as when it was drawn.
    public var pointNoise: UnsafePointer<Float>? = nil

    /// Floats of fixed noise per point in ``pointNoise``: one |z|-vector per sample drawn
    /// (S, or S/2 when antithetic: the odd samples are the even ones negated).
    public static func pointNoiseWidth(samples S: Int, antithetic: Bool, latent L: Int) -> Int { (antithetic ? S / 2 : S) * L }
    /// With `pointNoiseSeed`: draw each point's fixed ε as Rademacher signs (±1) instead of
    /// N(0, I). Both have E[εεᵀ] = I, so under a locally linear decoder the pair's objective has
    /// the same σ term in expectation; but a fixed Gaussian ε can put some εⱼ near 0, and then
    /// nothing pushes that σⱼ down (seen in guarded refinement: the Monte Carlo reconstruction
    /// ended up to 2× its value at the mean). With |εⱼ| = 1 every coordinate's σⱼ is pressed.
    public var rademacherPointNoise = false
    /// Draw samples in antithetic pairs: sample 2k+1 uses −ε of sample 2k (the sample count must
    /// be even). With fixed noise this matters: for a locally linear decoder the pair's cross
    /// terms cancel, so the fixed-noise objective is ‖x − D(μ)‖² plus the σ term exactly, and
    /// cannot be lowered by fitting x with μ + σ⊙ε instead of shrinking σ.
    public var antithetic = false
    /// With `antithetic` samples: the output layer's Gram matrix (``GaussianDecoder/outputGram()``).
    /// Each pair then goes through the (linear) output layer once, at its mean: with a± = m ± δ
    /// the pair's inputs to the output layer, ½(‖x − b − a₊W‖²_λ + ‖x − b − a₋W‖²_λ) =
    /// ‖x − b − mW‖²_λ + δGδᵀ exactly, so the pair costs one sample's d-wide products and δGδᵀ
    /// (h² per pair) instead of two samples'. The objective and gradients are the same up to
    /// rounding. Only for latent gradients and per-point objectives: not with decoder or noise
    /// gradients or `perPointSquaredError`.
    public var pairGram: UnsafePointer<Float>? = nil

    public init(x: UnsafePointer<Float>, count: Int,
                mu: UnsafePointer<Float>, muStride: Int,
                logVariance: UnsafePointer<Float>, logVarianceStride: Int) {
        self.x = x; self.count = count
        self.mu = mu; self.muStride = muStride
        self.logVariance = logVariance; self.logVarianceStride = logVarianceStride
    }
}

extension GaussianDecoder {
    /// Evaluates the objective on a chunk of points and, as requested, its gradients.
    ///
    /// For point i with q = N(μᵢ, diag σᵢ²) and S samples zᵢₛ = μᵢ + σᵢ ⊙ εᵢₛ, εᵢₛ ~ N(0, I):
    /// - reconstruction: fᵢ = (1/S) Σₛ (1/d) ‖xᵢ − D(zᵢₛ)‖²
    /// - ELBO, fixed σₓ: fᵢ = (1/S) Σₛ Σ_d [(x − D)²/(2σₓ²) + ½ log(2πσₓ²)] + β KL(qᵢ ‖ N(0, I))
    /// - ELBO, learned λ = log σₓ²: fᵢ = (1/S) Σₛ Σ_d ½[(x − D)² e^{−λ} + λ + log 2π] + β KL
    ///
    /// Returns Σᵢ fᵢ over the chunk. Gradients are those of each point's own fᵢ (not of the
    /// mean), so the caller scales decoder gradients by 1/batch. `rng` supplies ε.
    @discardableResult
    public func evaluate(_ r: ChunkRequest, workspace ws: ChunkWorkspace, rng: inout RandomGenerator) -> Double {
        let n = r.count, L = latent, d = dataWidth
        precondition(n <= ws.maxPoints, "evaluate: \(n) points exceed the workspace's \(ws.maxPoints)")
        let S = r.atMean ? 1 : ws.samples
        let rows = n * S
        let z = ws.z.pointer, eps = ws.epsilon.pointer, sigma = ws.sigma.pointer
        let wantLatent = r.gradMu != nil || r.gradLogVariance != nil
        let wantBackward = wantLatent || r.decoderGradient != nil || r.noiseGradient != nil

        // 1. z = μ + σ ⊙ ε for every sample (or z = μ).
        for i in 0..<n {
            let m = r.mu + i * r.muStride
            if r.atMean {
                (z + i * L).update(from: m, count: L)
            } else {
                VectorMath.expScaled(r.logVariance + i * r.logVarianceStride, scale: 0.5, sigma + i * L, count: L)
            }
        }
        if !r.atMean {
            if let noise = r.pointNoise {
                // Drawn beforehand by ``fixedPointNoise(seed:firstPoint:count:samples:antithetic:rademacher:)``.
                let perPoint = ChunkRequest.pointNoiseWidth(samples: S, antithetic: r.antithetic, latent: L)
                for i in 0..<n {
                    var src = noise + i * perPoint
                    for s in 0..<S where !(r.antithetic && s % 2 == 1) {
                        (eps + (s * n + i) * L).update(from: src, count: L)
                        src += L
                    }
                }
            } else if let base = r.pointNoiseSeed {
                for i in 0..<n {
                    Self.drawPointNoise(seed: base, point: r.firstPoint + i, samples: S, antithetic: r.antithetic,
                                        rademacher: r.rademacherPointNoise, latent: L) { s in eps + (s * n + i) * L }
                }
            } else {
                rng.fillNormal(eps, count: rows * L)
            }
            if r.antithetic {
                precondition(S % 2 == 0, "antithetic sampling needs an even number of samples, got \(S)")
                for s in stride(from: 1, to: S, by: 2) {
                    for i in 0..<n {
                        let src = eps + ((s - 1) * n + i) * L, dst = eps + (s * n + i) * L
                        for j in 0..<L { dst[j] = -src[j] }
                    }
                }
            }
            for s in 0..<S {
                for i in 0..<n {
                    let row = s * n + i
                    let m = r.mu + i * r.muStride, sg = sigma + i * L, e = eps + row * L, zr = z + row * L
                    for j in 0..<L { zr[j] = m[j] + sg[j] * e[j] }
                }
            }
        }

        // 2. The objective's weights: fᵢ's data term is c·Σ_d λ_d (x − D)² per sample (averaged
        //    over samples), c = 1/d (reconstruction), 1/(2σₓ²) (ELBO, fixed σₓ) or ½ with
        //    λ = e^{−log σₓ²} (ELBO, learned); ∂/∂D of one sample's term is residualScale·λ·(D − x).
        let invS = 1 / Float(S)
        var total = 0.0
        if let pp = r.perPoint { pp.update(repeating: 0, count: n) }
        if let pe = r.perPointSquaredError { pe.update(repeating: 0, count: n) }
        let kind = objective.kind
        let learned = objective.usesLearnedVariance
        var constantPerPoint = 0.0
        var residualScale: Float = 1
        var dataWeight: Float = 0.5  // c
        switch kind {
        case .reconstruction:
            residualScale = 2 / Float(d) * invS
            dataWeight = 1 / Float(d)
        case .elbo:
            switch objective.likelihood {
            case .fixedVariance(let sigmaX):
                let v = Double(sigmaX) * Double(sigmaX)
                residualScale = Float(1 / v) * invS
                dataWeight = Float(0.5 / v)
                constantPerPoint = 0.5 * Double(d) * Foundation.log(2 * Double.pi * v)
            case .learnedVariance:
                let lv = logNoiseVariance!.pointer
                var c = 0.0
                for k in 0..<d { c += Double(lv[k]) }
                constantPerPoint = 0.5 * (c + Double(d) * Foundation.log(2 * Double.pi))
                VectorMath.expScaled(lv, scale: -1, ws.precision.pointer, count: d)
            }
        }
        let prec = ws.precision.pointer
        let dz = ws.latentGradient.pointer
        if let gram = r.pairGram {
            // 2′–3′. Antithetic pairs through the output layer at their means.
            precondition(r.antithetic && !r.atMean && S % 2 == 0 && r.decoderGradient == nil && r.noiseGradient == nil
                         && r.perPointSquaredError == nil,
                         "pairGram: only for antithetic samples with latent gradients or per-point objectives")
            total = evaluatePairs(r, gram: gram, workspace: ws, samples: S, dataWeight: dataWeight,
                                  precision: learned ? UnsafePointer(prec) : nil, wantLatent: wantLatent)
        } else {
            // 2. Decoder forward, residuals, objective and ∂f/∂D(z).
            let out = network.forward(z, rows: rows, workspace: ws.network)
            let dOut = ws.outputGradient.pointer
            if let ng = r.noiseGradient { ng.update(repeating: 0, count: d) }
            for s in 0..<S {
                for i in 0..<n {
                    let row = s * n + i
                    let g = dOut + row * d
                    let se = Elementwise.residual(out + row * d, minus: r.x + i * d, into: g, count: d)
                    var f: Double
                    if learned {
                        // Σ_d ½ (x − D)² e^{−λ}, and ∂/∂λ_d = ½ (1 − (x − D)² e^{−λ}) per sample.
                        var wse = 0.0
                        if let ng = r.noiseGradient {
                            for k in 0..<d {
                                let q = g[k] * g[k] * prec[k]
                                wse += Double(q)
                                ng[k] += 0.5 * (1 - q) * invS
                                g[k] *= prec[k] * invS
                            }
                        } else {
                            for k in 0..<d {
                                wse += Double(g[k] * g[k] * prec[k])
                                g[k] *= prec[k] * invS
                            }
                        }
                        f = 0.5 * wse
                    } else {
                        if wantBackward { Elementwise.scale(g, by: residualScale, count: d) }
                        switch kind {
                        case .reconstruction: f = se / Double(d)
                        case .elbo: f = se * Double(residualScale / invS) * 0.5
                        }
                    }
                    f *= Double(invS)
                    total += f
                    r.perPoint?[i] += f
                    r.perPointSquaredError?[i] += se * Double(invS)
                }
            }
            // 3. Backward through the decoder.
            if wantBackward {
                network.backward(z, rows: rows, workspace: ws.network, outputGradient: dOut,
                                 parameterGradients: r.decoderGradient, accumulate: false,
                                 inputGradient: wantLatent ? dz : nil)
            }
        }
        // Constant and KL terms, per point.
        let beta = objective.klWeight
        if case .elbo = kind {
            for i in 0..<n {
                var f = constantPerPoint
                if beta != 0 {
                    f += Double(beta) * Objective.kl(mu: r.mu + i * r.muStride, logVariance: r.logVariance + i * r.logVarianceStride, count: L)
                }
                total += f
                r.perPoint?[i] += f
            }
        }
        guard wantLatent else { return total }

        // 4. Reparameterization: ∂f/∂μ = Σₛ ∂f/∂zₛ + βμ;  ∂f/∂log σ² = Σₛ ∂f/∂zₛ ⊙ εₛ ⊙ σ/2 + β(σ² − 1)/2.
        let gMu = r.gradMu ?? ws.gradMu.pointer, gLv = r.gradLogVariance ?? ws.gradLogVariance.pointer
        let gs = r.gradMu == nil || r.gradLogVariance == nil ? L : r.gradientStride
        for i in 0..<n {
            let gm = gMu + i * gs, gl = gLv + i * gs
            let m = r.mu + i * r.muStride, sg = sigma + i * L
            for j in 0..<L { gm[j] = 0; gl[j] = 0 }
            for s in 0..<S {
                let row = s * n + i
                let dzr = dz + row * L
                Elementwise.add(dzr, to: gm, count: L)
                if !r.atMean {
                    let e = eps + row * L
                    for j in 0..<L { gl[j] += dzr[j] * e[j] * 0.5 * sg[j] }
                }
            }
            if beta != 0 {
                for j in 0..<L {
                    gm[j] += beta * m[j]
                    let s2 = r.atMean ? Foundation.exp(r.logVariance[i * r.logVarianceStride + j]) : sg[j] * sg[j]
                    gl[j] += beta * 0.5 * (s2 - 1)
                }
            }
        }
        return total
    }

    /// Point `point`'s fixed noise (``ChunkRequest/pointNoiseSeed``): for each sample s drawn
    /// (every s, or the even ones when antithetic), |z| values written at `destination(s)`.
    @inline(__always)
    static func drawPointNoise(seed: UInt64, point: Int, samples S: Int, antithetic: Bool, rademacher: Bool, latent L: Int,
                               destination: (Int) -> UnsafeMutablePointer<Float>) {
        var g = RandomGenerator(seed: seed ^ (UInt64(point) &* 0x9E37_79B9_7F4A_7C15))
        for s in 0..<S where !(antithetic && s % 2 == 1) {
            if rademacher { g.fillRademacher(destination(s), count: L) } else { g.fillNormal(destination(s), count: L) }
        }
    }

    /// The fixed noise that `pointNoiseSeed` = `seed` gives points firstPoint ..< firstPoint +
    /// count, drawn once, for ``ChunkRequest/pointNoise``: per point, (S/2 if antithetic, else
    /// S) × |z| values, points one after another. The same values, bit for bit.
    public func fixedPointNoise(seed: UInt64, firstPoint: Int, count: Int, samples S: Int, antithetic: Bool, rademacher: Bool) -> FloatBuffer {
        let L = latent, perPoint = ChunkRequest.pointNoiseWidth(samples: S, antithetic: antithetic, latent: L)
        let buffer = FloatBuffer(count: count * perPoint)
        for i in 0..<count {
            let base = buffer.pointer + i * perPoint
            Self.drawPointNoise(seed: seed, point: firstPoint + i, samples: S, antithetic: antithetic, rademacher: rademacher, latent: L) {
                base + (antithetic ? $0 / 2 : $0) * L
            }
        }
        return buffer
    }

    /// The data term of antithetic pairs evaluated through the output layer once per pair (see
    /// ``ChunkRequest/pairGram``), after step 1 of ``evaluate(_:workspace:rng:)`` filled
    /// `ws.z` (rows = samples·n). Returns Σᵢ of the data terms and adds each point's to
    /// `r.perPoint` (zeroed by the caller). With `wantLatent`, writes ∂f/∂z (rows × |z|) into
    /// `ws.latentGradient`. `dataWeight` is c of the data term c·Σ_d λ_d (x − D)²; `precision`
    /// is λ for a learned variance (nil: λ = 1).
    private func evaluatePairs(_ r: ChunkRequest, gram: UnsafePointer<Float>, workspace ws: ChunkWorkspace, samples S: Int,
                               dataWeight c: Float, precision: UnsafePointer<Float>?, wantLatent: Bool) -> Double {
        let n = r.count, d = dataWidth, h = outputLayerInputWidth
        let rows = n * S, pairs = S / 2, pairRows = n * pairs
        let layers = network.layerCount
        let z = ws.z.pointer
        // Inputs of the output layer for every sample; sample 2p and 2p+1 of point i are a pair.
        let a = network.forward(z, rows: rows, workspace: ws.network, layers: layers - 1)
        let mean = ws.pairMean.pointer, half = ws.pairHalfDifference.pointer, gHalf = ws.pairGramProduct.pointer
        for p in 0..<pairs {
            for i in 0..<n {
                let ap = a + ((2 * p) * n + i) * h, an = a + ((2 * p + 1) * n + i) * h
                let m = mean + (p * n + i) * h, hd = half + (p * n + i) * h
                for j in 0..<h { m[j] = 0.5 * (ap[j] + an[j]); hd[j] = 0.5 * (ap[j] - an[j]) }
            }
        }
        let params = network.parameters.pointer
        let wOut = params + network.weightOffsets[layers - 1], bOut = params + network.biasOffsets[layers - 1]
        let out = ws.network.activations[layers - 1].pointer  // pairRows × d: D at each pair's mean
        if let packed = ws.network.packedForward {
            gemm(m: pairRows, alpha: 1, a: mean, lda: h, b: packed[layers - 1], beta: 0, c: out, ldc: d)
        } else {
            gemm(.none, .none, m: pairRows, n: d, k: h, alpha: 1, a: mean, lda: h, b: wOut, ldb: d, beta: 0, c: out, ldc: d)
        }
        Elementwise.addBias(bOut, to: out, rows: pairRows, cols: d)
        gemm(.none, .none, m: pairRows, n: h, k: h, alpha: 1, a: half, lda: h, b: gram, ldb: h, beta: 0, c: gHalf, ldc: h)
        // fᵢ's data term: (c / pairs) Σ_p (‖D(m_p) − x‖²_λ + δ_p G δ_pᵀ).
        let w = c / Float(pairs)
        let g = ws.outputGradient.pointer  // pairRows × d: λ ⊙ (D(m) − x), then ∂f/∂D(m)
        var total = 0.0
        for p in 0..<pairs {
            for i in 0..<n {
                let row = p * n + i
                var q: Double
                if let precision {
                    q = Elementwise.weightedSquaredResidual(out + row * d, minus: r.x + i * d, weights: precision,
                                                            into: g + row * d, count: d)
                } else {
                    q = Elementwise.residual(out + row * d, minus: r.x + i * d, into: g + row * d, count: d)
                }
                q += Elementwise.dot(half + row * h, gHalf + row * h, count: h)
                let f = Double(w) * q
                total += f
                r.perPoint?[i] += f
            }
        }
        guard wantLatent else { return total }
        // ∂f/∂D(m) = 2w λ ⊙ (D(m) − x);  ∂f/∂m = ∂f/∂D(m) · Wᵀ;  ∂f/∂δ = 2w δG;
        // a± = m ± δ, so ∂f/∂a± = ½ ∂f/∂m ± ½ ∂f/∂δ.
        Elementwise.scale(g, by: 2 * w, count: pairRows * d)
        let gMean = ws.pairMeanGradient.pointer
        if let packed = ws.network.packedBackward {
            gemm(m: pairRows, alpha: 1, a: g, lda: d, b: packed[layers - 1], beta: 0, c: gMean, ldc: h)
        } else {
            gemm(.none, .transpose, m: pairRows, n: h, k: d, alpha: 1, a: g, lda: d, b: wOut, ldb: d, beta: 0, c: gMean, ldc: h)
        }
        let ga = layers == 1 ? ws.latentGradient.pointer : ws.hiddenGradient.pointer
        for p in 0..<pairs {
            for i in 0..<n {
                let row = p * n + i
                let gm = gMean + row * h, gh = gHalf + row * h
                let gp = ga + ((2 * p) * n + i) * h, gn = ga + ((2 * p + 1) * n + i) * h
                for j in 0..<h { let u = 0.5 * gm[j], v = w * gh[j]; gp[j] = u + v; gn[j] = u - v }
            }
        }
        if layers > 1 {
            network.inputGradient(fromHidden: layers - 1, z, rows: rows, workspace: ws.network,
                                  hiddenGradient: ga, inputGradient: ws.latentGradient.pointer)
        }
        return total
    }
}
