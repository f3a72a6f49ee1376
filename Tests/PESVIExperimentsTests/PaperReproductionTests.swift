import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PESVIData
import PESVIModels
@testable import PESVIExperiments

/// The whole `reproduce` path on a tiny data set: tables, JSON and plots written and well formed.
@Suite struct PaperReproductionTests {
    @Test func tinyReproductionWritesTablesJSONAndPlots() throws {
        let data = try SyntheticDataGenerator(n: 240, dim: 10, seed: 3).generate()
        var o = ReproductionOptions.quick()
        o.latents = [2, 3]
        o.architectures = [.arch1, .arch2]
        o.vaeRates = [1e-2]
        o.decoderRates = [1e-2]
        o.latentRates = [1e-1]
        o.maxEpochs = 8; o.patience = 4; o.encoderEpochs = 8
        o.paceCandidates = [0.5, 0.05]
        o.sviRule = .plateau(window: 10, tolerance: 1e-2, maxSteps: 200)
        let cells = try PaperReproduction.run(data: data, dataset: "tiny", options: o)
        #expect(cells.count == 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-repro-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try PaperReproduction.write(cells, dataset: "tiny", options: o, totalSeconds: 1.5, to: dir.path)

        let md = try String(contentsOf: dir.appendingPathComponent("results.md"), encoding: .utf8)
        #expect(md.contains("QUICK protocol"))
        for header in ["## Arch1", "## Arch2", "## Steps", "## Chosen hyperparameters", "| Model \\ |z| | 2 | 3 |"] {
            #expect(md.contains(header), "results.md lacks \(header)")
        }
        for row in ["| VAE |", "| SVI |", "| PE-SVI-0 |", "| PE-SVI-25 |"] {
            #expect(md.components(separatedBy: row).count - 1 == 2, "\(row) should appear once per architecture")
        }
        // The beyond-paper table states the refinements' settings it was made with.
        #expect(md.contains("## Beyond the paper") && md.contains("achieves 0.1 of its damped model's predicted decrease")
                && md.contains("initial damping 0.001 relative to diag H") && md.contains("at most 50 steps)"))

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("results.json"))) as! [[String: Any]]
        #expect(json.count == 4)
        for cell in json {
            #expect(cell["dataset"] as? String == "tiny")
            #expect([2, 3].contains(cell["z"] as? Int ?? 0))
            let methods = cell["methods"] as! [String: [String: Any]]
            for m in ["VAE", "SVI", "PE-SVI-0", "PE-SVI-25", "PE-SVI-auto"] { #expect(methods[m] != nil, "missing \(m)") }
            #expect(methods["VAE"]!["steps"] == nil)
            #expect(methods["SVI"]!.keys.contains("steps"))   // a number or null
            for (_, v) in methods {
                let r = v["reconstruction"] as? Double ?? .nan
                #expect(r.isFinite)
            }
        }
        let bytes = try Data(contentsOf: dir.appendingPathComponent("results.json"))
        let decoded: [ComparisonReport] = try JSONDecoder().decode([ComparisonReport].self, from: bytes)
        #expect(decoded.count == 4)

        for cell in cells {
            let url = dir.appendingPathComponent(PaperReproduction.plotName(cell))
            let svg = try Data(contentsOf: url)
            let parser = XMLParser(data: svg)
            #expect(parser.parse(), "\(url.lastPathComponent) is not well-formed XML")
            #expect(String(decoding: svg, as: UTF8.self).contains("SVI"))
        }
    }
}

extension PaperReproductionTests {
    /// `--train-threads`: training on two threads gives the same cells as on one (the same chosen
    /// rates and paces, and bit for bit the same reconstructions, steps and curves); only wall
    /// times differ. The comparison stays on `threads`.
    @Test func trainingThreadsChangeNoNumber() throws {
        let data = try SyntheticDataGenerator(n: 400, dim: 8, seed: 7).generate()
        var o = ReproductionCellStoreTests.tinyOptions(latents: [2])
        o.architectures = [.arch1, .arch3]
        o.decoderRates = [1e-2, 1e-3]
        o.batchSize = 300  // 320 training rows: batches of 128 + 128 + 44 rows in chunks, shared out over the threads
        o.threads = 1
        #expect(o.searchThreads == 1)
        let one = try PaperReproduction.run(data: data, dataset: "tiny", options: o)
        o.trainingThreads = 2
        #expect(o.searchThreads == 2 && o.comparisonOptions.threads == 1)
        let two = try PaperReproduction.run(data: data, dataset: "tiny", options: o)
        #expect(one.count == 2 && two.count == 2)
        for (a, b) in zip(one, two) {
            #expect(a.decoderLearningRate == b.decoderLearningRate && a.vaeLearningRate == b.vaeLearningRate
                    && a.pace == b.pace && a.autoPace == b.autoPace && a.autoStepRule == b.autoStepRule)
            #expect(a.comparison.methods.keys.sorted() == b.comparison.methods.keys.sorted())
            for (name, ma) in a.comparison.methods {
                let mb = b.comparison.methods[name]!
                #expect(ma.reconstruction == mb.reconstruction && ma.steps == mb.steps && ma.curve == mb.curve, "\(name)")
            }
        }
    }
}

