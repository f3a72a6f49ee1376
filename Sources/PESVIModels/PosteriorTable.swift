import Foundation
import PESVINumerics

/// How free posterior rows start.
public enum PosteriorInitialization: Sendable, Equatable, Codable {
    /// The paper's random start: μ ~ U(low, high) per coordinate, log σ² = `logVariance`.
    case uniform(low: Float, high: Float, logVariance: Float)
    /// μ ~ N(0, std²) per coordinate, log σ² = `logVariance`.
    case normal(std: Float, logVariance: Float)
    /// μ = 0 and log σ² = 0 (the prior N(0, I)).
    case zeros

    /// The default random start: μ ~ U(−1, 1), σ = 1.
    public static let standard = PosteriorInitialization.uniform(low: -1, high: 1, logVariance: 0)
}

/// Free mean-field Gaussian posteriors q(z|xᵢ) = N(μᵢ, diag σᵢ²), one row per point, with a
/// row-wise Adam whose state (moments and step count) is kept per row.
///
/// `mu` and `logVariance` are rows × latent, row-major. A row is updated only when it is
/// in the batch passed to ``update(rows:count:gradMu:gradLogVariance:)``; rows outside the
/// batch, and their Adam state, are left untouched. Each row's step count drives its own
/// bias correction (on by default, see ``AdamConfiguration``), so a row first seen in epoch
/// 10 gets the same first step as one seen in epoch 1.
public final class PosteriorTable: @unchecked Sendable {
    public let rows: Int
    public let latent: Int
    public let mu: FloatBuffer
    public let logVariance: FloatBuffer
    public var adam: AdamConfiguration
    /// Whether the table keeps Adam's state (moments and step counts) and can be updated; a
    /// table without it (``init(mu:logVariance:latent:)``) holds only μ and log σ², a third of
    /// the memory, for methods that set the rows themselves (Gauss-Newton).
    public let hasOptimizerState: Bool
    let muM: FloatBuffer, muV: FloatBuffer, lvM: FloatBuffer, lvV: FloatBuffer
    /// Adam steps taken by each row.
    let stepCounts: UnsafeMutablePointer<Int32>

    /// `rows` × `latent` zeros; with `optimizerState` (the default) Adam's moments and step
    /// counts too, else the table cannot be updated.
    public init(rows: Int, latent: Int, adam: AdamConfiguration, optimizerState: Bool = true) {
        precondition(rows >= 0 && latent > 0, "PosteriorTable needs rows ≥ 0 and latent > 0, got \(rows), \(latent)")
        self.rows = rows
        self.latent = latent
        self.adam = adam
        hasOptimizerState = optimizerState
        mu = FloatBuffer(count: rows * latent)
        logVariance = FloatBuffer(count: rows * latent)
        let state = optimizerState ? rows * latent : 0
        muM = FloatBuffer(count: state); muV = FloatBuffer(count: state)
        lvM = FloatBuffer(count: state); lvV = FloatBuffer(count: state)
        let counts = optimizerState ? max(rows, 1) : 1
        stepCounts = .allocate(capacity: counts)
        stepCounts.initialize(repeating: 0, count: counts)
    }

    /// A table initialized by `initialization`, drawing from `rng`.
    public convenience init(rows: Int, latent: Int, adam: AdamConfiguration,
                            initialization: PosteriorInitialization, rng: inout RandomGenerator) {
        self.init(rows: rows, latent: latent, adam: adam)
        initialize(initialization, rng: &rng)
    }

    /// A table starting from given means and log-variances (rows × latent each).
    public convenience init(mu: [Float], logVariance: [Float], latent: Int, adam: AdamConfiguration) {
        precondition(mu.count == logVariance.count && mu.count % latent == 0,
                     "PosteriorTable: μ has \(mu.count) values, log σ² \(logVariance.count), latent \(latent)")
        self.init(rows: mu.count / latent, latent: latent, adam: adam)
        self.mu.assign(mu)
        self.logVariance.assign(logVariance)
    }

