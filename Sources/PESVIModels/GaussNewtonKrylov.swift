import PESVINumerics

/// One thread's scratch for PE-SVI-GN's Krylov-subspace solve
/// (``GaussNewtonRefinement/krylovDimension``), for up to `maxPoints` points.
///
/// Layout: basis vector a of chunk point k is row k of the a-th `maxPoints × |z|` block of
/// `basis` (so one vector of every point is one matrix for the batched products); likewise
/// its images at the last hidden layer in `images` and `gramImages` (`maxPoints × h` blocks).
final class KrylovWorkspace: @unchecked Sendable {
    /// k: Krylov vectors g, H̃g, …, H̃ᵏ⁻¹g; the basis holds one more, the point's last step.
    let dimension: Int
    let maxPoints: Int
    /// σ(a/τ) (smoothed) or the ReLU's 0/1 of every hidden unit at the linearization: one
    /// `maxPoints × width` buffer per hidden layer.
    let slopes: [FloatBuffer]
    let basis: FloatBuffer, images: FloatBuffer, gramImages: FloatBuffer
    /// Where the decoder has d < h (F = W_L Λ^{1/2}, h × d, G = F·Fᵀ): each basis vector's image
    /// through F, yF (`maxPoints × d` blocks), so that M = (J_h Q)ᵀ G (J_h Q) is a Gram matrix of
    /// d-long rows; otherwise one element.
    let rootImages: FloatBuffer
    /// h, and d where the images go through F (d < h), else 0.
    let imageWidth: Int, rootWidth: Int
    /// Basis vector a's `maxPoints`-row blocks of `images` and `gramImages`, and of `rootImages`
    /// where the products go through F (nil otherwise).
    func image(_ a: Int) -> UnsafeMutablePointer<Float> { images.pointer + a * maxPoints * imageWidth }
    func gramImage(_ a: Int) -> UnsafeMutablePointer<Float> { gramImages.pointer + a * maxPoints * imageWidth }
    func rootImage(_ a: Int) -> UnsafeMutablePointer<Float>? { rootWidth > 0 ? rootImages.pointer + a * maxPoints * rootWidth : nil }
    /// H̃ times one basis vector (maxPoints × |z|, or × h₁ in the first layer's space), and two
    /// tangent buffers (maxPoints × widest).
    let product: FloatBuffer, tangentA: FloatBuffer, tangentB: FloatBuffer
    /// Cg, the first vector orthogonalized with a preconditioner C (maxPoints × |z|;
    /// ``GaussNewtonRefinement/krylovPreconditioner``; the later ones, (H̃qₐ)·C, come out of
    /// the products themselves).
    let preconditioned: FloatBuffer
    /// Whether basis vector a of point k was kept (not nearly dependent on the earlier ones).
    let kept: UnsafeMutablePointer<Bool>
    /// Per point: the projected curvature M = QᵀH̃Q ((k+1)²) and gradient b = Qᵀg (k+1), Double.
    let projected: UnsafeMutablePointer<Double>, projectedGradient: UnsafeMutablePointer<Double>
    /// Each pending point's predicted decrease.
    let predicted: UnsafeMutablePointer<Double>
    /// Points per lane group of the orthogonalization (SIMD8<Double>).
    static let lanes = 8
    /// Eight vectors being orthogonalized, one per lane (|z| lane vectors), and the basis in
    /// Double in lanes (per group of eight rows, (k+1) × |z| lane vectors), which the
    /// orthogonalization reads; `basis` is its Float copy for the products.
    let laneWork: UnsafeMutablePointer<SIMD8<Double>>
    let laneBasis: UnsafeMutablePointer<SIMD8<Double>>
    /// The damped (k+1) × (k+1) systems and right-hand sides of eight points, one per lane.
    let laneSystem: UnsafeMutablePointer<SIMD8<Double>>, laneRightHandSide: UnsafeMutablePointer<SIMD8<Double>>
    /// The kept partners b ≤ a of one basis vector a in M (k + 1).
    let partners: UnsafeMutablePointer<Int>
    /// Per point: whether its gradient (JᵀΛr, or in the first layer's space ρ) is finite.
    let finiteGradient: UnsafeMutablePointer<Bool>
    /// h₁ where this workspace can hold a basis in the first hidden layer's space
    /// (``GaussNewtonRefinement/smoothedKrylovInFirstLayer``), else 0. Then basis vector a of
    /// chunk point k, qₐ = sₐ·W₁ᵀ, is row k of the a-th `maxPoints × h₁` block of `firstBasis`
    /// (sₐ) and of `firstImages` (sₐ·P, P = W₁ᵀW₁: the first layer's image of qₐ before the
    /// slopes); `firstGradient` holds ρ (g = ρ·W₁ᵀ), `combination` each pending point's Σ cₐsₐ
    /// and `firstDeltas` its δ = (Σ cₐsₐ)·W₁ᵀ.
    let firstWidth: Int
    let firstBasis: FloatBuffer, firstImages: FloatBuffer, firstGradient: FloatBuffer, combination: FloatBuffer, firstDeltas: FloatBuffer
    /// One point's Σ cₐsₐ being summed (Double, h₁).
    let combinationSum: UnsafeMutablePointer<Double>
    /// Per point: Σ c_b² taken off the vector being orthogonalized (its P-norm² before, less its norm² after).
    let removedSquares: UnsafeMutablePointer<Double>
    /// Whether the current basis (the last ``GaussNewtonRefinement/krylovLinearize(rows:smoothed:state:workspace:krylov:)``)
    /// is in the first layer's space.
    var inFirstLayer = false