/// `reproduce --resume`: finished cells are stored per cell and read back exactly; a stored
/// cell of another protocol, or a corrupt one, is an error.
@Suite struct ReproductionCellStoreTests {
    static func tinyOptions(latents: [Int]) -> ReproductionOptions {
        var o = ReproductionOptions.quick()
        o.latents = latents
        o.architectures = [.arch2]
        o.vaeRates = [1e-2]
        o.decoderRates = [1e-2]
        o.latentRates = [1e-1]
        o.initialLogVariances = [0]
        o.maxEpochs = 6; o.patience = 3; o.encoderEpochs = 6
        o.paceCandidates = [0.5, 0.05]
        o.sviRule = .plateau(window: 10, tolerance: 1e-2, maxSteps: 150)
        return o
    }

    /// results.md without its run-time line, and every plot: what a resumed run must reproduce.
    static func outputs(_ cells: [ReproductionCell], _ o: ReproductionOptions) -> [String] {
        let md = PaperReproduction.markdown(cells, dataset: "tiny", options: o, totalSeconds: 0)
        return [md] + cells.map { PaperReproduction.plot($0).svg() }
    }

    @Test func resumeKeepsFinishedCellsExactly() throws {
        let data = try SyntheticDataGenerator(n: 200, dim: 8, seed: 5).generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-cells-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = Self.tinyOptions(latents: [2])
        let key = ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: one)
        let store = ReproductionCellStore(directory: dir.path, protocolKey: key)
        var finished = 0
        let first = try PaperReproduction.run(data: data, dataset: "tiny", options: one, store: store, cellFinished: { finished = $0.count })
        #expect(finished == 1)
        #expect(FileManager.default.fileExists(atPath: store.url(z: 2, architecture: .arch2).path))

