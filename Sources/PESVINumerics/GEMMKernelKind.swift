import PESVICPUFeatures
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which microkernel the packed GEMM (and the FMA probe) uses.
///
/// One binary holds both: the AVX2 kernel (6×16, `SIMD8<Float>`, compiled for x86-64-v3 like
/// the rest of the package) and the AVX-512 kernel (8×32, `SIMD16<Float>`, in the
/// PESVIKernelsAVX512 target compiled for x86-64-v4). ``current`` is decided once per
/// process from the CPU; the environment variable `PESVI_GEMM_KERNEL=avx2` forces the AVX2
/// kernel (for tests and benchmarks on an AVX-512 machine). `PESVI_GEMM_KERNEL=avx512` on a
/// CPU without AVX-512 is ignored (the AVX2 kernel runs).
public enum GEMMKernelKind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// 6×16 microkernel with `SIMD8<Float>` accumulators (256-bit vectors). Also the portable
    /// path on other architectures, where it is plain SIMD code.
    case avx2
    /// 8×32 microkernel with `SIMD16<Float>` accumulators (512-bit zmm vectors).
    case avx512

    /// The kernel every `gemm` call uses: AVX-512 if the CPU (and OS) support it and
    /// `PESVI_GEMM_KERNEL` does not say `avx2`; decided on first use.
    public static let current: GEMMKernelKind = {
        let requested = getenv("PESVI_GEMM_KERNEL").map { String(cString: $0) }
        return select(requested: requested, cpuHasAVX512: cpuHasAVX512)
    }()

    /// Whether this CPU runs the AVX-512 kernel (AVX-512 F/BW/CD/DQ/VL with OS support).
    public static let cpuHasAVX512: Bool = {
        #if arch(x86_64)
        return pesvi_cpu_has_avx512() != 0
        #else
        return false
        #endif
    }()

    /// The kernels this machine can run (AVX2 always; AVX-512 when the CPU has it).
    public static var available: [GEMMKernelKind] { cpuHasAVX512 ? [.avx2, .avx512] : [.avx2] }

    /// The kernel for an environment request (`PESVI_GEMM_KERNEL`, case-insensitive;
    /// nil, empty or unknown means automatic) on a CPU with or without AVX-512.
    static func select(requested: String?, cpuHasAVX512: Bool) -> GEMMKernelKind {
        switch requested?.lowercased() {
        case "avx2": return .avx2
        default: return cpuHasAVX512 ? .avx512 : .avx2
        }
    }

    /// Width of the kernel's vectors in bits.
    public var vectorBits: Int { self == .avx512 ? 512 : 256 }

    /// Products with fewer floating-point operations (2·m·n·k) than this run on one thread.
    var parallelThresholdFlops: Int {
        self == .avx512 ? gemmParallelThresholdFlopsAVX512 : gemmParallelThresholdFlops
    }

    /// Microkernel rows.
    var mr: Int { self == .avx512 ? 8 : GEMMBlocking.mr }
    /// Microkernel columns.
    var nr: Int { self == .avx512 ? 32 : GEMMBlocking.nr }

    /// E.g. "avx512 (8×32, SIMD16<Float>)".
    public var description: String {
        switch self {
        case .avx2: return "avx2 (6×16, SIMD8<Float>)"
        case .avx512: return "avx512 (8×32, SIMD16<Float>)"
        }
    }
}