    init(decoder: GaussianDecoder, maxPoints m: Int, dimension k: Int, firstLayer: Bool = false) {
        let net = decoder.network, L = decoder.latent
        let hidden = Array(net.widths.dropFirst().dropLast())
        let widest = hidden.max() ?? 1, h = net.widths[net.layerCount - 1], n = k + 1
        let h1 = firstLayer ? net.widths[1] : 0
        dimension = k
        maxPoints = m
        slopes = hidden.map { FloatBuffer(count: m * $0) }
        basis = FloatBuffer(count: n * m * L)
        images = FloatBuffer(count: n * m * h)
        gramImages = FloatBuffer(count: n * m * h)
        let d = decoder.dataWidth
        rootImages = FloatBuffer(count: d < h ? n * m * d : 1)
        imageWidth = h
        rootWidth = d < h ? d : 0
        product = FloatBuffer(count: m * max(L, h1))
        tangentA = FloatBuffer(count: m * widest)
        tangentB = FloatBuffer(count: m * widest)
        preconditioned = FloatBuffer(count: m * L)
        kept = .allocate(capacity: n * m); kept.initialize(repeating: false, count: n * m)
        projected = .allocate(capacity: m * n * n); projected.initialize(repeating: 0, count: m * n * n)
        projectedGradient = .allocate(capacity: m * n); projectedGradient.initialize(repeating: 0, count: m * n)
        predicted = .allocate(capacity: m); predicted.initialize(repeating: 0, count: m)
        laneWork = .allocate(capacity: L); laneWork.initialize(repeating: SIMD8(), count: L)
        let groups = (m + KrylovWorkspace.lanes - 1) / KrylovWorkspace.lanes
        laneBasis = .allocate(capacity: groups * n * L); laneBasis.initialize(repeating: SIMD8(), count: groups * n * L)
        laneSystem = .allocate(capacity: n * n); laneSystem.initialize(repeating: SIMD8(), count: n * n)
        laneRightHandSide = .allocate(capacity: n); laneRightHandSide.initialize(repeating: SIMD8(), count: n)
        partners = .allocate(capacity: n); partners.initialize(repeating: 0, count: n)
        finiteGradient = .allocate(capacity: m); finiteGradient.initialize(repeating: false, count: m)
        firstWidth = h1
        let f = h1 > 0 ? m * h1 : 1
        firstBasis = FloatBuffer(count: h1 > 0 ? n * f : 1)
        firstImages = FloatBuffer(count: h1 > 0 ? n * f : 1)
        firstGradient = FloatBuffer(count: f)
        combination = FloatBuffer(count: f)
        firstDeltas = FloatBuffer(count: h1 > 0 ? m * L : 1)
        combinationSum = .allocate(capacity: max(h1, 1)); combinationSum.initialize(repeating: 0, count: max(h1, 1))
        removedSquares = .allocate(capacity: m); removedSquares.initialize(repeating: 0, count: m)
    }

    deinit {
        kept.deallocate(); projected.deallocate(); projectedGradient.deallocate(); predicted.deallocate(); laneWork.deallocate(); laneBasis.deallocate()
        laneSystem.deallocate(); laneRightHandSide.deallocate(); partners.deallocate(); finiteGradient.deallocate()
        combinationSum.deallocate(); removedSquares.deallocate()
    }
}

/// The Krylov products' fixed right operands in the kernel's panels, packed once per
/// refinement call instead of once per product: W_Lᵀ (d × h, the gradient's Λr·W_Lᵀ), and F
/// (h × d) and Fᵀ where the products go through F = W_L Λ^{1/2} (d < h), and G (h × h).
/// Products with them are the same bit for bit as with the unpacked matrices.
final class KrylovOperands: @unchecked Sendable {
    let lastWeightsTransposed: PackedMatrix
    let root: PackedMatrix?, rootTransposed: PackedMatrix?, gram: PackedMatrix
    /// P = W₁ᵀW₁ (h₁ × h₁), the first layer's Gram matrix, where the smoothed iterations keep
    /// their basis in the first hidden layer's space (``GaussNewtonRefinement/smoothedKrylovInFirstLayer``).
    let firstGram: PackedMatrix?
    /// The Krylov preconditioner C (|z| × |z|, symmetric; ``GaussNewtonRefinement/krylovPreconditioner``),
    /// packed once (it does not change with the decoder's weights), for Cg.
    let preconditioner: PackedMatrix?
    private let preconditionerValues: FloatBuffer?
    /// W₁ᵀC (h₁ × |z|) with a preconditioner: the backward pass of a Krylov product ends with it
    /// instead of W₁ᵀ, so that it gives (H̃q)·C (C symmetric) in the same product, with no
    /// product with C of its own. Formed and packed by ``repack()`` from the current W₁.
    let firstBackwardPreconditioned: PackedMatrix?
    private let firstBackwardPreconditionedValues: FloatBuffer?
    private let preconditionedNet: DenseNetwork?
    /// Where the values come from (owned by the refinement).
    private let sources: (lastWeightsTransposed: FloatBuffer, root: FloatBuffer, gram: FloatBuffer)
    /// The network whose W₁ (|z| × h₁) P is formed from, and P's values.
    private let firstLayerNetwork: DenseNetwork?, firstGramValues: FloatBuffer?
    private let h: Int, d: Int

    init(h: Int, d: Int, throughRoot: Bool, lastWeightsTransposed wt: FloatBuffer, root f: FloatBuffer, gram g: FloatBuffer,
         firstLayerOf network: DenseNetwork? = nil, preconditioner c: [Float]? = nil, preconditionedNetwork: DenseNetwork? = nil) {
        self.h = h
        self.d = d
        if let c, let net = preconditionedNetwork {
            let L = net.widths[0], values = FloatBuffer(count: L * L)
            for e in 0..<(L * L) { values.pointer[e] = c[e] }
            preconditionerValues = values
            preconditioner = PackedMatrix(.none, b: values.pointer, ldb: L, k: L, n: L)
            let h1 = net.widths[1], folded = FloatBuffer(count: h1 * L)
            firstBackwardPreconditionedValues = folded
            firstBackwardPreconditioned = PackedMatrix(.none, b: folded.pointer, ldb: L, k: h1, n: L)
            preconditionedNet = net
        } else {
            preconditionerValues = nil
            preconditioner = nil
            firstBackwardPreconditionedValues = nil
            firstBackwardPreconditioned = nil
            preconditionedNet = nil
        }
        sources = (wt, f, g)
        lastWeightsTransposed = PackedMatrix(.none, b: wt.pointer, ldb: h, k: d, n: h)
        root = throughRoot ? PackedMatrix(.none, b: f.pointer, ldb: d, k: h, n: d) : nil
        rootTransposed = throughRoot ? PackedMatrix(.transpose, b: f.pointer, ldb: d, k: d, n: h) : nil
        gram = PackedMatrix(.none, b: g.pointer, ldb: h, k: h, n: h)
        firstLayerNetwork = network
        if let network {
            let h1 = network.widths[1], values = FloatBuffer(count: h1 * h1)
            firstGramValues = values
            firstGram = PackedMatrix(.none, b: values.pointer, ldb: h1, k: h1, n: h1)
        } else {
            firstGramValues = nil
            firstGram = nil
        }
    }

