import Dispatch
import Foundation

extension Threading {
    /// Runs `body(worker, i)` for every `i in 0..<count` on up to `threads` threads and returns
    /// each item's result in index order. Each thread first makes its own `worker` with
    /// `makeWorker` (e.g. a feature extractor with its buffers) and then claims the next
    /// unprocessed index until none is left, so uneven items balance out; the results do not
    /// depend on the thread count. A thread whose `makeWorker` throws stores that error for
    /// the items it would have claimed.
    /// - Returns: `[count]` results; an item's error stays in its slot.
    public static func parallelMap<Worker, T>(count: Int, threads: Int, makeWorker: @escaping () throws -> Worker,
                                              _ body: @escaping (inout Worker, Int) throws -> T) -> [Result<T, any Error>] {
        guard count > 0 else { return [] }
        let slots = ResultSlots<T>(count: count)
        let work = UncheckedBox((makeWorker, body))
        let workers = max(1, min(threads, count))
        let job: @Sendable (Int) -> Void = { _ in
            let (make, body) = work.value
            var worker: Worker
            do { worker = try make() } catch {
                while let i = slots.claim() { slots.store(i, .failure(error)) }
                return
            }
            while let i = slots.claim() { slots.store(i, Result { try body(&worker, i) }) }
        }
        if workers == 1 { job(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: job) }
        return slots.results()
    }

    /// `body(i)` for every `i in 0..<count` on up to `threads` threads, results in index order.
    /// - Throws: the error of the lowest failing index (deterministic whatever the threads).
    public static func parallelMap<T>(count: Int, threads: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
        try parallelMap(count: count, threads: threads, makeWorker: { () }, { _, i in try body(i) }).map { try $0.get() }
    }
}

/// Result slots and the next unclaimed index, shared by the threads of `parallelMap` (guarded
/// by a lock; each slot is written once).
private final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var slots: [Result<T, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func claim() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard next < slots.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ i: Int, _ r: Result<T, any Error>) { lock.lock(); slots[i] = r; lock.unlock() }

    func results() -> [Result<T, any Error>] {
        lock.lock(); defer { lock.unlock() }
        return slots.map { $0 ?? .failure(ParallelMapError.notRun) }
    }
}

/// An item that `Threading.parallelMap` did not process (cannot happen unless a thread died).
enum ParallelMapError: Error { case notRun }
