import Foundation
import Testing
import RNNKernels
import TestSupport
@testable import RecurrentCore

/// Order of OpenBLAS's x86-64 kernel sets by the instructions they use.
private let coreRank: [String: Int] = [
    "Prescott": 0, "Core2": 0, "Penryn": 0, "Dunnington": 0, "Nehalem": 1, "Atom": 0,
    "Sandybridge": 2, "Bulldozer": 2, "Piledriver": 2, "Steamroller": 2, "Excavator": 2,
    "Haswell": 3, "Zen": 3, "SkylakeX": 4, "Cooperlake": 5, "SapphireRapids": 6,
]

/// Kernels are chosen from CPUID feature bits: the GEMM kernels and the per-step kernel in use
/// are never below what the processor supports (at the level `RNN_ISA` allows).
@Suite struct KernelDispatchTests {
    @Test func levelFollowsFeatureBits() {
        let f = Set(SystemInfo.features)
        let avx2 = f.isSuperset(of: ["avx2", "fma"])
        let avx512 = avx2 && f.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"])
        #expect(ISALevel.supported == (avx512 ? .avx512 : avx2 ? .avx2 : .generic))
        #expect(ISALevel.inUse == min(ISALevel.supported, ISALevel.cap ?? .avx512))
        #if arch(x86_64)
        #expect(f.contains("sse3"), "every x86-64 processor of the last 15 years has SSE3")
        #endif
    }

    @Test func featureBitsMapToKernelSets() {
        func core(_ bits: [Int]) -> String { String(cString: rnn_blas_core_for_features(UInt32(bits.reduce(0, |)))) }
        let base: [Int] = [RNN_CPU_SSE3, RNN_CPU_SSSE3, RNN_CPU_SSE41, RNN_CPU_SSE42]
        let avx2 = base + [RNN_CPU_AVX, RNN_CPU_AVX2, RNN_CPU_FMA]
        let avx512 = avx2 + [RNN_CPU_AVX512F, RNN_CPU_AVX512BW, RNN_CPU_AVX512VL, RNN_CPU_AVX512DQ, RNN_CPU_AVX512CD]
        #expect(core([RNN_CPU_SSE3]) == "Prescott")
        #expect(core(base) == "Nehalem")
        #expect(core(base + [RNN_CPU_AVX]) == "Sandybridge")
        #expect(core(avx2) == "Haswell")
        #expect(core(avx512) == "SkylakeX")
        #expect(core(avx512 + [RNN_CPU_AVX512_BF16]) == "Cooperlake")
        #expect(core(avx512 + [RNN_CPU_AVX512_BF16, RNN_CPU_AVX512_FP16, RNN_CPU_AMX_TILE]) == "Cooperlake")
        // AVX-512F alone (Xeon Phi) lacks the BW/VL/DQ the SkylakeX kernels use.
        #expect(core(avx2 + [RNN_CPU_AVX512F]) == "Haswell")
    }

    #if arch(x86_64)
    /// Fails when OpenBLAS runs kernels below what the processor supports, as OpenBLAS 0.3.21's
    /// own model-number table does on Xeons newer than it (SSE3 "Prescott" on an AVX-512 part).
    @Test func gemmKernelsAreNotBelowTheProcessor() throws {
        let inUse = SystemInfo.gemmCore, expected = SystemInfo.gemmCore(for: .inUse)
        #expect(SystemInfo.requestedGemmCore == expected)
        let rank = try #require(coreRank[inUse], "unknown OpenBLAS kernel set \(inUse)")
        #expect(rank >= coreRank[expected]!, "OpenBLAS runs \(inUse) kernels; the processor's features call for \(expected)")
        if ISALevel.cap == nil {
            #expect(rank >= (ISALevel.supported == .avx512 ? 4 : ISALevel.supported == .avx2 ? 3 : 0))
        }
    }
    #endif

    @Test func perStepKernelIsTheLevelInUse() {
        var rng = SeededRandom(seed: 1)
        let layer = RecurrentLayer(cell: .lstm, inputSize: 2, hiddenSize: 3, rng: &rng)
        #expect(layer.kernelLevel == .inUse)
        layer.kernelLevel = .avx512
        #expect(layer.kernelLevel == min(.avx512, .supported), "a level above the processor's is lowered")
        #expect(PackedKernels.available == (ISALevel.inUse >= .avx2))
    }

    /// Data-parallel replicas run the primary's kernel level: a stack set to the BLAS path makes
    /// replicas on the BLAS path, whose outputs agree with the primary's bit for bit.
    @Test func replicasKeepTheKernelLevel() {
        var rng = SeededRandom(seed: 5)
        let stack = RecurrentStack(cell: .gru, inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, rng: &rng)
        stack.kernelLevel = .generic
        let replica = RecurrentStack(sharing: stack)
        #expect(replica.kernelLevel == .generic)
        let T = 4, B = 2
        let x = randomArray(T * B * 3, &rng)
        func outputs(_ s: RecurrentStack) -> [UInt32] {
            x.withUnsafeBufferPointer { xp in
                var noDrop = SeededRandom(seed: 0)
                let y = s.forward(input: .dense(xp.baseAddress!, features: 3), steps: T, batch: B, lengths: nil,
                                  initial: nil, training: false, rng: &noDrop)
                return UnsafeBufferPointer(start: y, count: T * B * 8).map(\.bitPattern)
            }
        }
        #expect(outputs(replica) == outputs(stack))
    }

