import Foundation

/// How a text is cut into tokens. The tokenizers themselves belong to the task libraries.
public enum TokenLevel: String, Codable, Sendable, CaseIterable {
    /// One token per Unicode scalar value (what Python's `list(str)` yields), not per Swift
    /// `Character`: `"e\u{301}"` is two tokens, a flag emoji two, a family emoji five.
    case character = "char"
    /// Whitespace-separated words.
    case word = "word"
}

/// A string compared and hashed by its exact UTF-8 bytes. Swift's `String ==` treats canonically
/// equivalent texts as equal (`"é"` precomposed == `"e\u{301}"`, U+00C5 == U+212B); token
/// identity must not, so that the same ids come out as in Python.
public struct ExactString: Hashable, Sendable {
    /// The string.
    public let value: String

    /// Wraps a string.
    public init(_ value: String) { self.value = value }

    public static func == (a: ExactString, b: ExactString) -> Bool {
        a.value.utf8.elementsEqual(b.value.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        var copy = value
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Code-point order of two strings (the same as the byte order of their UTF-8, and as
    /// Python's `str` comparison).
    @inline(__always)
    public static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

/// A vocabulary that cannot be built from the tokens given.
public enum VocabularyError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The saved form is not readable (not JSON, a field missing, an unknown level).
    case malformedJSON(source: String, reason: String)
    /// The tokens do not start with the special tokens the task needs.
    case wrongSpecialTokens(source: String, expected: [String])
    /// A token appears twice (compared scalar for scalar).
    case duplicateToken(source: String, token: String)
    /// Any other problem: an empty token, too many tokens.
    case invalid(source: String, reason: String)

    /// One line naming where the tokens came from and what is wrong.
    public var description: String {
        switch self {
        case let .malformedJSON(source, reason): return "\(source): not a vocabulary JSON object: \(reason)"
        case let .wrongSpecialTokens(source, expected):
            return "\(source): vocabulary must start with the tokens \(expected.joined(separator: ", "))"
        case let .duplicateToken(source, token): return "\(source): vocabulary lists the token \"\(token)\" twice"
        case let .invalid(source, reason): return "\(source): invalid vocabulary: \(reason)"
        }
    }
}

/// A token ↔ id table shared by every task that reads text: `tokens[id]`, ids `0..<count`.
///
/// Tokens are compared by their exact Unicode scalars, never by Swift's canonical equivalence:
/// U+00C5 and U+212B (ANGSTROM SIGN) are two tokens, `"é"` and `"e\u{301}"` too. Character
/// level lookups of single-scalar tokens go through a table indexed by scalar value.
///
/// What a task adds lives in the task library: how text is cut into tokens, which special
/// tokens come first (`specials` of `init(tokens:level:specials:source:)`), what an unknown
/// token becomes, and how ids are joined back into text.
///
/// It has no `Codable` form of its own: each task stores its vocabulary in its own JSON form
/// (with its special tokens checked), e.g. TextData's `tokensJSON` and Seq2Seq's `jsonString`.
public struct Vocabulary: Sendable, Equatable {
    /// Character or word level.
    public let level: TokenLevel
    /// The tokens in id order: `tokens[id]`.
    public let tokens: [String]
    /// Character level: id of single-scalar token `v` at `scalarTable[v]`, -1 where absent
    /// (length: the largest such scalar + 1); empty at word level.
    private let scalarTable: [Int32]
    /// Id of every token.
    private let ids: [ExactString: Int32]

    /// Number of tokens (a model's input and output size).
    public var count: Int { tokens.count }

    /// A vocabulary of `tokens` in id order.
    /// - Parameters:
    ///   - tokens: `tokens[id]`; non-empty strings, distinct scalar for scalar (an empty list is
    ///     an empty table; tasks that need tokens check for them).
    ///   - level: the token level.
    ///   - specials: tokens that must come first, in this order (e.g. `<pad>`, `<unk>`).
    ///   - source: what the tokens came from, for error messages (a checkpoint path).
    /// - Throws: `VocabularyError` naming `source` and the first problem.
    public init(tokens: [String], level: TokenLevel, specials: [String], source: String = "vocabulary") throws(VocabularyError) {
        guard tokens.count <= Int(Int32.max) else { throw .invalid(source: source, reason: "more than \(Int32.max) tokens") }
        guard tokens.count >= specials.count,
              zip(tokens, specials).allSatisfy({ $0.utf8.elementsEqual($1.utf8) }) else {
            throw .wrongSpecialTokens(source: source, expected: specials)
        }
        var ids: [ExactString: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        var maxScalar: UInt32 = 0
        for (index, token) in tokens.enumerated() {
            if token.isEmpty { throw .invalid(source: source, reason: "token \(index) is empty") }
            if ids.updateValue(Int32(index), forKey: ExactString(token)) != nil { throw .duplicateToken(source: source, token: token) }
            if level == .character, let s = Self.singleScalar(token) { maxScalar = max(maxScalar, s) }
        }
        var table: [Int32] = []
        if level == .character {
            table = [Int32](repeating: -1, count: Int(maxScalar) + 1)
            for (index, token) in tokens.enumerated() {
                if let s = Self.singleScalar(token) { table[Int(s)] = Int32(index) }
            }
        }
        self.level = level
        self.tokens = tokens
        self.scalarTable = table
        self.ids = ids
    }

    /// The value of a token made of exactly one Unicode scalar; nil otherwise.
    @inline(__always)
    static func singleScalar(_ token: String) -> UInt32? {
        var it = token.unicodeScalars.makeIterator()
        guard let first = it.next(), it.next() == nil else { return nil }
        return first.value
    }

    /// Rebuilds a vocabulary from a JSON array of strings (the checkpoint metadata form).
    /// - Throws: `VocabularyError.malformedJSON` when the text is not a JSON array of strings,
    ///   else as `init(tokens:level:specials:source:)`.
    public init(tokensJSON: String, level: TokenLevel, specials: [String], source: String = "vocabulary") throws(VocabularyError) {
        let decoded: [String]
        do {
            decoded = try JSONDecoder().decode([String].self, from: Data(tokensJSON.utf8))
        } catch {
            throw .malformedJSON(source: source, reason: "tokens are not a JSON array of strings")
        }
        try self.init(tokens: decoded, level: level, specials: specials, source: source)
    }

    // MARK: Building

    /// Tokens ranked for a vocabulary: those seen at least `minCount` times by descending count,
    /// ties in code-point order; at most `limit` of them when given. Counting compares tokens
    /// scalar for scalar.
    /// - Parameters:
    ///   - sequences: the tokens of the training data, `[sequence][token]`.
    ///   - excluding: tokens never ranked (the special tokens).
    public static func rankedTokens<S: Sequence>(_ sequences: S, minCount: Int = 1, limit: Int? = nil,
                                                 excluding: [String] = []) -> [String] where S.Element: Sequence<String> {
        var counts: [ExactString: Int] = [:]
        for sequence in sequences { for token in sequence { counts[ExactString(token), default: 0] += 1 } }
        return ranked(counts, minCount: minCount, limit: limit, excluding: excluding)
    }

    /// `rankedTokens` from counts already made.
    public static func ranked(_ counts: [ExactString: Int], minCount: Int = 1, limit: Int? = nil,
                              excluding: [String] = []) -> [String] {
        var counts = counts
        for token in excluding { counts[ExactString(token)] = nil }
        var kept = counts.filter { $0.value >= max(minCount, 1) }.map { ($0.key.value, $0.value) }
        kept.sort { a, b in a.1 != b.1 ? a.1 > b.1 : ExactString.codePointLess(a.0, b.0) }
        if let limit, kept.count > max(limit, 0) { kept.removeLast(kept.count - max(limit, 0)) }
        return kept.map(\.0)
    }

    // MARK: Lookup

    /// The id of a token, or nil when the vocabulary lacks it (exact scalar comparison).
    @inline(__always)
    public func id(of token: String) -> Int32? {
        if level == .character, let s = Self.singleScalar(token) {
            guard Int(s) < scalarTable.count else { return nil }
            let id = scalarTable[Int(s)]
            return id >= 0 ? id : nil
        }
        return ids[ExactString(token)]
    }

    /// The token of an id, or nil when the id is outside `0..<count`.
    public func token(for id: Int) -> String? {
        id >= 0 && id < tokens.count ? tokens[id] : nil
    }

    /// The ids of `tokens` (`[n]`), `unknown` for each token the vocabulary lacks.
    public func ids(of tokens: [String], unknown: Int32) -> [Int32] {
        tokens.map { id(of: $0) ?? unknown }
    }

    /// The tokens of `ids` (`[n]`); ids outside `0..<count` are skipped.
    public func tokens<S: Sequence>(of ids: S) -> [String] where S.Element: BinaryInteger {
        ids.compactMap { Int(exactly: $0).flatMap { token(for: $0) } }
    }

    /// Character level: the id of every Unicode scalar of `text` (`[scalars]`), read straight
    /// from its UTF-8; scalars the vocabulary lacks are left out and listed in `missing` once
    /// each, in order of first appearance. At word level every scalar is missing.
    public func scalarIDs(of text: String, missing: inout [Unicode.Scalar]) -> [Int32] {
        var ids: [Int32] = []
        var missingValues: [UInt32] = []
        var missingSet = Set<UInt32>()
        var copy = text
        copy.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            // Scalar count ≤ byte count: reserve once, fill through a pointer.
            ids = [Int32](unsafeUninitializedCapacity: bytes.count) { out, initialized in
                scalarTable.withUnsafeBufferPointer { table in
                    var i = 0, n = 0
                    while i < bytes.count {
                        let (value, length) = Self.decodeScalar(base, i)
                        i += length
                        let id = Int(value) < table.count ? table[Int(value)] : -1
                        if id < 0 {
                            if missingSet.insert(value).inserted { missingValues.append(value) }
                            continue
                        }
                        out[n] = id
                        n += 1
                    }
                    initialized = n
                }
            }
        }
        missing = missingValues.compactMap(Unicode.Scalar.init)
        return ids
    }

    /// Decodes the scalar starting at `p[i]` of well-formed UTF-8 (as every Swift `String`
    /// holds); returns its value and byte length.
    @inline(__always)
    public static func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
        }
        return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
                | UInt32(p[i + 3] & 0x3F), 4)
    }

    // MARK: Serialisation

    /// The tokens in id order as a compact JSON array of strings (for checkpoint metadata).
    public func tokensJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(tokens) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Same level and the same tokens, scalar for scalar, in the same order.
    public static func == (a: Vocabulary, b: Vocabulary) -> Bool {
        a.level == b.level && a.tokens.count == b.tokens.count
            && zip(a.tokens, b.tokens).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }
}
