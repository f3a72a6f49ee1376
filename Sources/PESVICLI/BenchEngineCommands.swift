import ArgumentParser
import Foundation
import PESVIModels

/// Options every engine benchmark takes: threads, measuring time, JSON output.
struct EngineBenchOptions: ParsableArguments {
    @Option(help: "Threads: 1 or 2.") var threads: Int = 2
    @Option(help: "Seconds to measure for.") var seconds: Double = 3
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...2).contains(threads) else { throw ValidationError("--threads must be 1 or 2, got \(threads)") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("--seconds must be a positive number, got \(seconds)") }
    }
}

/// The problem shape of the refinement benchmarks (`bench gn`, `bench auto`): points, |z|,
/// architecture and data width; |z| and the architecture default per benchmark.
struct RefinementBenchShape: ParsableArguments {
    @Option(help: "Points.") var points: Int = 5000
    @Option(help: "Latent size |z| (default: 64 for gn, 32 for auto).") var z: Int?
    @Option(help: "Decoder architecture: 1, 2 or 3, h = min(2|z|, 128) (default: 2 for gn, 3 for auto).") var arch: Int?
    @Option(help: "Data width d.") var dim: Int = 300

    func validate() throws {
        guard points >= 1, z ?? 1 >= 1, dim >= 1 else { throw ValidationError("--points, --z and --dim must be positive") }
        if let arch, Architecture(number: arch) == nil { throw ValidationError("--arch must be 1, 2 or 3, got \(arch)") }
    }

    func architecture(default a: Architecture) -> Architecture { arch.flatMap { Architecture(number: $0) } ?? a }
}

/// `pesvi bench train`: phase-1 training throughput at |z| = 64, Arch2, d = 300, batch 256.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput (samples/s): decoder and latent rows, forward, backward and Adam (default |z|=64, Arch2, d=300, 10,240 rows, batch 256).",
        discussion: "The synthetic protocol's shape is --rows 45000 --batch-size 2500 (its rows no longer fit in cache)."
    )
    @Option(help: "Batch size.") var batchSize: Int = 256
    @Option(help: "Training rows (random, d = 300).") var rows: Int = 256 * 40
    @Option(help: "Latent dimension |z|.") var z: Int = 64
    @Option(help: "Decoder architecture: 1, 2 or 3.") var arch: Int = 2
    @Flag(help: "Measure the VAE baseline's training (encoder and decoder end to end) instead of phase 1.") var vae = false
    @OptionGroup var bench: EngineBenchOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be positive") }
        guard rows >= batchSize else { throw ValidationError("--rows must be at least the batch size (\(batchSize)), got \(rows)") }
        guard (1...4096).contains(z) else { throw ValidationError("--z must be in 1...4096, got \(z)") }
        guard (1...3).contains(arch) else { throw ValidationError("--arch must be 1, 2 or 3, got \(arch)") }
    }

    func run() throws {
        let threads = bench.threads
        let architecture: Architecture = [.arch1, .arch2, .arch3][arch - 1]
        let r = EngineBenchmark.train(threads: threads, rows: rows, batchSize: batchSize, minSeconds: bench.seconds, latent: z, architecture: architecture, vae: vae)
        if bench.json {
            print("{\"bench\":\"train\",\"samples_per_s\":\(Int(r.samplesPerSecond.rounded())),\"threads\":\(threads),\"batch\":\(batchSize),\"rows\":\(rows),\"z\":\(z),\"arch\":\(arch),\"vae\":\(vae)}")
        } else {
            print("train \(vae ? "VAE" : "phase 1")  |z|=\(z) Arch\(arch) d=300 rows \(rows) batch \(batchSize)  threads \(threads):  \(Int(r.samplesPerSecond.rounded())) samples/s  (\(String(format: "%.1f", r.seconds)) s measured)")
        }
    }
}

