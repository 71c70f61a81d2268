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
        c.precision = run.precision.precision
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
            // Under mpirun every rank stops at the same step; rank 0's line says it for all.
            if ProcessGroup.world.isRoot { printFailure(tool, "\(e)") }
            throw ExitCode(e.exitStatus)
        } catch let e as ValidationError {
            printFailure(tool, e.message)
            throw ExitCode(1)
        } catch {
            printFailure(tool, describe(error))
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
    ///
    /// Started by `mpirun`, the tool joins the MPI job first (`ProcessGroup.world`); ranks
    /// other than 0 print nothing but their own error line (`<tool> (rank N): …`). A rank that
    /// fails exits without leaving the job, which makes `mpirun` end every rank.
    public static func main<Command: ParsableCommand>(_ command: Command.Type, tool: String) -> Never {
        let group = ProcessGroup.world
        if !group.isRoot { silenceOtherRank(group.rank) }
        do {
            var parsed = try Command.parseAsRoot()
            try parsed.run()
            group.finalize()
            Command.exit()
        } catch {
            if Command.exitCode(for: error) == .validationFailure {
                let message = Command.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                printFailure(tool, message)
                Foundation.exit(1)
            }
            if Command.exitCode(for: error) == .success { group.finalize() }
            Command.exit(withError: error)
        }
    }

    /// Writes `line` and a newline to standard error.
    public static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// The error line `<tool>: <message>`; on a rank other than 0 of an MPI job (whose standard
    /// error is silenced) `<tool> (rank N): <message>` on the original standard error.
    static func printFailure(_ tool: String, _ message: String) {
        guard let fd = errorDescriptor.value else { return printError("\(tool): \(message)") }
        FileHandle(fileDescriptor: fd, closeOnDealloc: false).write(Data("\(tool) (rank \(ProcessGroup.world.rank)): \(message)\n".utf8))
    }

    /// Where a rank other than 0 writes its error lines (its standard error, kept aside).
    private static let errorDescriptor = UncheckedBox<Int32?>(nil)

    /// Sends standard output and standard error of a rank other than 0 to /dev/null (rank 0
    /// prints for the job), keeping the original standard error for its error line.
    private static func silenceOtherRank(_ rank: Int) {
        let null = open("/dev/null", O_WRONLY)
        guard null >= 0 else { return }
        errorDescriptor.value = dup(STDERR_FILENO)
        dup2(null, STDOUT_FILENO)
        dup2(null, STDERR_FILENO)
        close(null)
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
