import RecurrentCore

/// A source / target pair as token ids (no `<s>` / `</s>` added).
public struct EncodedPair: Sendable, Equatable {
    /// Source ids, `[srcLen]`.
    public var source: [Int]
    /// Target ids, `[tgtLen]`.
    public var target: [Int]

    /// Creates a pair of id sequences.
    public init(source: [Int], target: [Int]) {
        self.source = source
        self.target = target
    }
}

/// Errors making batches.
public enum BatchError: Error, CustomStringConvertible, Equatable {
    /// A source is longer than the allowed maximum.
    case sourceTooLong(pair: Int, length: Int, maximum: Int)
    /// A target is longer than the allowed maximum.
    case targetTooLong(pair: Int, length: Int, maximum: Int)
    /// A source or target has no tokens.
    case emptySequence(pair: Int, side: String)
    /// Settings that cannot be used (batch size below 1 …).
    case invalidSettings(String)

    /// One line saying which pair is wrong and how.
    public var description: String {
        switch self {
        case let .sourceTooLong(pair, length, maximum):
            return "pair \(pair): source has \(length) tokens, more than the maximum of \(maximum)"
        case let .targetTooLong(pair, length, maximum):
            return "pair \(pair): target has \(length) tokens, more than the maximum of \(maximum)"
        case let .emptySequence(pair, side):
            return "pair \(pair): the \(side) has no tokens"
        case let .invalidSettings(why):
            return "batching settings: \(why)"
        }
    }
}

/// One padded batch for an encoder-decoder model (row-major, batch first).
///
/// For a target `y1 … yn` the decoder input row is `<s> y1 … yn` and the decoder target row is
/// `y1 … yn </s>`, both `n + 1` long and padded with `<pad>` (id 0) to `targetLength`.
public struct Seq2SeqBatch: Sendable, Equatable {
    /// Number of pairs (rows).
    public var batchSize: Int
    /// Longest source in the batch (columns of `sourceIDs`).
    public var sourceLength: Int
    /// Longest target in the batch plus one (columns of the decoder arrays).
    public var targetLength: Int
    /// Source ids padded with 0, `[batch, sourceLength]`.
    public var sourceIDs: [Int]
    /// Real source lengths, `[batch]`.
    public var sourceLengths: [Int]
    /// Decoder inputs `<s> y1 … yn` padded with 0, `[batch, targetLength]`.
    public var decoderInput: [Int]
    /// Decoder targets `y1 … yn </s>` padded with 0, `[batch, targetLength]`.
    public var decoderTarget: [Int]
    /// 1 at real decoder positions, 0 at padding, `[batch, targetLength]`.
    public var targetMask: [Float]
    /// Real decoder lengths `n + 1`, `[batch]`.
    public var targetLengths: [Int]
    /// Index of each row's pair in the input array, `[batch]`.
    public var pairIndices: [Int]
}

/// Settings of `Seq2SeqBatcher`.
public struct BatchingOptions: Sendable, Equatable {
    /// Pairs per batch (the last batch may be smaller).
    public var batchSize: Int
    /// Longest allowed source, in tokens.
    public var maxSourceLength: Int
    /// Longest allowed target, in tokens (without the added `<s>` / `</s>`).
    public var maxTargetLength: Int
    /// Shuffle seed; `nil` keeps the input order.
    public var shuffleSeed: UInt64?
    /// When set, pairs are cut (after shuffling) into buckets of this many pairs and sorted by
    /// source length (then target length) inside each bucket, so batches hold similar lengths;
    /// with a seed the batch order is shuffled afterwards.
    public var sortBucketSize: Int?

    /// Creates settings; defaults: 64 pairs, lengths up to 100, input order, no sorting.
    public init(batchSize: Int = 64, maxSourceLength: Int = 100, maxTargetLength: Int = 100,
                shuffleSeed: UInt64? = nil, sortBucketSize: Int? = nil) {
        self.batchSize = batchSize
        self.maxSourceLength = maxSourceLength
        self.maxTargetLength = maxTargetLength
        self.shuffleSeed = shuffleSeed
        self.sortBucketSize = sortBucketSize
    }
}

