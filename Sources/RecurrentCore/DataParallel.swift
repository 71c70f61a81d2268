import Dispatch

/// Threading policy of the suite.
///
/// OpenBLAS always runs single-threaded; parallelism comes from splitting a batch into
/// contiguous shards, one per thread, each running the whole model (forward and backward over
/// all time steps) on its own replica, with the weight gradients summed once at the end. There
/// is no hand-off between threads inside the time loop, so a busy core slows a step by at most
/// the share of work it holds instead of stalling every per-step GEMM.
public enum Threading {
    /// Sets OpenBLAS to one thread (call once at start-up; `Threading.shards` does it too).
    public static func useSingleThreadedBLAS() { BLAS.threads = 1 }

    /// Splits `count` rows into at most `parts` contiguous, nearly equal ranges (none empty).
    public static func shards(count: Int, parts: Int) -> [Range<Int>] {
        let p = max(1, min(parts, count))
        var out: [Range<Int>] = []
        var start = 0
        for i in 0..<p {
            let size = count / p + (i < count % p ? 1 : 0)
            out.append(start..<(start + size))
            start += size
        }
        return out
    }

    /// Runs `body(i)` for `i in 0..<count` on up to `count` threads and waits for all.
    public static func run(_ count: Int, _ body: @Sendable (Int) -> Void) {
        if count <= 1 { if count == 1 { body(0) }; return }
        DispatchQueue.concurrentPerform(iterations: count, execute: body)
    }

    /// Default thread count: the machine's active processors.
    public static var defaultThreads: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

/// Adds the gradients of replicas' parameters into the primary parameters (same order).
public func accumulateGradients(into primary: [Parameter], from replica: [Parameter]) {
    precondition(primary.count == replica.count)
    for (p, r) in zip(primary, replica) where p !== r {
        let g = p.grad, h = r.grad
        for j in 0..<p.count { g[j] += h[j] }
    }
}

/// Adds the gradients of several replicas into the primary's, `threads` threads each taking a
/// contiguous part of every parameter (the sum per element runs in replica order, so the result
/// does not depend on the thread count).
public func accumulateGradients(into primary: [Parameter], from replicas: [[Parameter]], threads: Int) {
    guard !replicas.isEmpty else { return }
    let work = UncheckedBox((primary, replicas))
    let parts = primary.reduce(0) { $0 + $1.count } >= 65_536 ? max(1, threads) : 1
    Threading.run(parts) { part in
        let (primary, replicas) = work.value
        for (i, p) in primary.enumerated() {
            let ranges = Threading.shards(count: p.count, parts: parts)
            guard part < ranges.count else { continue }
            let g = p.grad
            for replica in replicas where replica[i] !== p {
                let h = replica[i].grad
                for j in ranges[part] { g[j] += h[j] }
            }
        }
    }
}

/// A reference box that lets non-Sendable values cross into `Threading.run` closures. The
/// caller guarantees each shard touches only its own replica.
public final class UncheckedBox<T>: @unchecked Sendable {
    public var value: T
    public init(_ value: T) { self.value = value }
}

import Foundation
