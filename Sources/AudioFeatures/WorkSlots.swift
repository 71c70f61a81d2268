import Foundation

/// Work queue and result slots shared by threads that process a list of files in parallel
/// (guarded by a lock): each thread claims the next index, stores its result, and the caller
/// reads the results in input order afterwards.
final class WorkSlots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var results: [Result<Value, any Error>?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    /// The next unclaimed index, or nil when all are taken.
    func claim() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard next < results.count else { return nil }
        next += 1
        return next - 1
    }

    func store(_ i: Int, _ r: Result<Value, any Error>) {
        lock.lock(); results[i] = r; lock.unlock()
    }

    func result(_ i: Int) -> Result<Value, any Error>? {
        lock.lock(); defer { lock.unlock() }
        return results[i]
    }
}
