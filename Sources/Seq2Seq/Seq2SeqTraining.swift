import Foundation
import RecurrentCore

/// The settings of a translation run that belong to the task: the pairs, their tokens, the
/// model's shape and the batch. How the run is driven (optimizer, budget, resume, …) is the
/// engine's `TrainingConfiguration`, whose `seed` also generates toy pairs and splits them.
///
/// Encodes to the task's resume fingerprint (configuration field names: `task`, `data`,
/// `count`, `source_level`, `cell`, …).
public struct Seq2SeqTrainingOptions: Sendable, Encodable {
    /// Toy task to generate pairs for; exactly one of `task` and `dataPath`.
    public var task: ToyTask?
    /// TSV file of `source<TAB>target` pairs.
    public var dataPath: String?
    /// Pairs generated for `task`.
    public var count = 20000
    /// Shortest and longest string and the alphabet of `reverse` / `sort` pairs.
    public var toyOptions = ToyTaskOptions()
    /// Tokens of sources and targets; nil = the task's default (`defaultLevels`).
    public var sourceLevel: TokenLevel?
    public var targetLevel: TokenLevel?
    /// Recurrent cell, layers and hidden width H of encoder and decoder.
    public var cell: CellKind = .lstm
    public var layers = 1
    public var hidden = 128
    /// Embedding width E of source and target tokens.
    public var embedding = 32
    /// Bidirectional encoder (directions summed).
    public var bidirectional = false
    /// Attention variant.
    public var attention: AttentionKind = .general
    /// Dropout between stacked recurrent layers (needs `layers >= 2`).
    public var dropout: Float = 0
    /// Probability of feeding the gold previous token in training.
    public var teacherForcing: Float = 1
    /// Pairs per batch.
    public var batch = 64
    /// Share of the pairs held out for validation (unused with `validPath`).
    public var valFraction = 0.1
    /// Share of the pairs held out for the test split (unused with `testPath`).
    public var testFraction = 0.1
    /// A TSV file of validation pairs instead of a share of `dataPath`'s.
    public var validPath: String?
    /// A TSV file of test pairs instead of a share of `dataPath`'s.
    public var testPath: String?
    /// Most validation pairs decoded at each evaluation.
    public var validationLimit = 1000

    /// The defaults above.
    public init() {}

    enum CodingKeys: String, CodingKey {
        case task, dataPath = "data", count, alphabet, minLength = "min_length", maxLength = "max_length"
        case sourceLevel = "source_level", targetLevel = "target_level", cell, layers, hidden, embedding, bidirectional
        case attention, dropout, teacherForcing = "teacher_forcing", batch, valFraction = "val_fraction"
        case validationLimit = "validation_limit", testFraction = "test_fraction", validPath = "valid", testPath = "test"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(task, forKey: .task)
        try c.encodeIfPresent(dataPath, forKey: .dataPath)
        if task != nil {
            try c.encode(count, forKey: .count)
            try c.encode(String(toyOptions.alphabet), forKey: .alphabet)
            try c.encode(toyOptions.minLength, forKey: .minLength)
            try c.encode(toyOptions.maxLength, forKey: .maxLength)
        }
        let (s, t) = levels
        try c.encode(s, forKey: .sourceLevel)
        try c.encode(t, forKey: .targetLevel)
        try c.encode(cell, forKey: .cell)
        try c.encode(layers, forKey: .layers)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(embedding, forKey: .embedding)
        try c.encode(bidirectional, forKey: .bidirectional)
        try c.encode(attention, forKey: .attention)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(teacherForcing, forKey: .teacherForcing)
        try c.encode(batch, forKey: .batch)
        try c.encode(valFraction, forKey: .valFraction)
        try c.encode(validationLimit, forKey: .validationLimit)
        // Written only when they differ from the defaults, so earlier runs still resume.
        if testFraction != 0.1 { try c.encode(testFraction, forKey: .testFraction) }
        try c.encodeIfPresent(validPath, forKey: .validPath)
        try c.encodeIfPresent(testPath, forKey: .testPath)
    }

