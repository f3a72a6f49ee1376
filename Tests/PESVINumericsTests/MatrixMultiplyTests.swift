import Dispatch
import Testing
@testable import PESVINumerics

/// Tests of `gemm` / `gemmChecked` against a naive product accumulated in Double.
///
/// Tolerance, per element of C:
///
///     |C − C_ref| ≤ 1e-6 · (k + 1) · (|alpha| · Σ_p |op(A)_ip| · |op(B)_pj| + |beta| · |C0_ij|)
///
/// The worst-case rounding bound of a length-k float dot product is about k · 2⁻²⁴ ≈ 6e-8 · k
/// times the same sum, so this leaves a margin of ~16× for the alpha/beta roundings, while an
/// indexing or packing bug (a wrong, missing or doubled term) is of the order of a whole term,
/// ≈ Σ|a||b| / k, and fails it for every k tested here.
///
/// The correctness tests run once per microkernel this machine can run
/// (`GEMMKernelKind.available`: AVX2 always, AVX-512 when the CPU has it).
@Suite struct MatrixMultiplyTests {
    static let ops: [(Transpose, Transpose)] = [(.none, .none), (.transpose, .none), (.none, .transpose), (.transpose, .transpose)]
    static let kernels = GEMMKernelKind.available

    /// One product to check: shapes, scalars, leading-dimension padding and threads.
    struct Case: CustomStringConvertible {
        var opA: Transpose, opB: Transpose
        var m: Int, n: Int, k: Int
        var alpha: Float = 1, beta: Float = 0
        /// Extra elements at the end of each stored row of A, B and C.
        var padA = 0, padB = 0, padC = 0
        var threads = 1
        var kernel: GEMMKernelKind = .avx2
        var description: String {
            "\(opA == .none ? "N" : "T")\(opB == .none ? "N" : "T") m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) pad=(\(padA),\(padB),\(padC)) threads=\(threads) kernel=\(kernel.rawValue)"
        }
    }

    /// Runs one case through `gemmChecked` and returns a failure description, or nil if every
    /// element of C is within tolerance and the row padding of C is untouched.
    static func check(_ t: Case, seed: UInt64) -> String? {
        var rng = RandomGenerator(seed: seed)
        let (aRows, aCols) = t.opA == .none ? (t.m, t.k) : (t.k, t.m)
        let (bRows, bCols) = t.opB == .none ? (t.k, t.n) : (t.n, t.k)
        let lda = aCols + t.padA, ldb = bCols + t.padB, ldc = t.n + t.padC
        // Padding of A and B is NaN: reading it would poison C.
        var a = [Float](repeating: .nan, count: aRows * lda)
        for r in 0..<aRows { for q in 0..<aCols { a[r * lda + q] = rng.uniformFloat() * 2 - 1 } }
        var b = [Float](repeating: .nan, count: bRows * ldb)
        for r in 0..<bRows { for q in 0..<bCols { b[r * ldb + q] = rng.uniformFloat() * 2 - 1 } }
        // C: NaN when beta == 0 (it must not be read), random otherwise; padding is a sentinel.
        let sentinel: Float = 12_345.5
        var c = [Float](repeating: sentinel, count: t.m * ldc)
        for i in 0..<t.m { for j in 0..<t.n { c[i * ldc + j] = t.beta == 0 ? .nan : rng.uniformFloat() * 4 - 2 } }
        let c0 = c
        do {
            try gemmChecked(t.opA, t.opB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: lda,
                            b: b, ldb: ldb, beta: t.beta, c: &c, ldc: ldc, threads: t.threads, kernel: t.kernel)
        } catch {
            return "\(t): threw \(error)"
        }
        for i in 0..<t.m {
            for j in 0..<t.n {
                var s = 0.0, sAbs = 0.0
                for p in 0..<t.k {
                    let x = Double(t.opA == .none ? a[i * lda + p] : a[p * lda + i])
                    let y = Double(t.opB == .none ? b[p * ldb + j] : b[j * ldb + p])
                    s += x * y; sAbs += abs(x * y)
                }
                let old = Double(c0[i * ldc + j])
                let expected = Double(t.alpha) * s + (t.beta == 0 ? 0 : Double(t.beta) * old)
                let scale = abs(Double(t.alpha)) * sAbs + (t.beta == 0 ? 0 : abs(Double(t.beta) * old))
                let got = Double(c[i * ldc + j])
                let error = abs(got - expected)
                if !(error <= 1e-6 * Double(t.k + 1) * scale) {
                    return "\(t): C[\(i),\(j)] = \(got), expected \(expected) (scale \(scale))"
                }
            }
            for j in t.n..<ldc where c[i * ldc + j] != sentinel {
                return "\(t): padding C[\(i),\(j)] overwritten with \(c[i * ldc + j])"
            }
        }
        return nil
    }

