import Foundation
import Testing
@testable import PESVIData

@Suite struct AtomicFileTests {
    func scratchDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pesvi-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func replacesTheFileAndLeavesNothingElse() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("a.bin")
        try AtomicFile.write(Data([1, 2, 3]), to: url)
        try AtomicFile.write([9, 8], to: url)
        #expect(try Data(contentsOf: url) == Data([9, 8]))
        try AtomicFile.write(Data(), to: dir.appendingPathComponent("empty.bin"))
        #expect(try Data(contentsOf: dir.appendingPathComponent("empty.bin")).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["a.bin", "empty.bin"])
    }

    /// When the rename fails (the target is a non-empty directory) the old content stays and
    /// the temporary file is removed.
    @Test func failureRemovesTheTemporaryFile() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appendingPathComponent("taken")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("inner"), withIntermediateDirectories: true)
        let e = dataError { try AtomicFile.write(Data([1]), to: target) }
        #expect(e?.description.contains("renaming temporary file into place") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["taken"])
    }
}
