import Foundation

/// Sentence-level agreement measures between decoded outputs and references.
public enum SequenceMetrics {
    /// Fraction (0 … 1) of hypotheses equal to their reference token for token; 0 for no pairs.
    /// `hypotheses[i]` is compared with `references[i]`; extra entries of the longer list are ignored.
    public static func exactMatch(hypotheses: [[String]], references: [[String]]) -> Double {
        let n = min(hypotheses.count, references.count)
        guard n > 0 else { return 0 }
        var hits = 0
        for i in 0..<n where hypotheses[i] == references[i] { hits += 1 }
        return Double(hits) / Double(n)
    }

    /// Position-wise token accuracy over the reference length (0 … 1).
    ///
    /// For each pair, position `t` in `0..<reference.count` counts as correct when the
    /// hypothesis has a token there and it equals the reference token. Missing hypothesis
    /// tokens count as wrong; hypothesis tokens past the reference length are ignored (exact
    /// match catches those). Result = correct positions / total reference tokens, over all
    /// pairs (0 when the references hold no tokens).
    public static func tokenAccuracy(hypotheses: [[String]], references: [[String]]) -> Double {
        let n = min(hypotheses.count, references.count)
        var correct = 0, total = 0
        for i in 0..<n {
            let hyp = hypotheses[i], ref = references[i]
            total += ref.count
            for t in 0..<min(hyp.count, ref.count) where hyp[t] == ref[t] { correct += 1 }
        }
        return total == 0 ? 0 : Double(correct) / Double(total)
    }
}

/// How corpus BLEU treats n-gram orders with no matches.
public enum BLEUSmoothing: Sendable, Equatable {
    /// No smoothing (Papineni et al. 2002): any order with zero matches makes BLEU 0.
    case none
    /// Add one to the matches and the totals of every order n ≥ 2, i.e. p_n = (m_n + 1) / (t_n + 1)
    /// (Lin & Och 2004, "smoothing 2"); unigram precision unchanged.
    case addOne
    /// An order with zero matches uses p_n = epsilon / t_n (epsilon / 1 when t_n = 0) instead of 0.
    case floor(epsilon: Double)
}

/// Result of a corpus BLEU computation with its parts.
public struct BLEUScore: Sendable, Equatable {
    /// BLEU in 0 … 1 (multiply by 100 for the usual percentage).
    public var score: Double
    /// Smoothed n-gram precisions p_1 … p_N used in the geometric mean.
    public var precisions: [Double]
    /// Clipped n-gram matches m_1 … m_N summed over the corpus.
    public var matches: [Int]
    /// Hypothesis n-gram counts t_1 … t_N summed over the corpus.
    public var totals: [Int]
    /// exp(1 − r / c) when c ≤ r, else 1 (0 when c = 0).
    public var brevityPenalty: Double
    /// Total hypothesis length c (tokens).
    public var hypothesisLength: Int
    /// Total effective reference length r (tokens).
    public var referenceLength: Int
}

/// Corpus BLEU (Papineni et al. 2002).
///
/// For each order n = 1 … N: hypothesis n-gram counts are clipped by the largest count of that
/// n-gram in any reference of the sentence; the clipped matches m_n and the hypothesis n-gram
/// totals t_n are summed over the corpus, p_n = m_n / t_n (smoothed per `BLEUSmoothing`).
/// BLEU = BP · exp(Σ_n (1/N) log p_n), with brevity penalty BP = exp(1 − r/c) when c ≤ r
/// (1 otherwise), c the total hypothesis length and r the summed reference lengths (with
/// several references per sentence: the one closest in length, shorter on ties).
public enum BLEU {
    /// Corpus BLEU with one reference per hypothesis (`hypotheses[i]` ↔ `references[i]`).
    public static func corpus(hypotheses: [[String]], references: [[String]], maxOrder: Int = 4,
                              smoothing: BLEUSmoothing = .none) -> BLEUScore {
        corpus(hypotheses: hypotheses, referenceSets: references.map { [$0] }, maxOrder: maxOrder, smoothing: smoothing)
    }

    /// Corpus BLEU with one or more references per hypothesis.
    public static func corpus(hypotheses: [[String]], referenceSets: [[[String]]], maxOrder: Int = 4,
                              smoothing: BLEUSmoothing = .none) -> BLEUScore {
        let order = max(1, maxOrder)
        var matches = [Int](repeating: 0, count: order)
        var totals = [Int](repeating: 0, count: order)
        var c = 0, r = 0
        for i in 0..<min(hypotheses.count, referenceSets.count) {
            let hyp = hypotheses[i]
            let refs = referenceSets[i]
            c += hyp.count
            if let closest = refs.min(by: { a, b in
                let da = abs(a.count - hyp.count), db = abs(b.count - hyp.count)
                return da != db ? da < db : a.count < b.count
            }) {
                r += closest.count
            }
            for n in 1...order {
                guard hyp.count >= n else { continue }
                totals[n - 1] += hyp.count - n + 1
                let hypCounts = ngramCounts(hyp, n)
                var maxRef: [ArraySlice<String>: Int] = [:]
                for ref in refs {
                    for (gram, k) in ngramCounts(ref, n) where k > maxRef[gram, default: 0] { maxRef[gram] = k }
                }
                for (gram, k) in hypCounts { matches[n - 1] += min(k, maxRef[gram, default: 0]) }
            }
        }
        var precisions = [Double](repeating: 0, count: order)
        for k in 0..<order {
            let m = Double(matches[k]), t = Double(totals[k])
            switch smoothing {
            case .none:
                precisions[k] = t > 0 ? m / t : 0
            case .addOne:
                precisions[k] = k == 0 ? (t > 0 ? m / t : 0) : (m + 1) / (t + 1)
            case .floor(let epsilon):
                precisions[k] = matches[k] > 0 ? m / t : epsilon / max(t, 1)
            }
        }
        let bp: Double = c == 0 ? 0 : (c > r ? 1 : exp(1 - Double(r) / Double(c)))
        var score = 0.0
        if bp > 0, precisions.allSatisfy({ $0 > 0 }) {
            score = bp * exp(precisions.reduce(0) { $0 + log($1) } / Double(order))
        }
        return BLEUScore(score: score, precisions: precisions, matches: matches, totals: totals,
                         brevityPenalty: bp, hypothesisLength: c, referenceLength: r)
    }

    /// Counts of the n-grams of `tokens`.
    static func ngramCounts(_ tokens: [String], _ n: Int) -> [ArraySlice<String>: Int] {
        var counts: [ArraySlice<String>: Int] = [:]
        guard tokens.count >= n else { return counts }
        for start in 0...(tokens.count - n) { counts[tokens[start..<(start + n)], default: 0] += 1 }
        return counts
    }
}
