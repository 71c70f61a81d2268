import Dispatch

/// Result storage written by worker threads; each slot is written by exactly one thread.
final class ParallelSlots<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<Result<T, any Error>?>
    let count: Int
    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: nil, count: max(count, 1))
    }
    deinit {
        base.deinitialize(count: max(count, 1))
        base.deallocate()
    }
}

/// Runs `body(i)` for `i` in `0..<count` on up to `threads` threads (strided partition, so the
/// assignment of work is fixed) and returns the results in index order. When several calls
/// throw, the error of the lowest index is rethrown, so failures are deterministic too.
func parallelMap<T>(count: Int, threads: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
    let workers = max(1, min(threads, count))
    let slots = ParallelSlots<T>(count: count)
    if workers == 1 {
        for i in 0..<count { slots.base[i] = Result { try body(i) } }
    } else {
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < count {
                slots.base[i] = Result { try body(i) }
                i += workers
            }
        }
    }
    var out: [T] = []
    out.reserveCapacity(count)
    for i in 0..<count {
        switch slots.base[i] {
        case .success(let value)?: out.append(value)
        case .failure(let error)?: throw error
        case nil: throw FrameError.invalidArgument("internal: work item \(i) was not run")
        }
    }
    return out
}

/// Default worker count: the machine's active processors.
func defaultThreads() -> Int {
    max(1, ProcessInfo.processInfo.activeProcessorCount)
}

import Foundation
