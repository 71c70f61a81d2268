import Foundation
import RecurrentCore
import Testing
@testable import TextData

@Suite struct TokenizerTests {
    /// Combining marks and emoji built from explicit code points.
    /// "Cafe" + U+0301, 👍 + skin tone, a ZWJ family, a flag, "!".
    static let mixed = "Cafe\u{301} \u{1F44D}\u{1F3FD} \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{1F1EB}\u{1F1F7}!"

    @Test func characterTokensAreUnicodeScalars() {
        let tokens = Tokenizer.characters(Self.mixed)
        // Counted by hand: C a f e ◌́ (5), space (6), 👍 🏽 (8), space (9),
        // 👨 ZWJ 👩 ZWJ 👧 (14), space (15), 🇫 🇷 (17), ! (18).
        #expect(tokens.count == 18)
        // Independent count: UTF-8 bytes that are not continuation bytes (10xxxxxx).
        let leadBytes = Self.mixed.utf8.filter { $0 & 0xC0 != 0x80 }.count
        #expect(tokens.count == leadBytes)
        // Grapheme clusters would be fewer: Café, space, 👍🏽, space, family, space, flag, ! = 11.
        #expect(Self.mixed.count == 11)
        #expect(tokens[3] == "e")
        #expect(tokens[4].unicodeScalars.map(\.value) == [0x301])
        #expect(tokens[9...13].map { $0.unicodeScalars.first?.value ?? 0 } == [0x1F468, 0x200D, 0x1F469, 0x200D, 0x1F467])
    }

    @Test func characterVocabularyIsSortedByScalarValue() throws {
        let vocab = Vocabulary.characters(from: Self.mixed)
        // Distinct scalars by hand: space, !, C, a, e, f, U+0301, U+200D, U+1F1EB, U+1F1F7,
        // U+1F3FD, U+1F44D, U+1F467, U+1F468, U+1F469.
        let expected: [UInt32] = [0x20, 0x21, 0x43, 0x61, 0x65, 0x66, 0x301, 0x200D, 0x1F1EB, 0x1F1F7,
                                  0x1F3FD, 0x1F44D, 0x1F467, 0x1F468, 0x1F469]
        #expect(vocab.tokens.map { $0.unicodeScalars.first?.value ?? 0 } == expected)
        #expect(vocab.level == .character)
        let ids = try vocab.encode(Self.mixed)
        #expect(ids.count == 18)
        #expect(Array(ids[0..<6]) == [2, 3, 5, 4, 6, 0])     // C a f e ◌́ space
        #expect(try vocab.decode(ids).utf8.elementsEqual(Self.mixed.utf8))
    }

    @Test func canonicallyEquivalentScalarsStayDistinct() throws {
        // U+00C5 and U+212B are canonically equivalent (Swift's == says equal); Python keeps two.
        let text = "\u{C5}\u{212B}\u{C5}"
        #expect("\u{C5}" == "\u{212B}")
        let vocab = Vocabulary.characters(from: text)
        #expect(vocab.count == 2)
        #expect(try vocab.encode(text) == [0, 1, 0])
        // Words: precomposed "café" and decomposed "cafe\u{301}" are different words.
        let words = Vocabulary.words(from: "caf\u{E9} cafe\u{301} caf\u{E9}")
        #expect(words.count == 4)
        #expect(words.tokens[2].unicodeScalars.map(\.value) == [0x63, 0x61, 0x66, 0xE9])
        #expect(words.tokens[3].unicodeScalars.count == 5)
        #expect(try words.encode("cafe\u{301} caf\u{E9}") == [3, 2])
    }

    @Test func wordTokensFollowPythonSplitWithEndOfLine() {
        let text = "the cat  sat\n\nthe\tdog\r\nsat on the mat\u{A0}x\u{1C}y"
        // Reference from Python: [t for line in s.split('\n') for t in line.split() + ['<eol>']][:-1]
        let expected = ["the", "cat", "sat", "<eol>", "<eol>", "the", "dog", "<eol>", "sat", "on", "the", "mat", "x", "y"]
        #expect(Tokenizer.words(text) == expected)
        #expect(Tokenizer.tokens("a\n", level: .word) == ["a", "<eol>"])
        #expect(Tokenizer.words("  \n ") == ["<eol>"])
        #expect(Tokenizer.words("") == [])
    }

    @Test func wordVocabularyMinCountAndUnknown() throws {
        // Counts by hand: the 4, cat 2, sat 2, on 1, dog 1, mat 1.
        let text = "the cat sat\nthe dog\nthe cat sat on the mat\n"
        let all = Vocabulary.words(from: text)
        #expect(all.tokens == ["<unk>", "<eol>", "the", "cat", "sat", "dog", "mat", "on"])
        let vocab = Vocabulary.words(from: text, minCount: 2)
        #expect(vocab.tokens == ["<unk>", "<eol>", "the", "cat", "sat"])
        #expect(vocab.unknownID == 0)
        #expect(vocab.endOfLineID == 1)
        let ids = try vocab.encode("the dog sat\nzebra cat")
        #expect(ids == [2, 0, 4, 1, 0, 3])
        #expect(try vocab.decode(ids) == "the <unk> sat\n<unk> cat")
        // maxWords keeps the most frequent ones.
        #expect(Vocabulary.words(from: text, maxWords: 1).tokens == ["<unk>", "<eol>", "the"])
        // Literal special words map to the special ids and are not counted as words.
        let special = Vocabulary.words(from: "a <unk> a <eol>")
        #expect(special.tokens == ["<unk>", "<eol>", "a"])
        #expect(try special.encode("a <unk> <eol>") == [2, 0, 1])
    }

    @Test func wordDecodeJoinsWithSpacesAndNewlines() throws {
        let vocab = Vocabulary.words(from: "to be or not\n")
        let ids = try vocab.encode("to  be\n\nor   not\n")
        #expect(try vocab.decode(ids) == "to be\n\nor not\n")
        // Streaming decoder gives the same text piece by piece.
        var decoder = TokenDecoder(vocabulary: vocab)
        var pieces: [String] = []
        for id in ids { pieces.append(try decoder.append(id)) }
        #expect(pieces == ["to", " be", "\n", "\n", "or", " not", "\n"])
    }

    @Test func unknownCharactersAreNamed() throws {
        let vocab = Vocabulary.characters(from: "hello world\n")
        let error = #expect(throws: TextDataError.self) {
            _ = try vocab.encode("h\u{E9}llo w\u{F6}rld h\u{E9}", source: "prime text")
        }
        #expect(error == .unknownCharacters(source: "prime text", characters: ["\u{E9}", "\u{F6}"]))
        let message = error?.description ?? ""
        #expect(message.hasPrefix("prime text has characters not in the vocabulary: "))
        #expect(message.contains("U+00E9") && message.contains("U+00F6"))
        #expect(!message.contains("\n"))
        #expect(vocab.unknownCharacters(in: "\u{1F600}h\u{1F600}\t") == ["\u{1F600}", "\t"])
        #expect(vocab.unknownCharacters(in: "hello") == [])
    }

    @Test func decodeRejectsIdsOutsideTheVocabulary() {
        let vocab = Vocabulary.characters(from: "ab")
        #expect(throws: TextDataError.idOutOfRange(id: 2, count: 2)) { _ = try vocab.decode([0, 2] as [Int32]) }
        #expect(throws: TextDataError.idOutOfRange(id: -1, count: 2)) { _ = try vocab.decode([-1]) }
        #expect(vocab.token(for: 5) == nil)
        #expect(vocab.id(of: "c") == nil)
        #expect(vocab.id(of: "ab") == nil)
    }
}
