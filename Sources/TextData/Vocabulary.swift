import Foundation
import RecurrentCore

/// The language model's side of the shared `Vocabulary` (RecurrentCore): building it from text,
/// checking saved token lists, encoding text and decoding ids, at character or word level.
///
/// - Character level: the distinct Unicode scalars of the corpus sorted by scalar value, so the
///   same text gives the same ids everywhere (and the same as Python's `sorted(set(text))`).
///   There is no unknown token: encoding text with a character the vocabulary lacks throws
///   `TextDataError.unknownCharacters`, naming them.
/// - Word level: `<unk>` (id 0), `<eol>` (id 1), then the words seen at least `minCount` times
///   by descending count, ties in code-point order. Rarer and unseen words encode as `<unk>`.
///   A literal `<unk>` or `<eol>` word in the text maps to that special token.
///
/// Tokens are compared by their exact scalars (see `Vocabulary`). `tokens` (in id order) is the
/// form stored in checkpoint metadata as a JSON array; `init(tokens:level:source:)` and
/// `init(tokensJSON:level:source:)` rebuild the vocabulary from it.
extension Vocabulary {
    /// The special tokens a word vocabulary starts with: `<unk>`, `<eol>`.
    static let wordSpecials = [Tokenizer.unknown, Tokenizer.endOfLine]

    /// Id of `<unk>` at word level (0); nil at character level.
    public var unknownID: Int32? { level == .word ? 0 : nil }

    /// Id of `<eol>` at word level (1); at character level the id of `"\n"` if present.
    public var endOfLineID: Int32? { level == .word ? 1 : id(of: "\n") }

    // MARK: Building

    /// Rebuilds a language-model vocabulary from its tokens in id order (as saved in a checkpoint).
    ///
    /// - Parameters:
    ///   - tokens: `tokens[id]`; character level: each exactly one Unicode scalar, all distinct;
    ///     word level: `<unk>`, `<eol>`, then distinct non-empty words without whitespace.
    ///   - level: the token level.
    ///   - source: what the tokens came from, for error messages (a checkpoint path).
    /// - Throws: `TextDataError.invalidVocabulary` naming the first problem.
    public init(tokens: [String], level: TokenLevel, source: String = "vocabulary") throws {
        func fail(_ reason: String) -> TextDataError { .invalidVocabulary(source: source, reason: reason) }
        guard !tokens.isEmpty else { throw fail("no tokens") }
        switch level {
        case .character:
            var firstID: [UInt32: Int] = [:]
            for (index, token) in tokens.enumerated() {
                let scalars = token.unicodeScalars
                guard scalars.count == 1, let scalar = scalars.first else {
                    throw fail("character token \(index) has \(scalars.count) Unicode scalars, not 1")
                }
                if let previous = firstID.updateValue(index, forKey: scalar.value) {
                    throw fail("character \(describeCharacter(token)) appears twice (ids \(previous) and \(index))")
                }
            }
        case .word:
            guard tokens.count >= 2, tokens[0].utf8.elementsEqual(Tokenizer.unknown.utf8),
                  tokens[1].utf8.elementsEqual(Tokenizer.endOfLine.utf8) else {
                throw fail("a word vocabulary must start with \(Tokenizer.unknown), \(Tokenizer.endOfLine)")
            }
            var firstID: [ExactString: Int] = [:]
            for (index, token) in tokens.enumerated() {
                if token.isEmpty { throw fail("word token \(index) is empty") }
                if token.unicodeScalars.contains(where: { Tokenizer.isWhitespace($0.value) }) {
                    throw fail("word token \(index) \"\(token)\" contains whitespace")
                }
                if let previous = firstID.updateValue(index, forKey: ExactString(token)) {
                    throw fail("word \"\(token)\" appears twice (ids \(previous) and \(index))")
                }
            }
        }
        do {
            try self.init(tokens: tokens, level: level, specials: level == .word ? Self.wordSpecials : [], source: source)
        } catch {
            throw fail("\(error)")
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
                    let (value, length) = Vocabulary.decodeScalar(base, i)
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
        return built(tokens, level: .character)
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
        let ranked = Vocabulary.ranked(counts, minCount: minCount, limit: maxWords, excluding: wordSpecials)
        return built(wordSpecials + ranked, level: .word)
    }

    /// A vocabulary of tokens made here (distinct, non-empty, specials first by construction).
    private static func built(_ tokens: [String], level: TokenLevel) -> Vocabulary {
        do {
            return try Vocabulary(tokens: tokens, level: level, specials: level == .word ? wordSpecials : [])
        } catch {
            preconditionFailure("a vocabulary built from text is always valid: \(error)")
        }
    }

    /// The vocabulary of a text at the given level (`minCount`, `maxWords`: word level only).
    public static func build(from text: String, level: TokenLevel, minCount: Int = 1, maxWords: Int? = nil) -> Vocabulary {
        switch level {
        case .character: return characters(from: text)
        case .word: return words(from: text, minCount: minCount, maxWords: maxWords)
        }
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
            var missing: [Unicode.Scalar] = []
            let ids = scalarIDs(of: text, missing: &missing)
            if !missing.isEmpty { throw TextDataError.unknownCharacters(source: source, characters: missing.map { String($0) }) }
            return ids
        case .word:
            var ids: [Int32] = []
            var copy = text
            copy.withUTF8 { bytes in
                Tokenizer.scanWords(bytes) { word in
                    if let word {
                        ids.append(id(of: String(decoding: word, as: UTF8.self)) ?? 0)
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
        var missing: [Unicode.Scalar] = []
        _ = scalarIDs(of: text, missing: &missing)
        return missing.map { String($0) }
    }

    /// The words of `text` this vocabulary lacks (read as `<unk>` by `encode`), once each in
    /// order of first appearance; always empty at character level.
    public func unknownWords(in text: String) -> [String] {
        guard level == .word else { return [] }
        var seen = Set<String>(), out: [String] = []
        var copy = text
        copy.withUTF8 { bytes in
            Tokenizer.scanWords(bytes) { word in
                guard let word else { return }
                let w = String(decoding: word, as: UTF8.self)
                if id(of: w) == nil && seen.insert(w).inserted { out.append(w) }
            }
        }
        return out
    }

    /// `encode` that leaves out what the vocabulary lacks instead of refusing the text: at
    /// character level the ids of the known characters, `skipped` counting the characters left
    /// out and `characters` naming them (once each); at word level `encode` itself (unknown
    /// words are `<unk>`, nothing is skipped).
    public func encodeSkippingUnknown(_ text: String) -> (ids: [Int32], skipped: Int, characters: [String]) {
        switch level {
        case .character:
            var missing: [Unicode.Scalar] = []
            let ids = scalarIDs(of: text, missing: &missing)
            return (ids, text.unicodeScalars.count - ids.count, missing.map { String($0) })
        case .word:
            return ((try? encode(text)) ?? [], 0, [])
        }
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
