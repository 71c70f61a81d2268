import Foundation
import RecurrentCore
import Testing
@testable import TextData

/// Token ids equal to their positions, so every batch entry says where it came from.
private func positions(_ n: Int) -> [Int32] { (0..<n).map(Int32.init) }

@Suite struct StreamBatcherTests {
    @Test func batchesMatchHandComputedLayout() throws {
        // N = 23, B = 3, S = 2: L = 22 / 3 = 7, streams start at 0, 7, 14; 7 / 2 = 3 batches.
        var batcher = try StreamBatcher(tokens: positions(23), batchSize: 3, seqLen: 2)
        #expect(batcher.streamLength == 7)
        #expect(batcher.batchesPerEpoch == 3)
        let b0 = batcher.next()
        #expect(b0.inputs == [0, 1, 7, 8, 14, 15])
        #expect(b0.targets == [1, 2, 8, 9, 15, 16])
        #expect(b0.resetsState && b0.position == BatchPosition(epoch: 0, batch: 0))
        let b1 = batcher.next()
        #expect(b1.inputs == [2, 3, 9, 10, 16, 17])
        #expect(b1.targets == [3, 4, 10, 11, 17, 18])
        #expect(!b1.resetsState)
        let b2 = batcher.next()
        #expect(b2.inputs == [4, 5, 11, 12, 18, 19])
        #expect(b2.targets == [5, 6, 12, 13, 19, 20])
    }

    @Test func streamsContinueAcrossBatchesAndWrapAtEpochEnd() throws {
        // Arbitrary token values: continuity must hold for the data, not just for positions.
        var rng = SeededRandom(seed: 42)
        let tokens = (0..<1000).map { _ in Int32(rng.nextInt(below: 50)) }
        let (b, s) = (4, 7)
        var batcher = try StreamBatcher(tokens: tokens, batchSize: b, seqLen: s)
        let l = 999 / 4
        #expect(batcher.streamLength == l && batcher.batchesPerEpoch == l / s)
        var previous = batcher.next()
        var seen = [[Int32]](repeating: [], count: b)
        for row in 0..<b { seen[row] += previous.inputs[(row * s)..<(row * s + s)] }
        for k in 1..<batcher.batchesPerEpoch {
            let batch = batcher.next()
            #expect(batch.position == BatchPosition(epoch: 0, batch: k))
            for row in 0..<b {
                // First input of stream b in batch k equals the last target of stream b in batch k-1.
                #expect(batch.input(row, 0) == previous.target(row, s - 1))
                // Targets are the inputs shifted by one within the row.
                for t in 0..<(s - 1) { #expect(batch.target(row, t) == batch.input(row, t + 1)) }
                seen[row] += batch.inputs[(row * s)..<(row * s + s)]
            }
            previous = batch
        }
        // Each row walked its own contiguous slice of the corpus.
        for row in 0..<b {
            #expect(seen[row] == Array(tokens[(row * l)..<(row * l + batcher.batchesPerEpoch * s)]))
        }
        // Epoch wrap: back to batch 0, flagged so the caller resets the hidden state.
        #expect(batcher.position == BatchPosition(epoch: 1, batch: 0))
        let again = batcher.next()
        #expect(again.resetsState && again.position == BatchPosition(epoch: 1, batch: 0))
        #expect(again.inputs == (try batcher.batch(at: 0)).inputs)
        #expect(again.inputs.first == tokens[0])
    }

    @Test func positionIsCodableAndResumes() throws {
        var original = try StreamBatcher(tokens: positions(200), batchSize: 2, seqLen: 5)
        for _ in 0..<(original.batchesPerEpoch + 3) { _ = original.next() }
        let saved = try JSONEncoder().encode(original.position)
        let restored = try JSONDecoder().decode(BatchPosition.self, from: saved)
        #expect(restored == BatchPosition(epoch: 1, batch: 3))
        var resumed = try StreamBatcher(tokens: positions(200), batchSize: 2, seqLen: 5)
        try resumed.seek(to: restored)
        for _ in 0..<30 { #expect(resumed.next() == original.next()) }
        #expect(throws: TextDataError.self) { try resumed.seek(to: BatchPosition(epoch: 0, batch: 99)) }
        #expect(throws: TextDataError.self) { try resumed.seek(to: BatchPosition(epoch: -1, batch: 0)) }
    }

    @Test func corpusShorterThanOneBatchNamesTheFlags() {
        // One batch of B = 3, S = 4 needs 3 * 4 + 1 = 13 tokens.
        let error = #expect(throws: TextDataError.self) {
            _ = try StreamBatcher(tokens: positions(12), batchSize: 3, seqLen: 4, source: "training part of tiny.txt")
        }
        #expect(error == .corpusTooShort(source: "training part of tiny.txt", tokens: 12, batch: 3, seqLen: 4, needed: 13))
        #expect(error?.description == "training part of tiny.txt: 12 tokens are too few for one batch of --batch 3 x --seq-len 4 "
                + "(needs at least 13 tokens); lower --batch or --seq-len")
        #expect((try? StreamBatcher(tokens: positions(13), batchSize: 3, seqLen: 4))?.batchesPerEpoch == 1)
        #expect(throws: TextDataError.invalidSetting(flag: "--batch", value: "0", reason: "must be at least 1")) {
            _ = try StreamBatcher(tokens: positions(100), batchSize: 0, seqLen: 4)
        }
        #expect(throws: TextDataError.self) { _ = try StreamBatcher(tokens: positions(100), batchSize: 2, seqLen: -1) }
        #expect(throws: TextDataError.self) { _ = try StreamBatcher(tokens: positions(100), batchSize: Int.max, seqLen: 3) }
    }
}

