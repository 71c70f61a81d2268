import RecurrentCore

/// How translation texts are cut into tokens and joined back.
extension TokenLevel {
    /// The tokens of `text`: one per Unicode scalar (spaces too) at character level; at word
    /// level the whitespace-separated words (runs of whitespace separate, leading and trailing
    /// whitespace ignored).
    public func tokenize(_ text: String) -> [String] {
        switch self {
        case .character:
            return text.unicodeScalars.map { String($0) }
        case .word:
            return text.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }).map { String(String.UnicodeScalarView($0)) }
        }
    }

    /// Text from tokens: concatenated at character level, joined with single spaces at word level.
    public func join(_ tokens: [String]) -> String {
        switch self {
        case .character: return tokens.joined()
        case .word: return tokens.joined(separator: " ")
        }
    }
}
