import PESVINumerics

/// Reconstruction quality of posteriors under a decoder.
public struct ReconstructionMetrics: Sendable, Codable, Equatable {
    /// E_q[(x − D(z))²], the mean over points and dimensions of the squared error, Monte Carlo
    /// over `samples` reparameterized samples per point. The paper's tables report this.
    public var expectedReconstruction: Double
    /// (x − D(μ))², the mean over points and dimensions, at the posterior mean.
    public var reconstructionAtMean: Double
    /// The mean per-point negative ELBO (nats), when the objective is an ELBO.
    public var negativeELBO: Double?

    public init(expectedReconstruction: Double, reconstructionAtMean: Double, negativeELBO: Double? = nil) {
        self.expectedReconstruction = expectedReconstruction
        self.reconstructionAtMean = reconstructionAtMean
        self.negativeELBO = negativeELBO
    }
}

public enum Metrics {
    /// Evaluates posteriors (μ, log σ², n × |z| each) for the points `x` under `decoder`.
    /// `perPoint` (n values), if given, receives each point's expected reconstruction (its
    /// squared error averaged over its d dimensions and the samples), whose mean is
    /// `expectedReconstruction`. `perPointNegativeELBO` (n values), if given and the objective
    /// is an ELBO, receives each point's negative ELBO (same samples), whose mean is
    /// `negativeELBO`; with the reconstruction objective it is left untouched.
    public static func evaluate(decoder: GaussianDecoder, x: Dataset, mu: [Float], logVariance: [Float],
                                samples: Int = 8, seed: UInt64 = 0, threads: Int = 1,
                                perPoint reconstructions: UnsafeMutablePointer<Double>? = nil,
                                perPointNegativeELBO: UnsafeMutablePointer<Double>? = nil) -> ReconstructionMetrics {
        let table = PosteriorTable(mu: mu, logVariance: logVariance, latent: decoder.latent)
        let stepper = LatentStepper(decoder: decoder, threads: threads, samples: samples, maxRows: x.rows)
        let n = x.rows
        let perPoint = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        let perPointSE = UnsafeMutablePointer<Double>.allocate(capacity: max(n, 1))
        defer { perPoint.deallocate(); perPointSE.deallocate() }
        let total = stepper.evaluate(x, table, seed: seed, step: 0, perPoint: perPoint, perPointSquaredError: perPointSE)
        var se = 0.0
        for i in 0..<n { se += perPointSE[i] }
        if let reconstructions { for i in 0..<n { reconstructions[i] = perPointSE[i] / Double(x.cols) } }
        _ = stepper.evaluate(x, table, seed: seed, step: 0, atMean: true, perPointSquaredError: perPointSE)
        var seMean = 0.0
        for i in 0..<n { seMean += perPointSE[i] }
        let denom = Double(max(n, 1) * x.cols)
        var elbo: Double? = nil
        if case .elbo = decoder.objective.kind {
            elbo = total / Double(max(n, 1))
            if let perPointNegativeELBO { perPointNegativeELBO.update(from: perPoint, count: n) }
        }
        return ReconstructionMetrics(expectedReconstruction: se / denom, reconstructionAtMean: seMean / denom, negativeELBO: elbo)
    }
}
