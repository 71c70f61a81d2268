import TestSupport
import Foundation
import RecurrentCore
import Testing
@testable import TextData
import TrainingCLI

/// Line endings are normalised when text is read; sampling settings are checked before use.
@Suite struct LineEndingAndSettingTests {
    @Test func crlfAndLoneCRBecomeOneLineFeedEach() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        // "a\r\nb\rc\n\r\n": CRLF, lone CR, LF, CRLF -> four line feeds, none lost, none doubled.
        let path = try folder.write("mixed.txt", bytes: [0x61, 0x0D, 0x0A, 0x62, 0x0D, 0x63, 0x0A, 0x0D, 0x0A])
        let text = try TextCorpus.load(path: path)
        #expect(Array(text.unicodeScalars) == Array("a\nb\nc\n\n".unicodeScalars))
        // A trailing lone CR, and a BOM before CRLF.
        #expect(try TextCorpus.decodeUTF8([0x78, 0x0D], path: "t") == "x\n")
        #expect(try TextCorpus.decodeUTF8([0xEF, 0xBB, 0xBF, 0x0D, 0x0A, 0x79], path: "t") == "\ny")
        // A character vocabulary built from CRLF text holds the same tokens as from LF text.
        let crlf = Vocabulary.characters(from: try TextCorpus.decodeUTF8(Array("ab\r\nba\r\n".utf8), path: "t"))
        let lf = Vocabulary.characters(from: "ab\nba\n")
        #expect(crlf.tokens == lf.tokens)
    }

    @Test func samplingSettingsOutOfRangeAreRefusedNamingTheOption() {
        let bad: [(Int, Float, Int?, String)] = [
            (10, .nan, nil, "--temperature"), (10, .infinity, nil, "--temperature"), (10, -1, nil, "--temperature"),
            (10, 1, 0, "--top-k"), (10, 1, -3, "--top-k"), (-1, 1, nil, "--length"),
        ]
        for (length, temperature, topK, option) in bad {
            do {
                try LanguageModelGeneration.validate(length: length, temperature: temperature, topK: topK)
                Issue.record("accepted \(option) in (\(length), \(temperature), \(String(describing: topK)))")
            } catch let e as TextDataError {
                guard case .invalidSetting(let flag, _, _) = e else { Issue.record("\(e)"); continue }
                #expect(flag == option)
            } catch { Issue.record("\(error)") }
        }
        #expect(throws: Never.self) { try LanguageModelGeneration.validate(length: 0, temperature: 0, topK: 1) }
    }

    @Test func sampleEveryMustBeAPositiveNumberOfSeconds() {
        for value in [Double.nan, -1, 0, .infinity] {
            var o = LanguageModelTrainingOptions()
            o.sampleEvery = value
            #expect(throws: TrainingSetupError.self) { try o.validate() }
        }
        var o = LanguageModelTrainingOptions()
        o.sampleEvery = 5
        #expect(throws: Never.self) { try o.validate() }
    }
}

/// The lm-train binary: refused options, Windows line endings, output-folder errors.
@Suite(.enabled(if: builtExecutable("lm-train") != nil, "lm-train is not built next to the test bundle"))
struct LanguageModelInputCommandLineTests {
    let lmTrain = builtExecutable("lm-train") ?? "lm-train"

    /// A text scored with CRLF line endings gives the same figures as the LF text, computed by
    /// the independent reference model from the LF token ids.
    @Test func crlfTextScoresLikeTheLFTextOnAnLFModel() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 3, embedding: 2, vocab: ["\n", "a", "b"], seed: 4)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let lines = ["ab", "ba", "aab", "b", "abba"]
        let crlf = try folder.write("crlf.txt", text: lines.joined(separator: "\r\n") + "\r\n")
        let r = try runProcess(lmTrain, ["score", "--checkpoint", ckpt, "--data", crlf])
        #expect(r.status == 0, "\(r.stderr)")
        let ids = (lines.joined(separator: "\n") + "\n").unicodeScalars.map { ref.vocab.firstIndex(of: String($0))! }
        let nll = ref.meanNLL(ids)
        #expect(r.stdout == String(format: "nll=%.4f ppl=%.4f bpc=%.4f\n", nll, Foundation.exp(nll), nll / Foundation.log(2.0)))
    }

    @Test func nonFiniteOrNegativeSamplingOptionsAreRefusedInOneLine() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "gru", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b"], seed: 2)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        for (args, option) in [(["--temperature", "nan"], "--temperature"), (["--temperature", "inf"], "--temperature"),
                               (["--temperature=-0.5"], "--temperature"), (["--top-k=0"], "--top-k"), (["--top-k=-2"], "--top-k")] {
            let r = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--length", "5"] + args)
            #expect(r.status == 1 && r.stdout.isEmpty, "\(args): \(r.stdout) \(r.stderr)")
            let errorLines = r.stderr.split(separator: "\n")
            #expect(errorLines.count == 1 && errorLines[0].hasPrefix("lm-train: \(option) "), "\(args): \(r.stderr)")
        }
        let data = try folder.write("t.txt", text: String(repeating: "abba baab\n", count: 40))
        let r = try runProcess(lmTrain, ["train", "--data", data, "--steps", "1", "--sample-every", "nan", "--out", folder.path + "/run"])
        #expect(r.status == 1 && r.stderr.hasPrefix("lm-train: --sample-every: "), "\(r.stderr)")
    }

    /// A demo step count below 1 is refused before anything runs.
    @Test func demoRefusesZeroSteps() throws {
        let r = try runProcess(lmTrain, ["demo", "--steps", "0", "--out", "/nonexistent/never"])
        #expect(r.status != 0 && r.stderr == "lm-train: --steps: must be at least 1 (got 0)\n", "\(r.stderr)")
    }

    /// An output folder that cannot be made: `<tool>: <path>: <reason>`, never Foundation's
    /// `NSCocoaErrorDomain` text.
    @Test func outputFolderErrorsNameThePathAndTheReason() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("t.txt", text: String(repeating: "abba baab\n", count: 40))
        let file = try folder.write("plain", text: "x")
        let cases = [(file, "\(file): exists and is not a folder"), (file + "/run", "\(file)/run: not a folder")]
        for (out, expected) in cases {
            let r = try runProcess(lmTrain, ["train", "--data", data, "--steps", "1", "--hidden", "4", "--embedding", "2", "--batch", "2",
                                             "--seq-len", "4", "--out", out])
            #expect(r.status == 1, "\(r.stderr)")
            let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("lm-train: ") }
            #expect(errorLines.count == 1 && errorLines.first?.hasPrefix("lm-train: \(expected)") == true, "\(r.stderr)")
            #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Code="), "\(r.stderr)")
        }
    }
}
