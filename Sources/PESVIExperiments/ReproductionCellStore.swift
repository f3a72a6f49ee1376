import Foundation
import PESVIData
import PESVIModels

/// Finished `reproduce` cells on disk, one file per cell (`OUT/cells/z64-arch2.json`), so a run
/// of many hours can be resumed (`reproduce --resume`) after an interruption: cells already
/// finished under the same protocol are read back instead of recomputed, and the outputs are
/// rebuilt from them exactly (curves, run lengths and all).
///
/// A file records the protocol it was computed under (``protocolKey(dataset:data:options:)``:
/// data set name, shape and a checksum of its values, the protocol description with its grids,
/// budgets and seed, the objective). Resuming with a different protocol is refused with an
/// error naming the file, so cells of two protocols are never mixed in one table. Files are
/// written atomically; a truncated or corrupt one is an error, not a silent recomputation.
public struct ReproductionCellStore: Sendable {
    public let directory: URL
    public let protocolKey: String

    public init(directory: String, protocolKey: String) {
        self.directory = URL(fileURLWithPath: directory)
        self.protocolKey = protocolKey
    }

    /// The key a cell file must carry to be resumed: everything that decides its numbers.
    public static func protocolKey(dataset: String, data: DataMatrix, options o: ReproductionOptions) -> String {
        // FNV-1a over the values' bit patterns: a changed data file is a different protocol.
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for v in data.values {
            h ^= UInt64(v.bitPattern)
            h &*= 0x0000_0100_0000_01B3
        }
        return "\(dataset) | \(data.rows)×\(data.cols) values, checksum \(String(h, radix: 16)) | objective \(o.objective) | \(o.protocolDescription)"
    }

    /// The file of cell (|z|, arch): `z64-arch2.json`.
    public func url(z: Int, architecture: Architecture) -> URL {
        directory.appendingPathComponent(PaperReproduction.modelName(z: z, architecture: architecture) + ".json")
    }

    /// The stored cell, or nil when there is none. Throws when the file is unreadable, or
    /// was written under another protocol.
    public func load(z: Int, architecture: Architecture) throws -> ReproductionCell? {
        let u = url(z: z, architecture: architecture)
        guard FileManager.default.fileExists(atPath: u.path) else { return nil }
        let stored: StoredCell
        do {
            stored = try Self.decoder().decode(StoredCell.self, from: Data(contentsOf: u))
        } catch {
            throw ModelStoreError.invalid("\(u.path): not a readable reproduce cell (\(error.localizedDescription)); remove it to recompute the cell")
        }
        guard stored.formatVersion == StoredCell.currentVersion else {
            throw ModelStoreError.invalid("\(u.path): cell format \(stored.formatVersion), this pesvi reads \(StoredCell.currentVersion); remove it to recompute the cell")
        }
        guard stored.protocolKey == protocolKey else {
            throw ModelStoreError.invalid("""
            \(u.path) was computed under another protocol and cannot be resumed here:
              stored: \(stored.protocolKey)
              now:    \(protocolKey)
            Use another --out, or remove the cells/ directory to start over.
            """)
        }
        return stored.cell.cell
    }

    /// Writes the cell's file atomically (creating the directory).
    public func save(_ cell: ReproductionCell, architecture: Architecture) throws {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ModelStoreError.invalid("\(directory.path): cannot create the cells directory: \(error.localizedDescription)")
        }
        let stored = StoredCell(formatVersion: StoredCell.currentVersion, protocolKey: protocolKey, cell: StoredReproductionCell(cell))
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try e.encode(stored), to: url(z: cell.comparison.z, architecture: architecture))
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}

/// The file's content. Unlike the `evaluate --json` schema, it keeps every field the outputs
/// use (curves for the plots, run lengths, the pace), so a resumed run's outputs equal an
/// uninterrupted one's.
struct StoredCell: Codable {
    static let currentVersion = 1
    var formatVersion: Int
    var protocolKey: String
    var cell: StoredReproductionCell
}

struct StoredMethodResult: Codable, Equatable {
    var reconstruction: Double
    var steps: Double?
    var seconds: Double
    var hasSteps: Bool
    var curve: [Double]
    var reconstructionAtMean: Double
    var maxStepsPerPoint: Int?
    var runSteps: Double?
    var runSeconds: Double?

    init(_ m: MethodResult) {
        reconstruction = m.reconstruction; steps = m.steps; seconds = m.seconds; hasSteps = m.hasSteps; curve = m.curve
        reconstructionAtMean = m.reconstructionAtMean; maxStepsPerPoint = m.maxStepsPerPoint; runSteps = m.runSteps; runSeconds = m.runSeconds
    }

