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

/// Checkpoints of `Seq2SeqModel` (`ModelCheckpoint`): safetensors with the tensors of
/// `namedParameters` and `__metadata__` keys `format` = `rnn-suite/seq2seq/1`, `config` (JSON of
/// `Seq2SeqConfig`), `source_vocab` and `target_vocab` (JSON of `Vocabulary`), plus any extra
/// string fields (`task`, the training step).
public enum Seq2SeqCheckpoint {
    /// The format: `rnn-suite/seq2seq/1`.
    public static let checkpointFormat = CheckpointFormat(name: "rnn-suite/seq2seq", version: 1)
    /// The format tag of this model's checkpoints.
    public static let format = checkpointFormat.tag

    /// Writes the bundle atomically to `path`; `extra` metadata is added (reserved keys win).
    public static func save(_ bundle: Seq2SeqBundle, extra: [String: String] = [:], to path: String) throws {
        var metadata = bundle.metadata.merging(extra) { $1 }
        metadata["source_vocab"] = bundle.sourceVocabulary.jsonString()
        metadata["target_vocab"] = bundle.targetVocabulary.jsonString()
        try ModelCheckpoint(format: checkpointFormat, configuration: bundle.model.config, tensors: bundle.model.stateDict,
                            metadata: metadata).write(to: path)
    }

    /// Reads and validates a checkpoint: the format tag, the config (ranges), the
    /// vocabularies (sizes equal to the config's) and the tensor set (each present with its
    /// shape, nothing else).
    ///
    /// Throws `CheckpointError` for a file that is not valid safetensors, `ModelLoadError` for
    /// one of another format or with a wrong tensor set, `Seq2SeqError` / `VocabularyError`
    /// for inconsistent contents; each names `path`.
    public static func load(path: String, threads: Int = 1) throws -> Seq2SeqBundle {
        let checkpoint = try ModelCheckpoint<Seq2SeqConfig>.read(path: path, format: checkpointFormat)
        let config = checkpoint.configuration
        try config.validate(source: path)
        let meta = checkpoint.metadata
        guard let srcJSON = meta["source_vocab"], let tgtJSON = meta["target_vocab"] else {
            throw Seq2SeqError.badMetadata(path: path, reason: "no \"source_vocab\" / \"target_vocab\" field")
        }
        let src = try Vocabulary(json: srcJSON, origin: path + " (source_vocab)")
        let tgt = try Vocabulary(json: tgtJSON, origin: path + " (target_vocab)")
        guard src.count == config.sourceVocabSize, tgt.count == config.targetVocabSize else {
            throw Seq2SeqError.badMetadata(path: path, reason: "vocabulary sizes \(src.count)/\(tgt.count) differ from the config's \(config.sourceVocabSize)/\(config.targetVocabSize)")
        }
        try MemoryBudget.require(config.memoryEstimate(batch: 1, threads: threads).inferenceBytes, for: "\(path): the model of this checkpoint")
        let model = try Seq2SeqModel(config: config, seed: 0, threads: threads)
        let byName = try checkpoint.tensors(matching: model.namedParameters.map { ($0.name, $0.parameter.shape) }, source: path)
        // `tensors(matching:)` has checked every name and shape.
        for (name, p) in model.namedParameters { p.values = byName[name]!.values }
        var extra = meta
        for k in ["source_vocab", "target_vocab"] { extra[k] = nil }
        return Seq2SeqBundle(model: model, sourceVocabulary: src, targetVocabulary: tgt, metadata: extra)
    }
}
