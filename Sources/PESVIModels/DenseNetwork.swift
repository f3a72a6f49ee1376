import PESVINumerics

/// A multilayer perceptron: dense layers with ReLU between them and a linear output.
///
///     a₀ = x  (rows × widths[0])
///     aₗ = ReLU(aₗ₋₁ · Wₗ + bₗ)   for l = 1 … L−1
///     y  = a_{L−1} · W_L + b_L    (rows × widths[L]),   L = widths.count − 1
///
/// Wₗ is stored row-major as widths[l−1] × widths[l] (inputs × outputs), followed by bₗ.
/// All weights and biases live in one contiguous `parameters` buffer, in layer order, so an
/// optimizer updates the whole network in one loop and gradients share the same layout.
public final class DenseNetwork: @unchecked Sendable, CustomStringConvertible {
    /// Layer widths, input first: [in, h₁, …, out].
    public let widths: [Int]
    /// Weights and biases of every layer, in layer order (W₁, b₁, W₂, b₂, …).
    public let parameters: FloatBuffer
    /// Offset of Wₗ (index l−1) in `parameters`.
    public let weightOffsets: [Int]
    /// Offset of bₗ (index l−1) in `parameters`.
    public let biasOffsets: [Int]

    public var inputWidth: Int { widths[0] }
    public var outputWidth: Int { widths[widths.count - 1] }
    public var layerCount: Int { widths.count - 1 }
    public var parameterCount: Int { parameters.count }

    /// A network with the given widths; weights and biases ~ U(−1/√in, 1/√in) per layer
    /// (PyTorch's `nn.Linear` default), drawn from `rng`.
    public init(widths: [Int], rng: inout RandomGenerator) {
        precondition(widths.count >= 2 && widths.allSatisfy { $0 > 0 },
                     "DenseNetwork needs at least two positive widths, got \(widths)")
        self.widths = widths
        var w: [Int] = [], b: [Int] = [], offset = 0
        for l in 1..<widths.count {
            w.append(offset); offset += widths[l - 1] * widths[l]
            b.append(offset); offset += widths[l]
        }
        weightOffsets = w
        biasOffsets = b
        parameters = FloatBuffer(count: offset)
        for l in 1..<widths.count {
            let bound = 1 / Float(widths[l - 1]).squareRoot()
            rng.fillUniform(parameters.pointer + w[l - 1], count: widths[l - 1] * widths[l], low: -bound, high: bound)
            rng.fillUniform(parameters.pointer + b[l - 1], count: widths[l], low: -bound, high: bound)
        }
    }

    /// A network with the given widths and parameter values (e.g. loaded from a checkpoint).
    public convenience init(widths: [Int], parameters values: [Float]) {
        var rng = RandomGenerator(seed: 0)
        self.init(widths: widths, rng: &rng)
        precondition(values.count == parameterCount,
                     "DenseNetwork \(widths) has \(parameterCount) parameters, got \(values.count)")
        parameters.assign(values)
    }

    /// An independent copy with the same widths and parameter values.
    public func copy() -> DenseNetwork { DenseNetwork(widths: widths, parameters: parameters.array) }

    public var description: String {
        "DenseNetwork(\(widths.map(String.init).joined(separator: "→")), \(parameterCount) parameters, ReLU)"
    }