    /// The shares of the pairs held out: validation (unless `validPath`) plus test (unless `testPath`).
    var heldOutFraction: Double { (validPath == nil ? valFraction : 0) + (testPath == nil ? testFraction : 0) }

    /// The token levels in use: the given ones, else the task's defaults.
    public var levels: (source: TokenLevel, target: TokenLevel) {
        let d = Seq2SeqTraining.defaultLevels(task)
        return (sourceLevel ?? d.0, targetLevel ?? d.1)
    }

    /// Checks the settings; the message names the option.
    func validate() throws {
        func fail(_ option: String, _ reason: String) -> TrainingSetupError { .invalid(option: option, reason: reason) }
        if (task == nil) == (dataPath == nil) { throw fail("--task", "give exactly one of --task and --data") }
        if task != nil && count < 1 { throw fail("--count", "must be at least 1 (got \(count))") }
        if !(1...8).contains(layers) { throw fail("--layers", "must be in 1…8 (got \(layers))") }
        if !(1...4096).contains(hidden) { throw fail("--hidden", "must be in 1…4096 (got \(hidden))") }
        if !(1...4096).contains(embedding) { throw fail("--embedding", "must be in 1…4096 (got \(embedding))") }
        if !(dropout >= 0 && dropout < 1) { throw fail("--dropout", "must be in [0, 1) (got \(dropout))") }
        if dropout > 0 && layers < 2 {
            throw fail("--dropout", "acts between stacked recurrent layers: needs --layers 2 or more (got \(layers))")
        }
        if !(teacherForcing >= 0 && teacherForcing <= 1) {
            throw fail("--teacher-forcing", "must be in 0…1 (got \(teacherForcing))")
        }
        if batch < 1 { throw fail("--batch", "must be at least 1 (got \(batch))") }
        if validPath == nil && !(valFraction > 0 && valFraction < 1) {
            throw fail("--val-fraction", "must be above 0 and below 1 (got \(valFraction))")
        }
        if testPath == nil && !(testFraction >= 0 && testFraction < 1) {
            throw fail("--test-fraction", "must be at least 0 and below 1 (got \(testFraction))")
        }
        if heldOutFraction >= 1 {
            throw fail("--val-fraction", "validation \(valFraction) + test \(testFraction) leaves no training pairs")
        }
        if (validPath != nil || testPath != nil) && dataPath == nil { throw fail("--valid", "needs --data (a TSV file of training pairs)") }
        if validationLimit < 1 { throw fail("--validation-limit", "must be at least 1 (got \(validationLimit))") }
    }
}

extension Seq2SeqBatch: TrainingBatch {
    /// Target tokens (`</s>` included) of the batch.
    public var itemCount: Int { Int(targetMask.reduce(0, +)) }
}

/// A `Seq2SeqModel` with its vocabularies, as the training engine sees it: one step on a
/// padded `Seq2SeqBatch` (teacher forcing drawn from the step's seed) and
/// `rnn-suite/seq2seq/1` checkpoints. Nothing is carried between batches.
public final class Seq2SeqLearner: TrainableModel {
    /// The model and vocabularies (the weights change in place).
    public let bundle: Seq2SeqBundle
    /// Probability of feeding the gold previous token.
    public let teacherForcing: Float

    /// Wraps a bundle; `metadata` of the bundle (e.g. `task`) goes into every checkpoint.
    public init(bundle: Seq2SeqBundle, teacherForcing: Float = 1) {
        self.bundle = bundle
        self.teacherForcing = teacherForcing
    }

    public var parameters: [Parameter] { bundle.model.parameters }

    /// `Seq2SeqModel.trainStep`: source `[batch, S]`, decoder arrays `[batch, T]`.
    public func trainStep(on batch: Seq2SeqBatch, seed: UInt64) -> Double {
        bundle.model.trainStep(batch: batch, teacherForcing: teacherForcing, seed: seed)
    }

    /// Trains this rank's shards of each batch (`Seq2SeqModel.processGroup`).
    public func distribute(over group: ProcessGroup) throws { bundle.model.processGroup = group }

    public func writeCheckpoint(to path: String, extra: [String: String]) throws {
        try Seq2SeqCheckpoint.save(bundle, extra: extra, to: path)
    }

