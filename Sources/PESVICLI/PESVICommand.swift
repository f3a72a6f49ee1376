import ArgumentParser

/// The `pesvi` command: train, infer, evaluate, reproduce and benchmark PE-SVI models.
public struct PESVICommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pesvi",
        abstract: "Pseudo-Encoded Stochastic Variational Inference: fast test-time inference for auto-decoders.",
        subcommands: [DemoCommand.self, TrainCommand.self, InferCommand.self, EvaluateCommand.self, ReproduceCommand.self, ProgressCommand.self, GenerateCommand.self, BenchCommand.self]
    )
    public init() {}
}