    /// A table of the given means and log-variances (rows × latent each) without Adam's
    /// state (``hasOptimizerState`` false): for reading and writing the rows directly.
    public convenience init(mu: [Float], logVariance: [Float], latent: Int) {
        precondition(mu.count == logVariance.count && mu.count % latent == 0,
                     "PosteriorTable: μ has \(mu.count) values, log σ² \(logVariance.count), latent \(latent)")
        self.init(rows: mu.count / latent, latent: latent, adam: AdamConfiguration(learningRate: 0), optimizerState: false)
        self.mu.assign(mu)
        self.logVariance.assign(logVariance)
    }

    deinit { stepCounts.deallocate() }

    /// Rows ahead whose lines ``update(rows:count:gradMu:gradLogVariance:)`` requests.
    static let prefetchDistance = 4

    /// Re-initializes every row and forgets all Adam state.
    public func initialize(_ initialization: PosteriorInitialization, rng: inout RandomGenerator) {
        let n = rows * latent
        switch initialization {
        case .uniform(let low, let high, let lv):
            rng.fillUniform(mu.pointer, count: n, low: low, high: high)
            Elementwise.fill(logVariance.pointer, with: lv, count: n)
        case .normal(let std, let lv):
            rng.fillNormal(mu.pointer, count: n, mean: 0, std: std)
            Elementwise.fill(logVariance.pointer, with: lv, count: n)
        case .zeros:
            mu.zero(); logVariance.zero()
        }
        resetOptimizer()
    }

    /// Forgets the Adam moments and step counts of every row (values are kept).
    public func resetOptimizer() {
        muM.zero(); muV.zero(); lvM.zero(); lvV.zero()
        stepCounts.update(repeating: 0, count: max(rows, 1))
    }

    /// Adam steps taken by row `r`.
    public func stepCount(row r: Int) -> Int { Int(stepCounts[r]) }

    /// Copies rows `indices[0..<count]` of μ and log σ² into `mu` and `logVariance`
    /// (count × latent each, in the listed order), requesting later rows' lines ahead as
    /// ``Dataset/gather(_:count:into:)`` does.
    @inline(__always)
    public func gather(_ indices: UnsafePointer<Int>, count: Int,
                       mu muOut: UnsafeMutablePointer<Float>, logVariance lvOut: UnsafeMutablePointer<Float>) {
        let L = latent, bytes = L * MemoryLayout<Float>.stride
        for k in 0..<count {
            if k + Self.prefetchDistance < count {
                let o = indices[k + Self.prefetchDistance] * L
                Prefetch.read(mu.pointer + o, bytes: bytes); Prefetch.read(logVariance.pointer + o, bytes: bytes)
            }
            let o = indices[k] * L
            (muOut + k * L).update(from: mu.pointer + o, count: L)
            (lvOut + k * L).update(from: logVariance.pointer + o, count: L)
        }
    }

    /// One Adam step on each listed row. `gradMu` and `gradLogVariance` are count × latent:
    /// row k holds the gradient for table row `rows[k]`. Listed rows must be distinct.
    public func update(rows indices: UnsafePointer<Int>, count: Int,
                       gradMu: UnsafePointer<Float>, gradLogVariance: UnsafePointer<Float>) {
        var memo = AdamFactorMemo()
        let bytes = latent * MemoryLayout<Float>.stride
        for k in 0..<count {
            // The rows are at random places: ask for a later row's lines while stepping this one.
            if k + Self.prefetchDistance < count {
                let o = indices[k + Self.prefetchDistance] * latent
                Prefetch.write(mu.pointer + o, bytes: bytes); Prefetch.write(logVariance.pointer + o, bytes: bytes)
                Prefetch.write(muM.pointer + o, bytes: bytes); Prefetch.write(muV.pointer + o, bytes: bytes)
                Prefetch.write(lvM.pointer + o, bytes: bytes); Prefetch.write(lvV.pointer + o, bytes: bytes)
                Prefetch.write(stepCounts + indices[k + Self.prefetchDistance], bytes: 4)
            }
            updateRow(indices[k], gradMu: gradMu + k * latent, gradLogVariance: gradLogVariance + k * latent, learningRateScale: 1, memo: &memo)
        }
    }

    /// One Adam step on rows start..<start+count, gradients packed count × latent.
    public func update(rowRange start: Int, count: Int,
                       gradMu: UnsafePointer<Float>, gradLogVariance: UnsafePointer<Float>) {
        var memo = AdamFactorMemo()
        for k in 0..<count {
            updateRow(start + k, gradMu: gradMu + k * latent, gradLogVariance: gradLogVariance + k * latent, learningRateScale: 1, memo: &memo)
        }
    }