    /// Each of m, n, k takes every value 1…67 while the other two run over sizes around the
    /// 6×16 and 8×32 microkernels (1, 6/16, 7/17, 33/5, 8/32, 9/33), for all four op
    /// combinations. The scalars cycle through the alpha/beta cases so every combination meets
    /// edge tiles.
    @Test(arguments: kernels, [0, 1, 2, 3])
    func sweepEverySizeOneTo67(kernel: GEMMKernelKind, opIndex: Int) {
        let (opA, opB) = Self.ops[opIndex]
        let others = [(1, 1), (6, 16), (7, 17), (33, 5), (8, 32), (9, 33)]
        let scalars: [(Float, Float)] = [(1, 0), (-0.5, 2.5), (1, 1), (-0.5, 0)]
        var failures: [String] = []
        var seed: UInt64 = 1000 * UInt64(opIndex)
        for axis in 0..<3 {
            for size in 1...67 {
                for (x, y) in others {
                    let (m, n, k) = axis == 0 ? (size, x, y) : axis == 1 ? (x, size, y) : (x, y, size)
                    let (alpha, beta) = scalars[(size + axis) % scalars.count]
                    seed += 1
                    if let f = Self.check(Case(opA: opA, opB: opB, m: m, n: n, k: k, alpha: alpha, beta: beta, kernel: kernel), seed: seed) {
                        failures.append(f)
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.first ?? "")")
    }

    /// Every alpha in {0, 1, −0.5} with every beta in {0 (C full of NaN), 1, 2.5}, for all
    /// ops, on a size with edge tiles in both directions.
    @Test(arguments: kernels) func alphaBetaCases(kernel: GEMMKernelKind) {
        var seed: UInt64 = 50_000
        for (opA, opB) in Self.ops {
            for alpha: Float in [0, 1, -0.5] {
                for beta: Float in [0, 1, 2.5] {
                    seed += 1
                    let t = Case(opA: opA, opB: opB, m: 23, n: 37, k: 29, alpha: alpha, beta: beta, kernel: kernel)
                    let failure = Self.check(t, seed: seed)
                    #expect(failure == nil, "\(failure ?? "")")
                }
            }
        }
    }

    /// alpha = 0 means op(A)·op(B) is not formed: C = beta·C exactly, and C = 0 for beta = 0
    /// even when A, B and C hold NaN.
    @Test func alphaZeroIgnoresOperands() throws {
        let a = [Float](repeating: .nan, count: 12), b = [Float](repeating: .nan, count: 12)
        var c = [Float](repeating: .nan, count: 9)
        try gemmChecked(.none, .none, m: 3, n: 3, k: 4, alpha: 0, a: a, b: b, beta: 0, c: &c)
        #expect(c == [Float](repeating: 0, count: 9))
        var c2: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        try gemmChecked(.none, .none, m: 3, n: 3, k: 4, alpha: 0, a: a, b: b, beta: 2.5, c: &c2)
        #expect(c2 == [2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20, 22.5])
    }

    /// m, n or k = 0: no C element exists (m, n = 0), or C = beta·C (k = 0; zero without
    /// reading C when beta = 0).
    @Test func emptyDimensions() throws {
        for (opA, opB) in Self.ops {
            var c: [Float] = []
            try gemmChecked(opA, opB, m: 0, n: 5, k: 3, a: [], b: [Float](repeating: 1, count: 15), c: &c)
            try gemmChecked(opA, opB, m: 4, n: 0, k: 3, a: [Float](repeating: 1, count: 12), b: [], c: &c)
            try gemmChecked(opA, opB, m: 0, n: 0, k: 0, a: [], b: [], c: &c)
            #expect(c.isEmpty)
            var nanC = [Float](repeating: .nan, count: 6)
            try gemmChecked(opA, opB, m: 2, n: 3, k: 0, a: [], b: [], beta: 0, c: &nanC)
            #expect(nanC == [0, 0, 0, 0, 0, 0])
            var c2: [Float] = [1, 2, 3, 4, 5, 6]
            try gemmChecked(opA, opB, m: 2, n: 3, k: 0, alpha: -0.5, a: [], b: [], beta: 2.5, c: &c2)
            #expect(c2 == [2.5, 5, 7.5, 10, 12.5, 15])
            var c3: [Float] = [1, 2, 3, 4, 5, 6]
            try gemmChecked(opA, opB, m: 2, n: 3, k: 0, a: [], b: [], beta: 1, c: &c3)
            #expect(c3 == [1, 2, 3, 4, 5, 6])
        }
    }

    /// Leading dimensions larger than the rows (padding holds NaN in A and B, a sentinel in C
    /// that must survive), for all ops, with sizes crossing the 6×16 tiles.
    @Test(arguments: kernels) func stridedOperands(kernel: GEMMKernelKind) {
        var seed: UInt64 = 60_000
        for (opA, opB) in Self.ops {
            for (m, n, k) in [(1, 1, 1), (7, 19, 5), (13, 35, 70), (64, 48, 9)] {
                for (pa, pb, pc) in [(1, 0, 0), (0, 3, 0), (0, 0, 5), (17, 9, 33)] {
                    seed += 1
                    let t = Case(opA: opA, opB: opB, m: m, n: n, k: k, alpha: -0.5, beta: seed % 2 == 0 ? 0 : 2.5,
                                 padA: pa, padB: pb, padC: pc, kernel: kernel)
                    let failure = Self.check(t, seed: seed)
                    #expect(failure == nil, "\(failure ?? "")")
                }
            }
        }
    }

    /// Sizes crossing the cache blocks (mc = 144, kc = 256, nc = 4080 for AVX2 and 4064 for
    /// AVX-512): several k blocks with beta ≠ 0 (beta must be applied once), several m blocks,
    /// an n block boundary.
    @Test(arguments: kernels) func sizesCrossingCacheBlocks(kernel: GEMMKernelKind) {
        let shapes = [(300, 40, 513), (145, 300, 257), (513, 20, 300), (3, 4100, 7), (150, 130, 512)]
        var seed: UInt64 = 70_000
        for (opA, opB) in Self.ops {
            for (m, n, k) in shapes {
                seed += 1
                let t = Case(opA: opA, opB: opB, m: m, n: n, k: k, alpha: 1, beta: seed % 2 == 0 ? 2.5 : 0, padC: 3,
                             kernel: kernel)
                let failure = Self.check(t, seed: seed)
                #expect(failure == nil, "\(failure ?? "")")
            }
        }
    }

    /// Both kernels read A in place (no packing) for A·B with at most 256 columns: full tiles
    /// from the stored rows, the last m mod 8 (AVX2: mod 6) rows packed. Sizes on both sides of
    /// each boundary: n around the 32- and 16-wide panels up to 256, m with and without
    /// remainder rows and across the 144-row blocks, k within one depth block, across the
    /// 256-deep blocks up to 1024 (B packed whole, each row block through every depth block,
    /// beta applied once) and beyond, padded rows of A, and a leading dimension that is a
    /// multiple of 1024 (packed: in-place reads of rows 4 KiB apart alias in L1).
    @Test(arguments: kernels) func aReadInPlaceForNarrowB(kernel: GEMMKernelKind) {
        var seed: UInt64 = 75_000
        var failures: [String] = []
        // k = 300 and 513: deeper than one block, B packed whole and each row block through
        // every depth block; k = 1100: deeper than that path takes, one depth block at a time.
        for n in [1, 16, 31, 32, 33, 63, 64, 65, 256] {
            for (m, k) in [(8, 1), (13, 300), (150, 7), (301, 513), (22, 1100)] {
                for padA in [0, 5] {
                    seed += 1
                    let (alpha, beta): (Float, Float) = seed % 3 == 0 ? (1, 0) : seed % 3 == 1 ? (-0.5, 2.5) : (1, 1)
                    let t = Case(opA: .none, opB: seed % 2 == 0 ? .none : .transpose, m: m, n: n, k: k,
                                 alpha: alpha, beta: beta, padA: padA, padC: 3, kernel: kernel)
                    if let f = Self.check(t, seed: seed) { failures.append(f) }
                }
            }
        }
        let aliased = Case(opA: .none, opB: .none, m: 21, n: 40, k: 30, alpha: 1, beta: 2.5, padA: 1024 - 30, kernel: kernel)
        if let f = Self.check(aliased, seed: 75_999) { failures.append(f) }
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.first ?? "")")
    }

    /// threads = 2 on products above the parallel threshold, split along n (n ≥ m) and along m
    /// (m > n), with uneven edges; and threads = 2 on a small product (runs serially).
    @Test(arguments: kernels) func twoThreads(kernel: GEMMKernelKind) {
        #expect(2 * 190 * 230 * 300 >= kernel.parallelThresholdFlops)
        #expect(2 * 301 * 131 * 330 >= kernel.parallelThresholdFlops)
        var seed: UInt64 = 80_000
        for (opA, opB) in Self.ops {
            for (m, n, k) in [(190, 230, 300), (301, 131, 330), (5, 7, 3)] {
                for threads in [1, 2] {
                    seed += 1
                    let t = Case(opA: opA, opB: opB, m: m, n: n, k: k, alpha: -0.5, beta: seed % 2 == 0 ? 0 : 2.5,
                                 padB: 2, threads: threads, kernel: kernel)
                    let failure = Self.check(t, seed: seed)
                    #expect(failure == nil, "\(failure ?? "")")
                }
            }
        }
    }

    /// Many products at once from several threads give correct results: small ones share the
    /// workspace pool; the large ones ask for 2 threads, so one holds the helper threads and
    /// the others run on their own thread.
    @Test(arguments: kernels) func concurrentCallers(kernel: GEMMKernelKind) {
        let count = 8
        let results = UnsafeMutablePointer<Bool>.allocate(capacity: count)
        results.initialize(repeating: false, count: count)
        defer { results.deallocate() }
        struct Box: @unchecked Sendable { let p: UnsafeMutablePointer<Bool> }
        let box = Box(p: results)
        DispatchQueue.concurrentPerform(iterations: count) { @Sendable i in
            let (opA, opB) = MatrixMultiplyTests.ops[i % 4]
            let t = i % 2 == 0
                ? Case(opA: opA, opB: opB, m: 40 + i, n: 50 + 3 * i, k: 60 + 5 * i, alpha: 1, beta: 1, kernel: kernel)
                : Case(opA: opA, opB: opB, m: 190 + i, n: 230, k: 300, alpha: 1, beta: 0, threads: 2, kernel: kernel)
            box.p[i] = MatrixMultiplyTests.check(t, seed: 90_000 + UInt64(i)) == nil
        }
        for i in 0..<count { #expect(results[i], "concurrent product \(i) wrong") }
    }

    /// Products of a few rows skip packing (`takesUnpackedPath`) and give the packed kernels'
    /// result bit for bit, with padded leading dimensions (the padding of A and B is NaN and
    /// must not be read; C's padding must stay), at shapes around the register blocks; and only
    /// plain C = A·B of fewer than `unpackedProductRowLimit` rows within one depth block takes it.
    @Test func fewRowsSkipPackingBitForBit() {
        var rng = RandomGenerator(seed: 41)
        var checked = 0
        for m in 1..<unpackedProductRowLimit {
            for (n, k) in [(1, 1), (7, 5), (16, 16), (17, 3), (33, 64), (64, 32), (300, 17), (40, 256)] {
                let lda = k + 3, ldb = n + 5, ldc = n + 2
                var a = [Float](repeating: .nan, count: m * lda), b = [Float](repeating: .nan, count: k * ldb)
                for i in 0..<m { for t in 0..<k { a[i * lda + t] = rng.uniformFloat() * 2 - 1 } }
                for t in 0..<k { for j in 0..<n { b[t * ldb + j] = rng.uniformFloat() * 2 - 1 } }
                var routed = [Float](repeating: 7.5, count: m * ldc), packed = routed
                #expect(takesUnpackedPath(.none, .none, m: m, n: n, k: k, alpha: 1, beta: 0))
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
                    routed.withUnsafeMutableBufferPointer { cp in
                        gemm(.none, .none, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                             beta: 0, c: cp.baseAddress!, ldc: ldc)
                    }
                    packed.withUnsafeMutableBufferPointer { cp in
                        packedGEMM(.none, .none, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                   beta: 0, c: cp.baseAddress!, ldc: ldc, threads: 1)
                    }
                } }
                #expect(routed.map(\.bitPattern) == packed.map(\.bitPattern), "m=\(m) n=\(n) k=\(k): differs from the packed product")
                #expect(routed.allSatisfy { !$0.isNaN }, "m=\(m) n=\(n) k=\(k): read the NaN padding")
                #expect((0..<m).allSatisfy { i in (n..<ldc).allSatisfy { routed[i * ldc + $0] == 7.5 } }, "m=\(m) n=\(n) k=\(k): wrote C's padding")
                checked += 1
            }
        }
        #expect(checked == 15 * 8)
        // Everything else stays on the packed kernels.
        #expect(!takesUnpackedPath(.none, .none, m: unpackedProductRowLimit, n: 8, k: 8, alpha: 1, beta: 0))
        #expect(!takesUnpackedPath(.none, .none, m: 4, n: 8, k: GEMMBlocking.kc + 1, alpha: 1, beta: 0))
        #expect(GEMMBlocking.kc == 256, "the shapes above take k up to 256 as one depth block")
        #expect(!takesUnpackedPath(.none, .none, m: 4, n: 8, k: 8, alpha: 2, beta: 0))
        #expect(!takesUnpackedPath(.none, .none, m: 4, n: 8, k: 8, alpha: 1, beta: 1))
        #expect(!takesUnpackedPath(.transpose, .none, m: 4, n: 8, k: 8, alpha: 1, beta: 0))
        #expect(!takesUnpackedPath(.none, .transpose, m: 4, n: 8, k: 8, alpha: 1, beta: 0))
        #expect(!takesUnpackedPath(.none, .none, m: 4, n: 8, k: 0, alpha: 1, beta: 0))
    }

    /// The unchecked pointer entry point gives the same result as the checked one.
    @Test func uncheckedEntryPointMatchesChecked() throws {
        var rng = RandomGenerator(seed: 5)
        let a = rng.uniformArray(count: 9 * 11, low: -1, high: 1), b = rng.uniformArray(count: 11 * 13, low: -1, high: 1)
        var c1 = [Float](repeating: 0, count: 9 * 13), c2 = c1
        try gemmChecked(.none, .none, m: 9, n: 13, k: 11, a: a, b: b, c: &c1)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c2.withUnsafeMutableBufferPointer { cp in
                    gemm(.none, .none, m: 9, n: 13, k: 11, alpha: 1, a: ap.baseAddress!, lda: 11,
                         b: bp.baseAddress!, ldb: 13, beta: 0, c: cp.baseAddress!, ldc: 13)
                }
            }
        }
        #expect(c1 == c2)
        #expect(c1.allSatisfy { $0 != 0 && $0.isFinite })
    }

    // MARK: - Kernel selection

    /// `PESVI_GEMM_KERNEL` handling: avx2 forces AVX2; anything else is automatic; AVX-512
    /// only when the CPU has it.
    @Test func kernelSelection() {
        for hw in [false, true] {
            #expect(GEMMKernelKind.select(requested: "avx2", cpuHasAVX512: hw) == .avx2)
            #expect(GEMMKernelKind.select(requested: "AVX2", cpuHasAVX512: hw) == .avx2)
            #expect(GEMMKernelKind.select(requested: nil, cpuHasAVX512: hw) == (hw ? .avx512 : .avx2))
            #expect(GEMMKernelKind.select(requested: "", cpuHasAVX512: hw) == (hw ? .avx512 : .avx2))
            #expect(GEMMKernelKind.select(requested: "avx512", cpuHasAVX512: hw) == (hw ? .avx512 : .avx2))
        }
        #expect(GEMMKernelKind.available.contains(.current))
        #expect(GEMMKernelKind.available.first == .avx2)
    }

    /// The two kernels agree (to rounding) on a product with edge tiles in every direction
    /// and several k blocks; skipped without AVX-512.
    @Test func kernelsAgree() throws {
        guard GEMMKernelKind.cpuHasAVX512 else { return }
        var rng = RandomGenerator(seed: 11)
        let (m, n, k) = (77, 101, 530)
        let a = rng.uniformArray(count: m * k, low: -1, high: 1), b = rng.uniformArray(count: k * n, low: -1, high: 1)
        var c2 = [Float](repeating: 0, count: m * n), c5 = c2
        try gemmChecked(.none, .none, m: m, n: n, k: k, a: a, b: b, c: &c2, kernel: .avx2)
        try gemmChecked(.none, .none, m: m, n: n, k: k, a: a, b: b, c: &c5, kernel: .avx512)
        let worst = zip(c2, c5).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-3, "largest difference \(worst)")
    }

    // MARK: - Misuse of the checked entry point

    /// Runs `body`, expecting a NumericsError whose description contains every string of `names`.
    static func expectError(_ names: [String], _ body: () throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("no error thrown, expected one naming \(names)", sourceLocation: sourceLocation)
        } catch let error as NumericsError {
            for name in names {
                #expect(error.description.contains(name), "\(error) does not name \(name)", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func checkedRejectsBuffersTooSmall() {
        let a = [Float](repeating: 1, count: 6), b = [Float](repeating: 1, count: 12)
        var c = [Float](repeating: 0, count: 8)
        // A: 2×3 needed 6, give 5.
        Self.expectError(["A has 5", "C[2×4]", "A stored 2×3", "B stored 3×4"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: Array(a.dropLast()), b: b, c: &c)
        }
        // B: stored 4×3 for Bᵀ needs 12, give 11.
        Self.expectError(["B has 11", "C[2×4]", "Aᵀ", "Bᵀ", "B stored 4×3"]) {
            try gemmChecked(.transpose, .transpose, m: 2, n: 4, k: 3, a: a, b: Array(b.dropLast()), c: &c)
        }
        // C: 2×4 needs 8, give 7.
        var shortC = [Float](repeating: 0, count: 7)
        Self.expectError(["C has 7", "C[2×4]"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, b: b, c: &shortC)
        }
        // Strided A: 2 rows with lda 5 need 5 + 3 = 8.
        Self.expectError(["A has 6", "lda 5"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, lda: 5, b: b, c: &c)
        }
        // Shapes that do not match the arrays at all (k disagrees with the buffers).
        Self.expectError(["C[2×4]", "A stored 2×30"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 30, a: a, b: b, c: &c)
        }
    }

    @Test func checkedRejectsBadArguments() {
        let a = [Float](repeating: 1, count: 6), b = [Float](repeating: 1, count: 12)
        var c = [Float](repeating: 0, count: 8)
        Self.expectError(["leading dimension", "lda 2", "A stored 2×3"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, lda: 2, b: b, c: &c)
        }
        Self.expectError(["leading dimension", "ldb 3", "B stored 3×4"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, b: b, ldb: 3, c: &c)
        }
        Self.expectError(["leading dimension", "ldc 3", "C[2×4]"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, b: b, c: &c, ldc: 3)
        }
        Self.expectError(["m=-1", "n=4", "k=3"]) {
            try gemmChecked(.none, .none, m: -1, n: 4, k: 3, a: a, b: b, c: &c)
        }
        Self.expectError(["threads", "0"]) {
            try gemmChecked(.none, .none, m: 2, n: 4, k: 3, a: a, b: b, c: &c, threads: 0)
        }
        // Nothing was written by the rejected calls.
        #expect(c == [Float](repeating: 0, count: 8))
    }
}

