/// The unit a language model predicts.
public enum TokenLevel: String, Codable, Sendable, CaseIterable {
    /// One token per Unicode scalar value (what Python's `list(str)` yields), not per Swift
    /// `Character`: `"e\u{301}"` is two tokens, a flag emoji two, a family emoji five.
    case character = "char"
    /// Whitespace-separated words, plus an end-of-line token `<eol>` for each `"\n"`.
    case word = "word"
}

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
            let (value, length) = decodeScalar(base, i)
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

/// Decodes the scalar starting at `p[i]` of well-formed UTF-8 (as every Swift `String` holds);
/// returns its value and byte length.
@inline(__always)
func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int) -> (UInt32, Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
            | UInt32(p[i + 3] & 0x3F), 4)
}

/// A string compared and hashed by its exact UTF-8 bytes. Swift's `String ==` treats canonically
/// equivalent texts as equal (`"é"` precomposed == `"e\u{301}"`); token identity must not, so
/// that the same ids come out as in Python.
struct ExactString: Hashable, Sendable {
    let value: String

    init(_ value: String) { self.value = value }

    static func == (a: ExactString, b: ExactString) -> Bool {
        a.value.utf8.elementsEqual(b.value.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var copy = value
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// Code-point order of two strings (the same as byte order of their UTF-8, and as Python's
/// `str` comparison).
@inline(__always)
func codePointLess(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}
