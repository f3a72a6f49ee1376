import ArgumentParser
import PESVINumerics

/// `pesvi bench gemm`: single-precision matrix-product speed on the model's shapes, as
/// GFLOP/s and as a fraction of the FMA peak measured in the same run.
struct BenchGEMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Measure matrix-product GFLOP/s (NN, TN, NT) against the measured FMA peak.",
        discussion: """
            Shapes (M,K,N): (256,64,128), (256,128,300), (256,300,128), (1024,1024,1024), \
            or those of --shape. \
            GFLOP/s = 2·M·N·K / time, median of the timed repeats after a warm-up. \
            1-thread results are compared with the 1-thread FMA peak, 2-thread results with \
            the 2-thread peak. The microkernel is the one gemm uses (AVX-512 8×32 when the CPU \
            has it, else AVX2 6×16; PESVI_GEMM_KERNEL=avx2 forces AVX2), or the one --kernel \
            names; the peak is probed with that kernel's vector width.
            """
    )

    @Flag(name: .long, help: "Print one JSON object per line instead of a table.")
    var json = false

    @Option(name: .long, parsing: .upToNextOption, help: "Thread counts to measure, e.g. --threads 1 2.")
    var threads: [Int] = [1, 2]

    @Option(name: .long, help: "Timed repeats per case; the median is reported.")
    var repeats = 5

    @Option(name: .long, help: "Microkernel: avx2 or avx512 (default: the one gemm uses here).")
    var kernel: String?

    @Option(name: .long, parsing: .upToNextOption,
            help: "Shapes to measure instead of the standard four, as M,K,N (op(A) is M×K, op(B) K×N), e.g. --shape 256,300,32 128,300,16.")
    var shape: [String] = []

    /// The shapes of `--shape`, or the standard ones.
    func shapes() throws -> [GEMMBenchmark.Shape] {
        if shape.isEmpty { return GEMMBenchmark.standardShapes }
        return try shape.map { text in
            let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3, let m = parts[0], let k = parts[1], let n = parts[2], m >= 1, k >= 1, n >= 1 else {
                throw ValidationError("--shape takes M,K,N with three positive integers, got '\(text)'")
            }
            return GEMMBenchmark.Shape(m: m, k: k, n: n)
        }
    }

    func validate() throws {
        guard !threads.isEmpty, threads.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--threads takes thread counts >= 1, got \(threads)")
        }
        guard repeats >= 1 else { throw ValidationError("--repeats must be >= 1, got \(repeats)") }
        _ = try shapes()
        if let kernel {
            guard let kind = GEMMKernelKind(rawValue: kernel) else {
                throw ValidationError("--kernel takes avx2 or avx512, got \(kernel)")
            }
            guard GEMMKernelKind.available.contains(kind) else {
                throw ValidationError("--kernel \(kernel): this CPU has no AVX-512")
            }
        }
    }

    func run() throws {
        let json = self.json
        let kind = kernel.flatMap(GEMMKernelKind.init(rawValue:)) ?? .current
        if !json {
            print("kernel: \(kind) (CPU has AVX-512: \(GEMMKernelKind.cpuHasAVX512 ? "yes" : "no"))")
            print("")
            print("op | m    | k    | n    | threads | GFLOP/s | % of peak")
            print("---|------|------|------|---------|---------|----------")
        }
        var peaks: [FMAPeakProbe.Result] = []
        _ = GEMMBenchmark.run(
            shapes: try shapes(), threads: threads, repeats: repeats, kernel: kind,
            onPeak: { p in
                peaks.append(p)
                if json {
                    print("{\"probe\":\"fma\",\"kernel\":\"\(p.kernel.rawValue)\",\"vector_bits\":\(p.kernel.vectorBits),"
                        + "\"threads\":\(p.threads),\"gflops\":\(Self.round(p.gflops, 1))}")
                }
            },
            onResult: { r in
                if json {
                    print("{\"kernel\":\"\(r.kernel.rawValue)\",\"op\":\"\(r.op.rawValue)\",\"m\":\(r.shape.m),\"k\":\(r.shape.k),\"n\":\(r.shape.n),"
                        + "\"threads\":\(r.threads),\"gflops\":\(Self.round(r.gflops, 1)),"
                        + "\"peak_fraction\":\(Self.round(r.peakFraction, 3))}")
                } else {
                    print("\(Self.pad(r.op.rawValue, 2)) | \(Self.pad(r.shape.m, 4)) | \(Self.pad(r.shape.k, 4)) | "
                        + "\(Self.pad(r.shape.n, 4)) | \(Self.pad(r.threads, 7)) | \(Self.pad(Self.round(r.gflops, 1), 7)) | "
                        + "\(Self.pad(Self.round(100 * r.peakFraction, 1), 8)) %")
                }
            })
        if !json {
            print("")
            for p in peaks {
                print("FMA peak (probe, \(p.kernel.vectorBits)-bit vectors), \(p.threads) thread\(p.threads == 1 ? "" : "s"): "
                    + "\(Self.round(p.gflops, 1)) GFLOP/s")
            }
        }
    }

    /// `x` rounded to `digits` decimals (prints as the shortest decimal, e.g. 97.3).
    static func round(_ x: Double, _ digits: Int) -> Double {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        return (x * scale).rounded() / scale
    }

    /// `value` right-aligned in `width` characters.
    static func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
        let s = value.description
        return String(repeating: " ", count: max(0, width - s.count)) + s
    }
}
