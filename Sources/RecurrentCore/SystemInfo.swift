import Foundation
import RNNKernels

/// Instruction-set levels of the kernels, ordered. `avx2` means AVX2 + FMA; `avx512` means
/// AVX-512 F, BW, VL and DQ. Read from CPUID feature bits, never from model numbers.
public enum ISALevel: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case generic = 0, avx2 = 1, avx512 = 2

    /// The best level this processor supports.
    public static let supported = ISALevel(rawValue: Int(rnn_isa_supported())) ?? .generic
    /// The cap set by the environment variable `RNN_ISA` (`generic`, `avx2`, `avx512`), if any.
    public static let cap: ISALevel? = { let c = rnn_isa_cap(); return c < 0 ? nil : ISALevel(rawValue: Int(c)) }()
    /// The level the kernels use: `supported`, lowered to `cap`.
    public static let inUse = ISALevel(rawValue: Int(rnn_isa())) ?? .generic

    public static func < (a: ISALevel, b: ISALevel) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(cString: rnn_isa_name(Int32(rawValue))) }
}

/// The processor and the kernels chosen for it: what `rnn-bench info` and each tool's
/// `--verbose` print.
public enum SystemInfo {
    /// CPUID vendor, e.g. `AuthenticAMD` (empty off x86-64).
    public static var vendor: String { withUnsafeBytes(of: rnn_cpu().pointee.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
    /// CPUID brand string, e.g. `AMD EPYC 9R14 96-Core Processor`.
    public static var brand: String { withUnsafeBytes(of: rnn_cpu().pointee.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
    public static var family: Int { Int(rnn_cpu().pointee.family) }
    public static var model: Int { Int(rnn_cpu().pointee.model) }

    /// Names of the feature bits this processor (and operating system) supports, e.g. `avx2`, `avx512_bf16`.
    public static var features: [String] { featureNames(rnn_cpu().pointee.features) }

    /// Names of the set bits of a `RNN_CPU_*` mask.
    static func featureNames(_ mask: UInt32) -> [String] {
        (0..<Int(RNN_CPU_FEATURE_COUNT)).filter { mask & (1 << UInt32($0)) != 0 }.map { String(cString: rnn_cpu_feature_name(Int32($0))) }
    }

    /// The OpenBLAS kernel set in use, as OpenBLAS reports it (e.g. `Cooperlake`).
    public static var gemmCore: String { String(cString: rnn_blas_core()) }
    /// The kernel set requested from the features at the level in use.
    public static var requestedGemmCore: String { String(cString: rnn_blas_requested_core()) }
    /// The OpenBLAS kernel set that the features usable at `level` call for.
    public static func gemmCore(for level: ISALevel) -> String {
        String(cString: rnn_blas_core_for_features(rnn_cpu_features_at(Int32(level.rawValue))))
    }
    /// OpenBLAS's build description, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64`.
    public static var gemmConfig: String { String(cString: rnn_blas_config()).trimmingCharacters(in: .whitespaces) }

    /// The lines of `rnn-bench info`.
    public static func report(threads: Int = Threading.defaultThreads) -> [String] {
        let capText = ISALevel.cap.map { "RNN_ISA=\($0)" } ?? "no RNN_ISA cap"
        return [
            "processor: \(brand.isEmpty ? "unknown" : brand) (\(vendor) family \(family) model \(model))",
            "features: \(features.joined(separator: " "))",
            "isa: \(ISALevel.inUse) (supported \(ISALevel.supported), \(capText))",
            "gemm: \(gemmConfig); kernels \(gemmCore) (requested \(requestedGemmCore) from the features)",
            "per-step kernel: \(PackedKernels.variantDescription())",
            "precision: fp32, " + (Precision.bf16EmulationReason.map { "bf16 emulated (kernel portable, training no faster than fp32: \($0))" }
                                   ?? "bf16 (avx512_bf16; kernel \(BF16Kernel.choiceDescription))"),
            "threads: \(threads) batch shards, BLAS \(BLAS.threads) thread(s) per shard",
        ]
    }

    /// One line with the same facts, printed by each tool at start with `--verbose`.
    public static func summaryLine(threads: Int) -> String {
        let cpu = brand.isEmpty ? vendor : brand
        return "\(cpu) (family \(family) model \(model)); isa \(ISALevel.inUse)\(ISALevel.cap.map { " (RNN_ISA=\($0))" } ?? ""); "
            + "gemm OpenBLAS \(gemmCore); per-step kernel \(PackedKernels.variantDescription()); threads \(threads)"
    }
}