        // The same protocol with one more cell: |z| = 2 is read back, |z| = 3 computed.
        let two = Self.tinyOptions(latents: [2, 3])
        let store2 = ReproductionCellStore(directory: dir.path, protocolKey: ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: two))
        var log: [String] = []
        let resumed = try PaperReproduction.run(data: data, dataset: "tiny", options: two, store: store2, resume: true, log: { log.append($0) })
        #expect(resumed.count == 2)
        #expect(log.contains { $0.contains("|z|=2 Arch2: kept from") })
        #expect(log.contains { $0.contains("|z|=3 Arch2: searching") })
        #expect(!log.contains { $0.contains("|z|=2 Arch2: searching") })
        let keptSame = Self.outputs([resumed[0]], one) == Self.outputs(first, one)
        #expect(keptSame, "a kept cell must give the outputs (tables, run lengths, plots) it gave when computed")
        #expect(resumed[0].comparison.methods["PE-SVI-GN"]?.curve.isEmpty == false)
        #expect(resumed[0].autoPace == first[0].autoPace && resumed[0].autoStepRule == first[0].autoStepRule && first[0].autoStepRule != nil)

        // A third run resumes both; without --resume everything is recomputed.
        log = []
        let again = try PaperReproduction.run(data: data, dataset: "tiny", options: two, store: store2, resume: true, log: { log.append($0) })
        #expect(log.filter { $0.contains("kept from") }.count == 2 && !log.contains { $0.contains("searching") })
        let againSame = Self.outputs(again, two) == Self.outputs(resumed, two)
        #expect(againSame, "resuming every cell must give the same outputs")
    }

    @Test func resumeRefusesAnotherProtocolOrACorruptCell() throws {
        let data = try SyntheticDataGenerator(n: 200, dim: 8, seed: 5).generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-cells-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = Self.tinyOptions(latents: [2])
        let store = ReproductionCellStore(directory: dir.path, protocolKey: ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: o))
        _ = try PaperReproduction.run(data: data, dataset: "tiny", options: o, store: store)

        // Another seed, other data: different protocols, refused with the file named.
        var seeded = o
        seeded.seed = 1
        var changed = data
        changed.values[0] += 1
        for key in [ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: seeded),
                    ReproductionCellStore.protocolKey(dataset: "tiny", data: changed, options: o)] {
            let other = ReproductionCellStore(directory: dir.path, protocolKey: key)
            #expect(key != store.protocolKey)
            let error = #expect(throws: ModelStoreError.self) { try other.load(z: 2, architecture: .arch2) }
            #expect("\(error.map { $0 } as Any)".contains("another protocol"))
        }
        // No file for a cell: nil, not an error.
        #expect(try store.load(z: 3, architecture: .arch2) == nil)
        // A truncated file is an error.
        let url = store.url(z: 2, architecture: .arch2)
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count / 2).write(to: url)
        let error = #expect(throws: ModelStoreError.self) { try store.load(z: 2, architecture: .arch2) }
        #expect("\(error.map { $0 } as Any)".contains("not a readable reproduce cell"))
    }

    /// A cell interrupted in its search resumes from the search checkpoint: the configurations
    /// it had finished are not trained again, and the cell comes out as from an uninterrupted
    /// run (the same winners, rebuilt from the stored floats; every number but the times).
    @Test func resumeContinuesAnInterruptedSearch() throws {
        let data = try SyntheticDataGenerator(n: 200, dim: 8, seed: 5).generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-search-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = Self.tinyOptions(latents: [2])
        // −4 first: it wins this cell, so the winner is the journaled configuration and the
        // fresh one must lose to it (the comparison across the interruption is exercised).
        o.initialLogVariances = [-4, 0]
        o.vaeRates = [1e-2, 1e-3]
        let store = ReproductionCellStore(directory: dir.path, protocolKey: ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: o))
        let search = store.searchURL(z: 2, architecture: .arch2)
        let saved = dir.appendingPathComponent("saved.search")
        // The uninterrupted run. When the second SVI configuration reports, the checkpoint on
        // disk holds the first one only: keep a copy, as if the run had been killed there.
        var copied = false
        let first = try PaperReproduction.run(data: data, dataset: "tiny", options: o, store: store, log: { line in
            if !copied && line.contains("initial log σ² 0:") {
                copied = (try? FileManager.default.copyItem(at: search, to: saved)) != nil
            }
        })
        #expect(copied)
        #expect(first[0].initialLogVariance == -4, "the test needs the journaled configuration to win")
        #expect(!FileManager.default.fileExists(atPath: search.path), "a finished cell leaves no search checkpoint")
        #expect(try store.loadSearch(z: 2, architecture: .arch2) == nil)
        try FileManager.default.copyItem(at: saved, to: search)
        let partial = try #require(try store.loadSearch(z: 2, architecture: .arch2))
        #expect(partial.svi.count == 1 && partial.vae.isEmpty && partial.bestSVI != nil && partial.bestVAE == nil)
        // `pesvi progress` sees the finished cell and the search in progress.
        let progress = try ReproductionProgress.read(cellsDirectory: dir.path)
        #expect(progress.done.map(\.cell) == ["z2-arch2"] && progress.done[0].seconds == first[0].seconds)
        let sviTotal = o.decoderRates.count * o.latentRates.count * o.initialLogVariances.count
        #expect(progress.searching.map(\.cell) == ["z2-arch2"] && progress.searching[0].sviDone == 1 && progress.searching[0].vaeDone == 0
                && progress.searching[0].sviTotal == sviTotal && progress.searching[0].vaeTotal == 2)
        #expect(progress.searching[0].bestSVIValidation == partial.bestSVI?.validation && progress.unreadable.isEmpty)
        #expect(ReproductionProgress.text(progress).contains("z2-arch2: search in progress, 1 of \(sviTotal) SVI and 0 of 2 VAE configurations"))

        // The killed run, resumed: its cell file never existed.
        try FileManager.default.removeItem(at: store.url(z: 2, architecture: .arch2))
        var log: [String] = []
        let resumed = try PaperReproduction.run(data: data, dataset: "tiny", options: o, store: store, resume: true, log: { log.append($0) })
        #expect(log.contains { $0.contains("resuming its search") && $0.contains("1 SVI and 0 VAE configurations done") })
        #expect(log.filter { $0.contains("kept from the search checkpoint") }.count == 1)
        #expect(log.filter { $0.contains("  SVI decoder") && !$0.contains("kept") }.count == 1)
        #expect(log.filter { $0.contains("  VAE ") && !$0.contains("kept") }.count == 2)
        // Everything but the wall times (the steps table's seconds are measured anew).
        func numbers(_ c: ReproductionCell) -> [String] {
            c.comparison.order.map { name in
                let m = c.comparison.methods[name]!
                return "\(name) \(m.reconstruction) \(m.reconstructionAtMean) \(String(describing: m.steps)) \(m.curve) \(String(describing: m.runSteps)) \(String(describing: m.maxStepsPerPoint))"
            } + ["\(c.comparison.sviObjective) \(c.comparison.pace) \(String(describing: c.autoPace)) \(c.decoderLearningRate) \(c.latentLearningRate)"]
        }
        #expect(numbers(resumed[0]) == numbers(first[0]), "a resumed search must give the cell an uninterrupted run gives")
        let samePlots = resumed.map { PaperReproduction.plot($0).svg() } == first.map { PaperReproduction.plot($0).svg() }
        #expect(samePlots, "the resumed cell's plot must equal the uninterrupted one's")
        #expect(resumed[0].initialLogVariance == first[0].initialLogVariance && resumed[0].vaeLearningRate == first[0].vaeLearningRate)
        #expect(!FileManager.default.fileExists(atPath: search.path))

        // Another protocol's checkpoint, or a truncated one, is refused with the file named.
        try FileManager.default.copyItem(at: saved, to: search)
        var seeded = o
        seeded.seed = 1
        let other = ReproductionCellStore(directory: dir.path, protocolKey: ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: seeded))
        let refused = #expect(throws: ModelStoreError.self) { try other.loadSearch(z: 2, architecture: .arch2) }
        #expect("\(refused.map { $0 } as Any)".contains("another protocol"))
        let bytes = try Data(contentsOf: search)
        try bytes.prefix(bytes.count / 2).write(to: search)
        let broken = #expect(throws: ModelStoreError.self) { try store.loadSearch(z: 2, architecture: .arch2) }
        #expect("\(broken.map { $0 } as Any)".contains("not a readable search checkpoint"))
    }

    /// Runs sharing one directory: a claimed cell is skipped by another --resume run while its
    /// holder lives; a claim whose process is gone is taken over; releasing frees the cell.
    @Test func claimsShareCellsBetweenRuns() throws {
        let data = try SyntheticDataGenerator(n: 200, dim: 8, seed: 5).generate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-claims-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let o = Self.tinyOptions(latents: [2, 3])
        let store = ReproductionCellStore(directory: dir.path, protocolKey: ReproductionCellStore.protocolKey(dataset: "tiny", data: data, options: o))

        let (held, none) = try store.claim(z: 2, architecture: .arch2)
        #expect(held != nil && none == nil)
        // Held by a live process (this one): a second claim is refused and names the holder.
        let (second, holder) = try store.claim(z: 2, architecture: .arch2)
        #expect(second == nil && holder?.contains("pid \(getpid())") == true)
        // A run meanwhile computes the other cell only, and leaves no claim behind.
        var log: [String] = []
        let cells = try PaperReproduction.run(data: data, dataset: "tiny", options: o, store: store, resume: true, log: { log.append($0) })
        #expect(cells.map(\.comparison.z) == [3])
        #expect(log.contains { $0.contains("|z|=2 Arch2: being computed by another run (pid \(getpid())") })
        #expect(!FileManager.default.fileExists(atPath: store.claimURL(z: 3, architecture: .arch2).path))
        held?.release()
        #expect(!FileManager.default.fileExists(atPath: store.claimURL(z: 2, architecture: .arch2).path))

        // A stale claim (a process that has exited) is taken over.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        try "\(child.processIdentifier) \(CellClaim.hostName)\n".write(to: store.claimURL(z: 2, architecture: .arch2), atomically: true, encoding: .utf8)
        #expect(try ReproductionProgress.read(cellsDirectory: dir.path).claimed == [.init(cell: "z2-arch2", holder: "pid \(child.processIdentifier) on \(CellClaim.hostName)", alive: false)])
        let (taken, _) = try store.claim(z: 2, architecture: .arch2)
        #expect(taken != nil)
        #expect(try ReproductionProgress.read(cellsDirectory: dir.path).claimed.map(\.alive) == [true])
        #expect(try String(contentsOf: store.claimURL(z: 2, architecture: .arch2), encoding: .utf8) == "\(getpid()) \(CellClaim.hostName)\n")
        taken?.release()
        // Another host's claim is respected.
        try "1 some-other-host\n".write(to: store.claimURL(z: 2, architecture: .arch2), atomically: true, encoding: .utf8)
        let (foreign, by) = try store.claim(z: 2, architecture: .arch2)
        #expect(foreign == nil && by == "pid 1 on some-other-host")
    }

    /// A claim names its host as the kernel does (Linux: /proc/sys/kernel/hostname), without the
    /// C string's terminating NUL.
    @Test func claimHostNameIsTheKernelsHostName() throws {
        let name = CellClaim.hostName
        #expect(!name.isEmpty && !name.contains("\0"))
        #if os(Linux)
        let kernel = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
        #expect(name == kernel.trimmingCharacters(in: .whitespacesAndNewlines))
        #endif
    }
}
