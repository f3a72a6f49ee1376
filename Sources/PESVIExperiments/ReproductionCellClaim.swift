import Foundation
import PESVIData
import PESVIModels

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
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
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
