import Foundation
import RecurrentCore

/// The settings of a frame-classify run that belong to the task: data, features, network,
/// batching and augmentation. How the run is driven (optimizer, budget, resume, …) is the
/// engine's `TrainingConfiguration`.
///
/// Encodes to the task's resume fingerprint, keyed by configuration field names (`data`,
/// `rows`, `width`, `cell`, `per_frame`, `val_fraction`, …).
public struct FrameTrainingOptions: Sendable, Encodable {
    /// Data folder: `DIR/<class>/<clip>/<frame>.png`, or `DIR/<class>/<image>.png` with `rows`;
    /// `train/` and `test/` sub-folders or a seeded split by `testFraction`.
    public var dataPath = ""
    /// Read each image as a sequence of rows (sequential MNIST).
    public var rows = false
    /// Feature size; nil = from the first frame (see `FrameClassification.featureConfig`).
    public var width: Int?, height: Int?
    /// RGB features (default grey).
    public var rgb = false
    /// Append frame differences to every step (frames only).
    public var deltas = false
    /// Recurrent cell, layers and hidden units per direction.
    public var cell: CellKind = .lstm
    public var layers = 1
    public var hidden = 128
    /// Two directions per layer.
    public var bidirectional = false
    /// Learned projection width (0: none; nil: 128 for whole-frame steps wider than 128).
    public var projection: Int?
    /// Pooling of many-to-one models.
    public var pooling: SequenceClassifierConfig.Pooling = .last
    /// Dropout between layers and before the classifier.
    public var dropout: Float = 0
    /// Label every frame from the clips' `labels.txt` (many-to-many) instead of whole clips.
    public var perFrame = false
    /// Examples per step.
    public var batch = 64
    /// Random translation of every training example by up to this many pixels per axis (the
    /// same shift for all frames of a clip); 0 = off.
    public var shift = 0
    /// Test share when the data has no `train/` and `test/` folders.
    public var testFraction = 0.2
    /// Share of the training examples held out for validation (choosing `best.safetensors`);
    /// 0 = none (the last evaluation is the best).
    public var valFraction = 0.1

    /// The defaults above.
    public init() {}

    /// The network settings.
    public var network: FrameNetworkOptions {
        FrameNetworkOptions(cell: cell, layers: layers, hidden: hidden, bidirectional: bidirectional, projection: projection,
                            pooling: pooling, dropout: dropout, perFrame: perFrame)
    }

    enum CodingKeys: String, CodingKey {
        case dataPath = "data", rows, width, height, rgb, deltas, cell, layers, hidden, bidirectional, projection, pooling
        case dropout, perFrame = "per_frame", batch, shift, testFraction = "test_fraction", valFraction = "val_fraction"
    }

    /// Checks the settings; the message names the option.
    func validate() throws {
        func fail(_ option: String, _ reason: String) -> TrainingSetupError { .invalid(option: option, reason: reason) }
        if layers < 1 { throw fail("--layers", "must be at least 1 (got \(layers))") }
        if hidden < 1 { throw fail("--hidden", "must be at least 1 (got \(hidden))") }
        if let p = projection, p < 0 { throw fail("--projection", "must be at least 0 (got \(p))") }
        if !(dropout >= 0 && dropout < 1) { throw fail("--dropout", "must be in [0, 1) (got \(dropout))") }
        if batch < 1 { throw fail("--batch", "must be at least 1 (got \(batch))") }
        if !(0...16).contains(shift) { throw fail("--shift", "must be in 0...16 (got \(shift))") }
        if !(testFraction >= 0 && testFraction < 1) { throw fail("--test-fraction", "must be at least 0 and below 1 (got \(testFraction))") }
        if !(valFraction >= 0 && valFraction < 1) { throw fail("--val-fraction", "must be at least 0 and below 1 (got \(valFraction))") }
        if deltas && rows { throw fail("--deltas", "needs frame steps; it cannot be combined with --rows") }
        if (width == nil) != (height == nil) || !(1...4096).contains(width ?? 1) || !(1...4096).contains(height ?? 1) {
            throw fail("--size", "needs a width and a height in 1...4096 (got \(width ?? 0)x\(height ?? 0))")
        }
    }
}

