/// Where a batch source stands: the epoch and the index of the next batch within it. Saved in
/// the resume file so training continues with the batch that would have come next.
public struct BatchPosition: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Zero-based epoch.
    public var epoch: Int
    /// Zero-based batch index within the epoch.
    public var batch: Int

    /// A position; the default is the very start.
    public init(epoch: Int = 0, batch: Int = 0) {
        self.epoch = epoch
        self.batch = batch
    }

    /// `"epoch 2, batch 17"`.
    public var description: String { "epoch \(epoch), batch \(batch)" }
}

/// A deterministic, seekable sequence of training batches: the same position always gives the
/// same batch (any shuffling is seeded by the epoch), so a resumed run sees what an
/// uninterrupted one would have.
public protocol BatchSource<Batch> {
    /// What `next()` returns.
    associatedtype Batch
    /// Batches in one epoch (at least 1).
    var batchesPerEpoch: Int { get }
    /// The position of the batch `next()` returns.
    var position: BatchPosition { get }
    /// The batch at `position`, then advances (to batch 0 of the next epoch after the last).
    mutating func next() -> Batch
    /// Moves to a saved position.
    /// - Throws: an error naming the data when the position does not fit it.
    mutating func seek(to position: BatchPosition) throws
}