    public func loadCheckpoint(from path: String) throws {
        let loaded = try Seq2SeqCheckpoint.load(path: path)
        // The length limits follow the data (a run from a checkpoint may read longer pairs);
        // they shape no parameter.
        var config = loaded.model.config
        config.maxSourceLength = bundle.model.config.maxSourceLength
        config.maxTargetLength = bundle.model.config.maxTargetLength
        guard config == bundle.model.config else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's model configuration differs from this run's")
        }
        guard loaded.sourceVocabulary == bundle.sourceVocabulary, loaded.targetVocabulary == bundle.targetVocabulary else {
            throw ModelLoadError.badMetadata(path, "the checkpoint's vocabularies differ from this run's data")
        }
        for ((_, to), (_, from)) in zip(bundle.model.namedParameters, loaded.model.namedParameters) { to.values = from.values }
    }
}

/// The training pairs as a deterministic, seekable batch source: each epoch shuffles the
/// pairs with the seed `seed + 7919 · epoch`, sorts them by length within buckets of 16
/// batches and shuffles the batches (see `Seq2SeqBatcher`).
public struct Seq2SeqBatchSource: BatchSource {
    /// The encoded training pairs.
    public let pairs: [EncodedPair]
    /// Batch size and length limits; `shuffleSeed` is replaced per epoch.
    public let options: BatchingOptions
    /// The run's seed.
    public let seed: UInt64
    public private(set) var position = BatchPosition()
    private var epochBatches: [Seq2SeqBatch]

    /// A source over `pairs`.
    /// - Throws: `Seq2SeqError.invalidTraining` for no pairs or a pair outside the limits.
    public init(pairs: [EncodedPair], batchSize: Int, maxSourceLength: Int, maxTargetLength: Int, seed: UInt64) throws {
        guard !pairs.isEmpty else { throw Seq2SeqError.invalidTraining("no training pairs") }
        self.pairs = pairs
        self.seed = seed
        options = BatchingOptions(batchSize: batchSize, maxSourceLength: maxSourceLength, maxTargetLength: maxTargetLength,
                                  shuffleSeed: seed, sortBucketSize: batchSize * 16)
        epochBatches = try Self.batches(pairs, options, seed: seed, epoch: 0)
    }

    static func batches(_ pairs: [EncodedPair], _ options: BatchingOptions, seed: UInt64, epoch: Int) throws -> [Seq2SeqBatch] {
        var o = options
        o.shuffleSeed = seed &+ UInt64(epoch) &* 7919
        do { return try Seq2SeqBatcher.batches(pairs, options: o) } catch { throw Seq2SeqError.invalidTraining(error.description) }
    }

    public var batchesPerEpoch: Int { (pairs.count + options.batchSize - 1) / options.batchSize }

    public mutating func next() -> Seq2SeqBatch {
        let batch = epochBatches[position.batch]
        position.batch += 1
        if position.batch == epochBatches.count {
            position = BatchPosition(epoch: position.epoch + 1, batch: 0)
            // The pairs were checked when the first epoch was made; later epochs cannot fail.
            epochBatches = (try? Self.batches(pairs, options, seed: seed, epoch: position.epoch)) ?? epochBatches
        }
        return batch
    }

    public mutating func seek(to target: BatchPosition) throws {
        guard target.epoch >= 0, target.batch >= 0, target.batch < batchesPerEpoch else {
            throw Seq2SeqError.invalidTraining("resume position \(target) does not fit \(batchesPerEpoch) batches per epoch")
        }
        epochBatches = try Self.batches(pairs, options, seed: seed, epoch: target.epoch)
        position = target
    }
}

/// Sets up translation training for the engine: makes or reads the pairs, splits them,
/// builds the vocabularies, the batches and the model, and the validation metrics.
public enum Seq2SeqTraining {
    /// Default tokens of each toy task, (source, target): number words are read as words,
    /// digits-to-words writes words, everything else (and TSV data) is characters.
    public static func defaultLevels(_ task: ToyTask?) -> (TokenLevel, TokenLevel) {
        switch task {
        case .numberWords: return (.word, .character)
        case .digitsToWords: return (.character, .word)
        default: return (.character, .character)
        }
    }

