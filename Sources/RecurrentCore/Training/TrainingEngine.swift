import Foundation

/// The one training loop of the suite. An application supplies a `TrainingTask` (model,
/// batches, evaluation); the engine owns the rest:
///
/// - budget: `steps`, `epochs` or `timeBudget` (training time only, evaluation excluded);
/// - optimizer, learning-rate schedule with warm-up, gradient clipping by global norm;
/// - evaluation every `evalEvery` steps and at the end; `best.safetensors` by the task's
///   validation metric, `last.safetensors`, the resume file `last.train.safetensors`;
///   `--patience`: that many evaluations without a better metric end the run;
/// - the run folder (`RunFolder`): `config.json` (the settings, written at the start), `log.csv`
///   (a row every `logEvery` steps and at every evaluation), TensorBoard event files,
///   `loss.png` (through `plotter`), the progress line and the summary; a new run refuses a
///   folder that holds one unless `overwrite`;
/// - resume: optimizer moments, schedule position, per-step seeds, data position and carried
///   state continue bit-identically; a run whose fingerprinted settings differ is refused,
///   naming every one; the budget may grow (the schedule keeps the saved run's horizon);
/// - `initFrom`: a new run starts from a checkpoint's weights with fresh optimizer state;
/// - signals (when `handlesSignals`): SIGINT/SIGTERM finish the current step, save, and throw
///   `TrainingInterrupted`; a second signal exits at once;
/// - a NaN or infinite loss, validation loss or validation metric (or weights found
///   non-finite at an evaluation point) throws `TrainingError` before anything more is saved,
///   so the last checkpoint is the last one with finite weights and losses; a loss still
///   finite but over 1000 times the first step's gets one warning line.
///
/// Files are written atomically (`AtomicFile`); nothing is written before every check of the
/// settings, the folder and a resume has passed. A save writes `last.safetensors`, then the resume file, which holds the
/// whole state (weights included) and the save's id, also in `last.safetensors`: whichever
/// write a crash interrupts, `--resume` continues from the newest complete save (rewriting a
/// `last.safetensors` that is ahead of it). A run starting in a folder removes the temporary
/// files that killed processes left there.
///
/// Across processes (`processGroup`, the MPI job under `mpirun`): every rank reads the same
/// batches, the model computes its rank's shards (`TrainableModel.distribute(over:)`), the
/// engine sums the gradients over the ranks in rank order and every rank takes the same
/// optimizer step from the same weights (rank 0's, broadcast at the start). Rank 0 alone
/// writes files and prints progress; the others evaluate alike, so every decision agrees. A
/// signal caught by any rank stops all of them after the same step. Resuming reads the output
/// folder on every rank (a folder every machine sees), with any number of ranks.
public final class TrainingEngine<Model: TrainableModel> {
    /// The run's settings.
    public let configuration: TrainingConfiguration
    /// The application's side.
    public private(set) var task: TrainingTask<Model>
    /// Where progress and messages go; nil = standard error (a live line on a terminal).
    public var progressOutput: ((String) -> Void)?
    /// Draws `loss.png`; nil = no plot.
    public var plotter: LossPlotter?
    /// Whether `run` catches SIGINT and SIGTERM (command-line tools); off for library use.
    public var handlesSignals = false
    /// The processes that share every batch: by default the MPI job when started by `mpirun`,
    /// otherwise this process alone (`ProcessGroup.world`).
    public var processGroup: ProcessGroup = .world
    /// Whether ranks other than 0 of a distributed run leave the MPI job and exit with status 0
    /// when `run` is done, leaving reports and further files to rank 0 (command-line tools).
    public var endsOtherRanksAfterRun = false

    /// An engine for `task`; `configuration` is validated by `run`.
    public init(configuration: TrainingConfiguration, task: TrainingTask<Model>) {
        self.configuration = configuration
        self.task = task
    }

