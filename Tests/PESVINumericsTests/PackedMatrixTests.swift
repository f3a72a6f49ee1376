import Testing
@testable import PESVINumerics

/// `gemm` with a ``PackedMatrix`` against `gemm` on the matrix it was packed from, bit for bit
/// (the packed operand only skips packing; `gemm` itself is checked against Double products in
/// MatrixMultiplyTests).
@Suite struct PackedMatrixTests {
    /// One product with a packed operand and its reference, both with NaN in A's padding and
    /// a sentinel in C's padding; returns a failure description or nil.
    static func check(_ op: Transpose, m: Int, n: Int, k: Int, alpha: Float, beta: Float, threads: Int,
                      kernel: GEMMKernelKind, seed: UInt64) -> String? {
        var rng = RandomGenerator(seed: seed)
        let (bRows, bCols) = op == .none ? (k, n) : (n, k)
        let lda = k + 3, ldb = bCols + 2, ldc = n + 1
        var a = [Float](repeating: .nan, count: m * lda)
        for i in 0..<m { for t in 0..<k { a[i * lda + t] = rng.uniformFloat() * 2 - 1 } }
        var b = [Float](repeating: .nan, count: bRows * ldb)
        for r in 0..<bRows { for q in 0..<bCols { b[r * ldb + q] = rng.uniformFloat() * 2 - 1 } }
        let sentinel: Float = 9_876.5
        var c = [Float](repeating: sentinel, count: m * ldc)
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? .nan : rng.uniformFloat() * 4 - 2 } }
        var reference = c
        let packed = b.withUnsafeBufferPointer { PackedMatrix(op, b: $0.baseAddress!, ldb: ldb, k: k, n: n, kernel: kernel) }
        // The packed copy is a snapshot: overwriting the source afterwards changes nothing.
        let original = b
        for i in b.indices { b[i] = .nan }
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                gemm(m: m, alpha: alpha, a: ap.baseAddress!, lda: lda, b: packed, beta: beta,
                     c: cp.baseAddress!, ldc: ldc, threads: threads)
            }
            original.withUnsafeBufferPointer { bp in
                reference.withUnsafeMutableBufferPointer { cp in
                    if kernel == .current {
                        gemm(.none, op, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!,
                             ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc, threads: threads)
                    } else {
                        packedGEMM(.none, op, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!,
                                   ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc, threads: threads, kernel: kernel)
                    }
                }
            }
        }
        let what = "\(op == .none ? "B" : "Bᵀ") m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) threads=\(threads) \(kernel)"
        if reference.contains(where: \.isNaN) { return "\(what): the reference read NaN" }
        for i in 0..<(m * ldc) where c[i].bitPattern != reference[i].bitPattern {
            return "\(what): C[\(i / ldc),\(i % ldc)] = \(c[i]), unpacked operand gives \(reference[i])"
        }
        if threads == 2 {
            // A split product runs on one thread when another holds the helpers (tests run in
            // parallel): run both halves of the split here, so the panels of the second half
            // (columns or rows from the middle on) are always checked.
            var halves = [Float](repeating: sentinel, count: m * ldc)
            for i in 0..<m { for j in 0..<n { halves[i * ldc + j] = .nan } }
            a.withUnsafeBufferPointer { ap in
                halves.withUnsafeMutableBufferPointer { cp in
                    let job = GEMMSplitJob(opA: .none, opB: op, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                           a: ap.baseAddress!, lda: lda, b: packed.operand.source, ldb: op == .none ? n : k,
                                           c: cp.baseAddress!, ldc: ldc, splitN: n >= m, chunks: 2, kernel: kernel,
                                           prepacked: PrepackedPanels(panels: packed.operand.panels, blockStride: packed.operand.blockStride, column: 0))
                    job.run(part: 0)
                    job.run(part: 1)
                }
            }
            for i in 0..<(m * ldc) where halves[i].bitPattern != reference[i].bitPattern {
                return "\(what), split in two here: C[\(i / ldc),\(i % ldc)] = \(halves[i]), unpacked operand gives \(reference[i])"
            }
        }
        return nil
    }

    /// Shapes around the register blocks and the few-rows path (m < 16), one depth block and
    /// several (k = 300 > 256; k = 1100 beyond the whole-B depth), B blocks wider than the
    /// in-place-A limit (n = 300 > 256) and more than one B block (n = 4100), alpha/beta cases, both operands' orientations, every
    /// kernel; threads = 2 on products above the split threshold, split along n (n ≥ m) and
    /// along m.
    @Test(arguments: GEMMKernelKind.available)
    func matchesUnpackedOperandBitForBit(kernel: GEMMKernelKind) {
        var failures: [String] = []
        var seed: UInt64 = 4_000
        for op in [Transpose.none, .transpose] {
            // (4100, 16): wider than one B block of either kernel (4,064 / 4,080 columns), e.g. a
            // decoder's output layer for data of 4,100 dimensions.
            for (n, k) in [(16, 16), (33, 64), (128, 64), (40, 300), (300, 40), (20, 1100), (64, 17), (4100, 16)] {
                for m in [1, 5, 15, 16, 17, 100] {
                    for (alpha, beta) in [(Float(1), Float(0)), (-0.5, 0), (1, 2.5)] {
                        seed += 1
                        if let f = Self.check(op, m: m, n: n, k: k, alpha: alpha, beta: beta, threads: 1, kernel: kernel, seed: seed) {
                            failures.append(f)
                        }
                    }
                }
            }
            for (m, n, k) in [(190, 230, 300), (301, 131, 330), (600, 64, 400)] {
                #expect(2 * m * n * k >= kernel.parallelThresholdFlops)
                for threads in [1, 2] {
                    seed += 1
                    if let f = Self.check(op, m: m, n: n, k: k, alpha: 1, beta: 0, threads: threads, kernel: kernel, seed: seed) {
                        failures.append(f)
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.first ?? "")")
    }

    /// The packed operand keeps its shape and orientation, and packs what the source held.
    @Test func describesItsOperand() {
        let w: [Float] = [1, 2, 3, 4, 5, 6]  // 2×3
        let packed = PackedMatrix(.transpose, b: w, k: 3, n: 2)
        #expect(packed.k == 3 && packed.n == 2 && packed.transpose == .transpose)
        // x·Wᵀ for x = [1, 0, -1]: [1 − 3, 4 − 6].
        let x: [Float] = [1, 0, -1]
        var y: [Float] = [0, 0]
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                gemm(m: 1, alpha: 1, a: xp.baseAddress!, lda: 3, b: packed, beta: 0, c: yp.baseAddress!, ldc: 2)
            }
        }
        #expect(y == [-2, -2])
    }
}
