import Foundation
import RecurrentCore

/// The settings of a speech-classification run that belong to the task: data, split, features,
/// model and batching. How the run is driven (optimizer, budget, resume, …) is the engine's
/// `TrainingConfiguration`.
///
/// Encodes to the task's resume fingerprint (configuration field names: `data`, `task`,
/// `split`, `label_pattern`, `utterance_cmn`, `utterance_cmvn`, `speaker_cmvn`, `trim_db`, `mel_filters`, `cepstra`, `cell`, `layers`, `hidden`, `bidirectional`,
/// `pooling`, `projection`, `dropout`, `batch`, `val_fraction`).
public struct SpeechTrainingOptions: Sendable, Encodable {
    /// Data folder (audio files, label tracks for the frame task, or `train/` and `test/`).
    public var dataPath = ""
    /// Utterance, frame or sequence labels.
    public var task: SpeechTask = .utterance
    /// Train/test split, as written on the command line (`official`, `speaker:NAME`, `random:S:F`).
    public var split = "official"
    /// Utterance labels: `field:N[:SEP]`, `regex:PATTERN`, `folder`, `manifest:PATH`.
    public var labelPattern = "field:0:_"
    /// Subtract each utterance's mean from its static features.
    public var utteranceCMN = false
    /// Also divide each utterance's static features by their standard deviation (CMVN; implies
    /// `utteranceCMN`).
    public var utteranceCMVN = false
    /// Normalise each speaker's features over that speaker's files (`FeatureConfig.speakerNormalization`).
    public var speakerCMVN = false
    /// Trim leading and trailing frames this many dB below each file's loudest
    /// (`FeatureConfig.trimDecibels`); nil keeps every frame. Not with the frame task.
    public var trimDecibels: Double? = nil
    /// Mel filters and cepstral coefficients kept (each frame has 3 × `cepstra` features with
    /// Δ and ΔΔ); `cepstra` equal to `melFilters` keeps everything the log-mel spectrum holds.
    public var melFilters = FeatureConfig().melFilterCount
    public var cepstra = FeatureConfig().cepstralCount
    /// Recurrent cell, layers and hidden units H per direction.
    public var cell: CellKind = .lstm
    public var layers = 1
    public var hidden = 128
    /// A second direction over the reversed sequence.
    public var bidirectional = false
    /// Utterance pooling of the top layer's outputs.
    public var pooling: SequenceClassifierConfig.Pooling = .mean
    /// Width of a learned tanh input projection (0 = none).
    public var projection = 0
    /// Dropout between layers and before the classifier.
    public var dropout: Float = 0
    /// Utterances per step.
    public var batch = 32
    /// Share of the training files held out (stratified by label) to choose `best.safetensors`.
    public var valFraction = 0.1
    /// On-the-fly augmentation of the training examples; nil = none.
    public var augmentation: AugmentationConfig? = nil

