/// A model that extends token prefixes one token at a time (the decoder, or a hand-made table
/// in tests).
public protocol IncrementalScorer {
    /// What a hypothesis carries between steps (recurrent state, attention weights, …).
    associatedtype State

    /// Feeds `tokens[i]` to hypothesis `states[i]` for every row i and returns, per row, the
    /// log-probabilities of the next token (`[vocabulary]`) and the advanced state.
    func advance(states: [State], tokens: [Int]) -> [(logProbs: [Float], state: State)]
}

/// One decoded output.
public struct DecodedSequence<State> {
    /// Produced token ids, without the final end token.
    public var tokens: [Int]
    /// Model score: the sum of the chosen tokens' log-probabilities (natural log), the end
    /// token included when it was produced.
    public var logProb: Double
    /// `logProb / length^lengthPenalty`, length counting the end token when produced (what beam
    /// search ranks finished hypotheses by).
    public var score: Double
    /// Whether the end token was produced (false: stopped at the maximum length).
    public var finished: Bool
    /// The state after each step, `[steps]` (e.g. attention weights per output token).
    public var trace: [State]
}

/// Greedy decoding and beam search over any `IncrementalScorer`.
public enum SequenceDecoder {
    /// Greedy decoding of several independent rows at once: each step takes the most probable
    /// token (the lowest id on ties), a row stops at `endToken` or after `maxLength` tokens.
    ///
    /// - Parameters:
    ///   - initial: one start state per row, `[rows]`.
    ///   - startToken: the first token fed to every row (`<s>`).
    /// - Returns: `[rows]` decoded sequences (`score` = `logProb / length^lengthPenalty`).
    public static func greedy<S: IncrementalScorer>(_ scorer: S, initial: [S.State], startToken: Int, endToken: Int,
                                                    maxLength: Int, lengthPenalty: Double = 1) -> [DecodedSequence<S.State>] {
        var results = initial.map { _ in DecodedSequence<S.State>(tokens: [], logProb: 0, score: 0, finished: false, trace: []) }
        var active = Array(initial.indices)
        var states = initial
        var last = [Int](repeating: startToken, count: initial.count)
        var step = 0
        while !active.isEmpty && step < maxLength {
            step += 1
            let out = scorer.advance(states: active.map { states[$0] }, tokens: active.map { last[$0] })
            var still: [Int] = []
            for (k, row) in active.enumerated() {
                let lp = out[k].logProbs
                var best = 0
                for j in 1..<lp.count where lp[j] > lp[best] { best = j }
                results[row].logProb += Double(lp[best])
                results[row].trace.append(out[k].state)
                states[row] = out[k].state
                if best == endToken {
                    results[row].finished = true
                } else {
                    results[row].tokens.append(best)
                    last[row] = best
                    still.append(row)
                }
            }
            active = still
        }
        for i in results.indices {
            let length = results[i].tokens.count + (results[i].finished ? 1 : 0)
            results[i].score = normalised(results[i].logProb, length: length, penalty: lengthPenalty)
        }
        return results
    }

    /// Beam search of width `width` for one input.
    ///
    /// Each step extends every live hypothesis by every token and keeps the `width` best
    /// extensions by summed log-probability (ties: earlier hypothesis, then lower token id).
    /// Extensions ending in `endToken` among them move to the finished list (they use up a
    /// slot, so fewer hypotheses stay live). The search stops when the best extension of a step
    /// ends, when none is live, or after `maxLength` tokens; live hypotheses left then count as
    /// unfinished candidates. The result is the candidate with the best
    /// `logProb / length^lengthPenalty` (length including the end token); `lengthPenalty` 0
    /// ranks by the raw model score. With `width` 1 this is exactly `greedy`.
    public static func beam<S: IncrementalScorer>(_ scorer: S, initial: S.State, width: Int, startToken: Int, endToken: Int,
                                                  maxLength: Int, lengthPenalty: Double = 1) -> DecodedSequence<S.State> {
        let pool = search(scorer, initial: initial, width: width, finishedWanted: 1, startToken: startToken, endToken: endToken,
                          maxLength: maxLength, lengthPenalty: lengthPenalty)
        var best = pool[0]
        for p in pool.dropFirst() where p.score > best.score { best = p }
        return best
    }