/// One training batch: padded sequences `[batch, time, features]` with their labels.
public struct FrameTrainingBatch: TrainingBatch, Sendable {
    /// The sequences (see `FrameBatching.batch`).
    public var sequences: SequenceBatch
    /// Examples in the batch.
    public var itemCount: Int { sequences.batch }
}

/// The training examples in seeded, seekable order: epoch `e` visits them in a permutation
/// seeded by (seed, e), in batches of `batchSize` (the last may be smaller); batch `b` of epoch
/// `e` draws its shift augmentation from (seed, e, b). The same position always gives the same
/// batch.
public struct FrameBatchSource: BatchSource {
    public typealias Batch = FrameTrainingBatch
    let examples: [FrameExample]
    let batchSize: Int
    let seed: UInt64
    let shift: Int
    let perFrame: Bool
    let config: FeatureConfig
    let fill: Float
    public private(set) var position = BatchPosition()
    private var order: [Int] = []
    private var orderEpoch = -1

    /// A source over `examples` (at least one).
    /// - Parameters:
    ///   - shift: augmentation in pixels per axis (0 = none), `fill` the value of uncovered pixels.
    public init(examples: [FrameExample], batchSize: Int, seed: UInt64, shift: Int, perFrame: Bool,
                config: FeatureConfig, fill: Float) {
        precondition(!examples.isEmpty && batchSize >= 1, "a batch source needs examples and a positive batch size")
        self.examples = examples; self.batchSize = batchSize; self.seed = seed; self.shift = shift
        self.perFrame = perFrame; self.config = config; self.fill = fill
    }

    public var batchesPerEpoch: Int { (examples.count + batchSize - 1) / batchSize }

    public mutating func next() -> FrameTrainingBatch {
        if orderEpoch != position.epoch {
            order = Array(examples.indices)
            var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(position.epoch))
            rng.shuffle(&order)
            orderEpoch = position.epoch
        }
        let b = position.batch
        let idx = Array(order[(b * batchSize)..<min((b + 1) * batchSize, order.count)])
        var shifts: [(dy: Int, dx: Int)] = []
        if shift > 0 {
            var rng = SeededRandom(seed: (seed &* 0xBF58_476D_1CE4_E5B9) ^ (UInt64(position.epoch) << 32 | UInt64(b)))
            shifts = idx.map { _ in (rng.nextInt(in: -shift...shift), rng.nextInt(in: -shift...shift)) }
        }
        let batch = FrameBatching.batch(examples, indices: idx, perFrame: perFrame, labelled: true,
                                        shift: shift > 0 ? { shifts[$0] } : nil, config: config, fill: fill)
        position = b + 1 < batchesPerEpoch ? BatchPosition(epoch: position.epoch, batch: b + 1) : BatchPosition(epoch: position.epoch + 1)
        return FrameTrainingBatch(sequences: batch)
    }

    public mutating func seek(to position: BatchPosition) throws {
        guard position.epoch >= 0, position.batch >= 0, position.batch < batchesPerEpoch else {
            throw TrainingSetupError.invalid(option: "--resume", reason: "saved data position \(position) does not fit \(batchesPerEpoch) batches per epoch")
        }
        self.position = position
    }
}

/// A `FrameModel` as the training engine sees it: one step on a `FrameTrainingBatch`,
/// `rnn-suite/frames/1` checkpoints.
public final class FrameLearner: TrainableModel {
    /// The model (its weights change in place).
    public let model: FrameModel

    /// Metadata added to every checkpoint: the test split of the run (`FrameTestSplit`).
    public var metadata: [String: String] = [:]

    /// Wraps a model.
    public init(model: FrameModel) { self.model = model }

    public var parameters: [Parameter] { model.network.parameters }

    /// `SequenceClassifier.trainStep`: mean cross-entropy of the batch, gradients in `parameters`.
    public func trainStep(on batch: FrameTrainingBatch, seed: UInt64) -> Double {
        model.network.trainStep(batch.sequences, seed: seed).loss
    }

    /// Trains this rank's shards of each batch (`SequenceClassifier.processGroup`).
    public func distribute(over group: ProcessGroup) throws { model.network.processGroup = group }

    public func writeCheckpoint(to path: String, extra: [String: String]) throws {
        try model.save(to: path, extra: extra.merging(metadata) { a, _ in a })
    }