    /// One padded batch through every level this processor runs: outputs and gradients agree
    /// with the BLAS path (`generic`) to rounding, and the two packed variants bit for bit.
    @Test(arguments: [CellKind.lstm, .gru, .rnnTanh])
    func levelsAgreeOnOutputsAndGradients(cell: CellKind) {
        let T = 6, B = 5, I = 4, H = 7
        func run(_ level: ISALevel) -> [Float] {
            var rng = SeededRandom(seed: 3)
            let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, rng: &rng)
            stack.kernelLevel = level
            let x = randomArray(T * B * I, &rng), g = randomArray(T * B * 2 * H, &rng)
            var out: [Float] = []
            var gx = [Float](repeating: 0, count: T * B * I)
            x.withUnsafeBufferPointer { xp in
                var noDrop = SeededRandom(seed: 0)
                let y = stack.forward(input: .dense(xp.baseAddress!, features: I), steps: T, batch: B, lengths: [6, 4, 6, 1, 5],
                                      initial: nil, training: false, rng: &noDrop)
                out = Array(UnsafeBufferPointer(start: y, count: T * B * 2 * H))
                stack.zeroGrad()
                g.withUnsafeBufferPointer { gp in
                    gx.withUnsafeMutableBufferPointer { gxp in
                        _ = stack.backward(input: .dense(xp.baseAddress!, features: I), gradOutput: gp.baseAddress!,
                                           gradFinal: nil, gradInput: gxp.baseAddress!)
                    }
                }
            }
            return out + gx + stack.parameters.flatMap { Array(UnsafeBufferPointer(start: $0.grad, count: $0.count)) }
        }
        let reference = run(.generic)
        var results: [ISALevel: [Float]] = [:]
        for level in ISALevel.allCases where level > .generic && level <= .supported {
            let r = run(level)
            results[level] = r
            let worst = zip(r, reference).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5, "\(cell) \(level) vs generic: max difference \(worst)")
        }
        if let a = results[.avx512], let b = results[.avx2] {
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(cell): AVX-512 and AVX2 differ")
        }
    }
}

/// `rnn-bench` started under each `RNN_ISA` cap: the kernels it reports, and a short training
/// run whose loss agrees across the caps (the sequence-level GEMMs run OpenBLAS's Nehalem,
/// Haswell or SkylakeX/Cooperlake kernels, the per-step products BLAS, AVX2 or AVX-512).
@Suite struct ISACapProcessTests {
    static let bench = builtExecutable("rnn-bench")

    @Test(.enabled(if: bench != nil), arguments: ISALevel.allCases.filter { $0 <= .supported })
    func infoReportsTheCappedKernels(level: ISALevel) throws {
        let r = try runProcess(Self.bench!, ["info"], environment: ["RNN_ISA": "\(level)"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("isa: \(level) (supported \(ISALevel.supported), RNN_ISA=\(level))"), "\(r.stdout)")
        #expect(r.stdout.contains("kernels \(SystemInfo.gemmCore(for: level)) (requested \(SystemInfo.gemmCore(for: level))"), "\(r.stdout)")
        #expect(r.stdout.contains("per-step kernel: \(PackedKernels.variantDescription(level))"), "\(r.stdout)")
    }

    @Test(.enabled(if: bench != nil)) func unknownCapIsOneLineAndExitStatus2() throws {
        let r = try runProcess(Self.bench!, ["info"], environment: ["RNN_ISA": "sse9"])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr == "RNN_ISA: unknown instruction-set level 'sse9' (use generic, avx2 or avx512)\n")
    }

    @Test(.enabled(if: bench != nil)) func callerOpenBLASCoretypeIsRestoredForChildren() throws {
        // The tools set OPENBLAS_CORETYPE only while loading OpenBLAS; what the caller set wins
        // neither over the features nor over the environment the tool's children inherit.
        let r = try runProcess(Self.bench!, ["info"], environment: ["OPENBLAS_CORETYPE": "Prescott", "RNN_ISA": nil])
        #expect(r.status == 0)
        #expect(r.stdout.contains("kernels \(SystemInfo.gemmCore(for: .supported)) "), "\(r.stdout)")
    }

    @Test(.enabled(if: bench != nil)) func trainingLossAgreesAcrossCaps() throws {
        let args = ["train", "--cell", "lstm", "--layers", "1", "--hidden", "24", "--embedding", "8", "--vocab", "11",
                    "--batch", "6", "--seq-len", "8", "--steps", "3", "--threads", "2"]
        var losses: [ISALevel: Double] = [:]
        for level in ISALevel.allCases where level <= .supported {
            let r = try runProcess(Self.bench!, args, environment: ["RNN_ISA": "\(level)"])
            #expect(r.status == 0, "\(r.stderr)")
            let value = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("loss=") }.flatMap { Double($0.dropFirst(5)) }
            losses[level] = try #require(value, "no loss in \(r.stdout)")
        }
        let values = Array(losses.values)
        #expect(values.allSatisfy { $0.isFinite && $0 > 0 })
        #expect((values.max()! - values.min()!) < 1e-3, "losses per cap: \(losses)")
    }
}
