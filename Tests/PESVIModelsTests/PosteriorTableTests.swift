import Testing
import PESVINumerics
@testable import PESVIModels

@Suite struct PosteriorTableTests {
    /// A table without optimizer state holds the given rows (μ and log σ² only: no Adam
    /// moments or step counts are allocated); the default table keeps them.
    @Test func tableWithoutOptimizerStateHoldsOnlyTheRows() {
        let mu: [Float] = [1, 2, 3, 4, 5, 6], lv: [Float] = [-1, -2, -3, -4, -5, -6]
        let bare = PosteriorTable(mu: mu, logVariance: lv, latent: 3)
        #expect(!bare.hasOptimizerState && bare.rows == 2 && bare.mu.array == mu && bare.logVariance.array == lv)
        #expect(bare.muM.count == 0 && bare.muV.count == 0 && bare.lvM.count == 0 && bare.lvV.count == 0)
        let full = PosteriorTable(mu: mu, logVariance: lv, latent: 3, adam: AdamConfiguration(learningRate: 0.1))
        #expect(full.hasOptimizerState && full.muM.count == 6 && full.lvV.count == 6 && full.mu.array == mu)
    }

    /// Updating a table without optimizer state stops the process with a clear error (checked
    /// in release builds too), instead of writing past its empty moment buffers.
    @Test func updatingATableWithoutOptimizerStateStops() async {
        await #expect(processExitsWith: .failure) {
            let bare = PosteriorTable(mu: [1, 2, 3], logVariance: [0, 0, 0], latent: 3)
            let g: [Float] = [1, 1, 1]
            g.withUnsafeBufferPointer { bare.updateRow(0, gradMu: $0.baseAddress!, gradLogVariance: $0.baseAddress!) }
        }
    }

    @Test func rowwiseAdamLeavesOtherRowsUntouched() {
        var rng = RandomGenerator(seed: 2)
        let table = PosteriorTable(rows: 6, latent: 4, adam: AdamConfiguration(learningRate: 0.1), initialization: .standard, rng: &rng)
        // Give every row some Adam history first.
        let all = Array(0..<6)
        let g = rng.normalArray(count: 6 * 4), h = rng.normalArray(count: 6 * 4)
        all.withUnsafeBufferPointer { idx in table.update(rows: idx.baseAddress!, count: 6, gradMu: g, gradLogVariance: h) }
        let before = (0..<6).map { (table.row($0), table.optimizerState(row: $0)) }
        let batch = [4, 1]
        let g2 = rng.normalArray(count: 2 * 4), h2 = rng.normalArray(count: 2 * 4)
        batch.withUnsafeBufferPointer { idx in table.update(rows: idx.baseAddress!, count: 2, gradMu: g2, gradLogVariance: h2) }
        for r in 0..<6 {
            let now = (table.row(r), table.optimizerState(row: r))
            if batch.contains(r) {
                #expect(now.0.mu != before[r].0.mu)
                #expect(table.stepCount(row: r) == 2)
            } else {
                #expect(now.0.mu == before[r].0.mu)
                #expect(now.0.logVariance == before[r].0.logVariance)
                #expect(now.1 == before[r].1)   // moments and step count, bit for bit
                #expect(table.stepCount(row: r) == 1)
            }
        }
    }

    /// A row's first step, whenever it comes, moves each coordinate by the learning rate
    /// (bias-corrected Adam): the per-row step count drives the correction.
    @Test func perRowBiasCorrection() {
        let table = PosteriorTable(mu: [0, 0, 0, 0], logVariance: [0, 0, 0, 0], latent: 2, adam: AdamConfiguration(learningRate: 0.05))
        let idx0 = [0], idx1 = [1]
        for _ in 0..<5 { idx0.withUnsafeBufferPointer { table.update(rows: $0.baseAddress!, count: 1, gradMu: [1, -1], gradLogVariance: [0, 0]) } }
        idx1.withUnsafeBufferPointer { table.update(rows: $0.baseAddress!, count: 1, gradMu: [3, -0.5], gradLogVariance: [2, 0]) }
        let r1 = table.row(1)
        #expect(abs(r1.mu[0] + 0.05) < 1e-6 && abs(r1.mu[1] - 0.05) < 1e-6)
        #expect(abs(r1.logVariance[0] + 0.05) < 1e-6 && r1.logVariance[1] == 0)
    }

    /// Gathers copy the listed rows in the listed order, for batches shorter than, as long
    /// as and longer than the prefetch distance (the prefetch must never change what is copied).
    @Test(arguments: [1, Dataset.prefetchDistance, 2 * Dataset.prefetchDistance + 3])
    func gathersCopyTheListedRowsInOrder(count: Int) {
        var rng = RandomGenerator(seed: 31)
        let rows = 40, d = 5, L = 3
        let data = Dataset(rows: rows, cols: d, values: rng.normalArray(count: rows * d))
        let table = PosteriorTable(rows: rows, latent: L, adam: AdamConfiguration(learningRate: 0.1), initialization: .normal(std: 1, logVariance: -1), rng: &rng)
        rng.fillNormal(table.logVariance.pointer, count: rows * L, mean: 0, std: 1)
        let indices = Array(rng.permutation(rows).prefix(count))
        var x = [Float](repeating: .nan, count: count * d)
        var mu = [Float](repeating: .nan, count: count * L), lv = mu
        indices.withUnsafeBufferPointer { idx in
            data.gather(idx.baseAddress!, count: count, into: &x)
            table.gather(idx.baseAddress!, count: count, mu: &mu, logVariance: &lv)
        }
        for (k, i) in indices.enumerated() {
            #expect(Array(x[k * d..<(k + 1) * d]) == Array(UnsafeBufferPointer(start: data.row(i), count: d)))
            #expect(Array(mu[k * L..<(k + 1) * L]) == table.row(i).mu)
            #expect(Array(lv[k * L..<(k + 1) * L]) == table.row(i).logVariance)
        }
    }

    @Test func initializations() {
        var rng = RandomGenerator(seed: 8)
        let t = PosteriorTable(rows: 1000, latent: 2, adam: AdamConfiguration(learningRate: 0.1),
                               initialization: .uniform(low: -1, high: 1, logVariance: -3), rng: &rng)
        let mu = t.mu.array
        #expect(mu.allSatisfy { $0 >= -1 && $0 < 1 })
        #expect(abs(mu.reduce(0, +) / Float(mu.count)) < 0.06)
        #expect(t.logVariance.array.allSatisfy { $0 == -3 })
        t.initialize(.zeros, rng: &rng)
        #expect(t.mu.array.allSatisfy { $0 == 0 })
    }
}