/// `smallMatrixProduct` against a naive product in Double, with the same tolerance rule as
/// `gemm`, and bit for bit against the in-order scalar fused sum it documents: shapes that hit
/// the four-row blocks, the 32-wide blocks, the 8-wide blocks and the scalar tail; A read
/// as stored, transposed (strides 1 and lda) and as a broadcast row vector (row stride 0);
/// padded leading dimensions (the padding of C must stay untouched); and k = 0 (C = 0).
@Suite struct SmallMatrixProductTests {
    @Test(arguments: [(1, 1, 1), (3, 7, 5), (5, 8, 3), (4, 33, 9), (2, 40, 17), (6, 64, 64), (64, 64, 64), (1, 70, 64), (3, 16, 0),
                      (4, 16, 16), (9, 16, 33), (5, 32, 16), (8, 48, 7), (7, 21, 12), (4, 16, 0)])
    func matchesDoubleReference(m: Int, n: Int, k: Int) {
        var rng = RandomGenerator(seed: UInt64(m * 10_000 + n * 100 + k))
        let ldb = n + 3, ldc = n + 2
        let b = rng.normalArray(count: max(k * ldb, 1))
        for layout in ["stored", "transposed", "row vector"] where layout != "row vector" || m == 1 {
            let lda = (layout == "transposed" ? m : k) + 1
            let a = rng.normalArray(count: max((layout == "transposed" ? k : m) * lda, 1))
            let (rowStride, columnStride) = layout == "stored" ? (lda, 1) : (layout == "transposed" ? (1, lda) : (0, 1))
            var c = [Float](repeating: .nan, count: m * ldc)
            for i in 0..<m { for j in n..<ldc { c[i * ldc + j] = 7 } }
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                smallMatrixProduct(m: m, n: n, k: k, a: ap.baseAddress!, aRowStride: rowStride, aColumnStride: columnStride,
                                   b: bp.baseAddress!, ldb: ldb, c: cp.baseAddress!, ldc: ldc)
            } } }
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var ref = 0.0, scale = 0.0
                    for t in 0..<k {
                        let p = Double(a[i * rowStride + t * columnStride]) * Double(b[t * ldb + j])
                        ref += p; scale += abs(p)
                    }
                    // The documented rounding: a scalar fused sum over t in order, from zero.
                    var exact: Float = 0
                    for t in 0..<k { exact = exact.addingProduct(a[i * rowStride + t * columnStride], b[t * ldb + j]) }
                    #expect(c[i * ldc + j] == exact, "m=\(m) n=\(n) k=\(k) \(layout): (\(i), \(j)) not the in-order fused sum")
                    let err = abs(Double(c[i * ldc + j]) - ref)
                    worst = max(worst, err / (1e-6 * Double(k + 1) * max(scale, 1e-30)))
                    if k == 0 { #expect(c[i * ldc + j] == 0) }
                }
                for j in n..<ldc { #expect(c[i * ldc + j] == 7, "padding of C written (\(layout))") }
            }
            #expect(worst <= 1, "m=\(m) n=\(n) k=\(k) \(layout): error \(worst) × the tolerance")
        }
    }
}

