import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import Seq2Seq

/// translate-toy's split options, translate formats and eval formats, through the built tool.
@Suite(.serialized, .enabled(if: builtExecutable("translate-toy") != nil, "translate-toy is not built next to the test bundle"))
struct TranslatePredictEvalTests {
    let tool = builtExecutable("translate-toy") ?? "translate-toy"

    /// 100 distinct reverse pairs over a…c as TSV.
    func pairs(_ dir: String, name: String = "pairs.tsv", count: Int = 100, seed: UInt64 = 4) throws -> String {
        var g = try ToyPairGenerator(task: .reverse, options: ToyTaskOptions(alphabet: Array("abc"), minLength: 2, maxLength: 6), seed: seed)
        let path = dir + "/" + name
        try PairTSV.write(try g.generate(count: count), to: path)
        return path
    }

    func train(_ arguments: [String]) throws -> ProcessResult {
        try runProcess(tool, ["train", "--hidden", "6", "--embedding", "4", "--batch", "8", "--steps", "2", "--threads", "1"] + arguments)
    }

    @Test func splitIsPrintedAndEvalDefaultsToTheRunsTestPairs() throws {
        let dir = temporaryDirectory("split-eval")
        let data = try pairs(dir)
        let out = dir + "/run"
        let r = try train(["--data", data, "--out", out, "--val-fraction", "0.2", "--test-fraction", "0.3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("translate-toy: 50 training, 20 validation, 30 test pairs; split 50 % training / 20 % validation / 30 % test of \(data) (seed 1); "),
                "\(r.stderr)")
        let test = try PairTSV.read(path: out + "/test.tsv")
        #expect(test.count == 30)
        // eval with no --data reads test.tsv; JSON figures agree with the library's evaluation.
        let errors = dir + "/errors.tsv"
        let e = try runProcess(tool, ["eval", "--checkpoint", out + "/best.safetensors", "--format", "json", "--errors", errors])
        #expect(e.status == 0, "\(e.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let expected = try Seq2SeqCheckpoint.load(path: out + "/best.safetensors").evaluate(test)
        #expect(o["pairs"] as? Int == 30 && (o["data"] as? String)?.hasPrefix("the run's test split ") == true)
        #expect(abs((o["exact_match"] as? Double ?? -1) - expected.exactMatch) < 1e-6)
        #expect(abs((o["token_accuracy"] as? Double ?? -1) - expected.tokenAccuracy) < 1e-6)
        // --errors: every pair whose output differs from its target, with both.
        let lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.first == "input\treference\tprediction")
        let wrong = zip(test, expected.hypotheses).filter { $0.0.target != $0.1.joined() }
        #expect(lines.count - 1 == wrong.count && wrong.count == Int((Double(test.count) * (1 - expected.exactMatch)).rounded()))
        for (line, w) in zip(lines.dropFirst(), wrong) {
            #expect(line == Substring("\(w.0.source)\t\(w.0.target)\t\(w.1.joined())"))
        }
        // Text format names the data and prints percentages.
        let text = try runProcess(tool, ["eval", "--checkpoint", out + "/best.safetensors"])
        #expect(text.stdout.hasPrefix("data: the run's test split \(out)/test.tsv\npairs: 30\nexact match: "), "\(text.stdout)")
        // A checkpoint without test.tsv beside it: say so, ask for --data.
        try FileManager.default.removeItem(atPath: out + "/test.tsv")
        let missing = try runProcess(tool, ["eval", "--checkpoint", out + "/best.safetensors"])
        #expect(missing.status == 1 && missing.stderr == "translate-toy: \(out)/test.tsv: no test split beside the checkpoint; give --data\n")
    }

