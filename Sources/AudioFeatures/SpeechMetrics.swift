import Foundation

/// A run of equal labels: `label` on frames `start..<end`.
public struct LabelRun: Sendable, Equatable {
    /// Class index.
    public var label: Int
    /// First frame.
    public var start: Int
    /// One past the last frame.
    public var end: Int

    /// Creates a run.
    public init(label: Int, start: Int, end: Int) { self.label = label; self.start = start; self.end = end }
}

/// Segment-level scoring of frame-label sequences.
///
/// A label sequence `[frames]` becomes its *segments* by merging every run of equal
/// consecutive labels into one segment and then dropping the silence segments; what is left is
/// the sequence of labelled units (e.g. the digits spoken, in order). The predicted segments
/// are aligned to the reference segments by minimum edit distance (Levenshtein over labels,
/// unit costs), giving substitutions S, deletions D and insertions I against N reference
/// segments. As in HTK's HResults:
///
/// - segment correctness = (N − S − D) / N
/// - segment accuracy    = (N − S − D − I) / N (may be negative when there are many insertions)
///
/// A prediction that flickers to another label for one frame inside a digit therefore costs
/// insertions: segment accuracy measures whether the network's output, read as a sequence of
/// units, is the right sequence.
public enum SegmentScoring {
    /// Maximal runs of equal labels in `labels`.
    public static func runs(_ labels: [Int]) -> [LabelRun] {
        var out: [LabelRun] = []
        for (t, l) in labels.enumerated() {
            if let last = out.last, last.label == l, last.end == t { out[out.count - 1].end = t + 1 }
            else { out.append(LabelRun(label: l, start: t, end: t + 1)) }
        }
        return out
    }

    /// The segment label sequence: runs merged, runs of `silence` dropped.
    public static func segments(_ labels: [Int], silence: Int?) -> [Int] {
        runs(labels).map(\.label).filter { $0 != silence }
    }

    /// Error counts of `hypothesis` against `reference` (sequences of labels).
    public static func align(reference: [Int], hypothesis: [Int]) -> SegmentCounts {
        let n = reference.count, m = hypothesis.count
        // cost[i][j] with back-tracking of (S, D, I) by preferring substitutions, then deletions.
        var cost = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        for i in 0...n { cost[i][0] = i }
        for j in 0...m { cost[0][j] = j }
        if n > 0 && m > 0 {
            for i in 1...n {
                for j in 1...m {
                    let sub = cost[i - 1][j - 1] + (reference[i - 1] == hypothesis[j - 1] ? 0 : 1)
                    cost[i][j] = min(sub, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
                }
            }
        }
        var i = n, j = m, s = 0, d = 0, ins = 0
        while i > 0 || j > 0 {
            if i > 0 && j > 0 && cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] == hypothesis[j - 1] ? 0 : 1) {
                if reference[i - 1] != hypothesis[j - 1] { s += 1 }
                i -= 1; j -= 1
            } else if i > 0 && cost[i][j] == cost[i - 1][j] + 1 {
                d += 1; i -= 1
            } else {
                ins += 1; j -= 1
            }
        }
        return SegmentCounts(reference: n, substitutions: s, deletions: d, insertions: ins)
    }

    /// Scores one utterance's predicted frame labels against its reference frame labels.
    public static func score(reference: [Int], predicted: [Int], silence: Int?) -> SegmentCounts {
        align(reference: segments(reference, silence: silence), hypothesis: segments(predicted, silence: silence))
    }
}

/// Segment error counts (summable over utterances).
public struct SegmentCounts: Sendable, Equatable {
    /// Reference segments N.
    public var reference: Int
    /// Substitutions S.
    public var substitutions: Int
    /// Deletions D.
    public var deletions: Int
    /// Insertions I.
    public var insertions: Int

    /// Creates counts.
    public init(reference: Int = 0, substitutions: Int = 0, deletions: Int = 0, insertions: Int = 0) {
        self.reference = reference; self.substitutions = substitutions; self.deletions = deletions; self.insertions = insertions
    }

    /// Sum of two counts.
    public static func + (a: SegmentCounts, b: SegmentCounts) -> SegmentCounts {
        SegmentCounts(reference: a.reference + b.reference, substitutions: a.substitutions + b.substitutions,
                      deletions: a.deletions + b.deletions, insertions: a.insertions + b.insertions)
    }

    /// (N − S − D − I) / N, 0 when N = 0.
    public var accuracy: Double {
        reference > 0 ? Double(reference - substitutions - deletions - insertions) / Double(reference) : 0
    }
    /// (N − S − D) / N, 0 when N = 0.
    public var correctness: Double {
        reference > 0 ? Double(reference - substitutions - deletions) / Double(reference) : 0
    }
}
