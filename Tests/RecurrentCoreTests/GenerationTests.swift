import Testing
import RNNKernels
@testable import RecurrentCore

/// The packed matrix-vector product of batch-1 generation.
@Suite struct MatvecKernelTests {
    @Test(.enabled(if: !packedLevels.isEmpty), arguments: [(5, 3), (16, 7), (37, 13), (64, 9), (100, 256), (1024, 256), (65, 256), (81, 1)])
    func matchesReferenceAndTheBlockedKernel(shape: (Int, Int)) {
        let (n, k) = shape
        var rng = SeededRandom(seed: UInt64(n * 31 + k))
        let x = randomArray(k, &rng), w = randomArray(n * k, &rng), y0 = randomArray(n, &rng)
        var packed = [Float](repeating: .nan, count: rnn_packed_size(Int32(k), Int32(n)))
        w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { rnn_pack_b(wp.baseAddress!, Int32(k), Int32(k), Int32(n), 1, $0.baseAddress!) }
        }
        var results: [[Float]] = []
        for level in packedLevels {
            var y = y0 + [Float](repeating: 12345, count: 40)     // guard cells past n stay untouched
            x.withUnsafeBufferPointer { xp in
                packed.withUnsafeBufferPointer { pp in
                    y.withUnsafeMutableBufferPointer { rnn_matvec_packed(Int32(level.rawValue), Int32(n), Int32(k), xp.baseAddress!, pp.baseAddress!, $0.baseAddress!) }
                }
            }
            #expect(y[n...].allSatisfy { $0 == 12345 }, "\(level) wrote past n")
            var worst = 0.0
            for j in 0..<n {
                var s = Double(y0[j])
                for kk in 0..<k { s += Double(x[kk]) * Double(w[j * k + kk]) }
                worst = max(worst, abs(s - Double(y[j])))
            }
            #expect(worst < 1e-4, "\(level) n \(n) k \(k): max error \(worst)")
            let blocked = packedProduct(level: level, m: 1, n: n, k: k, a: x, w: w, c0: y0, transposed: true)
            #expect(Array(y[..<n]).map(\.bitPattern) == blocked.map(\.bitPattern), "\(level): differs from rnn_gemm_packed")
            results.append(Array(y[..<n]))
        }
        if results.count == 2 { #expect(results[0].map(\.bitPattern) == results[1].map(\.bitPattern)) }
    }
}

/// Batch-1 generation (`StepGenerator`) against the general recurrent stack, token by token.
@Suite struct StepGeneratorTests {
    static let cases: [(CellKind, Int)] = [(.lstm, 6), (.lstm, 0), (.gru, 6), (.gru, 0), (.rnnTanh, 6), (.rnnRelu, 0)]

    /// Logits of `tokens` fed one at a time, through the generator (`parts` threads) or the stack.
    static func logits(cell: CellKind, embedding: Int, parts: Int?, level: ISALevel, tokens: [Int32]) -> [[Float]] {
        let config = LanguageModelConfig(cell: cell, layers: 2, hidden: 10, embedding: embedding, vocabSize: 7)
        let model = RecurrentLanguageModel(config: config, seed: 5)
        model.kernelLevel = level
        model.generationThreads = parts
        model.resetEvaluationState()
        return tokens.map { parts == nil ? model.nextLogitsThroughStack([$0]) : model.nextLogits([$0]) }
    }

    static let tokens: [Int32] = [3, 0, 6, 6, 1, 2, 5, 4, 0, 3, 3, 1]

    @Test(.enabled(if: ISALevel.supported >= .avx2), arguments: cases)
    func matchesTheStack(cell: CellKind, embedding: Int) {
        let reference = Self.logits(cell: cell, embedding: embedding, parts: nil, level: .generic, tokens: Self.tokens)
        for level in packedLevels {
            for parts in [1, 2, 3] {
                let got = Self.logits(cell: cell, embedding: embedding, parts: parts, level: level, tokens: Self.tokens)
                let worst = zip(got, reference).flatMap { zip($0, $1).map { abs($0 - $1) } }.max() ?? .infinity
                #expect(worst < 2e-5, "\(cell) E\(embedding) \(level) parts \(parts): max difference \(worst)")
            }
        }
    }

    /// Each unit's arithmetic is the same whichever thread owns it: any split gives the same bits.
    @Test(.enabled(if: ISALevel.supported >= .avx2), arguments: cases)
    func threadsAndInstructionSetsGiveTheSameBits(cell: CellKind, embedding: Int) {
        var all: [[UInt32]] = []
        for level in packedLevels {
            for parts in [1, 2, 3, 10] {
                all.append(Self.logits(cell: cell, embedding: embedding, parts: parts, level: level, tokens: Self.tokens).flatMap { $0.map(\.bitPattern) })
            }
        }
        #expect(all.allSatisfy { $0 == all[0] })
    }

    /// Long enough to pass the timing probes (tokens 0-31 of every 1,024) on two threads.
    @Test(.enabled(if: ISALevel.supported >= .avx2)) func longRunOnTwoThreadsMatchesOne() {
        var rng = SeededRandom(seed: 8)
        let tokens = (0..<1100).map { _ in Int32(rng.nextInt(below: 7)) }
        let one = Self.logits(cell: .lstm, embedding: 6, parts: 1, level: .inUse, tokens: tokens)
        let two = Self.logits(cell: .lstm, embedding: 6, parts: 2, level: .inUse, tokens: tokens)
        #expect(one.map { $0.map(\.bitPattern) } == two.map { $0.map(\.bitPattern) })
    }

    /// The sampler's state after generation equals the stack's, and the stack can continue from it.
    @Test(.enabled(if: ISALevel.supported >= .avx2)) func stateIsCarriedLikeTheStack() {
        let config = LanguageModelConfig(cell: .lstm, layers: 2, hidden: 10, embedding: 6, vocabSize: 7)
        let a = RecurrentLanguageModel(config: config, seed: 5), b = RecurrentLanguageModel(config: config, seed: 5)
        a.generationThreads = 2
        for t in Self.tokens { _ = a.nextLogits([t]); _ = b.nextLogitsThroughStack([t]) }
        // Continue a through the stack from the generator's state, then through the generator
        // from the stack's state again, and b through the stack all along.
        for (t, viaStack) in [(Int32(2), true), (5, false), (1, false), (3, true), (0, false)] {
            let la = viaStack ? a.nextLogitsThroughStack([t]) : a.nextLogits([t]), lb = b.nextLogitsThroughStack([t])
            #expect(zip(la, lb).map { abs($0 - $1) }.max()! < 5e-5, "token \(t) via \(viaStack ? "stack" : "generator")")
        }
    }

    /// Weights loaded after generation started are used by the next token.
    @Test(.enabled(if: ISALevel.supported >= .avx2)) func reloadedWeightsAreUsed() throws {
        let config = LanguageModelConfig(cell: .gru, layers: 2, hidden: 10, embedding: 6, vocabSize: 7)
        let a = RecurrentLanguageModel(config: config, seed: 5), b = RecurrentLanguageModel(config: config, seed: 6)
        _ = a.nextLogits([1])
        var tensors: [String: NamedTensor] = [:]
        for t in b.stateDict { tensors[t.name] = t }
        try a.load(tensors, source: "b")
        a.resetEvaluationState(); b.resetEvaluationState()
        let la = a.nextLogits([4]), lb = b.nextLogitsThroughStack([4])
        #expect(zip(la, lb).map { abs($0 - $1) }.max()! < 2e-5)
    }
}
