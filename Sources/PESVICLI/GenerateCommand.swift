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
        // Refuse sizes that cannot fit in memory here, instead of crashing in the allocator.
        let (values, overflow) = n.multipliedReportingOverflow(by: dim)
        let limit = ProcessInfo.processInfo.physicalMemory / 2
        guard !overflow, values <= Int.max / 4, UInt64(values) * 4 <= limit else {
            let gb = String(format: "%.1f", Double(ProcessInfo.processInfo.physicalMemory) / 1e9)
            throw ValidationError("--n \(n) × --dim \(dim) is too large: the data alone would need more than half of this machine's memory (\(gb) GB)")
        }
    }

    func run() throws {
        let m = try SyntheticDataGenerator(n: n, dim: dim, seed: seed).generate()
        try DataFiles.write(m, to: out)
        print("wrote \(m.rows)×\(m.cols) synthetic data (seed \(seed)) to \(out)")
    }
}
