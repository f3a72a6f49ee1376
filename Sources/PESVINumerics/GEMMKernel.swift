import Dispatch
import Foundation
import Synchronization
#if arch(x86_64)
import PESVIKernelsAVX512
#endif

// Packed, register-blocked single-precision GEMM (the engine behind `gemm`).
//
// Structure (BLIS-style, see docs/BENCHMARKS.md for the measurements behind the sizes):
//   for jc over n in steps of nc:          B block  kc×nc  packed into NR-wide panels (L2/L3)
//     for pc over k in steps of kc:
//       pack op(B)[pc.., jc..]
//       for ic over m in steps of mc:      A block  mc×kc  packed into MR-tall panels (L2)
//         pack op(A)[ic.., pc..]
//         for jr over nc in steps of NR:   one B micro-panel kc×NR stays in L1
//           for ir over mc in steps of MR: MR×NR microkernel, 12 SIMD8 accumulators
//
// Packing does the transposition, so one microkernel serves NN, NT, TN and TT. Edge tiles
// are zero-padded in the packed panels; a partial tile is computed into a scratch tile and
// only its valid part is merged into C. The first k block applies `beta` (and never reads C
// when beta == 0); later k blocks accumulate.
//
// This file holds the AVX2 path (6×16 microkernel, compiled for x86-64-v3 with the rest of
// the module). On CPUs with AVX-512 the same structure runs with an 8×32 SIMD16<Float>
// microkernel from the PESVIKernelsAVX512 target (AVX512GEMM.serialGEMM); the choice is
// `GEMMKernelKind.current`, made once per process (GEMMKernelKind.swift). Splitting across
// threads, the workspaces and beta/alpha handling at the entry are shared by both kernels.

/// Register and cache blocking of the packed GEMM.
enum GEMMBlocking {
    /// Microkernel rows (broadcast A values).
    static let mr = 6
    /// Microkernel columns (two SIMD8<Float> vectors of B).
    static let nr = 16
    /// Rows of the packed A block (multiple of `mr`).
    static let mc = 144
    /// Depth of the packed blocks.
    static let kc = 256
    /// Columns of the packed B block (multiple of `nr`).
    static let nc = 4080
    /// A·B (A not transposed) with at most this many columns in the B block reads A where it
    /// is stored instead of packing it (leading dimensions that are multiples of 1024
    /// excepted; the AVX-512 kernel has the same rule, `AVX512GEMM.unpackedAColumns`).
    /// Packing copies every A value once; the tiles' broadcasts do not need it when the rows
    /// are read mc at a time (measured with `pesvi bench gemm --shape`, docs/BENCHMARKS.md).
    static let unpackedAColumns = 256
    /// Up to this depth an in-place product packs all of B at once and runs each block of A's
    /// rows through every depth block while the block is in L2 (as `AVX512GEMM.unpackedADepth`).
    static let unpackedADepth = 1024
}

/// Packing buffers of one thread of work. The buffers only grow; a warm workspace makes a
/// product allocation-free.
final class GEMMWorkspace: @unchecked Sendable {
    private(set) var packA: UnsafeMutablePointer<Float>
    private(set) var capacityA: Int
    private(set) var packB: UnsafeMutablePointer<Float>
    private(set) var capacityB: Int
    /// Scratch tile for edge tiles: MR×NR floats of the larger kernel (AVX-512: 8×32).
    let edge: UnsafeMutablePointer<Float>

    init() {
        capacityA = GEMMBlocking.mr * 64
        capacityB = GEMMBlocking.nr * 64
        packA = GEMMWorkspace.allocate(capacityA)
        packB = GEMMWorkspace.allocate(capacityB)
        edge = GEMMWorkspace.allocate(max(GEMMBlocking.mr * GEMMBlocking.nr, 8 * 32))
    }

    deinit {
        packA.deallocate()
        packB.deallocate()
        edge.deallocate()
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }

    /// Makes the A buffer hold at least `a` floats and the B buffer at least `b`.
    func reserve(a: Int, b: Int) {
        if a > capacityA {
            packA.deallocate()
            capacityA = max(a, 2 * capacityA)
            packA = GEMMWorkspace.allocate(capacityA)
        }
        if b > capacityB {
            packB.deallocate()
            capacityB = max(b, 2 * capacityB)
            packB = GEMMWorkspace.allocate(capacityB)
        }
    }
}

