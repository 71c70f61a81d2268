import RecurrentCore
import Testing
@testable import Seq2Seq

@Test func batchLayoutAndMasksByHand() throws {
    // Two pairs: source [5 6 7] / target [8 9], source [4] / target [10 11 12].
    let pairs = [EncodedPair(source: [5, 6, 7], target: [8, 9]), EncodedPair(source: [4], target: [10, 11, 12])]
    let batches = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(batchSize: 8))
    #expect(batches.count == 1)
    let b = batches[0]
    #expect(b.batchSize == 2 && b.sourceLength == 3 && b.targetLength == 4)
    #expect(b.sourceIDs == [5, 6, 7,
                            4, 0, 0])
    #expect(b.sourceLengths == [3, 1])
    // <s> = 2, </s> = 3, <pad> = 0.
    #expect(b.decoderInput == [2, 8, 9, 0,
                               2, 10, 11, 12])
    #expect(b.decoderTarget == [8, 9, 3, 0,
                                10, 11, 12, 3])
    #expect(b.targetMask == [1, 1, 1, 0,
                             1, 1, 1, 1])
    #expect(b.targetLengths == [3, 4])
    #expect(b.pairIndices == [0, 1])
}

/// Pairs with source length 1 … 12 repeating, target = source reversed plus one token.
func samplePairs(_ n: Int) -> [EncodedPair] {
    (0..<n).map { i in
        let len = i % 12 + 1
        let src = (0..<len).map { 4 + (i + $0) % 20 }
        return EncodedPair(source: src, target: src.reversed() + [30])
    }
}

@Test func batchesCoverEveryPairOnceWithConsistentShapes() throws {
    let pairs = samplePairs(103)
    let options = BatchingOptions(batchSize: 10, shuffleSeed: 3)
    let batches = try Seq2SeqBatcher.batches(pairs, options: options)
    #expect(batches.count == 11)
    #expect(batches.map(\.batchSize) == Array(repeating: 10, count: 10) + [3])
    let indices = batches.flatMap(\.pairIndices)
    #expect(indices.sorted() == Array(0..<103))
    #expect(indices != Array(0..<103), "shuffled")
    #expect(try Seq2SeqBatcher.batches(pairs, options: options) == batches, "deterministic per seed")
    for b in batches {
        #expect(b.sourceIDs.count == b.batchSize * b.sourceLength)
        #expect(b.decoderInput.count == b.batchSize * b.targetLength)
        #expect(b.targetMask.count == b.batchSize * b.targetLength)
        for (row, i) in b.pairIndices.enumerated() {
            let p = pairs[i]
            let srcRow = Array(b.sourceIDs[(row * b.sourceLength)..<((row + 1) * b.sourceLength)])
            #expect(srcRow == p.source + Array(repeating: 0, count: b.sourceLength - p.source.count))
            let maskRow = b.targetMask[(row * b.targetLength)..<((row + 1) * b.targetLength)]
            #expect(maskRow.reduce(0, +) == Float(p.target.count + 1))
            #expect(b.decoderTarget[row * b.targetLength + p.target.count] == Vocabulary.endID)
        }
    }
}

@Test func bucketSortingGroupsSimilarLengths() throws {
    let pairs = samplePairs(120)
    let plain = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(batchSize: 10, shuffleSeed: 1))
    let sorted = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(batchSize: 10, shuffleSeed: 1, sortBucketSize: 120))
    #expect(sorted.flatMap(\.pairIndices).sorted() == Array(0..<120))
    // Within one bucket of all pairs, each batch holds at most 2 distinct source lengths
    // (10 pairs of each length), so the padded source cells are far fewer.
    for b in sorted { #expect(Set(b.sourceLengths).count <= 2) }
    let padding = { (bs: [Seq2SeqBatch]) in bs.reduce(0) { $0 + $1.batchSize * $1.sourceLength - $1.sourceLengths.reduce(0, +) } }
    #expect(padding(sorted) < padding(plain))
    // Batch order is shuffled after sorting: lengths are not in increasing order.
    #expect(sorted.map { $0.sourceLengths.max()! } != sorted.map { $0.sourceLengths.max()! }.sorted())
}

@Test func lengthLimitsAndBadSettingsAreErrors() {
    let pairs = [EncodedPair(source: [4, 5], target: [6]), EncodedPair(source: [4, 5, 6, 7], target: [6])]
    #expect(throws: BatchError.sourceTooLong(pair: 1, length: 4, maximum: 3)) {
        _ = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(maxSourceLength: 3))
    }
    #expect(throws: BatchError.targetTooLong(pair: 2, length: 3, maximum: 2)) {
        _ = try Seq2SeqBatcher.batches(pairs + [EncodedPair(source: [4], target: [5, 6, 7])], options: BatchingOptions(maxTargetLength: 2))
    }
    #expect(throws: BatchError.invalidSettings("maximum target length 0 is below 1")) {
        _ = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(maxTargetLength: 0))
    }
    #expect(throws: BatchError.emptySequence(pair: 0, side: "target")) {
        _ = try Seq2SeqBatcher.batches([EncodedPair(source: [4], target: [])], options: BatchingOptions())
    }
    #expect(throws: BatchError.self) { _ = try Seq2SeqBatcher.batches(pairs, options: BatchingOptions(batchSize: 0)) }
    #expect(BatchError.sourceTooLong(pair: 1, length: 4, maximum: 3).description == "pair 1: source has 4 tokens, more than the maximum of 3")
}
