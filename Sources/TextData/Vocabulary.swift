import Foundation

/// A token ↔ id mapping for a language model, at character or word level.
///
/// - Character level: the distinct Unicode scalars of the corpus sorted by scalar value, so the
///   same text gives the same ids everywhere (and the same as Python's `sorted(set(text))`).
///   There is no unknown token: encoding text with a character the vocabulary lacks throws
///   `TextDataError.unknownCharacters`, naming them.
/// - Word level: `<unk>` (id 0), `<eol>` (id 1), then the words seen at least `minCount` times
///   by descending count, ties in code-point order. Rarer and unseen words encode as `<unk>`.
///   A literal `<unk>` or `<eol>` word in the text maps to that special token.
///
/// Tokens are compared by their exact scalars, never by Swift's canonical equivalence: U+00C5
/// and U+212B (ANGSTROM SIGN) are two tokens. `tokens` (in id order) is the form stored in
/// checkpoint metadata as a JSON array; `init(tokens:level:)` and `init(tokensJSON:level:)`
/// rebuild the vocabulary from it.
public struct Vocabulary: Sendable, Equatable, Codable {
    /// Character or word level.
    public let level: TokenLevel
    /// The tokens in id order: `tokens[id]`.
    public let tokens: [String]

    /// Char level: id of scalar `v` at `charTable[v]`, -1 where absent (length max scalar + 1).
    private let charTable: [Int32]
    /// Word level: id of each token.
    private let wordIDs: [ExactString: Int32]

    /// Number of tokens (the model's input and output size).
    public var count: Int { tokens.count }

    /// Id of `<unk>` at word level (0); nil at character level.
    public var unknownID: Int32? { level == .word ? 0 : nil }

    /// Id of `<eol>` at word level (1); at character level the id of `"\n"` if present.
    public var endOfLineID: Int32? { level == .word ? 1 : id(of: "\n") }

    // MARK: Building

    /// Rebuilds a vocabulary from its tokens in id order (as saved in a checkpoint).
    ///
    /// - Parameters:
    ///   - tokens: `tokens[id]`; character level: each exactly one Unicode scalar, all distinct;
    ///     word level: `<unk>`, `<eol>`, then distinct non-empty words without whitespace.
    ///   - level: the token level.
    ///   - source: what the tokens came from, for error messages (a checkpoint path).
    /// - Throws: `TextDataError.invalidVocabulary` naming the first problem.
    public init(tokens: [String], level: TokenLevel, source: String = "vocabulary") throws {
        guard !tokens.isEmpty else {
            throw TextDataError.invalidVocabulary(source: source, reason: "no tokens")
        }
        guard tokens.count <= Int(Int32.max) else {
            throw TextDataError.invalidVocabulary(source: source, reason: "more than \(Int32.max) tokens")
        }
        self.level = level
        self.tokens = tokens
        switch level {
        case .character:
            var maxScalar: UInt32 = 0
            for (index, token) in tokens.enumerated() {
                let scalars = token.unicodeScalars
                guard scalars.count == 1, let scalar = scalars.first else {
                    throw TextDataError.invalidVocabulary(
                        source: source, reason: "character token \(index) has \(scalars.count) Unicode scalars, not 1")
                }
                maxScalar = max(maxScalar, scalar.value)
            }
            var table = [Int32](repeating: -1, count: Int(maxScalar) + 1)
            for (index, token) in tokens.enumerated() {
                let value = Int(token.unicodeScalars.first?.value ?? 0)
                if table[value] >= 0 {
                    throw TextDataError.invalidVocabulary(
                        source: source,
                        reason: "character \(describeCharacter(token)) appears twice (ids \(table[value]) and \(index))")
                }
                table[value] = Int32(index)
            }
            charTable = table
            wordIDs = [:]
        case .word:
            guard tokens.count >= 2,
                  tokens[0].utf8.elementsEqual(Tokenizer.unknown.utf8),
                  tokens[1].utf8.elementsEqual(Tokenizer.endOfLine.utf8) else {
                throw TextDataError.invalidVocabulary(
                    source: source, reason: "a word vocabulary must start with \(Tokenizer.unknown), \(Tokenizer.endOfLine)")
            }
            var ids: [ExactString: Int32] = [:]
            ids.reserveCapacity(tokens.count)
            for (index, token) in tokens.enumerated() {
                if token.isEmpty {
                    throw TextDataError.invalidVocabulary(source: source, reason: "word token \(index) is empty")
                }
                if token.unicodeScalars.contains(where: { Tokenizer.isWhitespace($0.value) }) {
                    throw TextDataError.invalidVocabulary(
                        source: source, reason: "word token \(index) \"\(token)\" contains whitespace")
                }
                if let previous = ids.updateValue(Int32(index), forKey: ExactString(token)) {
                    throw TextDataError.invalidVocabulary(
                        source: source, reason: "word \"\(token)\" appears twice (ids \(previous) and \(index))")
                }
            }
            charTable = []
            wordIDs = ids
        }
    }