    /// `OUT/last.safetensors`: the model at the latest evaluation (or interruption).
    public var lastPath: String { configuration.outDirectory + "/last.safetensors" }
    /// `OUT/best.safetensors`: the model with the best validation metric.
    public var bestPath: String { configuration.outDirectory + "/best.safetensors" }
    /// `OUT/last.train.safetensors`: what resuming needs besides the weights.
    public var statePath: String { configuration.outDirectory + "/last.train.safetensors" }
    /// `OUT/log.csv`.
    public var logPath: String { configuration.outDirectory + "/log.csv" }
    /// `OUT/loss.png`.
    public var plotPath: String { configuration.outDirectory + "/loss.png" }
    /// `OUT/config.json`: the run's settings (`RunConfiguration`).
    public var configPath: String { configuration.outDirectory + "/config.json" }

    /// The fingerprint saved with the run: the engine's settings and the task's, by field name
    /// (`threads` counts the threads of all ranks).
    /// A schedule that runs over the budget (cosine, or step decay without `lrDecayEvery`)
    /// depends on it, so its horizon is part of the fingerprint: resuming with another budget
    /// would not continue the same run.
    public var fingerprint: [String: String] {
        var fp = configuration.fingerprint.merging(task.fingerprint) { engine, _ in engine }
        let c = configuration
        // Dropout masks are drawn per batch shard: what must match is the number of shards in
        // all processes together, so 2 ranks of 1 thread resume as 1 process of 2 and back.
        fp["threads"] = "\(c.threads * processGroup.size)"
        if c.lrSchedule == .cosine || (c.lrSchedule == .step && c.lrDecayEvery == nil) {
            fp["schedule_horizon"] = totalSteps.map { "\($0) steps" } ?? c.timeBudget.map { "\($0) s" } ?? "none"
        }
        return fp
    }

    /// The run's length in steps, when steps or epochs bound it (the smaller of the two).
    public var totalSteps: Int? {
        let byEpochs = configuration.epochs.map { $0 * max(1, task.data.batchesPerEpoch) }
        switch (configuration.steps, byEpochs) {
        case let (s?, e?): return min(s, e)
        case let (s?, nil): return s
        case let (nil, e?): return e
        default: return nil
        }
    }

    /// The seed of step `step` (0-based): a fixed function of the run's seed, so a resumed run
    /// draws the same dropout masks as an uninterrupted one.
    public static func stepSeed(runSeed: UInt64, step: Int) -> UInt64 { runSeed &* 7_919 &+ UInt64(step) }

