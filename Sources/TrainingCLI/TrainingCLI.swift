import ArgumentParser
import Foundation
import Plotting
import RecurrentCore

/// The pieces every training tool shares: turning the option groups into the engine's
/// configuration, the one error path, and the loss plot.
public enum TrainingCLI {
    /// The engine's configuration from the shared options, `defaults` filling what is not given.
    ///
    /// The run folder: `--resume DIR` continues the run in DIR (its `config.json` supplies the
    /// threads and, when no budget option is given, the budget; `--time-budget` then adds
    /// seconds, `--steps`/`--epochs` count the whole run); `--out DIR` must not hold a run unless
    /// `--overwrite`; without either, a new folder `runs/<tool>/<YYYYMMDD-HHMMSS>[-N]` is made.
    /// - Throws: `TrainingSetupError` when more than one of `--steps`, `--epochs`,
    ///   `--time-budget` is given or a value is out of range; `RunFolderError` for an `--out`
    ///   that holds a run; nothing is created then.
    public static func configuration(run: RunOptions, optimization: OptimizationOptions, budget: BudgetOptions,
                                     defaults: TrainingDefaults) throws -> TrainingConfiguration {
        let limits = [budget.steps != nil, budget.epochs != nil, budget.timeBudget != nil].filter { $0 }.count
        if limits > 1 { throw TrainingSetupError.invalid(option: "--steps", reason: "give only one of --steps, --epochs, --time-budget") }
        var saved: TrainingConfiguration?
        if let dir = run.resume {
            if let out = run.out, URL(fileURLWithPath: out).standardizedFileURL != URL(fileURLWithPath: dir).standardizedFileURL {
                throw RunFolderError.outDiffers(resume: dir, out: out)
            }
            let path = dir + "/config.json"
            if FileManager.default.fileExists(atPath: path) { saved = try RunConfiguration.read(path: path).training }
        }
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
        if limits == 0 {
            if let saved {
                c.steps = saved.steps; c.epochs = saved.epochs; c.timeBudget = saved.timeBudget
            } else {
                c.epochs = defaults.epochs
            }
        } else if run.resume != nil && budget.timeBudget != nil {
            c.timeBudgetAdds = true
        }
        c.evalEvery = budget.evalEvery ?? defaults.evalEvery
        c.patience = budget.patience
        c.logEvery = run.logEvery ?? c.logEvery
        c.seed = run.seed ?? defaults.seed
        c.threads = run.threads ?? saved?.threads ?? Threading.defaultThreads
        c.precision = run.precision.precision
        c.resume = run.resume != nil
        c.overwrite = run.overwrite
        c.initFrom = run.initFrom
        c.commandLine = recordedArguments
        c.outDirectory = run.resume ?? run.out ?? ""
        try c.validate()
        let world = ProcessGroup.world
        if world.isRoot, let note = Precision.emulationNote(for: c.precision) { printError("\(defaults.tool): \(note)") }
        // Rank 0 checks and claims the folder; under mpirun every rank must be told the same one.
        if let out = run.out, run.resume == nil, world.isRoot { try RunFolder.requireFree(out, overwrite: run.overwrite) }
        if c.outDirectory.isEmpty && world.isDistributed {
            throw ValidationError("--out: under mpirun give the run folder (every rank must use the same one)")
        }
        if c.outDirectory.isEmpty {
            c.outDirectory = try RunFolder.createNew(root: defaults.runsRoot + "/" + defaults.tool)
            claimedRunFolder = c.outDirectory
        }
        return c
    }

    /// A new run folder made by `configuration`, removed by `failing` when the run fails before
    /// writing anything into it.
    nonisolated(unsafe) static var claimedRunFolder: String?

    /// The arguments of this process that recreate its run (`recordable` of the expanded
    /// command line), recorded into `config.json` through the configuration.
    nonisolated(unsafe) public static var recordedArguments: [String] = []

    /// Options that are the run folder's or the budget's, not the task's: left out of the
    /// recorded command line (a value follows each except `--overwrite`).
    static let unrecordedOptions: Set<String> = ["--out", "--resume", "--init-from", "--steps", "--epochs", "--time-budget"]

