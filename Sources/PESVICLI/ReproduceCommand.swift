import ArgumentParser
import Foundation
import PESVIData
import PESVIExperiments
import PESVIModels

/// `pesvi reproduce`: the paper's Tables 1–3 and step counts on a data set.
struct ReproduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Reproduce the paper's tables: for each (|z|, arch) cell, search VAE and SVI rates, fit the pseudo-encoder, choose the pace, compare on the test split.",
        discussion: """
        Writes DIR/results.md (one table per architecture in the paper's layout, a steps table, the chosen \
        hyperparameters), DIR/results.json (a list of cells in the 'evaluate --json' schema) and one SVG plot of \
        test objective against step per cell. --quick uses a smaller grid and budget and says so in every output.

        Every finished cell is also kept in DIR/cells/ (one JSON file per cell), and the outputs are rewritten \
        after each cell. Within a cell, each trained SVI and VAE configuration is journaled in \
        DIR/cells/z<Z>-arch<A>.search.safetensors with the best trained state so far. After an interruption, \
        the same command with --resume reads back the cells already finished under the same protocol (data, \
        grids, budgets, seed), continues an interrupted cell's search after its last finished configuration \
        (same numbers as an uninterrupted run), and computes only the rest; a file from another protocol is \
        an error. Several --resume runs may share one DIR (say one per core): each claims the cell it computes \
        (DIR/cells/z<Z>-arch<A>.lock) and skips cells another live run holds; run once more with --resume at the \
        end to write the complete tables.
        """
    )
    @Option(help: "'synthetic' (the paper's N=50,000, d=300 unless --n/--dim), 'digits', or a .csv/.npy file.") var dataset: String
    @Option(help: "Latent sizes, comma separated.") var z: String = "16,32,64,128"
    @Option(help: "Architectures, comma separated (1, 2, 3).") var arch: String = "1,2,3"
    @Flag(help: "Reduced grid and budget (stated in the outputs).") var quick = false
    @Option(help: "Synthetic data: points.") var n: Int = 50_000
    @Option(help: "Synthetic data: dimensions.") var dim: Int = 300
    @Option(help: "Output directory.") var out: String
    @Flag(help: "Print the results as JSON (a list of cells) on stdout.") var json = false
    @Flag(help: ArgumentHelp("Save each cell's chosen model to OUT/models/z<Z>-arch<A>/ (a 'pesvi train' model directory).",
                             discussion: "'pesvi evaluate --model OUT/models/z64-arch2 --seed <seed + 9>' repeats that cell's comparison."))
    var saveModels = false
    @Flag(help: "Keep the cells (and a cell's search configurations) already finished in OUT/cells/ under the same protocol; compute only the others.")
    var resume = false
    @Option(help: ArgumentHelp("Threads of the training work (searches, pseudo-encoder, pace searches); default: --threads.",
                               discussion: "The trained models and every number but the wall times are the same for any count; --threads 1 --train-threads 2 trains a cell that runs alone on both cores while its comparison is timed on one, like the other cells'."))
    var trainThreads: Int?
    @OptionGroup var common: CommonOptions

    func parseList<T>(_ s: String, _ name: String, _ f: (String) -> T?) throws -> [T] {
        let v = s.split(separator: ",").map { f($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ $0 != nil }) else { throw ValidationError("\(name): cannot read '\(s)'") }
        return v.map { $0! }
    }

    func validate() throws {
        _ = try parseList(z, "--z") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        _ = try parseList(arch, "--arch") { Int($0).flatMap(Architecture.init(number:)) }
        guard n >= 10, dim > 0 else { throw ValidationError("--n must be at least 10 and --dim positive") }
        if let t = trainThreads { guard (1...2).contains(t) else { throw ValidationError("--train-threads must be 1 or 2, got \(t)") } }
    }

    func run() throws {
        let t0 = Date()
        let data: DataMatrix
        let name: String
        switch dataset {
        case "synthetic":
            data = try SyntheticDataGenerator(n: n, dim: dim, seed: common.seed).generate()
            name = "synthetic (N=\(n), d=\(dim), seed \(common.seed))"
        case "digits" where !FileManager.default.fileExists(atPath: "digits"):
            data = BuiltinDatasets.digits(); name = "digits"
        default:
            data = try DataFiles.read(dataset); name = dataset
        }
        var o = quick ? ReproductionOptions.quick() : ReproductionOptions()
        o.latents = try parseList(z, "--z") { Int($0) }
        o.architectures = try parseList(arch, "--arch") { Int($0).flatMap(Architecture.init(number:)) }
        o.seed = common.seed
        o.threads = common.threads
        o.trainingThreads = trainThreads
        if saveModels { o.modelsDirectory = URL(fileURLWithPath: out).appendingPathComponent("models").path }
        let quiet = common.quiet
        if !quiet { printErr("reproduce on \(name) (\(data.rows)×\(data.cols)): \(o.protocolDescription)") }
        let store = ReproductionCellStore(directory: URL(fileURLWithPath: out).appendingPathComponent("cells").path,
                                          protocolKey: ReproductionCellStore.protocolKey(dataset: name, data: data, options: o))
        let cells = try PaperReproduction.run(data: data, dataset: name, options: o, store: store, resume: resume,
                                              log: { line in if !quiet { printErr(line) } },
                                              cellFinished: { done in
                                                  try PaperReproduction.write(done, dataset: name, options: o,
                                                                              totalSeconds: Date().timeIntervalSince(t0), to: out)
                                              })
        let seconds = Date().timeIntervalSince(t0)  // the outputs were written after the last cell
        let expected = o.latents.count * o.architectures.count
        if cells.count < expected {
            printErr("note: \(expected - cells.count) of \(expected) cells are being computed by other runs on \(out) and are not in these outputs; "
                     + "run the same command with --resume when those runs finish to write the complete tables")
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(cells.map(\.comparison)), as: UTF8.self))
        } else {
            print(String(format: "wrote %@/results.md, results.json and %d plots in %.1f s", out, cells.count, seconds))
        }
    }
}
