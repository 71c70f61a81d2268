import Foundation
import RecurrentCore

/// A trained model with the vocabularies it was trained on.
public struct Seq2SeqBundle {
    /// The model.
    public var model: Seq2SeqModel
    /// Source vocabulary (its size is `config.sourceVocabSize`).
    public var sourceVocabulary: Vocabulary
    /// Target vocabulary (its size is `config.targetVocabSize`).
    public var targetVocabulary: Vocabulary
    /// The checkpoint metadata besides format, config and vocabularies (e.g. `task`).
    public var metadata: [String: String]

    /// Bundles a model with its vocabularies.
    public init(model: Seq2SeqModel, sourceVocabulary: Vocabulary, targetVocabulary: Vocabulary, metadata: [String: String] = [:]) {
        self.model = model; self.sourceVocabulary = sourceVocabulary; self.targetVocabulary = targetVocabulary
        self.metadata = metadata
    }
}

/// Checkpoints of `Seq2SeqModel`: safetensors with the tensors of `namedParameters` and
/// `__metadata__` keys `format` = `rnn-suite/seq2seq/1`, `config` (JSON of `Seq2SeqConfig`),
/// `source_vocab` and `target_vocab` (JSON of `Vocabulary`), plus any extra string fields.
public enum Seq2SeqCheckpoint {
    /// The format tag of this model's checkpoints.
    public static let format = "rnn-suite/seq2seq/1"

    /// Writes the bundle atomically to `path`; `extra` metadata is added (reserved keys win).
    public static func save(_ bundle: Seq2SeqBundle, extra: [String: String] = [:], to path: String) throws {
        var metadata = bundle.metadata.merging(extra) { $1 }
        metadata["format"] = format
        metadata["config"] = bundle.model.config.jsonString()
        metadata["source_vocab"] = bundle.sourceVocabulary.jsonString()
        metadata["target_vocab"] = bundle.targetVocabulary.jsonString()
        try SafeTensors.write(bundle.model.stateDict, metadata: metadata, to: path)
    }

    /// Reads and validates a checkpoint: the format tag, the config (ranges), the
    /// vocabularies (sizes equal to the config's) and every tensor's presence and shape.
    ///
    /// Throws `CheckpointError` for a file that is not valid safetensors and `Seq2SeqError`
    /// for one of another task or with inconsistent contents; each names `path`.
    public static func load(path: String, threads: Int = 1) throws -> Seq2SeqBundle {
        let archive = try SafeTensors.read(path: path)
        let meta = archive.metadata
        guard let fmt = meta["format"] else { throw Seq2SeqError.wrongFormat(path: path, found: "none") }
        guard fmt == format else { throw Seq2SeqError.wrongFormat(path: path, found: fmt) }
        guard let configJSON = meta["config"] else { throw Seq2SeqError.badMetadata(path: path, reason: "no \"config\" field") }
        let config: Seq2SeqConfig
        do {
            config = try JSONDecoder().decode(Seq2SeqConfig.self, from: Data(configJSON.utf8))
        } catch {
            throw Seq2SeqError.badMetadata(path: path, reason: "\"config\" is not a valid model configuration")
        }
        try config.validate(source: path)
        guard let srcJSON = meta["source_vocab"], let tgtJSON = meta["target_vocab"] else {
            throw Seq2SeqError.badMetadata(path: path, reason: "no \"source_vocab\" / \"target_vocab\" field")
        }
        let src = try Vocabulary(json: srcJSON, origin: path + " (source_vocab)")
        let tgt = try Vocabulary(json: tgtJSON, origin: path + " (target_vocab)")
        guard src.count == config.sourceVocabSize, tgt.count == config.targetVocabSize else {
            throw Seq2SeqError.badMetadata(path: path, reason: "vocabulary sizes \(src.count)/\(tgt.count) differ from the config's \(config.sourceVocabSize)/\(config.targetVocabSize)")
        }
        let model = try Seq2SeqModel(config: config, seed: 0, threads: threads)
        for (name, p) in model.namedParameters {
            guard let t = archive.tensor(name) else { throw Seq2SeqError.missingTensor(path: path, name: name) }
            guard t.shape == p.shape, t.values.count == p.count else {
                throw Seq2SeqError.shapeMismatch(path: path, name: name, expected: p.shape, found: t.shape)
            }
            p.values = t.values
        }
        var extra = meta
        for k in ["format", "config", "source_vocab", "target_vocab"] { extra[k] = nil }
        return Seq2SeqBundle(model: model, sourceVocabulary: src, targetVocabulary: tgt, metadata: extra)
    }
}
