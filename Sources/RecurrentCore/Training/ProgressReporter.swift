#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A training run that cannot go on.
public enum TrainingError: Error, CustomStringConvertible, Sendable {
    /// The loss of `step` was NaN or infinite: the model has diverged.
    case nonFiniteLoss(step: Int, value: Double)
    /// After `step` some parameter is NaN or infinite although the loss was still finite.
    case nonFiniteParameters(step: Int)
    /// The evaluation after `step` gave a NaN or infinite `metric` (a validation loss).
    case nonFiniteMetric(step: Int, metric: String, value: Double)

    /// One line explaining what happened and what to try.
    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, value):
            return "training diverged: loss is \(value) at step \(step); "
                + "try a lower learning rate or gradient clipping (the last good checkpoint is kept)"
        case let .nonFiniteMetric(step, metric, value):
            return "training diverged: \(metric) is \(value) after step \(step); "
                + "try a lower learning rate or gradient clipping (the last good checkpoint is kept)"
        case let .nonFiniteParameters(step):
            return "training diverged: the weights are not finite after step \(step); "
                + "try a lower learning rate or gradient clipping (the last good checkpoint is kept)"
        }
    }
}

/// Reports the progress of a training loop: step, smoothed loss, throughput, elapsed time and
/// an estimate of the time left.
///
/// On a terminal it keeps one live line that is rewritten in place (`\r`); otherwise (a log
/// file, a pipe) it prints a plain line every `interval`. Use it from one thread only.
///
/// ```swift
/// let progress = ProgressReporter(totalSteps: 1000, timeBudget: nil, label: "lm")
/// for step in 1...1000 {
///     let loss = trainOneBatch()
///     try progress.update(step: step, loss: loss, tokens: batch * sequenceLength)
/// }
/// progress.finish()
/// ```
public final class ProgressReporter {
    /// How often a non-terminal output gets a line.
    public enum Interval: Sendable, Equatable {
        /// At the first update, then once at least this many seconds have passed since the last line.
        case seconds(Double)
        /// At the first update, then every this many steps.
        case steps(Int)
    }

    /// The number of steps of the whole run, when known (for `step/total` and the ETA).
    public let totalSteps: Int?
    /// The run's time limit in seconds, when there is one (for the ETA).
    public let timeBudget: Double?
    /// The text that starts every line, e.g. the executable's name.
    public let label: String
    /// Whether the output is a terminal (live line) or not (periodic plain lines).
    public let isTTY: Bool
    /// When plain lines are printed (non-terminal output).
    public let interval: Interval
    /// The weight of the past in the loss's exponential moving average, in [0, 1).
    public let smoothing: Double
    /// What the throughput counts, printed as `<unit>/s` (`tok`, `tokens`, `utterances`, `clips`).
    public let unit: String
    /// Seconds of the time budget used before this reporter started (a resumed run).
    public let timeUsedBefore: Double

    private let output: (String) -> Void
    private let clock: () -> Double
    private let startTime: Double
    /// Seconds between redraws of the live line.
    private let refreshSeconds: Double
    private let lineWidth: Int

    private var firstStep: Int?
    private var lastStep = 0
    private var lastLoss = Double.nan
    private var averageState = 0.0
    private var averageWeight = 0.0
    private var totalTokens = 0
    private var lastLineTime: Double
    private var lastLineStep = 0
    private var tokensSinceLine = 0
    private var lastRate: Double?
    private var budgetUsed: Double?
    private var liveLineShown = false
    private var anyLinePrinted = false
    private var finished = false

    /// Creates a reporter that writes to a file descriptor (standard error by default),
    /// detecting a terminal with `isatty`.
    /// - Parameters:
    ///   - totalSteps: the run's number of steps, or `nil` when unknown.
    ///   - timeBudget: the run's time limit in seconds, or `nil`.
    ///   - label: text that starts every line.
    ///   - fileDescriptor: where to write; `STDERR_FILENO` keeps standard output for results.
    ///   - interval: how often plain lines are printed when the output is not a terminal.
    ///   - smoothing: weight of the past in the loss average (0.98: about the last 50 steps).
    ///   - clock: monotonic seconds; injectable for tests.
    public convenience init(
        totalSteps: Int?, timeBudget: Double?, label: String,
        fileDescriptor: Int32 = STDERR_FILENO, interval: Interval = .seconds(10),
        smoothing: Double = 0.98, unit: String = "tok", timeUsedBefore: Double = 0,
        clock: @escaping () -> Double = ProgressReporter.monotonicSeconds
    ) {
        let tty = isatty(fileDescriptor) == 1
        let columns = Int(getenv("COLUMNS").map { String(cString: $0) } ?? "") ?? 80
        self.init(
            totalSteps: totalSteps, timeBudget: timeBudget, label: label, isTTY: tty,
            interval: interval, smoothing: smoothing, lineWidth: max(20, columns - 1), unit: unit,
            timeUsedBefore: timeUsedBefore, clock: clock,
            output: { text in
                let bytes = Array(text.utf8)
                var offset = 0
                while offset < bytes.count {
                    let n = bytes.withUnsafeBytes { raw -> Int in
                        guard let base = raw.baseAddress else { return 0 }
                        return write(fileDescriptor, base + offset, raw.count - offset)
                    }
                    if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { break }
                }
            })
    }