    /// Packs the sources' current values (after ``GaussNewtonRefinement/prepareGram()`` and
    /// ``GaussNewtonRefinement/prepareTransposedWeights()``), and forms and packs P from the
    /// network's current W₁.
    func repack() {
        lastWeightsTransposed.repack(from: sources.lastWeightsTransposed.pointer, ldb: h)
        root?.repack(from: sources.root.pointer, ldb: d)
        rootTransposed?.repack(from: sources.root.pointer, ldb: d)
        gram.repack(from: sources.gram.pointer, ldb: h)
        if let net = firstLayerNetwork, let values = firstGramValues, let firstGram {
            let L = net.widths[0], h1 = net.widths[1], w1 = UnsafePointer(net.parameters.pointer + net.weightOffsets[0])
            gemm(.transpose, .none, m: h1, n: h1, k: L, alpha: 1, a: w1, lda: h1, b: w1, ldb: h1, beta: 0, c: values.pointer, ldc: h1)
            firstGram.repack(from: values.pointer, ldb: h1)
        }
        if let net = preconditionedNet, let folded = firstBackwardPreconditionedValues, let packed = firstBackwardPreconditioned,
           let c = preconditionerValues {
            let L = net.widths[0], h1 = net.widths[1], w1 = UnsafePointer(net.parameters.pointer + net.weightOffsets[0])
            gemm(.transpose, .none, m: h1, n: L, k: L, alpha: 1, a: w1, lda: h1, b: c.pointer, ldb: L, beta: 0, c: folded.pointer, ldc: L)
            packed.repack(from: folded.pointer, ldb: L)
        }
    }
}

extension GaussNewtonRefinement {
    /// The relative ridge ε of ``curvaturePreconditioner(decoder:points:starts:ridge:rows:)``.
    public static let defaultPreconditionerRidge = 1e-2
    /// The most rows ``curvaturePreconditioner(decoder:points:starts:ridge:rows:)`` averages over.
    public static let defaultPreconditionerRows = 512

    /// A Krylov preconditioner for points like `x` (``krylovPreconditioner``): C = (H̄ + ε·t·I)⁻¹
    /// (|z| × |z|, row-major, symmetric positive definite), where H̄ is the mean over the first
    /// `rows` rows of x of the Gauss-Newton curvature H̃ = JᵀΛJ of the ReLU decoder at their
    /// starts (the means `starts`, rows × |z|; the reconstruction objective's curvature, without
    /// the prior), t = tr(H̄)/|z| its mean eigenvalue and ε = `ridge` (the ridge keeps C bounded
    /// in directions where no point's decoder bends). H̄ and the inverse in Double. nil when it
    /// cannot help or be formed: a linear decoder (no Krylov solve), no rows, a non-finite or
    /// zero curvature. C does not depend on which points are refined with it later, so each
    /// point's refinement stays independent of the others in its batch.
    public static func curvaturePreconditioner(decoder: GaussianDecoder, points x: Dataset, starts mu: [Float],
                                               ridge: Double = defaultPreconditionerRidge,
                                               rows: Int = defaultPreconditionerRows) -> [Float]? {
        let L = decoder.latent, n = min(x.rows, rows)
        precondition(mu.count >= n * L && x.cols == decoder.dataWidth, "curvaturePreconditioner: \(mu.count) start values for \(x.rows) rows of latent \(L)")
        precondition(ridge > 0, "curvaturePreconditioner: the ridge must be > 0, got \(ridge)")
        guard krylovApplies(to: decoder), n > 0 else { return nil }
        let subset = n == x.rows ? x : x.subset(Array(0..<n))
        let gn = GaussNewtonRefinement(decoder: decoder, smoothing: .off)
        let hessians = gn.linearization(subset, mu: Array(mu.prefix(n * L))).hessian
        var mean = [Double](repeating: 0, count: L * L)
        for k in 0..<n { for e in 0..<(L * L) { mean[e] += Double(hessians[k * L * L + e]) } }
        var trace = 0.0
        for e in 0..<(L * L) { mean[e] /= Double(n) }
        for j in 0..<L { trace += mean[j * L + j] }
        guard trace.isFinite, trace > 0, mean.allSatisfy(\.isFinite) else { return nil }
        for j in 0..<L { mean[j * L + j] += ridge * trace / Double(L) }
        // C = (H̄ + ε·t·I)⁻¹: Cholesky, then the identity's columns solved for.
        var inverse = [Double](repeating: 0, count: L * L)
        for j in 0..<L { inverse[j * L + j] = 1 }
        let ok = mean.withUnsafeMutableBufferPointer { a -> Bool in
            choleskyFactor(a.baseAddress!, n: L, pivotTolerance: 0)
            for j in 0..<L where a[j * L + j] == 0 { return false }
            inverse.withUnsafeMutableBufferPointer { b in choleskySubstituteMany(a.baseAddress!, b.baseAddress!, n: L, columns: L) }
            return true
        }
        guard ok else { return nil }
        // Symmetrized (the two sweeps round differently above and below the diagonal).
        var c = [Float](repeating: 0, count: L * L)
        for i in 0..<L { for j in 0..<L { c[i * L + j] = Float(0.5 * (inverse[i * L + j] + inverse[j * L + i])) } }
        return c.allSatisfy(\.isFinite) ? c : nil
    }