    /// One Adam step on row r with its gradients (latent values each), at this table's rate.
    @inline(__always)
    public func updateRow(_ r: Int, gradMu: UnsafePointer<Float>, gradLogVariance: UnsafePointer<Float>) {
        updateRow(r, gradMu: gradMu, gradLogVariance: gradLogVariance, learningRateScale: 1)
    }

    /// One Adam step on row r with the learning rate multiplied by `learningRateScale`
    /// (per-point step-size control in refinement).
    @inline(__always)
    public func updateRow(_ r: Int, gradMu: UnsafePointer<Float>, gradLogVariance: UnsafePointer<Float>, learningRateScale: Float) {
        var memo = AdamFactorMemo()
        updateRow(r, gradMu: gradMu, gradLogVariance: gradLogVariance, learningRateScale: learningRateScale, memo: &memo)
    }

    /// As ``updateRow(_:gradMu:gradLogVariance:learningRateScale:)``, reusing the bias-correction
    /// factors in `memo` when row r is at the same step count as the row before (a loop over
    /// rows keeps one memo).
    @inline(__always)
    public func updateRow(_ r: Int, gradMu: UnsafePointer<Float>, gradLogVariance: UnsafePointer<Float>, learningRateScale: Float,
                          memo: inout AdamFactorMemo) {
        // Checked in every build (a precondition is assumed, not checked, under -Ounchecked):
        // without the state the moment buffers are empty.
        if !hasOptimizerState { fatalError("PosteriorTable: this table keeps no optimizer state and cannot be updated") }
        stepCounts[r] += 1
        var (a, b) = adam.factors(step: Int(stepCounts[r]), memo: &memo)
        a *= learningRateScale
        let o = r * latent
        adamUpdate(mu.pointer + o, gradMu, muM.pointer + o, muV.pointer + o, count: latent, a: a, b: b, config: adam)
        adamUpdate(logVariance.pointer + o, gradLogVariance, lvM.pointer + o, lvV.pointer + o, count: latent, a: a, b: b, config: adam)
    }

    /// Copies the values, moments and step count of row r to/from a snapshot (for rejecting
    /// a step). `into` must hold 6·latent + 1 floats.
    func saveRow(_ r: Int, into s: UnsafeMutablePointer<Float>) {
        let o = r * latent, L = latent
        (s + 0 * L).update(from: mu.pointer + o, count: L)
        (s + 1 * L).update(from: logVariance.pointer + o, count: L)
        (s + 2 * L).update(from: muM.pointer + o, count: L)
        (s + 3 * L).update(from: muV.pointer + o, count: L)
        (s + 4 * L).update(from: lvM.pointer + o, count: L)
        (s + 5 * L).update(from: lvV.pointer + o, count: L)
        s[6 * L] = Float(stepCounts[r])
    }

    func restoreRow(_ r: Int, from s: UnsafePointer<Float>) {
        let o = r * latent, L = latent
        (mu.pointer + o).update(from: s + 0 * L, count: L)
        (logVariance.pointer + o).update(from: s + 1 * L, count: L)
        (muM.pointer + o).update(from: s + 2 * L, count: L)
        (muV.pointer + o).update(from: s + 3 * L, count: L)
        (lvM.pointer + o).update(from: s + 4 * L, count: L)
        (lvV.pointer + o).update(from: s + 5 * L, count: L)
        stepCounts[r] = Int32(s[6 * L])
    }

    /// Row r's mean and log-variance as arrays (for inspection and tests).
    public func row(_ r: Int) -> (mu: [Float], logVariance: [Float]) {
        let o = r * latent
        return (Array(UnsafeBufferPointer(start: mu.pointer + o, count: latent)),
                Array(UnsafeBufferPointer(start: logVariance.pointer + o, count: latent)))
    }

    /// Row r's Adam moments (m and v for μ, then for log σ²), for tests.
    public func optimizerState(row r: Int) -> [Float] {
        let o = r * latent
        var state: [Float] = []
        for b in [muM, muV, lvM, lvV] {
            state.append(contentsOf: UnsafeBufferPointer(start: UnsafePointer(b.pointer + o), count: latent))
        }
        state.append(Float(stepCounts[r]))
        return state
    }
}
