import Foundation
import RecurrentCore

/// How the decoder looks at the encoder's outputs.
///
/// With attention the decoder follows Luong et al. (2015): the top decoder state `h_t` scores
/// every source position, the softmax of the scores (padded positions excluded) weights the
/// encoder outputs into a context `c_t`, and the attentional state
/// `h~_t = tanh(W_out [c_t; h_t])` feeds the output layer and, with input feeding, the next
/// decoder step (its input is `[embedding(y_{t-1}); h~_{t-1}]`).
public enum AttentionKind: String, Codable, CaseIterable, Sendable {
    /// No attention: the output layer reads `h_t`; the encoder reaches the decoder only through
    /// its final state.
    case none
    /// Luong dot score `h_t · m_s`.
    case dot
    /// Luong general score `h_t · (W_a m_s)`, `W_a` = `attention.linear_in.weight [H, H]`.
    case general
    /// Bahdanau additive (Luong "concat") score `v · tanh(W_q h_t + W_k m_s + b_k)`, with
    /// `attention.query.weight [A, H]`, `attention.key.weight [A, H]`, `attention.key.bias [A]`,
    /// `attention.v.weight [1, A]` and A = H.
    case additive

    /// Whether the decoder input carries the previous attentional state (input feeding).
    public var usesInputFeeding: Bool { self != .none }
}

/// Errors of the sequence-to-sequence model: configuration, checkpoints, input text.
public enum Seq2SeqError: Error, CustomStringConvertible, Equatable {
    /// A configuration value outside its allowed range.
    case invalidConfig(source: String, reason: String)
    /// A checkpoint whose metadata is missing a field or holds an unreadable one.
    case badMetadata(path: String, reason: String)
    /// An input text longer than the model's maximum source length; `place` says where it was
    /// read (`file.tsv:7`, `standard input line 3`, `argument 2`, `input 2`).
    case inputTooLong(place: String, text: String, length: Int, maximum: Int)
    /// An input text with no tokens, and where it was read.
    case emptyInput(place: String)
    /// Training settings that cannot be used.
    case invalidTraining(String)

    /// One line naming the file (or input) and what is wrong.
    public var description: String {
        switch self {
        case let .invalidConfig(source, reason): return "\(source): invalid model configuration: \(reason)"
        case let .badMetadata(path, reason): return "\(path): checkpoint metadata: \(reason)"
        case let .inputTooLong(place, text, length, maximum):
            let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
            return "\(place): input \"\(shown)\" has \(length) tokens, more than the model's maximum of \(maximum)"
        case let .emptyInput(place): return "\(place): input has no tokens"
        case let .invalidTraining(why): return "training settings: \(why)"
        }
    }
}

/// Shape of a `Seq2SeqModel`; stored as the `config` JSON of its checkpoints.
public struct Seq2SeqConfig: Codable, Sendable, Equatable {
    /// Recurrent cell of encoder and decoder.
    public var cell: CellKind
    /// Recurrent layers of the encoder and of the decoder (the same number).
    public var layers: Int
    /// Hidden width H of every recurrent layer (and of the attentional state).
    public var hidden: Int
    /// Embedding width E of source and target tokens.
    public var embedding: Int
    /// Bidirectional encoder. The two directions are summed: outputs `m_s = fwd_s + rev_s`
    /// (`[H]`) and, per layer, final states `h = h_fwd + h_rev` (and `c` likewise) start the
    /// decoder, so the decoder and attention always see width H.
    public var bidirectional: Bool
    /// Attention variant.
    public var attention: AttentionKind
    /// Source vocabulary size (specials included).
    public var sourceVocabSize: Int
    /// Target vocabulary size (specials included).
    public var targetVocabSize: Int
    /// Longest source accepted, in tokens.
    public var maxSourceLength: Int
    /// Longest target produced by decoding, in tokens (without `</s>`).
    public var maxTargetLength: Int
    /// Dropout probability between the stacked recurrent layers of the encoder and of the
    /// decoder in training (no effect with one layer); absent in older checkpoints = 0.
    public var dropout: Float

    enum CodingKeys: String, CodingKey {
        case cell, layers, hidden, embedding, bidirectional, attention, dropout
        case sourceVocabSize = "source_vocab_size"
        case targetVocabSize = "target_vocab_size"
        case maxSourceLength = "max_source_length"
        case maxTargetLength = "max_target_length"
    }