    public func loadCheckpoint(from path: String) throws {
        let loaded = try FrameModel.load(path: path)
        guard loaded.info == model.info else {
            throw FrameError.invalidCheckpoint(path: path, reason: "its features, statistics, classes or model differ from this run's")
        }
        try model.network.load(Dictionary(loaded.network.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }), source: path)
    }

    /// A new run's start (`--init-from`): the same classes, features and model; the feature
    /// statistics are the new training data's.
    public func initializeWeights(from path: String) throws {
        let loaded = try FrameModel.load(path: path)
        guard loaded.info.classNames == model.info.classNames else {
            throw FrameError.invalidCheckpoint(path: path, reason: "its classes (\(loaded.info.classNames.joined(separator: ", "))) differ from this run's "
                                               + "(\(model.info.classNames.joined(separator: ", ")))")
        }
        guard loaded.info.features == model.info.features, loaded.info.model == model.info.model else {
            throw FrameError.invalidCheckpoint(path: path, reason: "its features or model differ from this run's")
        }
        try model.network.load(Dictionary(loaded.network.stateDict.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }), source: path)
    }
}

/// What a frame-classify run achieved: the engine's summary, with the test set's figures added
/// to its metrics (`test_loss`, `test_accuracy` of `best.safetensors`, `last_test_accuracy`
/// of `last.safetensors`, `test_count`), and the test evaluations themselves.
public struct FrameTrainingReport: Sendable {
    /// The engine's summary (its `json` is the last stdout line of `frame-classify train`).
    public var summary: TrainingRunSummary
    /// `best.safetensors` (chosen on validation data, or the last model without it) on the test set.
    public var test: FrameEvaluation
    /// `last.safetensors` on the test set.
    public var lastTest: FrameEvaluation
}

/// A prepared frame-classify run: data loaded and split, model built, engine set up. `run()`
/// trains, then evaluates on the test set once.
public final class FrameTrainingRun {
    /// The task's settings.
    public let options: FrameTrainingOptions
    /// The feature configuration in use.
    public let features: FeatureConfig
    /// Training examples (without the validation part), normalised.
    public let train: [FrameExample]
    /// Validation examples (a seeded share of the training data), normalised.
    public let validation: [FrameExample]
    /// The test set, normalised with the training statistics.
    public let test: FrameDataset
    /// Loading speed.
    public let load: FrameLoadStatistics
    /// The model being trained.
    public let model: FrameModel
    /// The engine (set `plotter`, `handlesSignals`, `progressOutput` before `run()`).
    public let engine: TrainingEngine<FrameLearner>

