#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Crash points of the save path, for testing what a run folder holds after a crash.
///
/// `AtomicFile` reports an event after each step of a write: the temporary file `written`,
/// `synced` (fsync and close), `renamed` over the destination, and the `directory-synced`.
/// Nothing happens unless the environment asks for it:
///
/// - `RNN_FAULT_TRACE=1` prints each event to standard error as
///   `fault point <n>: <file name> <event>` (`n` counts from 1 in the process);
/// - `RNN_FAULT_KILL_AT=<n>` kills the process with SIGKILL (as `kill -9` would) at event `n`.
///
/// Both are read once, at the first event.
public enum FaultInjection {
    private static let settings: (killAt: Int?, trace: Bool) = {
        let env = ProcessInfo.processInfo.environment
        return (env["RNN_FAULT_KILL_AT"].flatMap { Int($0) }, env["RNN_FAULT_TRACE"] == "1")
    }()
    private static let counter = EventCounter()

    /// Records that `event` happened while writing `path`; dies here when this is the event
    /// `RNN_FAULT_KILL_AT` names.
    static func point(_ path: String, _ event: String) {
        let s = settings
        guard s.trace || s.killAt != nil else { return }
        let n = counter.next()
        if s.trace {
            let name = path.split(separator: "/").last.map(String.init) ?? path
            FileHandle.standardError.write(Data("fault point \(n): \(name) \(event)\n".utf8))
        }
        if n == s.killAt { kill(getpid(), SIGKILL) }
    }
}

private final class EventCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; count += 1; return count }
}
