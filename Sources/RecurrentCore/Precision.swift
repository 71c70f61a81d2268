import Foundation
import RNNKernels

/// The number format of the recurrent layers' matrix products.
///
/// - `fp32`: operands and accumulation in fp32.
/// - `bf16`: mixed precision on processors with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake,
///   Sapphire Rapids and later): the operands of every product of the recurrent layers (the
///   sequence's input projection, the per-step `h W_hh^T`, and in backward `dG W_hh`, `dG W_ih`
///   and the weight gradients `dG^T H`, `dG^T X`) are rounded to bfloat16 (weights when they
///   are packed, activations and gradients when they are fed) and the products accumulate in
///   fp32, by `vdpbf16ps` or, where that instruction does fewer multiply-adds per cycle than
///   fp32 FMAs (Intel's processors), by FMAs on the operands widened back to fp32 (see
///   `BF16Kernel`). Gate math, states, the master weights, gradient accumulation and the
///   optimizer state stay fp32, and checkpoints are fp32.
public enum Precision: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }

    /// Whether bf16 runs here: the processor has AVX512_BF16 and the level in use (after the
    /// `RNN_ISA` cap) is `avx512`.
    public static var bf16Available: Bool { rnn_bf16_supported() != 0 }

    /// Why `precision` cannot run on this processor, or nil when it can. Asking for bf16 where it
    /// runs also settles its kernel (`BF16Kernel.inUse`), so that a bad `RNN_BF16_KERNEL` ends
    /// the process with one line before a tool has started anything.
    public static func unavailability(of precision: Precision) -> String? {
        guard precision == .bf16 else { return nil }
        if bf16Available { _ = BF16Kernel.inUse; return nil }
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

/// The kernel of the bf16 products (`RNNBF16.h`): `dot` multiplies pairs with `vdpbf16ps`;
/// `widen` widens the bf16 operands to fp32 (exactly) and multiplies with FMAs. Both read the same
/// packed bf16 operands, so their results differ only by fp32 rounding. The kernel in use is
/// `RNN_BF16_KERNEL=dot|widen` when set, else the faster by a measurement of both instructions'
/// throughput taken once per process: on AMD Zen 4 `vdpbf16ps` does twice the multiply-adds of an
/// FMA per cycle, on Intel's Sapphire and Emerald Rapids half.
public enum BF16Kernel: String, Sendable, CaseIterable, CustomStringConvertible {
    case dot
    case widen

    public var description: String { rawValue }
    var code: Int32 { self == .dot ? Int32(RNN_BF16_DOT) : Int32(RNN_BF16_WIDEN) }

    /// The kernel the bf16 products use in this process.
    public static var inUse: BF16Kernel { rnn_bf16_kernel() == Int32(RNN_BF16_WIDEN) ? .widen : .dot }

    /// The measured rates behind the choice (multiply-adds per second on one core, 512-bit
    /// `vdpbf16ps` and `vfmadd231ps`), or nil when `RNN_BF16_KERNEL` chose.
    public static var measuredRates: (dot: Double, fma: Double)? {
        var dot = 0.0, fma = 0.0
        rnn_bf16_kernel_rates(&dot, &fma)
        return dot > 0 && fma > 0 ? (dot, fma) : nil
    }

    /// How the kernel was chosen, for `rnn-bench info`.
    public static var choiceDescription: String {
        guard let r = measuredRates else { return "\(inUse) (RNN_BF16_KERNEL=\(inUse))" }
        return String(format: "%@ (measured per core: vdpbf16ps %.1f, fp32 FMA %.1f G multiply-adds/s)", "\(inUse)", r.dot / 1e9, r.fma / 1e9)
    }
}