    /// Whether this run solves in Krylov subspaces in every iteration: ``krylovDimension`` > 0,
    /// a ReLU decoder and the reconstruction objective (σ at its floor; otherwise the exact
    /// solve). ``smoothedKrylovDimension`` alone does not count (see ``krylovDimension(smoothed:)``).
    var solvesInKrylovSubspace: Bool { krylovDimension > 0 && krylovApplies }

    /// Whether the Krylov solve can apply at all: a ReLU decoder and the reconstruction objective.
    var krylovApplies: Bool { GaussNewtonRefinement.krylovApplies(to: decoder) }

    /// ``krylovApplies`` for `decoder` (the reconstruction objective has β = 0, so σ stays at
    /// its floor and the Krylov solve leaves it out).
    static func krylovApplies(to decoder: GaussianDecoder) -> Bool {
        decoder.network.layerCount > 1 && decoder.objective.kind == .reconstruction
    }

    /// The slopes of every hidden unit of the chunk's m rows (``hiddenSlopes(layer:row:smoothed:workspace:into:)``), into kw.slopes.
    func krylovSlopes(rows m: Int, smoothed: Bool, workspace ws: GaussNewtonWorkspace, krylov kw: KrylovWorkspace) {
        let net = decoder.network, hiddenCount = net.layerCount - 1
        for l in 1..<net.layerCount {
            let w = net.widths[l], s = kw.slopes[l - 1].pointer
            if smoothed {
                // Every row at once (as hiddenSlopes row by row).
                VectorMath.softplusDerivativeRows(output: ws.network.activations[l - 1].pointer, s, rows: m, columns: w,
                                                  temperatures: ws.temperatures.pointer + (l - 1), stride: hiddenCount)
            } else {
                for k in 0..<m { hiddenSlopes(layer: l, row: k, smoothed: false, workspace: ws, into: s + k * w) }
            }
        }
    }

    /// Jᵀ_h applied to rows `u` (m × h, the last hidden layer's width; overwritten): through
    /// the hidden layers' slopes and weights (Wₗᵀ packed once per call, ``PackedWeights``) down
    /// to the latent, into `result` (m × |z|). `toFirstLayer`: stops before the last ·W₁ᵀ, with
    /// the first layer's slopes applied, so `result` (m × h₁) holds s with Jᵀ_h u = s·W₁ᵀ.
    /// `preconditioned`: the last product is with W₁ᵀC (``KrylovOperands/firstBackwardPreconditioned``),
    /// so `result` holds (Jᵀ_h u)·C.
    func krylovBackward(_ u: UnsafeMutablePointer<Float>, rows m: Int, result: UnsafeMutablePointer<Float>, workspace ws: GaussNewtonWorkspace,
                        krylov kw: KrylovWorkspace, toFirstLayer: Bool = false, preconditioned: Bool = false) {
        let net = decoder.network, layers = net.layerCount
        let packed = ws.network.packedBackward!
        let last = preconditioned ? krylovOperands!.firstBackwardPreconditioned!.operand : packed[0]
        var current = u, spare = kw.tangentA.pointer == u ? kw.tangentB.pointer : kw.tangentA.pointer
        for l in stride(from: layers - 1, through: 1, by: -1) {
            let w = net.widths[l], s = kw.slopes[l - 1].pointer
            if l == 1 && toFirstLayer {
                for e in 0..<(m * w) { result[e] = current[e] * s[e] }
                return
            }
            for e in 0..<(m * w) { current[e] *= s[e] }
            let out = l == 1 ? result : spare
            gemm(m: m, alpha: 1, a: current, lda: w, b: l == 1 ? last : packed[l - 1], beta: 0, c: out, ldc: net.widths[l - 1])
            if l > 1 { swap(&current, &spare) }
        }
    }

    /// Whether the Krylov products go through F (h × d) instead of G (h × h): d < h, so y·F and
    /// then (y·F)·Fᵀ cost 2hd ≤ h² a row, and M's entries are d-long dot products.
    var krylovThroughRoot: Bool { formsRootFactor && decoder.dataWidth < decoder.network.widths[decoder.network.layerCount - 1] }

    /// For rows v (m × |z|): y = J_h v, the tangent at the last hidden layer (m × h), w = y·G,
    /// and when `result` is given H̃v = Jᵀ_h w (m × |z|), with the slopes in `kw`. With
    /// `rootImage` (``krylovThroughRoot``): yF into it (m × d), and w = (yF)·Fᵀ formed, only
    /// when `result` is given, in `kw`'s scratch (`gramImage` is not written). `fromFirstLayer`:
    /// v (m × h₁) is already v′·W₁ for the latent rows v′ meant (in the first layer's space,
    /// s·P), and `result` (m × h₁) is s with H̃v′ = s·W₁ᵀ (``krylovBackward(_:rows:result:workspace:krylov:toFirstLayer:preconditioned:)``).
    /// `preconditioned`: `result` is (H̃v)·C, the preconditioner folded into the backward pass.
    func krylovProduct(_ v: UnsafePointer<Float>, rows m: Int, image y: UnsafeMutablePointer<Float>,
                       gramImage w: UnsafeMutablePointer<Float>, rootImage: UnsafeMutablePointer<Float>? = nil,
                       result: UnsafeMutablePointer<Float>?, workspace ws: GaussNewtonWorkspace,
                       krylov kw: KrylovWorkspace, fromFirstLayer: Bool = false, preconditioned: Bool = false) {
        let net = decoder.network, layers = net.layerCount, h = net.widths[layers - 1]
        let packed = ws.network.packedForward!
        var input = v, spare = kw.tangentA.pointer, other = kw.tangentB.pointer
        for l in 1..<layers {
            let nIn = net.widths[l - 1], nOut = net.widths[l], s = kw.slopes[l - 1].pointer
            let out = l == layers - 1 ? y : spare
            if l == 1 && fromFirstLayer {
                for e in 0..<(m * nOut) { out[e] = input[e] * s[e] }
            } else {
                gemm(m: m, alpha: 1, a: input, lda: nIn, b: packed[l - 1], beta: 0, c: out, ldc: nOut)
                for e in 0..<(m * nOut) { out[e] *= s[e] }
            }
            input = UnsafePointer(out)
            swap(&spare, &other)
        }
        let ops = krylovOperands!, u = kw.tangentA.pointer
        if let rootImage {
            // w is not kept (M reads the rows yF): it is formed where the backward pass starts.
            let d = decoder.dataWidth
            gemm(m: m, alpha: 1, a: y, lda: h, b: ops.root!.operand, beta: 0, c: rootImage, ldc: d)
            guard let result else { return }
            gemm(m: m, alpha: 1, a: rootImage, lda: d, b: ops.rootTransposed!.operand, beta: 0, c: u, ldc: h)
            krylovBackward(u, rows: m, result: result, workspace: ws, krylov: kw, toFirstLayer: fromFirstLayer, preconditioned: preconditioned)
            return
        }
        gemm(m: m, alpha: 1, a: y, lda: h, b: ops.gram.operand, beta: 0, c: w, ldc: h)
        if let result {
            u.update(from: w, count: m * h)
            krylovBackward(u, rows: m, result: result, workspace: ws, krylov: kw, toFirstLayer: fromFirstLayer, preconditioned: preconditioned)
        }
    }

