import Foundation
import PESVINumerics

/// Speed measurements of the engine on the reference shape: |z| = 64, Arch2
/// (64 → 128 → 300), d = 300, batch 256, reconstruction objective, one sample.
public enum EngineBenchmark {
    public struct TrainResult: Sendable, Codable {
        /// Training throughput: points per second through forward, backward, the decoder's Adam
        /// and the latent rows' Adam.
        public var samplesPerSecond: Double
        public var threads: Int
        public var batchSize: Int
        public var seconds: Double
    }

    public struct InferenceResult: Sendable, Codable {
        /// Milliseconds per test-time step (every point: sample, forward, backward to z, Adam).
        public var millisecondsPerStep: Double
        public var points: Int
        public var threads: Int
        public var steps: Int
    }

    static let latent = 64, dataWidth = 300

    static func randomData(rows: Int, seed: UInt64) -> Dataset {
        var rng = RandomGenerator(seed: seed)
        return Dataset(rows: rows, cols: dataWidth, values: rng.normalArray(count: rows * dataWidth))
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Phase-1 training throughput: epochs over `rows` random points until at least
    /// `minSeconds` have passed (after one warm-up epoch).
    public static func train(threads: Int, rows: Int = 256 * 40, batchSize: Int = 256, minSeconds: Double = 2) -> TrainResult {
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: .arch2, objective: .reconstruction, rng: &rng)
        var c = EarlyDecoderTrainingConfiguration()
        c.batchSize = batchSize; c.threads = threads; c.chunkRows = batchSize / 2; c.epochs = Int.max
        let training = EarlyDecoderTraining(decoder: decoder, train: randomData(rows: rows, seed: 2), configuration: c)
        training.runEpoch()
        let t0 = now()
        var points = 0
        while now() - t0 < minSeconds {
            training.runEpoch()
            points += rows
        }
        let dt = now() - t0
        return TrainResult(samplesPerSecond: Double(points) / dt, threads: threads, batchSize: batchSize, seconds: dt)
    }

    /// Test-time inference: ms per step over `points` random points (after 3 warm-up steps).
    public static func infer(threads: Int, points: Int = 5000, minSeconds: Double = 2) -> InferenceResult {
        var rng = RandomGenerator(seed: 1)
        let decoder = GaussianDecoder(latent: latent, dataWidth: dataWidth, architecture: .arch2, objective: .reconstruction, rng: &rng)
        let x = randomData(rows: points, seed: 3)
        let table = PosteriorTable(rows: points, latent: latent, adam: AdamConfiguration(learningRate: 0.01), initialization: .standard, rng: &rng)
        let stepper = LatentStepper(decoder: decoder, threads: threads, chunkRows: 128, samples: 1, maxRows: points)
        for s in 0..<3 { stepper.step(x, table, seed: 1, step: s) }
        let t0 = now()
        var steps = 0
        while now() - t0 < minSeconds || steps < 10 {
            stepper.step(x, table, seed: 1, step: steps + 3)
            steps += 1
        }
        let dt = now() - t0
        return InferenceResult(millisecondsPerStep: dt * 1000 / Double(steps), points: points, threads: threads, steps: steps)
    }
}