    /// Rebuilds a vocabulary from a JSON array of strings (the checkpoint metadata form).
    ///
    /// - Throws: `TextDataError.invalidVocabulary` when the text is not a JSON array of strings
    ///   or the tokens do not form a vocabulary.
    public init(tokensJSON: String, level: TokenLevel, source: String = "vocabulary") throws {
        let decoded: [String]
        do {
            decoded = try JSONDecoder().decode([String].self, from: Data(tokensJSON.utf8))
        } catch {
            throw TextDataError.invalidVocabulary(source: source, reason: "tokens are not a JSON array of strings")
        }
        try self.init(tokens: decoded, level: level, source: source)
    }

    /// The character vocabulary of a text: its distinct Unicode scalars sorted by value.
    public static func characters(from text: String) -> Vocabulary {
        // One bit per possible scalar value (0x110000 bits = 136 KiB).
        var seen = [UInt64](repeating: 0, count: 0x110000 / 64)
        var copy = text
        seen.withUnsafeMutableBufferPointer { bits in
            copy.withUTF8 { bytes in
                guard let base = bytes.baseAddress else { return }
                var i = 0
                while i < bytes.count {
                    let (value, length) = decodeScalar(base, i)
                    bits[Int(value >> 6)] |= 1 << UInt64(value & 63)
                    i += length
                }
            }
        }
        var tokens: [String] = []
        for (word, bits) in seen.enumerated() where bits != 0 {
            for bit in 0..<64 where bits & (1 << UInt64(bit)) != 0 {
                if let scalar = Unicode.Scalar(UInt32(word * 64 + bit)) { tokens.append(String(scalar)) }
            }
        }
        // Distinct single scalars by construction, so this cannot fail.
        return (try? Vocabulary(tokens: tokens, level: .character)) ?? Vocabulary(uncheckedCharacters: tokens)
    }

    /// The word vocabulary of a text: `<unk>`, `<eol>`, then every word seen at least
    /// `minCount` times by descending count (ties in code-point order), at most `maxWords` of
    /// them when given.
    public static func words(from text: String, minCount: Int = 1, maxWords: Int? = nil) -> Vocabulary {
        var counts: [ExactString: Int] = [:]
        var copy = text
        copy.withUTF8 { bytes in
            Tokenizer.scanWords(bytes) { word in
                guard let word else { return }
                counts[ExactString(String(decoding: word, as: UTF8.self)), default: 0] += 1
            }
        }
        counts[ExactString(Tokenizer.unknown)] = nil
        counts[ExactString(Tokenizer.endOfLine)] = nil
        var kept = counts.filter { $0.value >= max(minCount, 1) }.map { ($0.key.value, $0.value) }
        kept.sort { a, b in a.1 != b.1 ? a.1 > b.1 : codePointLess(a.0, b.0) }
        if let maxWords, kept.count > max(maxWords, 0) { kept.removeLast(kept.count - max(maxWords, 0)) }
        let tokens = [Tokenizer.unknown, Tokenizer.endOfLine] + kept.map { $0.0 }
        return (try? Vocabulary(tokens: tokens, level: .word)) ?? Vocabulary(uncheckedWords: tokens)
    }

    /// The vocabulary of a text at the given level (`minCount`, `maxWords`: word level only).
    public static func build(from text: String, level: TokenLevel, minCount: Int = 1, maxWords: Int? = nil) -> Vocabulary {
        switch level {
        case .character: return characters(from: text)
        case .word: return words(from: text, minCount: minCount, maxWords: maxWords)
        }
    }

    /// Fallback used only if validation of tokens built here ever failed; keeps the builders
    /// non-throwing without a crash path.
    private init(uncheckedCharacters tokens: [String]) {
        level = .character
        self.tokens = tokens
        var maxScalar: UInt32 = 0
        for t in tokens { maxScalar = max(maxScalar, t.unicodeScalars.first?.value ?? 0) }
        var table = [Int32](repeating: -1, count: Int(maxScalar) + 1)
        for (i, t) in tokens.enumerated() { table[Int(t.unicodeScalars.first?.value ?? 0)] = Int32(i) }
        charTable = table
        wordIDs = [:]
    }

    private init(uncheckedWords tokens: [String]) {
        level = .word
        self.tokens = tokens
        var ids: [ExactString: Int32] = [:]
        for (i, t) in tokens.enumerated() { ids[ExactString(t)] = Int32(i) }
        charTable = []
        wordIDs = ids
    }

    // MARK: Lookup

    /// The id of a token, or nil when the vocabulary lacks it (exact scalar comparison).
    public func id(of token: String) -> Int32? {
        switch level {
        case .character:
            let scalars = token.unicodeScalars
            guard scalars.count == 1, let value = scalars.first?.value, Int(value) < charTable.count else { return nil }
            let id = charTable[Int(value)]
            return id >= 0 ? id : nil
        case .word:
            return wordIDs[ExactString(token)]
        }
    }

    /// The token of an id, or nil when the id is outside `0..<count`.
    public func token(for id: Int) -> String? {
        id >= 0 && id < tokens.count ? tokens[id] : nil
    }

    // MARK: Encoding

