import Foundation

/// Test-time vocal tract length normalisation chosen by minimum uncertainty (`eval` and
/// `predict` with `--adapt-warp`, every task).
///
/// A voice's formants lie higher or lower than the training voices' roughly in proportion to
/// the length of its vocal tract; warping the mel filterbank by a factor
/// (`MFCCExtractor(frequencyWarp:)`, the warp that VTLP augmentation draws at random in training)
/// moves them back. A new voice's factor is unknown and no label may be read, so each speaker's
/// files are scored under every factor of a grid and the factor whose predictions are the most
/// confident on average is kept for all of them: the lowest mean over that speaker's files of
/// each file's uncertainty (`fileUncertainties`): the entropy of its class probabilities
/// (utterance task), the mean entropy of its frames' (frame task), or the negative
/// log-probability per label of its decoded label sequence (sequence task). Frame entropies
/// do not serve CTC: its frames are mostly confident blanks, so a warp that makes a model drop
/// labels looks more certain, and an ensemble's averaged frames mix spikes at different frames.
/// Files are grouped as `SpeakerNormalization.group` does: by the speaker of an FSDD-style name,
/// and a file without one is a group of its own.
public enum WarpAdaptation {
    /// The factors tried by default: 0.88 to 1.16 in steps of 0.04.
    public static let grid: [Double] = [0.88, 0.92, 0.96, 1.0, 1.04, 1.08, 1.12, 1.16]

    /// Entropy in nats of one row of probabilities (zeros contribute nothing).
    public static func entropy<C: Collection>(_ row: C) -> Double where C.Element == Float {
        var h = 0.0
        for p in row where p > 0 { h -= Double(p) * log(Double(p)) }
        return h
    }

    /// For each group, the index into `warps` of the factor under which the group's files have
    /// the lowest mean uncertainty; on a tie (within 1e-12 nats) the factor nearest 1 wins, then
    /// the smaller.
    /// - Parameters:
    ///   - uncertainties: for each factor of `warps`, each file's uncertainty (`fileUncertainties`),
    ///     the files in the order of `groups`.
    ///   - groups: each file's group.
    public static func choose(warps: [Double], uncertainties: [[Double]], groups: [String]) -> [String: Int] {
        precondition(!warps.isEmpty && uncertainties.count == warps.count, "one uncertainty list per factor")
        precondition(uncertainties.allSatisfy { $0.count == groups.count }, "one uncertainty per file under every factor")
        let order = warps.indices.sorted { (abs(warps[$0] - 1), warps[$0]) < (abs(warps[$1] - 1), warps[$1]) }
        var chosen: [String: Int] = [:]
        for (g, files) in members(of: groups) {
            var best = order[0], lowest = Double.infinity
            for w in order {
                let h = mean(uncertainties[w], files: files)
                if h < lowest - 1e-12 { best = w; lowest = h }
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

    /// Mean of the entries `files` of `h`.
    static func mean(_ h: [Double], files: [Int]) -> Double {
        files.reduce(0.0) { $0 + h[$1] } / Double(files.count)
    }

    /// Each example's uncertainty in nats under `scorer` (input order), scored in length-sorted
    /// batches of `batchSize`: the entropy of its class probabilities (utterance task), the mean
    /// over its frames of each frame's entropy (frame task), or `−log P(labels) / max(1, count)`
    /// of the label sequence `decodeSequences` gives it with width 1 (sequence task).
    public static func fileUncertainties(_ scorer: some SpeechScorer, _ examples: [SpeechExample], batchSize: Int = 64) -> [Double] {
        let C = scorer.classes
        var out = [Double](repeating: 0, count: examples.count)
        for batch in SpeechCorpus.orderedBatches(lengths: examples.map(\.features.frames), batchSize: batchSize) {
            if scorer.task == .sequence {
                let decoded = scorer.decodeSequences(batch.map { examples[$0] }, beamWidth: 1).decoded
                for (d, i) in zip(decoded, batch) {
                    out[i] = -log(max(d.probability, .leastNonzeroMagnitude)) / Double(max(d.labels.count, 1))
                }
                continue
            }
            let p = scorer.probabilities(batch.map { examples[$0] }).probabilities
            var row = 0
            for i in batch {
                let rows = scorer.task == .utterance ? 1 : examples[i].features.frames
                var h = 0.0
                for r in row..<(row + rows) { h += entropy(p[(r * C)..<((r + 1) * C)]) }
                out[i] = h / Double(max(rows, 1))
                row += rows
            }
        }
        return out
    }

    /// One group's choice: the factor kept and the mean uncertainty of its files at that factor and at 1.
    public struct Choice: Sendable, Equatable {
        /// The group (speaker, or the path of a file without one).
        public var group: String
        /// The factor kept.
        public var warp: Double
        /// Mean uncertainty (nats) of the group's files at `warp` (`fileUncertainties`).
        public var uncertainty: Double
        /// Mean uncertainty of the group's files unwarped (nil when the grid lacks 1).
        public var unwarpedUncertainty: Double?
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
        let groups = first.map { SpeakerNormalization.group(speaker: $0.speaker, path: $0.path) }
        let uncertainties = candidates.map { fileUncertainties(scorer, $0) }
        let chosen = choose(warps: warps, uncertainties: uncertainties, groups: groups)
        let members = members(of: groups), unit = warps.firstIndex(of: 1)
        let choices = chosen.keys.sorted().map { g in
            Choice(group: g, warp: warps[chosen[g]!], uncertainty: mean(uncertainties[chosen[g]!], files: members[g]!),
                   unwarpedUncertainty: unit.map { mean(uncertainties[$0], files: members[g]!) })
        }
        return (first.indices.map { candidates[chosen[groups[$0]]!][$0] }, choices)
    }
}
