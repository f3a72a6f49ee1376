import ArgumentParser
import Foundation
import PESVIModels

/// `pesvi bench train`: phase-1 training throughput at |z| = 64, Arch2, d = 300, batch 256.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput (samples/s): decoder and latent rows, forward, backward and Adam (|z|=64, Arch2, d=300, batch 256)."
    )
    @Option(help: "Threads: 1 or 2.") var threads: Int = 2
    @Option(help: "Batch size.") var batchSize: Int = 256
    @Option(help: "Seconds to measure for.") var seconds: Double = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...2).contains(threads) else { throw ValidationError("--threads must be 1 or 2, got \(threads)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
    }

    func run() throws {
        let r = EngineBenchmark.train(threads: threads, batchSize: batchSize, minSeconds: seconds)
        if json {
            print("{\"bench\":\"train\",\"samples_per_s\":\(Int(r.samplesPerSecond.rounded())),\"threads\":\(threads),\"batch\":\(batchSize)}")
        } else {
            print("train  |z|=64 Arch2 d=300 batch \(batchSize)  threads \(threads):  \(Int(r.samplesPerSecond.rounded())) samples/s  (\(String(format: "%.1f", r.seconds)) s measured)")
        }
    }
}

/// `pesvi bench infer`: milliseconds per test-time step for 5,000 points.
struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Test-time inference: milliseconds per SVI step for N points (|z|=64, Arch2, d=300)."
    )
    @Option(help: "Threads: 1 or 2.") var threads: Int = 2
    @Option(help: "Points refined per step.") var points: Int = 5000
    @Option(help: "Seconds to measure for.") var seconds: Double = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...2).contains(threads) else { throw ValidationError("--threads must be 1 or 2, got \(threads)") }
        guard points >= 1 else { throw ValidationError("--points must be positive") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
    }

    func run() throws {
        let r = EngineBenchmark.infer(threads: threads, points: points, minSeconds: seconds)
        if json {
            print("{\"bench\":\"infer\",\"points\":\(points),\"ms_per_step\":\(String(format: "%.3f", r.millisecondsPerStep)),\"threads\":\(threads)}")
        } else {
            print("infer  |z|=64 Arch2 d=300 points \(points)  threads \(threads):  \(String(format: "%.2f", r.millisecondsPerStep)) ms/step  (\(r.steps) steps)")
        }
    }
}
