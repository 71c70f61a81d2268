import Foundation
import RecurrentCore

/// Reading and writing language-model checkpoints (`rnn-suite/lm/1`).
///
/// The file is safetensors with PyTorch `state_dict` names (`embedding.weight [V, E]` unless
/// one-hot, `rnn.weight_ih_l{k}`, `rnn.weight_hh_l{k}`, `rnn.bias_ih_l{k}`, `rnn.bias_hh_l{k}`,
/// `decoder.weight [V, H]`, `decoder.bias [V]`) and `__metadata__`: `format` =
/// `rnn-suite/lm/1`, `config` = JSON object (`cell`, `layers`, `hidden`, `embedding`,
/// `vocab_size`, `level`, `dropout`, `tie_weights`), `vocab` = JSON array of the tokens in id
/// order. Any program that writes this layout (e.g. PyTorch + safetensors) can be loaded.
public enum LanguageModelCheckpoint {
    /// The format: `rnn-suite/lm/1`.
    public static let checkpointFormat = CheckpointFormat(name: "rnn-suite/lm", version: 1)
    /// The `format` metadata value.
    public static let format = checkpointFormat.tag

    /// The `config` object: the model's configuration plus the token level, flat
    /// (`cell`, `layers`, `hidden`, `embedding`, `vocab_size`, `level`, `dropout`, `tie_weights`).
    public struct Configuration: Codable, Sendable, Equatable {
        /// The model.
        public var model: LanguageModelConfig
        /// The tokenizer's level (absent in a file = character).
        public var level: TokenLevel

        /// A configuration.
        public init(model: LanguageModelConfig, level: TokenLevel) {
            self.model = model
            self.level = level
        }

        enum CodingKeys: String, CodingKey { case level }

        public init(from decoder: Decoder) throws {
            model = try LanguageModelConfig(from: decoder)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            level = try c.decodeIfPresent(TokenLevel.self, forKey: .level) ?? .character
        }

        public func encode(to encoder: Encoder) throws {
            try model.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(level, forKey: .level)
        }
    }

    /// A loaded checkpoint.
    public struct Loaded {
        public let model: RecurrentLanguageModel
        public let vocabulary: Vocabulary
        public let metadata: [String: String]
    }

    /// Writes the model atomically to `path` with the standard metadata plus `extra`.
    public static func save(model: RecurrentLanguageModel, vocabulary: Vocabulary, to path: String,
                            extra: [String: String] = [:]) throws {
        var meta = extra
        meta["vocab"] = vocabulary.tokensJSON()
        try ModelCheckpoint(format: checkpointFormat, configuration: Configuration(model: model.config, level: vocabulary.level),
                            tensors: model.stateDict, metadata: meta).write(to: path)
    }

    /// Reads and validates a checkpoint; builds the model with `threads` batch shards.
    public static func load(path: String, threads: Int = 1) throws -> Loaded {
        let checkpoint = try ModelCheckpoint<Configuration>.read(path: path, format: checkpointFormat)
        let c = checkpoint.configuration.model
        guard c.layers >= 1, c.hidden >= 1, c.vocabSize >= 1, c.embedding >= 0, c.layers <= 64, c.hidden <= 1 << 16,
              c.embedding <= 1 << 16, c.vocabSize <= 1 << 24 else {
            throw ModelLoadError.badMetadata(path, "config sizes out of range (layers \(c.layers), hidden \(c.hidden), "
                                             + "embedding \(c.embedding), vocab_size \(c.vocabSize))")
        }
        guard let vocabText = checkpoint.metadata["vocab"] else { throw ModelLoadError.badMetadata(path, "metadata 'vocab' is missing") }
        let vocab = try Vocabulary(tokensJSON: vocabText, level: checkpoint.configuration.level, source: path)
        guard vocab.count == c.vocabSize else {
            throw ModelLoadError.badMetadata(path, "vocab has \(vocab.count) tokens but config vocab_size is \(c.vocabSize)")
        }
        var config = c
        config.tieWeights = c.tieWeights && c.embedding == c.hidden
        try MemoryBudget.require(config.memoryEstimate(batch: 1, steps: 1, threads: threads).inferenceBytes,
                                 for: "\(path): the model of this checkpoint")
        let model = RecurrentLanguageModel(config: config, seed: 0, threads: threads)
        let byName = try checkpoint.tensors(matching: model.stateDict.map { ($0.name, $0.shape) }, source: path)
        try model.load(byName, source: path)
        return Loaded(model: model, vocabulary: vocab, metadata: checkpoint.metadata)
    }
}

