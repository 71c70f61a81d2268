import ArgumentParser
import Foundation
import Plotting
import RecurrentCore

/// The pieces every training tool shares: turning the option groups into the engine's
/// configuration, the one error path, and the loss plot.
public enum TrainingCLI {
    /// The engine's configuration from the shared options, `defaults` filling what is not given.
    /// - Throws: `TrainingSetupError` when more than one of `--steps`, `--epochs`,
    ///   `--time-budget` is given or a value is out of range.
    public static func configuration(run: RunOptions, optimization: OptimizationOptions, budget: BudgetOptions,
                                     defaults: TrainingDefaults) throws -> TrainingConfiguration {
        let limits = [budget.steps != nil, budget.epochs != nil, budget.timeBudget != nil].filter { $0 }.count
        if limits > 1 { throw TrainingSetupError.invalid(option: "--steps", reason: "give only one of --steps, --epochs, --time-budget") }
        var c = TrainingConfiguration()
        c.optimizer = optimization.optimizer ?? defaults.optimizer
        c.learningRate = optimization.lr ?? defaults.learningRate ?? c.optimizer.defaultLearningRate
        c.momentum = optimization.momentum ?? 0
        c.nesterov = optimization.nesterov
        c.weightDecay = optimization.weightDecay
        c.lrSchedule = optimization.lrSchedule ?? defaults.lrSchedule
        c.lrFloor = optimization.lrFloor ?? defaults.lrFloor
        c.lrDecayEvery = optimization.lrDecayEvery
        c.lrDecayFactor = optimization.lrDecayFactor ?? defaults.lrDecayFactor
        c.warmup = optimization.warmup ?? defaults.warmup
        c.clip = optimization.clip ?? defaults.clip
        c.steps = budget.steps
        c.epochs = budget.epochs
        c.timeBudget = budget.timeBudget
        if limits == 0 { c.epochs = defaults.epochs }
        c.evalEvery = budget.evalEvery ?? defaults.evalEvery
        c.seed = run.seed ?? defaults.seed
        c.threads = run.threads ?? Threading.defaultThreads
        c.outDirectory = run.out ?? defaults.out
        c.resume = run.resume
        try c.validate()
        return c
    }

    /// The one error path: runs `body`; any error becomes the line `<tool>: <error>` on
    /// standard error and exit status 1 (a run stopped by a signal: its own line and 128 +
    /// signal). Errors describe themselves as `<file or option>: <what is wrong>`; Foundation's
    /// file-system errors are translated to `<path>: <reason>` (`describe`).
    public static func failing<T>(_ tool: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ExitCode {
            throw e
        } catch let e as TrainingInterrupted {
            printError("\(tool): \(e)")
            throw ExitCode(e.exitStatus)
        } catch let e as ValidationError {
            printError("\(tool): \(e.message)")
            throw ExitCode(1)
        } catch {
            printError("\(tool): \(describe(error))")
            throw ExitCode(1)
        }
    }

    /// One line for an error: a Foundation file-system error as `<path>: <reason>`
    /// (`FileSystemErrorText`), any other error as it describes itself.
    public static func describe(_ error: any Error) -> String {
        FileSystemErrorText.line(error) ?? "\(error)"
    }

    /// The entry point of a tool (call it from the root command's `static func main()`):
    /// parses the arguments and runs the command. Help and `--generate-completion-script` work
    /// as argument-parser makes them; a parse error is one line `<tool>: <what is wrong>` on
    /// stderr and exit status 1, like every other error.
    public static func main<Command: ParsableCommand>(_ command: Command.Type, tool: String) -> Never {
        do {
            var parsed = try Command.parseAsRoot()
            try parsed.run()
            Command.exit()
        } catch {
            if Command.exitCode(for: error) == .validationFailure {
                let message = Command.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                printError("\(tool): \(message)")
                Foundation.exit(1)
            }
            Command.exit(withError: error)
        }
    }

    /// Writes `line` and a newline to standard error.
    public static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Prints `SystemInfo.summaryLine(threads:)` to standard error when `verbose`, with the
    /// run's thread count.
    public static func printSystemInfo(tool: String, verbose: Bool, threads: Int) {
        if verbose { printError("\(tool): \(SystemInfo.summaryLine(threads: threads))") }
    }

    /// Draws `loss.png`: the training loss and every `*loss*` metric against the step.
    /// Use as `engine.plotter = TrainingCLI.writeLossPlot`.
    public static func writeLossPlot(title: String, log: TrainingLog, path: String) throws {
        var series = [Series(name: "train", points: log.rows.map { (Double($0.step), $0.trainLoss) })]
        for (i, name) in log.metricNames.enumerated() where name.contains("loss") {
            let points = log.rows.map { (Double($0.step), $0.metrics[i]) }.filter { $0.1.isFinite }
            if !points.isEmpty { series.append(Series(name: name, points: points)) }
        }
        do {
            try Plot.lineChart(series: series, title: title, xLabel: "step", yLabel: "loss", to: path)
        } catch {
            throw AtomicFileError(path: path, reason: "\(error)")
        }
    }

    /// Draws a confusion matrix as an annotated heatmap PNG (rows: true class, columns:
    /// predicted, the axes named so), `labels` naming the classes in index order.
    public static func writeConfusionPlot(_ matrix: ConfusionMatrix, labels: [String], title: String, path: String) throws {
        let names = matrix.names(labels)
        do {
            try Plot.heatmap(values: matrix.counts.map { $0.map(Double.init) }, rowLabels: names, columnLabels: names,
                             title: title, annotate: true, rowAxis: "true", columnAxis: "predicted", to: path)
        } catch {
            throw AtomicFileError(path: path, reason: "\(error)")
        }
    }
}