/// Pool of workspaces shared by all threads: a call takes one, uses it, and gives it back.
private let workspacePool = Mutex<[GEMMWorkspace]>([])

@inline(__always)
func withGEMMWorkspace<R>(_ body: (GEMMWorkspace) -> R) -> R {
    let ws = workspacePool.withLock { $0.popLast() } ?? GEMMWorkspace()
    let result = body(ws)
    workspacePool.withLock { $0.append(ws) }
    return result
}

/// One product split into `chunks` ranges of the larger of m and n (aligned to the
/// microkernel), handed to helper threads as plain values: no closure, no allocation.
struct GEMMSplitJob: @unchecked Sendable {
    var opA: Transpose, opB: Transpose
    var m: Int, n: Int, k: Int
    var alpha: Float, beta: Float
    var a: UnsafePointer<Float>, lda: Int
    var b: UnsafePointer<Float>, ldb: Int
    var c: UnsafeMutablePointer<Float>, ldc: Int
    /// Split along n (true) or m (false); the range unit is NR or MR of `kernel`.
    var splitN: Bool
    var chunks: Int
    var kernel: GEMMKernelKind
    /// op(B) packed whole, if it is (then `b` is not read).
    var prepacked: PrepackedPanels? = nil

    /// Runs chunk `part` of `chunks` on the calling thread.
    func run(part: Int) {
        let unit = splitN ? kernel.nr : kernel.mr
        let extent = splitN ? n : m
        let units = (extent + unit - 1) / unit
        let lo = units * part / chunks * unit, hi = min(extent, units * (part + 1) / chunks * unit)
        if hi <= lo { return }
        withGEMMWorkspace { ws in
            if splitN {
                let bPart = opB == .none ? b + lo : b + lo * ldb
                var panels = prepacked
                panels?.column += lo
                serialGEMM(opA, opB, m: m, n: hi - lo, k: k, alpha: alpha, a: a, lda: lda,
                           b: bPart, ldb: ldb, beta: beta, c: c + lo, ldc: ldc, ws: ws, kernel: kernel,
                           prepacked: panels)
            } else {
                let aPart = opA == .none ? a + lo * lda : a + lo
                serialGEMM(opA, opB, m: hi - lo, n: n, k: k, alpha: alpha, a: aPart, lda: lda,
                           b: b, ldb: ldb, beta: beta, c: c + lo * ldc, ldc: ldc, ws: ws, kernel: kernel,
                           prepacked: prepacked)
            }
        }
    }
}

/// Persistent helper threads for split products. Dispatch's `concurrentPerform` allocates a
/// few blocks per call; these threads are created once and then woken with semaphores, so a
/// warm split product allocates nothing.
///
/// One split product uses the helpers at a time (`inUse`); a concurrent caller that finds
/// them busy runs its product on its own thread. Chunks are claimed from an atomic counter by
/// the caller and the helpers alike, so if a helper's core is busy the caller takes its chunk.
final class GEMMHelperThreads: @unchecked Sendable {
    static let shared = GEMMHelperThreads()

    private let inUse = Atomic<Bool>(false)
    private let nextChunk = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)
    /// Wake-up semaphore of each helper thread; grown only by the owner of `inUse`.
    private var wakeUps: [DispatchSemaphore] = []
    /// The current job; written by the owner of `inUse` before waking the helpers.
    private var job: GEMMSplitJob?

    /// Runs `job` on the calling thread and `job.chunks − 1` helpers; returns false without
    /// doing anything if another product is using the helpers.
    func run(_ job: GEMMSplitJob) -> Bool {
        guard inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        let helpers = job.chunks - 1
        while wakeUps.count < helpers {
            let wake = DispatchSemaphore(value: 0)
            wakeUps.append(wake)
            let thread = Thread { [unowned self] in
                while true {
                    wake.wait()
                    self.work()
                    self.finished.signal()
                }
            }
            thread.name = "pesvi.gemm.helper"
            thread.start()
        }
        self.job = job
        nextChunk.store(0, ordering: .relaxed)
        for i in 0..<helpers { wakeUps[i].signal() }
        work()
        for _ in 0..<helpers { finished.wait() }
        self.job = nil
        inUse.store(false, ordering: .releasing)
        return true
    }

    /// Claims and runs chunks of the current job until none is left.
    private func work() {
        guard let job else { return }
        while true {
            let part = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            if part >= job.chunks { return }
            job.run(part: part)
        }
    }
}