    /// Creates a reporter that hands its text to `output` (each call is a complete piece of
    /// text, possibly starting with `\r` or containing a newline).
    /// - Parameters:
    ///   - isTTY: `true` for a live line rewritten in place, `false` for periodic plain lines.
    ///   - lineWidth: the live line is cut to this many characters so it never wraps.
    ///   - Other parameters as in the file-descriptor initializer.
    public init(
        totalSteps: Int?, timeBudget: Double?, label: String, isTTY: Bool,
        interval: Interval = .seconds(10), smoothing: Double = 0.98, lineWidth: Int = 79,
        unit: String = "tok", timeUsedBefore: Double = 0,
        clock: @escaping () -> Double = ProgressReporter.monotonicSeconds,
        output: @escaping (String) -> Void
    ) {
        self.totalSteps = totalSteps.flatMap { $0 > 0 ? $0 : nil }
        self.timeBudget = timeBudget.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
        self.label = label
        self.isTTY = isTTY
        switch interval {
        case .seconds(let s): self.interval = .seconds(s.isFinite ? max(0, s) : 10)
        case .steps(let n): self.interval = .steps(max(1, n))
        }
        self.smoothing = smoothing.isFinite ? min(max(smoothing, 0), 0.9999) : 0.98
        self.refreshSeconds = 0.25
        self.lineWidth = max(20, lineWidth)
        self.unit = unit
        self.timeUsedBefore = timeUsedBefore.isFinite ? max(0, timeUsedBefore) : 0
        self.clock = clock
        self.output = output
        self.startTime = clock()
        self.lastLineTime = startTime
    }

    /// Seconds from a monotonic clock (`CLOCK_MONOTONIC`), unaffected by wall-clock changes.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// The exponential moving average of the losses so far, bias-corrected so the first
    /// steps are not pulled towards zero; NaN before the first update.
    public var smoothedLoss: Double {
        averageWeight > 0 ? averageState / averageWeight : .nan
    }

    /// Records a finished training step and prints progress when it is due.
    /// - Parameters:
    ///   - step: the number of the step just finished, counting from 1 (a resumed run may
    ///     start higher); steps before the first update count as done before this run.
    ///   - loss: that step's loss.
    ///   - tokens: tokens (or samples) processed by that step, for the throughput.
    ///   - budgetUsed: seconds of the time budget used so far (training time, a resumed run's
    ///     earlier part included); nil = the wall time since the reporter started.
    /// - Throws: `TrainingError.nonFiniteLoss` when `loss` is NaN or infinite; the live line
    ///   is ended first so the caller's message starts on a fresh line.
    public func update(step: Int, loss: Double, tokens: Int, budgetUsed: Double? = nil) throws {
        guard loss.isFinite else {
            endLiveLine()
            throw TrainingError.nonFiniteLoss(step: step, value: loss)
        }
        let now = clock()
        if firstStep == nil {
            firstStep = step
            lastLineStep = step - 1
        }
        lastStep = step
        lastLoss = loss
        if let budgetUsed, budgetUsed.isFinite { self.budgetUsed = budgetUsed }
        averageState = smoothing * averageState + (1 - smoothing) * loss
        averageWeight = smoothing * averageWeight + (1 - smoothing)
        let added = max(0, tokens)
        totalTokens += added
        tokensSinceLine += added

        let due: Bool
        if isTTY {
            due = !liveLineShown || now - lastLineTime >= refreshSeconds
        } else {
            switch interval {
            case .seconds(let s): due = !anyLinePrinted || now - lastLineTime >= s
            case .steps(let n): due = !anyLinePrinted || step - lastLineStep >= n
            }
        }
        guard due else { return }
        emit(now: now)
    }

    /// Prints `text` as a line of its own; on a terminal the live line is cleared first and
    /// drawn again below it.
    public func message(_ text: String) {
        if isTTY && liveLineShown {
            output("\r\u{1B}[K" + text + "\n" + "\r" + liveLine(now: clock(), rate: lastRate) + "\u{1B}[K")
        } else {
            output(text + "\n")
        }
    }