/// Scoring and prediction with a trained language model.
public enum LanguageModelScoring {
    /// Result of `score`: mean negative log-likelihood in nats over `predictions` positions.
    public struct Score: Sendable {
        public let nll: Double
        public let predictions: Int
        /// `exp(nll)`.
        public var perplexity: Double { Foundation.exp(nll) }
        /// Bits per token (per character at character level): `nll / ln 2`.
        public var bitsPerToken: Double { nll / M_LN2 }
    }

    /// Reads `ids` as one stream from a zero state, carrying the state through, and scores each
    /// token from all tokens before it: mean NLL over the `ids.count - 1` predictions.
    public static func score(model: RecurrentLanguageModel, ids: [Int32], chunk: Int = 256) -> Score {
        guard ids.count >= 2 else { return Score(nll: 0, predictions: 0) }
        model.resetEvaluationState()
        var total = 0.0
        var start = 0
        let n = ids.count - 1
        while start < n {
            let len = min(chunk, n - start)
            let x = Array(ids[start..<(start + len)]), y = Array(ids[(start + 1)...(start + len)])
            total += model.evaluate(inputs: x, targets: y, batch: 1, steps: len, carryState: true) * Double(len)
            start += len
        }
        return Score(nll: total / Double(n), predictions: n)
    }

    /// Mean cross-entropy over consecutive `seqLen` chunks of `ids`, each from a zero state
    /// (the validation measure): all `ids.count - 1` predictions count; the last chunk may be
    /// shorter. Chunks are evaluated `rowsPerBatch` at a time; with a distributed `group` the
    /// ranks take contiguous runs of those batches and the batch sums are gathered and added in
    /// batch order, so every rank gets the one-process figure.
    public static func chunkedLoss(model: RecurrentLanguageModel, ids: [Int32], seqLen: Int, rowsPerBatch: Int = 128,
                                   group: ProcessGroup = .single) -> Double {
        let n = ids.count - 1
        guard n >= 1 else { return .nan }
        let full = n / seqLen
        let batches = (full + rowsPerBatch - 1) / rowsPerBatch
        let parts = group.inParts(count: batches) { k in
            let row = k * rowsPerBatch
            let rows = min(rowsPerBatch, full - row)
            var x = [Int32](), y = [Int32]()
            x.reserveCapacity(rows * seqLen); y.reserveCapacity(rows * seqLen)
            for r in 0..<rows {
                let s = (row + r) * seqLen
                x += ids[s..<(s + seqLen)]
                y += ids[(s + 1)...(s + seqLen)]
            }
            return model.evaluate(inputs: x, targets: y, batch: rows, steps: seqLen, carryState: false) * Double(rows * seqLen)
        }
        var total = parts.reduce(0, +)
        let rest = n - full * seqLen
        if rest > 0 {
            let s = full * seqLen
            total += model.evaluate(inputs: Array(ids[s..<(s + rest)]), targets: Array(ids[(s + 1)...(s + rest)]),
                                    batch: 1, steps: rest, carryState: false) * Double(rest)
        }
        return total / Double(n)
    }

    /// The probabilities of the token after `ids` (read as one stream from a zero state),
    /// `[vocabulary]`: the softmax of the last logits, in Float64.
    public static func nextTokenProbabilities(model: RecurrentLanguageModel, ids: [Int32]) -> [Double] {
        model.resetEvaluationState()
        var logits: [Float] = []
        for id in ids { logits = model.nextLogits([id]) }
        guard let m = logits.max() else { return [] }
        let e = logits.map { Foundation.exp(Double($0) - Double(m)) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// Greedy next-token prediction at every position of `ids`, from a zero state.
    public static func predictNext(model: RecurrentLanguageModel, ids: [Int32]) -> [Int32] {
        model.resetEvaluationState()
        var out: [Int32] = []
        for id in ids {
            let logits = model.nextLogits([id])
            var best = 0
            for j in 1..<logits.count where logits[j] > logits[best] { best = j }
            out.append(Int32(best))
        }
        return out
    }
}