/// Products with fewer floating-point operations (2·m·n·k) than this run on one thread
/// even when more are allowed. Measured with the helper threads (docs/BENCHMARKS.md, best of
/// 9 interleaved runs, NN): with the second core free, two threads lose below ~10 MFLOP
/// (0.6–0.9×: waking the helper, packing the shared operand twice), gain 3–11 % at 10–12.6
/// MFLOP, 12–16 % at 14.7, 18–26 % at 17–20 and 1.35–1.7× from 21 MFLOP up. With the second
/// core busy, a split product runs at ~0.95× (the caller takes the helper's chunk).
/// This is the AVX2 kernel's threshold; the AVX-512 kernel's is higher
/// (`GEMMKernelKind.parallelThresholdFlops`).
let gemmParallelThresholdFlops = 15_000_000

/// Threshold of the AVX-512 kernel: with a single thread twice as fast, the fixed cost of a
/// split weighs twice as much. Measured (best of 4 interleaved runs, K,N = 128,300 and
/// 300,128, second core free): 19.7 MFLOP 0.93–0.96×, 29.5 MFLOP 1.13–1.15×, 39.3 MFLOP
/// 1.24–1.31×, 59 MFLOP 1.42×, 78.6 MFLOP 1.5–1.6×.
let gemmParallelThresholdFlopsAVX512 = 25_000_000

/// Entry of the packed GEMM; same contract as `gemm`, sizes already known positive or zero.
/// `kernel` must be one of `GEMMKernelKind.available` (tests and benchmarks pass it to run
/// both kernels on one machine).
func packedGEMM(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    threads: Int,
    kernel: GEMMKernelKind = .current,
    prepacked: PrepackedPanels? = nil
) {
    if m <= 0 || n <= 0 { return }
    if k <= 0 || alpha == 0 {
        scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
        return
    }
    let flops = 2 * m * n * k
    let parts = threads <= 1 || flops < kernel.parallelThresholdFlops ? 1 : threads
    // Split the larger of m and n into `parts` ranges aligned to the microkernel.
    let splitN = n >= m
    let unit = splitN ? kernel.nr : kernel.mr
    let extent = splitN ? n : m
    let chunks = min(parts, (extent + unit - 1) / unit)
    if chunks <= 1 {
        withGEMMWorkspace { ws in
            serialGEMM(opA, opB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc, ws: ws, kernel: kernel, prepacked: prepacked)
        }
        return
    }
    let job = GEMMSplitJob(opA: opA, opB: opB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                           a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, splitN: splitN, chunks: chunks,
                           kernel: kernel, prepacked: prepacked)
    if !GEMMHelperThreads.shared.run(job) {
        // Another product holds the helpers (and the other cores): run this one here.
        withGEMMWorkspace { ws in
            serialGEMM(opA, opB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                       beta: beta, c: c, ldc: ldc, ws: ws, kernel: kernel, prepacked: prepacked)
        }
    }
}

/// C = beta·C on an m×n block (C = 0 without reading it when beta == 0).
func scaleC(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if beta == 1 { return }
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: n)
        } else {
            for j in 0..<n { row[j] *= beta }
        }
    }
}

/// Splits `total` into the fewest blocks of at most `limit`, of near-equal size rounded up to
/// a multiple of `unit`.
@inline(__always)
func balancedBlock(_ total: Int, limit: Int, unit: Int) -> Int {
    let blocks = (total + limit - 1) / limit
    let size = (total + blocks - 1) / blocks
    return min(limit, (size + unit - 1) / unit * unit)
}

