import ArgumentParser
import Foundation
import Plotting
import RecurrentCore

/// Measures how training cost grows with hidden size and with sequence length.
struct Growth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokens/s as hidden size goes 64 -> 1024 and as sequence length goes 16 -> 512; writes a table and PNG plots.")
    @Option(help: "Cell type.") var cell: String = "lstm"
    @Option(help: "Threads (batch shards).") var threads: Int = Threading.defaultThreads
    @Option(help: "Batch size.") var batch: Int = 32
    @Option(help: "Tokens to process per measurement (sets the step count).") var tokens: Int = 100_000
    @Option(help: "Folder for growth-hidden.png and growth-seq.png.") var out: String = "docs"

    func measure(hidden: Int, seqLen: Int) -> (tokensPerSecond: Double, msPerStep: Double) {
        guard let kind = CellKind(argument: cell) else { return (0, 0) }
        let config = LanguageModelConfig(cell: kind, layers: 1, hidden: hidden, embedding: 64, vocabSize: 65)
        let net = RecurrentLanguageModel(config: config, seed: 0, threads: threads)
        let opt = Adam(parameters: net.parameters, learningRate: 1e-3)
        var rng = SeededRandom(seed: 1)
        let n = batch * seqLen
        let x = (0..<n).map { _ in Int32(rng.nextInt(below: 65)) }
        let y = (0..<n).map { _ in Int32(rng.nextInt(below: 65)) }
        func step(_ i: Int) {
            _ = net.trainStep(inputs: x, targets: y, batch: batch, steps: seqLen, carryState: false, seed: UInt64(i))
            clipGradientNorm(net.parameters, maxNorm: 5)
            opt.step()
        }
        step(0)
        let steps = max(2, tokens / n)
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 1...steps { step(i) }
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return (Double(steps * n) / s, s * 1000 / Double(steps))
    }

    func run() throws {
        Threading.useSingleThreadedBLAS()
        print("cell=\(cell) layers=1 embedding=64 vocab=65 batch=\(batch) threads=\(threads)")
        print("hidden  seq_len  tokens_per_s  ms_per_step")
        var hiddenPoints: [(x: Double, y: Double)] = []
        for h in [64, 128, 256, 512, 1024] {
            let r = measure(hidden: h, seqLen: 64)
            hiddenPoints.append((Double(h), r.tokensPerSecond))
            print(String(format: "%6d  %7d  %12.0f  %11.2f", h, 64, r.tokensPerSecond, r.msPerStep))
        }
        var msPoints: [(x: Double, y: Double)] = []
        for s in [16, 32, 64, 128, 256, 512] {
            let r = measure(hidden: 256, seqLen: s)
            msPoints.append((Double(s), r.msPerStep))
            print(String(format: "%6d  %7d  %12.0f  %11.2f", 256, s, r.tokensPerSecond, r.msPerStep))
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Plot.lineChart(series: [Series(name: "tokens/s (seq 64)", points: hiddenPoints)],
                           title: "\(cell) training throughput vs hidden size", xLabel: "hidden size", yLabel: "tokens/s",
                           to: out + "/growth-hidden.png")
        try Plot.lineChart(series: [Series(name: "ms per step (hidden 256)", points: msPoints)],
                           title: "\(cell) time per step vs sequence length", xLabel: "sequence length", yLabel: "ms per step",
                           to: out + "/growth-seq.png")
        print("wrote \(out)/growth-hidden.png and \(out)/growth-seq.png")
    }
}