    /// The Krylov linearization of the chunk's m points (after ``measureChunk``: Λr in
    /// ws.residual, activations in ws.network): slopes, JᵀΛr into ws.gradient, and per point an
    /// orthonormal basis Q of span{g, H̃g, …, H̃ᵏ⁻¹g, p} (Arnoldi, modified Gram-Schmidt in
    /// Double; a vector whose part orthogonal to the earlier ones is below 10⁻⁶ of its norm is
    /// dropped), with M = QᵀH̃Q and b = Qᵀg. p is the point's last accepted step (none after a
    /// rejection or at the start, nor in a smoothed iteration without
    /// ``smoothedKrylovLastStep``: its basis vector is then dropped for every point). A smoothed
    /// iteration with ``smoothedKrylovInFirstLayer`` takes
    /// ``krylovLinearizeInFirstLayer(rows:workspace:krylov:)`` instead.
    /// `vectors` (≤ the workspace's k; the basis in ℝ^|z| only): take only g, …, H̃^(vectors−1)g,
    /// the workspace's later Krylov vectors dropped for every point.
    func krylovLinearize(rows m: Int, smoothed: Bool, state st: PointState, workspace ws: GaussNewtonWorkspace, krylov kw: KrylovWorkspace,
                         vectors: Int? = nil) {
        if smoothed && smoothedKrylovInFirstLayer {
            krylovLinearizeInFirstLayer(rows: m, workspace: ws, krylov: kw)
            return
        }
        kw.inFirstLayer = false
        let L = decoder.latent
        let k = kw.dimension, n = k + 1, M = kw.maxPoints, idx = ws.index
        let grad = ws.gradient.pointer
        krylovGradient(rows: m, smoothed: smoothed, into: grad, toFirstLayer: false, workspace: ws, krylov: kw)
        let basis = kw.basis.pointer, kept = kw.kept
        func q(_ a: Int, _ row: Int) -> UnsafeMutablePointer<Float> { basis + (a * M + row) * L }
        // Appends the rows `source(r)` (Float, |z|; nil: none, a zero vector) as basis vector a
        // of rows 0..<m after orthogonalizing each against its point's earlier ones (modified
        // Gram-Schmidt in Double), eight points at a time, one per SIMD lane (no horizontal
        // sums); a nearly dependent vector is dropped (zero, not kept). A dropped earlier
        // vector is zero and takes nothing off.
        let W = KrylovWorkspace.lanes
        func append(_ a: Int, source: (Int) -> UnsafePointer<Float>?) {
            var g0 = 0
            while g0 < m {
                let count = min(W, m - g0), lanes = kw.laneBasis + (g0 / W) * n * L, work = kw.laneWork
                // Lane p of work[j] is element j of row p (scalar stores into the lane layout).
                work.update(repeating: SIMD8(), count: L)
                let raw = UnsafeMutableRawPointer(work)
                for p in 0..<count {
                    guard let row = source(g0 + p) else { continue }
                    for j in 0..<L { raw.storeBytes(of: Double(row[j]), toByteOffset: (j * W + p) * 8, as: Double.self) }
                }
                let norm0 = GaussNewtonRefinement.laneDot(work, work, count: L)
                for b in 0..<a {
                    let qb = UnsafePointer(lanes + b * L)
                    let c = GaussNewtonRefinement.laneDot(work, qb, count: L)
                    let f = GaussNewtonRefinement.negated(c)
                    for j in 0..<L { work[j] = work[j].addingProduct(f, qb[j]) }
                }
                let norm = GaussNewtonRefinement.laneDot(work, work, count: L)
                let keep = (norm0 .> 0) .& (norm .< SIMD8<Double>(repeating: .infinity)) .& (norm .> 1e-12 * norm0)
                // A dropped vector is stored as zeros (even from a non-finite input).
                let inv = 1 / norm.squareRoot(), qa = lanes + a * L, zero = SIMD8<Double>(), dropped = .!keep
                for j in 0..<L { qa[j] = (work[j] * inv).replacing(with: zero, where: dropped) }
                let qr = UnsafeRawPointer(qa)
                for p in 0..<count {
                    let out = q(a, g0 + p)
                    for j in 0..<L { out[j] = Float(qr.load(fromByteOffset: (j * W + p) * 8, as: Double.self)) }
                    kept[a * M + g0 + p] = keep[p]
                }
                g0 += count
            }
        }
        // q₀ = g/‖g‖; qⱼ₊₁ from H̃qⱼ; the images of q₀ … q_{k−1} come with those products. With a
        // preconditioner C: from Cg (rows times C, which is symmetric) and (H̃qⱼ)·C, which the
        // product's backward pass gives directly (its last factor W₁ᵀC).
        let product = kw.product.pointer, conditioned = kw.preconditioned.pointer
        let preconditioner = krylovOperands?.preconditioner
        if let preconditioner {
            gemm(m: m, alpha: 1, a: grad, lda: L, b: preconditioner.operand, beta: 0, c: conditioned, ldc: L)
            append(0) { UnsafePointer(conditioned + $0 * L) }
        } else {
            append(0) { UnsafePointer(grad + $0 * L) }
        }
        let used = min(k, max(1, vectors ?? k))
        for a in 0..<used {
            let last = a == used - 1
            krylovProduct(q(a, 0), rows: m, image: kw.image(a), gramImage: kw.gramImage(a), rootImage: kw.rootImage(a), result: last ? nil : product,
                          workspace: ws, krylov: kw, preconditioned: preconditioner != nil)
            if last { break }
            append(a + 1) { UnsafePointer(product + $0 * L) }
        }
        // The Krylov vectors not taken: dropped (zero in the lanes, so the last step's
        // orthogonalization takes nothing off for them).
        if used < k {
            var g0 = 0
            while g0 < m {
                let lanes = kw.laneBasis + (g0 / W) * n * L
                (lanes + used * L).update(repeating: SIMD8(), count: (k - used) * L)
                g0 += W
            }
            for a in used..<k { for r in 0..<m { kept[a * M + r] = false } }
        }
        // The last step p, orthogonalized against the Krylov vectors (or dropped for every point).
        if smoothed && !smoothedKrylovLastStep {
            for r in 0..<m { kept[k * M + r] = false }
        } else {
            append(k) { r in
                let i = idx[r]
                guard let last = st.lastStep, st.hasLastStep![i] else { return nil }
                return UnsafePointer(last + i * L)
            }
        }
        var anyLast = false
        for r in 0..<m { anyLast = anyLast || kept[k * M + r] }
        if anyLast {
            krylovProduct(q(k, 0), rows: m, image: kw.image(k), gramImage: kw.gramImage(k), rootImage: kw.rootImage(k), result: nil, workspace: ws, krylov: kw)
        }
        // b = Qᵀg, then M.
        for r in 0..<m {
            let br = kw.projectedGradient + r * n, g = grad + r * L
            for a in 0..<n { br[a] = kept[a * M + r] ? Elementwise.dot(q(a, r), g, count: L) : 0 }
        }
        krylovProjectedCurvature(rows: m, krylov: kw)
    }

