// swift-tools-version:6.0
import PackageDescription

/// Release builds of the numeric targets skip Swift's overflow and bounds checks in hot loops;
/// debug builds keep every check.
/// On x86-64 they target Haswell-class processors (AVX2 + FMA, every x86 server since 2013) so
/// the SIMD gate kernels use 256-bit fused multiply-adds.
/// The C kernels then check at start-up that the processor has AVX2 and FMA and say so in one
/// line if not (`RNN_REQUIRE_AVX2`).
#if arch(x86_64)
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo", "-target-cpu", "haswell"], .when(configuration: .release))]
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3"]), .define("RNN_REQUIRE_AVX2", .when(configuration: .release))]
#else
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3"])]
#endif

let package = Package(
    name: "RecurrentSuite",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "RecurrentCore", targets: ["RecurrentCore"]),
        .library(name: "Plotting", targets: ["Plotting"]),
        .executable(name: "lm-train", targets: ["lm-train"]),
        .executable(name: "translate-toy", targets: ["translate-toy"]),
        .executable(name: "speech-classify", targets: ["speech-classify"]),
        .executable(name: "frame-classify", targets: ["frame-classify"]),
        .executable(name: "rnn-bench", targets: ["rnn-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C libraries (Debian packages installed by .ci/run and tools/install-deps).
        .systemLibrary(name: "CSndFile", path: "Sources/CSndFile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CKissFFT", path: "Sources/CKissFFT", providers: [.apt(["libkissfft-dev"])]),
        .systemLibrary(name: "CSampleRate", path: "Sources/CSampleRate", providers: [.apt(["libsamplerate0-dev"])]),
        // Open MPI for data-parallel training across processes and machines (`mpirun`).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // libpng reports errors through longjmp; this C shim keeps setjmp/longjmp on the C side.
        .target(name: "PNGCodec", dependencies: ["CPNG"], path: "Sources/PNGCodec", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("z")]),

        // CPU features and the instruction-set level in use; OpenBLAS loaded with its kernels chosen
        // from those features; per-step matrix products with pre-packed weights (AVX-512, AVX2).
        .target(name: "RNNKernels", path: "Sources/RNNKernels", cSettings: kernelFlags, linkerSettings: [.linkedLibrary("dl")]),
        // The recurrent core: tensors, layers, losses, optimizers, checkpoints, the training engine
        // (data-parallel over threads and MPI ranks).
        .target(name: "RecurrentCore", dependencies: ["RNNKernels", "CMPI"], swiftSettings: fastMath),
        .target(name: "Plotting", dependencies: ["PNGCodec"], swiftSettings: fastMath),

        // Task libraries.
        .target(name: "TextData", dependencies: ["RecurrentCore", "Plotting"], swiftSettings: fastMath),
        .target(name: "Seq2Seq", dependencies: ["RecurrentCore", "Plotting"], swiftSettings: fastMath),
        .target(name: "AudioFeatures", dependencies: ["RecurrentCore", "Plotting", "CSndFile", "CKissFFT", "CSampleRate"], swiftSettings: fastMath),
        .target(name: "ImageFrames", dependencies: ["RecurrentCore", "PNGCodec", "CZlib"], swiftSettings: fastMath),

        // The command-line vocabulary shared by the training tools: option groups, error printing, loss plot.
        .target(name: "TrainingCLI", dependencies: ["RecurrentCore", "Plotting", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Executables: argument parsing, wiring, printing.
        .executableTarget(name: "lm-train", dependencies: ["TextData", "RecurrentCore", "TrainingCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "translate-toy", dependencies: ["Seq2Seq", "RecurrentCore", "TrainingCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "speech-classify", dependencies: ["AudioFeatures", "RecurrentCore", "TrainingCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "frame-classify", dependencies: ["ImageFrames", "RecurrentCore", "TrainingCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "rnn-bench", dependencies: ["RecurrentCore", "Plotting", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: fastMath),
        // The loaders' fuzz targets: `tools/fuzz/run` builds them with libFuzzer (-D FUZZING); a
        // plain build gives `fuzz-loaders TARGET FILE...`, which replays saved inputs.
        .executableTarget(name: "fuzz-loaders", dependencies: ["RecurrentCore", "TextData", "Seq2Seq", "AudioFeatures", "ImageFrames"],
                          path: "tools/fuzz/harness"),
        // The README's "use RecurrentCore from your package" example, kept compiling.
        .executableTarget(name: "core-example", dependencies: ["RecurrentCore"]),

        // Helpers shared by the test targets (running the built executables).
        .target(name: "TestSupport", dependencies: ["RecurrentCore"], path: "Tests/TestSupport"),
        .testTarget(name: "RecurrentCoreTests", dependencies: ["RecurrentCore", "RNNKernels", "TestSupport"]),
        .testTarget(name: "TrainingCLITests", dependencies: ["TrainingCLI", "RecurrentCore"]),
        .testTarget(name: "PlottingTests", dependencies: ["Plotting", "PNGCodec"]),
        .testTarget(name: "TextDataTests", dependencies: ["TextData", "RecurrentCore", "TrainingCLI", "TestSupport"]),
        .testTarget(name: "Seq2SeqTests", dependencies: ["Seq2Seq", "RecurrentCore", "TrainingCLI", "TestSupport"]),
        .testTarget(name: "AudioFeaturesTests", dependencies: ["AudioFeatures", "RecurrentCore", "TrainingCLI", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImageFramesTests", dependencies: ["ImageFrames", "PNGCodec", "RecurrentCore", "TrainingCLI", "TestSupport"]),
    ]
)