    /// The defaults above.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case dataPath = "data", task, split, labelPattern = "label_pattern", utteranceCMN = "utterance_cmn"
        case utteranceCMVN = "utterance_cmvn", speakerCMVN = "speaker_cmvn", trimDecibels = "trim_db", melFilters = "mel_filters", cepstra
        case cell, layers, hidden, bidirectional, pooling, projection, dropout, batch, valFraction = "val_fraction"
        case augmentation
    }

    /// The fields under their `CodingKeys`; `utterance_cmvn`, `speaker_cmvn` and `trim_db` only when set, so the
    /// fingerprints of runs made before they existed still match.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dataPath, forKey: .dataPath); try c.encode(task, forKey: .task); try c.encode(split, forKey: .split)
        try c.encode(labelPattern, forKey: .labelPattern); try c.encode(utteranceCMN, forKey: .utteranceCMN)
        if utteranceCMVN { try c.encode(true, forKey: .utteranceCMVN) }
        if speakerCMVN { try c.encode(true, forKey: .speakerCMVN) }
        try c.encodeIfPresent(trimDecibels, forKey: .trimDecibels)
        let d = FeatureConfig()
        if melFilters != d.melFilterCount { try c.encode(melFilters, forKey: .melFilters) }
        if cepstra != d.cepstralCount { try c.encode(cepstra, forKey: .cepstra) }
        try c.encode(cell, forKey: .cell); try c.encode(layers, forKey: .layers); try c.encode(hidden, forKey: .hidden)
        try c.encode(bidirectional, forKey: .bidirectional); try c.encode(pooling, forKey: .pooling)
        try c.encode(projection, forKey: .projection); try c.encode(dropout, forKey: .dropout); try c.encode(batch, forKey: .batch)
        try c.encode(valFraction, forKey: .valFraction); try c.encodeIfPresent(augmentation, forKey: .augmentation)
    }

    /// Checks the sizes; the message names the option.
    func validate() throws {
        func fail(_ option: String, _ reason: String) -> TrainingSetupError { .invalid(option: option, reason: reason) }
        if layers < 1 { throw fail("--layers", "must be at least 1 (got \(layers))") }
        if hidden < 1 { throw fail("--hidden", "must be at least 1 (got \(hidden))") }
        if projection < 0 { throw fail("--projection", "must be at least 0 (got \(projection))") }
        if batch < 1 { throw fail("--batch", "must be at least 1 (got \(batch))") }
        if let p = FeatureConfig.frontEndProblem(melFilters: melFilters, cepstra: cepstra, trimDecibels: trimDecibels) {
            throw fail(p.option, p.reason)
        }
        if trimDecibels != nil && task == .frame {
            throw fail("--trim-silence", "drops frames that the frame task's label tracks label; use it with the utterance or sequence task")
        }
        if !(dropout >= 0 && dropout < 1) { throw fail("--dropout", "must be in [0, 1) (got \(dropout))") }
        if !(valFraction >= 0 && valFraction < 1) { throw fail("--val-fraction", "must be at least 0 and below 1 (got \(valFraction))") }
        if let a = augmentation {
            if let problem = a.problem { throw fail("augmentation", problem) }
            if task == .frame && a.changesTiming {
                throw fail(a.speeds.isEmpty ? "--tempo" : "--speed-perturb",
                           "changes the timing of the audio, which the frame task's label tracks fix; use it with the utterance or sequence task")
            }
        }
    }
}

/// A batch of training examples (padded to `[batch, time, 39]` by the model).
public struct SpeechBatch: TrainingBatch {
    /// The examples.
    public var examples: [SpeechExample]
    /// Utterances in the batch.
    public var itemCount: Int { examples.count }
}

/// The training examples as seekable, length-grouped mini-batches (`SpeechCorpus.batches`),
/// shuffled anew every epoch with a seed derived from the run's seed and the epoch.
public struct SpeechBatchSource: BatchSource {
    /// The training examples.
    public let examples: [SpeechExample]
    /// Examples per batch.
    public let batchSize: Int
    /// The run's seed.
    public let seed: UInt64
    private let lengths: [Int]
    private var order: [[Int]] = []
    private var orderEpoch = -1
    public private(set) var position = BatchPosition()
    public let batchesPerEpoch: Int

    /// Batches of `batchSize` from `examples` (at least one).
    public init(examples: [SpeechExample], batchSize: Int, seed: UInt64) {
        precondition(!examples.isEmpty && batchSize >= 1)
        self.examples = examples
        self.batchSize = batchSize
        self.seed = seed
        lengths = examples.map(\.features.frames)
        batchesPerEpoch = Self.batchesPerEpoch(count: examples.count, batchSize: batchSize)
    }

    /// Batches per epoch of `count` examples, from `SpeechCorpus.batches` itself: how many
    /// batches it cuts does not depend on the lengths or the shuffle.
    public static func batchesPerEpoch(count n: Int, batchSize: Int) -> Int {
        var rng = SeededRandom(seed: 0)
        return SpeechCorpus.batches(lengths: [Int](repeating: 1, count: n), batchSize: batchSize, rng: &rng).count
    }

    /// The batches (example indices) of `epoch`.
    public func batches(epoch: Int) -> [[Int]] {
        var rng = SeededRandom(seed: seed &+ 0x5eed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        return SpeechCorpus.batches(lengths: lengths, batchSize: batchSize, rng: &rng)
    }

    public mutating func next() -> SpeechBatch {
        if orderEpoch != position.epoch { order = batches(epoch: position.epoch); orderEpoch = position.epoch }
        let batch = SpeechBatch(examples: order[position.batch].map { examples[$0] })
        position.batch += 1
        if position.batch >= batchesPerEpoch { position = BatchPosition(epoch: position.epoch + 1, batch: 0) }
        return batch
    }

    public mutating func seek(to p: BatchPosition) throws {
        guard p.epoch >= 0, p.batch >= 0, p.batch < batchesPerEpoch else {
            throw TrainingSetupError.invalid(option: "--resume", reason: "saved position \(p) does not fit \(batchesPerEpoch) batches per epoch")
        }
        position = p
    }
}

/// A `SpeechClassifier` with what its checkpoints carry (feature settings, normalisation
/// statistics, class names), as the training engine sees it; checkpoints are
/// `rnn-suite/speech/1` (`SpeechCheckpoint`).
public final class SpeechLearner: TrainableModel {
    /// The checkpoint contents; `model`'s weights change in place.
    public let checkpoint: SpeechCheckpoint
    /// The network.
    public var classifier: SpeechClassifier { checkpoint.model }
    /// Augments each training batch (nil: batches train as they are).
    public var augmenter: SpeechAugmenter?

