import Foundation
import Testing
@testable import RecurrentCore

/// A clock the test moves by hand.
private final class ManualClock {
    var now: Double = 0
}

/// Collects everything a reporter writes.
private final class Capture {
    var pieces: [String] = []
    var text: String { pieces.joined() }
    var lines: [String] { text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

private func makeReporter(
    total: Int?, budget: Double?, tty: Bool, interval: ProgressReporter.Interval = .seconds(10),
    smoothing: Double = 0.5, clock: ManualClock, capture: Capture
) -> ProgressReporter {
    ProgressReporter(
        totalSteps: total, timeBudget: budget, label: "lm", isTTY: tty, interval: interval,
        smoothing: smoothing, lineWidth: 200, clock: { clock.now }, output: { capture.pieces.append($0) })
}

@Test func plainLinesReportStepLossThroughputAndETA() throws {
    let clock = ManualClock()
    let capture = Capture()
    let progress = makeReporter(total: 10, budget: nil, tty: false, clock: clock, capture: capture)

    clock.now = 0.5
    try progress.update(step: 1, loss: 3.0, tokens: 100)  // first update: always a line
    clock.now = 5
    try progress.update(step: 2, loss: 2.0, tokens: 100)  // 4.5 s after the last line: none
    clock.now = 12
    try progress.update(step: 3, loss: 1.0, tokens: 100)  // 11.5 s: a line

    let lines = capture.lines.filter { !$0.isEmpty }
    #expect(lines.count == 2)
    // Line 1: 100 tokens in 0.5 s = 200 tok/s; ETA = 9 steps left * 0.5 s per step = 4.5 s -> 5s (rounded).
    #expect(lines[0].hasPrefix("lm"))
    #expect(lines[0].contains("step 1/10"))
    #expect(lines[0].contains("loss 3.0000 (avg 3.0000)"))
    #expect(lines[0].contains("200 tok/s"))
    #expect(lines[0].contains("elapsed 1s"))
    #expect(lines[0].contains("eta 5s"))
    // Line 2: 200 tokens since the last line over 11.5 s = 17.39 tok/s.
    // Smoothed loss with weight 0.5 of the past, bias-corrected: weights 1/4, 1/2, 1 on
    // 3, 2, 1 -> (0.75 + 1 + 1) / 1.75 = 1.5714.
    // ETA: 7 steps left at 12 s / 3 steps = 28 s.
    #expect(lines[1].contains("step 3/10"))
    #expect(lines[1].contains("loss 1.0000 (avg 1.5714)"))
    #expect(lines[1].contains("17.4 tok/s"))
    #expect(lines[1].contains("elapsed 12s"))
    #expect(lines[1].contains("eta 28s"))
    #expect(!capture.text.contains("\r"))
    #expect(abs(progress.smoothedLoss - 2.75 / 1.75) < 1e-12)

    clock.now = 20
    progress.finish()
    let final = capture.lines.filter { !$0.isEmpty }
    // Nothing unreported remained, so only the summary: 300 tokens in 20 s = 15.0 tok/s.
    #expect(final.count == 3)
    #expect(final[2] == "lm done: 3 steps in 20s, 15.0 tok/s average, final loss 1.0000 (smoothed 1.5714)")
    progress.finish()
    #expect(capture.lines.filter { !$0.isEmpty }.count == 3)
}

@Test func stepIntervalAndTimeBudgetETA() throws {
    let clock = ManualClock()
    let capture = Capture()
    let progress = makeReporter(total: nil, budget: 100, tty: false, interval: .steps(3), clock: clock, capture: capture)
    // A resumed run starting at step 41; each step takes 2 s and 50 tokens.
    for step in 41...47 {
        clock.now += 2
        try progress.update(step: step, loss: 1.5, tokens: 50)
    }
    let lines = capture.lines.filter { !$0.isEmpty }
    // Lines at the first step (41), then 44 and 47.
    #expect(lines.count == 3)
    #expect(lines[0].contains("step 41 ") && lines[1].contains("step 44 ") && lines[2].contains("step 47 "))
    #expect(!capture.text.contains("step 41/"))  // no total known
    // Throughput 150 tokens over 6 s = 25.0 tok/s; ETA from the budget: 100 - 14 = 86 s.
    #expect(lines[2].contains("25.0 tok/s"))
    #expect(lines[2].contains("elapsed 14s"))
    #expect(lines[2].contains("eta 1m26s"))
    progress.finish()
    #expect(capture.lines.filter { !$0.isEmpty }.last?.hasPrefix("lm done: 7 steps in 14s, 25.0 tok/s average") == true)
}

@Test func liveLineIsRewrittenInPlaceOnATerminal() throws {
    let clock = ManualClock()
    let capture = Capture()
    let progress = makeReporter(total: 4, budget: nil, tty: true, clock: clock, capture: capture)
    clock.now = 1
    try progress.update(step: 1, loss: 2.0, tokens: 10)
    clock.now = 1.1
    try progress.update(step: 2, loss: 2.0, tokens: 10)  // within the refresh period: no redraw
    #expect(capture.pieces.count == 1)
    #expect(capture.pieces[0].hasPrefix("\rlm  step 1/4"))
    #expect(capture.pieces[0].contains("10.0 tok/s"))
    #expect(!capture.text.contains("\n"))

    clock.now = 2
    try progress.update(step: 3, loss: 2.0, tokens: 10)  // redraw: 20 tokens over 1 s
    #expect(capture.pieces.count == 2)
    #expect(capture.pieces[1].hasPrefix("\rlm  step 3/4"))
    #expect(capture.pieces[1].contains("20.0 tok/s"))

    progress.message("saved checkpoint")
    // The message replaces the live line, ends with a newline, and the live line returns.
    let piece = capture.pieces[2]
    #expect(piece.hasPrefix("\r\u{1B}[Ksaved checkpoint\n\rlm  step 3/4"))

    clock.now = 3
    progress.finish()
    #expect(capture.text.hasSuffix("\n"))
    #expect(capture.lines.contains { $0.hasPrefix("lm done: 3 steps in 3s") })
}

@Test func lineIsCutToTheTerminalWidth() throws {
    let clock = ManualClock()
    let capture = Capture()
    let progress = ProgressReporter(
        totalSteps: 1_000_000, timeBudget: 3600, label: "a-long-label", isTTY: true, lineWidth: 30,
        clock: { clock.now }, output: { capture.pieces.append($0) })
    clock.now = 1
    try progress.update(step: 1, loss: 1, tokens: 1)
    let line = capture.pieces[0].dropFirst().replacingOccurrences(of: "\u{1B}[K", with: "")
    #expect(line.count == 30)
}

@Test func nonFiniteLossStopsTraining() throws {
    for bad in [Double.nan, .infinity, -.infinity] {
        let clock = ManualClock()
        let capture = Capture()
        let progress = makeReporter(total: 10, budget: nil, tty: true, clock: clock, capture: capture)
        clock.now = 1
        try progress.update(step: 1, loss: 1.0, tokens: 5)
        do {
            try progress.update(step: 2, loss: bad, tokens: 5)
            Issue.record("loss \(bad) was accepted")
        } catch let error as TrainingError {
            guard case let .nonFiniteLoss(step, value) = error else { return }
            #expect(step == 2)
            #expect(value.isNaN == bad.isNaN && (bad.isNaN || value == bad))
            #expect(error.description.contains("step 2"))
            #expect(error.description.contains("lower learning rate"))
            #expect(error.description.contains("clipping"))
            #expect(!error.description.contains("\n"))
        }
        // The live line was ended so an error message starts on a fresh line.
        #expect(capture.text.hasSuffix("\n"))
        // The bad value did not enter the average.
        #expect(progress.smoothedLoss == 1.0)
    }
}

@Test func durationsAndLossesAreFormattedReadably() {
    #expect(ProgressReporter.formatDuration(0) == "0s")
    #expect(ProgressReporter.formatDuration(59.4) == "59s")
    #expect(ProgressReporter.formatDuration(185) == "3m05s")
    #expect(ProgressReporter.formatDuration(3725) == "1h02m05s")
    #expect(ProgressReporter.formatDuration(.infinity) == "?")
    #expect(ProgressReporter.formatLoss(2.5) == "2.5000")
    #expect(ProgressReporter.formatLoss(0.0001234) == "1.234e-04")
    #expect(ProgressReporter.formatRate(12345.4) == "12345")
    #expect(ProgressReporter.formatRate(7.5) == "7.5")
}

/// The time budget counts training only: with half of the wall time spent in evaluations, the
/// ETA is what is left of the budget stretched by that ratio; a resumed run counts the budget
/// it used before. The unit is the tool's.
@Test func timeBudgetETACountsTrainingTimeOnly() throws {
    let clock = ManualClock()
    let capture = Capture()
    // 30 s of the 100 s budget were used by the run before it was resumed.
    let progress = ProgressReporter(totalSteps: 100_000, timeBudget: 100, label: "fc", isTTY: false, interval: .steps(1),
                                    lineWidth: 200, unit: "clips", timeUsedBefore: 30, clock: { clock.now },
                                    output: { capture.pieces.append($0) })
    // Each step: 1 s of training, then 1 s of evaluation; after 10 steps 40 s of budget are used.
    for step in 1...10 {
        clock.now += 1
        try progress.update(step: step, loss: 1, tokens: 8, budgetUsed: 30 + Double(step))
        clock.now += 1
    }
    clock.now += 1
    try progress.update(step: 11, loss: 1, tokens: 8, budgetUsed: 41)
    let last = capture.lines.filter { !$0.isEmpty }.last ?? ""
    // 59 s of budget left, at 2 s of wall time per training second (21 s elapsed for 11 s
    // trained, about 1.91): about 113 s, far sooner than the 100,000 steps would end.
    #expect(last.contains("step 11/100000") && last.contains("clips/s"), "\(last)")
    #expect(last.contains("eta 1m53s"), "\(last)")
}
