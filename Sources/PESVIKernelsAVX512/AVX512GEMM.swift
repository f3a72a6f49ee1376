// AVX-512 kernels of the packed GEMM and of the FMA probe.
//
// This target is compiled, in release builds on x86-64, with `-march=x86-64-v4` (AVX-512 F,
// BW, CD, DQ, VL): its `SIMD16<Float>` code becomes zmm instructions. Nothing here may run on
// a CPU without AVX-512: PESVINumerics calls it only when `GEMMKernelKind.current` (decided
// once from `__builtin_cpu_supports`) is `.avx512`. The entry points are `@inline(never)` and
// not `@inlinable`, so their bodies are always the ones compiled here, never inlined into
// (and compiled with the flags of) the AVX2 module.
//
// Structure as the AVX2 path (Sources/PESVINumerics/GEMMKernel.swift), with an 8×32
// microkernel: 16 SIMD16<Float> accumulators (of the 32 zmm registers), two B vectors and a
// broadcast A value per k step.

#if arch(x86_64)

/// Packed single-precision GEMM with an 8×32 AVX-512 microkernel.
public enum AVX512GEMM {
    /// Microkernel rows (broadcast A values).
    public static var mr: Int { 8 }
    /// Microkernel columns (two SIMD16<Float> vectors of B).
    public static var nr: Int { 32 }
    /// Rows of the packed A block (multiple of `mr`).
    static var mcLimit: Int { 144 }
    /// Depth of the packed blocks.
    static var kcLimit: Int { 256 }
    /// Columns of the packed B block (multiple of `nr`).
    static var ncLimit: Int { 4064 }
    /// Floats of the scratch tile for edge tiles (mr × nr).
    public static var edgeCount: Int { 8 * 32 }

    /// Floats the A and B packing buffers need for an m×n×k product (64-byte aligned buffers).
    @inline(never)
    public static func packSizes(m: Int, n: Int, k: Int) -> (a: Int, b: Int) {
        let kc = balancedBlock(k, limit: kcLimit, unit: 1)
        let mc = balancedBlock(m, limit: mcLimit, unit: mr)
        let nc = balancedBlock(n, limit: ncLimit, unit: nr)
        let wholeB = n <= unpackedAColumns && k <= unpackedADepth ? k * ((n + nr - 1) / nr * nr) : 0
        return (mc * kc, max(kc * nc, wholeB))
    }

