import Foundation
import RecurrentCore

/// The settings of a language-model run that belong to the task: data, tokens, model size and
/// batching. How the run is driven (optimizer, budget, resume, …) is the engine's
/// `TrainingConfiguration`.
///
/// Encodes to the task's resume fingerprint (configuration field names: `data`, `level`,
/// `min_count`, `cell`, …); the sample settings are not part of it.
public struct LanguageModelTrainingOptions: Sendable, Encodable {
    /// Text file or folder of text files (`TextCorpus.load`); nil = the built-in default corpus.
    public var dataPath: String?
    /// Character or word tokens.
    public var level: TokenLevel = .character
    /// Word level: rarer words become `<unk>`.
    public var minCount = 1
    /// Recurrent cell, layers and hidden size H of the stack.
    public var cell: CellKind = .lstm
    public var layers = 2
    public var hidden = 256
    /// 0 = one-hot input.
    public var embedding = 64
    /// Dropout between recurrent layers and before the decoder.
    public var dropout: Float = 0
    /// Decoder weight tied to the embedding (needs `embedding == hidden`).
    public var tieWeights = false
    /// Streams (truncated BPTT, state carried) or windows (each from a zero state).
    public var batching: BatchingMode = .streams
    /// 0 with window batching = all windows in one batch.
    public var batch = 32
    /// Time steps per batch row, S: batches are `[batch, seqLen]` token ids.
    public var seqLen = 64
    /// Tail fraction of the text held out for validation; 0 = no validation.
    public var valFraction = 0.1
    /// Print a sample every this many seconds while training (nil = never).
    public var sampleEvery: Double?
    /// Print a sample every this many steps (nil = never); with a fixed seed the samples are
    /// the same on every run, unlike `sampleEvery`'s.
    public var sampleEverySteps: Int?
    /// Tokens per sample.
    public var sampleLength = 200

    /// The defaults above.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case dataPath = "data", level, minCount = "min_count", cell, layers, hidden, embedding, dropout
        case tieWeights = "tie_weights", batching, batch, seqLen = "seq_len", valFraction = "val_fraction"
    }

    /// Checks the sizes; the message names the option.
    func validate() throws {
        func fail(_ option: String, _ reason: String) -> TrainingSetupError { .invalid(option: option, reason: reason) }
        if layers < 1 { throw fail("--layers", "must be at least 1 (got \(layers))") }
        if hidden < 1 { throw fail("--hidden", "must be at least 1 (got \(hidden))") }
        if seqLen < 1 { throw fail("--seq-len", "must be at least 1 (got \(seqLen))") }
        if embedding < 0 { throw fail("--embedding", "must be at least 0 (got \(embedding))") }
        if minCount < 1 { throw fail("--min-count", "must be at least 1 (got \(minCount))") }
        if !(dropout >= 0 && dropout < 1) { throw fail("--dropout", "must be in [0, 1) (got \(dropout))") }
        if !(valFraction >= 0 && valFraction < 1) { throw fail("--val-fraction", "must be at least 0 and below 1 (got \(valFraction))") }
        if let s = sampleEvery, !(s > 0 && s.isFinite) { throw fail("--sample-every", "must be a positive number of seconds (got \(s))") }
        if batch < 0 || (batch == 0 && batching != .windows) {
            throw fail("--batch", batch < 0 ? "must be at least 0 (got \(batch))" : "0 (all windows in one batch) needs --batching windows")
        }
        if tieWeights && embedding != hidden {
            throw fail("--tie-weights", "needs --embedding equal to --hidden (\(embedding) vs \(hidden))")
        }
    }
}

/// A `RecurrentLanguageModel` with its vocabulary, as the training engine sees it: one step
/// on a `TokenBatch` (streams carry the hidden state between batches), `rnn-suite/lm/1`
/// checkpoints, and the carried state (`h`, `c`, each `[L * B * H]`) for resuming.
public final class LanguageModelLearner: TrainableModel {
    /// The model (its weights change in place).
    public let model: RecurrentLanguageModel
    /// The vocabulary written into checkpoints.
    public let vocabulary: Vocabulary
    /// Metadata added to every checkpoint: the run's held-out text (`LanguageModelHeldOut`).
    public var metadata: [String: String] = [:]

    /// Wraps a model.
    public init(model: RecurrentLanguageModel, vocabulary: Vocabulary) {
        self.model = model
        self.vocabulary = vocabulary
    }

    public var parameters: [Parameter] { model.parameters }

    /// `RecurrentLanguageModel.trainStep` on `[batch, seqLen]` ids, from the carried state
    /// unless the batch starts a stream.
    public func trainStep(on batch: TokenBatch, seed: UInt64) -> Double {
        model.trainStep(inputs: batch.inputs, targets: batch.targets, batch: batch.batchSize, steps: batch.seqLen,
                        carryState: !batch.resetsState, seed: seed)
    }

    public func writeCheckpoint(to path: String, extra: [String: String]) throws {
        try LanguageModelCheckpoint.save(model: model, vocabulary: vocabulary, to: path, extra: extra.merging(metadata) { a, _ in a })
    }