/// One thread's packed GEMM on a sub-problem with `kernel`; k > 0, alpha != 0.
@inline(__always)
func serialGEMM(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    ws: GEMMWorkspace,
    kernel: GEMMKernelKind,
    prepacked: PrepackedPanels? = nil
) {
    #if arch(x86_64)
    if kernel == .avx512 {
        let sizes = AVX512GEMM.packSizes(m: m, n: n, k: k)
        ws.reserve(a: sizes.a, b: prepacked == nil ? sizes.b : 0)
        AVX512GEMM.serialGEMM(transposeA: opA == .transpose, transposeB: opB == .transpose,
                              m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                              beta: beta, c: c, ldc: ldc,
                              packA: ws.packA, packB: ws.packB, edge: ws.edge,
                              prepackedB: prepacked?.panels, prepackedBlockStride: prepacked?.blockStride ?? 0,
                              prepackedColumn: prepacked?.column ?? 0)
        return
    }
    #endif
    serialGEMMAVX2(opA, opB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc, ws: ws, prepacked: prepacked)
}

/// Where a serial product finds op(B) already packed whole (``PackedMatrix``): depth block pc
/// (its first row) of the whole matrix at `panels + pc·blockStride`, and this product's B is
/// the whole matrix's columns from `column` (a multiple of the kernel's NR) on, whose panels
/// in a block of depth kc start `column·kc` floats in.
struct PrepackedPanels {
    var panels: UnsafePointer<Float>
    var blockStride: Int
    var column: Int

    /// The panels of depth block `pc` (depth `kc`), columns `column + jc` on.
    @inline(__always)
    func block(_ pc: Int, _ kc: Int, jc: Int = 0) -> UnsafePointer<Float> {
        panels + pc * blockStride + (column + jc) * kc
    }
}

/// One thread's packed GEMM on a sub-problem with the 6×16 AVX2 kernel; k > 0, alpha != 0.
func serialGEMMAVX2(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    ws: GEMMWorkspace,
    prepacked: PrepackedPanels? = nil
) {
    let mr = GEMMBlocking.mr, nr = GEMMBlocking.nr
    let kcB = balancedBlock(k, limit: GEMMBlocking.kc, unit: 1)
    let mcB = balancedBlock(m, limit: GEMMBlocking.mc, unit: mr)
    let ncB = balancedBlock(n, limit: GEMMBlocking.nc, unit: nr)
    if opA == .none && lda % 1024 != 0 && n <= GEMMBlocking.unpackedAColumns && k > kcB && k <= GEMMBlocking.unpackedADepth {
        // Deeper than one block: B packed whole, and each mc-row block of A through every
        // depth block while it is in L2 (see the AVX-512 driver).
        let ncp = (n + nr - 1) / nr * nr
        ws.reserve(a: mcB * kcB, b: prepacked == nil ? k * ncp : 0)
        let pa = ws.packA, edge = ws.edge
        let whole = prepacked ?? PrepackedPanels(panels: UnsafePointer(ws.packB), blockStride: ncp, column: 0)
        var pc = 0
        if prepacked == nil {
            while pc < k {
                let kc = min(kcB, k - pc)
                packB(opB, b: b, ldb: ldb, row: pc, col: 0, kc: kc, nc: n, into: ws.packB + pc * ncp)
                pc += kc
            }
        }
        let fullRows = m / mr * mr
        var ic = 0
        while ic < fullRows {
            let mc = min(mcB, fullRows - ic)
            pc = 0
            while pc < k {
                let kc = min(kcB, k - pc)
                unpackedMacroKernel(rows: mc, nc: n, kc: kc, alpha: alpha, beta: pc == 0 ? beta : 1,
                                    a: a + ic * lda + pc, lda: lda, pb: whole.block(pc, kc), c: c + ic * ldc, ldc: ldc)
                pc += kc
            }
            ic += mc
        }
        if fullRows < m {
            pc = 0
            while pc < k {
                let kc = min(kcB, k - pc)
                packA(opA, a: a, lda: lda, row: fullRows, col: pc, mc: m - fullRows, kc: kc, into: pa)
                macroKernel(mc: m - fullRows, nc: n, kc: kc, alpha: alpha, beta: pc == 0 ? beta : 1,
                            pa: pa, pb: whole.block(pc, kc), c: c + fullRows * ldc, ldc: ldc, edge: edge)
                pc += kc
            }
        }
        return
    }
    ws.reserve(a: mcB * kcB, b: prepacked == nil ? kcB * ncB : 0)
    let pa = ws.packA, edge = ws.edge
    var jc = 0
    while jc < n {
        let nc = min(ncB, n - jc)
        var pc = 0
        while pc < k {
            let kc = min(kcB, k - pc)
            let pb: UnsafePointer<Float>
            if let prepacked {
                pb = prepacked.block(pc, kc, jc: jc)
            } else {
                packB(opB, b: b, ldb: ldb, row: pc, col: jc, kc: kc, nc: nc, into: ws.packB)
                pb = UnsafePointer(ws.packB)
            }
            let betaBlock: Float = pc == 0 ? beta : 1
            if opA == .none && lda % 1024 != 0 && nc <= GEMMBlocking.unpackedAColumns {
                // A read where it is stored, mc rows at a time; the last m mod 6 rows packed.
                let fullRows = m / mr * mr
                var ic = 0
                while ic < fullRows {
                    let mc = min(mcB, fullRows - ic)
                    unpackedMacroKernel(rows: mc, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                                        a: a + ic * lda + pc, lda: lda, pb: pb, c: c + ic * ldc + jc, ldc: ldc)
                    ic += mc
                }
                if fullRows < m {
                    packA(opA, a: a, lda: lda, row: fullRows, col: pc, mc: m - fullRows, kc: kc, into: pa)
                    macroKernel(mc: m - fullRows, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                                pa: pa, pb: pb, c: c + fullRows * ldc + jc, ldc: ldc, edge: edge)
                }
                pc += kc
                continue
            }
            var ic = 0
            while ic < m {
                let mc = min(mcB, m - ic)
                packA(opA, a: a, lda: lda, row: ic, col: pc, mc: mc, kc: kc, into: pa)
                macroKernel(mc: mc, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                            pa: pa, pb: pb, c: c + ic * ldc + jc, ldc: ldc, edge: edge)
                ic += mc
            }
            pc += kc
        }
        jc += nc
    }
}

