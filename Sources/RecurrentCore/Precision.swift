import Foundation
import RNNKernels

/// The number format of the recurrent layers' matrix products.
///
/// - `fp32`: operands and accumulation in fp32.
/// - `bf16`: mixed precision: the operands of every product of the recurrent layers (the
///   sequence's input projection, the per-step `h W_hh^T`, and in backward `dG W_hh`, `dG W_ih`
///   and the weight gradients `dG^T H`, `dG^T X`) are rounded to bfloat16 (weights when they
///   are packed, activations and gradients when they are fed) and the products accumulate in
///   fp32. On processors with AVX512_BF16 (AMD Zen 4, Intel Cooper Lake, Sapphire Rapids and
///   later) by `vdpbf16ps` or, where that instruction does fewer multiply-adds per cycle than
///   fp32 FMAs (Intel's processors), by FMAs on the operands widened back to fp32; elsewhere
///   the same widened arithmetic is emulated by a portable kernel, training no faster than fp32 (see
///   `BF16Kernel`). Gate math, states, the master weights, gradient accumulation and the
///   optimizer state stay fp32, and checkpoints are fp32.
public enum Precision: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case fp32
    case bf16

    public var description: String { rawValue }

    /// Whether bf16 runs natively here: the processor has AVX512_BF16 and the level in use (after
    /// the `RNN_ISA` cap) is `avx512`. Elsewhere bf16 is emulated (`BF16Kernel.portable`).
    public static var bf16Native: Bool { rnn_bf16_supported() != 0 }

    /// Why bf16 is emulated in this process (the kernel in use is `BF16Kernel.portable`), or nil
    /// when it runs natively. Asking settles the bf16 kernel (`BF16Kernel.inUse`), so that a bad
    /// `RNN_BF16_KERNEL` ends the process with one line before a tool has started anything.
    public static var bf16EmulationReason: String? {
        guard BF16Kernel.inUse == .portable else { return nil }
        if bf16Native { return "RNN_BF16_KERNEL=portable" }
        if ISALevel.supported >= .avx512 && SystemInfo.features.contains("avx512_bf16") {
            return "RNN_ISA=\(ISALevel.inUse) caps the avx512 level that AVX512_BF16 needs"
        }
        return (SystemInfo.brand.isEmpty ? "this processor" : "this processor (\(SystemInfo.brand))") + " has no AVX512_BF16"
    }

    /// The one line a tool prints on standard error when `precision` is emulated here, or nil.
    public static func emulationNote(for precision: Precision) -> String? {
        guard precision == .bf16, let why = bf16EmulationReason else { return nil }
        return "bf16 is emulated (\(why)): the same bf16 rounding and fp32 sums without bf16 instructions, training no faster than fp32"
    }
}

/// The kernel of the bf16 products (`RNNBF16.h`): `dot` multiplies pairs with `vdpbf16ps`;
/// `widen` widens the bf16 operands to fp32 (exactly) and multiplies with FMAs; `portable` is
/// `widen`'s arithmetic (the same bits) without bf16 instructions, for processors without
/// AVX512_BF16, where it is the only kernel: the fp32 per-step kernel on operands widened per
/// call at the avx2 and avx512 levels, a C loop at the generic level. All read the same packed bf16 operands, so their results differ only by fp32
/// rounding. The kernel in use is `RNN_BF16_KERNEL=dot|widen|portable` when set, else `portable`
/// without AVX512_BF16, else the faster of `dot` and `widen` by a measurement of both
/// instructions' throughput taken once per process: on AMD Zen 4 `vdpbf16ps` does twice the
/// multiply-adds of an FMA per cycle, on Intel's Sapphire and Emerald Rapids half.
public enum BF16Kernel: String, Sendable, CaseIterable, CustomStringConvertible {
    case dot
    case widen
    case portable

    public var description: String { rawValue }
    var code: Int32 {
        switch self {
        case .dot: Int32(RNN_BF16_DOT)
        case .widen: Int32(RNN_BF16_WIDEN)
        case .portable: Int32(RNN_BF16_PORTABLE)
        }
    }

    /// The kernels that can run in this process: all three with AVX512_BF16 at the avx512
    /// level, else `portable`.
    public static var runnable: [BF16Kernel] { Precision.bf16Native ? allCases : [.portable] }

    /// The kernel the bf16 products use in this process.
    public static var inUse: BF16Kernel {
        switch rnn_bf16_kernel() {
        case Int32(RNN_BF16_WIDEN): .widen
        case Int32(RNN_BF16_PORTABLE): .portable
        default: .dot
        }
    }

    /// The measured rates behind the choice (multiply-adds per second on one core, 512-bit
    /// `vdpbf16ps` and `vfmadd231ps`), or nil when `RNN_BF16_KERNEL` chose or bf16 is emulated.
    public static var measuredRates: (dot: Double, fma: Double)? {
        var dot = 0.0, fma = 0.0
        rnn_bf16_kernel_rates(&dot, &fma)
        return dot > 0 && fma > 0 ? (dot, fma) : nil
    }

    /// How the kernel was chosen, for `rnn-bench info` where bf16 runs natively.
    public static var choiceDescription: String {
        guard let r = measuredRates else { return "\(inUse) (RNN_BF16_KERNEL=\(inUse))" }
        return String(format: "%@ (measured per core: vdpbf16ps %.1f, fp32 FMA %.1f G multiply-adds/s)", "\(inUse)", r.dot / 1e9, r.fma / 1e9)
    }
}
