import Foundation
import RecurrentCore
import Testing
import TestSupport
@testable import TextData

/// lm-train's predict, eval, score and sample against the independent reference model.
@Suite(.enabled(if: builtExecutable("lm-train") != nil, "lm-train is not built next to the test bundle"))
struct LanguageModelPredictEvalTests {
    let lmTrain = builtExecutable("lm-train") ?? "lm-train"

    /// Softmax of the reference model's last logits after `ids`, in Float64.
    func nextProbabilities(_ ref: ReferenceLanguageModel, _ ids: [Int]) -> [Double] {
        let z = ref.logits(ids).last!
        let e = z.map { Foundation.exp($0) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// A word-level checkpoint: the reference weights with a word vocabulary.
    func wordModel(_ folder: TemporaryFolder) throws -> (ReferenceLanguageModel, String) {
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 4, embedding: 3,
                                         vocab: ["<unk>", "<eol>", "the", "king", "you", "a"], seed: 11)
        var meta = ref.metadata
        meta["config"] = meta["config"]!.replacingOccurrences(of: "\"level\":\"char\"", with: "\"level\":\"word\"")
        let path = folder.path + "/word.safetensors"
        try SafeTensors.write(ref.tensors, metadata: meta, to: path)
        return (ref, path)
    }

    @Test func predictTopKMatchesTheReferenceSoftmaxInEveryFormat() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "gru", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c", "d"], seed: 8)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let p = nextProbabilities(ref, [0, 1, 2])
        let order = p.indices.sorted { p[$0] > p[$1] }
        // JSON: the three most probable tokens with their probabilities, best first.
        let json = try runProcess(lmTrain, ["predict", "--checkpoint", ckpt, "--text", "abc", "--top-k", "3", "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["input"] as? String == "abc")
        let top = try #require(object["top"] as? [[String: Any]])
        #expect(top.map { $0["label"] as? String } == order.prefix(3).map { ref.vocab[$0] })
        for (entry, i) in zip(top, order) { #expect(abs((entry["probability"] as? Double ?? -1) - p[i]) < 2e-6) }
        // All four: the probabilities sum to one.
        let tsv = try runProcess(lmTrain, ["predict", "--checkpoint", ckpt, "--text", "abc", "--text", "b", "--top-k", "9", "--format", "tsv"])
        let rows = tsv.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(rows.count == 2 && rows[0].count == 9 && rows[0][0] == "abc" && rows[1][0] == "b")
        let sum = stride(from: 2, to: 9, by: 2).map { Double(rows[0][$0])! }.reduce(0, +)
        #expect(abs(sum - 1) < 1e-5)
        let pb = nextProbabilities(ref, [1])
        let bestB = pb.indices.max { pb[$0] < pb[$1] }!
        #expect(rows[1][1] == ref.vocab[bestB] && abs(Double(rows[1][2])! - pb[bestB]) < 1e-6)
        // Files and standard input: one line per input, the file named.
        let file = try folder.write("in.txt", text: "abc")
        let fromFile = try runProcess(lmTrain, ["predict", "--checkpoint", ckpt, file])
        #expect(fromFile.stdout == "\(file)  \(ref.vocab[order[0]]) (\(String(format: "%.4f", p[order[0]])))\n", "\(fromFile.stdout)")
        let stdin = try runProcess("/bin/sh", ["-c", "printf 'abc\\nb\\n' | \"$0\" predict --checkpoint \"$1\"", lmTrain, ckpt])
        #expect(stdin.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) } == ["abc", "b"], "\(stdin.stdout) \(stdin.stderr)")
    }

    @Test func evalOnAFileInTextAndJSONWithAnErrorsFile() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c"], seed: 3)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let text = "abcabbacab"
        let data = try folder.write("t.txt", text: text)
        let ids = text.map { ref.vocab.firstIndex(of: String($0))! }
        let nll = ref.meanNLL(ids)
        // Greedy predictions of every next token, from the reference.
        let z = ref.logits(Array(ids.dropLast()))
        let greedy = z.map { row in row.indices.max { row[$0] < row[$1] }! }
        let wrong = zip(greedy, ids.dropFirst()).enumerated().filter { $0.element.0 != $0.element.1 }
        let errors = folder.path + "/errors.tsv"
        let r = try runProcess(lmTrain, ["eval", "--checkpoint", ckpt, "--data", data, "--format", "json", "--errors", errors])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(abs((o["loss"] as? Double ?? 0) - nll) < 1e-4)
        #expect(abs((o["bits_per_character"] as? Double ?? 0) - nll / Foundation.log(2.0)) < 1e-4)
        #expect(abs((o["next_token_accuracy"] as? Double ?? -1) - Double(ids.count - 1 - wrong.count) / Double(ids.count - 1)) < 1e-6)
        #expect(o["data"] as? String == data && o["tokens"] as? Int == ids.count)
        let lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "input\treference\tprediction" && lines.count == 1 + wrong.count)
        for (line, w) in zip(lines.dropFirst(), wrong) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            #expect(f[0] == Substring(String(text.prefix(w.offset + 1))) && f[1] == Substring(ref.vocab[w.element.1]) && f[2] == Substring(ref.vocab[w.element.0]))
        }
        let plain = try runProcess(lmTrain, ["eval", "--checkpoint", ckpt, "--data", data])
        #expect(plain.stdout.contains("\nloss: \(String(format: "%.4f", nll))\n") && plain.stdout.hasPrefix("data: \(data)\n"), "\(plain.stdout)")
    }

