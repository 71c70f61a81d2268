import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import RecurrentCore

/// Benchmarks of the recurrent core on char-LM-shaped models (release builds only give
/// meaningful figures).
@main
struct RNNBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rnn-bench",
        abstract: "Measure training throughput and sampling latency of the recurrent core.",
        subcommands: [Info.self, Train.self, Sample.self, GEMM.self, Growth.self, Parity.self, CTCParity.self])
}

struct ModelOptions: ParsableArguments {
    @Option(help: "Cell type: lstm, gru, rnn (tanh), rnn_relu.")
    var cell: String = "lstm"
    @Option(help: "Number of recurrent layers.")
    var layers: Int = 2
    @Option(help: "Hidden size.")
    var hidden: Int = 256
    @Option(help: "Embedding size (0 = one-hot input).")
    var embedding: Int = 64
    @Option(help: "Vocabulary size.")
    var vocab: Int = 65

    func validate() throws {
        guard CellKind(argument: cell) != nil else { throw ValidationError("unknown --cell '\(cell)' (lstm, gru, rnn, rnn_relu)") }
        guard layers >= 1, hidden >= 1, embedding >= 0, vocab >= 2 else { throw ValidationError("sizes must be positive") }
    }

    var config: LanguageModelConfig {
        LanguageModelConfig(cell: CellKind(argument: cell)!, layers: layers, hidden: hidden, embedding: embedding, vocabSize: vocab)
    }
}

/// Peak resident memory of this process in MB: `VmHWM` from /proc/self/status (reset by exec,
/// unlike getrusage's ru_maxrss, which Linux carries over from the parent process).
func peakResidentMegabytes() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kb / 1024
    }
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

enum PerStepKernel: String, ExpressibleByArgument, CaseIterable {
    case packed, blas
}

extension Precision: ExpressibleByArgument {}

/// `--precision fp32|bf16`; where bf16 is emulated, one line on standard error says so.
struct PrecisionOption: ParsableArguments {
    @Option(help: "Recurrent matrix products in fp32, or bf16 with fp32 accumulation (native with AVX512_BF16; emulated elsewhere, training no faster than fp32).")
    var precision: Precision = .fp32

    /// The precision, announced on standard error where it is emulated.
    func checked() -> Precision {
        if let note = Precision.emulationNote(for: precision) {
            FileHandle.standardError.write(Data("rnn-bench: \(note)\n".utf8))
        }
        return precision
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the processor, its instruction-set features, and the GEMM engine, kernels and threads in use.")
    @Option(help: "Threads (batch shards) to report; default: all cores.") var threads: Int?

    func run() throws {
        Threading.useSingleThreadedBLAS()
        for line in SystemInfo.report(threads: threads ?? Threading.defaultThreads) { print(line) }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train on random tokens (embedding, stack, linear, cross-entropy, Adam, clipping 5); prints tokens_per_s last.")
    @OptionGroup var model: ModelOptions
    @Option(help: "Batch size.") var batch: Int = 32
    @Option(name: .customLong("seq-len"), help: "Sequence length (truncated BPTT).") var seqLen: Int = 64
    @Option(help: "Timed training steps (after one warm-up step).") var steps: Int = 20
    @Option(help: "Threads (batch shards); default: all cores.") var threads: Int?
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(name: .customLong("per-step"), help: "Per-step products: packed (the kernel of the level in use) or blas (OpenBLAS sgemm each step).")
    var perStep: PerStepKernel = .packed
    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        if perStep == .blas && precision.precision == .bf16 { throw ValidationError("--per-step blas runs fp32 products; use it with --precision fp32") }
        guard batch >= 1, seqLen >= 1, steps >= 1 else { throw ValidationError("--batch, --seq-len and --steps must be positive") }
    }

    func run() throws {
        let t = threads ?? Threading.defaultThreads
        let estimate = model.config.memoryEstimate(batch: batch, steps: seqLen, threads: t)
        try benchMemoryCheck(estimate.trainingBytes(optimizerSlots: OptimizerKind.adam.slotCount), parameters: estimate.parameters)
        Threading.useSingleThreadedBLAS()
        let net = RecurrentLanguageModel(config: model.config, seed: seed, threads: t)
        if perStep == .blas { net.kernelLevel = .generic }
        net.precision = precision.checked()
        let opt = Adam(parameters: net.parameters, learningRate: 2e-3)
        opt.threads = t
        var rng = SeededRandom(seed: seed &+ 1)
        let n = batch * seqLen
        func batchIds() -> ([Int32], [Int32]) {
            let x = (0..<n).map { _ in Int32(rng.nextInt(below: model.vocab)) }
            let y = (0..<n).map { _ in Int32(rng.nextInt(below: model.vocab)) }
            return (x, y)
        }
        var loss = 0.0
        func step(_ i: Int) {
            let (x, y) = batchIds()
            loss = net.trainStep(inputs: x, targets: y, batch: batch, steps: seqLen, carryState: true, seed: UInt64(i))
            clipGradientNorm(net.parameters, maxNorm: 5)
            opt.step()
        }
        step(0)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 1...steps { step(i) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "cell=%@ layers=%d hidden=%d embedding=%d vocab=%d batch=%d seq_len=%d threads=%d steps=%d isa=%@ gemm=%@ per_step=%@ precision=%@",
                     model.cell, model.layers, model.hidden, model.embedding, model.vocab, batch, seqLen, t, steps,
                     "\(ISALevel.inUse)", SystemInfo.gemmCore, perStep == .blas ? "blas" : "\(net.kernelLevel)", "\(net.precision)"))
        print(String(format: "loss=%.4f seconds=%.3f ms_per_step=%.3f peak_rss_mb=%.1f", loss, seconds, seconds * 1000 / Double(steps), peakResidentMegabytes()))
        print(String(format: "tokens_per_s=%.0f", Double(steps * n) / seconds))
    }
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Batch-1 generation from a random model; prints us_per_token last.")
    @OptionGroup var model: ModelOptions
    @Option(help: "Tokens to generate.") var length: Int = 2000
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Generation threads (hidden units split between cores); default 1.") var threads: Int?
    @OptionGroup var precision: PrecisionOption