    /// The validation metrics: `val_loss` (nats per target token, gold decoder inputs),
    /// `val_exact_match` (greedy, chooses `best.safetensors`) and `val_token_accuracy`.
    public static let metricNames = ["val_loss", "val_exact_match", "val_token_accuracy"]

    /// A prepared run: the engine's task plus the split, whose test part the caller scores.
    public struct Prepared {
        /// What the engine trains.
        public var task: TrainingTask<Seq2SeqLearner>
        /// The pairs, split into train / validation / test.
        public var data: PreparedPairs
        /// Where the three parts come from (shares, file, seed), for the progress output.
        public var splitNote: String = ""
        /// Lines to print before training (e.g. tokens read as `<unk>` under `--init-from`).
        public var warnings: [String] = []
    }

    /// Reads or generates the pairs (`training.seed`) and prepares the engine's task.
    /// - Throws: `TrainingSetupError` for bad settings, `PairDataError` / `ToyTaskError` for
    ///   unusable pairs; nothing is written.
    public static func prepare(options o: Seq2SeqTrainingOptions, training: TrainingConfiguration,
                               label: String = "translate-toy") throws -> Prepared {
        try o.validate()
        let pairs: [SentencePair]
        if let task = o.task {
            var g = try ToyPairGenerator(task: task, options: o.toyOptions, seed: training.seed)
            pairs = try g.generate(count: o.count)
        } else {
            pairs = try PairTSV.read(path: o.dataPath ?? "")
        }
        let (srcLevel, tgtLevel) = o.levels
        let fractions = SplitFractions(train: 1 - o.heldOutFraction, validation: o.validPath == nil ? o.valFraction : 0,
                                       test: o.testPath == nil ? o.testFraction : 0)
        var split = try PairSplitter.split(pairs, fractions: fractions, seed: training.seed)
        if let v = o.validPath { split.validation = try PairTSV.read(path: v) }
        if let t = o.testPath { split.test = try PairTSV.read(path: t) }
        let prepared: PreparedPairs
        var warnings: [String] = []
        var lengths: (source: Int, target: Int)?
        if let initFrom = training.initFrom {
            // A new run from a checkpoint reads the pairs with the checkpoint's vocabularies
            // (and tokenizations): tokens outside them become <unk>.
            let start = try Seq2SeqCheckpoint.load(path: initFrom)
            let dataName = o.dataPath ?? "the \(o.task?.rawValue ?? "") pairs"
            for v in [start.sourceVocabulary, start.targetVocabulary] where v.id(of: Vocabulary.specialTokens[Vocabulary.unknownID]) == nil {
                throw Seq2SeqError.invalidTraining("\(dataName): --init-from \(initFrom) has a vocabulary without <unk> to read unknown tokens as")
            }
            let r = Seq2SeqData.prepare(split: split, sourceVocabulary: start.sourceVocabulary, targetVocabulary: start.targetVocabulary)
            prepared = r.prepared
            if r.unknownTokens > 0 {
                warnings.append("\(label): warning: \(dataName): \(r.unknownTokens) token(s) in \(r.unknownPairs) pair(s) are not in the "
                                + "vocabularies of \(initFrom) and were read as <unk>")
            }
            lengths = (start.model.config.maxSourceLength, start.model.config.maxTargetLength)
        } else {
            prepared = Seq2SeqData.prepare(split: split, tokenization: srcLevel, targetTokenization: tgtLevel)
        }
        guard !prepared.train.isEmpty else { throw Seq2SeqError.invalidTraining("no training pairs after the split") }
        let config = Seq2SeqConfig(cell: o.cell, layers: o.layers, hidden: o.hidden, embedding: o.embedding,
                                   bidirectional: o.bidirectional, attention: o.attention,
                                   sourceVocabSize: prepared.sourceVocabulary.count, targetVocabSize: prepared.targetVocabulary.count,
                                   maxSourceLength: max(prepared.longestSource, lengths?.source ?? 1),
                                   maxTargetLength: max(prepared.longestTarget + 5, lengths?.target ?? 0),
                                   dropout: o.dropout)
        let estimate = config.memoryEstimate(batch: o.batch, threads: training.threads)
        try MemoryBudget.require(estimate.trainingBytes(optimizerSlots: training.optimizer.slotCount),
                                 for: "the model (\(Int(exactly: estimate.parameters).map(String.init) ?? "\(estimate.parameters)") parameters)",
                                 hint: "--hidden, --layers, --embedding or --batch")
        let model = try Seq2SeqModel(config: config, seed: training.seed, threads: training.threads)
        model.precision = training.precision
        let bundle = Seq2SeqBundle(model: model, sourceVocabulary: prepared.sourceVocabulary, targetVocabulary: prepared.targetVocabulary,
                                   metadata: ["task": o.task?.rawValue ?? "data"])
        let data = try Seq2SeqBatchSource(pairs: prepared.train, batchSize: o.batch, maxSourceLength: config.maxSourceLength,
                                          maxTargetLength: config.maxTargetLength, seed: training.seed)
        let validation = Array(prepared.split.validation.prefix(o.validationLimit))
        // Encoded and batched once for the validation loss of every evaluation.
        let lossBatches = try Seq2SeqBatcher.batches(Seq2SeqData.encode(validation, prepared.sourceVocabulary, prepared.targetVocabulary),
                                                     options: BatchingOptions(batchSize: 256, maxSourceLength: 1000, maxTargetLength: 1000))
        let evaluation = validation.isEmpty ? nil : TrainingEvaluation(metricNames: metricNames, validationMetric: "val_exact_match",
                                                                      direction: .higherIsBetter) {
            try Self.evaluate(bundle, validation, lossBatches: lossBatches)
        }
        let task = TrainingTask(label: label, model: Seq2SeqLearner(bundle: bundle, teacherForcing: o.teacherForcing), data: data,
                                evaluation: evaluation, fingerprint: TrainingFingerprint.fields(of: o), itemName: "tokens",
                                dataDescription: "\(prepared.split.train.count) training, \(prepared.split.validation.count) validation and "
                                    + "\(prepared.split.test.count) test pairs, vocabularies \(prepared.sourceVocabulary.count)/\(prepared.targetVocabulary.count)")
        return Prepared(task: task, data: prepared, splitNote: splitNote(o, seed: training.seed), warnings: warnings)
    }

