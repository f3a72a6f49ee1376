/// Whether a matrix operand of a product is used as stored or transposed.
public enum Transpose: Sendable, Equatable {
    case none
    case transpose
}

/// Single-precision general matrix product on row-major buffers:
///
///     C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C[m×n]
///
/// `op(A)` is `A` (stored m×k, leading dimension `lda ≥ k`) or `Aᵀ` (A stored k×m,
/// `lda ≥ m`); likewise `op(B)` is `B` (k×n, `ldb ≥ n`) or `Bᵀ` (B stored n×k, `ldb ≥ k`).
/// `C` is m×n with `ldc ≥ n`. When `beta == 0`, `C` is not read (NaN in C does not leak).
/// When `k == 0` the product is zero and C becomes `beta · C`.
///
/// This entry point is unchecked: the caller guarantees the buffers hold the stated shapes.
/// Use ``gemmChecked(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)`` on arrays for a
/// validated call. `threads` (1 or 2) splits large products across cores; small products
/// always run on the calling thread. The microkernel is ``GEMMKernelKind/current`` (AVX-512
/// when the CPU has it, else AVX2; `PESVI_GEMM_KERNEL=avx2` forces AVX2).
public func gemm(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    threads: Int = 1
) {
    if takesUnpackedPath(opA, opB, m: m, n: n, k: k, alpha: alpha, beta: beta) {
        smallMatrixProduct(m: m, n: n, k: k, a: a, aRowStride: lda, aColumnStride: 1, b: b, ldb: ldb, c: c, ldc: ldc)
        return
    }
    packedGEMM(opA, opB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
               beta: beta, c: c, ldc: ldc, threads: threads)
}

/// Products of fewer rows than this (plain C = A·B, one depth block) skip packing: see
/// ``takesUnpackedPath(_:_:m:n:k:alpha:beta:)``.
let unpackedProductRowLimit = 16