    /// Prints the final state (on a terminal, ends the live line) and a summary line with the
    /// run's total time and average throughput. Further calls do nothing.
    public func finish() {
        guard !finished else { return }
        finished = true
        let now = clock()
        if firstStep != nil && (lastLineStep != lastStep || isTTY) {
            emit(now: now)
        }
        endLiveLine()
        let elapsed = now - startTime
        var summary = "\(label) done: \(max(0, lastStep - (firstStep ?? 1) + 1)) steps in \(Self.formatDuration(elapsed))"
        if elapsed > 0 && totalTokens > 0 {
            summary += ", \(Self.formatRate(Double(totalTokens) / elapsed)) \(unit)/s average"
        }
        if lastLoss.isFinite {
            summary += ", final loss \(Self.formatLoss(lastLoss)) (smoothed \(Self.formatLoss(smoothedLoss)))"
        }
        output(summary + "\n")
    }

    // MARK: - Formatting

    private func emit(now: Double) {
        let window = now - lastLineTime
        if window > 0 && tokensSinceLine > 0 {
            lastRate = Double(tokensSinceLine) / window
        } else if tokensSinceLine > 0 {
            lastRate = nil
        }
        let line = liveLine(now: now, rate: lastRate)
        if isTTY {
            output("\r" + line + "\u{1B}[K")
            liveLineShown = true
        } else {
            output(line + "\n")
        }
        lastLineTime = now
        lastLineStep = lastStep
        tokensSinceLine = 0
        anyLinePrinted = true
    }

    private func endLiveLine() {
        if isTTY && liveLineShown {
            output("\n")
            liveLineShown = false
        }
    }

    /// The status text: `label step s[/total] loss l (avg a) r tok/s elapsed e eta t`.
    private func liveLine(now: Double, rate: Double?) -> String {
        let elapsed = now - startTime
        var parts = [label]
        if let totalSteps {
            parts.append("step \(lastStep)/\(totalSteps)")
        } else {
            parts.append("step \(lastStep)")
        }
        parts.append("loss \(Self.formatLoss(lastLoss)) (avg \(Self.formatLoss(smoothedLoss)))")
        parts.append(rate.map { "\(Self.formatRate($0)) \(unit)/s" } ?? "- \(unit)/s")
        parts.append("elapsed \(Self.formatDuration(elapsed))")
        if let eta = eta(elapsed: elapsed) {
            parts.append("eta \(Self.formatDuration(eta))")
        }
        let line = parts.joined(separator: "  ")
        if isTTY && line.count > lineWidth {
            return String(line.prefix(lineWidth))
        }
        return line
    }

    /// Seconds left: from the step rate of this run when the total is known, from the time
    /// budget when there is one; the sooner of the two when both apply. The budget counts
    /// training time only: with `budgetUsed` known, what is left of it is stretched by this
    /// run's ratio of wall time to training time (evaluations, checkpoints).
    private func eta(elapsed: Double) -> Double? {
        var estimates: [Double] = []
        if let totalSteps, let firstStep {
            let done = lastStep - firstStep + 1
            if done > 0 && elapsed > 0 {
                estimates.append(max(0, Double(totalSteps - lastStep)) * elapsed / Double(done))
            }
        }
        if let timeBudget {
            if let used = budgetUsed, used - timeUsedBefore > 0 {
                estimates.append(max(0, timeBudget - used) * max(1, elapsed / (used - timeUsedBefore)))
            } else {
                estimates.append(max(0, timeBudget - elapsed))
            }
        }
        return estimates.min()
    }

    /// `1.2346` style: four decimals, or scientific notation outside [1e-3, 1e5).
    static func formatLoss(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        let magnitude = abs(x)
        if magnitude != 0 && (magnitude < 1e-3 || magnitude >= 1e5) {
            return format("%.3e", x)
        }
        return format("%.4f", x)
    }

    /// A throughput rounded to whole units, e.g. `12345`; one decimal below 100.
    static func formatRate(_ x: Double) -> String {
        x < 100 ? format("%.1f", x) : format("%.0f", x)
    }

    /// `45s`, `3m05s`, `2h03m09s`.
    static func formatDuration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let total = Int(max(0, seconds).rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        if h > 0 { return "\(h)h\(twoDigits(m))m\(twoDigits(s))s" }
        if m > 0 { return "\(m)m\(twoDigits(s))s" }
        return "\(s)s"
    }

    /// `printf`-style formatting of one `Double`.
    private static func format(_ pattern: String, _ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBufferPointer { ptr in
            withVaList([value]) { vsnprintf(ptr.baseAddress, ptr.count, pattern, $0) }
        }
        guard n > 0 else { return "\(value)" }
        return String(decoding: buffer.prefix(min(Int(n), 63)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `n` with at least two digits.
    private static func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
