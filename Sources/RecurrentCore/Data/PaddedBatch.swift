/// The labels of a padded batch: none, one class per sequence, or one class per step.
public enum SequenceLabels: Sendable {
    /// Prediction only.
    case none
    /// `[batch]` classes (many-to-one).
    case perSequence([Int32])
    /// `[batch][length_i]` classes (many-to-many); padded steps get class 0 (ignored by the loss).
    case perStep([[Int32]])
}

extension SequenceBatch {
    /// Pads variable-length sequences into one `[batch, time, features]` batch, `time` being
    /// the longest length; padded steps are zeros. A sequence of no step counts as one zero
    /// step (lengths must be at least 1).
    /// - Parameters:
    ///   - sequences: `[batch]` sequences, each row-major `[length_i, features]`.
    ///   - features: values per step.
    ///   - labels: none, `[batch]` or `[batch][length_i]` (steps past `time` are dropped).
    public init(padding sequences: [[Float]], features: Int, labels: SequenceLabels = .none) {
        precondition(features >= 1 && sequences.allSatisfy { $0.count % features == 0 }, "sequences must be [length, \(features)]")
        let B = sequences.count, F = features
        let lengths = sequences.map { max(1, $0.count / F) }
        let T = lengths.max() ?? 1
        var x = [Float](repeating: 0, count: B * T * F)
        x.withUnsafeMutableBufferPointer { xb in
            guard let xp = xb.baseAddress else { return }
            for (b, s) in sequences.enumerated() {
                s.withUnsafeBufferPointer { src in
                    if let p = src.baseAddress { (xp + b * T * F).update(from: p, count: src.count) }
                }
            }
        }
        var y: [Int32] = []
        switch labels {
        case .none: break
        case let .perSequence(l):
            precondition(l.count == B, "per-sequence labels must be [batch]")
            y = l
        case let .perStep(l):
            precondition(l.count == B, "per-step labels must be [batch][length]")
            y = [Int32](repeating: 0, count: B * T)
            for (b, row) in l.enumerated() { for t in 0..<min(row.count, T) { y[b * T + t] = row[t] } }
        }
        self.init(inputs: x, batch: B, time: T, features: F, lengths: lengths, labels: y)
    }
}
