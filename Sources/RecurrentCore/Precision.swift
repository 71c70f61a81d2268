import RNNKernels

/// The number format of the recurrent layers' matrix products.
///
/// - `fp32`: operands and accumulation in fp32.
/// - `bf16`: mixed precision on processors with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake,
///   Sapphire Rapids and later): the operands of every product of the recurrent layers (the
///   sequence's input projection, the per-step `h W_hh^T`, and in backward `dG W_hh`, `dG W_ih`
///   and the weight gradients `dG^T H`, `dG^T X`) are rounded to bfloat16 (weights when they
///   are packed, activations and gradients when they are fed) and the products accumulate in
///   fp32 (`vdpbf16ps`). Gate math, states, the master weights, gradient accumulation and the
///   optimizer state stay fp32, and checkpoints are fp32.
public enum Precision: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }

    /// Whether bf16 runs here: the processor has AVX512_BF16 and the level in use (after the
    /// `RNN_ISA` cap) is `avx512`.
    public static var bf16Available: Bool { rnn_bf16_supported() != 0 }

    /// Why `precision` cannot run on this processor, or nil when it can.
    public static func unavailability(of precision: Precision) -> String? {
        guard precision == .bf16, !bf16Available else { return nil }
        if ISALevel.supported >= .avx512 && SystemInfo.features.contains("avx512_bf16") {
            return "bf16 needs the avx512 level, capped here by RNN_ISA=\(ISALevel.inUse)"
        }
        let cpu = SystemInfo.brand.isEmpty ? "this processor" : "this processor (\(SystemInfo.brand))"
        return "bf16 needs a processor with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake, Sapphire Rapids or later); \(cpu) has none"
    }

    /// Throws `PrecisionUnavailable` when `self` cannot run on this processor.
    public func checkAvailable() throws(PrecisionUnavailable) {
        if let reason = Precision.unavailability(of: self) { throw PrecisionUnavailable(reason: reason) }
    }
}

/// `--precision bf16` asked of a processor (or an `RNN_ISA` cap) without AVX512_BF16.
public struct PrecisionUnavailable: Error, CustomStringConvertible, Sendable {
    /// What is missing, in one line.
    public let reason: String
    public var description: String { "--precision: \(reason)" }
}
