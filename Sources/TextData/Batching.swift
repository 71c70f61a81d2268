import RecurrentCore

/// How training text is cut into batches.
public enum BatchingMode: String, Codable, Sendable, CaseIterable {
    /// `StreamBatcher`: B parallel streams, truncated backpropagation through time, hidden state
    /// carried from one batch to the next (the default).
    case streams
    /// `WindowBatcher`: every window of S tokens, each from a zero state, shuffled.
    case windows
}

/// One batch of token ids: inputs and next-token targets, both `[batchSize, seqLen]`
/// row-major (row `b` is sequence `b`; `targets[b, t]` is the token after `inputs[b, t]`).
public struct TokenBatch: Sendable, Equatable, TrainingBatch {
    /// Input ids, flat `[batchSize, seqLen]`.
    public let inputs: [Int32]
    /// Target ids, flat `[batchSize, seqLen]`.
    public let targets: [Int32]
    /// Rows in this batch (the last window batch of an epoch may have fewer than asked for).
    public let batchSize: Int
    /// Time steps per row.
    public let seqLen: Int
    /// The position this batch was taken from.
    public let position: BatchPosition
    /// Whether the caller must start this batch from a zero hidden state: always for window
    /// batches; for stream batches at the first batch of each epoch.
    public let resetsState: Bool

    /// Tokens in the batch, `batchSize * seqLen` (the throughput unit).
    public var itemCount: Int { inputs.count }

    /// Input id at row `b`, step `t`.
    public func input(_ b: Int, _ t: Int) -> Int32 { inputs[b * seqLen + t] }
    /// Target id at row `b`, step `t`.
    public func target(_ b: Int, _ t: Int) -> Int32 { targets[b * seqLen + t] }
}

/// Common interface of `StreamBatcher` and `WindowBatcher`, so training code can hold either;
/// both are `BatchSource`s of the training engine (`BatchPosition` is the engine's).
public protocol TokenBatcher: BatchSource, Sendable where Batch == TokenBatch {
    /// Rows per full batch.
    var batchSize: Int { get }
    /// Time steps per row.
    var seqLen: Int { get }
    /// Batches in one epoch.
    var batchesPerEpoch: Int { get }
    /// Whether hidden state carries from one batch to the next within an epoch.
    var carriesState: Bool { get }
    /// The position of the batch `next()` returns.
    var position: BatchPosition { get }
    /// The batch at `position`, then advances (to batch 0 of the next epoch after the last).
    mutating func next() -> TokenBatch
    /// Moves to a saved position (e.g. from a checkpoint).
    ///
    /// - Throws: `TextDataError.positionOutOfRange` when it does not fit this batcher.
    mutating func seek(to position: BatchPosition) throws
}

/// Checks a batch or sequence size given by the user.
func requirePositive(_ value: Int, flag: String, allowZero: Bool = false) throws {
    if value > 0 || (allowZero && value == 0) { return }
    throw TextDataError.invalidSetting(
        flag: flag, value: "\(value)", reason: allowZero ? "must be 0 or more" : "must be at least 1")
}
