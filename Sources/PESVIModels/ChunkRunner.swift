import PESVINumerics

/// Runs work over fixed-size chunks of rows on 1 or 2 threads, deterministically.
///
/// Chunk c always covers rows [c·chunkRows, min(total, (c+1)·chunkRows)) and draws its noise
/// from a generator seeded by (seed, step, c), so results do not depend on the thread count
/// or on which thread ran which chunk. Thread t takes chunks t, t+T, t+2T, … and uses
/// workspace t; reductions over chunks are done by the caller in chunk order.
public struct ChunkRunner: Sendable {
    public let threads: Int
    public let chunkRows: Int

    public init(threads: Int, chunkRows: Int) {
        precondition(threads >= 1 && chunkRows >= 1, "ChunkRunner needs threads ≥ 1 and chunkRows ≥ 1")
        self.threads = threads
        self.chunkRows = chunkRows
    }

    public func chunkCount(rows: Int) -> Int { (rows + chunkRows - 1) / chunkRows }

    /// Calls `body(thread, chunk, start, count)` for every chunk of `rows` rows.
    ///
    /// The body runs concurrently on several threads: it must write only memory owned by its
    /// chunk (rows start..<start+count, slot `chunk`) or by its thread (workspace `thread`).
    /// That discipline, not the type system, is what makes this safe, so the closure need
    /// not be `@Sendable`.
    public func run(rows: Int, _ body: (_ thread: Int, _ chunk: Int, _ start: Int, _ count: Int) -> Void) {
        let chunks = chunkCount(rows: rows)
        let t = min(threads, chunks)
        if t <= 1 {
            for c in 0..<chunks { body(0, c, c * chunkRows, min(chunkRows, rows - c * chunkRows)) }
            return
        }
        WorkerPool.shared.run(parts: t) { thread in
            forEachChunk(rows: rows, thread: thread, of: t) { c, start, n in body(thread, c, start, n) }
        }
    }

    /// The chunks thread `thread` of `threads` owns: c = thread, thread + threads, …
    @inline(__always)
    public func forEachChunk(rows: Int, thread: Int, of threads: Int, _ body: (_ chunk: Int, _ start: Int, _ count: Int) -> Void) {
        let chunks = chunkCount(rows: rows)
        var c = thread
        while c < chunks {
            body(c, c * chunkRows, min(chunkRows, rows - c * chunkRows))
            c += threads
        }
    }

    /// Runs a preallocated job on min(threads, chunks) threads, allocating nothing; the job
    /// walks its chunks with ``forEachChunk(rows:thread:of:_:)``.
    public func run(rows: Int, job: some ParallelJob) {
        let t = min(threads, chunkCount(rows: rows))
        if t <= 1 { job.run(thread: 0, of: 1) } else { WorkerPool.shared.run(threads: t, job: job) }
    }

    /// The generator for chunk `chunk` at step `step` of a run seeded with `seed`.
    public static func generator(seed: UInt64, step: Int, chunk: Int) -> RandomGenerator {
        RandomGenerator(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step) &* 0xD1B5_4A32_D192_ED03 &+ UInt64(chunk) &* 0xABC9_8388_FB8F_AC03)
    }
}

/// A buffer of Doubles shared by chunk bodies that each write their own slots.
final class SharedDoubles: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
    func sum() -> Double { var s = 0.0; for i in 0..<count { s += pointer[i] }; return s }
    func zero() { pointer.update(repeating: 0, count: max(count, 1)) }
}

/// Carries a value across threads where the caller guarantees there is no data race.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
