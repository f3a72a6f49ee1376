#if arch(x86_64)
import PESVIKernelsAVX512
#endif

/// A right-hand operand op(B) (k×n) packed once for many products C = A·op(B) with different
/// A: a decoder's weights at test time, which every refinement step multiplies by a new
/// batch of latent rows (forward) or gradient rows (backward, op = transpose).
///
/// ``gemm(m:alpha:a:lda:b:beta:c:ldc:threads:)`` with it gives bit for bit what
/// ``gemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)`` gives with `opA = .none` on the
/// matrix it was packed from: the panels are the ones that call would pack (the same depth
/// blocks and panel width of `kernel`), and small products take the same unpacked path on a
/// copy of B. What it saves is packing op(B) — k·n loads and stores — in every product
/// (measured in docs/BENCHMARKS.md).
///
/// The packed copy is a snapshot: later changes to the source matrix reach it only through
/// ``repack(from:ldb:)``.
public final class PackedMatrix: @unchecked Sendable {
    /// The packed storage's view (see ``PackedOperand``); this object owns the storage.
    public let operand: PackedOperand
    /// Whether the source was used as stored (`B`, k×n) or transposed (`Bᵀ`, stored n×k).
    public var transpose: Transpose { operand.transpose }
    /// Rows of op(B) (the products' depth).
    public var k: Int { operand.k }
    /// Columns of op(B) (the products' output width).
    public var n: Int { operand.n }
    /// The microkernel the panels are laid out for.
    public var kernel: GEMMKernelKind { operand.kernel }

    /// Packs op(B) from `b` (stored k×n with `ldb ≥ n` for `.none`, n×k with `ldb ≥ k` for
    /// `.transpose`); k, n > 0. `kernel` must be one of `GEMMKernelKind.available`.
    public init(_ transpose: Transpose, b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int,
                kernel: GEMMKernelKind = .current) {
        precondition(k > 0 && n > 0, "PackedMatrix needs k, n > 0, got k=\(k) n=\(n)")
        precondition(kernel == .avx2 || GEMMKernelKind.cpuHasAVX512, "gemm kernel \(kernel) is not available on this CPU")
        let blockStride = (n + kernel.nr - 1) / kernel.nr * kernel.nr
        let panels = UnsafeMutableRawPointer.allocate(byteCount: k * blockStride * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: k * blockStride)
        operand = PackedOperand(transpose: transpose, k: k, n: n, kernel: kernel, source: .allocate(capacity: k * n),
                                panels: panels, blockStride: blockStride)
        repack(from: b, ldb: ldb)
    }

    /// Packs new values of the same shape and orientation into this object's storage (no
    /// allocation): `b` as for ``init(_:b:ldb:k:n:kernel:)``.
    public func repack(from b: UnsafePointer<Float>, ldb: Int) {
        let (rows, cols) = transpose == .none ? (k, n) : (n, k)
        precondition(ldb >= cols, "PackedMatrix: leading dimension \(ldb) smaller than the row length \(cols)")
        let source = UnsafeMutablePointer(mutating: operand.source), panels = UnsafeMutablePointer(mutating: operand.panels)
        for r in 0..<rows { (source + r * cols).update(from: b + r * ldb, count: cols) }
        #if arch(x86_64)
        if kernel == .avx512 {
            AVX512GEMM.packWhole(transposeB: transpose == .transpose, b: source, ldb: cols, k: k, n: n, into: panels)
            return
        }
        #endif
        let kcB = balancedBlock(k, limit: GEMMBlocking.kc, unit: 1)
        var pc = 0
        while pc < k {
            let kc = min(kcB, k - pc)
            packB(transpose, b: source, ldb: cols, row: pc, col: 0, kc: kc, nc: n, into: panels + pc * operand.blockStride)
            pc += kc
        }
    }

    /// Packs op(B) of an array (compact: leading dimension n for `.none`, k for `.transpose`).
    public convenience init(_ transpose: Transpose, b: [Float], k: Int, n: Int, kernel: GEMMKernelKind = .current) {
        precondition(b.count >= k * n, "PackedMatrix: \(b.count) values for a \(k)×\(n) operand")
        self.init(transpose, b: b, ldb: transpose == .none ? n : k, k: k, n: n, kernel: kernel)
    }

    deinit {
        UnsafeMutablePointer(mutating: operand.source).deallocate()
        UnsafeMutablePointer(mutating: operand.panels).deallocate()
    }
}

/// A ``PackedMatrix``'s storage as plain values and pointers (copying it costs no reference
/// counting); valid while the matrix it was taken from lives.
public struct PackedOperand: @unchecked Sendable {
    public let transpose: Transpose
    public let k: Int
    public let n: Int
    public let kernel: GEMMKernelKind
    /// op(B) as stored in the source, compact: k×n (leading dimension n) for `.none`, n×k
    /// (leading dimension k) for `.transpose`.
    let source: UnsafePointer<Float>
    /// All of op(B) in the kernel's panels (see ``PrepackedPanels``), 64-byte aligned:
    /// k·`blockStride` floats.
    let panels: UnsafePointer<Float>
    /// n rounded up to the kernel's panel width.
    let blockStride: Int

    init(transpose: Transpose, k: Int, n: Int, kernel: GEMMKernelKind, source: UnsafeMutablePointer<Float>,
         panels: UnsafeMutablePointer<Float>, blockStride: Int) {
        self.transpose = transpose
        self.k = k
        self.n = n
        self.kernel = kernel
        self.source = UnsafePointer(source)
        self.panels = UnsafePointer(panels)
        self.blockStride = blockStride
    }
}

/// Single-precision product with a packed right-hand operand:
///
///     C[m×n] = alpha · A[m×k] · op(B)[k×n] + beta · C[m×n]
///
/// A row-major with `lda ≥ k`, C with `ldc ≥ n`; k and n are `b`'s. The same contract and the
/// same result, bit for bit, as ``gemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)``
/// with `opA = .none` on the matrix `b` was packed from, with `threads` as there; unchecked
/// like it (the caller guarantees the buffers hold the stated shapes).
public func gemm(m: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: PackedMatrix,
                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1) {
    gemm(m: m, alpha: alpha, a: a, lda: lda, b: b.operand, beta: beta, c: c, ldc: ldc, threads: threads)
}

/// ``gemm(m:alpha:a:lda:b:beta:c:ldc:threads:)`` with the packed operand's view (no reference
/// counting in the call).
public func gemm(m: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: PackedOperand,
                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int = 1) {
    let ldSource = b.transpose == .none ? b.n : b.k
    if takesUnpackedPath(.none, b.transpose, m: m, n: b.n, k: b.k, alpha: alpha, beta: beta) {
        smallMatrixProduct(m: m, n: b.n, k: b.k, a: a, aRowStride: lda, aColumnStride: 1,
                           b: b.source, ldb: ldSource, c: c, ldc: ldc)
        return
    }
    packedGEMM(.none, b.transpose, m: m, n: b.n, k: b.k, alpha: alpha, a: a, lda: lda,
               b: b.source, ldb: ldSource, beta: beta, c: c, ldc: ldc, threads: threads, kernel: b.kernel,
               prepacked: PrepackedPanels(panels: b.panels, blockStride: b.blockStride, column: 0))
}
