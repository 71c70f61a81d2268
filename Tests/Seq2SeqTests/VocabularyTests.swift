import Foundation
import RecurrentCore
import Testing
@testable import Seq2Seq

@Test func tokenizationCharAndWord() {
    #expect(TokenLevel.character.tokenize("ab c") == ["a", "b", " ", "c"])
    #expect(TokenLevel.character.tokenize("e\u{301}") == ["e", "\u{301}"], "Unicode scalars, not characters")
    #expect(TokenLevel.word.tokenize("  three\thundred \n twelve ") == ["three", "hundred", "twelve"])
    #expect(TokenLevel.word.join(["a", "b"]) == "a b")
    #expect(TokenLevel.character.join(["a", " ", "b"]) == "a b")
}

@Test func vocabularyOrdersByCountThenToken() {
    // Counts: b 3, a 2, c 2, d 1, e 1 → b, then a/c tie (a first), then d/e tie.
    let v = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word)
    #expect(v.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a", "c", "d", "e"])
    #expect(v.dataID(of: "b") == 4 && v.dataID(of: "e") == 8)
    let pruned = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word, minCount: 2)
    #expect(pruned.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a", "c"])
    let capped = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word, maxSize: 6)
    #expect(capped.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a"])
}

@Test func encodeReportsUnknownsAndDecodeStopsAtEnd() {
    let v = Vocabulary(texts: ["abc", "abd", "<s>"], tokenization: .character)
    var unknown: [String: Int] = [:]
    let ids = v.encode(text: "abzzy", unknown: &unknown)
    #expect(ids == [v.dataID(of: "a"), v.dataID(of: "b"), 1, 1, 1])
    #expect(unknown == ["z": 2, "y": 1])
    // Special spellings in data are not data tokens.
    #expect(v.encode(["<s>", "</s>"]) == [1, 1])
    // Decoding: specials dropped, stops at </s>, out-of-range ids dropped.
    let a = v.dataID(of: "a"), b = v.dataID(of: "b")
    #expect(v.decode([2, a, 0, 1, b, 99, -1, 3, a, a]) == "ab")
    #expect(v.decodeTokens([a, b, 3]) == ["a", "b"])
}

@Test func vocabularyJSONRoundTrip() throws {
    let v = Vocabulary(texts: ["hello wörld", "tab\"quote\\"], tokenization: .character, minCount: 1)
    let json = v.jsonString()
    let back = try Vocabulary(json: json, origin: "ckpt.safetensors")
    #expect(back == v)
    #expect(back.decode(back.encode(TokenLevel.character.tokenize("hello"))) == "hello")
    // Bad inputs.
    #expect(throws: VocabularyError.malformedJSON(source: "m.json", reason: "invalid JSON")) { _ = try Vocabulary(json: "{", origin: "m.json") }
    #expect(throws: VocabularyError.wrongSpecialTokens(source: "m.json", expected: ["<pad>", "<unk>", "<s>", "</s>"])) {
        _ = try Vocabulary(json: #"{"tokenization":"word","tokens":["<unk>","<pad>","<s>","</s>","a"]}"#, origin: "m.json")
    }
    #expect(throws: VocabularyError.duplicateToken(source: "m.json", token: "a")) {
        _ = try Vocabulary(json: #"{"tokenization":"word","tokens":["<pad>","<unk>","<s>","</s>","a","a"]}"#, origin: "m.json")
    }
    #expect(throws: VocabularyError.self) { _ = try Vocabulary(json: #"{"tokenization":"bpe","tokens":[]}"#) }
}

/// Tokens are compared scalar for scalar, as the language model's vocabulary does: canonically
/// equivalent spellings (precomposed and decomposed "é", Å and the Angstrom sign) are different
/// tokens with their own ids and counts, and a JSON round trip keeps them apart.
@Test func canonicallyEquivalentTokensStayDistinct() throws {
    let precomposed = "caf\u{E9}", decomposed = "cafe\u{301}"
    #expect(precomposed == decomposed)   // Swift's String equality would merge them
    let words = Vocabulary(texts: [precomposed, decomposed, decomposed, "\u{C5} \u{212B} \u{212B}"], tokenization: .word)
    #expect(words.count == 4 + 4)
    #expect(words.tokens[4] == decomposed && words.tokens[4].unicodeScalars.count == 5)   // seen twice: first
    #expect(words.tokens[5].unicodeScalars.map(\.value) == [0x212B])                      // seen twice
    let idPre = words.dataID(of: precomposed), idDe = words.dataID(of: decomposed)
    #expect(idPre != idDe && idPre >= 4 && idDe >= 4)
    #expect(words.dataID(of: "\u{C5}") != words.dataID(of: "\u{212B}"))
    #expect(words.decode([idPre]).unicodeScalars.count == 4 && words.decode([idDe]).unicodeScalars.count == 5)
    let back = try Vocabulary(json: words.jsonString(), origin: "m.json")
    #expect(back == words && back.dataID(of: precomposed) == idPre)
    // Characters: U+00C5 and U+212B are two tokens; a list naming one scalar twice is refused.
    let chars = Vocabulary(texts: ["\u{C5}\u{212B}e\u{301}"], tokenization: .character)
    #expect(chars.count == 4 + 4)
    #expect(throws: VocabularyError.duplicateToken(source: "m.json", token: "\u{C5}")) {
        _ = try Vocabulary(tokens: Vocabulary.specialTokens + ["\u{C5}", "\u{212B}", "\u{C5}"], tokenization: .character, origin: "m.json")
    }
    // Four specials, then one scalar each, by code point: e, U+00C5, U+0301, U+212B.
    #expect(chars.dataID(of: "\u{212B}") == 7 && chars.id(of: "\u{212B}") == 7)
    #expect(chars.dataID(of: "e") == 4 && chars.dataID(of: "\u{301}") == 6)
}
