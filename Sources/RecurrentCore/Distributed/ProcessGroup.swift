import CMPI
import Foundation

/// The processes of a data-parallel training run (MPI's `MPI_COMM_WORLD`), or a single process.
///
/// A process started by `mpirun` (Open MPI sets `OMPI_COMM_WORLD_SIZE`, PMIx launchers
/// `PMIX_RANK`) joins the MPI job on first use of `world`; any other process is rank 0 of 1 and
/// makes no MPI call at all, so the tools start as fast and as quietly as before.
///
/// Every collective here is called by all ranks in the same order from one thread (the training
/// loop's); the worker threads of a step never call MPI. Results never depend on the transport
/// (shared memory or TCP): sums run in a fixed order, see `sumInRankOrder`.
public final class ProcessGroup: @unchecked Sendable {
    /// This process's index, 0 ..< `size`.
    public let rank: Int
    /// Number of processes.
    public let size: Int
    private let usesMPI: Bool
    private var finalized = false

    /// A group description without MPI (tests use it to check the shard arithmetic of other ranks).
    init(rank: Int, size: Int, usesMPI: Bool) {
        self.rank = rank; self.size = size; self.usesMPI = usesMPI
    }

    /// One process on its own (rank 0 of 1); every collective is the identity.
    public static let single = ProcessGroup(rank: 0, size: 1, usesMPI: false)

    /// This process's group: the MPI job when started by `mpirun` (MPI is initialised on the
    /// first access), otherwise `single`.
    public static let world: ProcessGroup = launchedByMPI ? joinMPI() : single

