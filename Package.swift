// swift-tools-version: 6.1
import PackageDescription

// The numeric targets need a CPU target, or SIMD FMAs become `fmaf()` calls (about 120x
// slower), and `-fno-math-errno`, or `sqrt` keeps errno handling and stays scalar.
// See ../shared/MACHINE-FACTS.md. The flags are guarded so other architectures still build.
// The flags apply to release builds only (release already compiles whole modules); debug
// builds stay plain so they build and debug normally.
#if arch(x86_64)
let fastMath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-Xcc", "-march=x86-64-v3", "-Xcc", "-fno-math-errno"], .when(configuration: .release))
]
#else
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-Xcc", "-fno-math-errno"], .when(configuration: .release))]
#endif

// The AVX-512 kernels (8×32 GEMM microkernel with SIMD16<Float>, FMA probe) are compiled for
// x86-64-v4 in their own target; PESVINumerics calls them only when the CPU reports AVX-512
// at run time (GEMMKernelKind.current), so the binary still runs on AVX2-only machines.
#if arch(x86_64)
let avx512Math: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-Xcc", "-march=x86-64-v4", "-Xcc", "-fno-math-errno"], .when(configuration: .release))
]
#else
let avx512Math: [SwiftSetting] = fastMath
#endif

let package = Package(
    name: "PESVI",
    products: [
        .library(name: "PESVI", targets: ["PESVINumerics", "PESVIModels", "PESVIData", "PESVIExperiments"]),
        .executable(name: "pesvi", targets: ["pesvi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // MARK: - Numerics: matrix products, elementwise kernels, random numbers
        .target(
            name: "PESVINumerics",
            dependencies: [
                "PESVIKernelsAVX512", "PESVICPUFeatures",
                .product(name: "Numerics", package: "swift-numerics"),
            ],
            swiftSettings: fastMath
        ),
        // AVX-512 GEMM kernels and FMA probe (x86-64-v4 code; called only after a CPU check).
        .target(name: "PESVIKernelsAVX512", swiftSettings: avx512Math),
        // Run-time CPU feature detection (__builtin_cpu_supports).
        .target(name: "PESVICPUFeatures"),
        // MARK: - Models and inference: layers, objectives, optimizers, the three PE-SVI phases
        .target(name: "PESVIModels", dependencies: ["PESVINumerics"], swiftSettings: fastMath),
        // MARK: - Data formats: CSV, NPY, safetensors, synthetic data, splits and scaling
        .target(name: "PESVIData", dependencies: ["PESVINumerics"], swiftSettings: fastMath),
        // MARK: - Experiments: checkpoints, method comparison, paper reproduction, plots
        .target(name: "PESVIExperiments", dependencies: ["PESVIModels", "PESVIData"], swiftSettings: fastMath),
        // MARK: - Command line
        .target(
            name: "PESVICLI",
            dependencies: [
                "PESVIExperiments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "pesvi", dependencies: ["PESVICLI"]),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["PESVINumerics"], path: "Tests/TestSupport"),
        // Counts heap allocations in the test process (interposes malloc; Linux/glibc only).
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "PESVINumericsTests", dependencies: ["PESVINumerics", "TestSupport"], swiftSettings: fastMath),
        .testTarget(name: "PESVIModelsTests", dependencies: ["PESVIModels", "TestSupport", "AllocationCounter"], swiftSettings: fastMath),
        .testTarget(name: "PESVIDataTests", dependencies: ["PESVIData", "TestSupport"]),
        .testTarget(name: "PESVIExperimentsTests", dependencies: ["PESVIExperiments", "TestSupport"]),
        .testTarget(name: "PESVICLITests", dependencies: ["PESVICLI", "TestSupport"]),
    ]
)