    /// Forward pass over `rows` input rows (x is rows × inputWidth, packed). Returns the
    /// output (rows × outputWidth) inside `workspace`, valid until its next use.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace) -> UnsafeMutablePointer<Float> {
        forward(x, rows: rows, workspace: ws, layers: layerCount)
        return ws.activations[layerCount - 1].pointer
    }

    /// Forward pass through the first `layers` layers only (0 ≤ layers ≤ layerCount). Returns
    /// their output, rows × widths[layers] (after the ReLU for a hidden layer): inside
    /// `workspace`, or `x` itself when `layers` is 0.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace, layers: Int) -> UnsafePointer<Float> {
        forward(x, rows: rows, workspace: ws, layers: layers, temperatures: nil, temperatureStride: 0)
    }

    /// Forward pass with smoothed hidden activations: row r of hidden layer l (1 ≤ l < layerCount)
    /// is the softplus at temperature τ = `temperatures[r·temperatureStride + l − 1]`,
    /// τ·log(1 + e^{a/τ}) (``VectorMath/softplus(_:temperature:_:count:)``), and the ReLU where
    /// τ ≤ 0 (so all-zero temperatures give exactly ``forward(_:rows:workspace:)``). The output
    /// layer stays linear. Returns the output (rows × outputWidth) inside `workspace`; the
    /// hidden outputs s it keeps have derivative 1 − e^{−s/τ} with respect to their
    /// pre-activations (``VectorMath/softplusDerivative(output:temperature:_:count:)``). The
    /// backward passes and Jacobian-vector products assume ReLU layers: not to be used after this pass.
    @discardableResult
    public func forward(_ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace,
                        temperatures: UnsafePointer<Float>, temperatureStride: Int) -> UnsafeMutablePointer<Float> {
        precondition(temperatureStride >= layerCount - 1, "forward: temperature stride \(temperatureStride) < \(layerCount - 1) hidden layers")
        forward(x, rows: rows, workspace: ws, layers: layerCount, temperatures: temperatures, temperatureStride: temperatureStride)
        return ws.activations[layerCount - 1].pointer
    }

    @discardableResult
    func forward(_ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace, layers: Int,
                 temperatures: UnsafePointer<Float>?, temperatureStride: Int) -> UnsafePointer<Float> {
        precondition(rows <= ws.maxRows, "forward: \(rows) rows exceed the workspace's \(ws.maxRows)")
        precondition(layers >= 0 && layers <= layerCount, "forward: \(layers) layers of \(layerCount)")
        precondition(ws.packedNetworkParameters == nil || ws.packedNetworkParameters == UnsafePointer(parameters.pointer),
                     "forward: the workspace's packed weights are another network's")
        let p = parameters.pointer
        var input = x
        for l in stride(from: 1, through: layers, by: 1) {
            let out = ws.activations[l - 1].pointer
            let nIn = widths[l - 1], nOut = widths[l]
            if let packed = ws.packedForward {
                gemm(m: rows, alpha: 1, a: input, lda: nIn, b: packed[l - 1], beta: 0, c: out, ldc: nOut)
            } else {
                gemm(.none, .none, m: rows, n: nOut, k: nIn, alpha: 1, a: input, lda: nIn,
                     b: p + weightOffsets[l - 1], ldb: nOut, beta: 0, c: out, ldc: nOut)
            }
            Elementwise.addBias(p + biasOffsets[l - 1], to: out, rows: rows, cols: nOut)
            if l < layerCount {
                if let temperatures {
                    VectorMath.softplusRows(out, rows: rows, columns: nOut, temperatures: temperatures + (l - 1), stride: temperatureStride)
                } else {
                    Elementwise.reluForward(out, count: rows * nOut)
                }
            }
            input = UnsafePointer(out)
        }
        return input
    }

    /// Backward pass after ``forward(_:rows:workspace:)`` on the same `x`, `rows`, `workspace`.
    ///
    /// - `outputGradient`: ∂L/∂y (rows × outputWidth); read only. Must not be workspace memory.
    /// - `parameterGradients`: if non-nil, receives ∂L/∂θ in the layout of `parameters`,
    ///   added to what is there when `accumulate`, else overwriting it.
    /// - `inputGradient`: if non-nil, receives ∂L/∂x (rows × inputWidth), overwritten.
    public func backward(
        _ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace,
        outputGradient: UnsafeMutablePointer<Float>,
        parameterGradients: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
        inputGradient: UnsafeMutablePointer<Float>?
    ) {
        backwardLayers(from: layerCount, x, rows: rows, workspace: ws, gradient: outputGradient,
                       parameterGradients: parameterGradients, accumulate: accumulate, inputGradient: inputGradient)
    }

    /// ∂L/∂x from ∂L/∂a_k, the output of hidden layer k (1 ≤ k < layerCount, after its ReLU),
    /// after ``forward(_:rows:workspace:layers:)`` with at least k layers on the same `x`,
    /// `rows`, `workspace`. `hiddenGradient` (rows × widths[k]) is overwritten (it becomes the
    /// gradient of layer k's pre-activation); it must not be workspace memory. `inputGradient`
    /// (rows × inputWidth) is overwritten. No parameter gradients.
    public func inputGradient(fromHidden k: Int, _ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace,
                              hiddenGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>) {
        precondition(k >= 1 && k < layerCount, "inputGradient(fromHidden:): layer \(k) is not a hidden layer of \(layerCount)")
        Elementwise.reluBackward(output: ws.activations[k - 1].pointer, gradient: hiddenGradient, count: rows * widths[k])
        backwardLayers(from: k, x, rows: rows, workspace: ws, gradient: hiddenGradient,
                       parameterGradients: nil, accumulate: false, inputGradient: inputGradient)
    }

    /// Jacobian-vector product J·u of the network at the inputs of the last
    /// ``forward(_:rows:workspace:)`` on the same `workspace` and `rows`: for each row, the
    /// derivative of the output along the input direction u (rows × inputWidth), written to
    /// `output` (rows × outputWidth; must not be workspace memory). Linear in u, biases play no
    /// part; each ReLU passes the direction where its forward output was positive (the mask
    /// ``backward(_:rows:workspace:outputGradient:parameterGradients:accumulate:inputGradient:)``
    /// uses). Costs about one forward pass.
    ///
    /// `layers` < `layerCount` stops after that many layers: `output` (rows × widths[layers])
    /// then holds the derivative of layer `layers`' activations (ReLU-masked) along u, i.e. the
    /// last hidden layer's for `layerCount − 1`, which the output layer W maps to J·u = v·W (for
    /// 0 layers, u itself).
    public func jacobianVectorProduct(_ u: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace,
                                      output: UnsafeMutablePointer<Float>, layers: Int? = nil) {
        precondition(rows <= ws.maxRows, "jacobianVectorProduct: \(rows) rows exceed the workspace's \(ws.maxRows)")
        precondition(ws.differentiable, "jacobianVectorProduct: a forward-only workspace")
        precondition(ws.packedNetworkParameters == nil || ws.packedNetworkParameters == UnsafePointer(parameters.pointer),
                     "jacobianVectorProduct: the workspace's packed weights are another network's")
        let through = layers ?? layerCount
        precondition(through >= 0 && through <= layerCount, "jacobianVectorProduct: \(through) layers of \(layerCount)")
        guard through > 0 else { output.update(from: u, count: rows * widths[0]); return }
        let p = parameters.pointer
        var v = u
        var useA = true
        for l in 1...through {
            let nIn = widths[l - 1], nOut = widths[l]
            let out = l == through ? output : (useA ? ws.gradientA.pointer : ws.gradientB.pointer)
            useA.toggle()
            if let packed = ws.packedForward {
                gemm(m: rows, alpha: 1, a: v, lda: nIn, b: packed[l - 1], beta: 0, c: out, ldc: nOut)
            } else {
                gemm(.none, .none, m: rows, n: nOut, k: nIn, alpha: 1, a: v, lda: nIn,
                     b: p + weightOffsets[l - 1], ldb: nOut, beta: 0, c: out, ldc: nOut)
            }
            if l < layerCount {
                Elementwise.reluBackward(output: ws.activations[l - 1].pointer, gradient: out, count: rows * nOut)
            }
            v = UnsafePointer(out)
        }
    }

    /// Backward through layers `top` … 1, from `gradient`, ∂L/∂(pre-activation of layer `top`).
    private func backwardLayers(from top: Int, _ x: UnsafePointer<Float>, rows: Int, workspace ws: NetworkWorkspace,
                                gradient: UnsafeMutablePointer<Float>,
                                parameterGradients: UnsafeMutablePointer<Float>?, accumulate: Bool,
                                inputGradient: UnsafeMutablePointer<Float>?) {
        precondition(ws.differentiable, "backward: a forward-only workspace")
        precondition(ws.packedNetworkParameters == nil || ws.packedNetworkParameters == UnsafePointer(parameters.pointer),
                     "backward: the workspace's packed weights are another network's")
        let p = parameters.pointer
        var g = gradient
        var useA = true  // the scratch buffer that receives the next ∂L/∂aₗ₋₁ (ping-pong)
        for l in stride(from: top, through: 1, by: -1) {
            let nIn = widths[l - 1], nOut = widths[l]
            let input: UnsafePointer<Float> = l == 1 ? x : UnsafePointer(ws.activations[l - 2].pointer)
            if let pg = parameterGradients {
                // ∂L/∂Wₗ = aₗ₋₁ᵀ · g   (nIn × nOut);   ∂L/∂bₗ = Σ_rows g
                gemm(.transpose, .none, m: nIn, n: nOut, k: rows, alpha: 1, a: input, lda: nIn,
                     b: g, ldb: nOut, beta: accumulate ? 1 : 0, c: pg + weightOffsets[l - 1], ldc: nOut)
                Elementwise.columnSums(g, rows: rows, cols: nOut, into: pg + biasOffsets[l - 1], accumulate: accumulate)
            }
            // ∂L/∂aₗ₋₁ = g · Wₗᵀ (rows × nIn) into `target`.
            @inline(__always) func throughWeights(into target: UnsafeMutablePointer<Float>) {
                if let packed = ws.packedBackward {
                    gemm(m: rows, alpha: 1, a: g, lda: nOut, b: packed[l - 1], beta: 0, c: target, ldc: nIn)
                } else {
                    gemm(.none, .transpose, m: rows, n: nIn, k: nOut, alpha: 1, a: g, lda: nOut,
                         b: p + weightOffsets[l - 1], ldb: nOut, beta: 0, c: target, ldc: nIn)
                }
            }
            if l == 1 {
                if let gx = inputGradient { throughWeights(into: gx) }
            } else {
                // ∂L/∂aₗ₋₁ = g · Wₗᵀ, then through the ReLU that made aₗ₋₁.
                let gPrev = useA ? ws.gradientA.pointer : ws.gradientB.pointer
                useA.toggle()
                throughWeights(into: gPrev)
                Elementwise.reluBackward(output: ws.activations[l - 2].pointer, gradient: gPrev, count: rows * nIn)
                g = gPrev
            }
        }
    }
}

