import Foundation
import Testing
@testable import Seq2Seq

func words(_ s: String) -> [String] { s.split(separator: " ").map(String.init) }

@Test func exactMatchAndTokenAccuracy() {
    let refs = [words("a b c"), words("d e"), words("f g h i")]
    let hyps = [words("a b c"), words("d x y"), words("f g")]
    #expect(SequenceMetrics.exactMatch(hypotheses: hyps, references: refs) == 1.0 / 3.0)
    // Correct positions: 3 (a b c) + 1 (d; extra y ignored) + 2 (f g; h i missing) over 3+2+4 = 9.
    #expect(SequenceMetrics.tokenAccuracy(hypotheses: hyps, references: refs) == 6.0 / 9.0)
    #expect(SequenceMetrics.exactMatch(hypotheses: [], references: []) == 0)
}

// Hand-worked corpus of two sentences.
//
// 1. hyp "the cat sat on the mat" (6 tokens), ref "the cat sat on a mat" (6)
//    1-grams: the×2 (ref has 1 → clipped 1), cat, sat, on, mat → 5 of 6
//    2-grams: the cat ✓, cat sat ✓, sat on ✓, on the ✗, the mat ✗ → 3 of 5
//    3-grams: the cat sat ✓, cat sat on ✓, sat on the ✗, on the mat ✗ → 2 of 4
//    4-grams: the cat sat on ✓, cat sat on the ✗, sat on the mat ✗ → 1 of 3
// 2. hyp "a b c" (3), ref "a b c d" (4)
//    1-grams 3 of 3, 2-grams 2 of 2, 3-grams 1 of 1, 4-grams 0 of 0
// Corpus: m = [8, 5, 3, 1], t = [9, 7, 5, 3], c = 9, r = 10.
// BP = exp(1 − 10/9) = exp(−1/9) ≈ 0.894839
// BLEU = BP · (8/9 · 5/7 · 3/5 · 1/3)^(1/4) = BP · (120/945)^(1/4) ≈ 0.5341736
// add-one (n ≥ 2): p = 8/9, 6/8, 4/6, 2/4 → BP · (384/1728)^(1/4) ≈ 0.6143869
let handHyps = [words("the cat sat on the mat"), words("a b c")]
let handRefs = [words("the cat sat on a mat"), words("a b c d")]

@Test func corpusBLEUMatchesHandComputation() {
    let s = BLEU.corpus(hypotheses: handHyps, references: handRefs)
    #expect(s.matches == [8, 5, 3, 1])
    #expect(s.totals == [9, 7, 5, 3])
    #expect(s.hypothesisLength == 9 && s.referenceLength == 10)
    #expect(abs(s.brevityPenalty - 0.8948393168) < 1e-9)
    #expect(abs(s.score - 0.5341735957) < 1e-9)
    let smoothed = BLEU.corpus(hypotheses: handHyps, references: handRefs, smoothing: .addOne)
    #expect(abs(smoothed.score - 0.6143868746) < 1e-9)
    #expect(abs(smoothed.precisions[1] - 0.75) < 1e-12)
}

@Test func bleuEdgeCases() {
    // Identical corpus → 1.
    let perfect = BLEU.corpus(hypotheses: handRefs, references: handRefs)
    #expect(abs(perfect.score - 1) < 1e-12)
    // No bigram match: 0 without smoothing; floor ε = 0.1 gives (1/2 · 0.1 · 0.1 · 0.1)^(1/4).
    let h = [words("a b")], r = [words("a c")]
    #expect(BLEU.corpus(hypotheses: h, references: r).score == 0)
    #expect(abs(BLEU.corpus(hypotheses: h, references: r, smoothing: .floor(epsilon: 0.1)).score - 0.1495348781) < 1e-9)
    // Longer hypothesis: no brevity penalty; empty hypotheses: 0.
    #expect(BLEU.corpus(hypotheses: [words("a b c d e")], references: [words("a b c d")]).brevityPenalty == 1)
    #expect(BLEU.corpus(hypotheses: [[]], references: [words("a")]).score == 0)
    // Several references: clip by the largest count (the×2 of 3), r = closest length (3).
    let multi = BLEU.corpus(hypotheses: [words("the the the")], referenceSets: [[words("the cat"), words("the the dog")]], maxOrder: 1)
    #expect(multi.matches == [2] && multi.totals == [3] && multi.referenceLength == 3)
    #expect(abs(multi.score - 2.0 / 3.0) < 1e-12)
}