/// Whether ``gemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)`` hands the product to
/// ``smallMatrixProduct(m:n:k:a:aRowStride:aColumnStride:b:ldb:c:ldc:)`` instead of the packed
/// kernels: C = A·B with neither operand transposed, alpha 1, beta 0, fewer than
/// ``unpackedProductRowLimit`` rows, and k within one depth block of the packed path
/// (`GEMMBlocking.kc`, as the AVX-512 kernel's `kcLimit`), so that path too sums every
/// element over t = 0, 1, … in order from zero and stores it as is: the result is the same
/// bit for bit. Packing B costs k·n whatever m is; with a few rows (the
/// points still refining in a chunk after the others have stopped) it cost more than the
/// product: PE-SVI-auto on digits |z| = 16 Arch2 spent 31 % of its time packing (measured 28 %
/// less time with this path, docs/BENCHMARKS.md).
@inline(__always)
func takesUnpackedPath(_ opA: Transpose, _ opB: Transpose, m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> Bool {
    opA == .none && opB == .none && alpha == 1 && beta == 0 && m > 0 && m < unpackedProductRowLimit && n > 0 && k > 0
        && k <= GEMMBlocking.kc
}

/// Checked matrix product on arrays; same contract as ``gemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)``.
///
/// Leading dimensions default to the packed row length. Throws ``NumericsError`` naming the
/// shapes when a size is negative, a leading dimension is too small, or a buffer is too short.
public func gemmChecked(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: [Float], lda: Int? = nil,
    b: [Float], ldb: Int? = nil,
    beta: Float = 0,
    c: inout [Float], ldc: Int? = nil,
    threads: Int = 1
) throws {
    try gemmChecked(opA, opB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, c: &c, ldc: ldc, threads: threads, kernel: .current)
}

/// ``gemmChecked(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)`` with a chosen microkernel
/// (one of `GEMMKernelKind.available`); lets the tests run every kernel on one machine.
func gemmChecked(
    _ opA: Transpose, _ opB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: [Float], lda: Int? = nil,
    b: [Float], ldb: Int? = nil,
    beta: Float = 0,
    c: inout [Float], ldc: Int? = nil,
    threads: Int = 1,
    kernel: GEMMKernelKind
) throws {
    guard kernel == .avx2 || GEMMKernelKind.cpuHasAVX512 else {
        throw NumericsError.invalidArgument("gemm kernel \(kernel) is not available on this CPU")
    }
    guard m >= 0, n >= 0, k >= 0 else {
        throw NumericsError.invalidArgument("gemm sizes must be non-negative, got m=\(m) n=\(n) k=\(k)")
    }
    guard threads >= 1 else { throw NumericsError.invalidArgument("gemm threads must be >= 1, got \(threads)") }
    // Stored shapes of A and B.
    let (aRows, aCols) = opA == .none ? (m, k) : (k, m)
    let (bRows, bCols) = opB == .none ? (k, n) : (n, k)
    // Defaults are the packed row length, at least 1 (so empty operands pass with defaults).
    let lda = lda ?? max(aCols, 1), ldb = ldb ?? max(bCols, 1), ldc = ldc ?? max(n, 1)
    let opAName = opA == .none ? "A" : "Aᵀ", opBName = opB == .none ? "B" : "Bᵀ"
    let what = "C[\(m)×\(n)] = \(opAName)·\(opBName) with A stored \(aRows)×\(aCols) (lda \(lda)), B stored \(bRows)×\(bCols) (ldb \(ldb)), C ldc \(ldc)"
    guard lda >= max(aCols, 1), ldb >= max(bCols, 1), ldc >= max(n, 1) else {
        throw NumericsError.invalidArgument("leading dimension smaller than the row length: \(what)")
    }
    func need(_ rows: Int, _ cols: Int, _ ld: Int) -> Int { rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols }
    if m > 0 && n > 0 && k > 0 {
        guard a.count >= need(aRows, aCols, lda) else {
            throw NumericsError.bufferTooSmall("A has \(a.count) elements, needs \(need(aRows, aCols, lda)): \(what)")
        }
        guard b.count >= need(bRows, bCols, ldb) else {
            throw NumericsError.bufferTooSmall("B has \(b.count) elements, needs \(need(bRows, bCols, ldb)): \(what)")
        }
    }
    guard c.count >= need(m, n, ldc) else {
        throw NumericsError.bufferTooSmall("C has \(c.count) elements, needs \(need(m, n, ldc)): \(what)")
    }
    if m == 0 || n == 0 { return }
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer { cp in
                // Empty operands still need a valid pointer; k == 0 never reads them.
                var dummy: Float = 0
                withUnsafeMutablePointer(to: &dummy) { d in
                    packedGEMM(opA, opB, m: m, n: n, k: k, alpha: alpha,
                               a: ap.baseAddress ?? UnsafePointer(d), lda: lda,
                               b: bp.baseAddress ?? UnsafePointer(d), ldb: ldb,
                               beta: beta, c: cp.baseAddress!, ldc: ldc, threads: threads, kernel: kernel)
                }
            }
        }
    }
}