    /// Wraps a checkpoint's parts.
    public init(checkpoint: SpeechCheckpoint) { self.checkpoint = checkpoint }

    public var parameters: [Parameter] { classifier.parameters }

    /// One step on the batch padded to `[batch, time, features]`; mean loss over utterances
    /// (utterance task) or valid frames (frame task).
    public func trainStep(on batch: SpeechBatch, seed: UInt64) -> Double {
        let examples = augmenter?.augment(batch.examples, seed: seed) ?? batch.examples
        return classifier.network.trainStep(classifier.batch(examples, labelled: true), seed: seed).loss
    }

    /// Trains this rank's shards of each batch (`SequenceClassifier.processGroup`).
    public func distribute(over group: ProcessGroup) throws { classifier.network.processGroup = group }

    public func writeCheckpoint(to path: String, extra: [String: String]) throws {
        try checkpoint.write(to: path, extra: extra)
    }

    public func loadCheckpoint(from path: String) throws {
        let loaded = try SpeechCheckpoint.read(path: path)
        // The classes first: their number is also the model's output size.
        guard loaded.labels == checkpoint.labels else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's classes differ from this run's data")
        }
        guard loaded.model.config == classifier.config else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's model configuration differs from this run's")
        }
        guard loaded.normalizer == checkpoint.normalizer, loaded.features == checkpoint.features else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's features or statistics differ from this run's data")
        }
        try loadWeights(of: loaded, from: path)
    }

    /// A new run's start (`--init-from`): the same classes, features and model; the feature
    /// statistics are the new training data's.
    public func initializeWeights(from path: String) throws {
        let loaded = try SpeechCheckpoint.read(path: path)
        guard loaded.labels == checkpoint.labels else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's classes differ from this run's data")
        }
        guard loaded.model.config == classifier.config, loaded.features == checkpoint.features else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's model or feature configuration differs from this run's")
        }
        try loadWeights(of: loaded, from: path)
    }

    private func loadWeights(of loaded: SpeechCheckpoint, from path: String) throws {
        var byName: [String: NamedTensor] = [:]
        for t in loaded.model.network.stateDict { byName[t.name] = t }
        try classifier.network.load(byName, source: path)
    }
}

/// The examples of a run: training (what the steps see), validation (chooses
/// `best.safetensors`) and test (evaluated once at the end, the held-out figure).
public struct SpeechTrainingData: Sendable {
    /// Training and validation examples come from the training files; test from the test files.
    public var train: [SpeechExample]
    public var validation: [SpeechExample]
    public var test: [SpeechExample]
    /// Class names.
    public var labels: LabelSet
    /// Statistics of the training files' features.
    public var normalizer: FeatureNormalizer
    /// Feature settings.
    public var features: FeatureConfig
    /// With speaker normalisation, the training speakers' statistics (see `PreparedSpeechData`).
    public var speakerStatistics: [String: FeatureNormalizer] = [:]
    /// Files left out, with reasons.
    public var skipped: [SkippedFile]
    /// Which train/test split was used.
    public var splitNote: String
    /// Seconds spent extracting features.
    public var featureSeconds: Double
}

/// What a finished run reports: the engine's summary and the test evaluation of
/// `best.safetensors`.
public struct SpeechRunReport: Sendable {
    /// The engine's summary; `metrics` also holds `test_loss`, `test_accuracy` and, for the frame
    /// task, `test_segment_accuracy`.
    public var summary: TrainingRunSummary
    /// The test evaluation of the best checkpoint.
    public var test: SpeechEvaluation
    /// The task.
    public var task: SpeechTask
    /// Class names.
    public var labels: LabelSet