    @Test func evalWithoutDataUsesTheRunsHeldOutTail() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let text = String(repeating: "abba baab abab\n", count: 30)
        let data = try folder.write("t.txt", text: text)
        let out = folder.path + "/run"
        let train = try runProcess(lmTrain, ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "6", "--embedding", "3",
                                             "--batch", "2", "--seq-len", "8", "--steps", "3", "--eval-every", "3", "--threads", "1",
                                             "--val-fraction", "0.2"])
        #expect(train.status == 0, "\(train.stderr)")
        let r = try runProcess(lmTrain, ["eval", "--checkpoint", out + "/best.safetensors", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // The tail: 20 % of the characters, the training file named.
        let total = text.unicodeScalars.count
        #expect(o["tokens"] as? Int == total - Int(Double(total) * 0.8))
        #expect((o["data"] as? String)?.contains("held-out last 20 % of \(data)") == true, "\(r.stdout)")
        // The same figure as validation measured it (val_loss of the last evaluation in log.csv).
        let log = try String(contentsOfFile: out + "/log.csv", encoding: .utf8).split(separator: "\n")
        let header = log[0].split(separator: ",", omittingEmptySubsequences: false)
        let column = try #require(header.firstIndex(of: "val_loss"))
        let last = try #require(log.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .last { $0.count > column && Double($0[column]) != nil })
        #expect(abs((o["loss"] as? Double ?? 0) - Double(last[column])!) < 1e-3)
    }

    @Test func wordModelsSayBitsPerWordSeparateTheirPrimeAndWarnOnUnknownWords() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let (ref, ckpt) = try wordModel(folder)
        let data = try folder.write("w.txt", text: "the king\nyou a king\n")
        let score = try runProcess(lmTrain, ["score", "--checkpoint", ckpt, "--data", data])
        let ids = [2, 3, 1, 4, 5, 3, 1]
        let nll = ref.meanNLL(ids)
        #expect(score.stdout == String(format: "nll=%.4f ppl=%.4f bpw=%.4f\n", nll, Foundation.exp(nll), nll / Foundation.log(2.0)), "\(score.stdout)")
        // Greedy sampling after "the king": a space before the first generated word.
        let sample = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--prime", "the king", "--length", "1", "--temperature", "0"])
        let z = ref.logits([2, 3]).last!
        let next = z.indices.max { z[$0] < z[$1] }!
        let expected = next == 1 ? "the king\n" : "the king " + ref.vocab[next]
        #expect(sample.status == 0 && sample.stdout == expected + "\n", "\(sample.stdout)")
        // Unknown prime words: a warning naming them, then generation from <unk>.
        let unknown = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--prime", "the queen", "--length", "1"])
        #expect(unknown.status == 0 && unknown.stderr.contains("lm-train: warning: --prime: 1 word(s) unknown to the model were read as <unk>: \"queen\""),
                "\(unknown.stderr)")
    }

    @Test func trainOnAFolderReadsFilesOfAnyNameAndReportsTheSkippedOnes() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try FileManager.default.createDirectory(atPath: folder.path + "/licences/more", withIntermediateDirectories: true)
        try folder.write("licences/GPL-3", text: String(repeating: "abba baab\n", count: 20))
        try folder.write("licences/more/MIT", text: String(repeating: "baba abab\n", count: 20))
        let binary = try folder.write("licences/logo.png", bytes: [0x89, 0x50, 0x4E, 0x47])
        let r = try runProcess(lmTrain, ["train", "--data", folder.path + "/licences", "--out", folder.path + "/run", "--layers", "1",
                                         "--hidden", "4", "--embedding", "2", "--batch", "2", "--seq-len", "8", "--steps", "1", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("lm-train: \(binary): skipped: not UTF-8 text (byte 0x89 at offset 0)\n"), "\(r.stderr)")
    }

    @Test func scoreRefusesUnknownCharactersUnlessTheyAreSkipped() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "gru", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c"], seed: 6)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let data = try folder.write("t.txt", text: "abzcab\u{e9}ca")
        let refused = try runProcess(lmTrain, ["score", "--checkpoint", ckpt, "--data", data])
        #expect(refused.status == 1 && refused.stdout.isEmpty && refused.stderr.contains("has characters not in the vocabulary"))
        let skipped = try runProcess(lmTrain, ["score", "--checkpoint", ckpt, "--data", data, "--skip-unknown"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("\(data): skipped 2 character(s) not in the vocabulary ('z', '\u{e9}'); scored the other 7"), "\(skipped.stderr)")
        let nll = ref.meanNLL("abcabca".map { ref.vocab.firstIndex(of: String($0))! })
        #expect(skipped.stdout == String(format: "nll=%.4f ppl=%.4f bpc=%.4f\n", nll, Foundation.exp(nll), nll / Foundation.log(2.0)), "\(skipped.stdout)")
    }

    /// `--precision bf16` where it is emulated (`RNN_ISA=avx2` makes it so on every processor):
    /// `predict` and `train` say so in one line on standard error and go on; predict's
    /// probabilities stay within bf16 rounding of the reference model's, and the run records
    /// bf16 in its fingerprint.
    @Test func emulatedBF16IsAnnouncedAndStaysCloseToTheReference() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 5, embedding: 3, vocab: ["a", "b", "c", "d"], seed: 4)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let env: [String: String?] = ["RNN_ISA": "avx2", "RNN_BF16_KERNEL": nil]
        let r = try runProcess(lmTrain, ["predict", "--checkpoint", ckpt, "--text", "abcdab", "--top-k", "4", "--format", "tsv", "--precision", "bf16"],
                               environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        let note = r.stderr.split(separator: "\n")
        #expect(note.count == 1 && note[0].hasPrefix("lm-train: bf16 is emulated (") && note[0].hasSuffix("training no faster than fp32"), "\(r.stderr)")
        let fields = r.stdout.split(separator: "\n")[0].split(separator: "\t")
        let p = nextProbabilities(ref, [0, 1, 2, 3, 0, 1])
        var seen = 0
        for j in stride(from: 1, to: fields.count - 1, by: 2) {
            let i = try #require(ref.vocab.firstIndex(of: String(fields[j])))
            #expect(abs(Double(fields[j + 1])! - p[i]) < 5e-3, "\(fields[j]): \(fields[j + 1]) vs \(p[i])")
            seen += 1
        }
        #expect(seen == 4)
        let text = try folder.write("t.txt", text: String(repeating: "abcd dcba\n", count: 30))
        let run = folder.path + "/run"
        let t = try runProcess(lmTrain, ["train", "--data", text, "--out", run, "--layers", "1", "--hidden", "4", "--embedding", "2",
                                         "--batch", "2", "--seq-len", "8", "--steps", "2", "--threads", "1", "--precision", "bf16"], environment: env)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stderr.hasPrefix("lm-train: bf16 is emulated ("), "\(t.stderr)")
        #expect(t.stderr.components(separatedBy: "bf16 is emulated").count == 2, "announced once: \(t.stderr)")
        let config = try #require(FileManager.default.contents(atPath: run + "/config.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: config) as? [String: Any])
        let fingerprint = try #require(object["fingerprint"] as? [String: Any])
        #expect(fingerprint["precision"] as? String == "bf16", "\(fingerprint)")
    }

}