    var result: MethodResult {
        var m = MethodResult(reconstruction: reconstruction, steps: steps, seconds: seconds, hasSteps: hasSteps, curve: curve)
        m.reconstructionAtMean = reconstructionAtMean; m.maxStepsPerPoint = maxStepsPerPoint; m.runSteps = runSteps; m.runSeconds = runSeconds
        return m
    }
}

struct StoredReproductionCell: Codable {
    var dataset: String
    var z: Int
    var arch: String
    var methods: [String: StoredMethodResult]
    var order: [String]
    var sviObjective: Double
    var sviLearningRate: Float
    var comparisonPace: Float
    var points: Int
    var vaeLearningRate: Float?
    var decoderLearningRate: Float
    var latentLearningRate: Float
    var initialLogVariance: Float
    var pace: Float
    var autoPace: Float?
    var seconds: Double

    init(_ c: ReproductionCell) {
        let r = c.comparison
        dataset = r.dataset; z = r.z; arch = r.arch; methods = r.methods.mapValues(StoredMethodResult.init); order = r.order
        sviObjective = r.sviObjective; sviLearningRate = r.sviLearningRate; comparisonPace = r.pace; points = r.points
        vaeLearningRate = c.vaeLearningRate; decoderLearningRate = c.decoderLearningRate; latentLearningRate = c.latentLearningRate
        initialLogVariance = c.initialLogVariance; pace = c.pace; autoPace = c.autoPace; seconds = c.seconds
    }

    var cell: ReproductionCell {
        var r = ComparisonReport(dataset: dataset, z: z, arch: arch, methods: methods.mapValues(\.result), order: order)
        r.sviObjective = sviObjective; r.sviLearningRate = sviLearningRate; r.pace = comparisonPace; r.points = points
        return ReproductionCell(comparison: r, vaeLearningRate: vaeLearningRate, decoderLearningRate: decoderLearningRate,
                                latentLearningRate: latentLearningRate, initialLogVariance: initialLogVariance, pace: pace,
                                autoPace: autoPace, seconds: seconds)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A claim on one cell by one running `reproduce --resume` (`OUT/cells/z64-arch2.lock`), so
/// several runs started on the same output directory share its cells instead of computing
/// the same one twice: a run skips a cell another live run holds. The file, created
/// exclusively (`O_EXCL`), names the process and host; a claim whose process no longer exists
/// on this host is stale and taken over. A claim from another host is respected (remove the
/// file by hand if that run is gone).
public final class CellClaim {
    public let url: URL
    private var released = false

    init(url: URL) { self.url = url }

    /// Removes the claim (once).
    public func release() {
        guard !released else { return }
        released = true
        try? FileManager.default.removeItem(at: url)
    }

    deinit { release() }

    /// The process and host a claim file names, or nil when it names none.
    static func holder(of text: String) -> (pid: Int32, host: String)? {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 2, let pid = Int32(parts[0]) else { return nil }
        return (pid, String(parts[1]))
    }

    /// Whether a claim's holder may still be running: always for another host (it cannot
    /// be checked from here), else whether the process exists.
    static func isAlive(pid: Int32, host: String) -> Bool {
        host != hostName || kill(pid, 0) == 0 || errno == EPERM
    }

    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }
}

extension ReproductionCellStore {
    /// The claim file of cell (|z|, arch): `z64-arch2.lock`.
    public func claimURL(z: Int, architecture: Architecture) -> URL {
        directory.appendingPathComponent(PaperReproduction.modelName(z: z, architecture: architecture) + ".lock")
    }

    /// Claims the cell for this process, or returns nil and the holder ("pid 123 on host")
    /// when another live run holds it. A stale claim (its process gone from this host) is
    /// replaced.
    public func claim(z: Int, architecture: Architecture) throws -> (claim: CellClaim?, holder: String?) {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ModelStoreError.invalid("\(directory.path): cannot create the cells directory: \(error.localizedDescription)")
        }
        let u = claimURL(z: z, architecture: architecture)
        let me = "\(getpid()) \(CellClaim.hostName)\n"
        for _ in 0..<2 {
            let fd = open(u.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let ok = me.utf8CString.withUnsafeBufferPointer { b in write(fd, b.baseAddress, b.count - 1) == b.count - 1 }
                close(fd)
                guard ok else { try? FileManager.default.removeItem(at: u); throw ModelStoreError.invalid("\(u.path): cannot write the cell's claim") }
                return (CellClaim(url: u), nil)
            }
            guard errno == EEXIST else { throw ModelStoreError.invalid("\(u.path): cannot create the cell's claim (errno \(errno))") }
            // Held: by a live process, or stale?
            guard let (pid, host) = CellClaim.holder(of: (try? String(contentsOf: u, encoding: .utf8)) ?? "") else {
                return (nil, "an unreadable claim; remove \(u.path) if no run holds it")
            }
            if CellClaim.isAlive(pid: pid, host: host) { return (nil, "pid \(pid) on \(host)") }
            try? FileManager.default.removeItem(at: u)   // stale: its process is gone; try once more
        }
        return (nil, "another run (its claim was replaced while this one took over)")
    }
}