    /// The slopes of the chunk's m rows into `kw`, and their gradient g = Jᵀ_h (Λr·W_Lᵀ) (Λr in
    /// ws.residual) into `result`: m × |z|, or with `toFirstLayer` the rows ρ (m × h₁) with
    /// g = ρ·W₁ᵀ; whether each row is finite into kw.finiteGradient.
    func krylovGradient(rows m: Int, smoothed: Bool, into result: UnsafeMutablePointer<Float>, toFirstLayer: Bool,
                        workspace ws: GaussNewtonWorkspace, krylov kw: KrylovWorkspace) {
        let net = decoder.network, d = decoder.dataWidth, h = net.widths[net.layerCount - 1]
        let width = toFirstLayer ? net.widths[1] : decoder.latent
        krylovSlopes(rows: m, smoothed: smoothed, workspace: ws, krylov: kw)
        let u = kw.tangentA.pointer
        gemm(m: m, alpha: 1, a: ws.residual.pointer, lda: d, b: krylovOperands!.lastWeightsTransposed.operand, beta: 0, c: u, ldc: h)
        krylovBackward(u, rows: m, result: result, workspace: ws, krylov: kw, toFirstLayer: toFirstLayer)
        for r in 0..<m { kw.finiteGradient[r] = Elementwise.allFinite(result + r * width, count: width) }
    }