    /// The `count` best hypotheses of a beam search (an n-best list), best first by `score`
    /// (`logProb / length^lengthPenalty`, ties: the one found first).
    ///
    /// The search is `beam`'s with width `max(width, count)`, except that it does not stop when
    /// the best extension of a step ends before `count` hypotheses have ended: it goes on until
    /// then (or until none is live or `maxLength`). Finished hypotheses come first; unfinished
    /// ones (live at the stop) only fill the list when fewer than `count` ended. With `count` 1
    /// the first entry is `beam`'s result whenever that one finished.
    public static func nBest<S: IncrementalScorer>(_ scorer: S, initial: S.State, width: Int, count: Int, startToken: Int,
                                                   endToken: Int, maxLength: Int, lengthPenalty: Double = 1) -> [DecodedSequence<S.State>] {
        let n = max(1, count)
        let pool = search(scorer, initial: initial, width: max(width, n), finishedWanted: n, startToken: startToken,
                          endToken: endToken, maxLength: maxLength, lengthPenalty: lengthPenalty)
        let order = pool.indices.sorted { a, b in
            if pool[a].finished != pool[b].finished { return pool[a].finished }
            return pool[a].score != pool[b].score ? pool[a].score > pool[b].score : a < b
        }
        return order.prefix(n).map { pool[$0] }
    }

    /// The beam search behind `beam` and `nBest`: the finished hypotheses in the order they
    /// ended, then the live ones left at the stop (never empty). It stops when the best
    /// extension of a step ends and at least `finishedWanted` hypotheses have ended, when none
    /// is live, or after `maxLength` tokens.
    static func search<S: IncrementalScorer>(_ scorer: S, initial: S.State, width: Int, finishedWanted: Int, startToken: Int,
                                             endToken: Int, maxLength: Int, lengthPenalty: Double) -> [DecodedSequence<S.State>] {
        let k = max(1, width)
        typealias Hyp = BeamHypothesis<S.State>
        var live = [Hyp(tokens: [], logProb: 0, trace: [], state: initial, last: startToken)]
        var finished: [DecodedSequence<S.State>] = []
        var step = 0
        var bestEnded = false
        while !live.isEmpty && !bestEnded && step < maxLength {
            step += 1
            let out = scorer.advance(states: live.map { $0.state }, tokens: live.map { $0.last })
            var candidates: [(hyp: Int, token: Int, logProb: Double)] = []
            for (i, o) in out.enumerated() {
                // Only the k best tokens of each hypothesis can enter the k best overall.
                var top: [(Int, Float)] = []
                for (j, v) in o.logProbs.enumerated() {
                    if top.count < k { top.append((j, v)); top.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }; continue }
                    if v > top[k - 1].1 { top[k - 1] = (j, v); top.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 } }
                }
                for (j, v) in top { candidates.append((i, j, live[i].logProb + Double(v))) }
            }
            candidates.sort { a, b in
                if a.logProb != b.logProb { return a.logProb > b.logProb }
                if a.hyp != b.hyp { return a.hyp < b.hyp }
                return a.token < b.token
            }
            var next: [Hyp] = []
            let firstEnds = candidates.first?.token == endToken
            for c in candidates.prefix(k) {
                let parent = live[c.hyp]
                var trace = parent.trace
                trace.append(out[c.hyp].state)
                if c.token == endToken {
                    finished.append(DecodedSequence(tokens: parent.tokens, logProb: c.logProb,
                                                    score: normalised(c.logProb, length: parent.tokens.count + 1, penalty: lengthPenalty),
                                                    finished: true, trace: trace))
                } else {
                    next.append(Hyp(tokens: parent.tokens + [c.token], logProb: c.logProb, trace: trace,
                                    state: out[c.hyp].state, last: c.token))
                }
            }
            live = next
            bestEnded = firstEnds && finished.count >= finishedWanted
        }
        var pool = finished
        for h in live {
            pool.append(DecodedSequence(tokens: h.tokens, logProb: h.logProb,
                                        score: normalised(h.logProb, length: h.tokens.count, penalty: lengthPenalty),
                                        finished: false, trace: h.trace))
        }
        return pool
    }

    /// A live hypothesis of `beam`.
    struct BeamHypothesis<State> { var tokens: [Int]; var logProb: Double; var trace: [State]; var state: State; var last: Int }

    /// `logProb / max(length, 1)^penalty`.
    static func normalised(_ logProb: Double, length: Int, penalty: Double) -> Double {
        penalty == 0 ? logProb : logProb / pow(Double(max(length, 1)), penalty)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