    /// One thread's product C = alpha·op(A)·op(B) + beta·C (row-major, same contract as
    /// `gemm`); m, n, k > 0, alpha != 0. `packA` and `packB` hold at least ``packSizes(m:n:k:)``
    /// floats and are 64-byte aligned; `edge` holds ``edgeCount`` floats. C is not read when
    /// beta == 0.
    ///
    /// `prepackedB`, if not nil, is op(B) already packed whole (``packWhole(transposeB:b:ldb:k:n:into:)``
    /// of a matrix with `prepackedBlockStride` = its n rounded up to 32) and this product's B is
    /// its columns from `prepackedColumn` (a multiple of 32) on: the panels are read from there
    /// and `b`, `packB` are not used. The panels are the ones this function would pack, so the
    /// result is the same bit for bit.
    @inline(never)
    public static func serialGEMM(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        packA pa: UnsafeMutablePointer<Float>, packB packBuffer: UnsafeMutablePointer<Float>,
        edge: UnsafeMutablePointer<Float>,
        prepackedB: UnsafePointer<Float>? = nil, prepackedBlockStride: Int = 0, prepackedColumn: Int = 0
    ) {
        let kcB = balancedBlock(k, limit: kcLimit, unit: 1)
        let mcB = balancedBlock(m, limit: mcLimit, unit: mr)
        let ncB = balancedBlock(n, limit: ncLimit, unit: nr)
        if !transposeA && lda % 1024 != 0 && n <= unpackedAColumns && k > kcB && k <= unpackedADepth {
            // Deeper than one block: B is packed whole, block after block, and each mc-row
            // block of A runs through every depth block while it is in L2 (instead of every
            // row of A once per depth block, which streams a tall A from memory twice or more).
            let ncp = (n + nr - 1) / nr * nr, pb = packBuffer
            var pc = 0
            if prepackedB == nil {
                while pc < k {
                    let kc = min(kcB, k - pc)
                    packB(transposeB, b: b, ldb: ldb, row: pc, col: 0, kc: kc, nc: n, into: pb + pc * ncp)
                    pc += kc
                }
            }
            @inline(__always) func block(_ pc: Int, _ kc: Int) -> UnsafePointer<Float> {
                if let prepackedB { return prepackedB + pc * prepackedBlockStride + prepackedColumn * kc }
                return UnsafePointer(pb + pc * ncp)
            }
            let fullRows = m / mr * mr
            var ic = 0
            while ic < fullRows {
                let mc = min(mcB, fullRows - ic)
                pc = 0
                while pc < k {
                    let kc = min(kcB, k - pc)
                    unpackedMacroKernel(rows: mc, nc: n, kc: kc, alpha: alpha, beta: pc == 0 ? beta : 1,
                                        a: a + ic * lda + pc, lda: lda, pb: block(pc, kc), c: c + ic * ldc, ldc: ldc)
                    pc += kc
                }
                ic += mc
            }
            if fullRows < m {
                pc = 0
                while pc < k {
                    let kc = min(kcB, k - pc)
                    packA(transposeA, a: a, lda: lda, row: fullRows, col: pc, mc: m - fullRows, kc: kc, into: pa)
                    macroKernel(mc: m - fullRows, nc: n, kc: kc, alpha: alpha, beta: pc == 0 ? beta : 1,
                                pa: pa, pb: block(pc, kc), c: c + fullRows * ldc, ldc: ldc, edge: edge)
                    pc += kc
                }
            }
            return
        }
        var jc = 0
        while jc < n {
            let nc = min(ncB, n - jc)
            var pc = 0
            while pc < k {
                let kc = min(kcB, k - pc)
                let pb: UnsafePointer<Float>
                if let prepackedB {
                    // Panels of columns jc… of depth block pc, as packB would have packed them.
                    pb = prepackedB + pc * prepackedBlockStride + (prepackedColumn + jc) * kc
                } else {
                    packB(transposeB, b: b, ldb: ldb, row: pc, col: jc, kc: kc, nc: nc, into: packBuffer)
                    pb = UnsafePointer(packBuffer)
                }
                let betaBlock: Float = pc == 0 ? beta : 1
                if !transposeA && lda % 1024 != 0 && nc <= unpackedAColumns {
                    // Each A value meets at most eight B panels: the kernel reads the
                    // rows of A where they are stored, mc rows at a time (so a block stays in L2
                    // for its second panel), and only the last m mod 8 rows are packed.
                    let fullRows = m / mr * mr
                    var ic = 0
                    while ic < fullRows {
                        let mc = min(mcB, fullRows - ic)
                        unpackedMacroKernel(rows: mc, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                                            a: a + ic * lda + pc, lda: lda, pb: pb, c: c + ic * ldc + jc, ldc: ldc)
                        ic += mc
                    }
                    if fullRows < m {
                        packA(transposeA, a: a, lda: lda, row: fullRows, col: pc, mc: m - fullRows, kc: kc, into: pa)
                        macroKernel(mc: m - fullRows, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                                    pa: pa, pb: pb, c: c + fullRows * ldc + jc, ldc: ldc, edge: edge)
                    }
                    pc += kc
                    continue
                }
                var ic = 0
                while ic < m {
                    let mc = min(mcB, m - ic)
                    packA(transposeA, a: a, lda: lda, row: ic, col: pc, mc: mc, kc: kc, into: pa)
                    macroKernel(mc: mc, nc: nc, kc: kc, alpha: alpha, beta: betaBlock,
                                pa: pa, pb: pb, c: c + ic * ldc + jc, ldc: ldc, edge: edge)
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// A·B (A not transposed) with a B block of at most this many columns (eight 32-wide
    /// panels) reads A where it is stored (``unpackedMacroKernel``) instead of packing it: packing
    /// copies every A value once, which the 8×32 tiles' broadcasts do not need when the rows
    /// are read mc at a time (they stay in L2 across the panels). Measured with `pesvi bench
    /// gemm --shape` (docs/BENCHMARKS.md): n = 32 from 91 to 126 GFLOP/s, n = 128 from 113 to
    /// 123, equal at n = 300–500. Not for leading dimensions that are multiples of 1024 (rows
    /// 4 KiB apart alias in L1: 64 against 73 GFLOP/s at 1024×1024×32), nor for Aᵀ (each k
    /// step then reads a different row: 66 against 89 at m = 2048, n = 64).
    static var unpackedAColumns: Int { 256 }

    /// Up to this depth an in-place product packs all of B at once (at most 1 MiB) and runs
    /// each block of A's rows through every depth block while the block is in L2.
    static var unpackedADepth: Int { 1024 }

    /// Packs all of op(B) (k×n) as ``serialGEMM(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:packA:packB:edge:prepackedB:prepackedBlockStride:prepackedColumn:)``
    /// packs it, for its `prepackedB`: depth block after depth block (the same blocks of at
    /// most 256), block pc (its first row) at `dst + pc·ncp` with ncp = n rounded up to 32,
    /// each block 32-wide panels of its kc rows. `dst` holds k·ncp floats.
    @inline(never)
    public static func packWhole(transposeB: Bool, b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int,
                                 into dst: UnsafeMutablePointer<Float>) {
        let kcB = balancedBlock(k, limit: kcLimit, unit: 1), ncp = (n + nr - 1) / nr * nr
        var pc = 0
        while pc < k {
            let kc = min(kcB, k - pc)
            packB(transposeB, b: b, ldb: ldb, row: pc, col: 0, kc: kc, nc: n, into: dst + pc * ncp)
            pc += kc
        }
    }

    /// Splits `total` into the fewest blocks of at most `limit`, of near-equal size rounded up
    /// to a multiple of `unit`.
    @inline(__always)
    static func balancedBlock(_ total: Int, limit: Int, unit: Int) -> Int {
        let blocks = (total + limit - 1) / limit
        let size = (total + blocks - 1) / blocks
        return min(limit, (size + unit - 1) / unit * unit)
    }

    /// Packs op(A)[row..<row+mc, col..<col+kc] into 8-tall panels: panel q holds, for each
    /// p in 0..<kc, the 8 values op(A)[row+q·8+r, col+p], zero past row mc.
    @inline(__always)
    static func packA(_ transposeA: Bool, a: UnsafePointer<Float>, lda: Int, row: Int, col: Int,
                      mc: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
        let mr = 8
        var d = dst
        var i = 0
        while i < mc {
            let rows = min(mr, mc - i)
            if !transposeA {
                // op(A)[r, p] = a[r·lda + p]: gather 8 rows.
                let s = a + (row + i) * lda + col
                if rows == mr {
                    // 8×8 blocks transposed in registers, then the last kc mod 8 steps.
                    var p = 0
                    while p + 8 <= kc {
                        transpose8x8(s + p, lda, into: d, mr)
                        d += 8 * mr
                        p += 8
                    }
                    let s0 = s, s1 = s + lda, s2 = s + 2 * lda, s3 = s + 3 * lda
                    let s4 = s + 4 * lda, s5 = s + 5 * lda, s6 = s + 6 * lda, s7 = s + 7 * lda
                    while p < kc {
                        d[0] = s0[p]; d[1] = s1[p]; d[2] = s2[p]; d[3] = s3[p]
                        d[4] = s4[p]; d[5] = s5[p]; d[6] = s6[p]; d[7] = s7[p]
                        d += mr
                        p += 1
                    }
                } else {
                    for p in 0..<kc {
                        for r in 0..<mr { d[r] = r < rows ? s[r * lda + p] : 0 }
                        d += mr
                    }
                }
            } else {
                // op(A)[r, p] = a[p·lda + r]: 8 contiguous values per p.
                let s = a + col * lda + row + i
                if rows == mr {
                    for p in 0..<kc {
                        let v = UnsafeRawPointer(s + p * lda).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(d).storeBytes(of: v, as: SIMD8<Float>.self)
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

    /// Packs op(B)[row..<row+kc, col..<col+nc] into 32-wide panels: panel q holds, for each
    /// p in 0..<kc, the 32 values op(B)[row+p, col+q·32+j], zero past column nc.
    @inline(__always)
    static func packB(_ transposeB: Bool, b: UnsafePointer<Float>, ldb: Int, row: Int, col: Int,
                      kc: Int, nc: Int, into dst: UnsafeMutablePointer<Float>) {
        let nr = 32
        var d = dst
        var j = 0
        while j < nc {
            let cols = min(nr, nc - j)
            if !transposeB {
                // op(B)[p, j] = b[p·ldb + j]: 32 contiguous values per p.
                let s = b + row * ldb + col + j
                if cols == nr {
                    for p in 0..<kc {
                        let sp = UnsafeRawPointer(s + p * ldb), dp = UnsafeMutableRawPointer(d + p * nr)
                        dp.storeBytes(of: sp.loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                        dp.storeBytes(of: sp.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self),
                                      toByteOffset: 64, as: SIMD16<Float>.self)
                    }
                } else {
                    for p in 0..<kc {
                        let sp = s + p * ldb, dp = d + p * nr
                        for q in 0..<nr { dp[q] = q < cols ? sp[q] : 0 }
                    }
                }
            } else {
                // op(B)[p, j] = b[j·ldb + p]: gather 32 stored rows.
                let s = b + (col + j) * ldb + row
                if cols == nr {
                    // 8×8 blocks transposed in registers (a plain strided copy becomes slow
                    // zmm scatters), then the last kc mod 8 steps.
                    let kc8 = kc / 8 * 8
                    var q = 0
                    while q < nr {
                        var p = 0
                        while p < kc8 {
                            transpose8x8(s + q * ldb + p, ldb, into: d + p * nr + q, nr)
                            p += 8
                        }
                        q += 8
                    }
                    for p in kc8..<kc {
                        for q in 0..<nr { d[p * nr + q] = s[q * ldb + p] }
                    }
                    d += nr * kc
                    j += nr
                    continue
                }
                // Edge panel: row by row of the packed panel (a column-by-column copy becomes
                // zmm scatters).
                for p in 0..<kc {
                    let dp = d + p * nr
                    for q in 0..<nr { dp[q] = q < cols ? s[q * ldb + p] : 0 }
                }
            }
            d += nr * kc
            j += nr
        }
    }

    /// Writes the transpose of the 8×8 block at `src` (rows `ld` apart) to `dst` (rows `ldd`
    /// apart): dst[i·ldd + r] = src[r·ld + i]. Three rounds of even/odd unzipping of row
    /// pairs transpose an 8×8 block (each round rotates the 6 index bits by one).
    @inline(__always)
    static func transpose8x8(_ src: UnsafePointer<Float>, _ ld: Int,
                             into dst: UnsafeMutablePointer<Float>, _ ldd: Int) {
        typealias V = SIMD8<Float>
        typealias W = SIMD16<Float>
        @inline(__always) func row(_ i: Int) -> V { UnsafeRawPointer(src + i * ld).loadUnaligned(as: V.self) }
        var r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3)
        var r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7)
        for _ in 0..<3 {
            let c0 = W(lowHalf: r0, highHalf: r1), c1 = W(lowHalf: r2, highHalf: r3)
            let c2 = W(lowHalf: r4, highHalf: r5), c3 = W(lowHalf: r6, highHalf: r7)
            r0 = c0.evenHalf; r1 = c1.evenHalf; r2 = c2.evenHalf; r3 = c3.evenHalf
            r4 = c0.oddHalf; r5 = c1.oddHalf; r6 = c2.oddHalf; r7 = c3.oddHalf
        }
        @inline(__always) func put(_ i: Int, _ v: V) {
            UnsafeMutableRawPointer(dst + i * ldd).storeBytes(of: v, as: V.self)
        }
        put(0, r0); put(1, r1); put(2, r2); put(3, r3)
        put(4, r4); put(5, r5); put(6, r6); put(7, r7)
    }

    /// All 8×32 tiles of one packed mc×kc A block against one packed kc×nc B block.
    @inline(__always)
    static func macroKernel(mc: Int, nc: Int, kc: Int, alpha: Float, beta: Float,
                            pa: UnsafePointer<Float>, pb: UnsafePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, edge: UnsafeMutablePointer<Float>) {
        let mr = 8, nr = 32
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
                    microKernel8x32(kc: kc, a: ap, b: bp, c: ct, ldc: ldc, alpha: alpha, beta: beta)
                } else {
                    microKernel8x32(kc: kc, a: ap, b: bp, c: edge, ldc: nr, alpha: 1, beta: 0)
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

    /// All 8×32 tiles of `rows` (a multiple of 8) rows of A (m×k row-major, leading dimension
    /// `lda`), read in place, against one packed kc×nc B block.
    @inline(__always)
    static func unpackedMacroKernel(rows: Int, nc: Int, kc: Int, alpha: Float, beta: Float,
                                    a: UnsafePointer<Float>, lda: Int,
                                    pb: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let mr = 8, nr = 32
        var jr = 0
        while jr < nc {
            let cols = min(nr, nc - jr)
            let bp = pb + jr * kc
            var ir = 0
            while ir < rows {
                microKernel8x32Unpacked(kc: kc, a: a + ir * lda, lda: lda,
                                        b: bp, c: c + ir * ldc + jr, ldc: ldc, alpha: alpha, beta: beta, columns: cols)
                ir += mr
            }
            jr += nr
        }
    }

    /// C[8×32] = alpha · Apanel · Bpanel + beta · C, with Apanel packed 8 values per k step and
    /// Bpanel 32 values per k step (64-byte aligned). C is not read when beta == 0.
    @inline(never)
    static func microKernel8x32(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        tile8x32(kc: kc, a: a, rowStride: 1, columnStride: 8, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, columns: 32)
    }

    /// C[8×columns] = alpha · A[8×kc] · Bpanel + beta · C with A read in place (row r at
    /// a + r·lda) and Bpanel packed as in ``microKernel8x32(kc:a:b:c:ldc:alpha:beta:)``, zero
    /// past `columns` (≤ 32); only those columns of C are written.
    @inline(never)
    static func microKernel8x32Unpacked(kc: Int, a: UnsafePointer<Float>, lda: Int,
                                        b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                        alpha: Float, beta: Float, columns: Int) {
        tile8x32(kc: kc, a: a, rowStride: lda, columnStride: 1, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, columns: columns)
    }

    /// The body of both microkernels: C[8×columns] = alpha · A[8×kc] · Bpanel + beta · C with
    /// A(r, p) = a[r·rowStride + p·columnStride]. Inlined into each entry point, where the
    /// packed one's constant strides and width compile to fixed offsets and one store path
    /// (a single kernel with run-time strides ran packed products slower: docs/BENCHMARKS.md).
    @inline(__always)
    static func tile8x32(kc: Int, a: UnsafePointer<Float>, rowStride: Int, columnStride: Int,
                         b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                         alpha: Float, beta: Float, columns: Int) {
        typealias V = SIMD16<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V(), c70 = V(), c71 = V()
        let o1 = rowStride, o2 = 2 * rowStride, o3 = 3 * rowStride, o4 = 4 * rowStride
        let o5 = 5 * rowStride, o6 = 6 * rowStride, o7 = 7 * rowStride
        var pa = a
        var pb = UnsafeRawPointer(b)
        if columns <= 16 {
            // Only the first 16 columns exist (e.g. the backward product to z at |z| = 16): half
            // the multiply-adds; each element's sum is the same, in the same order.
            for _ in 0..<kc {
                let b0 = pb.load(as: V.self)
                c00 = c00.addingProduct(V(repeating: pa[0]), b0); c10 = c10.addingProduct(V(repeating: pa[o1]), b0)
                c20 = c20.addingProduct(V(repeating: pa[o2]), b0); c30 = c30.addingProduct(V(repeating: pa[o3]), b0)
                c40 = c40.addingProduct(V(repeating: pa[o4]), b0); c50 = c50.addingProduct(V(repeating: pa[o5]), b0)
                c60 = c60.addingProduct(V(repeating: pa[o6]), b0); c70 = c70.addingProduct(V(repeating: pa[o7]), b0)
                pa += columnStride
                pb += 128
            }
        } else {
          for _ in 0..<kc {
            let b0 = pb.load(as: V.self)
            let b1 = pb.load(fromByteOffset: 64, as: V.self)
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
            x = V(repeating: pa[o6])
            c60 = c60.addingProduct(x, b0); c61 = c61.addingProduct(x, b1)
            x = V(repeating: pa[o7])
            c70 = c70.addingProduct(x, b0); c71 = c71.addingProduct(x, b1)
            pa += columnStride
            pb += 128
          }
        }
        if columns == 32 {
            @inline(__always) func store(_ row: Int, _ v0: V, _ v1: V) {
                let p = UnsafeMutableRawPointer(c + row * ldc)
                if beta == 0 {
                    p.storeBytes(of: alpha * v0, as: V.self)
                    p.storeBytes(of: alpha * v1, toByteOffset: 64, as: V.self)
                } else {
                    let o0 = p.loadUnaligned(as: V.self), o1 = p.loadUnaligned(fromByteOffset: 64, as: V.self)
                    p.storeBytes(of: (alpha * v0).addingProduct(beta, o0), as: V.self)
                    p.storeBytes(of: (alpha * v1).addingProduct(beta, o1), toByteOffset: 64, as: V.self)
                }
            }
            store(0, c00, c01); store(1, c10, c11); store(2, c20, c21); store(3, c30, c31)
            store(4, c40, c41); store(5, c50, c51); store(6, c60, c61); store(7, c70, c71)
        } else if columns == 16 {
            @inline(__always) func store(_ row: Int, _ v0: V) {
                let p = UnsafeMutableRawPointer(c + row * ldc)
                if beta == 0 {
                    p.storeBytes(of: alpha * v0, as: V.self)
                } else {
                    p.storeBytes(of: (alpha * v0).addingProduct(beta, p.loadUnaligned(as: V.self)), as: V.self)
                }
            }
            store(0, c00); store(1, c10); store(2, c20); store(3, c30)
            store(4, c40); store(5, c50); store(6, c60); store(7, c70)
        } else {
            @inline(__always) func store(_ row: Int, _ v0: V, _ v1: V) {
                let p = c + row * ldc
                for q in 0..<columns {
                    let v = alpha * (q < 16 ? v0[q] : v1[q - 16])
                    p[q] = beta == 0 ? v : beta * p[q] + v
                }
            }
            store(0, c00, c01); store(1, c10, c11); store(2, c20, c21); store(3, c30, c31)
            store(4, c40, c41); store(5, c50, c51); store(6, c60, c61); store(7, c70, c71)
        }
    }

}

/// FMA throughput probe with 512-bit vectors: the peak the AVX-512 GEMM is compared against.
public enum AVX512FMAProbe {
    /// Floating-point operations of one iteration of ``chains(iterations:seed:)``:
    /// 12 vectors × 16 lanes × 2.
    public static var flopsPerIteration: Int { 12 * 16 * 2 }

    /// 12 independent chains of `SIMD16<Float>` FMAs (`x = x·s + t`); returns their sum so the
    /// work cannot be removed. 12 chains exceed FMA latency × pipes (4 × 2) of current cores.
    @inline(never)
    public static func chains(iterations: Int, seed: Float) -> Float {
        typealias V = SIMD16<Float>
        let s = V(repeating: 0.999_999), t = V(repeating: 1e-7 * seed)
        var x0 = V(repeating: seed), x1 = x0 + 1, x2 = x0 + 2, x3 = x0 + 3
        var x4 = x0 + 4, x5 = x0 + 5, x6 = x0 + 6, x7 = x0 + 7
        var x8 = x0 + 8, x9 = x0 + 9, x10 = x0 + 10, x11 = x0 + 11
        for _ in 0..<iterations {
            x0 = t.addingProduct(x0, s); x1 = t.addingProduct(x1, s)
            x2 = t.addingProduct(x2, s); x3 = t.addingProduct(x3, s)
            x4 = t.addingProduct(x4, s); x5 = t.addingProduct(x5, s)
            x6 = t.addingProduct(x6, s); x7 = t.addingProduct(x7, s)
            x8 = t.addingProduct(x8, s); x9 = t.addingProduct(x9, s)
            x10 = t.addingProduct(x10, s); x11 = t.addingProduct(x11, s)
        }
        let sum = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))
            + ((x8 + x9) + (x10 + x11))
        return sum.sum()
    }
}

#endif