    /// ``krylovLinearize(rows:smoothed:state:workspace:krylov:)`` of a smoothed iteration with
    /// the basis in the first hidden layer's space (``smoothedKrylovInFirstLayer``): the same
    /// span{g, H̃g, …, H̃ᵏ⁻¹g} (no last step), each vector qₐ = sₐ·W₁ᵀ held as sₐ (h₁) and its
    /// image sₐ·P (P = W₁ᵀW₁), orthonormal in ⟨s, s′⟩ = s·P·s′ᵀ = q·q′ᵀ: Gram-Schmidt on each
    /// point's Float rows (in blocks of four, twice) against the earlier images, then the image
    /// of the orthogonalized rows by one product with P (one per vector, as H̃'s products need
    /// anyway), and both scaled. g = ρ·W₁ᵀ is not formed: b = Qᵀg has bₐ = (sₐ·P)·ρ. A vector
    /// whose P-norm falls below 10⁻⁴ of its norm before the orthogonalization is dropped.
    /// Writes kw.firstGradient (ρ), firstBasis, firstImages, images, kept, M, b and finiteGradient;
    /// ws.gradient is not written.
    func krylovLinearizeInFirstLayer(rows m: Int, workspace ws: GaussNewtonWorkspace, krylov kw: KrylovWorkspace) {
        let h1 = decoder.network.widths[1]
        let k = kw.dimension, n = k + 1, M = kw.maxPoints
        precondition(kw.firstWidth == h1, "krylovLinearizeInFirstLayer: the workspace holds no first-layer basis")
        kw.inFirstLayer = true
        let firstGram = krylovOperands!.firstGram!.operand
        // ρ: g = Jᵀ_h (Λr·W_Lᵀ) = ρ·W₁ᵀ.
        let rho = kw.firstGradient.pointer
        krylovGradient(rows: m, smoothed: true, into: rho, toFirstLayer: true, workspace: ws, krylov: kw)
        let kept = kw.kept
        func s(_ a: Int) -> UnsafeMutablePointer<Float> { kw.firstBasis.pointer + a * M * h1 }
        func sP(_ a: Int) -> UnsafeMutablePointer<Float> { kw.firstImages.pointer + a * M * h1 }
        // Basis vector a from the rows `raw` (m × h₁): each orthogonalized in ⟨·,·⟩_P against its
        // point's earlier vectors (Gram-Schmidt in blocks of four, twice: ⟨v, s_b⟩_P = v·(s_b·P)
        // with the earlier images), its image s·P taken by one product for all rows, then both
        // scaled to P-norm 1; dropped (zeros, not kept) where the P-norm fell below 10⁻⁴ of the
        // norm before (‖raw‖²_P = ‖s‖²_P + Σ c_b² by Pythagoras) or is not finite.
        func append(_ a: Int, raw: UnsafePointer<Float>) {
            for r in 0..<m {
                let v = s(a) + r * h1
                v.update(from: raw + r * h1, count: h1)
                var removed = 0.0
                for pass in 0..<2 {
                    var b0 = 0
                    while b0 < a {
                        func earlier(_ t: Int) -> UnsafePointer<Float> { UnsafePointer(sP(min(b0 + t, a - 1)) + r * h1) }
                        let c = GaussNewtonRefinement.fourDots(v, earlier(0), earlier(1), earlier(2), earlier(3), count: h1)
                        for t in 0..<min(4, a - b0) {
                            Elementwise.axpy(Float(-c[t]), s(b0 + t) + r * h1, v, count: h1)
                            if pass == 0 { removed += c[t] * c[t] }
                        }
                        b0 += 4
                    }
                }
                kw.removedSquares[r] = removed
            }
            gemm(m: m, alpha: 1, a: s(a), lda: h1, b: firstGram, beta: 0, c: sP(a), ldc: h1)
            for r in 0..<m {
                let v = s(a) + r * h1, pv = sP(a) + r * h1
                let norm = Elementwise.dot(v, pv, count: h1), norm0 = norm + kw.removedSquares[r]
                let keep = norm > 0 && norm.isFinite && norm > 1e-8 * norm0
                if keep {
                    let f = Float(1 / norm.squareRoot())
                    Elementwise.scale(v, by: f, count: h1)
                    Elementwise.scale(pv, by: f, count: h1)
                } else {
                    v.update(repeating: 0, count: h1)
                    pv.update(repeating: 0, count: h1)
                }
                kept[a * M + r] = keep
            }
        }
        append(0, raw: rho)
        let product = kw.product.pointer
        for a in 0..<k {
            let last = a == k - 1
            krylovProduct(sP(a), rows: m, image: kw.image(a), gramImage: kw.gramImage(a), rootImage: kw.rootImage(a), result: last ? nil : product,
                          workspace: ws, krylov: kw, fromFirstLayer: true)
            if last { break }
            append(a + 1, raw: product)
        }
        for r in 0..<m { kept[k * M + r] = false }
        // b = Qᵀg: bₐ = qₐ·g = (sₐ·P)·ρ.
        for r in 0..<m {
            let br = kw.projectedGradient + r * n, g = rho + r * h1
            for a in 0..<n { br[a] = kept[a * M + r] ? Elementwise.dot(sP(a) + r * h1, g, count: h1) : 0 }
        }
        krylovProjectedCurvature(rows: m, krylov: kw)
    }

    /// M = QᵀH̃Q = (J_h Q)ᵀ G (J_h Q) (or, through F, the Gram matrix of the rows yF) of each of
    /// the chunk's m points over its kept basis vectors, from their images in `kw`, the lower
    /// triangle formed and mirrored; zero rows and columns for the dropped vectors.
    func krylovProjectedCurvature(rows m: Int, krylov kw: KrylovWorkspace) {
        let net = decoder.network, d = decoder.dataWidth, h = net.widths[net.layerCount - 1]
        let n = kw.dimension + 1, M = kw.maxPoints, kept = kw.kept
        let throughRoot = krylovThroughRoot
        for r in 0..<m {
            let mr = kw.projected + r * n * n
            for a in 0..<n {
                guard kept[a * M + r] else {
                    for b in 0..<n { mr[a * n + b] = 0; mr[b * n + a] = 0 }
                    continue
                }
                // M[a, b] for the kept b ≤ a (M is symmetric: the lower triangle is formed and
                // mirrored): yₐ·w_b = yₐᵀG y_b through G, or (yₐF)·(y_bF) through F; four partners
                // b at a time (a short last group repeats its first).
                let length = throughRoot ? d : h
                func left(_ b: Int) -> UnsafePointer<Float> { UnsafePointer(throughRoot ? kw.rootImage(b)! + r * d : kw.image(b) + r * h) }
                func right(_ b: Int) -> UnsafePointer<Float> { UnsafePointer(throughRoot ? kw.rootImage(b)! + r * d : kw.gramImage(b) + r * h) }
                let x = left(a)
                var e = 0
                for b in 0...a where kept[b * M + r] { kw.partners[e] = b; e += 1 }
                var c0 = 0
                while c0 < e {
                    func w(_ t: Int) -> UnsafePointer<Float> { right(kw.partners[min(c0 + t, e - 1)]) }
                    let v = GaussNewtonRefinement.fourDots(x, w(0), w(1), w(2), w(3), count: length)
                    for t in 0..<min(4, e - c0) { let b = kw.partners[c0 + t]; mr[a * n + b] = v[t]; mr[b * n + a] = v[t] }
                    c0 += 4
                }
            }
        }
    }