    public func loadCheckpoint(from path: String) throws {
        let loaded = try LanguageModelCheckpoint.load(path: path, threads: 1)
        // The vocabulary first: it also sets the model's input and output sizes.
        guard loaded.vocabulary == vocabulary else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's vocabulary differs from this run's data")
        }
        guard loaded.model.config == model.config else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's model configuration differs from this run's")
        }
        var byName: [String: NamedTensor] = [:]
        for t in loaded.model.stateDict { byName[t.name] = t }
        try model.load(byName, source: path)
    }

    public var carriedState: [NamedTensor] {
        guard let s = model.carriedState else { return [] }
        var list = [NamedTensor(name: "h", shape: [s.h.count], values: s.h)]
        if let c = s.c { list.append(NamedTensor(name: "c", shape: [c.count], values: c)) }
        return list
    }

    public func restoreCarriedState(_ tensors: [String: NamedTensor]) throws {
        guard let h = tensors["h"] else { return }
        // The rows of the last batch, which need not be --batch (window batches: all windows,
        // or a short last batch of an epoch): read from the saved state itself.
        let perRow = model.config.layers * model.config.hidden
        guard h.values.count > 0, h.values.count % perRow == 0,
              tensors["c"].map({ $0.values.count == h.values.count }) ?? !model.config.cell.hasCellState else {
            throw ModelLoadError.shapeMismatch("carried state", "h", expected: [perRow], got: h.shape)
        }
        model.setCarriedState(RecurrentState(h: h.values, c: tensors["c"]?.values), batch: h.values.count / perRow)
    }

    /// Trains this rank's shards of each batch (`RecurrentLanguageModel.processGroup`).
    public func distribute(over group: ProcessGroup) throws { model.processGroup = group }
}

/// Sets up language-model training for the engine: loads and splits the text, builds the
/// vocabulary, the batcher and the model, and the validation loss.
public enum LanguageModelTraining {
    /// The task for `TrainingEngine`.
    /// - Parameters:
    ///   - options: the task's settings.
    ///   - training: the engine's settings (its `seed` initialises the model and shuffles
    ///     windows, its `threads` sets the batch shards).
    ///   - label: the tool name for progress lines.
    /// - Throws: `TrainingSetupError` for bad sizes, `TextDataError` for unusable text; nothing
    ///   is written.
    public static func task(options o: LanguageModelTrainingOptions, training: TrainingConfiguration,
                            label: String = "lm-train", message: (String) -> Void = { _ in }) throws -> TrainingTask<LanguageModelLearner> {
        try o.validate()
        let text: String, source: String
        if let path = o.dataPath {
            var skipped = 0
            text = try TextCorpus.load(path: path) { line in skipped += 1; message(line) }
            if skipped > 1 { message("\(path): skipped \(skipped) files in all") }
            source = path
        } else {
            let d = DefaultCorpus.load()
            text = d.text
            source = d.description
        }
        // A new run from a checkpoint (--init-from) reads the text with the checkpoint's
        // vocabulary: characters it lacks are refused by name, words it lacks become <unk>.
        let vocab = try training.initFrom.map { try LanguageModelCheckpoint.load(path: $0, threads: 1).vocabulary }
            ?? Vocabulary.build(from: text, level: o.level, minCount: o.minCount)
        let ids = try vocab.encode(text, source: source)
        let split = try DataSplit(ids: ids, validationFraction: o.valFraction, source: source)
        let data: any BatchSource<TokenBatch>
        switch o.batching {
        case .streams: data = try StreamBatcher(tokens: split.train, batchSize: o.batch, seqLen: o.seqLen, source: source)
        case .windows: data = try WindowBatcher(tokens: split.train, batchSize: o.batch, seqLen: o.seqLen, seed: training.seed, source: source)
        }
        let validate = o.valFraction > 0
        guard !validate || split.validation.count >= 2 else {
            throw TextDataError.invalidSetting(flag: "--val-fraction", value: "\(o.valFraction)", reason: "leaves fewer than 2 validation tokens")
        }
        let config = LanguageModelConfig(cell: o.cell, layers: o.layers, hidden: o.hidden, embedding: o.embedding,
                                         vocabSize: vocab.count, dropout: o.dropout, tieWeights: o.tieWeights)
        let estimate = config.memoryEstimate(batch: o.batch, steps: o.seqLen, threads: training.threads)
        try MemoryBudget.require(estimate.trainingBytes(optimizerSlots: training.optimizer.slotCount),
                                 for: "the model (\(Int(exactly: estimate.parameters).map(String.init) ?? "\(estimate.parameters)") parameters)",
                                 hint: "--hidden, --layers, --embedding, --batch or --seq-len")
        let model = RecurrentLanguageModel(config: config, seed: training.seed, threads: training.threads)
        model.precision = training.precision
        let learner = LanguageModelLearner(model: model, vocabulary: vocab)
        if validate {
            let heldOut = LanguageModelHeldOut(data: o.dataPath.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                                               validationFraction: o.valFraction, seqLen: o.seqLen)
            learner.metadata[LanguageModelHeldOut.metadataKey] = heldOut.json
        }
        // Validation: the tail cut into consecutive seqLen chunks, each from a zero state.
        let evaluation = validate ? TrainingEvaluation(metricNames: ["val_loss"], validationMetric: "val_loss", direction: .lowerIsBetter) {
            ["val_loss": LanguageModelScoring.chunkedLoss(model: model, ids: split.validation, seqLen: o.seqLen,
                                                           group: model.processGroup)]
        } : nil
        return TrainingTask(label: label, model: learner, data: data, evaluation: evaluation,
                            fingerprint: TrainingFingerprint.fields(of: o), itemName: "tokens",
                            dataDescription: "\(split.train.count) training and \(split.validation.count) validation tokens from \(source), "
                                + "vocabulary \(vocab.count)",
                            afterStep: o.sampleEverySteps.map { stepSampler(every: $0, length: o.sampleLength, model: model, vocabulary: vocab) }
                                ?? o.sampleEvery.map { sampler(every: $0, length: o.sampleLength, model: model, vocabulary: vocab) })
    }

