import Testing
@testable import RecurrentCore

/// How ranks cut a global batch, without MPI: every rank's shards, taken in rank order, must be
/// exactly the shards one process with ranks × threads threads cuts.
struct ProcessGroupTests {
    @Test func ranksTakeTheGlobalShardsInRankOrder() {
        for size in 1...4 {
            for threads in 1...3 {
                for count in 1...23 {
                    let global = Threading.shards(count: count, parts: size * threads)
                    var joined: [Range<Int>] = []
                    for rank in 0..<size {
                        let group = ProcessGroup(rank: rank, size: size, usesMPI: false)
                        let mine = group.shards(count: count, threads: threads)
                        #expect(mine.ranges.count <= threads)
                        #expect(mine.first == joined.count, "size \(size) threads \(threads) count \(count) rank \(rank)")
                        joined += mine.ranges
                        #expect(group.allShardSizes(count: count, threads: threads) == global.map(\.count))
                    }
                    #expect(joined == global, "size \(size) threads \(threads) count \(count)")
                }
            }
        }
        // A hand-worked case: 2 ranks x 2 threads over 10 rows.
        #expect(ProcessGroup(rank: 1, size: 2, usesMPI: false).shards(count: 10, threads: 2).ranges == [6..<8, 8..<10])
        #expect(ProcessGroup(rank: 0, size: 2, usesMPI: false).shards(count: 10, threads: 2).ranges == [0..<3, 3..<6])
    }

    /// Not started by mpirun, the process is rank 0 of 1 and every collective is the identity,
    /// with sums in the given order.
    @Test func singleProcessIsRankZeroOfOne() {
        #expect(!ProcessGroup.launchedByMPI)
        let world = ProcessGroup.world
        #expect(world.rank == 0 && world.size == 1 && world.isRoot && !world.isDistributed)
        // In order from 0: (1e16 + 1) rounds back to 1e16, so the sum is 0, not 1.
        #expect(world.sumInOrder([1e16, 1, -1e16]) == 0)
        #expect(world.allGather([Float(1.5), -2]) == [1.5, -2])
        #expect(world.inParts(count: 4) { Double($0 * $0) } == [0, 1, 4, 9])
        #expect(world.inParts(count: 3, width: 2) { [Double($0), -Double($0)] } == [[0, 0], [1, -1], [2, -2]])
        var m = ConfusionMatrix(counts: [[1, 2], [0, 3]])
        m.add(ConfusionMatrix(counts: [[4, 0], [1, 1]]))
        #expect(m.counts == [[5, 2], [1, 4]] && m.total == 12 && m.correct == 9)
        var x: [Float] = [1, 2, 3]
        x.withUnsafeMutableBufferPointer { world.sumInRankOrder($0.baseAddress!, count: 3) }
        #expect(x == [1, 2, 3])
    }
}
