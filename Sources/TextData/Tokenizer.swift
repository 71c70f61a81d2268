import RecurrentCore

/// Splits text into tokens: Unicode scalars or whitespace-separated words.
///
/// Word splitting uses the whitespace set of Python's `str.split()` (the Unicode `White_Space`
/// characters plus U+001C…U+001F); every `"\n"` also yields `Tokenizer.endOfLine`. Other line
/// breaks (`"\r"`, U+2028, …) only separate words.
public enum Tokenizer {
    /// Token for a line end at word level.
    public static let endOfLine = "<eol>"
    /// Token that replaces words missing from a word vocabulary.
    public static let unknown = "<unk>"

    /// The text's Unicode scalars, each as a one-scalar string, in order. Count: the number of
    /// scalars (`text.unicodeScalars.count`).
    public static func characters(_ text: String) -> [String] {
        text.unicodeScalars.map { String($0) }
    }

    /// Whitespace-separated words with `"<eol>"` for each `"\n"`: `"a b\n\nc"` →
    /// `["a", "b", "<eol>", "<eol>", "c"]`.
    public static func words(_ text: String) -> [String] {
        var result: [String] = []
        var copy = text
        copy.withUTF8 { bytes in
            scanWords(bytes) { word in
                if let word {
                    result.append(String(decoding: word, as: UTF8.self))
                } else {
                    result.append(endOfLine)
                }
            }
        }
        return result
    }

    /// Tokens of `text` at the given level.
    public static func tokens(_ text: String, level: TokenLevel) -> [String] {
        switch level {
        case .character: return characters(text)
        case .word: return words(text)
        }
    }

    /// Whether a scalar separates words (Python `str.isspace()` semantics).
    public static func isWhitespace(_ value: UInt32) -> Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Calls `body` for each word of valid UTF-8 `bytes` (its bytes) and with nil for each
    /// `"\n"`, in text order.
    static func scanWords(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>?) -> Void) {
        guard let base = bytes.baseAddress else { return }
        let n = bytes.count
        var i = 0
        var wordStart = -1
        while i < n {
            let start = i
            let (value, length) = Vocabulary.decodeScalar(base, i)
            i += length
            if isWhitespace(value) {
                if wordStart >= 0 {
                    body(UnsafeBufferPointer(start: base + wordStart, count: start - wordStart))
                    wordStart = -1
                }
                if value == 0x0A { body(nil) }
            } else if wordStart < 0 {
                wordStart = start
            }
        }
        if wordStart >= 0 { body(UnsafeBufferPointer(start: base + wordStart, count: n - wordStart)) }
    }
}
