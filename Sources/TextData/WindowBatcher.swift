import RecurrentCore

/// Batches of independent windows (`--batching windows`): every window of S tokens at stride 1,
/// `inputs = tokens[i ..< i+S]`, `targets = tokens[i+1 ... i+S]`, for `i` in `0 ..< N - S`,
/// each run from a zero hidden state.
///
/// Each epoch visits every window exactly once, in an order shuffled by `SeededRandom`: epoch `e`
/// uses `SeededRandom(seed: seed ^ (e &* 0xD1B5_4A32_D192_ED03))` to shuffle `[0, 1, …, N-S-1]`,
/// so epoch 0 is `SeededRandom(seed: seed)` itself and any position can be rebuilt from
/// `(seed, epoch)` when resuming. Windows fill batches of B rows in that order; the last batch of
/// an epoch holds the remainder. B = 0 puts all windows in one batch. A B larger than the number
/// of windows gives one batch of all of them.
public struct WindowBatcher: TokenBatcher {
    /// Largest `windows × seqLen` that `--batch 0` may put in one batch (2^26 tokens, 256 MiB per
    /// array of `Int32`).
    public static let defaultMaxBatchTokens = 1 << 26

    /// Rows per full batch (B, or the number of windows when B = 0 or B exceeds it).
    public let batchSize: Int
    /// Time steps per row, S.
    public let seqLen: Int
    /// Number of windows, `N - S`.
    public let windowCount: Int
    /// Batches in one epoch, `ceil(windowCount / batchSize)`.
    public let batchesPerEpoch: Int
    /// The seed the shuffles derive from.
    public let seed: UInt64
    /// Always false: every window starts from a zero hidden state.
    public var carriesState: Bool { false }
    /// The position of the batch `next()` returns.
    public private(set) var position = BatchPosition()

    private let tokens: [Int32]
    private let source: String
    private var order: [Int32] = []
    private var orderEpoch = -1

    /// A batcher over `tokens` (`[N]`).
    ///
    /// - Parameters:
    ///   - tokens: token ids, `[N]`.
    ///   - batchSize: B windows per batch (`--batch`); 0 = all windows in one batch.
    ///   - seqLen: S, the window length (`--seq-len`).
    ///   - seed: seed of the per-epoch shuffles.
    ///   - source: names the text in error messages.
    ///   - maxBatchTokens: bound on `windows × seqLen` for B = 0.
    /// - Throws: `TextDataError.invalidSetting` for B < 0 or S < 1, `.tooShortForWindow` when
    ///   N < S + 1, `.tooManyWindowsForOneBatch` when B = 0 would exceed `maxBatchTokens`.
    public init(tokens: [Int32], batchSize: Int, seqLen: Int, seed: UInt64 = 1, source: String = "text",
                maxBatchTokens: Int = WindowBatcher.defaultMaxBatchTokens) throws {
        try requirePositive(batchSize, flag: "--batch", allowZero: true)
        try requirePositive(seqLen, flag: "--seq-len")
        guard tokens.count > seqLen else {
            throw TextDataError.tooShortForWindow(source: source, tokens: tokens.count, seqLen: seqLen)
        }
        let windows = tokens.count - seqLen
        if batchSize == 0 {
            let (total, overflow) = windows.multipliedReportingOverflow(by: seqLen)
            if overflow || total > maxBatchTokens {
                throw TextDataError.tooManyWindowsForOneBatch(
                    source: source, windows: windows, seqLen: seqLen, limit: maxBatchTokens)
            }
        }
        guard windows <= Int(Int32.max) else {
            throw TextDataError.invalidSetting(flag: "--batching", value: "windows",
                                               reason: "\(source) has more windows than \(Int32.max)")
        }
        self.tokens = tokens
        self.source = source
        self.seqLen = seqLen
        self.seed = seed
        windowCount = windows
        self.batchSize = batchSize == 0 ? windows : min(batchSize, windows)
        batchesPerEpoch = (windows + self.batchSize - 1) / self.batchSize
    }

    /// The window start offsets of epoch `epoch` in visiting order, `[windowCount]`.
    public func windowOrder(epoch: Int) -> [Int32] {
        var rng = SeededRandom(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        var order = [Int32](unsafeUninitializedCapacity: windowCount) { buffer, initialized in
            for i in 0..<windowCount { buffer[i] = Int32(i) }
            initialized = windowCount
        }
        rng.shuffle(&order)
        return order
    }

    /// The batch at `position`, then advances; wraps to batch 0 of the next epoch (a new
    /// shuffle) after the last batch of an epoch.
    public mutating func next() -> TokenBatch {
        let batch = batch(position)
        position.batch += 1
        if position.batch >= batchesPerEpoch {
            position.batch = 0
            position.epoch += 1
        }
        return batch
    }

    /// Moves to a saved position.
    ///
    /// - Throws: `TextDataError.positionOutOfRange` unless `epoch >= 0` and
    ///   `0 <= batch < batchesPerEpoch`.
    public mutating func seek(to position: BatchPosition) throws {
        guard position.epoch >= 0, position.batch >= 0, position.batch < batchesPerEpoch else {
            throw TextDataError.positionOutOfRange(
                source: source, epoch: position.epoch, batch: position.batch, batchesPerEpoch: batchesPerEpoch)
        }
        self.position = position
    }

    private mutating func batch(_ p: BatchPosition) -> TokenBatch {
        if orderEpoch != p.epoch {
            order = windowOrder(epoch: p.epoch)
            orderEpoch = p.epoch
        }
        let first = p.batch * batchSize
        let rows = min(batchSize, windowCount - first)
        let s = seqLen
        var inputs = [Int32](repeating: 0, count: rows * s)
        var targets = [Int32](repeating: 0, count: rows * s)
        tokens.withUnsafeBufferPointer { src in
            order.withUnsafeBufferPointer { ord in
                inputs.withUnsafeMutableBufferPointer { inp in
                    targets.withUnsafeMutableBufferPointer { tgt in
                        guard let base = src.baseAddress, let inBase = inp.baseAddress,
                              let tgBase = tgt.baseAddress else { return }
                        for row in 0..<rows {
                            let start = base + Int(ord[first + row])
                            (inBase + row * s).update(from: start, count: s)
                            (tgBase + row * s).update(from: start + 1, count: s)
                        }
                    }
                }
            }
        }
        return TokenBatch(inputs: inputs, targets: targets, batchSize: rows, seqLen: s, position: p, resetsState: true)
    }
}
