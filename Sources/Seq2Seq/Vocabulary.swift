import Foundation
import RecurrentCore

/// The translation model's side of the shared `Vocabulary` (RecurrentCore): four special tokens,
/// building from training texts, unknown tokens as `<unk>`, and the checkpoint JSON form.
///
/// Ids: `<pad>` = 0, `<unk>` = 1, `<s>` = 2, `</s>` = 3, then the data tokens by descending
/// count, ties in code-point order. Tokens are compared scalar for scalar (`"é"` precomposed
/// and `"e\u{301}"` are two tokens). Data tokens spelled like a special token are not added;
/// encoding maps them to `<unk>`.
///
/// JSON form (checkpoint metadata `source_vocab` / `target_vocab`):
/// `{"tokenization":"char","tokens":["<pad>","<unk>",…]}`.
extension Vocabulary {
    /// Id of `<pad>`.
    public static let padID = 0
    /// Id of `<unk>`.
    public static let unknownID = 1
    /// Id of `<s>` (start of sequence, the decoder's first input).
    public static let startID = 2
    /// Id of `</s>` (end of sequence).
    public static let endID = 3
    /// The special tokens in id order.
    public static let specialTokens = ["<pad>", "<unk>", "<s>", "</s>"]

    /// How texts are cut into tokens for this vocabulary (its `level`).
    public var tokenization: TokenLevel { level }

    /// Builds a vocabulary from the token sequences of the training data.
    /// - Parameters:
    ///   - sequences: tokenised training texts, `[text][token]`.
    ///   - tokenization: recorded with the vocabulary (used by `encode(text:)` / `decode`).
    ///   - minCount: tokens seen fewer times are left out (they encode as `<unk>`).
    ///   - maxSize: if set, at most this many ids in total (specials included).
    public init(sequences: [[String]], tokenization: TokenLevel, minCount: Int = 1, maxSize: Int? = nil) {
        let room = maxSize.map { max(0, $0 - Self.specialTokens.count) }
        let ranked = Vocabulary.rankedTokens(sequences, minCount: minCount, limit: room, excluding: Self.specialTokens)
        do {
            try self.init(tokens: Self.specialTokens + ranked, level: tokenization, specials: Self.specialTokens)
        } catch {
            preconditionFailure("ranked tokens are distinct and non-empty: \(error)")
        }
    }

    /// Builds a vocabulary from training texts, tokenised with `tokenization`.
    public init(texts: [String], tokenization: TokenLevel, minCount: Int = 1, maxSize: Int? = nil) {
        self.init(sequences: texts.map { tokenization.tokenize($0) }, tokenization: tokenization,
                  minCount: minCount, maxSize: maxSize)
    }

    /// Creates a vocabulary from a complete token list (specials first), checking it.
    /// `origin` names where the list came from, for error messages.
    public init(tokens: [String], tokenization: TokenLevel, origin: String = "vocabulary") throws(VocabularyError) {
        try self.init(tokens: tokens, level: tokenization, specials: Self.specialTokens, source: origin)
    }

    /// Id of a data token; `<unk>` for tokens not in the vocabulary or spelled like a special.
    public func dataID(of token: String) -> Int {
        guard let id = id(of: token), Int(id) >= Self.specialTokens.count else { return Self.unknownID }
        return Int(id)
    }

    /// Ids of `tokens` (no `<s>` / `</s>` added); tokens mapped to `<unk>` are counted in
    /// `unknown` (token → occurrences) so a caller can report them once.
    public func encode(_ tokens: [String], unknown: inout [String: Int]) -> [Int] {
        tokens.map { token in
            let i = dataID(of: token)
            if i == Self.unknownID { unknown[token, default: 0] += 1 }
            return i
        }
    }

    /// Ids of `tokens`, unknown tokens as `<unk>`.
    public func encode(_ tokens: [String]) -> [Int] {
        tokens.map { dataID(of: $0) }
    }

    /// Ids of `text` tokenised with this vocabulary's tokenization; unknown tokens counted.
    public func encode(text: String, unknown: inout [String: Int]) -> [Int] {
        encode(tokenization.tokenize(text), unknown: &unknown)
    }

    /// Tokens of `ids` up to (not including) the first `</s>`; `<pad>`, `<unk>`, `<s>` and ids
    /// outside the vocabulary are dropped.
    public func decodeTokens(_ ids: [Int]) -> [String] {
        var out: [String] = []
        for id in ids {
            if id == Self.endID { break }
            if id < Self.specialTokens.count || id >= tokens.count { continue }
            out.append(tokens[id])
        }
        return out
    }

    /// Text of `ids` (see `decodeTokens`), joined as `tokenization` joins tokens.
    public func decode(_ ids: [Int]) -> String {
        tokenization.join(decodeTokens(ids))
    }

    // MARK: JSON

    /// The checkpoint JSON form as a compact string.
    public func jsonString() -> String {
        let object: [String: Any] = ["tokenization": level.rawValue, "tokens": tokens]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses the checkpoint JSON form; `origin` names where it came from (e.g. a checkpoint path).
    public init(json: String, origin: String = "vocabulary") throws(VocabularyError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        } catch {
            throw .malformedJSON(source: origin, reason: "invalid JSON")
        }
        guard let dict = object as? [String: Any] else { throw .malformedJSON(source: origin, reason: "top level is not an object") }
        guard let name = dict["tokenization"] as? String else { throw .malformedJSON(source: origin, reason: "missing string field \"tokenization\"") }
        guard let level = TokenLevel(rawValue: name) else {
            throw .malformedJSON(source: origin, reason: "unknown tokenization \"\(name)\" (expected char or word)")
        }
        guard let tokens = dict["tokens"] as? [String] else { throw .malformedJSON(source: origin, reason: "missing string array \"tokens\"") }
        try self.init(tokens: tokens, tokenization: level, origin: origin)
    }
}