    /// Creates a configuration (checked by `validate`).
    public init(cell: CellKind = .lstm, layers: Int = 1, hidden: Int = 128, embedding: Int = 32, bidirectional: Bool = false,
                attention: AttentionKind = .general, sourceVocabSize: Int, targetVocabSize: Int,
                maxSourceLength: Int = 64, maxTargetLength: Int = 64, dropout: Float = 0) {
        self.cell = cell; self.layers = layers; self.hidden = hidden; self.embedding = embedding
        self.bidirectional = bidirectional; self.attention = attention
        self.sourceVocabSize = sourceVocabSize; self.targetVocabSize = targetVocabSize
        self.maxSourceLength = maxSourceLength; self.maxTargetLength = maxTargetLength
        self.dropout = dropout
    }

    /// Decodes the `config` JSON; `dropout` may be absent (checkpoints written before it existed).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cell = try c.decode(CellKind.self, forKey: .cell)
        layers = try c.decode(Int.self, forKey: .layers)
        hidden = try c.decode(Int.self, forKey: .hidden)
        embedding = try c.decode(Int.self, forKey: .embedding)
        bidirectional = try c.decode(Bool.self, forKey: .bidirectional)
        attention = try c.decode(AttentionKind.self, forKey: .attention)
        sourceVocabSize = try c.decode(Int.self, forKey: .sourceVocabSize)
        targetVocabSize = try c.decode(Int.self, forKey: .targetVocabSize)
        maxSourceLength = try c.decode(Int.self, forKey: .maxSourceLength)
        maxTargetLength = try c.decode(Int.self, forKey: .maxTargetLength)
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
    }

    /// Throws `Seq2SeqError.invalidConfig` (naming `source`) for values outside
    /// layers 1…8, hidden / embedding 1…4096, vocabularies 5…1 000 000, lengths 1…1000,
    /// dropout in [0, 1).
    public func validate(source: String = "configuration") throws(Seq2SeqError) {
        func check(_ ok: Bool, _ why: String) throws(Seq2SeqError) { if !ok { throw .invalidConfig(source: source, reason: why) } }
        try check((1...8).contains(layers), "layers \(layers) not in 1…8")
        try check((1...4096).contains(hidden), "hidden \(hidden) not in 1…4096")
        try check((1...4096).contains(embedding), "embedding \(embedding) not in 1…4096")
        try check((5...1_000_000).contains(sourceVocabSize), "source vocabulary size \(sourceVocabSize) not in 5…1000000")
        try check((5...1_000_000).contains(targetVocabSize), "target vocabulary size \(targetVocabSize) not in 5…1000000")
        try check((1...1000).contains(maxSourceLength), "maximum source length \(maxSourceLength) not in 1…1000")
        try check((1...1000).contains(maxTargetLength), "maximum target length \(maxTargetLength) not in 1…1000")
        try check(dropout >= 0 && dropout < 1, "dropout \(dropout) not in [0, 1)")
    }
}

extension Seq2SeqConfig {
    /// Memory of the model, training on `batch` pairs of the longest lengths on `threads`
    /// shards: the two embeddings, the encoder and decoder stacks, the attention's layers and
    /// the output layer `H·Vt + Vt`; the model keeps one gradient copy per shard, the
    /// primary's and the inference worker's.
    public func memoryEstimate(batch: Int, threads: Int) -> MemoryEstimate {
        let H = Double(hidden), E = Double(embedding), Vs = Double(sourceVocabSize), Vt = Double(targetVocabSize)
        let decoderInput = embedding + (attention.usesInputFeeding ? hidden : 0)
        var p = Vs * E + Vt * E + H * Vt + Vt
        p += MemoryEstimate.recurrentParameters(cell: cell, input: embedding, hidden: hidden, layers: layers, bidirectional: bidirectional)
        p += MemoryEstimate.recurrentParameters(cell: cell, input: decoderInput, hidden: hidden, layers: layers, bidirectional: false)
        switch attention {
        case .general: p += H * H
        case .additive: p += H * H + (H * H + H) + H
        default: break
        }
        if attention != .none { p += 2 * H * H }
        let S = max(1, maxSourceLength), T = max(1, maxTargetLength)
        let ns = Double(max(1, batch)) * Double(S), nt = Double(max(1, batch)) * Double(T)
        let work = MemoryEstimate.recurrentWorkspace(cell: cell, input: embedding, hidden: hidden, layers: layers,
                                                     bidirectional: bidirectional, rows: batch, steps: S)
            + MemoryEstimate.recurrentWorkspace(cell: cell, input: decoderInput, hidden: hidden, layers: layers,
                                                bidirectional: false, rows: batch, steps: T)
            + nt * (2 * Vt + 3 * E + 4 * H + 3 * Double(S)) + ns * (3 * E + 3 * H)
        return MemoryEstimate(parameters: p, workspace: work, gradientCopies: max(1, threads) + 2)
    }
}