    /// Trains to the end of the budget and returns the summary.
    /// - Throws: `TrainingSetupError` for bad settings (before writing anything),
    ///   `RunFolderError` for a folder that holds a run, `TrainingResumeError` when resuming is
    ///   impossible, `ModelLoadError` for an unusable `initFrom` checkpoint,
    ///   `TrainingError.nonFiniteLoss` on divergence (the last checkpoint stays),
    ///   `TrainingInterrupted` after a signal, file errors.
    public func run() throws -> TrainingRunSummary {
        let c = configuration
        try c.validate()
        let model = task.model
        let params = model.parameters
        let optimizer = c.makeOptimizer(parameters: params)
        let total = totalSteps
        let evaluation = task.evaluation
        let metricNames = evaluation?.metricNames ?? []
        let direction = evaluation?.direction ?? .lowerIsBetter
        let group = processGroup, isRoot = group.isRoot
        try model.distribute(over: group)
        let print = !isRoot ? { _ in } : progressOutput ?? { FileHandle.standardError.write(Data($0.utf8)) }
        var fp = fingerprint
        if c.patience != nil && evaluation == nil {
            throw TrainingSetupError.invalid(option: "--patience", reason: "needs validation data to watch (a --val-fraction above 0)")
        }
        if !c.resume && isRoot { try RunFolder.requireFree(c.outDirectory, overwrite: c.overwrite) }

        var step = 0, bestStep = 0, sinceBest = 0
        var trainBefore = 0.0, wallBefore = 0.0
        var best = direction.worst
        var log = TrainingLog(metricNames: metricNames, itemName: task.itemName)
        var repairLast: String?
        var budgetNote = ""
        if c.resume {
            let fm = FileManager.default
            guard fm.fileExists(atPath: lastPath), fm.fileExists(atPath: statePath) else {
                throw TrainingResumeError.nothingToResume(path: c.outDirectory)
            }
            // The resume file is the saved state, whole: weights, optimizer and data position of
            // one save. `last.safetensors` is written just before it, so a crash between the two
            // leaves it one save ahead; it still serves to check the model and data against this run.
            let state = try TrainingState.read(path: statePath)
            // The budget may change; the schedule keeps the saved run's horizon.
            let differences = TrainingFingerprint.differences(saved: state.fingerprint, now: fp, ignoring: ["schedule_horizon"])
            if !differences.isEmpty { throw TrainingResumeError.settingsDiffer(path: c.outDirectory, differences: differences) }
            if let h = state.fingerprint["schedule_horizon"] { fp["schedule_horizon"] = h }
            if let total, state.step > total {
                throw TrainingResumeError.beyondBudget(path: statePath, step: state.step, budget: total)
            }
            guard state.parameters.map(\.shape) == params.map(\.shape) else {
                throw ModelLoadError.badMetadata(statePath, "its \(state.parameters.count) weight tensors do not fit this model's \(params.count)")
            }
            try model.loadCheckpoint(from: lastPath)
            let lastID = try SafeTensors.read(path: lastPath).metadata["save_id"]
            let sameWeights = zip(params, state.parameters).allSatisfy { p, t in p.values.map(\.bitPattern) == t.values.map(\.bitPattern) }
            for (p, t) in zip(params, state.parameters) { p.values = t.values }
            do {
                try optimizer.load(state: state.optimizer, stepCount: state.optimizerSteps)
                try task.data.seek(to: state.position)
                var carried: [String: NamedTensor] = [:]
                for t in state.carried { carried[t.name] = t }
                try model.restoreCarriedState(carried)
            } catch let e as ModelLoadError {
                throw e
            } catch {
                throw ModelLoadError.badMetadata(statePath, "\(error)")
            }
            if lastID != state.saveID || !sameWeights { repairLast = state.saveID }
            step = state.step
            trainBefore = state.trainSeconds
            wallBefore = state.wallSeconds
            best = state.best
            bestStep = state.bestStep
            sinceBest = state.evaluationsSinceBest
            log = TrainingLog.read(path: logPath, metricNames: metricNames, itemName: task.itemName)
            log.rows = log.rows.filter { $0.step <= step }
            if let total {
                budgetNote = "; \(total) steps in all (--steps and --epochs count the whole run), \(max(0, total - step)) to go"
            }
            if let t = c.timeBudget {
                budgetNote += c.timeBudgetAdds
                    ? String(format: "; %.1f s more training after the %.1f s so far", t, trainBefore)
                    : String(format: "; %.1f s of training in all, %.1f s so far", t, trainBefore)
            }
        } else if let source = c.initFrom {
            // Weights only: the model's own loader checks the architecture and the vocabulary or
            // classes; the optimizer keeps the fresh state made above.
            try model.initializeWeights(from: source)
        }
        // The time budget in seconds of training over the whole run.
        let timeBudget = c.timeBudget.map { c.resume && c.timeBudgetAdds ? trainBefore + $0 : $0 }
        // The schedule's horizon: the saved run's when resuming (a longer budget runs on at the
        // schedule's end value), else this run's budget.
        let horizon = ScheduleHorizon(text: fp["schedule_horizon"]) ?? ScheduleHorizon(steps: total, seconds: timeBudget)
        let schedule = c.makeSchedule(totalSteps: horizon.steps)

        // Temporary files of writes that a killed run left half-way (after the checks of a
        // resume, so that a refused one changes nothing).
        let stale = isRoot ? AtomicFile.removeStaleTemporaries(in: c.outDirectory) : []

        // The run folder: config.json (rewritten on resume with the budget now in force) and
        // this process's TensorBoard event file.
        // Rank 0 alone writes files.
        var events: TensorBoardEventWriter? = nil
        if isRoot {
            try FileManager.default.createDirectory(atPath: c.outDirectory, withIntermediateDirectories: true)
            if !c.resume && c.overwrite { try RunFolder.clear(c.outDirectory) }
            var record = c
            record.timeBudget = timeBudget; record.timeBudgetAdds = false; record.resume = false; record.overwrite = false
            try RunConfiguration(tool: task.label, training: record, task: task.fingerprint, fingerprint: fp).write(to: configPath)
            events = try TensorBoardEventWriter(directory: c.outDirectory)
            if c.resume { try events?.writeSessionStart(step: step) }
        }

        let parameterCount = params.reduce(0) { $0 + $1.count }
        print("\(task.label): run folder \(c.outDirectory)\n")
        print("\(task.label): \(Self.grouped(parameterCount)) parameters; "
              + (task.dataDescription.isEmpty ? "" : "data: \(task.dataDescription); ")
              + "\(task.data.batchesPerEpoch) batches per epoch\n")
        if let source = c.initFrom, !c.resume { print("\(task.label): initialised from the weights of \(source); optimizer state fresh\n") }
        if c.resume {
            if let id = repairLast, isRoot {
                // Bring last.safetensors back to the state being resumed.
                try model.writeCheckpoint(to: lastPath, extra: ["step": "\(step)", "save_id": id])
                print("\(task.label): \(lastPath) was not from the save in \(statePath) (a run stopped between the two); "
                      + "rewrote it from the training state\n")
            }
            print("\(task.label): resuming from \(statePath) at step \(step) (\(task.data.position))\(budgetNote)\n")
        }
        if !stale.isEmpty {
            print("\(task.label): removed \(stale.count) temporary file(s) left in \(c.outDirectory) by a stopped run\n")
        }
        // Every rank starts from rank 0's weights.
        if group.isDistributed { for p in params { group.broadcast(p.value, count: p.count) } }
        if group.isDistributed { print("\(task.label): \(group.size) ranks share each batch of every step\n") }

        let reporter = !isRoot
            ? ProgressReporter(totalSteps: total, timeBudget: timeBudget, label: task.label, isTTY: false, interval: .seconds(3600),
                               unit: task.itemName, timeUsedBefore: trainBefore, output: { _ in })
            : progressOutput != nil
            ? ProgressReporter(totalSteps: total, timeBudget: timeBudget, label: task.label, isTTY: false, interval: .seconds(10),
                               unit: task.itemName, timeUsedBefore: trainBefore, output: print)
            : ProgressReporter(totalSteps: total, timeBudget: timeBudget, label: task.label, unit: task.itemName, timeUsedBefore: trainBefore)
        let clock = ProgressReporter.monotonicSeconds
        let start = clock()
        var trainSeconds = 0.0, trainItems = 0
        // The steps since the last log row.
        var windowLoss = 0.0, windowNorm = 0.0, windowSteps = 0, windowItems = 0, windowSeconds = 0.0
        var lastRate = Double.nan
        var lastMetrics: [String: Double] = [:]
        var stepLosses: [Double] = []
        var stoppedEarly = false

        // One warning per run when a loss, still finite, grows past 1000 times the first
        // step's (and past 1000): a run that is diverging without overflowing yet.
        var firstLoss: Double?, warnedHuge = false
        func warnIfHuge(_ loss: Double, what: String, step: Int) {
            guard !warnedHuge, let first = firstLoss, loss > 1000 * max(first, 1) else { return }
            warnedHuge = true
            reporter.message("\(task.label): warning: \(what) \(String(format: "%.4g", loss)) at step \(step) is over 1000 times "
                             + "the first step's training loss (\(String(format: "%.4g", first))); the learning rate may be too high")
        }

        /// A log row for the steps since the previous one (a row with the metrics of an
        /// evaluation at the same step is completed instead), and its TensorBoard points.
        func logTrainingWindow() throws {
            guard windowSteps > 0 else { return }
            let rate = windowSeconds > 0 ? Double(windowItems) / windowSeconds : .nan
            let row = TrainingLogRow(step: step, trainLoss: windowLoss / Double(windowSteps), learningRate: lastRate,
                                     gradientNorm: windowNorm / Double(windowSteps), metrics: metricNames.map { _ in .nan },
                                     itemsPerSecond: rate, seconds: wallBefore + clock() - start)
            log.rows.append(row)
            try events?.write(step: step, scalars: [("train/loss", row.trainLoss), ("train/learning_rate", row.learningRate),
                                                    ("train/grad_norm", row.gradientNorm), ("train/\(task.itemName)_per_s", rate)])
            windowLoss = 0; windowNorm = 0; windowSteps = 0; windowItems = 0; windowSeconds = 0
        }

        // Both files of one save carry its id; the resume file alone holds all of the state, so
        // whichever write a crash interrupts, the folder keeps one complete save.
        func saveLastAndState(extra: [String: String]) throws {
            let carried = model.carriedState    // gathered from every rank
            guard isRoot else { return }
            // The step and a hash of the weights: a deterministic id (so equal runs write equal
            // files) that differs between any two saves a resume could confuse.
            let id = "\(step)-" + String(TrainingState.parametersHash(params.map(\.values)), radix: 16)
            try model.writeCheckpoint(to: lastPath, extra: extra.merging(["save_id": id]) { _, new in new })
            try TrainingState(step: step, optimizerSteps: optimizer.stepCount, position: task.data.position,
                              trainSeconds: trainBefore + trainSeconds, wallSeconds: wallBefore + clock() - start,
                              best: best, bestStep: bestStep, fingerprint: fp, saveID: id,
                              parameters: params.map { NamedTensor(name: $0.name, shape: $0.shape, values: $0.values) },
                              optimizer: Dictionary(optimizer.state.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a }),
                              carried: carried, evaluationsSinceBest: sinceBest).write(to: statePath)
        }