/// `gatheredMatrixProduct` bit for bit against the in-order scalar fused sum on the gathered
/// operands (so against `smallMatrixProduct` on gathered copies): A picked from a larger
/// matrix by row and column index lists (as a ReLU pattern picks a weight block), read
/// transposed, and B's rows picked by a list or dense; shapes hitting the four-row × 16
/// blocks, the 16-, 8- and 1-column row tails, and k = 0.
@Suite struct GatheredMatrixProductTests {
    @Test(arguments: [(1, 1, 1), (4, 16, 5), (5, 16, 9), (3, 24, 7), (7, 33, 12), (16, 16, 16), (32, 32, 20), (1, 16, 0), (6, 17, 3)])
    func matchesInOrderFusedSum(m: Int, n: Int, k: Int) {
        var rng = RandomGenerator(seed: UInt64(m * 10_000 + n * 100 + k))
        let big = 40, ldb = n + 5, ldc = n + 2
        let aFull = rng.normalArray(count: big * big)
        let bFull = rng.normalArray(count: big * ldb)
        // Distinct, unsorted index lists into the 40 rows / columns.
        let rows = Array((0..<big).shuffled(using: &rng).prefix(m)), cols = Array((0..<big).shuffled(using: &rng).prefix(k))
        let bRows = Array((0..<big).shuffled(using: &rng).prefix(k))
        for transposed in [false, true] {
            for denseB in [false, true] {
                // A(i, t) = aFull[rows[i], cols[t]] (or aFull[cols[t], rows[i]] transposed).
                let aRowOffsets = transposed ? rows : rows.map { $0 * big }
                let aColumnOffsets = transposed ? cols.map { $0 * big } : cols
                let bRowOffsets = denseB ? (0..<k).map { $0 * ldb } : bRows.map { $0 * ldb }
                var c = [Float](repeating: .nan, count: m * ldc)
                for i in 0..<m { for j in n..<ldc { c[i * ldc + j] = 7 } }
                aFull.withUnsafeBufferPointer { ap in bFull.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    aRowOffsets.withUnsafeBufferPointer { ar in aColumnOffsets.withUnsafeBufferPointer { ac in
                        bRowOffsets.withUnsafeBufferPointer { br in
                            let none = UnsafePointer<Int>(bitPattern: 64)!
                            gatheredMatrixProduct(m: m, n: n, k: k, a: ap.baseAddress!, aRowOffsets: ar.baseAddress ?? none,
                                                  aColumnOffsets: ac.baseAddress ?? none, b: bp.baseAddress!,
                                                  bRowOffsets: br.baseAddress ?? none, c: cp.baseAddress!, ldc: ldc)
                        } } }
                } } }
                for i in 0..<m {
                    for j in 0..<n {
                        var exact: Float = 0
                        for t in 0..<k {
                            let av = transposed ? aFull[cols[t] * big + rows[i]] : aFull[rows[i] * big + cols[t]]
                            exact = exact.addingProduct(av, bFull[(denseB ? t : bRows[t]) * ldb + j])
                        }
                        #expect(c[i * ldc + j] == exact, "m=\(m) n=\(n) k=\(k) transposed \(transposed) dense B \(denseB): (\(i), \(j))")
                    }
                    for j in n..<ldc { #expect(c[i * ldc + j] == 7, "padding of C written") }
                }
            }
        }
    }
}