/// `pesvi bench infer`: milliseconds per test-time step for 5,000 points.
struct BenchInferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Test-time inference: milliseconds per SVI step for N points (|z|=64, Arch2, d=300)."
    )
    @Option(help: "Points refined per step.") var points: Int = 5000
    @OptionGroup var bench: EngineBenchOptions

    func validate() throws {
        guard points >= 1 else { throw ValidationError("--points must be positive") }
    }

    func run() throws {
        let threads = bench.threads
        let r = EngineBenchmark.infer(threads: threads, points: points, minSeconds: bench.seconds)
        if bench.json {
            print("{\"bench\":\"infer\",\"points\":\(points),\"ms_per_step\":\(String(format: "%.3f", r.millisecondsPerStep)),\"threads\":\(threads)}")
        } else {
            print("infer  |z|=64 Arch2 d=300 points \(points)  threads \(threads):  \(String(format: "%.2f", r.millisecondsPerStep)) ms/step  (\(r.steps) steps)")
        }
    }
}

/// `pesvi bench gn`: one Gauss-Newton iteration against one SVI step on the same decoder.
struct BenchGaussNewtonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gn",
        abstract: "Gauss-Newton refinement: milliseconds per full iteration (every point active; a linear decoder: its one exact step; a ReLU decoder: plain, smoothed, plain solved in a Krylov subspace of dimension 4, and smoothed solved in one of dimension --smoothed-krylov) and per SVI step on the same decoder and points, and their ratio."
    )
    @OptionGroup var shape: RefinementBenchShape
    @OptionGroup var bench: EngineBenchOptions
    @Option(help: "Krylov dimension of the smoothed iterations timed beside the exact ones (0: not timed).")
    var smoothedKrylov: Int = 16
    @Flag(help: "Precondition that smoothed Krylov iteration (as PE-SVI-GN does at 32 ≤ |z| < 64), with the preconditioner formed from the benchmark's own points and starts; its basis then leaves out the last step.")
    var preconditioned = false

    func validate() throws {
        guard smoothedKrylov >= 0 else { throw ValidationError("--smoothed-krylov must be 0 or more vectors, got \(smoothedKrylov)") }
    }

    func run() throws {
        let threads = bench.threads
        let points = shape.points, z = shape.z ?? 64, dim = shape.dim
        let r = EngineBenchmark.gaussNewton(threads: threads, points: points, latent: z, dataWidth: dim,
                                            architecture: shape.architecture(default: .arch2), minSeconds: bench.seconds,
                                            smoothedKrylov: smoothedKrylov, preconditioned: preconditioned)
        if bench.json {
            print("{\"bench\":\"gn\",\"points\":\(points),\"z\":\(z),\"arch\":\"\(r.architecture)\",\"dim\":\(dim),\"threads\":\(threads),"
                  + "\"solve\":\"\(r.solve)\",\"ms_per_iteration\":\(r.millisecondsPerIteration),\"ms_per_svi_step\":\(r.millisecondsPerSVIStep),"
                  + "\"svi_steps_per_iteration\":\(r.sviStepsPerIteration)"
                  + (r.millisecondsPerSmoothedIteration.map { ",\"ms_per_smoothed_iteration\":\($0),\"svi_steps_per_smoothed_iteration\":\($0 / r.millisecondsPerSVIStep)" } ?? "")
                  + (r.millisecondsPerKrylovIteration.map { ",\"ms_per_krylov4_iteration\":\($0)" } ?? "")
                  + (r.millisecondsPerSmoothedKrylovIteration.map {
                      ",\"smoothed_krylov\":\(r.smoothedKrylovDimension),\"preconditioned\":\(r.smoothedKrylovPreconditioned),"
                      + "\"ms_per_smoothed_krylov_iteration\":\($0)" } ?? "")
                  + "}")
        } else {
            print("gn  |z|=\(z) \(r.architecture) d=\(dim) points \(points)  threads \(threads)  (\(r.solve) solve):  "
                  + String(format: "%.2f ms/iteration, SVI %.3f ms/step: one iteration = %.1f SVI steps  (%d iterations)",
                           r.millisecondsPerIteration, r.millisecondsPerSVIStep, r.sviStepsPerIteration, r.iterations)
                  + (r.millisecondsPerSmoothedIteration.map { String(format: "; smoothed: %.2f ms = %.1f SVI steps", $0, $0 / r.millisecondsPerSVIStep) } ?? "")
                  + (r.millisecondsPerKrylovIteration.map { String(format: "; Krylov (K = 4): %.2f ms = %.1f SVI steps", $0, $0 / r.millisecondsPerSVIStep) } ?? "")
                  + (r.millisecondsPerSmoothedKrylovIteration.map {
                      String(format: "; smoothed, Krylov (K = %d%@): %.2f ms = %.1f SVI steps", r.smoothedKrylovDimension,
                             r.smoothedKrylovPreconditioned ? ", preconditioned" : "", $0, $0 / r.millisecondsPerSVIStep) } ?? ""))
        }
    }
}