        func evaluateAndSave() throws {
            // Never save diverged weights over a good checkpoint.
            for p in params where !(0..<p.count).allSatisfy({ p.value[$0].isFinite }) {
                throw TrainingError.nonFiniteParameters(step: step)
            }
            let metrics = try evaluation?.evaluate() ?? [:]
            let value = evaluation.map { metrics[$0.validationMetric] ?? .nan } ?? .nan
            // A NaN or infinite validation figure is divergence too: stop before saving, so the
            // last checkpoint stays the last one with finite weights and finite losses.
            if let e = evaluation {
                for name in [e.validationMetric] + metricNames.filter({ $0.contains("loss") }) {
                    if let v = metrics[name], !v.isFinite { throw TrainingError.nonFiniteMetric(step: step, metric: name, value: v) }
                }
                if !value.isFinite { throw TrainingError.nonFiniteMetric(step: step, metric: e.validationMetric, value: value) }
                for name in metricNames where name.contains("loss") { warnIfHuge(metrics[name] ?? 0, what: name, step: step) }
            }
            lastMetrics = metrics
            try logTrainingWindow()
            if evaluation != nil {
                let values = metricNames.map { metrics[$0] ?? .nan }
                if let last = log.rows.last, last.step == step {
                    log.rows[log.rows.count - 1].metrics = values
                } else {
                    log.rows.append(TrainingLogRow(step: step, trainLoss: .nan, metrics: values, itemsPerSecond: .nan,
                                                   seconds: wallBefore + clock() - start))
                }
                try events?.write(step: step, scalars: metricNames.compactMap { name in
                    metrics[name].map { (name.hasPrefix("val_") ? "val/" + name.dropFirst(4) : "val/" + name, $0) }
                })
            }
            var extra = ["step": "\(step)"]
            if let e = evaluation { extra[e.validationMetric] = String(format: "%.6f", value) }
            let improved = evaluation == nil || direction.isBetter(value, than: best)
            if improved { best = value; bestStep = step; sinceBest = 0 } else { sinceBest += 1 }
            try saveLastAndState(extra: extra)
            if improved && isRoot { try model.writeCheckpoint(to: bestPath, extra: extra) }
            if isRoot { try log.write(to: logPath) }
            if let e = evaluation {
                reporter.message("step \(step): \(e.validationMetric) " + String(format: "%.4f (best %.4f at step %d)", value, best, bestStep))
            }
        }

