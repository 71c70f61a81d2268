import Foundation
import RecurrentCore
import Testing
@testable import TextData

@Suite struct DefaultCorpusTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: DefaultCorpus.licenseDirectory)))
    func readsTheLicenceTexts() throws {
        let (text, description) = DefaultCorpus.load()
        // Expected length from the file system: the sizes of the plain files read (ASCII text,
        // so bytes = characters), plus one "\n" between consecutive files.
        var sizes: [Int] = []
        for name in DefaultCorpus.licenseFiles {
            let path = DefaultCorpus.licenseDirectory + "/" + name
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
               attributes[.type] as? FileAttributeType == .typeRegular,
               let size = (attributes[.size] as? NSNumber)?.intValue {
                sizes.append(size)
            }
        }
        #expect(!sizes.isEmpty)
        #expect(text.unicodeScalars.count == sizes.reduce(0, +) + sizes.count - 1)
        #expect(text.contains("GNU GENERAL PUBLIC LICENSE"))
        #expect(description.contains("licence texts from /usr/share/common-licenses"))
        #expect(!description.contains("\n"))
    }

    @Test func fallsBackToGeneratedText() throws {
        let (text, description) = DefaultCorpus.load(directory: "/nonexistent-folder-for-textdata-tests")
        #expect(description.hasPrefix("generated sample text"))
        #expect(text == DefaultCorpus.generated())
        #expect(text.unicodeScalars.count >= 200_000)
    }

    @Test func generatedTextIsDeterministicAndWordy() throws {
        let a = DefaultCorpus.generated(characterCount: 5_000, seed: 1)
        #expect(a == DefaultCorpus.generated(characterCount: 5_000, seed: 1))
        #expect(a != DefaultCorpus.generated(characterCount: 5_000, seed: 2))
        #expect(a.unicodeScalars.count >= 5_000)
        #expect(a.unicodeScalars.allSatisfy { $0.isASCII })
        // Lines wrapped at 72 columns; paragraphs separated by blank lines.
        let lines = a.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.allSatisfy { $0.count <= 72 })
        #expect(lines.contains { $0.isEmpty })
        // A small closed vocabulary, every word used many times.
        let vocab = Vocabulary.words(from: a)
        #expect(vocab.count < 200)
        #expect(Vocabulary.words(from: a, minCount: 2).count > 50)
    }
}

@Suite struct TinyShakespeareTests {
    @Test func pathHelpers() {
        #expect(TinyShakespeare.path(dataDirectory: "/data") == "/data/tinyshakespeare/input.txt")
        #expect(TinyShakespeare.path(dataDirectory: "/data/") == "/data/tinyshakespeare/input.txt")
        #expect(TinyShakespeare.pathIfPresent(environment: [:]) == nil)
        #expect(TinyShakespeare.pathIfPresent(environment: ["RNN_DATA_DIR": "/nonexistent-folder"]) == nil)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["RNN_DATA_DIR"] != nil))
    func tinyShakespeareCharacterLevel() throws {
        let text = try #require(try TinyShakespeare.loadIfPresent())
        #expect(text.unicodeScalars.count == 1_115_394)
        let vocab = Vocabulary.characters(from: text)
        #expect(vocab.count == 65)
        // The published character set of this corpus (char-rnn / nanoGPT).
        #expect(vocab.tokens.joined() == "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        // nanoGPT's example: encode("hii there") == [46, 47, 47, 1, 58, 46, 43, 56, 43].
        #expect(try vocab.encode("hii there") == [46, 47, 47, 1, 58, 46, 43, 56, 43])
        let ids = try vocab.encode(text)
        #expect(ids.count == 1_115_394)
        // nanoGPT's split sizes: 1,003,854 train and 111,540 validation tokens.
        let split = try DataSplit(ids: ids)
        #expect(split.train.count == 1_003_854 && split.validation.count == 111_540)
        let batcher = try StreamBatcher(tokens: split.train, batchSize: 64, seqLen: 128)
        #expect(batcher.batchesPerEpoch == (1_003_853 / 64) / 128)
        #expect(try vocab.decode(ids[0..<14]) == "First Citizen:")
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["RNN_DATA_DIR"] != nil))
    func tinyShakespeareWordLevel() throws {
        let text = try #require(try TinyShakespeare.loadIfPresent())
        // Python reference: len(text.split()) == 202651, text.count("\n") == 40000,
        // Counter(text.split()): 7,032 words occur at least 3 times; top: the, I, to, and, of.
        #expect(Tokenizer.words(text).count == 242_651)
        let vocab = Vocabulary.words(from: text, minCount: 3)
        #expect(vocab.count == 7_034)
        #expect(Array(vocab.tokens[0..<7]) == ["<unk>", "<eol>", "the", "I", "to", "and", "of"])
        #expect(try vocab.encode(text).count == 242_651)
    }
}