    @Test func separateValidationAndTestFiles() throws {
        let dir = temporaryDirectory("valid-test")
        let data = try pairs(dir)
        let valid = try pairs(dir, name: "valid.tsv", count: 7, seed: 9)
        let test = try pairs(dir, name: "test.tsv", count: 5, seed: 10)
        let out = dir + "/run"
        let r = try train(["--data", data, "--out", out, "--valid", valid, "--test", test])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("100 training, 7 validation, 5 test pairs; split 100 % training of \(data) (seed 1), validation from \(valid), test from \(test); "),
                "\(r.stderr)")
        #expect(try PairTSV.read(path: out + "/test.tsv") == PairTSV.read(path: test))
        let bad = try train(["--data", data, "--out", dir + "/bad", "--test-fraction", "0.95"])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("translate-toy: --val-fraction"), "\(bad.stderr)")
    }

    /// `translate --top-k 3`: three distinct finished hypotheses ranked by the beam's score, the
    /// first the 1-best translation, each probability exp of the log-probability the training
    /// forward pass (teacher forcing) gives that output; --beam 1 is widened to 3.
    @Test func translateTopKPrintsTheNBestListWithTeacherForcedProbabilities() throws {
        let dir = temporaryDirectory("translate-top-k")
        let out = dir + "/run"
        let r = try runProcess(tool, ["train", "--hidden", "12", "--embedding", "6", "--batch", "8", "--steps", "40", "--threads", "1",
                                      "--data", try pairs(dir), "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let ckpt = out + "/best.safetensors"
        let bundle = try Seq2SeqCheckpoint.load(path: ckpt)
        let inputs = ["abc", "cab", "bbac"]
        var unknown: [String: Int] = [:]
        let lists = try bundle.translateNBest(inputs, beam: 1, count: 3, unknown: &unknown)
        let best = try bundle.translate(inputs, beam: 3, unknown: &unknown)
        for (list, oneBest) in zip(lists, best) {
            #expect(list.count == 3)
            #expect(Set(list.map(\.text)).count == 3, "\(list.map(\.text))")
            #expect(list.allSatisfy { $0.decoded.finished })
            #expect(zip(list, list.dropFirst()).allSatisfy { $0.decoded.score >= $1.decoded.score })
            #expect(list[0].text == oneBest.text && list[0].decoded.logProb == oneBest.decoded.logProb)
        }
        for (input, list) in zip(inputs, lists) {
            let source = bundle.sourceVocabulary.encode(bundle.sourceVocabulary.tokenization.tokenize(input))
            for h in list {
                let forced = try bundle.model.teacherForcedLogProb(source: source, target: h.decoded.tokens)
                #expect(abs(forced - h.decoded.logProb) < 1e-4, "\(input) -> \(h.text): \(forced) vs \(h.decoded.logProb)")
                #expect(Foundation.exp(h.decoded.logProb) > 0 && Foundation.exp(h.decoded.logProb) <= 1)
            }
        }
        let json = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--top-k", "3", "--format", "json"] + inputs)
        #expect(json.status == 0, "\(json.stderr)")
        let objects = try json.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.map { $0["input"] as? String } == inputs)
        for (o, list) in zip(objects, lists) {
            let top = try #require(o["top"] as? [[String: Any]])
            #expect(top.map { $0["label"] as? String ?? "" } == list.map(\.text))
            for (t, h) in zip(top, list) {
                #expect(abs((t["probability"] as? Double ?? -1) - Foundation.exp(h.decoded.logProb)) < 1e-6)
            }
        }
        let text = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--top-k", "3", "abc"])
        #expect(text.stdout == PredictionOutputLine.text("abc", lists[0]) + "\n", "\(text.stdout)")
        let bad = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--top-k", "0", "abc"])
        #expect(bad.status == 1 && bad.stderr == "translate-toy: --top-k: must be at least 1 (got 0)\n", "\(bad.stderr)")
    }

    /// `train --init-from` on pairs with characters the checkpoint has never seen: the pairs are
    /// read with the checkpoint's vocabularies, the new characters as <unk>, one warning line
    /// counts them, and the new run's checkpoint keeps the vocabularies.
    @Test func initFromReadsNewPairsWithTheCheckpointsVocabularies() throws {
        let dir = temporaryDirectory("init-from-vocab")
        let first = dir + "/first"
        let r = try train(["--data", try pairs(dir), "--out", first])
        #expect(r.status == 0, "\(r.stderr)")
        let start = try Seq2SeqCheckpoint.load(path: first + "/best.safetensors")
        // 40 reverse pairs over a…c, then 3 with "d"s and 1 with "xy" on both sides (12 new tokens; the last longer
        // than any pair of the first run).
        var g = try ToyPairGenerator(task: .reverse, options: ToyTaskOptions(alphabet: Array("abc"), minLength: 2, maxLength: 6), seed: 9)
        var fresh = try g.generate(count: 40)
        fresh += [SentencePair(source: "abd", target: "dba"), SentencePair(source: "dd", target: "dd"),
                  SentencePair(source: "cad", target: "dac"), SentencePair(source: "abcabcxy", target: "yxcbacba")]
        let data = dir + "/fresh.tsv"
        try PairTSV.write(fresh, to: data)
        let second = dir + "/second"
        let t = try train(["--data", data, "--out", second, "--init-from", first + "/best.safetensors"])
        #expect(t.status == 0, "\(t.stderr)")
        let warnings = t.stderr.split(separator: "\n").filter { $0.contains("warning") }
        #expect(warnings == ["translate-toy: warning: \(data): 12 token(s) in 4 pair(s) are not in the vocabularies of "
                             + "\(first)/best.safetensors and were read as <unk>"], "\(t.stderr)")
        let tuned = try Seq2SeqCheckpoint.load(path: second + "/best.safetensors")
        #expect(tuned.sourceVocabulary == start.sourceVocabulary && tuned.targetVocabulary == start.targetVocabulary)
        #expect(tuned.model.config.maxSourceLength >= 8)
        // Data the checkpoint's vocabularies cover entirely: no warning.
        let same = try train(["--data", try pairs(dir, name: "same.tsv", seed: 5), "--out", dir + "/third",
                              "--init-from", first + "/best.safetensors"])
        #expect(same.status == 0 && !same.stderr.contains("warning"), "\(same.stderr)")
    }

    @Test func translateFormatsAndTheAttentionHeatmapOfAChosenInput() throws {
        let dir = temporaryDirectory("translate-formats")
        let out = dir + "/run"
        let r = try train(["--data", try pairs(dir), "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let ckpt = out + "/best.safetensors"
        let bundle = try Seq2SeqCheckpoint.load(path: ckpt)
        var unknown: [String: Int] = [:]
        let expected = try bundle.translate(["abc", "cab"], beam: 1, unknown: &unknown)
        let text = try runProcess(tool, ["translate", "--checkpoint", ckpt, "abc", "cab"])
        #expect(text.stdout == expected.map { $0.text + "\n" }.joined())
        let json = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--format", "json", "abc", "cab"])
        let objects = try json.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.map { $0["input"] as? String } == ["abc", "cab"])
        for (o, e) in zip(objects, expected) {
            let top = try #require((o["top"] as? [[String: Any]])?.first)
            #expect(top["label"] as? String == e.text)
            #expect(abs((top["probability"] as? Double ?? -1) - Foundation.exp(e.decoded.logProb)) < 1e-6)
        }
        let png = dir + "/attention.png"
        let a = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--attention-png", png, "--attention-input", "2", "abc", "cab"])
        #expect(a.status == 0 && a.stderr.contains("attention heatmap of input 2 written to \(png)"), "\(a.stderr)")
        #expect(FileManager.default.fileExists(atPath: png))
        let none = try runProcess(tool, ["translate", "--checkpoint", ckpt, "--attention-png", png, "--attention-input", "3", "abc"])
        #expect(none.status == 1 && none.stderr == "translate-toy: --attention-input: 3 is not one of the 1 input(s)\n", "\(none.stderr)")
    }
}

/// translate's text line for an n-best list, as PredictionOutput prints it.
enum PredictionOutputLine {
    static func text(_ input: String, _ list: [(text: String, decoded: DecodedSequence<Seq2SeqModel.HypothesisState>)]) -> String {
        ([input] + list.map { "\($0.text) (\(String(format: "%.4f", Foundation.exp($0.decoded.logProb))))" }).joined(separator: "  ")
    }
}
