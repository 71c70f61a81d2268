import RecurrentCore

/// Batches for truncated backpropagation through time over B parallel streams (the char-rnn /
/// PTB language-model scheme).
///
/// The N tokens are cut into B contiguous streams of length `L = (N - 1) / B`; stream `b` starts
/// at token `b * L`. Batch `k` of an epoch holds, for each stream `b`,
/// `inputs[b, 0..<S] = tokens[b*L + k*S ..< b*L + k*S + S]` and the targets one token later.
/// So row `b` of batch `k + 1` continues exactly where row `b` of batch `k` ended: the caller
/// carries the hidden state across batches and resets it when `TokenBatch.resetsState` is set
/// (batch 0 of each epoch). An epoch has `L / S` batches; the few tokens left at the end of each
/// stream are not used. After the last batch the batcher wraps to batch 0 of the next epoch.
public struct StreamBatcher: TokenBatcher {
    /// Rows per batch, B.
    public let batchSize: Int
    /// Time steps per row, S.
    public let seqLen: Int
    /// Tokens per stream, `L = (N - 1) / B`.
    public let streamLength: Int
    /// Batches in one epoch, `L / S`.
    public let batchesPerEpoch: Int
    /// Always true: hidden state carries across the batches of an epoch.
    public var carriesState: Bool { true }
    /// The position of the batch `next()` returns.
    public private(set) var position = BatchPosition()

    private let tokens: [Int32]
    private let source: String

    /// A batcher over `tokens` (`[N]`).
    ///
    /// - Parameters:
    ///   - tokens: token ids, `[N]`.
    ///   - batchSize: B, the number of parallel streams (`--batch`).
    ///   - seqLen: S, the truncated-BPTT length (`--seq-len`).
    ///   - source: names the text in error messages (e.g. "training part of input.txt").
    /// - Throws: `TextDataError.invalidSetting` for a size below 1, `.corpusTooShort` (which names
    ///   `--batch` and `--seq-len` and the numbers) when N < B * S + 1.
    public init(tokens: [Int32], batchSize: Int, seqLen: Int, source: String = "text") throws {
        try requirePositive(batchSize, flag: "--batch")
        try requirePositive(seqLen, flag: "--seq-len")
        let (product, overflow) = batchSize.multipliedReportingOverflow(by: seqLen)
        let needed = overflow || product == Int.max ? Int.max : product + 1
        guard tokens.count >= needed else {
            throw TextDataError.corpusTooShort(
                source: source, tokens: tokens.count, batch: batchSize, seqLen: seqLen, needed: needed)
        }
        self.tokens = tokens
        self.source = source
        self.batchSize = batchSize
        self.seqLen = seqLen
        streamLength = (tokens.count - 1) / batchSize
        batchesPerEpoch = streamLength / seqLen
    }

    /// The batch at `position`, then advances; wraps to batch 0 of the next epoch after the
    /// last batch of an epoch.
    public mutating func next() -> TokenBatch {
        let batch = makeBatch(position)
        position.batch += 1
        if position.batch >= batchesPerEpoch {
            position.batch = 0
            position.epoch += 1
        }
        return batch
    }

    /// The batch with index `index` of any epoch (all epochs are the same), without moving.
    ///
    /// - Throws: `TextDataError.positionOutOfRange` unless `0 <= index < batchesPerEpoch`.
    public func batch(at index: Int) throws -> TokenBatch {
        let target = BatchPosition(epoch: position.epoch, batch: index)
        try check(target)
        return makeBatch(target)
    }

    /// Moves to a saved position.
    ///
    /// - Throws: `TextDataError.positionOutOfRange` unless `epoch >= 0` and
    ///   `0 <= batch < batchesPerEpoch`.
    public mutating func seek(to position: BatchPosition) throws {
        try check(position)
        self.position = position
    }

    private func check(_ p: BatchPosition) throws {
        guard p.epoch >= 0, p.batch >= 0, p.batch < batchesPerEpoch else {
            throw TextDataError.positionOutOfRange(
                source: source, epoch: p.epoch, batch: p.batch, batchesPerEpoch: batchesPerEpoch)
        }
    }

    private func makeBatch(_ p: BatchPosition) -> TokenBatch {
        let b = batchSize, s = seqLen, l = streamLength, offset = p.batch * seqLen
        var inputs = [Int32](repeating: 0, count: b * s)
        var targets = [Int32](repeating: 0, count: b * s)
        tokens.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            inputs.withUnsafeMutableBufferPointer { inp in
                targets.withUnsafeMutableBufferPointer { tgt in
                    guard let inBase = inp.baseAddress, let tgBase = tgt.baseAddress else { return }
                    for row in 0..<b {
                        let start = base + row * l + offset
                        (inBase + row * s).update(from: start, count: s)
                        (tgBase + row * s).update(from: start + 1, count: s)
                    }
                }
            }
        }
        return TokenBatch(inputs: inputs, targets: targets, batchSize: b, seqLen: s, position: p,
                          resetsState: p.batch == 0)
    }
}