    /// Whether a launcher (`mpirun`, a PMIx scheduler) started this process as part of a job.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    private static func joinMPI() -> ProcessGroup {
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, cmpi_thread_funneled(), &provided) == cmpi_success() else {
            FileHandle.standardError.write(Data("MPI: MPI_Init_thread failed\n".utf8))
            exit(1)
        }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(cmpi_comm_world(), &r)
        MPI_Comm_size(cmpi_comm_world(), &s)
        // Ranks divide the cores between them already: OpenBLAS threads would oversubscribe.
        Threading.useSingleThreadedBLAS()
        return ProcessGroup(rank: Int(r), size: Int(s), usesMPI: true)
    }

    /// Whether more than one process takes part.
    public var isDistributed: Bool { size > 1 }
    /// Whether this is rank 0, the one that writes files and prints.
    public var isRoot: Bool { rank == 0 }

    /// This rank's part of a batch of `count` rows: the batch is cut into `size * threads`
    /// contiguous shards in one global order (`Threading.shards`) and rank `r` takes shards
    /// `r * threads ..< (r + 1) * threads`, so `size` ranks with `threads` threads each cut a
    /// batch exactly as one process with `size * threads` threads does.
    /// - Returns: the global index of this rank's first shard and its shards' row ranges (empty
    ///   when the batch has fewer rows than this rank's first shard index).
    public func shards(count: Int, threads: Int) -> (first: Int, ranges: [Range<Int>]) {
        let t = max(1, threads)
        let all = Threading.shards(count: count, parts: size * t)
        let lo = min(rank * t, all.count), hi = min((rank + 1) * t, all.count)
        return (lo, Array(all[lo..<hi]))
    }

    /// The sizes of every rank's shards of a batch of `count` rows, in global order.
    public func allShardSizes(count: Int, threads: Int) -> [Int] {
        Threading.shards(count: count, parts: size * max(1, threads)).map(\.count)
    }

    // MARK: Collectives

    /// Sums `count` floats element by element over all ranks, in place on every rank, adding in
    /// rank order: the result is `((x_0 + x_1) + x_2) + …`, exactly what one process adding
    /// its shards' gradients in shard order computes. Two ranks use `MPI_Allreduce` (a sum of
    /// two terms is the same either way round); more ranks pass the partial sums down a
    /// pipelined chain (rank r adds its values to what rank r-1 sends, segment by segment) and
    /// the last rank broadcasts the total, which moves about as many bytes per rank as a ring.
    public func sumInRankOrder(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1, count > 0 else { return }
        let comm = cmpi_comm_world()
        if size == 2 {
            forEachChunk(count) { offset, n in
                _ = MPI_Allreduce(cmpi_in_place(), buffer + offset, n, cmpi_float(), cmpi_sum(), comm)
            }
            return
        }
        let segment = 1 << 16
        var received = [Float](repeating: 0, count: min(segment, count))
        received.withUnsafeMutableBufferPointer { tmp in
            var offset = 0
            while offset < count {
                let n = min(segment, count - offset)
                if rank > 0 {
                    _ = MPI_Recv(tmp.baseAddress, Int32(n), cmpi_float(), Int32(rank - 1), 7, comm, cmpi_status_ignore())
                    let b = buffer + offset
                    for j in 0..<n { b[j] = tmp[j] + b[j] }
                }
                if rank < size - 1 {
                    _ = MPI_Send(buffer + offset, Int32(n), cmpi_float(), Int32(rank + 1), 7, comm)
                }
                offset += n
            }
        }
        broadcast(buffer, count: count, root: size - 1)
    }

    /// Sends `count` floats from `root` to every rank (in place).
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int = 0) {
        guard size > 1, count > 0 else { return }
        forEachChunk(count) { offset, n in
            _ = MPI_Bcast(buffer + offset, n, cmpi_float(), Int32(root), cmpi_comm_world())
        }
    }

    /// Every rank's `local` values concatenated in rank order, on every rank.
    public func allGather(_ local: [Double]) -> [Double] {
        guard size > 1 else { return local }
        return gather(local, type: cmpi_double())
    }

    /// Every rank's `local` values concatenated in rank order, on every rank.
    public func allGather(_ local: [Float]) -> [Float] {
        guard size > 1 else { return local }
        return gather(local, type: cmpi_float())
    }

    /// The sum of every rank's `local` terms taken in rank order, starting from 0 (the same
    /// result on every rank, and the same as one process summing all the terms in that order).
    public func sumInOrder(_ local: [Double]) -> Double {
        allGather(local).reduce(0, +)
    }

    /// `body(k)` for every `k` in `0 ..< count`, on every rank in `k` order: each rank computes
    /// a contiguous run of the `k` (`Threading.shards` over the ranks) and the results are
    /// gathered. For evaluation split across ranks.
    public func inParts(count: Int, _ body: (Int) -> Double) -> [Double] {
        guard size > 1 else { return (0..<count).map(body) }
        let runs = Threading.shards(count: count, parts: size)
        return allGather(rank < runs.count ? runs[rank].map(body) : [])
    }

    /// `inParts` for work whose pieces give `width` numbers each: `[piece][width]` in piece order.
    public func inParts(count: Int, width: Int, _ body: (Int) throws -> [Double]) rethrows -> [[Double]] {
        guard size > 1 else { return try (0..<count).map(body) }
        let runs = Threading.shards(count: count, parts: size)
        let mine = try rank < runs.count ? runs[rank].map(body) : []
        precondition(mine.allSatisfy { $0.count == width }, "every piece must give \(width) numbers")
        let all = allGather(mine.flatMap { $0 })
        return stride(from: 0, to: all.count, by: max(1, width)).map { Array(all[$0..<($0 + width)]) }
    }

    /// Waits until every rank gets here.
    public func barrier() {
        guard size > 1 else { return }
        _ = MPI_Barrier(cmpi_comm_world())
    }

    /// Leaves the MPI job cleanly (every rank must call it, once, before exiting with status 0;
    /// a rank exiting without it makes `mpirun` end the whole job).
    public func finalize() {
        guard usesMPI, !finalized else { return }
        finalized = true
        _ = MPI_Finalize()
    }

    private func gather<T: Numeric>(_ local: [T], type: MPI_Datatype) -> [T] {
        let comm = cmpi_comm_world()
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(local.count)
        _ = MPI_Allgather(&mine, 1, cmpi_int32(), &counts, 1, cmpi_int32(), comm)
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<size { displacements[i] = displacements[i - 1] + counts[i - 1] }
        var out = [T](repeating: 0, count: Int(counts.reduce(0, +)))
        var send = local
        _ = send.withUnsafeMutableBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                MPI_Allgatherv(s.baseAddress, mine, type, o.baseAddress, counts, displacements, type, comm)
            }
        }
        return out
    }

    private func forEachChunk(_ count: Int, _ body: (Int, Int32) -> Void) {
        let chunk = 1 << 28
        var offset = 0
        while offset < count {
            let n = min(chunk, count - offset)
            body(offset, Int32(n))
            offset += n
        }
    }
}
