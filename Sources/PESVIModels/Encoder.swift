import PESVINumerics

/// An inference network x → (μ, log σ²): a ``DenseNetwork`` of widths [d, …, 2|z|] whose
/// output row holds μ in its first |z| values and log σ² in the last |z|.
///
/// Used as the PE-SVI pseudo-encoder (fitted after the decoder, phase 2) and as the VAE's
/// encoder (trained end to end with its decoder).
public final class GaussianEncoder: @unchecked Sendable {
    public let network: DenseNetwork
    public var latent: Int { network.outputWidth / 2 }
    public var dataWidth: Int { network.inputWidth }

    public init(network: DenseNetwork) {
        precondition(network.outputWidth % 2 == 0, "an encoder's output width must be 2|z|, got \(network.outputWidth)")
        self.network = network
    }

    /// The encoder mirroring `architecture`'s decoder, with random weights from `rng`.
    public convenience init(latent: Int, dataWidth: Int, architecture: Architecture, rng: inout RandomGenerator) {
        self.init(network: DenseNetwork(widths: architecture.encoderWidths(latent: latent, data: dataWidth), rng: &rng))
    }

    /// Encodes every row of `x` (n × d): returns μ and log σ² (n × |z| each), chunk-parallel.
    public func encode(_ x: Dataset, threads: Int = 1, chunkRows: Int = 256) -> (mu: [Float], logVariance: [Float]) {
        precondition(x.cols == dataWidth, "encoder expects \(dataWidth) columns, data has \(x.cols)")
        let L = latent, n = x.rows, d = x.cols
        if n == 0 || L == 0 { return ([], []) }
        let runner = ChunkRunner(threads: threads, chunkRows: chunkRows)
        // Forward only, as many rows as a chunk can hold: no gradient scratch to allocate and zero.
        let workspaces = (0..<threads).map { _ in NetworkWorkspace(network: network, maxRows: min(chunkRows, n), forwardOnly: true) }
        // Each chunk's output rows [μ | log σ²] go straight into the two result arrays: no
        // zero-filled intermediate buffer and no second copy.
        var logVariance: [Float] = []
        let mu = [Float](unsafeUninitializedCapacity: n * L) { muBuffer, muCount in
            logVariance = [Float](unsafeUninitializedCapacity: n * L) { lvBuffer, lvCount in
                let muOut = muBuffer.baseAddress!, lvOut = lvBuffer.baseAddress!
                runner.run(rows: n) { t, _, start, count in
                    let out = self.network.forward(x.values.pointer + start * d, rows: count, workspace: workspaces[t])
                    for i in 0..<count {
                        (muOut + (start + i) * L).initialize(from: out + i * 2 * L, count: L)
                        (lvOut + (start + i) * L).initialize(from: out + i * 2 * L + L, count: L)
                    }
                }
                lvCount = n * L
            }
            muCount = n * L
        }
        return (mu, logVariance)
    }

    /// Encodes `x` into a fresh posterior table with the given Adam settings (the PE-SVI start).
    public func encodeTable(_ x: Dataset, adam: AdamConfiguration, threads: Int = 1) -> PosteriorTable {
        let (mu, lv) = encode(x, threads: threads)
        return PosteriorTable(mu: mu, logVariance: lv, latent: latent, adam: adam)
    }
}

/// Data-parallel minibatch gradients for one or more networks, reduced in chunk order.
final class ChunkGradients: @unchecked Sendable {
    let buffers: [[FloatBuffer]]   // [chunk][network]
    let sums: [FloatBuffer]        // [network]
    let totals: SharedDoubles

    init(chunks: Int, parameterCounts: [Int]) {
        buffers = (0..<chunks).map { _ in parameterCounts.map { FloatBuffer(count: $0) } }
        sums = parameterCounts.map { FloatBuffer(count: $0) }
        totals = SharedDoubles(count: chunks)
    }

    /// Sums chunk gradients 0..<chunks into `sums` and returns the sum of the chunk totals.
    func reduce(chunks: Int) -> Double {
        for k in sums.indices {
            sums[k].assign(buffers[0][k])
            for c in 1..<max(chunks, 1) { Elementwise.add(buffers[c][k].pointer, to: sums[k].pointer, count: sums[k].count) }
        }
        var s = 0.0
        for c in 0..<chunks { s += totals.pointer[c] }
        return s
    }
}
