import Foundation
import PESVIData
import PESVIModels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a (possibly running) `reproduce` has in `OUT/cells/`: finished cells with their
/// times, searches in progress with their journaled configurations, and claims with whether
/// their process is alive. Read-only; for `pesvi progress`.
public enum ReproductionProgress {
    public struct Report: Equatable, Sendable {
        public struct Done: Equatable, Sendable { public var cell: String; public var seconds: Double }
        public struct Searching: Equatable, Sendable {
            public var cell: String
            public var sviDone: Int, vaeDone: Int
            /// The search's size, when its journal records it.
            public var sviTotal: Int? = nil, vaeTotal: Int? = nil
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
                    r.searching.append(.init(cell: cell, sviDone: j.svi.count, vaeDone: j.vae.count, sviTotal: j.sviTotal, vaeTotal: j.vaeTotal,
                                             seconds: seconds, bestSVIValidation: j.bestSVIValidation))
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
            func count(_ done: Int, _ total: Int?) -> String { total.map { "\(done) of \($0)" } ?? "\(done)" }
            lines.append("\(s.cell): search in progress, \(count(s.sviDone, s.sviTotal)) SVI and \(count(s.vaeDone, s.vaeTotal)) VAE configurations journaled in \(hours(s.seconds))\(best)")
        }
        for c in r.claimed { lines.append("\(c.cell): claimed by \(c.holder)\(c.alive ? "" : " (stale: that process is gone)")") }
        for u in r.unreadable { lines.append("unreadable: \(u)") }
        let total = r.done.reduce(0) { $0 + $1.seconds }
        lines.append("\(r.done.count) cells done, their own times add up to \(hours(total)); \(r.searching.count) in progress")
        return lines.joined(separator: "\n")
    }
}