    func run() throws {
        let estimate = model.config.memoryEstimate(batch: 1, steps: 1, threads: 1)
        try benchMemoryCheck(estimate.inferenceBytes, parameters: estimate.parameters)
        Threading.useSingleThreadedBLAS()
        let net = RecurrentLanguageModel(config: model.config, seed: seed)
        net.generationThreads = threads
        net.precision = precision.checked()
        let sampler = TokenSampler(model: net, temperature: 1, topK: nil, seed: seed)
        var token: Int32 = 0
        for _ in 0..<20 { token = sampler.next(after: token) }
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<length { token = sampler.next(after: token) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "cell=%@ layers=%d hidden=%d vocab=%d tokens=%d seconds=%.3f precision=%@", model.cell, model.layers, model.hidden,
                     model.vocab, length, seconds, "\(net.precision)"))
        print(String(format: "us_per_token=%.1f", seconds * 1e6 / Double(length)))
    }
}

struct GEMM: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "sgemm throughput (GFLOP/s) of OpenBLAS for M x N x K.")
    @Option var m: Int = 32
    @Option var n: Int = 1024
    @Option var k: Int = 256
    @Option(help: "OpenBLAS threads.") var threads: Int = 1
    @Option(help: "Repetitions.") var reps: Int = 200

    func run() throws {
        BLAS.threads = threads
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        for i in 0..<(m * k) { a.pointer[i] = Float(i % 7) * 0.1 }
        for i in 0..<(k * n) { b.pointer[i] = Float(i % 5) * 0.1 }
        BLAS.gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<reps { BLAS.gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "gflops=%.2f", 2.0 * Double(m * n * k) * Double(reps) / seconds / 1e9))
    }
}

/// The memory check of every tool: a model that does not fit is one line on standard error
/// (`rnn-bench: the model (N parameters) needs about … but … is available (…)`) and exit 1.
func benchMemoryCheck(_ bytes: Double, parameters: Double) throws {
    do {
        try MemoryBudget.require(bytes, for: "the model (\(Int(exactly: parameters).map(String.init) ?? "\(parameters)") parameters)",
                                 hint: "--hidden, --layers, --embedding, --batch or --seq-len")
    } catch let e as MemoryError {
        FileHandle.standardError.write(Data("rnn-bench: \(e)\n".utf8))
        throw ExitCode(1)
    }
}
