import Foundation
import Testing
@testable import Seq2Seq

@Test func tokenizationCharAndWord() {
    #expect(Tokenization.char.tokenize("ab c") == ["a", "b", " ", "c"])
    #expect(Tokenization.char.tokenize("e\u{301}") == ["e", "\u{301}"], "Unicode scalars, not characters")
    #expect(Tokenization.word.tokenize("  three\thundred \n twelve ") == ["three", "hundred", "twelve"])
    #expect(Tokenization.word.join(["a", "b"]) == "a b")
    #expect(Tokenization.char.join(["a", " ", "b"]) == "a b")
}

@Test func vocabularyOrdersByCountThenToken() {
    // Counts: b 3, a 2, c 2, d 1, e 1 → b, then a/c tie (a first), then d/e tie.
    let v = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word)
    #expect(v.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a", "c", "d", "e"])
    #expect(v.id(of: "b") == 4 && v.id(of: "e") == 8)
    let pruned = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word, minCount: 2)
    #expect(pruned.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a", "c"])
    let capped = Vocabulary(texts: ["b a c", "b a e", "c b d"], tokenization: .word, maxSize: 6)
    #expect(capped.tokens == ["<pad>", "<unk>", "<s>", "</s>", "b", "a"])
}

@Test func encodeReportsUnknownsAndDecodeStopsAtEnd() {
    let v = Vocabulary(texts: ["abc", "abd", "<s>"], tokenization: .char)
    var unknown: [String: Int] = [:]
    let ids = v.encode(text: "abzzy", unknown: &unknown)
    #expect(ids == [v.id(of: "a"), v.id(of: "b"), 1, 1, 1])
    #expect(unknown == ["z": 2, "y": 1])
    // Special spellings in data are not data tokens.
    #expect(v.encode(["<s>", "</s>"]) == [1, 1])
    // Decoding: specials dropped, stops at </s>, out-of-range ids dropped.
    let a = v.id(of: "a"), b = v.id(of: "b")
    #expect(v.decode([2, a, 0, 1, b, 99, -1, 3, a, a]) == "ab")
    #expect(v.decodeTokens([a, b, 3]) == ["a", "b"])
}

@Test func vocabularyJSONRoundTrip() throws {
    let v = Vocabulary(texts: ["hello wörld", "tab\"quote\\"], tokenization: .char, minCount: 1)
    let json = v.jsonString()
    let back = try Vocabulary(json: json, origin: "ckpt.safetensors")
    #expect(back == v)
    #expect(back.decode(back.encode(Tokenization.char.tokenize("hello"))) == "hello")
    // Codable path too.
    let decoded = try JSONDecoder().decode(Vocabulary.self, from: JSONEncoder().encode(v))
    #expect(decoded == v)
    // Bad inputs.
    #expect(throws: VocabularyError.malformedJSON(source: "m.json", reason: "invalid JSON")) { _ = try Vocabulary(json: "{", origin: "m.json") }
    #expect(throws: VocabularyError.wrongSpecialTokens(source: "m.json")) {
        _ = try Vocabulary(json: #"{"tokenization":"word","tokens":["<unk>","<pad>","<s>","</s>","a"]}"#, origin: "m.json")
    }
    #expect(throws: VocabularyError.duplicateToken(source: "m.json", token: "a")) {
        _ = try Vocabulary(json: #"{"tokenization":"word","tokens":["<pad>","<unk>","<s>","</s>","a","a"]}"#, origin: "m.json")
    }
    #expect(throws: VocabularyError.self) { _ = try Vocabulary(json: #"{"tokenization":"bpe","tokens":[]}"#) }
}