/// A ``DenseNetwork``'s weights packed once (``PackedMatrix``) for passes that do not change
/// them, e.g. test-time inference with a trained decoder: each Wₗ as the right-hand operand of
/// forward passes and Jacobian-vector products, and each Wₗᵀ for input gradients. Passes with
/// a workspace holding them give bit for bit the results of passes without; they skip packing
/// the weights in every product.
///
/// A snapshot of the weights when it was made or last ``refresh()``ed: after the network's
/// parameters change, passes with a workspace holding them use the old weights until
/// `refresh()` (the test-time refiners refresh at the start of every call; training uses
/// workspaces without).
public final class PackedWeights: @unchecked Sendable {
    /// The network whose weights these are (passes check it).
    public let network: DenseNetwork
    /// Wₗ (widths[l−1] × widths[l]) for l = 1 … L (index l−1).
    let weights: [PackedMatrix]
    /// Wₗᵀ (widths[l] × widths[l−1]) for l = 1 … L (index l−1).
    let transposedWeights: [PackedMatrix]
    /// Their views, for the passes (no reference counting per product).
    let forwardOperands: UnsafeMutablePointer<PackedOperand>
    let backwardOperands: UnsafeMutablePointer<PackedOperand>

    public init(network: DenseNetwork) {
        self.network = network
        let p = network.parameters.pointer
        weights = (1...network.layerCount).map { l in
            PackedMatrix(.none, b: p + network.weightOffsets[l - 1], ldb: network.widths[l], k: network.widths[l - 1], n: network.widths[l])
        }
        transposedWeights = (1...network.layerCount).map { l in
            PackedMatrix(.transpose, b: p + network.weightOffsets[l - 1], ldb: network.widths[l], k: network.widths[l], n: network.widths[l - 1])
        }
        forwardOperands = .allocate(capacity: weights.count)
        forwardOperands.initialize(from: weights.map(\.operand), count: weights.count)
        backwardOperands = .allocate(capacity: transposedWeights.count)
        backwardOperands.initialize(from: transposedWeights.map(\.operand), count: transposedWeights.count)
    }

