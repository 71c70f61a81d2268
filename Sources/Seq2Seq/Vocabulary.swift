import Foundation

/// Errors loading a vocabulary from JSON.
public enum VocabularyError: Error, CustomStringConvertible, Equatable {
    /// The JSON is not a vocabulary object.
    case malformedJSON(source: String, reason: String)
    /// The first four tokens are not `<pad>`, `<unk>`, `<s>`, `</s>`.
    case wrongSpecialTokens(source: String)
    /// A token appears twice.
    case duplicateToken(source: String, token: String)

    /// One line naming where the JSON came from and what is wrong.
    public var description: String {
        switch self {
        case let .malformedJSON(source, reason): return "\(source): not a vocabulary JSON object: \(reason)"
        case let .wrongSpecialTokens(source): return "\(source): vocabulary must start with the tokens <pad>, <unk>, <s>, </s>"
        case let .duplicateToken(source, token): return "\(source): vocabulary lists the token \"\(token)\" twice"
        }
    }
}

/// A token ↔ id mapping with four special tokens, built from training data.
///
/// Ids: `<pad>` = 0, `<unk>` = 1, `<s>` = 2, `</s>` = 3, then the data tokens by descending
/// count, ties by token string (ascending `String` order). Data tokens spelled like a special
/// token are not added; encoding maps them to `<unk>`.
///
/// JSON form (for checkpoint metadata): `{"tokenization":"char","tokens":["<pad>","<unk>",…]}`.
public struct Vocabulary: Sendable, Equatable, Codable {
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

    /// How texts are cut into tokens for this vocabulary.
    public let tokenization: Tokenization
    /// All tokens, index = id; the first four are `specialTokens`.
    public let tokens: [String]
    private let ids: [String: Int]

    /// Number of ids (specials included).
    public var count: Int { tokens.count }

    /// Builds a vocabulary from the token sequences of the training data.
    /// - Parameters:
    ///   - sequences: tokenised training texts.
    ///   - tokenization: recorded with the vocabulary (used by `encode(text:)` / `decode`).
    ///   - minCount: tokens seen fewer times are left out (they encode as `<unk>`).
    ///   - maxSize: if set, at most this many ids in total (specials included).
    public init(sequences: [[String]], tokenization: Tokenization, minCount: Int = 1, maxSize: Int? = nil) {
        var counts: [String: Int] = [:]
        for sequence in sequences {
            for token in sequence { counts[token, default: 0] += 1 }
        }
        for special in Vocabulary.specialTokens { counts[special] = nil }
        var ranked = counts.filter { $0.value >= max(1, minCount) }.map { ($0.key, $0.value) }
        ranked.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var list = Vocabulary.specialTokens
        let room = maxSize.map { max(0, $0 - list.count) } ?? ranked.count
        list.append(contentsOf: ranked.prefix(room).map(\.0))
        self.tokenization = tokenization
        self.tokens = list
        self.ids = Vocabulary.index(list)
    }

    /// Builds a vocabulary from training texts, tokenised with `tokenization`.
    public init(texts: [String], tokenization: Tokenization, minCount: Int = 1, maxSize: Int? = nil) {
        self.init(sequences: texts.map { tokenization.tokenize($0) }, tokenization: tokenization,
                  minCount: minCount, maxSize: maxSize)
    }

    /// Creates a vocabulary from a complete token list (specials first), checking it.
    /// `origin` names where the list came from, for error messages.
    public init(tokens: [String], tokenization: Tokenization, origin: String = "vocabulary") throws(VocabularyError) {
        guard tokens.count >= 4, Array(tokens.prefix(4)) == Vocabulary.specialTokens else {
            throw .wrongSpecialTokens(source: origin)
        }
        var seen = Set<String>(minimumCapacity: tokens.count)
        for token in tokens where !seen.insert(token).inserted {
            throw .duplicateToken(source: origin, token: token)
        }
        self.tokenization = tokenization
        self.tokens = tokens
        self.ids = Vocabulary.index(tokens)
    }

    private static func index(_ tokens: [String]) -> [String: Int] {
        var ids: [String: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { ids[t] = i }
        return ids
    }

    /// Id of a data token; `<unk>` for tokens not in the vocabulary or spelled like a special.
    public func id(of token: String) -> Int {
        guard let id = ids[token], id >= Vocabulary.specialTokens.count else { return Vocabulary.unknownID }
        return id
    }

    /// Ids of `tokens` (no `<s>` / `</s>` added); tokens mapped to `<unk>` are counted in
    /// `unknown` (token → occurrences) so a caller can report them once.
    public func encode(_ tokens: [String], unknown: inout [String: Int]) -> [Int] {
        tokens.map { token in
            let i = id(of: token)
            if i == Vocabulary.unknownID { unknown[token, default: 0] += 1 }
            return i
        }
    }

    /// Ids of `tokens`, unknown tokens as `<unk>`.
    public func encode(_ tokens: [String]) -> [Int] {
        tokens.map { id(of: $0) }
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
            if id == Vocabulary.endID { break }
            if id < Vocabulary.specialTokens.count || id >= tokens.count { continue }
            out.append(tokens[id])
        }
        return out
    }

    /// Text of `ids` (see `decodeTokens`), joined as `tokenization` joins tokens.
    public func decode(_ ids: [Int]) -> String {
        tokenization.join(decodeTokens(ids))
    }

    // MARK: JSON

    private enum CodingKeys: String, CodingKey { case tokenization, tokens }

    /// Decodes and checks the JSON form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let tokenization = try container.decode(Tokenization.self, forKey: .tokenization)
        let tokens = try container.decode([String].self, forKey: .tokens)
        try self.init(tokens: tokens, tokenization: tokenization)
    }

    /// Encodes the JSON form.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tokenization, forKey: .tokenization)
        try container.encode(tokens, forKey: .tokens)
    }

    /// The JSON form as a compact string.
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and an enum cannot fail.
        guard let data = try? encoder.encode(self), let s = String(data: data, encoding: .utf8) else { return "{}" }
        return s
    }

    /// Parses the JSON form; `origin` names where it came from (e.g. a checkpoint path).
    public init(json: String, origin: String = "vocabulary") throws(VocabularyError) {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        } catch {
            throw .malformedJSON(source: origin, reason: "invalid JSON")
        }
        guard let dict = object as? [String: Any] else { throw .malformedJSON(source: origin, reason: "top level is not an object") }
        guard let name = dict["tokenization"] as? String else { throw .malformedJSON(source: origin, reason: "missing string field \"tokenization\"") }
        guard let tokenization = Tokenization(rawValue: name) else {
            throw .malformedJSON(source: origin, reason: "unknown tokenization \"\(name)\" (expected char or word)")
        }
        guard let tokens = dict["tokens"] as? [String] else { throw .malformedJSON(source: origin, reason: "missing string array \"tokens\"") }
        try self.init(tokens: tokens, tokenization: tokenization, origin: origin)
    }
}