    /// The lines printed after training: accuracy, segment figures (frame task), the matrix;
    /// label error rate and whole-sequence accuracy (sequence task).
    public var lines: [String] {
        if task == .sequence { return SpeechRunReport.sequenceLines(test, prefix: "test ") }
        var out = [String(format: "test %@ accuracy: %.2f %% (%d of %d)", task == .utterance ? "utterance" : "frame",
                          100 * test.accuracy, test.confusion.correct, test.confusion.total)]
        if let s = test.segments {
            out.append(String(format: "segment accuracy: %.2f %% (N=%d, S=%d, D=%d, I=%d), segment correctness %.2f %%, exact utterances %d of %d",
                              100 * s.accuracy, s.reference, s.substitutions, s.deletions, s.insertions, 100 * s.correctness,
                              test.exactUtterances, test.utterances))
        }
        out.append("confusion matrix:")
        out.append(test.confusion.text(labels: labels.names))
        return out
    }

    /// The sequence task's figures: label error rate with its counts, whole-sequence accuracy.
    public static func sequenceLines(_ e: SpeechEvaluation, prefix: String) -> [String] {
        let s = e.segments ?? SegmentCounts()
        return [String(format: "%@label error rate: %.2f %% (N=%d, S=%d, D=%d, I=%d)", prefix, 100 * (e.labelErrorRate ?? 0),
                       s.reference, s.substitutions, s.deletions, s.insertions),
                String(format: "%@sequence accuracy: %.2f %% (%d of %d utterances exactly right)", prefix, 100 * e.accuracy,
                       e.exactUtterances, e.utterances)]
    }
}

/// Sets up speech-classifier training for the engine and reports on the test split.
public enum SpeechTraining {
    /// Lists, splits, loads (skipping unusable files), fits the normaliser on the training files,
    /// and holds `valFraction` of the training examples out for validation (stratified by label
    /// for the utterance task, seeded by `seed`).
    /// - Throws: `TrainingSetupError` for bad settings, listing and loading errors
    ///   (`SpeechDataError` when a part has no usable file).
    public static func prepare(options o: SpeechTrainingOptions, seed: UInt64, threads: Int) throws -> SpeechTrainingData {
        try o.validate()
        let split = try DatasetSplit(parsing: o.split)
        let rule = try LabelRule(parsing: o.labelPattern)
        let features = FeatureConfig(meanNormalization: o.utteranceCMN, varianceNormalization: o.utteranceCMVN,
                                     melFilters: o.melFilters, cepstra: o.cepstra, speakerNormalization: o.speakerCMVN,
                                     trimDecibels: o.trimDecibels)
        let folder = URL(fileURLWithPath: o.dataPath)
        let t0 = ProgressReporter.monotonicSeconds()
        let data = try SpeechCorpus.prepare(folder: folder, task: o.task, split: split, rule: rule, config: features, threads: threads)
        let parts = ValidationSplit(count: data.train.count, fraction: o.valFraction, seed: seed,
                                    labels: o.task == .utterance ? data.train.map(\.label) : nil)
        var train = parts.train.map { data.train[$0] }
        if o.augmentation?.changesAudio == true {
            // Augmentation recomputes features from the audio at every step: keep it decoded.
            let rate = features.sampleRate
            let audio = try Threading.parallelMap(count: train.count, threads: threads) { i in
                try AudioLoader.loadMono(URL(fileURLWithPath: train[i].path), sampleRate: rate)
            }
            for i in train.indices { train[i].audio = audio[i] }
        }
        return SpeechTrainingData(train: train, validation: parts.validation.map { data.train[$0] },
                                  test: data.test, labels: data.labels, normalizer: data.normalizer, features: features,
                                  speakerStatistics: data.speakerStatistics, skipped: data.skipped, splitNote: data.splitNote,
                                  featureSeconds: ProgressReporter.monotonicSeconds() - t0)
    }

    /// The model configuration of `options` for `data`.
    public static func modelConfig(options o: SpeechTrainingOptions, data: SpeechTrainingData) -> SequenceClassifierConfig {
        SequenceClassifierConfig(inputSize: data.features.featureCount, projection: o.projection, cell: o.cell, layers: o.layers,
                                 hidden: o.hidden, bidirectional: o.bidirectional, dropout: o.dropout, classes: data.labels.count,
                                 mode: o.task.mode, pooling: o.pooling, unitForgetBias: true)
    }

