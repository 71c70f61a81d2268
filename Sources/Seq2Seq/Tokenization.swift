/// How a text is cut into tokens.
public enum Tokenization: String, CaseIterable, Sendable, Codable {
    /// One token per Unicode scalar (spaces are tokens too).
    case char
    /// Whitespace-separated words (runs of whitespace separate, leading/trailing ignored).
    case word

    /// The tokens of `text`.
    public func tokenize(_ text: String) -> [String] {
        switch self {
        case .char:
            return text.unicodeScalars.map { String($0) }
        case .word:
            return text.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }).map { String(String.UnicodeScalarView($0)) }
        }
    }

    /// Text from tokens: concatenated for `char`, joined with single spaces for `word`.
    public func join(_ tokens: [String]) -> String {
        switch self {
        case .char: return tokens.joined()
        case .word: return tokens.joined(separator: " ")
        }
    }
}