        // Under mpirun a signal means the job is ending: mpirun sends SIGTERM to every rank when
        // one fails or when it is interrupted itself, and kills them shortly after. The ranks stop
        // together after the step if all are alive; if one is gone they never finish the step,
        // so rank 0 says at once what happened.
        let notice = group.isDistributed && isRoot
            ? "\(task.label): stop signal from mpirun (a rank ended, or the job was interrupted): ending all ranks; "
                + "the checkpoints in \(c.outDirectory) stay as last saved"
            : nil
        let restoreSignals = handlesSignals ? SignalTrap.arm(notice: notice) : nil
        defer { restoreSignals?() }
        var interrupted: TrainingInterrupted?
        var allReduce = DistributedGradients(parameters: params, group: group)
        var agreedSignal: Int32?
        // Under mpirun the time budget and a time-based schedule follow rank 0's clock, so every
        // rank stops after the same step with the same learning rates.
        var agreedTrainTime = trainBefore
        while true {
            if let s = total, step >= s { break }
            if let b = timeBudget, (group.isDistributed ? agreedTrainTime : trainBefore + trainSeconds) >= b { break }
            if handlesSignals, let sig = group.isDistributed ? agreedSignal : SignalTrap.caught {
                interrupted = TrainingInterrupted(signal: sig, step: step, outDirectory: c.outDirectory)
                break
            }
            // Training time counts everything a step costs (loading the batch, the step, the
            // optimizer, progress output), not evaluation or checkpoints.
            let t0 = clock()
            let batch = task.data.next()
            let loss = model.trainStep(on: batch, seed: Self.stepSeed(runSeed: c.seed, step: step))
            let items = batch.itemCount
            // Throws `TrainingError.nonFiniteLoss` on divergence, before the weights change.
            try reporter.update(step: step + 1, loss: loss, tokens: items, budgetUsed: trainBefore + trainSeconds + clock() - t0)
            if firstLoss == nil { firstLoss = loss }
            warnIfHuge(loss, what: "training loss", step: step + 1)
            if group.isDistributed {
                (agreedSignal, agreedTrainTime) = allReduce.sum(signal: handlesSignals ? SignalTrap.caught : nil,
                                                                trainingTime: trainBefore + trainSeconds + clock() - t0)
            }
            // The norm before clipping (clipping off: measured only).
            let norm = clipGradientNorm(params, maxNorm: c.clip)
            let elapsed = group.isDistributed ? agreedTrainTime : trainBefore + trainSeconds + clock() - t0
            let fraction = horizon.steps == nil ? horizon.seconds.map { elapsed / $0 } : nil
            optimizer.learningRate = schedule.rate(at: step, timeFraction: fraction)
            optimizer.step()
            step += 1
            stepLosses.append(loss)
            let dt = clock() - t0
            trainSeconds += dt; trainItems += items
            windowLoss += loss; windowNorm += Double(norm); windowSteps += 1; windowItems += items; windowSeconds += dt
            lastRate = Double(optimizer.learningRate)
            if step % c.logEvery == 0 { try logTrainingWindow() }
            if c.evalEvery > 0 && step % c.evalEvery == 0 {
                try evaluateAndSave()
                if let p = c.patience, sinceBest >= p, let e = evaluation {
                    reporter.message("\(task.label): stopping early: \(e.validationMetric) has not improved for \(p) evaluation(s); "
                                     + "best \(String(format: "%.4f", best)) at step \(bestStep) is kept in \(bestPath)")
                    stoppedEarly = true
                    break
                }
            } else if step % c.logEvery == 0 && isRoot {
                try log.write(to: logPath)
            }
            if isRoot, let hook = task.afterStep, let text = hook(step) { reporter.message(text) }
        }
        reporter.finish()
        if let interrupted {
            try logTrainingWindow()
            try saveLastAndState(extra: ["step": "\(step)"])
            if isRoot { try log.write(to: logPath) }
            group.barrier()
            throw interrupted
        }
        if !stoppedEarly && (log.evaluationRows.last?.step != step || step == 0) { try evaluateAndSave() }
        if isRoot, let plotter, !log.rows.isEmpty {
            // Too few log rows for a curve (a run shorter than two --log-every windows): the plot
            // shows this process's loss of every step instead, with the evaluations as they are.
            var plotted = log
            if log.rows.filter({ !$0.trainLoss.isNaN }).count < 2 && stepLosses.count >= 2 {
                let first = step - stepLosses.count
                plotted.rows = stepLosses.enumerated().map {
                    TrainingLogRow(step: first + $0.offset + 1, trainLoss: $0.element, metrics: metricNames.map { _ in .nan },
                                   itemsPerSecond: .nan, seconds: .nan)
                } + log.evaluationRows.map { var r = $0; r.trainLoss = .nan; return r }
            }
            try plotter("\(task.label) loss", plotted, plotPath)
        }
        // Nobody reads the files before rank 0 has written them.
        group.barrier()
        if endsOtherRanksAfterRun && !isRoot {
            group.finalize()
            exit(0)
        }
        let bpe = max(1, task.data.batchesPerEpoch)
        var summary = TrainingRunSummary(
            tool: task.label, runDirectory: c.outDirectory,
            steps: step, epochs: Double(step) / Double(bpe), seconds: wallBefore + clock() - start,
            trainSeconds: trainBefore + trainSeconds, trainLoss: log.rows.last(where: { !$0.trainLoss.isNaN })?.trainLoss ?? .nan,
            itemsPerSecond: trainSeconds > 0 ? Double(trainItems) / trainSeconds : 0, itemName: task.itemName,
            validationMetric: evaluation?.validationMetric ?? "", validation: evaluation.map { lastMetrics[$0.validationMetric] ?? .nan } ?? .nan,
            bestValidation: evaluation == nil ? .nan : best, bestStep: bestStep, metrics: lastMetrics,
            checkpoint: bestPath, stepLosses: stepLosses, ranks: group.size, allReduceSeconds: allReduce.seconds,
            rankWaitSeconds: allReduce.waitSeconds)
        summary.stoppedEarly = stoppedEarly
        return summary
    }

    /// `1234567` as `1,234,567`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }
}

