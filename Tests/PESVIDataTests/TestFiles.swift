import Foundation
import Testing
@testable import PESVIData

/// A unique path under the temporary directory (nothing is created).
func temporaryURL(_ ext: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-data-test-\(UUID().uuidString).\(ext)")
}

/// Writes `bytes` to a fresh temporary file and returns its URL.
func temporaryFile(_ bytes: [UInt8], ext: String) throws -> URL {
    let url = temporaryURL(ext)
    try Data(bytes).write(to: url)
    return url
}

func temporaryFile(_ text: String, ext: String = "csv") throws -> URL {
    try temporaryFile(Array(text.utf8), ext: ext)
}

/// Runs `body`, which must throw a `DataError`; returns it (nil, with a recorded issue, otherwise).
func dataError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> DataError? {
    do {
        try body()
        Issue.record("expected a DataError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as DataError {
        #expect(!e.description.contains("\n"), "message is not one line: \(e.description)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected a DataError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Bit patterns, so that −0.0 ≠ 0.0 and NaN payloads would count.
func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }
