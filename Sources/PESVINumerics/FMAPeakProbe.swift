import Dispatch
#if arch(x86_64)
import PESVIKernelsAVX512
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures the single-precision fused multiply-add throughput of this machine: the peak a
/// matrix product is compared against.
///
/// Each thread runs 12 independent chains of `SIMD8<Float>` FMAs (`x = x·s + t`, 12 · 8 lanes):
/// more than the FMA latency × issue width of current x86 cores (4 cycles × 2 pipes), so the
/// loop is bound by FMA throughput, not latency, and the 12 chains plus the two constants fit
/// the 16 AVX2 vector registers without spills. One FMA lane counts as 2 floating-point
/// operations. With the `.avx512` kind the chains are `SIMD16<Float>` (zmm), compiled in the
/// PESVIKernelsAVX512 target: the peak of the AVX-512 GEMM kernel.
public enum FMAPeakProbe {
    /// Result of one probe run.
    public struct Result: Sendable, Equatable {
        /// Threads that ran the chains at the same time.
        public var threads: Int
        /// Total single-precision GFLOP/s over all threads (10⁹ floating-point operations per second).
        public var gflops: Double
        /// Vector width of the chains: that of the GEMM kernel of this kind.
        public var kernel: GEMMKernelKind = .avx2
    }

    /// Runs the probe on `threads` threads for about `seconds` of wall time (best of three
    /// timed slices after a warm-up) and returns the total GFLOP/s, with the vectors of
    /// `kernel` (default: the kernel `gemm` uses; `.avx512` needs a CPU with AVX-512).
    public static func measure(threads: Int = 1, seconds: Double = 0.3,
                               kernel: GEMMKernelKind = .current) -> Result {
        let threads = max(1, threads)
        let kernel = GEMMKernelKind.cpuHasAVX512 ? kernel : .avx2
        let chains: @Sendable (Int, Float) -> Float
        let flopsPerIteration: Int
        #if arch(x86_64)
        if kernel == .avx512 {
            chains = { AVX512FMAProbe.chains(iterations: $0, seed: $1) }
            flopsPerIteration = AVX512FMAProbe.flopsPerIteration
        } else {
            chains = { Self.chains(iterations: $0, seed: $1) }
            flopsPerIteration = Self.flopsPerIteration
        }
        #else
        chains = { Self.chains(iterations: $0, seed: $1) }
        flopsPerIteration = Self.flopsPerIteration
        #endif
        // Calibrate the iteration count of one slice on this thread.
        var trial = 1 << 16
        var iterations = trial
        while true {
            let t0 = monotonicSeconds()
            sink(chains(trial, 1))
            let dt = monotonicSeconds() - t0
            if dt > 0.02 || trial >= 1 << 30 {
                iterations = max(1 << 12, Int(Double(trial) * (seconds / 3) / max(dt, 1e-9)))
                break
            }
            trial *= 2
        }
        let sliceIterations = iterations
        let flopsPerSlice = Double(iterations) * Double(flopsPerIteration) * Double(threads)
        var best = 0.0
        for _ in 0..<3 {
            let t0 = monotonicSeconds()
            if threads == 1 {
                sink(chains(iterations, 1))
            } else {
                DispatchQueue.concurrentPerform(iterations: threads) { @Sendable t in
                    sink(chains(sliceIterations, Float(t + 1)))
                }
            }
            let dt = monotonicSeconds() - t0
            best = max(best, flopsPerSlice / dt / 1e9)
        }
        return Result(threads: threads, gflops: best, kernel: kernel)
    }

    /// Floating-point operations of one iteration of `chains`: 12 vectors × 8 lanes × 2.
    static let flopsPerIteration = 12 * 8 * 2

    /// 12 independent FMA chains; returns their sum so the work cannot be removed.
    @inline(never)
    static func chains(iterations: Int, seed: Float) -> Float {
        typealias V = SIMD8<Float>
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

    @inline(never)
    static func sink(_ x: Float) {
        if x == 12_345.678 { print("") }
    }
}

/// Seconds of a monotonic clock (CLOCK_MONOTONIC), for timing.
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}
