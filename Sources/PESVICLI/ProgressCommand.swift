import ArgumentParser
import Foundation
import PESVIExperiments

/// `pesvi progress --out DIR`: how far a `reproduce` run in DIR has got.
struct ProgressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "progress",
        abstract: "Show how far a 'reproduce' run in DIR has got: cells done (with their times), searches in progress, claims.",
        discussion: "Reads DIR/cells/ only; safe while runs are going on. Finish or continue a run with 'pesvi reproduce … --resume --out DIR'."
    )
    @Option(help: "The reproduce output directory.") var out: String

    func run() throws {
        let report = try ReproductionProgress.read(cellsDirectory: URL(fileURLWithPath: out).appendingPathComponent("cells").path)
        print(ReproductionProgress.text(report))
    }
}