    /// The ids of a text's tokens, `[tokenCount]`.
    ///
    /// Character level: one id per Unicode scalar; throws `TextDataError.unknownCharacters`
    /// (`"<source> has characters not in the vocabulary: …"`) when any is missing. Word level:
    /// one id per word and per `"\n"`; unknown words become `<unk>` (never throws).
    ///
    /// - Parameter source: names the text in an error message, e.g. `"prime text"` or a path.
    public func encode(_ text: String, source: String = "text") throws -> [Int32] {
        switch level {
        case .character:
            var ids: [Int32] = []
            var unknown: [UInt32] = []
            var unknownSet = Set<UInt32>()
            var copy = text
            copy.withUTF8 { bytes in
                guard let base = bytes.baseAddress else { return }
                // Scalar count ≤ byte count: reserve once, fill through a pointer.
                ids = [Int32](unsafeUninitializedCapacity: bytes.count) { out, initialized in
                    charTable.withUnsafeBufferPointer { table in
                        let tableCount = table.count
                        var i = 0, n = 0
                        while i < bytes.count {
                            let (value, length) = decodeScalar(base, i)
                            i += length
                            let id = Int(value) < tableCount ? table[Int(value)] : -1
                            if id < 0 {
                                if unknownSet.insert(value).inserted { unknown.append(value) }
                                continue
                            }
                            out[n] = id
                            n += 1
                        }
                        initialized = n
                    }
                }
            }
            if !unknown.isEmpty {
                let names = unknown.compactMap { Unicode.Scalar($0).map { String($0) } }
                throw TextDataError.unknownCharacters(source: source, characters: names)
            }
            return ids
        case .word:
            var ids: [Int32] = []
            var copy = text
            copy.withUTF8 { bytes in
                Tokenizer.scanWords(bytes) { word in
                    if let word {
                        ids.append(wordIDs[ExactString(String(decoding: word, as: UTF8.self))] ?? 0)
                    } else {
                        ids.append(1)
                    }
                }
            }
            return ids
        }
    }

    /// The characters of `text` this vocabulary lacks, once each in order of first appearance
    /// (always empty at word level, where unknown words become `<unk>`).
    public func unknownCharacters(in text: String) -> [String] {
        guard level == .character else { return [] }
        var seen: [UInt32] = []
        for scalar in text.unicodeScalars where id(of: String(scalar)) == nil && !seen.contains(scalar.value) {
            seen.append(scalar.value)
        }
        return seen.compactMap { Unicode.Scalar($0).map { String($0) } }
    }

    // MARK: Decoding

    /// The text of a sequence of ids, `[tokenCount]`: character tokens joined directly; word
    /// tokens joined with single spaces, `<eol>` written as `"\n"` with no space around it.
    ///
    /// - Throws: `TextDataError.idOutOfRange` for an id outside `0..<count`.
    public func decode<S: Sequence>(_ ids: S) throws -> String where S.Element: BinaryInteger {
        var decoder = TokenDecoder(vocabulary: self)
        var text = ""
        for id in ids { text += try decoder.append(id) }
        return text
    }

    // MARK: Serialisation

    /// The tokens in id order as a compact JSON array of strings (for checkpoint metadata).
    public func tokensJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(tokens) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    private enum CodingKeys: String, CodingKey { case level, tokens }

    /// Decodes `{"level": "char" | "word", "tokens": [...]}` and validates the tokens.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let level = try container.decode(TokenLevel.self, forKey: .level)
        let tokens = try container.decode([String].self, forKey: .tokens)
        try self.init(tokens: tokens, level: level)
    }

    /// Encodes `{"level": …, "tokens": [...]}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(level, forKey: .level)
        try container.encode(tokens, forKey: .tokens)
    }

    /// Same level and the same tokens, scalar for scalar, in the same order.
    public static func == (a: Vocabulary, b: Vocabulary) -> Bool {
        a.level == b.level && a.tokens.count == b.tokens.count
            && zip(a.tokens, b.tokens).allSatisfy { $0.utf8.elementsEqual($1.utf8) }
    }
}

/// Turns ids into text one token at a time, for printing samples as they are drawn; the pieces
/// concatenate to `Vocabulary.decode` of the same ids.
public struct TokenDecoder: Sendable {
    /// The vocabulary the ids belong to.
    public let vocabulary: Vocabulary
    private var atLineStart = true

    /// A decoder at the start of a line.
    public init(vocabulary: Vocabulary) {
        self.vocabulary = vocabulary
    }

    /// The text to append for the next id: the character itself; or at word level the word
    /// (preceded by a space unless it starts a line) or `"\n"` for `<eol>`.
    ///
    /// - Throws: `TextDataError.idOutOfRange` for an id outside `0..<count`.
    public mutating func append<I: BinaryInteger>(_ id: I) throws -> String {
        guard let index = Int(exactly: id), let token = vocabulary.token(for: index) else {
            throw TextDataError.idOutOfRange(id: Int(clamping: id), count: vocabulary.count)
        }
        switch vocabulary.level {
        case .character:
            return token
        case .word:
            if index == 1 {
                atLineStart = true
                return "\n"
            }
            defer { atLineStart = false }
            return atLineStart ? token : " " + token
        }
    }
}