/// Packs op(A)[row..<row+mc, col..<col+kc] into MR-tall panels: panel q holds, for each
/// p in 0..<kc, the MR values op(A)[row+q·MR+r, col+p] (r in 0..<MR), zero past row mc.
@inline(__always)
func packA(_ opA: Transpose, a: UnsafePointer<Float>, lda: Int, row: Int, col: Int,
           mc: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
    let mr = GEMMBlocking.mr
    var d = dst
    var i = 0
    while i < mc {
        let rows = min(mr, mc - i)
        if opA == .none {
            // op(A)[r, p] = a[r·lda + p]: gather MR rows.
            let s = a + (row + i) * lda + col
            if rows == mr {
                let s0 = s, s1 = s + lda, s2 = s + 2 * lda, s3 = s + 3 * lda, s4 = s + 4 * lda, s5 = s + 5 * lda
                for p in 0..<kc {
                    d[0] = s0[p]; d[1] = s1[p]; d[2] = s2[p]
                    d[3] = s3[p]; d[4] = s4[p]; d[5] = s5[p]
                    d += mr
                }
            } else {
                for p in 0..<kc {
                    for r in 0..<mr { d[r] = r < rows ? s[r * lda + p] : 0 }
                    d += mr
                }
            }
        } else {
            // op(A)[r, p] = a[p·lda + r]: MR contiguous values per p.
            let s = a + col * lda + row + i
            if rows == mr {
                for p in 0..<kc {
                    let sp = UnsafeRawPointer(s + p * lda), dp = UnsafeMutableRawPointer(d)
                    dp.storeBytes(of: sp.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                    dp.storeBytes(of: sp.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self),
                                  toByteOffset: 16, as: SIMD2<Float>.self)
                    d += mr
                }
            } else {
                for p in 0..<kc {
                    let sp = s + p * lda
                    for r in 0..<mr { d[r] = r < rows ? sp[r] : 0 }
                    d += mr
                }
            }
        }
        i += mr
    }
}