    /// Where the three parts come from, e.g. `80 % training / 10 % validation / 10 % test of
    /// pairs.tsv (seed 1)` or `90 % training / 10 % test of pairs.tsv (seed 1), validation from dev.tsv`.
    static func splitNote(_ o: Seq2SeqTrainingOptions, seed: UInt64) -> String {
        func pct(_ x: Double) -> String { String(format: "%.0f %%", 100 * x) }
        var shares = ["\(pct(1 - o.heldOutFraction)) training"]
        if o.validPath == nil { shares.append("\(pct(o.valFraction)) validation") }
        if o.testPath == nil { shares.append("\(pct(o.testFraction)) test") }
        var note = shares.joined(separator: " / ") + " of " + (o.dataPath ?? "the \(o.task?.rawValue ?? "") pairs") + " (seed \(seed))"
        if let v = o.validPath { note += ", validation from \(v)" }
        if let t = o.testPath { note += ", test from \(t)" }
        return note
    }

    /// `val_loss` (over `lossBatches`, the same pairs encoded and batched), `val_exact_match`
    /// and `val_token_accuracy` of `bundle` on `pairs`.
    ///
    /// Across MPI ranks (`bundle.model.processGroup`) the ranks take contiguous runs of chunks of
    /// 64 pairs (greedy decoding runs in such chunks whatever the split) and of loss batches;
    /// every chunk's counts are gathered and added in order, so every rank gets the one-process
    /// figures.
    static func evaluate(_ bundle: Seq2SeqBundle, _ pairs: [SentencePair], lossBatches: [Seq2SeqBatch]) throws -> [String: Double] {
        let group = bundle.model.processGroup
        let chunks = stride(from: 0, to: pairs.count, by: 64).map { $0..<min($0 + 64, pairs.count) }
        let counts = try group.inParts(count: chunks.count, width: 4) { c -> [Double] in
            let part = Array(pairs[chunks[c]])
            let r = try bundle.evaluate(part)
            let referenceTokens = part.reduce(0) { $0 + bundle.targetVocabulary.tokenization.tokenize($1.target).count }
            // The ratios back to counts (exact: each is a count over `part.count` or `referenceTokens`).
            return [(r.exactMatch * Double(part.count)).rounded(), Double(part.count),
                    (r.tokenAccuracy * Double(referenceTokens)).rounded(), Double(referenceTokens)]
        }
        let losses = group.inParts(count: lossBatches.count, width: 2) { b -> [Double] in
            let w = Double(lossBatches[b].targetMask.reduce(0, +))
            return [bundle.model.loss(batch: lossBatches[b]) * w, w]
        }
        var hits = 0.0, n = 0.0, correct = 0.0, tokens = 0.0, sum = 0.0, weight = 0.0
        for c in counts { hits += c[0]; n += c[1]; correct += c[2]; tokens += c[3] }
        for l in losses { sum += l[0]; weight += l[1] }
        return ["val_loss": weight > 0 ? sum / weight : .nan, "val_exact_match": n > 0 ? hits / n : 0,
                "val_token_accuracy": tokens > 0 ? correct / tokens : 0]
    }