/// Makes padded batches from encoded pairs.
public enum Seq2SeqBatcher {
    /// Checks every pair against the limits, then cuts them into batches.
    ///
    /// Throws `BatchError` for an empty or too long source / target (naming the pair index)
    /// or unusable settings; no batch is made then.
    public static func batches(_ pairs: [EncodedPair], options: BatchingOptions) throws(BatchError) -> [Seq2SeqBatch] {
        if options.batchSize < 1 { throw .invalidSettings("batch size \(options.batchSize) is below 1") }
        if options.maxSourceLength < 1 { throw .invalidSettings("maximum source length \(options.maxSourceLength) is below 1") }
        if options.maxTargetLength < 1 { throw .invalidSettings("maximum target length \(options.maxTargetLength) is below 1") }
        if let b = options.sortBucketSize, b < 1 { throw .invalidSettings("sort bucket size \(b) is below 1") }
        for (i, pair) in pairs.enumerated() {
            if pair.source.isEmpty { throw .emptySequence(pair: i, side: "source") }
            if pair.target.isEmpty { throw .emptySequence(pair: i, side: "target") }
            if pair.source.count > options.maxSourceLength {
                throw .sourceTooLong(pair: i, length: pair.source.count, maximum: options.maxSourceLength)
            }
            if pair.target.count > options.maxTargetLength {
                throw .targetTooLong(pair: i, length: pair.target.count, maximum: options.maxTargetLength)
            }
        }
        var order = Array(pairs.indices)
        var rng = options.shuffleSeed.map { SeededRandom(seed: $0) }
        if rng != nil { rng!.shuffle(&order) }
        if let bucket = options.sortBucketSize {
            var start = 0
            while start < order.count {
                let end = min(order.count, start + bucket)
                order[start..<end].sort {
                    let a = pairs[$0], b = pairs[$1]
                    if a.source.count != b.source.count { return a.source.count < b.source.count }
                    if a.target.count != b.target.count { return a.target.count < b.target.count }
                    return $0 < $1
                }
                start = end
            }
        }
        var result: [Seq2SeqBatch] = []
        result.reserveCapacity((order.count + options.batchSize - 1) / options.batchSize)
        var start = 0
        while start < order.count {
            let end = min(order.count, start + options.batchSize)
            result.append(makeBatch(pairs, rows: Array(order[start..<end])))
            start = end
        }
        if options.sortBucketSize != nil, rng != nil { rng!.shuffle(&result) }
        return result
    }

    /// One batch of the given pairs (by index), in that row order. Lengths are not checked.
    public static func makeBatch(_ pairs: [EncodedPair], rows: [Int]) -> Seq2SeqBatch {
        let b = rows.count
        var srcLen = 0, tgtLen = 0
        for r in rows {
            srcLen = max(srcLen, pairs[r].source.count)
            tgtLen = max(tgtLen, pairs[r].target.count + 1)
        }
        var sourceIDs = [Int](repeating: Vocabulary.padID, count: b * srcLen)
        var decoderInput = [Int](repeating: Vocabulary.padID, count: b * tgtLen)
        var decoderTarget = [Int](repeating: Vocabulary.padID, count: b * tgtLen)
        var mask = [Float](repeating: 0, count: b * tgtLen)
        var sourceLengths = [Int](repeating: 0, count: b)
        var targetLengths = [Int](repeating: 0, count: b)
        sourceIDs.withUnsafeMutableBufferPointer { src in
        decoderInput.withUnsafeMutableBufferPointer { din in
        decoderTarget.withUnsafeMutableBufferPointer { dout in
        mask.withUnsafeMutableBufferPointer { m in
            for (row, r) in rows.enumerated() {
                let pair = pairs[r]
                pair.source.withUnsafeBufferPointer { s in
                    let base = row * srcLen
                    for t in 0..<s.count { src[base + t] = s[t] }
                }
                pair.target.withUnsafeBufferPointer { y in
                    let base = row * tgtLen
                    din[base] = Vocabulary.startID
                    for t in 0..<y.count {
                        din[base + t + 1] = y[t]
                        dout[base + t] = y[t]
                    }
                    dout[base + y.count] = Vocabulary.endID
                    for t in 0...y.count { m[base + t] = 1 }
                }
                sourceLengths[row] = pair.source.count
                targetLengths[row] = pair.target.count + 1
            }
        }}}}
        return Seq2SeqBatch(batchSize: b, sourceLength: srcLen, targetLength: tgtLen,
                            sourceIDs: sourceIDs, sourceLengths: sourceLengths,
                            decoderInput: decoderInput, decoderTarget: decoderTarget,
                            targetMask: mask, targetLengths: targetLengths, pairIndices: rows)
    }
}