    deinit {
        forwardOperands.deallocate()
        backwardOperands.deallocate()
    }

    /// Packs the network's current weights again, in place (no allocation; the workspaces
    /// holding these keep working).
    public func refresh() {
        let p = network.parameters.pointer
        for l in 1...network.layerCount {
            weights[l - 1].repack(from: p + network.weightOffsets[l - 1], ldb: network.widths[l])
            transposedWeights[l - 1].repack(from: p + network.weightOffsets[l - 1], ldb: network.widths[l])
        }
    }
}

/// Scratch memory for a ``DenseNetwork``'s forward and backward passes over up to `maxRows` rows.
/// One workspace per thread; reused across calls, so passes allocate nothing.
public final class NetworkWorkspace: @unchecked Sendable {
    public let maxRows: Int
    /// The network's weights packed, if the passes may use them (see ``PackedWeights``).
    public let packedWeights: PackedWeights?
    /// Their views (Wₗ, and Wₗᵀ, index l−1), read by the passes without reference counting.
    let packedForward: UnsafePointer<PackedOperand>?
    let packedBackward: UnsafePointer<PackedOperand>?
    /// The parameters of the network they were packed from (passes check it without reference counting).
    let packedNetworkParameters: UnsafePointer<Float>?
    /// Output of each layer l = 1 … L (index l−1): maxRows × widths[l].
    let activations: [FloatBuffer]
    let gradientA: FloatBuffer
    let gradientB: FloatBuffer
    /// Whether the workspace has the scratch of backward passes and Jacobian-vector products.
    public let differentiable: Bool

    /// `forwardOnly`: only the layers' outputs (for ``DenseNetwork/forward(_:rows:workspace:)``),
    /// without the gradient scratch, e.g. for an encoder pass at test time.
    ///
    /// `packedWeights`: `network`'s weights, packed, for passes while they stay fixed (one
    /// ``PackedWeights`` may serve every thread's workspace).
    public init(network: DenseNetwork, maxRows: Int, forwardOnly: Bool = false, packedWeights: PackedWeights? = nil) {
        precondition(packedWeights.map { $0.network === network } ?? true, "NetworkWorkspace: packed weights of another network")
        self.maxRows = maxRows
        self.packedWeights = packedWeights
        packedForward = packedWeights.map { UnsafePointer($0.forwardOperands) }
        packedBackward = packedWeights.map { UnsafePointer($0.backwardOperands) }
        packedNetworkParameters = packedWeights.map { UnsafePointer($0.network.parameters.pointer) }
        activations = network.widths.dropFirst().map { FloatBuffer(count: maxRows * $0) }
        let widest = forwardOnly ? 0 : network.widths.max()!
        gradientA = FloatBuffer(count: maxRows * widest)
        gradientB = FloatBuffer(count: maxRows * widest)
        differentiable = !forwardOnly
    }
}
