import ArgumentParser
import RecurrentCore

/// `--precision fp32|bf16`: the number format of the recurrent products (see `Precision`), for
/// training (part of `RunOptions`) and for the commands that run a trained model.
public struct PrecisionOption: ParsableArguments {
    @Option(help: "Recurrent matrix products in fp32, or bf16 with fp32 accumulation (native with AVX512_BF16; emulated elsewhere, training no faster than fp32).")
    public var precision: Precision = .fp32

    public init() {}

    /// The precision; where it is emulated (bf16 without AVX512_BF16) one line on standard
    /// error says so, `<tool>: bf16 is emulated (…)`.
    public func announced(tool: String) -> Precision {
        if let note = Precision.emulationNote(for: precision) { TrainingCLI.printError("\(tool): \(note)") }
        return precision
    }
}

/// Where a run reads and writes, its seed, threads and precision: `--data --out --resume
/// --overwrite --init-from --val-fraction --seed --threads --precision --log-every --verbose`.
/// Options without a value take the tool's default (`TrainingDefaults`).
public struct RunOptions: ParsableArguments {
    @Option(help: "Training data: a file or folder (what it holds depends on the tool).")
    public var data: String?
    @Option(help: "Run folder for config.json, checkpoints, log.csv, loss.png and TensorBoard events (default: a new runs/<tool>/<YYYYMMDD-HHMMSS>).")
    public var out: String?
    @Option(name: .customLong("val-fraction"), help: "Share of the training data held out for validation (0 = none).")
    public var valFraction: Double?
    @Option(help: "Random seed (initialisation, shuffling, dropout).")
    public var seed: UInt64?
    @Option(help: "Data-parallel threads (batch shards); default: all cores.")
    public var threads: Int?
    @OptionGroup public var precision: PrecisionOption
    @Option(help: ArgumentHelp("Continue the run in DIR with its saved settings (weights, optimizer, schedule, data position), bit-identically; "
                               + "--time-budget then adds seconds, --steps and --epochs count the whole run.", valueName: "DIR"))
    public var resume: String?
    @Flag(help: "Replace the run held in --out.")
    public var overwrite = false
    @Option(name: .customLong("init-from"), help: ArgumentHelp("Start from this checkpoint's weights (same architecture and vocabulary or classes) with fresh optimizer state.", valueName: "CHECKPOINT"))
    public var initFrom: String?
    @Option(name: .customLong("log-every"), help: "A log.csv row and TensorBoard points every N steps (default 10).")
    public var logEvery: Int?
    @Flag(help: "Print a line about the machine before training.")
    public var verbose = false

    public init() {}
}

/// `--test-fraction`, for the tools that hold a test split out of `--data` (translate-toy,
/// frame-classify, and speech-classify as the fraction of a random split). `--val-fraction`
/// (in `RunOptions`) is then taken from what remains for training.
public struct TestFractionOption: ParsableArguments {
    @Option(name: .customLong("test-fraction"), help: "Share of --data held out as the test split, seeded by --seed (default: the tool's).")
    public var testFraction: Double?

    public init() {}

    /// The given fraction, or the tool's default.
    public func value(_ defaults: TrainingDefaults) -> Double { testFraction ?? defaults.testFraction }
}

/// The recurrent stack: `--cell --layers --hidden --dropout`.
public struct ModelOptions: ParsableArguments {
    @Option(help: "Recurrent cell.")
    public var cell: CellKind?
    @Option(help: "Recurrent layers.")
    public var layers: Int?
    @Option(help: "Hidden units per layer (and direction).")
    public var hidden: Int?
    @Option(help: "Dropout between recurrent layers and before the output layer.")
    public var dropout: Float?

    public init() {}
}

/// `--bidirectional`, for the tools whose models read the whole sequence first.
public struct BidirectionalOption: ParsableArguments {
    @Flag(help: "Run a second recurrent direction over the reversed sequence.")
    public var bidirectional = false

    public init() {}
}

/// Optimizer and learning rate: `--optimizer --lr --lr-schedule --lr-floor --lr-decay-every
/// --lr-decay-factor --warmup --clip --momentum --nesterov --weight-decay`.
public struct OptimizationOptions: ParsableArguments {
    @Option(help: "Optimizer.")
    public var optimizer: OptimizerKind?
    @Option(help: "Base learning rate (default: 1.0 for sgd, 2e-3 otherwise, unless the tool says otherwise).")
    public var lr: Float?
    @Option(name: .customLong("lr-schedule"), help: "Learning-rate schedule after warm-up (cosine and step run over --steps/--epochs, or over --time-budget).")
    public var lrSchedule: LearningRateScheduleKind?
    @Option(name: .customLong("lr-floor"), help: "cosine: the final rate as a fraction of --lr.")
    public var lrFloor: Double?
    @Option(name: .customLong("lr-decay-every"), help: "step: steps between decays (default: a third of the run).")
    public var lrDecayEvery: Int?
    @Option(name: .customLong("lr-decay-factor"), help: "step: factor applied to the rate at each decay.")
    public var lrDecayFactor: Float?
    @Option(help: "Linear learning-rate warm-up steps.")
    public var warmup: Int?
    @Option(help: "Gradient clipping by global norm; 0 = off.")
    public var clip: Float?
    @Option(help: "Momentum (sgd, rmsprop).")
    public var momentum: Float?
    @Flag(help: "Nesterov momentum (sgd with --momentum).")
    public var nesterov = false
    @Option(name: .customLong("weight-decay"), help: "Weight decay (L2; decoupled for adamw, default 0.01 there).")
    public var weightDecay: Float?

    public init() {}
}

/// Batch size and budget: `--batch --steps --epochs --time-budget --eval-every`.
public struct BudgetOptions: ParsableArguments {
    @Option(help: "Examples (or streams) per step.")
    public var batch: Int?
    @Option(help: "Training steps in all (a resumed run counts the earlier ones).")
    public var steps: Int?
    @Option(help: "Passes over the training data.")
    public var epochs: Int?
    @Option(name: .customLong("time-budget"), help: "Seconds of training (evaluation not counted).")
    public var timeBudget: Double?
    @Option(name: .customLong("eval-every"), help: "Evaluate and write checkpoints every N steps (and at the end); 0 = only at the end.")
    public var evalEvery: Int?
    @Option(help: "Stop after N evaluations without a better validation metric (best.safetensors keeps the best).")
    public var patience: Int?

    public init() {}
}
