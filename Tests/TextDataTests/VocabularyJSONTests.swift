import Foundation
import RecurrentCore
import Testing
@testable import TextData

@Suite struct VocabularyJSONTests {
    @Test func characterVocabularyRoundTripsThroughJSON() throws {
        let text = "a\n\"\\/\u{0}\u{7F} \u{C5}\u{212B}e\u{301}\u{1F44D}\u{2028}"
        let vocab = Vocabulary.characters(from: text)
        let json = vocab.tokensJSON()
        #expect(!json.contains("\n"))     // one line, fits a metadata value
        let rebuilt = try Vocabulary(tokensJSON: json, level: .character)
        #expect(rebuilt == vocab)
        #expect(rebuilt.count == text.unicodeScalars.count)
        #expect(try rebuilt.encode(text) == vocab.encode(text))
        // Scalar for scalar (not just canonically equal).
        for (a, b) in zip(rebuilt.tokens, vocab.tokens) {
            #expect(a.unicodeScalars.map(\.value) == b.unicodeScalars.map(\.value))
        }
    }

    @Test func readsJSONWrittenByPython() throws {
        // Output of Python's json.dumps(["\n", " ", "\u00c5", "\u212b", "\U0001F44D", "\\", "\"", "/"]).
        let json = #"["\n", " ", "\u00c5", "\u212b", "\ud83d\udc4d", "\\", "\"", "/"]"#
        let vocab = try Vocabulary(tokensJSON: json, level: .character, source: "model.safetensors")
        #expect(vocab.tokens.map { $0.unicodeScalars.first?.value ?? 0 } == [0x0A, 0x20, 0xC5, 0x212B, 0x1F44D, 0x5C, 0x22, 0x2F])
        #expect(vocab.id(of: "\u{212B}") == 3)
        #expect(vocab.id(of: "\u{C5}") == 2)
    }

    @Test func wordVocabularyRoundTripsThroughItsJSON() throws {
        let vocab = Vocabulary.words(from: "the cat sat on the mat\nthe end\n", minCount: 1)
        let fromArray = try Vocabulary(tokensJSON: vocab.tokensJSON(), level: .word)
        #expect(fromArray == vocab && fromArray.level == .word)
        #expect(fromArray.tokens == ["<unk>", "<eol>", "the", "cat", "end", "mat", "on", "sat"])
        #expect(try fromArray.encode("the mat\n") == [2, 5, 1])
    }

    @Test func rejectsTokenListsThatAreNoVocabulary() {
        func reason(_ tokens: [String], _ level: TokenLevel) -> String? {
            do {
                _ = try Vocabulary(tokens: tokens, level: level, source: "ckpt.safetensors")
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(reason(["a", "b", "a"], .character)?.contains("appears twice") == true)
        #expect(reason(["ab"], .character)?.contains("2 Unicode scalars") == true)
        #expect(reason([], .character)?.contains("no tokens") == true)
        #expect(reason(["a", "b"], .word)?.contains("must start with <unk>, <eol>") == true)
        #expect(reason(["<unk>", "<eol>", "x", "x"], .word)?.contains("appears twice") == true)
        #expect(reason(["<unk>", "<eol>", "x y"], .word)?.contains("whitespace") == true)
        #expect(reason(["<unk>", "<eol>", ""], .word)?.contains("empty") == true)
        #expect(reason(["<unk>", "<eol>", "x"], .word) == nil)
        #expect(reason(["a", "b", "a"], .character)?.hasPrefix("ckpt.safetensors: invalid vocabulary") == true)
        #expect(throws: TextDataError.self) { _ = try Vocabulary(tokensJSON: "{\"a\": 1}", level: .character) }
        #expect(throws: TextDataError.self) { _ = try Vocabulary(tokensJSON: "[1, 2]", level: .character) }
    }
}