/// Packs op(B)[row..<row+kc, col..<col+nc] into NR-wide panels: panel q holds, for each
/// p in 0..<kc, the NR values op(B)[row+p, col+q·NR+j] (j in 0..<NR), zero past column nc.
@inline(__always)
func packB(_ opB: Transpose, b: UnsafePointer<Float>, ldb: Int, row: Int, col: Int,
           kc: Int, nc: Int, into dst: UnsafeMutablePointer<Float>) {
    let nr = GEMMBlocking.nr
    var d = dst
    var j = 0
    while j < nc {
        let cols = min(nr, nc - j)
        if opB == .none {
            // op(B)[p, j] = b[p·ldb + j]: NR contiguous values per p.
            let s = b + row * ldb + col + j
            if cols == nr {
                for p in 0..<kc {
                    let v = UnsafeRawPointer(s + p * ldb).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(d + p * nr).storeBytes(of: v, as: SIMD16<Float>.self)
                }
            } else {
                for p in 0..<kc {
                    let sp = s + p * ldb, dp = d + p * nr
                    for q in 0..<nr { dp[q] = q < cols ? sp[q] : 0 }
                }
            }
        } else {
            // op(B)[p, j] = b[j·ldb + p]: gather NR stored rows.
            let s = b + (col + j) * ldb + row
            for q in 0..<nr {
                if q < cols {
                    let sq = s + q * ldb
                    for p in 0..<kc { d[p * nr + q] = sq[p] }
                } else {
                    for p in 0..<kc { d[p * nr + q] = 0 }
                }
            }
        }
        d += nr * kc
        j += nr
    }
}

/// All MR×NR tiles of one packed mc×kc A block against one packed kc×nc B block.
@inline(__always)
func macroKernel(mc: Int, nc: Int, kc: Int, alpha: Float, beta: Float,
                 pa: UnsafePointer<Float>, pb: UnsafePointer<Float>,
                 c: UnsafeMutablePointer<Float>, ldc: Int, edge: UnsafeMutablePointer<Float>) {
    let mr = GEMMBlocking.mr, nr = GEMMBlocking.nr
    var jr = 0
    while jr < nc {
        let cols = min(nr, nc - jr)
        let bp = pb + jr * kc
        var ir = 0
        while ir < mc {
            let rows = min(mr, mc - ir)
            let ap = pa + ir * kc
            let ct = c + ir * ldc + jr
            if rows == mr && cols == nr {
                microKernel6x16(kc: kc, a: ap, b: bp, c: ct, ldc: ldc, alpha: alpha, beta: beta)
            } else {
                microKernel6x16(kc: kc, a: ap, b: bp, c: edge, ldc: nr, alpha: 1, beta: 0)
                for r in 0..<rows {
                    let crow = ct + r * ldc, erow = edge + r * nr
                    if beta == 0 {
                        for q in 0..<cols { crow[q] = alpha * erow[q] }
                    } else {
                        for q in 0..<cols { crow[q] = beta * crow[q] + alpha * erow[q] }
                    }
                }
            }
            ir += mr
        }
        jr += nr
    }
}

/// All 6×16 tiles of `rows` (a multiple of 6) rows of A (row-major, leading dimension `lda`),
/// read in place, against one packed kc×nc B block.
@inline(__always)
func unpackedMacroKernel(rows: Int, nc: Int, kc: Int, alpha: Float, beta: Float,
                         a: UnsafePointer<Float>, lda: Int, pb: UnsafePointer<Float>,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
    let mr = GEMMBlocking.mr, nr = GEMMBlocking.nr
    var jr = 0
    while jr < nc {
        let cols = min(nr, nc - jr)
        let bp = pb + jr * kc
        var ir = 0
        while ir < rows {
            microKernel6x16Unpacked(kc: kc, a: a + ir * lda, lda: lda, b: bp, c: c + ir * ldc + jr, ldc: ldc,
                                    alpha: alpha, beta: beta, columns: cols)
            ir += mr
        }
        jr += nr
    }
}

/// C[6×16] = alpha · Apanel · Bpanel + beta · C, with Apanel packed 6 values per k step and
/// Bpanel 16 values per k step (both 32-byte aligned). C is not read when beta == 0.
@inline(never)
func microKernel6x16(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                     c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
    tile6x16(kc: kc, a: a, rowStride: 1, columnStride: 6, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, columns: 16)
}

/// C[6×columns] = alpha · A[6×kc] · Bpanel + beta · C with A read in place (row r at
/// a + r·lda) and Bpanel packed as in ``microKernel6x16(kc:a:b:c:ldc:alpha:beta:)``, zero past
/// `columns` (≤ 16); only those columns of C are written.
@inline(never)
func microKernel6x16Unpacked(kc: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                             c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, columns: Int) {
    tile6x16(kc: kc, a: a, rowStride: lda, columnStride: 1, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, columns: columns)
}