    /// The engine for `task(options:training:label:)`.
    public static func engine(options: LanguageModelTrainingOptions, training: TrainingConfiguration,
                              label: String = "lm-train", message: (String) -> Void = { _ in }) throws -> TrainingEngine<LanguageModelLearner> {
        TrainingEngine(configuration: training, task: try task(options: options, training: training, label: label, message: message))
    }

    /// A hook that returns a sample of `length` tokens (temperature 0.8, seeded by the step) every `steps` steps.
    static func stepSampler(every steps: Int, length: Int, model: RecurrentLanguageModel,
                            vocabulary: Vocabulary) -> (Int) -> String? {
        let sample = sampler(every: 0, length: length, model: model, vocabulary: vocabulary)
        return { step in step % max(1, steps) == 0 ? sample(step) : nil }
    }

    /// A hook that returns a sample of `length` tokens (temperature 0.8) at most every `seconds`.
    static func sampler(every seconds: Double, length: Int, model: RecurrentLanguageModel,
                        vocabulary: Vocabulary) -> (Int) -> String? {
        var last = ProgressReporter.monotonicSeconds()
        return { step in
            let now = ProgressReporter.monotonicSeconds()
            guard now - last >= seconds else { return nil }
            last = now
            let sampler = TokenSampler(model: model, temperature: 0.8, topK: nil, seed: UInt64(step))
            var token: Int32 = vocabulary.endOfLineID ?? 0
            var decoder = TokenDecoder(vocabulary: vocabulary)
            var text = ""
            for _ in 0..<length {
                token = sampler.next(after: token)
                text += (try? decoder.append(token)) ?? ""
            }
            return "--- sample at step \(step) ---\n" + text + "\n---"
        }
    }
}

/// The held-out tail of a run's text, recorded in its checkpoints (metadata key `held_out`:
/// `{"data": PATH or null for the built-in corpus, "val_fraction": F, "seq_len": N}`), so that
/// `eval` without data evaluates text the model was not trained on.
public struct LanguageModelHeldOut: Sendable, Equatable {
    /// The checkpoint metadata key.
    public static let metadataKey = "held_out"
    /// The training text (absolute), nil for the built-in corpus.
    public var data: String?
    /// The share at the end of the text held out for validation.
    public var validationFraction: Double
    /// The validation chunk length.
    public var seqLen: Int

    public init(data: String?, validationFraction: Double, seqLen: Int) {
        self.data = data; self.validationFraction = validationFraction; self.seqLen = seqLen
    }

    /// The metadata text.
    public var json: String {
        let object: [String: Any] = ["data": data ?? NSNull(), "val_fraction": validationFraction, "seq_len": seqLen]
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: d, as: UTF8.self)
    }

    /// The record in checkpoint metadata, or nil when there is none.
    public init?(metadata: [String: String]) {
        guard let text = metadata[Self.metadataKey],
              let o = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let fraction = (o["val_fraction"] as? NSNumber)?.doubleValue, let seqLen = (o["seq_len"] as? NSNumber)?.intValue else { return nil }
        self.init(data: o["data"] as? String, validationFraction: fraction, seqLen: seqLen)
    }

    /// Reads the text again and returns the held-out token ids (the tail, as at training).
    /// - Throws: `TextDataError` when the text cannot be read or no longer encodes with `vocabulary`.
    public func tokens(vocabulary: Vocabulary) throws -> [Int32] {
        let text = try data.map { try TextCorpus.load(path: $0) } ?? DefaultCorpus.load().text
        let ids = try vocabulary.encode(text, source: data ?? "the built-in corpus")
        return try DataSplit(ids: ids, validationFraction: validationFraction, source: data ?? "the built-in corpus").validation
    }

    /// Where the tokens come from, for people.
    public var description: String {
        "the held-out last \(Int((validationFraction * 100).rounded())) % of \(data ?? "the built-in corpus")"
    }
}
