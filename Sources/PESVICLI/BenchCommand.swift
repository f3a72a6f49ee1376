import ArgumentParser
import PESVINumerics

/// `pesvi bench …`: speed measurements whose results go in docs/BENCHMARKS.md.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed: matrix products, training throughput, test-time inference, Gauss-Newton and PE-SVI-auto refinement.",
        subcommands: [BenchGEMMCommand.self, BenchTrainCommand.self, BenchInferCommand.self, BenchGaussNewtonCommand.self, BenchGuardedRefinementCommand.self, BenchLatencyCommand.self]
    )
}
