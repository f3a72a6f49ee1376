import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Work that a ``WorkerPool`` splits across threads: `run(thread:of:)` is called once for each
/// thread index t in 0..<threads, concurrently, and must touch only memory owned by t.
public protocol ParallelJob: AnyObject {
    func run(thread: Int, of threads: Int)
}

/// A persistent pool of worker threads for fork–join loops.
///
/// ``run(threads:job:)`` calls `job.run(thread: 0, …)` on the caller and the other thread
/// indices on workers, and returns when all are done. It allocates nothing per call (unlike
/// `DispatchQueue.concurrentPerform`, or any path through `withoutActuallyEscaping`, which
/// each allocate per call), so hot loops keep a preallocated job object. Idle workers spin
/// briefly for the next job, then sleep on a condition variable. One job runs at a time: a
/// call made while another is running (from another thread, or nested) runs every thread
/// index on the caller, so results never depend on scheduling as long as each index writes
/// only its own memory.
public final class WorkerPool: @unchecked Sendable {
    /// The process-wide pool, with one worker (for the second core).
    public static let shared = WorkerPool(workers: 1)

    public let workers: Int
    private let generation = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // The current job; written before the generation bump (release), read by workers after
    // they see it (acquire).
    private nonisolated(unsafe) var job: (any ParallelJob)? = nil
    private nonisolated(unsafe) var jobThreads = 0

    public init(workers: Int) {
        self.workers = max(workers, 0)
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for w in 0..<self.workers {
            let thread = Thread { [unowned self] in self.workerLoop(index: w + 1) }
            thread.name = "pesvi-worker-\(w + 1)"
            thread.start()
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 100_000 { continue }
                pthread_mutex_lock(mutex)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(condition, mutex) }
                pthread_mutex_unlock(mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if index < jobThreads, let job { job.run(thread: index, of: jobThreads) }
            finished.add(1, ordering: .releasing)
        }
    }

    /// Runs `job` on `threads` threads (capped at workers + 1) and waits for all of them.
    public func run(threads: Int, job: some ParallelJob) {
        let t = min(threads, workers + 1)
        if t <= 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for i in 0..<max(t, 1) { job.run(thread: i, of: max(t, 1)) }
            return
        }
        self.job = job
        jobThreads = t
        finished.store(0, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        job.run(thread: 0, of: t)
        while finished.load(ordering: .acquiring) < workers {}
        self.job = nil
        busy.store(false, ordering: .releasing)
    }

    /// Closure form: `body(p)` for p in 0..<parts, folded onto up to workers + 1 threads.
    /// Convenient off the hot path; it allocates one small object per call.
    public func run(parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || workers == 0 { for p in 0..<max(parts, 0) { body(p) }; return }
        withoutActuallyEscaping(body) { escaping in
            run(threads: parts, job: ClosureJob(parts: parts, body: escaping))
        }
    }
}

private final class ClosureJob: ParallelJob {
    let parts: Int
    let body: (Int) -> Void
    init(parts: Int, body: @escaping (Int) -> Void) { self.parts = parts; self.body = body }
    func run(thread: Int, of threads: Int) {
        var p = thread
        while p < parts { body(p); p += threads }
    }
}
