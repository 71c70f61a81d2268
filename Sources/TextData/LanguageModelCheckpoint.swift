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
    /// The `format` metadata value.
    public static let format = "rnn-suite/lm/1"

    /// A loaded checkpoint.
    public struct Loaded {
        public let model: RecurrentLanguageModel
        public let vocabulary: Vocabulary
        public let metadata: [String: String]
    }

    /// The `config` JSON of a model and level.
    public static func configJSON(_ config: LanguageModelConfig, level: TokenLevel) -> String {
        let obj: [String: Any] = [
            "cell": config.cell.rawValue, "layers": config.layers, "hidden": config.hidden,
            "embedding": config.embedding, "vocab_size": config.vocabSize, "level": level.rawValue,
            "dropout": Double(config.dropout), "tie_weights": config.tieWeights,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes the model atomically to `path` with the standard metadata plus `extra`.
    public static func save(model: RecurrentLanguageModel, vocabulary: Vocabulary, to path: String,
                            extra: [String: String] = [:]) throws {
        var meta = extra
        meta["format"] = format
        meta["config"] = configJSON(model.config, level: vocabulary.level)
        meta["vocab"] = vocabulary.tokensJSON()
        try SafeTensors.write(model.stateDict, metadata: meta, to: path)
    }

    /// Reads and validates a checkpoint; builds the model with `threads` batch shards.
    public static func load(path: String, threads: Int = 1) throws -> Loaded {
        let archive = try SafeTensors.read(path: path)
        let meta = archive.metadata
        guard let fmt = meta["format"] else {
            throw ModelLoadError.badMetadata(path, "not a language-model checkpoint (no 'format' in the metadata)")
        }
        guard fmt == format else {
            throw ModelLoadError.badMetadata(path, "checkpoint format is '\(fmt)', lm-train reads '\(format)'")
        }
        guard let configText = meta["config"], let obj = (try? JSONSerialization.jsonObject(with: Data(configText.utf8))) as? [String: Any] else {
            throw ModelLoadError.badMetadata(path, "metadata 'config' is missing or not a JSON object")
        }
        func int(_ key: String) throws -> Int {
            guard let n = obj[key] as? NSNumber, let v = Int(exactly: n.doubleValue), v >= 0 else {
                throw ModelLoadError.badMetadata(path, "config '\(key)' is missing or not a non-negative integer")
            }
            return v
        }
        guard let cellName = obj["cell"] as? String, let cell = CellKind(argument: cellName) else {
            throw ModelLoadError.badMetadata(path, "config 'cell' is missing or unknown (lstm, gru, rnn_tanh, rnn_relu)")
        }
        let levelName = (obj["level"] as? String) ?? "char"
        guard let level = TokenLevel(rawValue: levelName) else {
            throw ModelLoadError.badMetadata(path, "config 'level' must be 'char' or 'word', got '\(levelName)'")
        }
        let layers = try int("layers"), hidden = try int("hidden"), vocabSize = try int("vocab_size")
        let embedding = obj["embedding"] == nil ? 0 : try int("embedding")
        guard layers >= 1, hidden >= 1, vocabSize >= 1, layers <= 64, hidden <= 1 << 16, vocabSize <= 1 << 24 else {
            throw ModelLoadError.badMetadata(path, "config sizes out of range (layers \(layers), hidden \(hidden), vocab_size \(vocabSize))")
        }
        let dropout = Float((obj["dropout"] as? NSNumber)?.doubleValue ?? 0)
        let tie = (obj["tie_weights"] as? Bool) ?? false
        guard let vocabText = meta["vocab"] else { throw ModelLoadError.badMetadata(path, "metadata 'vocab' is missing") }
        let vocab = try Vocabulary(tokensJSON: vocabText, level: level, source: path)
        guard vocab.count == vocabSize else {
            throw ModelLoadError.badMetadata(path, "vocab has \(vocab.count) tokens but config vocab_size is \(vocabSize)")
        }
        let config = LanguageModelConfig(cell: cell, layers: layers, hidden: hidden, embedding: embedding, vocabSize: vocabSize,
                                         dropout: dropout, tieWeights: tie && embedding == hidden)
        let model = RecurrentLanguageModel(config: config, seed: 0, threads: threads)
        var byName: [String: NamedTensor] = [:]
        for t in archive.tensors { byName[t.name] = t }
        try model.load(byName, source: path)
        let expected = Set(model.stateDict.map(\.name))
        if let extra = byName.keys.sorted().first(where: { !expected.contains($0) }) {
            throw ModelLoadError.badMetadata(path, "unexpected tensor '\(extra)' for this configuration")
        }
        return Loaded(model: model, vocabulary: vocab, metadata: meta)
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
    /// shorter. Chunks are evaluated `rowsPerBatch` at a time.
    public static func chunkedLoss(model: RecurrentLanguageModel, ids: [Int32], seqLen: Int, rowsPerBatch: Int = 128) -> Double {
        let n = ids.count - 1
        guard n >= 1 else { return .nan }
        let full = n / seqLen
        var total = 0.0
        var row = 0
        while row < full {
            let rows = min(rowsPerBatch, full - row)
            var x = [Int32](), y = [Int32]()
            x.reserveCapacity(rows * seqLen); y.reserveCapacity(rows * seqLen)
            for r in 0..<rows {
                let s = (row + r) * seqLen
                x += ids[s..<(s + seqLen)]
                y += ids[(s + 1)...(s + seqLen)]
            }
            total += model.evaluate(inputs: x, targets: y, batch: rows, steps: seqLen, carryState: false) * Double(rows * seqLen)
            row += rows
        }
        let rest = n - full * seqLen
        if rest > 0 {
            let s = full * seqLen
            total += model.evaluate(inputs: Array(ids[s..<(s + rest)]), targets: Array(ids[(s + 1)...(s + rest)]),
                                    batch: 1, steps: rest, carryState: false) * Double(rest)
        }
        return total / Double(n)
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
