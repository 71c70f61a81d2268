import Foundation
import RecurrentCore
import Testing

/// The shared token table: exact-scalar identity, the special-token prefix, ranking and the
/// character-level scalar path.
@Suite struct SharedVocabularyTests {
    @Test func tokensAreComparedScalarForScalar() throws {
        let angstrom = "\u{212B}", ring = "\u{C5}", decomposed = "A\u{30A}"
        #expect(angstrom == ring && ring == decomposed)   // what String equality would merge
        let v = try Vocabulary(tokens: ["<unk>", ring, angstrom, decomposed], level: .word, specials: ["<unk>"])
        #expect(v.id(of: ring) == 1 && v.id(of: angstrom) == 2 && v.id(of: decomposed) == 3)
        #expect(v.id(of: "A") == nil)
        #expect(v.ids(of: [decomposed, "x", ring], unknown: 0) == [3, 0, 1])
        #expect(v.tokens(of: [2, 9, -1, 1]) == [angstrom, ring])
        // Equality is scalar for scalar too.
        let swapped = try Vocabulary(tokens: ["<unk>", angstrom, ring, decomposed], level: .word, specials: ["<unk>"])
        #expect(swapped != v)
    }

    @Test func constructionChecksSpecialsDuplicatesAndEmptyTokens() {
        #expect(throws: VocabularyError.wrongSpecialTokens(source: "f", expected: ["<pad>", "<unk>"])) {
            _ = try Vocabulary(tokens: ["<unk>", "<pad>", "a"], level: .word, specials: ["<pad>", "<unk>"], source: "f")
        }
        #expect(throws: VocabularyError.duplicateToken(source: "f", token: "a")) {
            _ = try Vocabulary(tokens: ["a", "b", "a"], level: .word, specials: [], source: "f")
        }
        #expect(throws: VocabularyError.invalid(source: "f", reason: "token 1 is empty")) {
            _ = try Vocabulary(tokens: ["a", ""], level: .word, specials: [], source: "f")
        }
        #expect(throws: VocabularyError.malformedJSON(source: "f", reason: "tokens are not a JSON array of strings")) {
            _ = try Vocabulary(tokensJSON: "{}", level: .character, specials: [], source: "f")
        }
    }

    @Test func rankingByCountThenCodePoints() {
        // b ×3; a, c, "é" (two spellings, counted apart) ×2 each; specials never ranked.
        let pre = "\u{E9}", de = "e\u{301}"
        let ranked = Vocabulary.rankedTokens([["b", "a", "c", pre, "<unk>"], ["b", "a", de, pre], ["c", "b", de, "<unk>"]],
                                             excluding: ["<unk>"])
        #expect(ranked == ["b", "a", "c", de, pre])   // "e\u{301}" < "\u{E9}" by code points
        #expect(Vocabulary.rankedTokens([["x", "y", "y"]], minCount: 2) == ["y"])
        #expect(Vocabulary.rankedTokens([["x", "y", "y", "z"]], limit: 2) == ["y", "x"])
    }

    @Test func scalarIDsReadUTF8AndListMissingScalars() throws {
        let v = try Vocabulary(tokens: ["<s>", "a", "\u{E9}", "\u{1F44D}"], level: .character, specials: ["<s>"])
        var missing: [Unicode.Scalar] = []
        let ids = v.scalarIDs(of: "a\u{E9}e\u{301}\u{1F44D}a\u{301}", missing: &missing)
        #expect(ids == [1, 2, 3, 1])
        #expect(missing == ["e", "\u{301}"])
        #expect(v.id(of: "<s>") == 0 && v.id(of: "\u{1F44D}") == 3)
    }
}