/// How far a budget-driven learning-rate schedule (cosine, or step decay without a fixed
/// interval) runs: steps, or seconds of training. Saved in the run's fingerprint as
/// `schedule_horizon` (`"500 steps"`, `"60.0 s"`, `"none"`).
struct ScheduleHorizon: Equatable {
    var steps: Int?
    var seconds: Double?

    init(steps: Int?, seconds: Double?) {
        self.steps = steps
        self.seconds = steps == nil ? seconds : nil
    }

    /// Parses the fingerprint's text; nil for none or anything else.
    init?(text: String?) {
        guard let text else { return nil }
        if text.hasSuffix(" steps"), let n = Int(text.dropLast(6)) { self.init(steps: n, seconds: nil); return }
        if text.hasSuffix(" s"), let t = Double(text.dropLast(2)) { self.init(steps: nil, seconds: t); return }
        return nil
    }
}

/// `config.json` of a run folder: the tool, the engine's settings (the budget as it stands,
/// the command line that recreates the task under `training.arguments`), the task's settings
/// and the fingerprint a resume must match. `--resume DIR` reads it so nothing needs retyping.
public struct RunConfiguration: Codable, Sendable {
    /// The tool (the task's label).
    public var tool: String
    /// The engine's settings.
    public var training: TrainingConfiguration
    /// The task's settings by field name.
    public var task: [String: String]
    /// The settings a resume must match.
    public var fingerprint: [String: String]

    /// A record; see the properties.
    public init(tool: String, training: TrainingConfiguration, task: [String: String], fingerprint: [String: String]) {
        self.tool = tool; self.training = training; self.task = task; self.fingerprint = fingerprint
    }

    /// Writes it atomically as indented JSON with sorted keys (slashes unescaped).
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(encoder.encode(self), to: path)
    }

    /// Reads `DIR/config.json`.
    /// - Throws: `ModelLoadError.badMetadata` naming the file when it is not a run's configuration.
    public static func read(path: String) throws -> RunConfiguration {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(RunConfiguration.self, from: data)
        } catch {
            throw ModelLoadError.badMetadata(path, "not a run configuration this version can read")
        }
    }
}