/// The body of both microkernels: C[6×columns] = alpha · A[6×kc] · Bpanel + beta · C with
/// A(r, p) = a[r·rowStride + p·columnStride]; inlined into each entry point, so the packed
/// one's constant strides and width compile to fixed offsets and one store path.
@inline(__always)
func tile6x16(kc: Int, a: UnsafePointer<Float>, rowStride: Int, columnStride: Int, b: UnsafePointer<Float>,
              c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, columns: Int) {
    typealias V = SIMD8<Float>
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
    var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
    let o1 = rowStride, o2 = 2 * rowStride, o3 = 3 * rowStride, o4 = 4 * rowStride, o5 = 5 * rowStride
    var pa = a
    var pb = UnsafeRawPointer(b)
    if columns <= 8 {
        // Only the first 8 columns exist: half the multiply-adds, each element's sum unchanged.
        for _ in 0..<kc {
            let b0 = pb.load(as: V.self)
            c00 = c00.addingProduct(V(repeating: pa[0]), b0); c10 = c10.addingProduct(V(repeating: pa[o1]), b0)
            c20 = c20.addingProduct(V(repeating: pa[o2]), b0); c30 = c30.addingProduct(V(repeating: pa[o3]), b0)
            c40 = c40.addingProduct(V(repeating: pa[o4]), b0); c50 = c50.addingProduct(V(repeating: pa[o5]), b0)
            pa += columnStride
            pb += 64
        }
    } else {
      for _ in 0..<kc {
        let b0 = pb.load(as: V.self)
        let b1 = pb.load(fromByteOffset: 32, as: V.self)
        var x = V(repeating: pa[0])
        c00 = c00.addingProduct(x, b0); c01 = c01.addingProduct(x, b1)
        x = V(repeating: pa[o1])
        c10 = c10.addingProduct(x, b0); c11 = c11.addingProduct(x, b1)
        x = V(repeating: pa[o2])
        c20 = c20.addingProduct(x, b0); c21 = c21.addingProduct(x, b1)
        x = V(repeating: pa[o3])
        c30 = c30.addingProduct(x, b0); c31 = c31.addingProduct(x, b1)
        x = V(repeating: pa[o4])
        c40 = c40.addingProduct(x, b0); c41 = c41.addingProduct(x, b1)
        x = V(repeating: pa[o5])
        c50 = c50.addingProduct(x, b0); c51 = c51.addingProduct(x, b1)
        pa += columnStride
        pb += 64
      }
    }
    if columns == 16 {
        @inline(__always) func store(_ row: Int, _ v0: V, _ v1: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            if beta == 0 {
                p.storeBytes(of: alpha * v0, as: V.self)
                p.storeBytes(of: alpha * v1, toByteOffset: 32, as: V.self)
            } else {
                let o0 = p.loadUnaligned(as: V.self), o1 = p.loadUnaligned(fromByteOffset: 32, as: V.self)
                p.storeBytes(of: (alpha * v0).addingProduct(beta, o0), as: V.self)
                p.storeBytes(of: (alpha * v1).addingProduct(beta, o1), toByteOffset: 32, as: V.self)
            }
        }
        store(0, c00, c01); store(1, c10, c11); store(2, c20, c21)
        store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
    } else if columns == 8 {
        @inline(__always) func store(_ row: Int, _ v0: V) {
            let p = UnsafeMutableRawPointer(c + row * ldc)
            if beta == 0 {
                p.storeBytes(of: alpha * v0, as: V.self)
            } else {
                p.storeBytes(of: (alpha * v0).addingProduct(beta, p.loadUnaligned(as: V.self)), as: V.self)
            }
        }
        store(0, c00); store(1, c10); store(2, c20); store(3, c30); store(4, c40); store(5, c50)
    } else {
        @inline(__always) func store(_ row: Int, _ v0: V, _ v1: V) {
            let p = c + row * ldc
            for q in 0..<columns {
                let v = alpha * (q < 8 ? v0[q] : v1[q - 8])
                p[q] = beta == 0 ? v : beta * p[q] + v
            }
        }
        store(0, c00, c01); store(1, c10, c11); store(2, c20, c21)
        store(3, c30, c31); store(4, c40, c41); store(5, c50, c51)
    }
}
