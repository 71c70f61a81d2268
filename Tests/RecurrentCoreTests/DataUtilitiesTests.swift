import Foundation
import RecurrentCore
import Testing

@Suite struct ValidationSplitTests {
    @Test func partitionIsDeterministicSeededAndStratified() {
        // Class 0: 30 examples, class 1: 10, class 2: 1 (a class too small to give any).
        let labels = (0..<30).map { _ in 0 } + (0..<10).map { _ in 1 } + [2]
        let a = ValidationSplit(count: labels.count, fraction: 0.2, seed: 7, labels: labels)
        #expect(Set(a.train).isDisjoint(with: a.validation))
        #expect(Set(a.train + a.validation) == Set(0..<labels.count))
        #expect(a.train == a.train.sorted() && a.validation == a.validation.sorted())
        // round(0.2 × 30) = 6, round(0.2 × 10) = 2, round(0.2 × 1) = 0.
        #expect(a.validation.filter { labels[$0] == 0 }.count == 6)
        #expect(a.validation.filter { labels[$0] == 1 }.count == 2)
        #expect(a.train.contains(40))
        #expect(ValidationSplit(count: labels.count, fraction: 0.2, seed: 7, labels: labels) == a)
        #expect(ValidationSplit(count: labels.count, fraction: 0.2, seed: 8, labels: labels) != a)
    }

    @Test func edgeCases() {
        #expect(ValidationSplit(count: 10, fraction: 0, seed: 1).validation.isEmpty)
        #expect(ValidationSplit(count: 10, fraction: 0, seed: 1).train == Array(0..<10))
        // A positive fraction too small to round up still gives one validation example.
        let tiny = ValidationSplit(count: 10, fraction: 0.01, seed: 1)
        #expect(tiny.validation.count == 1 && tiny.train.count == 9)
        // Never everything: one example stays for training.
        let most = ValidationSplit(count: 3, fraction: 0.99, seed: 1)
        #expect(most.train.count == 1 && most.validation.count == 2)
        #expect(ValidationSplit(count: 1, fraction: 0.5, seed: 1).train == [0])
        #expect(ValidationSplit(count: 20, fraction: 0.25, seed: 3).validation.count == 5)
    }
}

@Suite struct ParallelMapTests {
    @Test func resultsInIndexOrderWithPerThreadWorkers() throws {
        final class Counter: @unchecked Sendable {
            let lock = NSLock(); var made = 0
            func make() -> Int { lock.lock(); defer { lock.unlock() }; made += 1; return 0 }
        }
        let counter = Counter()
        let r = Threading.parallelMap(count: 100, threads: 3, makeWorker: { counter.make() }) { (used: inout Int, i: Int) -> Int in
            used += 1
            if i == 17 { throw CocoaError(.fileNoSuchFile) }
            return i * i
        }
        #expect(r.count == 100)
        #expect(counter.made <= 3 && counter.made >= 1)
        for (i, x) in r.enumerated() where i != 17 { #expect((try? x.get()) == i * i) }
        #expect((try? r[17].get()) == nil)
        #expect(try Threading.parallelMap(count: 5, threads: 4) { $0 + 1 } == [1, 2, 3, 4, 5])
        #expect(try Threading.parallelMap(count: 0, threads: 4) { $0 }.isEmpty)
    }

    @Test func lowestFailingIndexIsThrown() {
        struct Fail: Error, Equatable { let i: Int }
        for threads in [1, 2, 4] {
            #expect(throws: Fail(i: 3)) { _ = try Threading.parallelMap(count: 20, threads: threads) { i -> Int in
                if i == 3 || i == 12 { throw Fail(i: i) }
                return i
            } }
        }
    }
}

@Suite struct PaddedBatchTests {
    @Test func paddingLengthsAndLabels() {
        // Two features; lengths 2, 3 and 0 (counted as one zero step).
        let b = SequenceBatch(padding: [[1, 2, 3, 4], [5, 6, 7, 8, 9, 10], []], features: 2, labels: .perStep([[1, 2], [3, 4, 5], []]))
        #expect(b.batch == 3 && b.time == 3 && b.features == 2)
        #expect(b.lengths == [2, 3, 1])
        #expect(b.inputs == [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0])
        #expect(b.labels == [1, 2, 0, 3, 4, 5, 0, 0, 0])
        let c = SequenceBatch(padding: [[1], [2, 3]], features: 1, labels: .perSequence([4, 5]))
        #expect(c.labels == [4, 5] && c.inputs == [1, 0, 2, 3])
        #expect(SequenceBatch(padding: [[1]], features: 1).labels.isEmpty)
    }
}

@Suite struct CoreFeatureNormalizerTests {
    @Test func rowsAreStandardised() throws {
        var n = FeatureNormalizer(featureCount: 2)
        try n.accumulate([0, 1, 2, 1, 4, 1], width: 2)
        #expect(n.count == 3 && n.mean == [2, 1])
        var x: [Float] = [2, 1, 4, 1]
        try n.apply(to: &x, width: 2)
        // Column 0: mean 2, population std sqrt(8/3).
        #expect(x[0] == 0 && abs(x[2] - Float(2 / (8.0 / 3).squareRoot())) < 1e-6 && x[1] == 0)
        #expect(throws: FeatureNormalizerError.widthMismatch(source: "m", expected: 2, got: 3)) { try n.accumulate([1, 2, 3], width: 3, source: "m") }
    }
}
