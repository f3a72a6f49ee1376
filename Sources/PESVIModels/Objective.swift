import Foundation

/// The noise model of the decoder: p(x|z) = N(D(z), diag(σₓ²)).
public enum Likelihood: Sendable, Equatable, Codable {
    /// One fixed σₓ for every dimension.
    case fixedVariance(sigma: Float)
    /// A learned log σₓ² per data dimension, trained with the decoder.
    case learnedVariance
}

/// What training and inference minimize, per data point (lower is better).
public enum ObjectiveKind: Sendable, Equatable, Codable {
    /// The paper's reconstruction-only mode (section 4.2): the expected squared error
    /// E_q[(1/d)·‖x − D(z)‖²], the mean over the d dimensions. The likelihood's σₓ plays no
    /// part and there is no KL term.
    case reconstruction
    /// The negative ELBO: E_q[−log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)), summed over dimensions,
    /// in nats per point. β = 1 is the true ELBO.
    case elbo(beta: Float)
}

/// The objective a model is trained with: the per-point loss and the decoder's likelihood.
public struct Objective: Sendable, Equatable, Codable {
    public var kind: ObjectiveKind
    public var likelihood: Likelihood

    public init(kind: ObjectiveKind, likelihood: Likelihood = .fixedVariance(sigma: 1)) {
        self.kind = kind
        self.likelihood = likelihood
    }

    /// The paper's mode: expected squared error, no KL.
    public static let reconstruction = Objective(kind: .reconstruction)

    /// Negative ELBO with KL weight β under the given likelihood.
    public static func elbo(beta: Float = 1, likelihood: Likelihood = .fixedVariance(sigma: 1)) -> Objective {
        Objective(kind: .elbo(beta: beta), likelihood: likelihood)
    }

    /// The KL weight β (0 in reconstruction mode).
    public var klWeight: Float {
        if case .elbo(let beta) = kind { return beta }
        return 0
    }

    public var usesLearnedVariance: Bool {
        if case .elbo = kind, likelihood == .learnedVariance { return true }
        return false
    }

    /// The per-point KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σⱼ (μⱼ² + σⱼ² − log σⱼ² − 1), in nats.
    public static func kl(mu: UnsafePointer<Float>, logVariance: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for j in 0..<count {
            let m = Double(mu[j]), lv = Double(logVariance[j])
            s += m * m + Foundation.exp(lv) - lv - 1
        }
        return 0.5 * s
    }
}