/// Unpacked product for small matrices (the per-point Jacobian products of Gauss-Newton):
///
///     C[m×n] = A[m×k] · B[k×n]
///
/// with A read through strides, A(i, t) = `a[i·aRowStride + t·aColumnStride]` (so Aᵀ of a
/// row-major matrix is `aRowStride: 1, aColumnStride: ld`), B row-major with leading dimension
/// `ldb ≥ n`, C row-major with `ldc ≥ n` (overwritten, not read).
///
/// C is accumulated in registers, four rows × 16 columns at a time (eight 8-wide fused
/// multiply-adds per column of A), the rest row by row, 32, 8 or 1 columns at a time; every
/// element is summed over t = 0, 1, … in order from zero (the same rounding in every block,
/// bit for bit that of a scalar fused loop): no packing and no call
/// overhead, which is what matters at the sizes where ``gemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:threads:)``
/// spends more time packing panels than multiplying (e.g. 16 × 16 × 16, or a matrix-vector
/// product, which `gemm` pads to a 32-wide panel). Each element of C depends only on its row
/// of A and column of B, in a fixed order: results do not depend on m.
@inline(__always)
public func smallMatrixProduct(m: Int, n: Int, k: Int,
                               a: UnsafePointer<Float>, aRowStride: Int, aColumnStride: Int,
                               b: UnsafePointer<Float>, ldb: Int,
                               c: UnsafeMutablePointer<Float>, ldc: Int) {
    let braw = UnsafeRawPointer(b)
    var i = 0
    // Four rows × 16 columns at a time: eight independent accumulators, so the fused
    // multiply-adds overlap instead of waiting on one another (one row × 8 columns is a
    // single dependent chain, latency-bound at |z| = 16), and each load of B serves four rows.
    while i + 4 <= m {
        let a0 = a + i * aRowStride, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride
        var j = 0
        while j + 16 <= n {
            var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s10 = SIMD8<Float>(), s11 = SIMD8<Float>()
            var s20 = SIMD8<Float>(), s21 = SIMD8<Float>(), s30 = SIMD8<Float>(), s31 = SIMD8<Float>()
            for t in 0..<k {
                let o = (t * ldb + j) * 4
                let b0 = braw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                let b1 = braw.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
                let ta = t * aColumnStride
                let f0 = SIMD8<Float>(repeating: a0[ta]), f1 = SIMD8<Float>(repeating: a1[ta])
                let f2 = SIMD8<Float>(repeating: a2[ta]), f3 = SIMD8<Float>(repeating: a3[ta])
                s00 = s00.addingProduct(f0, b0); s01 = s01.addingProduct(f0, b1)
                s10 = s10.addingProduct(f1, b0); s11 = s11.addingProduct(f1, b1)
                s20 = s20.addingProduct(f2, b0); s21 = s21.addingProduct(f2, b1)
                s30 = s30.addingProduct(f3, b0); s31 = s31.addingProduct(f3, b1)
            }
            let c0 = UnsafeMutableRawPointer(c + i * ldc + j), rowBytes = ldc * 4
            c0.storeBytes(of: s00, as: SIMD8<Float>.self); c0.storeBytes(of: s01, toByteOffset: 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s10, toByteOffset: rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s11, toByteOffset: rowBytes + 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s20, toByteOffset: 2 * rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s21, toByteOffset: 2 * rowBytes + 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s30, toByteOffset: 3 * rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s31, toByteOffset: 3 * rowBytes + 32, as: SIMD8<Float>.self)
            j += 16
        }
        if j < n {
            for r in 0..<4 { smallMatrixProductRow(i + r, from: j, n: n, k: k, a: a, aRowStride: aRowStride, aColumnStride: aColumnStride, b: b, ldb: ldb, c: c, ldc: ldc) }
        }
        i += 4
    }
    while i < m {
        smallMatrixProductRow(i, from: 0, n: n, k: k, a: a, aRowStride: aRowStride, aColumnStride: aColumnStride, b: b, ldb: ldb, c: c, ldc: ldc)
        i += 1
    }
}