    /// Loads `options.dataPath`, splits off the validation share, builds the model and engine.
    /// - Parameters:
    ///   - training: the engine's settings (its `seed` initialises the model, shuffles and
    ///     splits; its `threads` sets batch shards and loading threads).
    ///   - evalEveryEpoch: evaluate once per epoch instead of every `training.evalEvery` steps.
    ///   - label: the tool name for progress lines.
    ///   - message: receives the loading and model lines.
    /// - Throws: `TrainingSetupError` for bad settings, `FrameError` for unusable data; nothing
    ///   is written.
    public init(options o: FrameTrainingOptions, training: TrainingConfiguration, evalEveryEpoch: Bool = false,
                label: String = "frame-classify", message: (String) -> Void = { _ in }) throws {
        try o.validate()
        try training.validate()
        let features = try FrameClassification.featureConfig(root: o.dataPath, rows: o.rows, size: o.width.flatMap { w in o.height.map { (w, $0) } }, rgb: o.rgb,
                                                             deltas: o.deltas, testFraction: o.testFraction, seed: training.seed)
        let (split, load) = try FrameClassification.loadSplit(root: o.dataPath, rows: o.rows, features: features,
                                                              testFraction: o.testFraction, seed: training.seed,
                                                              threads: training.threads)
        let all = split.train.examples
        guard !all.isEmpty else { throw FrameError.invalidArgument("\(o.dataPath): the training set is empty") }
        if o.valFraction > 0 && all.count < 2 {
            throw TrainingSetupError.invalid(option: "--val-fraction", reason: "needs at least 2 training examples (got \(all.count))")
        }
        let parts = ValidationSplit(count: all.count, fraction: o.valFraction, seed: training.seed)
        let train = parts.train.map { all[$0] }, validation = parts.validation.map { all[$0] }
        message("loaded \(train.count) train / \(validation.count) validation / \(split.test.examples.count) test examples, "
                + "\(load.frames) frames in \(fmt(load.seconds, 2)) s (\(Int(load.framesPerSecond)) frames/s), features "
                + "\(features.width)x\(features.height) \(features.colour.rawValue) \(features.mode.rawValue)"
                + "\(features.deltas ? " + deltas" : ""), \(features.featuresPerStep) per step")
        let model = try FrameClassification.makeModel(split: split, network: o.network, seed: training.seed, threads: training.threads,
                                                      batch: o.batch, optimizer: training.optimizer)
        model.network.precision = training.precision
        let info = model.info
        // Labels index the model's classes by construction (the loader maps names); per-frame
        // training needs every clip's labels.txt.
        if info.perFrame, let e = (all + split.test.examples).first(where: { $0.stepLabels == nil }) {
            throw FrameError.invalidArgument("\(e.source): per-frame training needs a labels.txt in every clip")
        }
        message("model \(info.model.jsonString()), \(model.network.parameterCount) parameters, \(training.threads) threads")

        // The normalised value of a black pixel fills what a shift uncovers.
        let fill: Float = info.statistics.map { $0.mean.count == 1 ? (0 - $0.mean[0]) / $0.std[0] : 0 } ?? 0
        let data = FrameBatchSource(examples: train, batchSize: o.batch, seed: training.seed, shift: o.shift,
                                    perFrame: info.perFrame, config: features, fill: fill)
        let network = model.network
        let evaluation = validation.isEmpty ? nil : TrainingEvaluation(
            metricNames: ["val_loss", "val_accuracy"], validationMetric: "val_accuracy", direction: .higherIsBetter) {
            let e = try FrameEvaluation.compute(network: network, examples: validation, perFrame: info.perFrame,
                                                classes: info.classNames.count, batchSize: 256, group: network.processGroup)
            return ["val_loss": e.loss, "val_accuracy": e.accuracy]
        }
        var configuration = training
        if evalEveryEpoch { configuration.evalEvery = data.batchesPerEpoch }
        let learner = FrameLearner(model: model)
        learner.metadata[FrameTestSplit.metadataKey] = FrameTestSplit(data: URL(fileURLWithPath: o.dataPath).standardizedFileURL.path,
                                                                      testFraction: o.testFraction, seed: training.seed).json
        let task = TrainingTask(label: label, model: learner, data: data, evaluation: evaluation,
                                fingerprint: TrainingFingerprint.fields(of: o), itemName: o.rows ? "sequences" : "clips",
                                dataDescription: "\(train.count) training, \(validation.count) validation and \(split.test.examples.count) test "
                                    + "\(o.rows ? "images" : "clips"), \(info.classNames.count) classes")
        self.options = o
        self.features = features
        self.train = train
        self.validation = validation
        self.test = split.test
        self.load = load
        self.model = model
        self.engine = TrainingEngine(configuration: configuration, task: task)
    }

    /// Trains to the end of the budget, then evaluates `best.safetensors` and the last model on
    /// the test set (the only time the test set is read).
    /// - Throws: the engine's errors (`TrainingInterrupted`, `TrainingError`, …).
    public func run() throws -> FrameTrainingReport {
        var summary = try engine.run()
        let info = model.info, threads = engine.configuration.threads
        let lastTest = try FrameEvaluation.compute(network: model.network, examples: test.examples, perFrame: info.perFrame,
                                                   classes: info.classNames.count, batchSize: 256)
        // When the last evaluation was the best, best.safetensors holds the final weights.
        let bestTest = summary.bestStep == summary.steps
            ? lastTest : try FrameModel.load(path: engine.bestPath, threads: threads).evaluate(test, batchSize: 256)
        summary.metrics["test_loss"] = bestTest.loss
        summary.metrics["test_accuracy"] = bestTest.accuracy
        summary.metrics["last_test_accuracy"] = lastTest.accuracy
        summary.metrics["test_count"] = Double(bestTest.count)
        summary.testMetric = "test_accuracy"
        return FrameTrainingReport(summary: summary, test: bestTest, lastTest: lastTest)
    }
}

/// `x` with `digits` decimals.
func fmt(_ x: Double, _ digits: Int) -> String {
    String(format: "%.\(digits)f", x)
}
