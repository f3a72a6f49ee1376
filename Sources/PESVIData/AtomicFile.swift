import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Atomic file replacement: readers of `url` see either the old file or the complete new one,
/// never a half-written file, even if the writer is killed.
public enum AtomicFile {
    /// Writes `data` to a fresh temporary file in `url`'s directory (`.<name>.tmp-<pid>-<random>`),
    /// flushes it to disk (fsync), and renames it over `url` with rename(2). If any step fails the
    /// temporary file is removed and `DataError.writeFailed` is thrown naming `url` and the
    /// system error. The new file has mode 0644 (before the umask).
    public static func write(_ data: Data, to url: URL) throws {
        try data.withUnsafeBytes { try write(bytes: $0, to: url) }
    }

    /// Same as `write(_:to:)` for bytes already in an array.
    public static func write(_ bytes: [UInt8], to url: URL) throws {
        try bytes.withUnsafeBytes { try write(bytes: $0, to: url) }
    }

    static func write(bytes: UnsafeRawBufferPointer, to url: URL) throws {
        let path = url.path
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func failure(_ what: String) -> DataError {
            .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw failure("creating temporary file in \(dir)") }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        var offset = 0
        while offset < bytes.count {
            let n = posixWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                let e = failure("writing temporary file"); close(fd); throw e
            }
            offset += n
        }
        if fsync(fd) != 0 { let e = failure("flushing temporary file"); close(fd); throw e }
        if close(fd) != 0 { throw failure("closing temporary file") }
        if rename(tmp, path) != 0 { throw failure("renaming temporary file into place") }
        ok = true
    }
}

/// write(2), named apart from `AtomicFile.write` so the call inside it is unambiguous.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Reads a whole file, mapping a missing file to `DataError.fileNotFound` and any other
/// failure to `DataError.unreadable`.
func readFile(_ url: URL) throws -> Data {
    let path = url.path
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
        throw DataError.fileNotFound(path: path)
    }
    if isDir.boolValue { throw DataError.unreadable(path: path, reason: "it is a directory") }
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw DataError.unreadable(path: path, reason: error.localizedDescription)
    }
}