    /// What `train` returns: the engine's summary and the held-out test score of `best.safetensors`.
    public struct Outcome {
        /// The engine's summary.
        public var summary: TrainingRunSummary
        /// Greedy exact match of the best checkpoint on the test split (nil: no test pairs).
        public var testExactMatch: Double?
        /// Pairs in the test split.
        public var testPairs: Int

        /// The engine's JSON summary, whose `metrics` hold `test_exact_match` and `test_pairs`.
        public var json: String { summary.json }
    }

    /// Trains per the settings: runs the engine (adjusted by `configure`), writes `test.tsv`
    /// (the held-out pairs) into the output folder, then scores the best checkpoint on it.
    /// - Parameters:
    ///   - log: receives one line about the data and model before training.
    ///   - configure: adjusts the engine (plotter, signals, progress) before it runs.
    public static func train(options: Seq2SeqTrainingOptions, training: TrainingConfiguration, label: String = "translate-toy",
                             log: (String) -> Void = { _ in },
                             configure: (TrainingEngine<Seq2SeqLearner>) -> Void = { _ in }) throws -> Outcome {
        try training.validate()
        let prepared = try prepare(options: options, training: training, label: label)
        let engine = TrainingEngine(configuration: training, task: prepared.task)
        configure(engine)
        let split = prepared.data.split
        let model = prepared.task.model.bundle.model
        for w in prepared.warnings { log(w) }
        log("\(label): \(split.train.count) training, \(split.validation.count) validation, \(split.test.count) test pairs; "
            + "split \(prepared.splitNote); "
            + "\(model.parameterCount) parameters; vocabularies \(model.config.sourceVocabSize)/\(model.config.targetVocabSize)")
        // Written once the run has written its files (or stopped at a signal), never before.
        func writeTest() throws {
            guard !split.test.isEmpty else { return }
            try FileManager.default.createDirectory(atPath: training.outDirectory, withIntermediateDirectories: true)
            try PairTSV.write(split.test, to: training.outDirectory + "/test.tsv")
        }
        let summary: TrainingRunSummary
        do {
            summary = try engine.run()
        } catch let e as TrainingInterrupted {
            try writeTest()
            throw e
        }
        try writeTest()
        var test: Double?, result = summary
        if !split.test.isEmpty {
            let t = try Seq2SeqCheckpoint.load(path: engine.bestPath).evaluate(split.test).exactMatch
            test = t
            result.metrics["test_exact_match"] = t
            result.metrics["test_pairs"] = Double(split.test.count)
            result.testMetric = "test_exact_match"
        }
        return Outcome(summary: result, testExactMatch: test, testPairs: split.test.count)
    }
}
