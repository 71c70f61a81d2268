#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The first SIGINT/SIGTERM caught while the trap is armed (0 = none). Written only by the
/// handler, read by the training loop between steps.
nonisolated(unsafe) private var pendingSignal: sig_atomic_t = 0
/// A line the handler writes to standard error on the first signal (nil = none), kept as C
/// bytes because a handler may only call async-signal-safe functions.
nonisolated(unsafe) private var signalNotice: (bytes: UnsafeMutablePointer<CChar>, count: Int)?

/// The handler: the first signal is recorded for the loop to act on after the current step;
/// a second one ends the process at once (files are only ever renamed into place complete, so
/// no final name holds a torn file).
private func recordSignal(_ signal: Int32) {
    if pendingSignal != 0 { _exit(128 + signal) }
    pendingSignal = sig_atomic_t(signal)
    if let n = signalNotice { _ = write(STDERR_FILENO, n.bytes, n.count) }
}

/// Catches SIGINT and SIGTERM during a training run so the run can stop cleanly.
enum SignalTrap {
    /// Installs the handler; returns what to call to restore the previous handlers.
    /// The signals are also unblocked on the calling thread: a process started by a parent
    /// that blocks them (some test runners and process launchers do) would never see them.
    /// `notice`, when given, is written as one line at the first signal, before the loop acts on it.
    static func arm(notice: String? = nil) -> () -> Void {
        pendingSignal = 0
        if signalNotice == nil, let notice {
            let bytes = Array((notice + "\n").utf8CString)
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
            buffer.initialize(from: bytes, count: bytes.count)
            signalNotice = (buffer, bytes.count - 1)
        }
        let oldInt = signal(SIGINT, recordSignal)
        let oldTerm = signal(SIGTERM, recordSignal)
        var set = sigset_t(), oldMask = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, &oldMask)
        return {
            var mask = oldMask
            pthread_sigmask(SIG_SETMASK, &mask, nil)
            signal(SIGINT, oldInt)
            signal(SIGTERM, oldTerm)
        }
    }

    /// The signal caught so far, if any.
    static var caught: Int32? { pendingSignal == 0 ? nil : Int32(pendingSignal) }
}

/// A run stopped by SIGINT or SIGTERM after saving its state; `description` says how to go on.
public struct TrainingInterrupted: Error, CustomStringConvertible, Sendable {
    /// The signal number (`SIGINT` 2, `SIGTERM` 15).
    public var signal: Int32
    /// Steps done and saved.
    public var step: Int
    /// The run's output folder.
    public var outDirectory: String

    /// The conventional exit status: 128 + signal (130 for SIGINT, 143 for SIGTERM).
    public var exitStatus: Int32 { 128 + signal }

    /// One line: what happened, where the state is, how to continue.
    public var description: String {
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        return "\(outDirectory): stopped by \(name) after step \(step); state saved in last.safetensors and "
            + "last.train.safetensors; continue with --resume \(outDirectory)"
    }
}
