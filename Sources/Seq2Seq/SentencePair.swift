/// One training example for a sequence-to-sequence task: a source text and its target text.
public struct SentencePair: Hashable, Codable, Sendable, CustomStringConvertible {
    /// The input text (what the encoder reads).
    public var source: String
    /// The expected output text (what the decoder should produce).
    public var target: String

    /// Creates a pair from its two texts.
    public init(source: String, target: String) {
        self.source = source
        self.target = target
    }

    /// `source<TAB>target`, the TSV form of the pair.
    public var description: String { "\(source)\t\(target)" }
}