/// Row i of ``smallMatrixProduct(m:n:k:a:aRowStride:aColumnStride:b:ldb:c:ldc:)`` from column
/// `j0` on: 32 columns at a time (four accumulators), then 8, then one.
@inline(__always)
func smallMatrixProductRow(_ i: Int, from j0: Int, n: Int, k: Int,
                           a: UnsafePointer<Float>, aRowStride: Int, aColumnStride: Int,
                           b: UnsafePointer<Float>, ldb: Int,
                           c: UnsafeMutablePointer<Float>, ldc: Int) {
    let braw = UnsafeRawPointer(b)
    let ai = a + i * aRowStride
    let craw = UnsafeMutableRawPointer(c + i * ldc)
    var j = j0
    while j + 32 <= n {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        for t in 0..<k {
            let f = SIMD8<Float>(repeating: ai[t * aColumnStride])
            let o = (t * ldb + j) * 4
            s0 = s0.addingProduct(f, braw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self))
            s1 = s1.addingProduct(f, braw.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self))
            s2 = s2.addingProduct(f, braw.loadUnaligned(fromByteOffset: o + 64, as: SIMD8<Float>.self))
            s3 = s3.addingProduct(f, braw.loadUnaligned(fromByteOffset: o + 96, as: SIMD8<Float>.self))
        }
        craw.storeBytes(of: s0, toByteOffset: j * 4, as: SIMD8<Float>.self)
        craw.storeBytes(of: s1, toByteOffset: j * 4 + 32, as: SIMD8<Float>.self)
        craw.storeBytes(of: s2, toByteOffset: j * 4 + 64, as: SIMD8<Float>.self)
        craw.storeBytes(of: s3, toByteOffset: j * 4 + 96, as: SIMD8<Float>.self)
        j += 32
    }
    while j + 8 <= n {
        var s0 = SIMD8<Float>()
        for t in 0..<k {
            s0 = s0.addingProduct(SIMD8<Float>(repeating: ai[t * aColumnStride]),
                                  braw.loadUnaligned(fromByteOffset: (t * ldb + j) * 4, as: SIMD8<Float>.self))
        }
        craw.storeBytes(of: s0, toByteOffset: j * 4, as: SIMD8<Float>.self)
        j += 8
    }
    while j < n {
        var s: Float = 0
        for t in 0..<k { s = s.addingProduct(ai[t * aColumnStride], b[t * ldb + j]) }
        c[i * ldc + j] = s
        j += 1
    }
}

/// ``smallMatrixProduct(m:n:k:a:aRowStride:aColumnStride:b:ldb:c:ldc:)`` with its operands
/// read through offset lists instead of strides, so a product of gathered sub-blocks
/// (rows and columns of a weight matrix picked by a ReLU pattern) needs no copy:
///
///     C[m×n] = A[m×k] · B[k×n],   A(i, t) = a[aRowOffsets[i] + aColumnOffsets[t]],
///                                 B(t, j) = b[bRowOffsets[t] + j],
///
/// C row-major with `ldc ≥ n` (overwritten, not read). Strided operands are the special case
/// of offsets i·stride. Same blocking (four rows × 16 columns, then row by row, 8 and 1
/// columns) and the same rounding: every element is the fused sum over t = 0, 1, … in order
/// from zero, so the result equals `smallMatrixProduct` on the gathered copies bit for bit.
@inline(__always)
public func gatheredMatrixProduct(m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, aRowOffsets: UnsafePointer<Int>, aColumnOffsets: UnsafePointer<Int>,
                                  b: UnsafePointer<Float>, bRowOffsets: UnsafePointer<Int>,
                                  c: UnsafeMutablePointer<Float>, ldc: Int) {
    let braw = UnsafeRawPointer(b)
    var i = 0
    while i + 4 <= m {
        let a0 = a + aRowOffsets[i], a1 = a + aRowOffsets[i + 1], a2 = a + aRowOffsets[i + 2], a3 = a + aRowOffsets[i + 3]
        var j = 0
        while j + 16 <= n {
            var s00 = SIMD8<Float>(), s01 = SIMD8<Float>(), s10 = SIMD8<Float>(), s11 = SIMD8<Float>()
            var s20 = SIMD8<Float>(), s21 = SIMD8<Float>(), s30 = SIMD8<Float>(), s31 = SIMD8<Float>()
            for t in 0..<k {
                let o = (bRowOffsets[t] + j) * 4
                let b0 = braw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                let b1 = braw.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self)
                let ta = aColumnOffsets[t]
                let f0 = SIMD8<Float>(repeating: a0[ta]), f1 = SIMD8<Float>(repeating: a1[ta])
                let f2 = SIMD8<Float>(repeating: a2[ta]), f3 = SIMD8<Float>(repeating: a3[ta])
                s00 = s00.addingProduct(f0, b0); s01 = s01.addingProduct(f0, b1)
                s10 = s10.addingProduct(f1, b0); s11 = s11.addingProduct(f1, b1)
                s20 = s20.addingProduct(f2, b0); s21 = s21.addingProduct(f2, b1)
                s30 = s30.addingProduct(f3, b0); s31 = s31.addingProduct(f3, b1)
            }
            let c0 = UnsafeMutableRawPointer(c + i * ldc + j), rowBytes = ldc * 4
            c0.storeBytes(of: s00, as: SIMD8<Float>.self); c0.storeBytes(of: s01, toByteOffset: 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s10, toByteOffset: rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s11, toByteOffset: rowBytes + 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s20, toByteOffset: 2 * rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s21, toByteOffset: 2 * rowBytes + 32, as: SIMD8<Float>.self)
            c0.storeBytes(of: s30, toByteOffset: 3 * rowBytes, as: SIMD8<Float>.self)
            c0.storeBytes(of: s31, toByteOffset: 3 * rowBytes + 32, as: SIMD8<Float>.self)
            j += 16
        }
        if j < n {
            for r in 0..<4 {
                gatheredMatrixProductRow(i + r, from: j, n: n, k: k, a: a, aRowOffsets: aRowOffsets, aColumnOffsets: aColumnOffsets,
                                         b: b, bRowOffsets: bRowOffsets, c: c, ldc: ldc)
            }
        }
        i += 4
    }
    while i < m {
        gatheredMatrixProductRow(i, from: 0, n: n, k: k, a: a, aRowOffsets: aRowOffsets, aColumnOffsets: aColumnOffsets,
                                 b: b, bRowOffsets: bRowOffsets, c: c, ldc: ldc)
        i += 1
    }
}