@Suite struct WindowBatcherTests {
    /// Start offsets of the windows in an epoch's batches (inputs are positions, so a row's
    /// first input is its window start), checking each row's content on the way.
    private func starts(_ batches: [TokenBatch], seqLen s: Int) -> [Int] {
        var result: [Int] = []
        for batch in batches {
            for row in 0..<batch.batchSize {
                let i = Int(batch.input(row, 0))
                #expect(Array(batch.inputs[(row * s)..<(row * s + s)]) == (i..<(i + s)).map(Int32.init))
                #expect(Array(batch.targets[(row * s)..<(row * s + s)]) == ((i + 1)...(i + s)).map(Int32.init))
                result.append(i)
            }
        }
        return result
    }

    @Test func everyWindowOncePerEpoch() throws {
        // N = 12, S = 3: windows start at 0...8 (9 windows); B = 4 → batches of 4, 4, 1.
        var batcher = try WindowBatcher(tokens: positions(12), batchSize: 4, seqLen: 3, seed: 7)
        #expect(batcher.windowCount == 9 && batcher.batchesPerEpoch == 3)
        let epoch0 = (0..<3).map { _ in batcher.next() }
        #expect(epoch0.map(\.batchSize) == [4, 4, 1])
        #expect(epoch0.allSatisfy { $0.resetsState })
        let order0 = starts(epoch0, seqLen: 3)
        #expect(order0.sorted() == Array(0..<9))
        // Epoch 0 is the documented shuffle: SeededRandom(seed: 7) over [0, ..., 8].
        var rng = SeededRandom(seed: 7)
        var expected = Array(0..<9)
        rng.shuffle(&expected)
        #expect(order0 == expected)
        // Epoch 1: again every window once, in another order.
        #expect(batcher.position == BatchPosition(epoch: 1, batch: 0))
        let order1 = starts((0..<3).map { _ in batcher.next() }, seqLen: 3)
        #expect(order1.sorted() == Array(0..<9))
        #expect(order1 != order0)
    }

    @Test func deterministicPerSeedAndResumable() throws {
        let tokens = positions(60)
        var a = try WindowBatcher(tokens: tokens, batchSize: 5, seqLen: 4, seed: 3)
        var b = try WindowBatcher(tokens: tokens, batchSize: 5, seqLen: 4, seed: 3)
        var c = try WindowBatcher(tokens: tokens, batchSize: 5, seqLen: 4, seed: 4)
        var differs = false
        for _ in 0..<25 {
            let x = a.next()
            #expect(x == b.next())
            if x.inputs != c.next().inputs { differs = true }
        }
        #expect(differs)
        // Resume in the middle of epoch 2 from a saved position.
        let saved = try JSONDecoder().decode(BatchPosition.self, from: JSONEncoder().encode(a.position))
        var resumed = try WindowBatcher(tokens: tokens, batchSize: 5, seqLen: 4, seed: 3)
        try resumed.seek(to: saved)
        #expect(saved == BatchPosition(epoch: 2, batch: 1))   // 25 = 2 * 12 + 1 batches
        for _ in 0..<20 { #expect(resumed.next() == a.next()) }
        #expect(!resumed.carriesState)
    }

    @Test func zeroBatchSizeMeansAllWindows() throws {
        var batcher = try WindowBatcher(tokens: positions(10), batchSize: 0, seqLen: 4, seed: 1)
        #expect(batcher.batchesPerEpoch == 1 && batcher.batchSize == 6)
        let batch = batcher.next()
        #expect(starts([batch], seqLen: 4).sorted() == Array(0..<6))
        #expect(batcher.position == BatchPosition(epoch: 1, batch: 0))
        // A batch larger than the window count holds every window once.
        var big = try WindowBatcher(tokens: positions(10), batchSize: 100, seqLen: 4)
        #expect(big.next().batchSize == 6)
        #expect(throws: TextDataError.tooManyWindowsForOneBatch(source: "text", windows: 6, seqLen: 4, limit: 20)) {
            _ = try WindowBatcher(tokens: positions(10), batchSize: 0, seqLen: 4, maxBatchTokens: 20)
        }
    }

    @Test func tooShortForOneWindow() {
        let error = #expect(throws: TextDataError.self) {
            _ = try WindowBatcher(tokens: positions(4), batchSize: 2, seqLen: 4, source: "a.txt")
        }
        #expect(error?.description == "a.txt: 4 tokens are too few for one window of --seq-len 4 "
                + "(needs at least 5 tokens); lower --seq-len")
        #expect(throws: TextDataError.self) { _ = try WindowBatcher(tokens: positions(40), batchSize: -1, seqLen: 4) }
    }

    @Test func batchersWorkThroughTheProtocol() throws {
        var batchers: [any TokenBatcher] = [
            try StreamBatcher(tokens: positions(50), batchSize: 2, seqLen: 3),
            try WindowBatcher(tokens: positions(50), batchSize: 8, seqLen: 3),
        ]
        #expect(batchers.map(\.carriesState) == [true, false])
        for i in batchers.indices {
            let batch = batchers[i].next()
            #expect(batch.inputs.count == batch.batchSize * batch.seqLen)
            #expect(batchers[i].position == BatchPosition(epoch: 0, batch: 1))
        }
        #expect(BatchingMode(rawValue: "windows") == .windows)
        #expect(BatchingMode.allCases.map(\.rawValue) == ["streams", "windows"])
    }
}
