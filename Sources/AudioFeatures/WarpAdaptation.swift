import Foundation

/// Test-time vocal tract length normalisation chosen by minimum entropy (`eval` and `predict`
/// with `--adapt-warp`, utterance task).
///
/// A voice's formants lie higher or lower than the training voices' roughly in proportion to
/// the length of its vocal tract; warping the mel filterbank by a factor
/// (`MFCCExtractor(frequencyWarp:)`, the warp that VTLP augmentation draws at random in training)
/// moves them back. A new voice's factor is unknown and no label may be read, so each speaker's
/// files are scored under every factor of a grid and the factor whose predictions are the most
/// confident on average, the lowest mean entropy of the class probabilities over that speaker's
/// files, is kept for all of them. Files are grouped as `SpeakerNormalization.group` does:
/// by the speaker of an FSDD-style name, and a file without one is a group of its own.
public enum WarpAdaptation {
    /// The factors tried by default: 0.88 to 1.16 in steps of 0.04.
    public static let grid: [Double] = [0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12, 1.16]

    /// Entropy in nats of one row of probabilities (zeros contribute nothing).
    public static func entropy<C: Collection>(_ row: C) -> Double where C.Element == Float {
        var h = 0.0
        for p in row where p > 0 { h -= Double(p) * log(Double(p)) }
        return h
    }

    /// For each group, the index into `warps` of the factor whose rows have the lowest mean
    /// entropy over the group's files; on a tie (within 1e-12 nats) the factor nearest 1 wins,
    /// then the smaller.
    /// - Parameters:
    ///   - probabilities: for each factor of `warps`, `[files, classes]` row-major, the files in
    ///     the order of `groups`.
    ///   - groups: each file's group.
    public static func choose(warps: [Double], probabilities: [[Float]], groups: [String], classes: Int) -> [String: Int] {
        precondition(!warps.isEmpty && probabilities.count == warps.count, "one probability table per factor")
        precondition(probabilities.allSatisfy { $0.count == groups.count * classes }, "one row per file in every table")
        let order = warps.indices.sorted { (abs(warps[$0] - 1), warps[$0]) < (abs(warps[$1] - 1), warps[$1]) }
        var chosen: [String: Int] = [:]
        for (g, files) in members(of: groups) {
            var best = order[0], bestEntropy = Double.infinity
            for w in order {
                let h = meanEntropy(probabilities[w], files: files, classes: classes)
                if h < bestEntropy - 1e-12 { best = w; bestEntropy = h }
            }
            chosen[g] = best
        }
        return chosen
    }

    /// The indices of each group's files.
    static func members(of groups: [String]) -> [String: [Int]] {
        var members: [String: [Int]] = [:]
        for (i, g) in groups.enumerated() { members[g, default: []].append(i) }
        return members
    }

    /// Mean entropy of the rows `files` of `p` (`[files, classes]` row-major).
    static func meanEntropy(_ p: [Float], files: [Int], classes: Int) -> Double {
        files.reduce(0.0) { $0 + entropy(p[($1 * classes)..<(($1 + 1) * classes)]) } / Double(files.count)
    }

    /// The utterance-task class probabilities `[examples, classes]` of `scorer` for `examples`
    /// (input order), scored in length-sorted batches of `batchSize`.
    public static func probabilities(_ scorer: some SpeechScorer, _ examples: [SpeechExample], batchSize: Int = 64) -> [Float] {
        precondition(scorer.task == .utterance, "warp adaptation is for the utterance task")
        let C = scorer.classes
        var out = [Float](repeating: 0, count: examples.count * C)
        for batch in SpeechCorpus.orderedBatches(lengths: examples.map(\.features.frames), batchSize: batchSize) {
            let p = scorer.probabilities(batch.map { examples[$0] }).probabilities
            for (row, i) in batch.enumerated() { for c in 0..<C { out[i * C + c] = p[row * C + c] } }
        }
        return out
    }

    /// One group's choice: the factor kept and the mean entropy of its files at that factor and at 1.
    public struct Choice: Sendable, Equatable {
        /// The group (speaker, or the path of a file without one).
        public var group: String
        /// The factor kept.
        public var warp: Double
        /// Mean entropy (nats) of the group's predictions at `warp`.
        public var entropy: Double
        /// Mean entropy of the group's predictions unwarped (nil when the grid lacks 1).
        public var unwarpedEntropy: Double?
    }

    /// Adapts `examples` as computed under each factor of `warps` (`candidates[w]`, the same
    /// files in the same order under each): every file takes its version from the factor chosen
    /// for its group (`choose`), scored with `scorer`.
    /// - Returns: the adapted examples (input order) and the choice of every group, by name.
    public static func adapt(_ scorer: some SpeechScorer, warps: [Double], candidates: [[SpeechExample]])
        -> (examples: [SpeechExample], choices: [Choice]) {
        precondition(candidates.count == warps.count && !warps.isEmpty, "one example list per factor")
        let first = candidates[0]
        precondition(candidates.allSatisfy { $0.map(\.path) == first.map(\.path) }, "the same files under every factor")
        let C = scorer.classes
        let groups = first.map { SpeakerNormalization.group(speaker: $0.speaker, path: $0.path) }
        let tables = candidates.map { probabilities(scorer, $0) }
        let chosen = choose(warps: warps, probabilities: tables, groups: groups, classes: C)
        let members = members(of: groups), unit = warps.firstIndex(of: 1)
        let choices = chosen.keys.sorted().map { g in
            Choice(group: g, warp: warps[chosen[g]!], entropy: meanEntropy(tables[chosen[g]!], files: members[g]!, classes: C),
                   unwarpedEntropy: unit.map { meanEntropy(tables[$0], files: members[g]!, classes: C) })
        }
        return (first.indices.map { candidates[chosen[groups[$0]]!][$0] }, choices)
    }
}
