import Foundation

/// The one training loop of the suite. An application supplies a `TrainingTask` (model,
/// batches, evaluation); the engine owns the rest:
///
/// - budget: `steps`, `epochs` or `timeBudget` (training time only, evaluation excluded);
/// - optimizer, learning-rate schedule with warm-up, gradient clipping by global norm;
/// - evaluation every `evalEvery` steps and at the end; `best.safetensors` by the task's
///   validation metric, `last.safetensors`, the resume file `last.train.safetensors`, `log.csv`,
///   `loss.png` (through `plotter`), the progress line and the summary;
/// - resume: optimizer moments, schedule position, per-step seeds, data position and carried
///   state continue bit-identically; a run whose fingerprinted settings differ is refused;
/// - signals (when `handlesSignals`): SIGINT/SIGTERM finish the current step, save, and throw
///   `TrainingInterrupted`; a second signal exits at once;
/// - a NaN or infinite loss, validation loss or validation metric (or weights found
///   non-finite at an evaluation point) throws `TrainingError` before anything more is saved,
///   so the last checkpoint is the last one with finite weights and losses; a loss still
///   finite but over 1000 times the first step's gets one warning line.
///
/// Files are written atomically (`AtomicFile`); nothing is written before the first step
/// unless resuming. A save writes `last.safetensors`, then the resume file, which holds the
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
    ///   `TrainingResumeError` when resuming is impossible, `TrainingError.nonFiniteLoss` on
    ///   divergence (the last checkpoint stays), `TrainingInterrupted` after a signal, file errors.
    public func run() throws -> TrainingRunSummary {
        let c = configuration
        try c.validate()
        let model = task.model
        let params = model.parameters
        let optimizer = c.makeOptimizer(parameters: params)
        let total = totalSteps
        let schedule = c.makeSchedule(totalSteps: total)
        let evaluation = task.evaluation
        let metricNames = evaluation?.metricNames ?? []
        let direction = evaluation?.direction ?? .lowerIsBetter
        let group = processGroup, isRoot = group.isRoot
        try model.distribute(over: group)
        let print = !isRoot ? { _ in } : progressOutput ?? { FileHandle.standardError.write(Data($0.utf8)) }
        let fp = fingerprint

        var step = 0, bestStep = 0
        var trainBefore = 0.0, wallBefore = 0.0
        var best = direction.worst
        var log = TrainingLog(metricNames: metricNames, itemName: task.itemName)
        var repairLast: String?
        if c.resume {
            let fm = FileManager.default
            guard fm.fileExists(atPath: lastPath), fm.fileExists(atPath: statePath) else {
                throw TrainingResumeError.nothingToResume(path: c.outDirectory)
            }
            // The resume file is the saved state, whole: weights, optimizer and data position of
            // one save. `last.safetensors` is written just before it, so a crash between the two
            // leaves it one save ahead; it still serves to check the model and data against this run.
            let state = try TrainingState.read(path: statePath)
            if let d = TrainingFingerprint.firstDifference(saved: state.fingerprint, now: fp) {
                throw TrainingResumeError.configurationDiffers(path: statePath, field: d.field, saved: d.saved, now: d.now)
            }
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
            log = TrainingLog.read(path: logPath, metricNames: metricNames, itemName: task.itemName)
            log.rows = log.rows.filter { $0.step <= step }
            if let id = repairLast {
                // Bring last.safetensors back to the state being resumed.
                try model.writeCheckpoint(to: lastPath, extra: ["step": "\(step)", "save_id": id])
                print("\(task.label): \(lastPath) was not from the save in \(statePath) (a run stopped between the two); "
                      + "rewrote it from the training state\n")
            }
            print("\(task.label): resuming from \(statePath) at step \(step) (\(state.position))\n")
        }

        // Temporary files of writes that a killed run left half-way (after the checks of a
        // resume, so that a refused one changes nothing).
        let stale = AtomicFile.removeStaleTemporaries(in: c.outDirectory)
        if !stale.isEmpty {
            print("\(task.label): removed \(stale.count) temporary file(s) left in \(c.outDirectory) by a stopped run\n")
        }
        // Every rank starts from rank 0's weights.
        if group.isDistributed { for p in params { group.broadcast(p.value, count: p.count) } }
        if group.isDistributed { print("\(task.label): \(group.size) ranks share each batch of every step\n") }

        let reporter = !isRoot
            ? ProgressReporter(totalSteps: total, timeBudget: c.timeBudget, label: task.label, isTTY: false, interval: .seconds(3600), output: { _ in })
            : progressOutput != nil
            ? ProgressReporter(totalSteps: total, timeBudget: c.timeBudget, label: task.label, isTTY: false, interval: .seconds(10), output: print)
            : ProgressReporter(totalSteps: total, timeBudget: c.timeBudget, label: task.label)
        let clock = ProgressReporter.monotonicSeconds
        let start = clock()
        var trainSeconds = 0.0, trainItems = 0
        var windowLoss = 0.0, windowSteps = 0, windowItems = 0, windowSeconds = 0.0
        var lastLoss = Double.nan, lastMetrics: [String: Double] = [:]
        var stepLosses: [Double] = []
        var wroteAnything = c.resume

        // One warning per run when a loss, still finite, grows past 1000 times the first
        // step's (and past 1000): a run that is diverging without overflowing yet.
        var firstLoss: Double?, warnedHuge = false
        func warnIfHuge(_ loss: Double, what: String, step: Int) {
            guard !warnedHuge, let first = firstLoss, loss > 1000 * max(first, 1) else { return }
            warnedHuge = true
            reporter.message("\(task.label): warning: \(what) \(String(format: "%.4g", loss)) at step \(step) is over 1000 times "
                             + "the first step's training loss (\(String(format: "%.4g", first))); the learning rate may be too high")
        }

        func prepareOutput() throws {
            if !wroteAnything && isRoot {
                try FileManager.default.createDirectory(atPath: c.outDirectory, withIntermediateDirectories: true)
                wroteAnything = true
            }
        }

        // Both files of one save carry its id; the resume file alone holds all of the state, so
        // whichever write a crash interrupts, the folder keeps one complete save.
        func saveLastAndState(extra: [String: String]) throws {
            let carried = model.carriedState    // gathered from every rank
            guard isRoot else { return }
            try prepareOutput()
            // The step and a hash of the weights: a deterministic id (so equal runs write equal
            // files) that differs between any two saves a resume could confuse.
            let id = "\(step)-" + String(TrainingState.parametersHash(params.map(\.values)), radix: 16)
            try model.writeCheckpoint(to: lastPath, extra: extra.merging(["save_id": id]) { _, new in new })
            try TrainingState(step: step, optimizerSteps: optimizer.stepCount, position: task.data.position,
                              trainSeconds: trainBefore + trainSeconds, wallSeconds: wallBefore + clock() - start,
                              best: best, bestStep: bestStep, fingerprint: fp, saveID: id,
                              parameters: params.map { NamedTensor(name: $0.name, shape: $0.shape, values: $0.values) },
                              optimizer: Dictionary(optimizer.state.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a }),
                              carried: carried).write(to: statePath)
        }

        func evaluateAndSave(final: Bool) throws {
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
            if windowSteps > 0 || final {
                log.rows.append(TrainingLogRow(
                    step: step, trainLoss: windowSteps > 0 ? windowLoss / Double(windowSteps) : lastLoss,
                    metrics: metricNames.map { metrics[$0] ?? .nan },
                    itemsPerSecond: windowSeconds > 0 ? Double(windowItems) / windowSeconds : 0,
                    seconds: wallBefore + clock() - start))
            }
            windowLoss = 0; windowSteps = 0; windowItems = 0; windowSeconds = 0
            var extra = ["step": "\(step)"]
            if let e = evaluation { extra[e.validationMetric] = String(format: "%.6f", value) }
            let improved = evaluation == nil || direction.isBetter(value, than: best)
            if improved { best = value; bestStep = step }
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
            if let b = c.timeBudget, (group.isDistributed ? agreedTrainTime : trainBefore + trainSeconds) >= b { break }
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
            try reporter.update(step: step + 1, loss: loss, tokens: items)
            if firstLoss == nil { firstLoss = loss }
            warnIfHuge(loss, what: "training loss", step: step + 1)
            if group.isDistributed {
                (agreedSignal, agreedTrainTime) = allReduce.sum(signal: handlesSignals ? SignalTrap.caught : nil,
                                                                trainingTime: trainBefore + trainSeconds + clock() - t0)
            }
            if c.clip > 0 { clipGradientNorm(params, maxNorm: c.clip) }
            let elapsed = group.isDistributed ? agreedTrainTime : trainBefore + trainSeconds + clock() - t0
            let fraction = total == nil ? c.timeBudget.map { elapsed / $0 } : nil
            optimizer.learningRate = schedule.rate(at: step, timeFraction: fraction)
            optimizer.step()
            step += 1
            lastLoss = loss
            stepLosses.append(loss)
            let dt = clock() - t0
            trainSeconds += dt; trainItems += items
            windowLoss += loss; windowSteps += 1; windowItems += items; windowSeconds += dt
            if c.evalEvery > 0 && step % c.evalEvery == 0 { try evaluateAndSave(final: false) }
            if isRoot, let hook = task.afterStep, let text = hook(step) { reporter.message(text) }
        }
        reporter.finish()
        if let interrupted {
            try saveLastAndState(extra: ["step": "\(step)"])
            if isRoot { try log.write(to: logPath) }
            group.barrier()
            throw interrupted
        }
        if log.rows.last?.step != step || step == 0 { try evaluateAndSave(final: true) }
        if isRoot, let plotter, !log.rows.isEmpty { try plotter("\(task.label) loss", log, plotPath) }
        // Nobody reads the files before rank 0 has written them.
        group.barrier()
        if endsOtherRanksAfterRun && !isRoot {
            group.finalize()
            exit(0)
        }
        let bpe = max(1, task.data.batchesPerEpoch)
        return TrainingRunSummary(
            steps: step, epochs: Double(step) / Double(bpe), seconds: wallBefore + clock() - start,
            trainSeconds: trainBefore + trainSeconds, trainLoss: lastLoss,
            itemsPerSecond: trainSeconds > 0 ? Double(trainItems) / trainSeconds : 0, itemName: task.itemName,
            validationMetric: evaluation?.validationMetric ?? "", validation: evaluation.map { lastMetrics[$0.validationMetric] ?? .nan } ?? .nan,
            bestValidation: evaluation == nil ? .nan : best, bestStep: bestStep, metrics: lastMetrics,
            checkpoint: bestPath, stepLosses: stepLosses, ranks: group.size, allReduceSeconds: allReduce.seconds,
            rankWaitSeconds: allReduce.waitSeconds)
    }
}
