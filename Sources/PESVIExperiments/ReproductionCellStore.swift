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
        try Self.check(path: u.path, what: "cell", format: stored.formatVersion, reads: StoredCell.currentVersion,
                       storedKey: stored.protocolKey, key: protocolKey)
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

    /// Refuses a stored file (a cell, a search journal) of another format version or protocol,
    /// with a message naming the file and what to do.
    static func check(path: String, what: String, format: Int, reads: Int, storedKey: String, key: String) throws {
        guard format == reads else {
            throw ModelStoreError.invalid("\(path): \(what) format \(format), this pesvi reads \(reads); remove it to recompute the cell")
        }
        guard storedKey == key else {
            throw ModelStoreError.invalid("""
            \(path) was computed under another protocol and cannot be resumed here:
              stored: \(storedKey)
              now:    \(key)
            Use another --out, or remove the cells/ directory to start over.
            """)
        }
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
    var negativeELBO: Double?
    var maxStepsPerPoint: Int?
    var runSteps: Double?
    var runSeconds: Double?

    init(_ m: MethodResult) {
        reconstruction = m.reconstruction; steps = m.steps; seconds = m.seconds; hasSteps = m.hasSteps; curve = m.curve
        reconstructionAtMean = m.reconstructionAtMean; negativeELBO = m.negativeELBO; maxStepsPerPoint = m.maxStepsPerPoint; runSteps = m.runSteps; runSeconds = m.runSeconds
    }

    var result: MethodResult {
        var m = MethodResult(reconstruction: reconstruction, steps: steps, seconds: seconds, hasSteps: hasSteps, curve: curve)
        m.reconstructionAtMean = reconstructionAtMean; m.negativeELBO = negativeELBO; m.maxStepsPerPoint = maxStepsPerPoint; m.runSteps = runSteps; m.runSeconds = runSeconds
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
    var autoStepRule: GuardedRefinementConfiguration.StepRule?
    var gaussNewtonSchedule: GaussNewtonSchedule?
    /// The comparison's PE-SVI-GN schedule (``ComparisonReport/gaussNewtonSchedule``).
    var comparisonSchedule: String?
    var seconds: Double

    init(_ c: ReproductionCell) {
        let r = c.comparison
        dataset = r.dataset; z = r.z; arch = r.arch; methods = r.methods.mapValues(StoredMethodResult.init); order = r.order
        sviObjective = r.sviObjective; sviLearningRate = r.sviLearningRate; comparisonPace = r.pace; points = r.points
        comparisonSchedule = r.gaussNewtonSchedule
        vaeLearningRate = c.vaeLearningRate; decoderLearningRate = c.decoderLearningRate; latentLearningRate = c.latentLearningRate
        initialLogVariance = c.initialLogVariance; pace = c.pace; autoPace = c.autoPace; autoStepRule = c.autoStepRule
        gaussNewtonSchedule = c.gaussNewtonSchedule; seconds = c.seconds
    }

    var cell: ReproductionCell {
        var r = ComparisonReport(dataset: dataset, z: z, arch: arch, methods: methods.mapValues(\.result), order: order)
        r.sviObjective = sviObjective; r.sviLearningRate = sviLearningRate; r.pace = comparisonPace; r.points = points
        r.gaussNewtonSchedule = comparisonSchedule
        return ReproductionCell(comparison: r, vaeLearningRate: vaeLearningRate, decoderLearningRate: decoderLearningRate,
                                latentLearningRate: latentLearningRate, initialLogVariance: initialLogVariance, pace: pace,
                                autoPace: autoPace, autoStepRule: autoStepRule, gaussNewtonSchedule: gaussNewtonSchedule, seconds: seconds)
    }
}
