import Foundation

/// The optimizers every tool offers.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// Stochastic gradient descent, with optional momentum and Nesterov momentum.
    case sgd
    /// Adam with L2 weight decay.
    case adam
    /// Adam with decoupled weight decay.
    case adamw
    /// RMSProp.
    case rmsprop

    /// The learning rate a tool uses when none is given: 1.0 for SGD, 2e-3 otherwise.
    public var defaultLearningRate: Float { self == .sgd ? 1.0 : 2e-3 }
}

/// The learning-rate schedules every tool offers (after the linear warm-up).
public enum LearningRateScheduleKind: String, Codable, Sendable, CaseIterable {
    /// The base rate throughout.
    case constant
    /// Cosine from the base rate down to `lrFloor` times it over the run (steps, or the time budget).
    case cosine
    /// The rate multiplied by `lrDecayFactor` every `lrDecayEvery` steps (default: every third of the run).
    case step
}

/// How a training run is driven: budget, optimizer, schedule, clipping, evaluation and output.
/// The same settings for every application; its own settings (model size, data) live with it.
///
/// The fields marked "fingerprinted" must match when a run is resumed (see `fingerprint`); the
/// budget, evaluation interval and output settings may change.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// Optimizer (fingerprinted).
    public var optimizer: OptimizerKind = .adam
    /// Base learning rate (fingerprinted).
    public var learningRate: Float = 2e-3
    /// SGD and RMSProp momentum (fingerprinted).
    public var momentum: Float = 0
    /// Nesterov momentum for SGD (fingerprinted).
    public var nesterov = false
    /// Weight decay; nil = 0, or 0.01 for AdamW (fingerprinted).
    public var weightDecay: Float?
    /// Schedule after warm-up (fingerprinted).
    public var lrSchedule: LearningRateScheduleKind = .constant
    /// Cosine: the final rate as a fraction of the base rate (fingerprinted).
    public var lrFloor: Double = 0.1
    /// Step schedule: steps between decays; nil = a third of the run (fingerprinted).
    public var lrDecayEvery: Int?
    /// Step schedule: factor applied at each decay (fingerprinted).
    public var lrDecayFactor: Float = 0.1
    /// Linear warm-up steps (fingerprinted).
    public var warmup = 0
    /// Gradient clipping by global norm; 0 = off (fingerprinted).
    public var clip: Float = 5
    /// Stop after this many optimizer steps in all (a resumed run counts the earlier ones).
    public var steps: Int?
    /// Stop after this many passes over the training batches.
    public var epochs: Int?
    /// Stop after this many seconds of training; evaluation and checkpoint writing do not count.
    public var timeBudget: Double?
    /// Evaluate and write checkpoints every this many steps (and at the end); 0 = only at the end.
    public var evalEvery = 250
    /// Seeds the per-step randomness (fingerprinted).
    public var seed: UInt64 = 0
    /// Data-parallel threads (fingerprinted: dropout masks are drawn per batch shard).
    public var threads: Int = Threading.defaultThreads
    /// Number format of the recurrent products (fingerprinted: a run trained in bf16 and
    /// continued in fp32 is a different run). Checkpoints are fp32 either way.
    public var precision: Precision = .fp32
    /// Folder for `last.safetensors`, `best.safetensors`, `last.train.safetensors`, `log.csv`, `loss.png`.
    public var outDirectory = "runs/train"
    /// Continue the run saved in `outDirectory`.
    public var resume = false
    /// Start a new run in an `outDirectory` that holds one, removing that run's files first.
    public var overwrite = false
    /// A new run starts from this checkpoint's weights (same architecture, vocabulary or
    /// classes) with fresh optimizer state; nil = the model's own initialisation.
    public var initFrom: String?
    /// Stop after this many evaluations in a row without a better validation metric (the best
    /// checkpoint stays); nil = never.
    public var patience: Int?
    /// A `log.csv` row (and TensorBoard points) every this many steps.
    public var logEvery = 10
    /// Resuming: `timeBudget` counts seconds of training beyond what the saved run has done
    /// (the command line's `--resume --time-budget 60`), not the whole run's.
    public var timeBudgetAdds = false
    /// The tool's command-line arguments that recreate the run's task (recorded in `config.json`
    /// so `--resume DIR` needs no retyping); empty for library use.
    public var commandLine: [String] = []

    /// The defaults above.
    public init() {}

    /// Fields that may differ between a run and its resumption.
    static let unfingerprinted: Set<String> = ["steps", "epochs", "time_budget", "eval_every", "out_directory", "resume", "overwrite",
                                               "init_from", "patience", "log_every", "time_budget_adds", "arguments"]

    /// The settings that must not change across `--resume`, by configuration field name
    /// (`learning_rate`, `lr_schedule`, …), with their values as text.
    public var fingerprint: [String: String] {
        var fields = TrainingFingerprint.fields(of: self).filter { !Self.unfingerprinted.contains($0.key) }
        // fp32 is what runs saved before the setting existed used: left out so they still resume.
        if precision == .fp32 { fields["precision"] = nil }
        return fields
    }

    /// Checks the settings; the message names the field's option.
    /// - Throws: `TrainingSetupError.invalid` for an out-of-range value or no budget.
    public func validate() throws {
        func fail(_ option: String, _ what: String) -> TrainingSetupError { .invalid(option: option, reason: what) }
        if steps == nil && epochs == nil && timeBudget == nil { throw fail("--steps", "give one of --steps, --epochs or --time-budget") }
        if let s = steps, s < 0 { throw fail("--steps", "must be at least 0 (got \(s))") }
        if let e = epochs, e < 1 { throw fail("--epochs", "must be at least 1 (got \(e))") }
        if let t = timeBudget, !(t > 0 && t.isFinite) { throw fail("--time-budget", "must be a positive number of seconds (got \(t))") }
        if !(learningRate > 0 && learningRate.isFinite) { throw fail("--lr", "must be positive (got \(learningRate))") }
        if !(lrFloor >= 0 && lrFloor <= 1) { throw fail("--lr-floor", "must be in [0, 1] (got \(lrFloor))") }
        if let e = lrDecayEvery, e < 1 { throw fail("--lr-decay-every", "must be at least 1 (got \(e))") }
        if !(lrDecayFactor > 0 && lrDecayFactor <= 1) { throw fail("--lr-decay-factor", "must be in (0, 1] (got \(lrDecayFactor))") }
        if !(momentum >= 0 && momentum < 1) { throw fail("--momentum", "must be in [0, 1) (got \(momentum))") }
        if nesterov && (optimizer != .sgd || momentum == 0) { throw fail("--nesterov", "needs --optimizer sgd and a --momentum above 0") }
        if let w = weightDecay, !(w >= 0 && w.isFinite) { throw fail("--weight-decay", "must be at least 0 (got \(w))") }
        if warmup < 0 { throw fail("--warmup", "must be at least 0 (got \(warmup))") }
        if !(clip >= 0 && clip.isFinite) { throw fail("--clip", "must be at least 0 (got \(clip))") }
        if evalEvery < 0 { throw fail("--eval-every", "must be at least 0 (got \(evalEvery))") }
        if threads < 1 { throw fail("--threads", "must be at least 1 (got \(threads))") }
        if logEvery < 1 { throw fail("--log-every", "must be at least 1 (got \(logEvery))") }
        if let p = patience, p < 1 { throw fail("--patience", "must be at least 1 (got \(p))") }
        if resume && overwrite { throw fail("--overwrite", "cannot be combined with --resume") }
        if resume && initFrom != nil { throw fail("--init-from", "a resumed run continues from its own weights; leave --init-from out") }
    }

    /// Builds the optimizer over `parameters` (their order keys its saved state).
    public func makeOptimizer(parameters: [Parameter]) -> any Optimizer {
        let optimizer: any Optimizer
        switch self.optimizer {
        case .sgd:
            optimizer = SGD(parameters: parameters, learningRate: learningRate, momentum: momentum, nesterov: nesterov,
                            weightDecay: weightDecay ?? 0)
        case .adam:
            optimizer = Adam(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay ?? 0)
        case .adamw:
            optimizer = AdamW(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay ?? 0.01)
        case .rmsprop:
            optimizer = RMSProp(parameters: parameters, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay ?? 0)
        }
        (optimizer as? SlotOptimizer)?.threads = threads
        return optimizer
    }

    /// The learning-rate schedule: linear warm-up over `warmup` steps, then `lrSchedule`.
    /// - Parameter totalSteps: the run's length in steps when known (steps or epochs); nil for a
    ///   run limited only by time, whose schedule is then driven by the share of the budget used.
    public func makeSchedule(totalSteps: Int?) -> any LearningRateSchedule {
        let decaySteps = max(1, (totalSteps ?? 0) - warmup)
        switch lrSchedule {
        case .constant:
            return LinearWarmup(warmupSteps: warmup, then: ConstantRate(learningRate))
        case .cosine:
            return LinearWarmup(warmupSteps: warmup, then: CosineDecay(base: learningRate, totalSteps: decaySteps,
                                                                      minimum: learningRate * Float(lrFloor)))
        case .step:
            let every = lrDecayEvery ?? max(1, decaySteps / 3)
            return LinearWarmup(warmupSteps: warmup, then: StepDecay(base: learningRate, every: every, gamma: lrDecayFactor,
                                                                    everyFraction: lrDecayEvery == nil ? 1.0 / 3 : nil))
        }
    }

    /// Decodes what is present and keeps the default of every field that is absent, so the
    /// `config.json` of a run written by another version still reads.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? current }
        optimizer = try read(.optimizer, optimizer)
        learningRate = try read(.learningRate, learningRate)
        momentum = try read(.momentum, momentum)
        nesterov = try read(.nesterov, nesterov)
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay)
        lrSchedule = try read(.lrSchedule, lrSchedule)
        lrFloor = try read(.lrFloor, lrFloor)
        lrDecayEvery = try c.decodeIfPresent(Int.self, forKey: .lrDecayEvery)
        lrDecayFactor = try read(.lrDecayFactor, lrDecayFactor)
        warmup = try read(.warmup, warmup)
        clip = try read(.clip, clip)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        timeBudget = try c.decodeIfPresent(Double.self, forKey: .timeBudget)
        evalEvery = try read(.evalEvery, evalEvery)
        seed = try read(.seed, seed)
        threads = try read(.threads, threads)
        precision = try read(.precision, precision)
        outDirectory = try read(.outDirectory, outDirectory)
        resume = try read(.resume, resume)
        overwrite = try read(.overwrite, overwrite)
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
        patience = try c.decodeIfPresent(Int.self, forKey: .patience)
        logEvery = try read(.logEvery, logEvery)
        timeBudgetAdds = try read(.timeBudgetAdds, timeBudgetAdds)
        commandLine = try read(.commandLine, commandLine)
    }

    enum CodingKeys: String, CodingKey {
        case optimizer, learningRate = "learning_rate", momentum, nesterov, weightDecay = "weight_decay"
        case lrSchedule = "lr_schedule", lrFloor = "lr_floor", lrDecayEvery = "lr_decay_every", lrDecayFactor = "lr_decay_factor"
        case warmup, clip, steps, epochs, timeBudget = "time_budget", evalEvery = "eval_every", seed, threads, precision
        case outDirectory = "out_directory", resume, overwrite, initFrom = "init_from", patience, logEvery = "log_every"
        case timeBudgetAdds = "time_budget_adds", commandLine = "arguments"
    }
}

/// A setting that cannot start a run.
public enum TrainingSetupError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `option` (e.g. `--lr`) has a value that cannot work.
    case invalid(option: String, reason: String)

    /// `<option>: <what is wrong>`.
    public var description: String {
        switch self {
        case let .invalid(option, reason): return "\(option): \(reason)"
        }
    }
}