    /// `arguments` (after the executable's name) without the subcommand and without the run
    /// folder and budget options: what `config.json` keeps so `--resume DIR` needs no retyping.
    public static func recordable(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0, sawSubcommand = false
        while i < arguments.count {
            let a = arguments[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if !sawSubcommand && !a.hasPrefix("-") { sawSubcommand = true; i += 1; continue }
            if a == "--overwrite" { i += 1; continue }
            if unrecordedOptions.contains(name) { i += a.contains("=") ? 1 : 2; continue }
            out.append(a)
            i += 1
        }
        return out
    }

    /// `arguments` with the recorded command line of the run named by `--resume DIR` inserted
    /// after the subcommand, so the arguments given now come later and win. Unchanged when there
    /// is no `--resume` or DIR has no `config.json` (a run of an earlier version).
    /// - Throws: `ModelLoadError` for an unreadable `config.json`, `ValidationError` for a run of
    ///   another tool.
    public static func expandResume(_ arguments: [String], tool: String) throws -> [String] {
        var dir: String?
        for (i, a) in arguments.enumerated() {
            if a == "--resume", i + 1 < arguments.count { dir = arguments[i + 1] }
            if a.hasPrefix("--resume=") { dir = String(a.dropFirst("--resume=".count)) }
        }
        guard let dir, let sub = arguments.firstIndex(where: { !$0.hasPrefix("-") }) else { return arguments }
        let path = dir + "/config.json"
        guard FileManager.default.fileExists(atPath: path) else { return arguments }
        let saved = try RunConfiguration.read(path: path)
        guard saved.tool == tool else { throw ValidationError("\(path): a run of \(saved.tool), not of \(tool)") }
        return Array(arguments[...sub]) + saved.training.commandLine + Array(arguments[(sub + 1)...])
    }

    /// The one error path: runs `body`; any error becomes the line `<tool>: <error>` on
    /// standard error and exit status 1 (a run stopped by a signal: its own line and 128 +
    /// signal). Errors describe themselves as `<file or option>: <what is wrong>`; Foundation's
    /// file-system errors are translated to `<path>: <reason>` (`describe`).
    public static func failing<T>(_ tool: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ExitCode {
            removeUnusedRunFolder()
            throw e
        } catch let e as TrainingInterrupted {
            // Under mpirun every rank stops at the same step; rank 0's line says it for all.
            if ProcessGroup.world.isRoot { printFailure(tool, "\(e)") }
            throw ExitCode(e.exitStatus)
        } catch let e as ValidationError {
            removeUnusedRunFolder()
            printFailure(tool, e.message)
            throw ExitCode(1)
        } catch {
            removeUnusedRunFolder()
            printFailure(tool, describe(error))
            throw ExitCode(1)
        }
    }

    /// Removes the folder `configuration` made when nothing was written into it, and then
    /// `runs/<tool>` and `runs` when they are left empty (`rmdir` only removes an empty folder).
    static func removeUnusedRunFolder() {
        guard let path = claimedRunFolder else { return }
        claimedRunFolder = nil
        var folder = path
        for _ in 0..<3 {
            guard rmdir(folder) == 0 else { return }
            folder = (folder as NSString).deletingLastPathComponent
            if folder.isEmpty || folder == "." || folder == "/" { return }
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
        let arguments: [String]
        do {
            arguments = try expandResume(Array(CommandLine.arguments.dropFirst()), tool: tool)
        } catch let e as ValidationError {
            printError("\(tool): \(e.message)")
            Foundation.exit(1)
        } catch {
            printError("\(tool): \(describe(error))")
            Foundation.exit(1)
        }
        recordedArguments = recordable(arguments)
        do {
            var parsed = try Command.parseAsRoot(arguments)
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

    /// Draws `loss.png`: the training loss (the rows that have one) and every `*loss*` metric
    /// (the evaluation rows) against the step. Use as `engine.plotter = TrainingCLI.writeLossPlot`.
    public static func writeLossPlot(title: String, log: TrainingLog, path: String) throws {
        var series = [Series(name: "train", points: log.rows.filter { !$0.trainLoss.isNaN }.map { (Double($0.step), $0.trainLoss) })]
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
