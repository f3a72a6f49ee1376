import Foundation
import PESVIData
import PESVIModels

/// Reading data files by extension and converting between the data and engine types.
public enum DataFiles {
    /// Reads a `.csv` (optional header, comma or whitespace separated) or `.npy` file.
    /// Throws a ``DataError`` naming the file and the problem; non-finite values are refused.
    public static func read(_ path: String) throws -> DataMatrix {
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "csv", "txt", "tsv": return try CSV.read(url)
        case "npy": return try NPY.read(url)
        default:
            // A typo ("digitz", "data.nyp") is more often a wrong name than a wrong format.
            guard FileManager.default.fileExists(atPath: path) else { throw DataError.fileNotFound(path: path) }
            let kind = url.pathExtension.isEmpty ? "no file extension" : "unknown data file type '.\(url.pathExtension)'"
            throw DataError.unsupported(path: path, detail: "\(kind) (use .csv or .npy)")
        }
    }

    /// Writes `.npy` or `.csv` by the extension of `path`, atomically.
    public static func write(_ m: DataMatrix, to path: String) throws {
        try checkOutputType(path)
        let url = URL(fileURLWithPath: path)
        switch url.pathExtension.lowercased() {
        case "npy": try NPY.write(m, to: url)
        default: try CSV.write(m, to: url)
        }
    }

    /// Throws unless `path` names an output type ``write(_:to:)`` writes (.npy or .csv), so a
    /// command can refuse a wrong name before its work rather than after.
    public static func checkOutputType(_ path: String) throws {
        let ext = URL(fileURLWithPath: path).pathExtension
        guard ["npy", "csv"].contains(ext.lowercased()) else {
            throw DataError.unsupported(path: path, detail: "unknown output type '.\(ext)' (use .csv or .npy)")
        }
    }

    /// The engine's view of a data matrix.
    public static func dataset(_ m: DataMatrix) -> Dataset { Dataset(rows: m.rows, cols: m.cols, values: m.values) }
}