/// `pesvi bench auto`: one PE-SVI-auto iteration against one SVI step on the same decoder.
struct BenchGuardedRefinementCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auto",
        abstract: "PE-SVI-auto refinement: milliseconds per iteration (every point active) at the mean with log σ² at the floor (its default for the reconstruction objective), with each antithetic pair taken through the output layer once, and with both samples; with the Cauchy step (its curvature through the output layer's Gram matrix, and by forming J·g) the subspace step and the Krylov step; and per SVI step on the same decoder and points."
    )
    @OptionGroup var shape: RefinementBenchShape
    @OptionGroup var bench: EngineBenchOptions

    func run() throws {
        let threads = bench.threads
        let points = shape.points, z = shape.z ?? 32, dim = shape.dim
        let r = EngineBenchmark.guardedRefinement(threads: threads, points: points, latent: z, dataWidth: dim,
                                                  architecture: shape.architecture(default: .arch3), minSeconds: bench.seconds)
        if bench.json {
            print("{\"bench\":\"auto\",\"points\":\(points),\"z\":\(z),\"arch\":\"\(r.architecture)\",\"dim\":\(dim),\"threads\":\(threads),"
                  + "\"ms_per_iteration_at_mean\":\(r.millisecondsPerIterationAtMean),"
                  + "\"ms_per_iteration\":\(r.millisecondsPerIteration),\"ms_per_iteration_both_samples\":\(r.millisecondsPerIterationBothSamples),"
                  + "\"ms_per_svi_step\":\(r.millisecondsPerSVIStep),\"svi_steps_per_iteration_at_mean\":\(r.sviStepsPerIterationAtMean),"
                  + "\"svi_steps_per_iteration\":\(r.sviStepsPerIteration),"
                  + "\"svi_steps_per_iteration_both_samples\":\(r.sviStepsPerIterationBothSamples),"
                  + "\"ms_per_cauchy_iteration\":\(r.millisecondsPerCauchyIteration),"
                  + "\"ms_per_cauchy_iteration_forming_jg\":\(r.millisecondsPerCauchyIterationFormingJg),"
                  + "\"svi_steps_per_cauchy_iteration\":\(r.sviStepsPerCauchyIteration),"
                  + "\"svi_steps_per_cauchy_iteration_forming_jg\":\(r.sviStepsPerCauchyIterationFormingJg),"
                  + "\"ms_per_subspace_iteration\":\(r.millisecondsPerSubspaceIteration),"
                  + "\"svi_steps_per_subspace_iteration\":\(r.sviStepsPerSubspaceIteration),"
                  + "\"ms_per_krylov_iteration\":\(r.millisecondsPerKrylovIteration),"
                  + "\"svi_steps_per_krylov_iteration\":\(r.sviStepsPerKrylovIteration)}")
        } else {
            print("auto  |z|=\(z) \(r.architecture) d=\(dim) points \(points)  threads \(threads):  "
                  + String(format: "%.2f ms/iteration at the mean (%.2f paired, %.2f with both samples), SVI %.3f ms/step: "
                           + "one iteration = %.2f SVI steps (%.2f, %.2f)  (%d iterations); "
                           + "Cauchy step %.2f ms/iteration (%.2f forming J·g) = %.2f SVI steps (%.2f); "
                           + "subspace step %.2f ms/iteration = %.2f SVI steps; Krylov step %.2f ms/iteration = %.2f SVI steps",
                           r.millisecondsPerIterationAtMean, r.millisecondsPerIteration, r.millisecondsPerIterationBothSamples,
                           r.millisecondsPerSVIStep, r.sviStepsPerIterationAtMean, r.sviStepsPerIteration,
                           r.sviStepsPerIterationBothSamples, r.iterations, r.millisecondsPerCauchyIteration,
                           r.millisecondsPerCauchyIterationFormingJg, r.sviStepsPerCauchyIteration, r.sviStepsPerCauchyIterationFormingJg,
                           r.millisecondsPerSubspaceIteration, r.sviStepsPerSubspaceIteration,
                           r.millisecondsPerKrylovIteration, r.sviStepsPerKrylovIteration))
        }
    }
}
