import Foundation
import Testing
import RecurrentCore
@testable import Seq2Seq

/// A hand-made next-token table over tokens 0 = end, 1 = A, 2 = B, 3 = C. The state is the prefix.
///
/// After start: A 0.55, B 0.45. After A: A, B, C 0.3 each, end 0.1. After B: end 0.9, C 0.1.
/// After any longer prefix: end 1. Greedy takes A (0.55), then A (0.3, lowest id of the tied
/// best), then end: log(0.55 · 0.3 · 1) = log 0.165. Beam 5 keeps "B" and finds
/// "B end" = log(0.45 · 0.9) = log 0.405, a higher model score.
struct TableScorer: IncrementalScorer {
    func advance(states: [[Int]], tokens: [Int]) -> [(logProbs: [Float], state: [Int])] {
        zip(states, tokens).map { prefix, token in
            let p = token == -1 ? prefix : prefix + [token]
            let probs: [Double]
            switch p {
            case []: probs = [0, 0.55, 0.45, 0]
            case [1]: probs = [0.1, 0.3, 0.3, 0.3]
            case [2]: probs = [0.9, 0, 0, 0.1]
            default: probs = [1, 0, 0, 0]
            }
            return (probs.map { Float(log(max($0, 1e-30))) }, p)
        }
    }
}

@Test func beamFiveBeatsGreedyOnConstructedCase() {
    let s = TableScorer()
    let g = SequenceDecoder.greedy(s, initial: [[]], startToken: -1, endToken: 0, maxLength: 10, lengthPenalty: 0)[0]
    #expect(g.tokens == [1, 1])
    #expect(abs(g.logProb - log(0.165)) < 1e-5)
    let b = SequenceDecoder.beam(s, initial: [], width: 5, startToken: -1, endToken: 0, maxLength: 10, lengthPenalty: 0)
    #expect(b.tokens == [2])
    #expect(b.finished)
    #expect(abs(b.logProb - log(0.405)) < 1e-5)
    #expect(b.logProb > g.logProb)
    // Width 1 is greedy here too.
    let b1 = SequenceDecoder.beam(s, initial: [], width: 1, startToken: -1, endToken: 0, maxLength: 10, lengthPenalty: 0)
    #expect(b1.tokens == g.tokens && abs(b1.logProb - g.logProb) < 1e-9)
}

@Test func maxLengthStopsDecoding() {
    // A table that never ends: after any prefix token C has probability 1.
    struct Endless: IncrementalScorer {
        func advance(states: [Int], tokens: [Int]) -> [(logProbs: [Float], state: Int)] {
            states.map { ([-20, -20, -20, 0], $0 + 1) }
        }
    }
    let g = SequenceDecoder.greedy(Endless(), initial: [0], startToken: 0, endToken: 0, maxLength: 4)[0]
    #expect(g.tokens == [3, 3, 3, 3] && !g.finished)
    let b = SequenceDecoder.beam(Endless(), initial: 0, width: 3, startToken: 0, endToken: 0, maxLength: 4)
    #expect(b.tokens == [3, 3, 3, 3] && !b.finished)
}

@Test(arguments: [AttentionKind.none, .dot, .additive])
func beamOneEqualsGreedyOnModel(_ attention: AttentionKind) throws {
    let config = Seq2SeqConfig(cell: .gru, layers: 2, hidden: 8, embedding: 5, bidirectional: true, attention: attention,
                               sourceVocabSize: 9, targetVocabSize: 9, maxSourceLength: 10, maxTargetLength: 12)
    let model = try Seq2SeqModel(config: config, seed: 21)
    // Make the end token rarer so outputs have several tokens.
    model.primary.out.bias!.value[Vocabulary.endID] -= 1
    let sources = [[4, 5, 6, 7], [8], [5, 5, 4, 8, 7, 6, 4]]
    let greedy = model.greedy(sources)
    for (i, src) in sources.enumerated() {
        let b = model.beam(src, width: 1)
        #expect(b.tokens == greedy[i].tokens)
        #expect(abs(b.logProb - greedy[i].logProb) < 1e-4)
        #expect(b.finished == greedy[i].finished)
    }
    #expect(greedy.contains { $0.tokens.count >= 2 })
}

/// Padded source positions get exactly zero attention, and padding does not change a row's
/// outputs: decoding a short source next to a long one equals decoding it alone.
@Test(arguments: [AttentionKind.dot, .general, .additive])
func paddedPositionsGetNoAttention(_ attention: AttentionKind) throws {
    let config = Seq2SeqConfig(cell: .lstm, layers: 1, hidden: 6, embedding: 4, bidirectional: true, attention: attention,
                               sourceVocabSize: 9, targetVocabSize: 9, maxSourceLength: 10, maxTargetLength: 6)
    let model = try Seq2SeqModel(config: config, seed: 4)
    let batch = Seq2SeqBatcher.makeBatch([EncodedPair(source: [4, 5], target: [6, 7, 8]),
                                          EncodedPair(source: [8, 7, 6, 5, 4, 6], target: [4])], rows: [0, 1])
    model.trainStep(batch: batch)
    let w = model.workers[0], S = 6, B = 2, T = batch.targetLength
    for t in 0..<T {
        let row0 = w.attn.pointer + (t * B + 0) * S
        var sum: Float = 0
        for s in 0..<2 { sum += row0[s]; #expect(row0[s] > 0) }
        for s in 2..<S { #expect(row0[s] == 0, "step \(t) position \(s)") }
        #expect(abs(sum - 1) < 1e-5)
    }
    let together = model.greedy([[4, 5], [8, 7, 6, 5, 4, 6]])
    let alone = model.greedy([[4, 5]])
    #expect(together[0].tokens == alone[0].tokens)
    for (a, b) in zip(together[0].trace, alone[0].trace) {
        #expect(a.attention.count == 2)
        for (x, y) in zip(a.attention, b.attention) { #expect(abs(x - y) < 1e-5) }
    }
    #expect(abs(together[0].logProb - alone[0].logProb) < 1e-4)
}

/// The decoding step (one token at a time from a carried state) gives the same log-probability
/// of a target as the training forward with teacher forcing.
@Test func stepDecoderMatchesTrainingForward() throws {
    let config = Seq2SeqConfig(cell: .lstm, layers: 2, hidden: 6, embedding: 4, bidirectional: false, attention: .general,
                               sourceVocabSize: 9, targetVocabSize: 9, maxSourceLength: 10, maxTargetLength: 6)
    let model = try Seq2SeqModel(config: config, seed: 8)
    let pair = EncodedPair(source: [4, 6, 5], target: [7, 8, 4])
    let loss = model.loss(batch: Seq2SeqBatcher.makeBatch([pair], rows: [0]))
    let (scorer, states) = model.startDecoding([pair.source])
    var state = states[0], previous = Vocabulary.startID, nll = 0.0
    for next in pair.target + [Vocabulary.endID] {
        let out = scorer.advance(states: [state], tokens: [previous])[0]
        nll -= Double(out.logProbs[next])
        state = out.state
        previous = next
    }
    #expect(abs(loss - nll / 4) < 1e-5)
}