    /// The task for `TrainingEngine`: the model (initialised from `training.seed`), the training
    /// batches, and the validation metrics `val_loss` (chooses `best.safetensors`),
    /// `val_accuracy` and, for the frame task, `val_segment_accuracy`; no evaluation when there
    /// is no validation example.
    public static func task(options o: SpeechTrainingOptions, data: SpeechTrainingData, training: TrainingConfiguration,
                            label: String = "speech-classify") throws -> TrainingTask<SpeechLearner> {
        try o.validate()
        let config = modelConfig(options: o, data: data)
        let longest = data.train.map(\.features.frames).max() ?? 1
        let estimate = config.memoryEstimate(batch: o.batch, steps: longest, threads: training.threads)
        try MemoryBudget.require(estimate.trainingBytes(optimizerSlots: training.optimizer.slotCount),
                                 for: "the model (\(Int(exactly: estimate.parameters).map(String.init) ?? "\(estimate.parameters)") parameters)",
                                 hint: "--hidden, --layers, --projection or --batch")
        let model = try SpeechClassifier(config: config, seed: training.seed,
                                         threads: training.threads, source: "command line")
        model.network.precision = training.precision
        let learner = SpeechLearner(checkpoint: SpeechCheckpoint(model: model, features: data.features, normalizer: data.normalizer,
                                                                 labels: data.labels, training: SpeechEvaluationSource.json(options: o)))
        if let a = o.augmentation, a.isEnabled {
            learner.augmenter = SpeechAugmenter(config: a, features: data.features, normalizer: data.normalizer,
                                                speakerStatistics: data.speakerStatistics, threads: training.threads)
        }
        let silence = data.labels.index(of: LabelTrack.silence)
        let validation = data.validation
        var names = ["val_loss", "val_accuracy"]
        if o.task == .frame { names.append("val_segment_accuracy") }
        if o.task == .sequence { names.append("val_label_error_rate") }
        let evaluation = validation.isEmpty ? nil : TrainingEvaluation(metricNames: names, validationMetric: "val_loss",
                                                                       direction: .lowerIsBetter) {
            let e = SpeechInference.evaluate(model, examples: validation, silence: silence, group: model.network.processGroup)
            var m = ["val_loss": e.loss, "val_accuracy": e.accuracy]
            if o.task == .frame, let s = e.segments { m["val_segment_accuracy"] = s.accuracy }
            if let ler = e.labelErrorRate { m["val_label_error_rate"] = ler }
            return m
        }
        return TrainingTask(label: label, model: learner,
                            data: SpeechBatchSource(examples: data.train, batchSize: o.batch, seed: training.seed),
                            evaluation: evaluation, fingerprint: TrainingFingerprint.fields(of: o), itemName: "utterances",
                            dataDescription: "\(data.train.count) training, \(data.validation.count) validation and \(data.test.count) test "
                                + "utterances, \(data.labels.count) classes")
    }

    /// Runs `engine` to the end, loads `best.safetensors` (chosen on validation) and evaluates
    /// it on the test examples.
    public static func run(_ engine: TrainingEngine<SpeechLearner>, data: SpeechTrainingData) throws -> SpeechRunReport {
        var summary = try engine.run()
        let learner = engine.task.model
        try learner.loadCheckpoint(from: engine.bestPath)
        let test = SpeechInference.evaluate(learner.classifier, examples: data.test, silence: data.labels.index(of: LabelTrack.silence))
        summary.metrics["test_loss"] = test.loss
        summary.metrics["test_accuracy"] = test.accuracy
        if learner.classifier.task == .frame, let s = test.segments { summary.metrics["test_segment_accuracy"] = s.accuracy }
        if let ler = test.labelErrorRate { summary.metrics["test_label_error_rate"] = ler }
        summary.testMetric = test.labelErrorRate == nil ? "test_accuracy" : "test_label_error_rate"
        return SpeechRunReport(summary: summary, test: test, task: learner.classifier.task, labels: data.labels)
    }

    /// A one-line description of the prepared data for the progress output.
    public static func describe(_ data: SpeechTrainingData) -> String {
        "\(data.train.count) training, \(data.validation.count) validation and \(data.test.count) test files (split: \(data.splitNote)), "
            + "\(data.labels.count) classes, \(data.features.featureCount) features per frame"
            + (data.features.trimDecibels.map { String(format: " (silence trimmed at %g dB)", $0) } ?? "")
            + (data.features.speakerNormalization
                ? " normalised per speaker (\(data.speakerStatistics.count) training, \(Set(data.test.compactMap(\.speaker)).count) test)" : "")
            + ", extraction " + String(format: "%.1f s", data.featureSeconds)
    }
}
