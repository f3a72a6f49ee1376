/// Speed of `gemm` on the shapes the model uses, as a fraction of the FMA peak measured in
/// the same run (`pesvi bench gemm`, docs/BENCHMARKS.md).
///
/// Throughput is `2·m·n·k / t` in GFLOP/s (10⁹ floating-point operations per second), where `t`
/// is the time of one call with `alpha = 1, beta = 0` on densely stored operands. Each case is
/// warmed up, then timed `repeats` times; each timed repeat is a batch of calls lasting at
/// least ~40 ms, and the reported figure is the median over the repeats. The peak is the
/// best of ``FMAPeakProbe`` slices on the same thread count, with the vector width of the
/// kernel measured (``GEMMKernelKind``: 512-bit for `.avx512`, 256-bit for `.avx2`).
public enum GEMMBenchmark {
    /// Which operands are transposed: NN = A·B, TN = Aᵀ·B, NT = A·Bᵀ.
    public enum Op: String, Sendable, CaseIterable {
        case nn = "NN", tn = "TN", nt = "NT"
        var transposes: (Transpose, Transpose) {
            switch self {
            case .nn: return (.none, .none)
            case .tn: return (.transpose, .none)
            case .nt: return (.none, .transpose)
            }
        }
    }

    /// Product shape: op(A) is m×k, op(B) is k×n.
    public struct Shape: Sendable, Equatable {
        public var m: Int, k: Int, n: Int
        public init(m: Int, k: Int, n: Int) { self.m = m; self.k = k; self.n = n }
    }

    /// The shapes of the benchmark, (M, K, N): three layer products of the model and a large
    /// square product.
    public static let standardShapes: [Shape] = [
        Shape(m: 256, k: 64, n: 128), Shape(m: 256, k: 128, n: 300),
        Shape(m: 256, k: 300, n: 128), Shape(m: 1024, k: 1024, n: 1024),
    ]

    /// Measured speed of one case.
    public struct Result: Sendable, Equatable {
        public var op: Op
        public var shape: Shape
        public var threads: Int
        /// Median GFLOP/s over the timed repeats.
        public var gflops: Double
        /// `gflops` divided by the FMA peak measured on the same number of threads.
        public var peakFraction: Double
        /// The microkernel that ran.
        public var kernel: GEMMKernelKind = .avx2
    }

    /// Measures the FMA peak on each thread count of `threads`, then every op × shape × threads
    /// case, calling `onPeak` and `onResult` as soon as each figure is known. `kernel` is the
    /// microkernel to measure (default: the one `gemm` uses; `.avx512` needs a CPU with it).
    public static func run(
        shapes: [Shape] = standardShapes,
        ops: [Op] = Op.allCases,
        threads: [Int] = [1, 2],
        repeats: Int = 5,
        kernel: GEMMKernelKind = .current,
        onPeak: (FMAPeakProbe.Result) -> Void = { _ in },
        onResult: (Result) -> Void = { _ in }
    ) -> (peaks: [FMAPeakProbe.Result], results: [Result]) {
        var peaks: [FMAPeakProbe.Result] = []
        for t in threads {
            let p = FMAPeakProbe.measure(threads: t, kernel: kernel)
            peaks.append(p)
            onPeak(p)
        }
        var results: [Result] = []
        for shape in shapes {
            for op in ops {
                for (t, peak) in zip(threads, peaks) {
                    let g = measure(op: op, shape: shape, threads: t, repeats: repeats, kernel: kernel)
                    let r = Result(op: op, shape: shape, threads: t, gflops: g, peakFraction: g / peak.gflops,
                                   kernel: peak.kernel)
                    results.append(r)
                    onResult(r)
                }
            }
        }
        return (peaks, results)
    }

    /// Median GFLOP/s of `gemm(op, shape)` on `threads` threads over `repeats` timed batches,
    /// with microkernel `kernel` (replaced by `.avx2` on a CPU without AVX-512).
    public static func measure(op: Op, shape: Shape, threads: Int, repeats: Int = 5,
                               kernel: GEMMKernelKind = .current) -> Double {
        let kernel = GEMMKernelKind.cpuHasAVX512 ? kernel : .avx2
        let (m, k, n) = (shape.m, shape.k, shape.n)
        let (opA, opB) = op.transposes
        let lda = opA == .none ? k : m, ldb = opB == .none ? n : k
        var rng = RandomGenerator(seed: 2024)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m * k))
        let b = UnsafeMutablePointer<Float>.allocate(capacity: max(1, k * n))
        let c = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m * n))
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        rng.fillUniform(a, count: m * k, low: -1, high: 1)
        rng.fillUniform(b, count: k * n, low: -1, high: 1)
        c.initialize(repeating: 0, count: m * n)
        func call() {
            packedGEMM(opA, opB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                       beta: 0, c: c, ldc: n, threads: threads, kernel: kernel)
        }
        // Warm-up (workspace, caches, clocks) and calibration of the batch length.
        var calls = 1
        while true {
            let t0 = monotonicSeconds()
            for _ in 0..<calls { call() }
            let dt = monotonicSeconds() - t0
            if dt >= 0.02 { calls = max(1, Int(Double(calls) * 0.04 / dt)); break }
            calls *= 2
        }
        var rates: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = monotonicSeconds()
            for _ in 0..<calls { call() }
            let dt = monotonicSeconds() - t0
            rates.append(2 * Double(m) * Double(n) * Double(k) * Double(calls) / dt / 1e9)
        }
        rates.sort()
        let h = rates.count / 2
        return rates.count % 2 == 1 ? rates[h] : (rates[h - 1] + rates[h]) / 2
    }
}
