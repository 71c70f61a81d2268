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
/// log-probability per label of its decoded label sequence (sequence task). A factor other
/// than 1 is kept only when the files' improvement over the unwarped features is significant
/// (`decide`: a one-sided paired t-test at 5 %, Bonferroni-corrected for the grid's other
/// factors): the lowest of eight means is lower than the unwarped one by chance alone, and a
/// choice on no real difference changes a speaker's results at random. Frame entropies
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

    /// One group's decision: the factor with the lowest mean uncertainty, the paired test of it
    /// against the unwarped features, and the factor kept.
    public struct Decision: Sendable, Equatable {
        /// Index into `warps` of the factor kept.
        public var chosen: Int
        /// Index of the factor with the lowest mean uncertainty (ties: nearest 1, then the smaller).
        public var lowest: Int
        /// Paired t statistic of the files' uncertainty unwarped minus at `lowest` (nil when the
        /// lowest is 1, the grid lacks 1, or the group has one file); +infinity when every file
        /// improves by the same amount.
        public var t: Double?
        /// The t a factor other than 1 needs (`criticalT`; nil where no test applies).
        public var critical: Double?
    }

    /// For each group, the factor to keep: the one with the lowest mean uncertainty over the
    /// group's files, if that is 1 or the grid lacks 1; otherwise that factor only when the
    /// paired differences (each file's uncertainty unwarped minus warped) have a t statistic of
    /// at least `criticalT(degrees: files − 1, alternatives: warps − 1, alpha:)`, else 1. A group
    /// of one file keeps 1 (no test is possible). Ties within 1e-12 nats go to the factor
    /// nearest 1, then the smaller.
    /// - Parameters:
    ///   - uncertainties: for each factor of `warps`, each file's uncertainty (`fileUncertainties`),
    ///     the files in the order of `groups`.
    ///   - groups: each file's group.
    ///   - alpha: the test's one-sided level before the correction for the other factors.
    public static func decide(warps: [Double], uncertainties: [[Double]], groups: [String], alpha: Double = 0.05) -> [String: Decision] {
        precondition(!warps.isEmpty && uncertainties.count == warps.count, "one uncertainty list per factor")
        precondition(uncertainties.allSatisfy { $0.count == groups.count }, "one uncertainty per file under every factor")
        let order = warps.indices.sorted { (abs(warps[$0] - 1), warps[$0]) < (abs(warps[$1] - 1), warps[$1]) }
        let unit = warps.firstIndex(of: 1)
        var decisions: [String: Decision] = [:]
        for (g, files) in members(of: groups) {
            var best = order[0], lowest = Double.infinity
            for w in order {
                let h = mean(uncertainties[w], files: files)
                if h < lowest - 1e-12 { best = w; lowest = h }
            }
            guard let u = unit, best != u else {
                decisions[g] = Decision(chosen: best, lowest: best, t: nil, critical: nil)
                continue
            }
            guard files.count > 1 else {
                decisions[g] = Decision(chosen: u, lowest: best, t: nil, critical: nil)
                continue
            }
            let t = pairedT(files.map { uncertainties[u][$0] - uncertainties[best][$0] })
            let critical = criticalT(degrees: files.count - 1, alternatives: warps.count - 1, alpha: alpha)
            decisions[g] = Decision(chosen: t >= critical ? best : u, lowest: best, t: t, critical: critical)
        }
        return decisions
    }

    /// The t statistic of the mean of `d` against 0: mean / (sample standard deviation / √n);
    /// +infinity (or 0) when every entry is the same positive number (or not positive), up to
    /// rounding. Needs n ≥ 2.
    public static func pairedT(_ d: [Double]) -> Double {
        precondition(d.count > 1, "a paired t statistic needs two or more differences")
        let n = Double(d.count), m = d.reduce(0, +) / n
        let variance = d.reduce(0.0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)
        if variance <= m * m * 1e-24 { return m > 0 ? .infinity : 0 }  // the same number, up to rounding
        return m / (variance / n).squareRoot()
    }

    /// The t a one-sided test with `degrees` degrees of freedom needs to reject at level `alpha`
    /// divided among `alternatives` comparisons (Bonferroni): the value whose Student-t upper
    /// tail is alpha / alternatives. E.g. 2.45 for 499 degrees and 7 alternatives at 5 %.
    public static func criticalT(degrees: Int, alternatives: Int, alpha: Double = 0.05) -> Double {
        precondition(degrees > 0 && alternatives > 0 && alpha > 0 && alpha < 1)
        let target = alpha / Double(alternatives)
        var lo = 0.0, hi = 1.0
        while studentUpperTail(hi, degrees: Double(degrees)) > target { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if studentUpperTail(mid, degrees: Double(degrees)) > target { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// P(T > t) for Student's t with `degrees` degrees of freedom, t ≥ 0:
    /// ½ I_x(ν/2, ½) with x = ν / (ν + t²), I the regularised incomplete beta function.
    public static func studentUpperTail(_ t: Double, degrees nu: Double) -> Double {
        precondition(t >= 0 && nu > 0)
        if t.isInfinite { return 0 }
        return 0.5 * incompleteBeta(a: nu / 2, b: 0.5, x: nu / (nu + t * t))
    }

    /// The regularised incomplete beta function I_x(a, b), by its continued fraction (evaluated
    /// by the modified Lentz method) on the side of x where it converges fast.
    static func incompleteBeta(a: Double, b: Double, x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logGammas: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let front = exp(logGammas + a * log(x) + b * log(1 - x))
        if x < (a + 1) / (a + b + 2) { return front * betaFraction(a: a, b: b, x: x) / a }
        return 1 - front * betaFraction(a: b, b: a, x: 1 - x) / b
    }

    /// The continued fraction of I_x(a, b) (1/(1+ d1/(1+ d2/(1+ …))) with the even and odd
    /// coefficients d(2m) = m(b−m)x / ((a+2m−1)(a+2m)), d(2m+1) = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1))).
    static func betaFraction(a: Double, b: Double, x: Double) -> Double {
        let tiny = 1e-300
        func guarded(_ v: Double) -> Double { abs(v) < tiny ? tiny : v }
        var c = 1.0, d = 1 / guarded(1 - (a + b) * x / (a + 1)), f = d
        for m in 1...500 {
            let m = Double(m)
            let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            for coefficient in [even, odd] {
                d = 1 / guarded(1 + coefficient * d)
                c = guarded(1 + coefficient / c)
                f *= c * d
            }
            if abs(c * d - 1) < 1e-15 { break }
        }
        return f
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

    /// One group's choice: the factor kept, the factor with the lowest mean uncertainty and its
    /// test against the unwarped features (`decide`), with the mean uncertainties.
    public struct Choice: Sendable, Equatable {
        /// The group (speaker, or the path of a file without one).
        public var group: String
        /// The factor kept.
        public var warp: Double
        /// Mean uncertainty (nats) of the group's files at `warp` (`fileUncertainties`).
        public var uncertainty: Double
        /// Mean uncertainty of the group's files unwarped (nil when the grid lacks 1).
        public var unwarpedUncertainty: Double?
        /// The factor with the lowest mean uncertainty and that mean.
        public var lowestWarp: Double
        public var lowestUncertainty: Double
        /// The paired t statistic of `lowestWarp` against 1 and the t it needed (`Decision`).
        public var t: Double?
        public var critical: Double?
    }

    /// Adapts `examples` as computed under each factor of `warps` (`candidates[w]`, the same
    /// files in the same order under each): every file takes its version from the factor kept
    /// for its group (`decide`), scored with `scorer`.
    /// - Returns: the adapted examples (input order) and the choice of every group, by name.
    public static func adapt(_ scorer: some SpeechScorer, warps: [Double], candidates: [[SpeechExample]])
        -> (examples: [SpeechExample], choices: [Choice]) {
        precondition(candidates.count == warps.count && !warps.isEmpty, "one example list per factor")
        let first = candidates[0]
        precondition(candidates.allSatisfy { $0.map(\.path) == first.map(\.path) }, "the same files under every factor")
        let groups = first.map { SpeakerNormalization.group(speaker: $0.speaker, path: $0.path) }
        let uncertainties = candidates.map { fileUncertainties(scorer, $0) }
        let decisions = decide(warps: warps, uncertainties: uncertainties, groups: groups)
        let members = members(of: groups), unit = warps.firstIndex(of: 1)
        let choices = decisions.keys.sorted().map { g in
            let d = decisions[g]!, files = members[g]!
            return Choice(group: g, warp: warps[d.chosen], uncertainty: mean(uncertainties[d.chosen], files: files),
                          unwarpedUncertainty: unit.map { mean(uncertainties[$0], files: files) },
                          lowestWarp: warps[d.lowest], lowestUncertainty: mean(uncertainties[d.lowest], files: files),
                          t: d.t, critical: d.critical)
        }
        return (first.indices.map { candidates[decisions[groups[$0]]!.chosen][$0] }, choices)
    }
}