/// What a (possibly running) `reproduce` has in `OUT/cells/`: finished cells with their
/// times, searches in progress with their journaled configurations, and claims with whether
/// their process is alive. Read-only; for `pesvi progress`.
public enum ReproductionProgress {
    public struct Report: Equatable, Sendable {
        public struct Done: Equatable, Sendable { public var cell: String; public var seconds: Double }
        public struct Searching: Equatable, Sendable {
            public var cell: String
            public var sviDone: Int, vaeDone: Int
            public var seconds: Double
            public var bestSVIValidation: Double?
        }
        public struct Claimed: Equatable, Sendable { public var cell: String; public var holder: String; public var alive: Bool }
        public var done: [Done] = []
        public var searching: [Searching] = []
        public var claimed: [Claimed] = []
        /// Files that could not be read (named, with the reason).
        public var unreadable: [String] = []
    }

    /// Reads `cellsDirectory` (`OUT/cells`). Throws only when the directory cannot be listed.
    public static func read(cellsDirectory: String) throws -> Report {
        let dir = URL(fileURLWithPath: cellsDirectory)
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() } catch {
            throw ModelStoreError.invalid("\(cellsDirectory): cannot list it (\(error.localizedDescription)); is it a reproduce output's cells/ directory?")
        }
        var r = Report()
        for name in names {
            let u = dir.appendingPathComponent(name)
            if name.hasSuffix(".search.safetensors") {
                let cell = String(name.dropLast(".search.safetensors".count))
                do {
                    let file = try Safetensors.read(u)
                    guard let text = file.metadata["journal"] else { r.unreadable.append("\(name): no search journal"); continue }
                    let j = try ReproductionCellStore.decoder().decode(SearchCheckpoint.Journal.self, from: Data(text.utf8))
                    let seconds = j.svi.reduce(0) { $0 + $1.seconds } + j.vae.reduce(0) { $0 + $1.seconds }
                    r.searching.append(.init(cell: cell, sviDone: j.svi.count, vaeDone: j.vae.count, seconds: seconds, bestSVIValidation: j.bestSVIValidation))
                } catch { r.unreadable.append("\(name): \(error)") }
            } else if name.hasSuffix(".json") {
                do {
                    let stored = try ReproductionCellStore.decoder().decode(StoredCell.self, from: Data(contentsOf: u))
                    r.done.append(.init(cell: String(name.dropLast(5)), seconds: stored.cell.seconds))
                } catch { r.unreadable.append("\(name): \(error.localizedDescription)") }
            } else if name.hasSuffix(".lock") {
                let cell = String(name.dropLast(5))
                guard let (pid, host) = CellClaim.holder(of: (try? String(contentsOf: u, encoding: .utf8)) ?? "") else {
                    r.claimed.append(.init(cell: cell, holder: "unreadable claim", alive: false)); continue
                }
                r.claimed.append(.init(cell: cell, holder: "pid \(pid) on \(host)", alive: CellClaim.isAlive(pid: pid, host: host)))
            }
        }
        return r
    }

    /// The report as text, one line per file, then the total of the finished cells' times.
    public static func text(_ r: Report) -> String {
        func hours(_ s: Double) -> String { String(format: "%.0f s (%.2f h)", s, s / 3600) }
        var lines: [String] = []
        for d in r.done { lines.append("\(d.cell): done, computed in \(hours(d.seconds))") }
        for s in r.searching {
            let best = s.bestSVIValidation.map { String(format: "; best SVI validation so far %.5f", $0) } ?? ""
            lines.append("\(s.cell): search in progress, \(s.sviDone) SVI and \(s.vaeDone) VAE configurations journaled in \(hours(s.seconds))\(best)")
        }
        for c in r.claimed { lines.append("\(c.cell): claimed by \(c.holder)\(c.alive ? "" : " (stale: that process is gone)")") }
        for u in r.unreadable { lines.append("unreadable: \(u)") }
        let total = r.done.reduce(0) { $0 + $1.seconds }
        lines.append("\(r.done.count) cells done, their own times add up to \(hours(total)); \(r.searching.count) in progress")
        return lines.joined(separator: "\n")
    }
}
