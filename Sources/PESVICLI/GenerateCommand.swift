import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments

/// `pesvi generate synthetic`: the paper's synthetic data (section 4.1).
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate data sets.",
        subcommands: [GenerateSyntheticCommand.self]
    )
}

struct GenerateSyntheticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthetic",
        abstract: "The paper's synthetic data: independent Normal/Uniform/Beta/Logistic/Gumbel dimensions and interdependent ones (docs/SYNTHETIC.md)."
    )
    @Option(help: "Points.") var n: Int = 50_000
    @Option(help: "Dimensions.") var dim: Int = 300
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output file (.npy or .csv).") var out: String

    func validate() throws {
        guard n > 0, dim > 0 else { throw ValidationError("--n and --dim must be positive") }
    }

    func run() throws {
        let m = try SyntheticDataGenerator(n: n, dim: dim, seed: seed).generate()
        try DataFiles.write(m, to: out)
        print("wrote \(m.rows)×\(m.cols) synthetic data (seed \(seed)) to \(out)")
    }
}