/// Row i of ``gatheredMatrixProduct(m:n:k:a:aRowOffsets:aColumnOffsets:b:bRowOffsets:c:ldc:)``
/// from column `j0` on: 16 columns at a time (two accumulators), then 8, then one.
@inline(__always)
func gatheredMatrixProductRow(_ i: Int, from j0: Int, n: Int, k: Int,
                              a: UnsafePointer<Float>, aRowOffsets: UnsafePointer<Int>, aColumnOffsets: UnsafePointer<Int>,
                              b: UnsafePointer<Float>, bRowOffsets: UnsafePointer<Int>,
                              c: UnsafeMutablePointer<Float>, ldc: Int) {
    let braw = UnsafeRawPointer(b)
    let ai = a + aRowOffsets[i]
    let craw = UnsafeMutableRawPointer(c + i * ldc)
    var j = j0
    while j + 16 <= n {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        for t in 0..<k {
            let f = SIMD8<Float>(repeating: ai[aColumnOffsets[t]])
            let o = (bRowOffsets[t] + j) * 4
            s0 = s0.addingProduct(f, braw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self))
            s1 = s1.addingProduct(f, braw.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self))
        }
        craw.storeBytes(of: s0, toByteOffset: j * 4, as: SIMD8<Float>.self)
        craw.storeBytes(of: s1, toByteOffset: j * 4 + 32, as: SIMD8<Float>.self)
        j += 16
    }
    while j + 8 <= n {
        var s0 = SIMD8<Float>()
        for t in 0..<k {
            s0 = s0.addingProduct(SIMD8<Float>(repeating: ai[aColumnOffsets[t]]),
                                  braw.loadUnaligned(fromByteOffset: (bRowOffsets[t] + j) * 4, as: SIMD8<Float>.self))
        }
        craw.storeBytes(of: s0, toByteOffset: j * 4, as: SIMD8<Float>.self)
        j += 8
    }
    while j < n {
        var s: Float = 0
        for t in 0..<k { s = s.addingProduct(ai[aColumnOffsets[t]], b[bRowOffsets[t] + j]) }
        c[i * ldc + j] = s
        j += 1
    }
}
