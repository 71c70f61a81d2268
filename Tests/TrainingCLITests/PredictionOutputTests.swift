import ArgumentParser
import Foundation
import Testing
@testable import TrainingCLI

struct PredictOnly: ParsableCommand {
    @OptionGroup var predict: PredictOptions
}

@Suite struct PredictionOutputTests {
    @Test func softmaxMatchesTheDefinition() {
        let logits = [2.0, -1.0, 0.5, 3.25]
        let p = PredictionOutput.softmax(logits)
        // exp(x_i) / sum_j exp(x_j), written out without the shift.
        let denominator = exp(2.0) + exp(-1.0) + exp(0.5) + exp(3.25)
        for (i, x) in logits.enumerated() { #expect(abs(p[i] - exp(x) / denominator) < 1e-15) }
        // Large logits do not overflow.
        let big = PredictionOutput.softmax([1000, 1000])
        #expect(big == [0.5, 0.5])
    }

    @Test func topKIsSortedAndItsProbabilitiesAreTheLargest() {
        let labels = ["a", "b", "c", "d", "e"]
        let p = PredictionOutput.softmax([0.3, 2.0, -1.0, 2.0, 1.1])
        let top3 = PredictionOutput.topK(p, labels: labels, k: 3)
        // b and d tie: the lower index first; then e.
        #expect(top3.map(\.label) == ["b", "d", "e"])
        #expect(top3.map(\.probability) == [p[1], p[3], p[4]])
        // All of them sum to one; the top 3 sum to one minus the two left out.
        let all = PredictionOutput.topK(p, labels: labels, k: 10)
        #expect(all.count == 5 && abs(all.map(\.probability).reduce(0, +) - 1) < 1e-12)
        #expect(abs(top3.map(\.probability).reduce(0, +) - (1 - p[0] - p[2])) < 1e-12)
        // Float input.
        let f = PredictionOutput.topK([Float(0.1), 0.7, 0.2], labels: ["x", "y", "z"], k: 2)
        #expect(f.map(\.label) == ["y", "z"] && f[0].probability == Double(Float(0.7)))
    }

    @Test func theThreeFormats() throws {
        let line = PredictionLine(input: "data/a b.wav", ranked: [RankedLabel(label: "seven", probability: 0.97314159),
                                                                RankedLabel(label: "one", probability: 0.0112)])
        #expect(PredictionOutput.line(line, format: .text) == "data/a b.wav  seven (0.9731)  one (0.0112)")
        #expect(PredictionOutput.line(line, format: .tsv) == "data/a b.wav\tseven\t0.973142\tone\t0.011200")
        let json = PredictionOutput.line(line, format: .json)
        #expect(!json.contains("\\/"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["input"] as? String == "data/a b.wav")
        let top = try #require(object["top"] as? [[String: Any]])
        #expect(top.count == 2 && top[0]["label"] as? String == "seven" && top[1]["label"] as? String == "one")
        #expect(top[0]["probability"] as? Double == 0.973142)
        // Tabs and newlines inside a TSV field cannot break the columns.
        let odd = PredictionLine(input: "x\ty", ranked: [RankedLabel(label: "a\nb", probability: 1)])
        #expect(PredictionOutput.line(odd, format: .tsv).split(separator: "\t").count == 3)
    }

    @Test func metricsInEachFormat() throws {
        let entries: [(name: String, value: MetricValue)] = [("accuracy", .fraction(0.8125)), ("loss", .number(0.43219, digits: 4)),
                                                             ("files", .count(16)), ("data", .text("test split"))]
        #expect(PredictionOutput.metrics(entries, format: .text) == ["accuracy: 81.25 %", "loss: 0.4322", "files: 16", "data: test split"])
        #expect(PredictionOutput.metrics(entries, format: .tsv) == ["accuracy\t0.812500", "loss\t0.4322", "files\t16", "data\ttest split"])
        let json = try #require(PredictionOutput.metrics(entries, format: .json).first)
        let o = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(o["accuracy"] as? Double == 0.8125 && o["loss"] as? Double == 0.4322 && o["files"] as? Int == 16)
        #expect(o["data"] as? String == "test split")
        #expect(PredictionOutput.jsonKey("BLEU-4") == "bleu_4" && PredictionOutput.jsonKey("next token accuracy") == "next_token_accuracy")
    }

    @Test func errorsFileIsWrittenAndReadsBack() throws {
        let path = NSTemporaryDirectory() + "errors-\(UInt32.random(in: 0...UInt32.max)).tsv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PredictionOutput.writeErrors([("a.wav", "one", "seven"), ("b\tc.wav", "two", "")], to: path)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines == ["input\treference\tprediction", "a.wav\tone\tseven", "b c.wav\ttwo\t", ""])
    }

    @Test func predictOptionsParseAndRejectBadValues() throws {
        let p = try PredictOnly.parse(["--top-k", "3", "--format", "json"])
        #expect(p.predict.topK == 3 && p.predict.format == .json)
        let d = try PredictOnly.parse([])
        #expect(d.predict.topK == 1 && d.predict.format == .text)
        #expect(throws: (any Error).self) { try PredictOnly.parse(["--top-k", "0"]) }
        #expect(throws: (any Error).self) { try PredictOnly.parse(["--format", "xml"]) }
    }
}