    /// δ of each pending point (row q of ws.deltas) in its Krylov basis: c solves
    /// (M + λ·diag(M) + λ₀·I) c = b over the kept basis vectors, δ = Qc; and the damped model's
    /// predicted decrease perD·(cᵀb + cᵀ(λ·diag(M) + λ₀·I)c) into kw.predicted[q] (as
    /// ``predictedDecrease(delta:gradient:mu:hessian:damping:beta:perD:)`` in the basis).
    /// Eight points at a time, one per SIMD lane (the last group padded by repeating its first
    /// point), with ``choleskyFactorLanes(_:n:pivotTolerance:)`` and
    /// ``choleskySubstituteLanes(_:_:n:)``: a dropped basis vector has a zero row and column
    /// and no λ₀, so its pivot freezes and its coefficient is 0.
    func solveInKrylovSubspace(pendingCount: Int, perD: Double, state st: PointState, workspace ws: GaussNewtonWorkspace, krylov kw: KrylovWorkspace) {
        let L = decoder.latent, n = kw.dimension + 1, M = kw.maxPoints, idx = ws.index, W = KrylovWorkspace.lanes
        let a = kw.laneSystem, rhs = kw.laneRightHandSide, firstLayer = kw.inFirstLayer
        let aRaw = UnsafeMutableRawPointer(a), rhsRaw = UnsafeMutableRawPointer(rhs)
        var q0 = 0
        while q0 < pendingCount {
            let g = min(W, pendingCount - q0)
            // Lane p holds pending point q0 + p's system: the lower triangle and diagonal of
            // M + λ·diag(M) + λ₀·I (M symmetric), written lane element by lane element.
            var largest = SIMD8<Double>()
            for p in 0..<W {
                let r = ws.pending[q0 + (p < g ? p : 0)], lam = st.damping[idx[r]]
                let mr = kw.projected + r * n * n, br = kw.projectedGradient + r * n
                var big = 0.0
                for i in 0..<n {
                    for j in 0..<i { aRaw.storeBytes(of: mr[i * n + j], toByteOffset: ((i * n + j) * W + p) * 8, as: Double.self) }
                    let v = mr[i * n + i] + lam * mr[i * n + i] + (kw.kept[i * M + r] ? absoluteDamping : 0)
                    aRaw.storeBytes(of: v, toByteOffset: ((i * n + i) * W + p) * 8, as: Double.self)
                    big = max(big, v)
                    rhsRaw.storeBytes(of: br[i], toByteOffset: (i * W + p) * 8, as: Double.self)
                }
                largest[p] = big
            }
            GaussNewtonRefinement.choleskyFactorLanes(a, n: n, pivotTolerance: GaussNewtonRefinement.relativePivotTolerance * largest)
            GaussNewtonRefinement.choleskySubstituteLanes(a, rhs, n: n)
            for p in 0..<g {
                let qIndex = q0 + p, r = ws.pending[qIndex], lam = st.damping[idx[r]]
                let mr = kw.projected + r * n * n, br = kw.projectedGradient + r * n
                @inline(__always) func c(_ i: Int) -> Double { rhsRaw.load(fromByteOffset: (i * W + p) * 8, as: Double.self) }
                var predicted = 0.0
                for i in 0..<n where kw.kept[i * M + r] {
                    let ci = c(i)
                    predicted += ci * br[i] + ci * ci * (lam * mr[i * n + i] + absoluteDamping)
                }
                kw.predicted[qIndex] = perD * predicted
                // Σ cᵢ·(basis vector i) in Double: δ = Qc itself, or in the first layer's space
                // Σ cₐsₐ, rounded into row qIndex of kw.combination (δ = (Σ cₐsₐ)·W₁ᵀ below).
                let width = firstLayer ? kw.firstWidth : L, rows = firstLayer ? kw.firstBasis.pointer : kw.basis.pointer
                let sum = firstLayer ? kw.combinationSum : ws.deltas + qIndex * L
                for j in 0..<width { sum[j] = 0 }
                for i in 0..<n where kw.kept[i * M + r] {
                    let ci = c(i)
                    if ci == 0 { continue }
                    let row = rows + (i * M + r) * width
                    for j in 0..<width { sum[j] += ci * Double(row[j]) }
                }
                if firstLayer {
                    let out = kw.combination.pointer + qIndex * width
                    for j in 0..<width { out[j] = Float(sum[j]) }
                }
            }
            q0 += g
        }
        if firstLayer {
            let h1 = kw.firstWidth, out = kw.firstDeltas.pointer
            gemm(m: pendingCount, alpha: 1, a: kw.combination.pointer, lda: h1, b: ws.network.packedBackward![0], beta: 0, c: out, ldc: L)
            for e in 0..<(pendingCount * L) { ws.deltas[e] = Double(out[e]) }
        }
    }

    /// x·w₀, x·w₁, x·w₂, x·w₃ over `count` elements: Float products summed in 16-wide Float
    /// accumulators (as ``Elementwise/dot(_:_:count:)``), four independent sums sharing x's loads.
    @inline(__always)
    static func fourDots(_ x: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>,
                         _ w2: UnsafePointer<Float>, _ w3: UnsafePointer<Float>, count: Int) -> SIMD4<Double> {
        @inline(__always) func load(_ p: UnsafePointer<Float>, _ t: Int) -> SIMD16<Float> {
            UnsafeRawPointer(p + t).loadUnaligned(as: SIMD16<Float>.self)
        }
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
        var t = 0
        while t + 16 <= count {
            let v = load(x, t)
            s0 = s0.addingProduct(v, load(w0, t)); s1 = s1.addingProduct(v, load(w1, t))
            s2 = s2.addingProduct(v, load(w2, t)); s3 = s3.addingProduct(v, load(w3, t))
            t += 16
        }
        var r = SIMD4<Double>(Double(s0.sum()), Double(s1.sum()), Double(s2.sum()), Double(s3.sum()))
        while t < count {
            let v = x[t]
            r += SIMD4<Double>(Double(v * w0[t]), Double(v * w1[t]), Double(v * w2[t]), Double(v * w3[t]))
            t += 1
        }
        return r
    }

    /// Σ x[j]·y[j] lane by lane over `count` lane vectors (four accumulators, then summed).
    @inline(__always)
    static func laneDot(_ x: UnsafePointer<SIMD8<Double>>, _ y: UnsafePointer<SIMD8<Double>>, count: Int) -> SIMD8<Double> {
        var a0 = SIMD8<Double>(), a1 = SIMD8<Double>(), a2 = SIMD8<Double>(), a3 = SIMD8<Double>()
        var j = 0
        while j + 4 <= count {
            a0 = a0.addingProduct(x[j], y[j]); a1 = a1.addingProduct(x[j + 1], y[j + 1])
            a2 = a2.addingProduct(x[j + 2], y[j + 2]); a3 = a3.addingProduct(x[j + 3], y[j + 3])
            j += 4
        }
        while j < count { a0 = a0.addingProduct(x[j], y[j]); j += 1 }
        return (a0 + a1) + (a2 + a3)
    }
}
