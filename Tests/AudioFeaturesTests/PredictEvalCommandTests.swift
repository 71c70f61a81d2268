import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

@Suite struct SpeakerSplitTests {
    @Test func anUnknownSpeakerIsNamedWithTheSpeakersFound() throws {
        let utterances = ["one_alice_0", "two_bob_1", "one_carol_2", "two_alice_3"].map {
            Utterance(url: URL(fileURLWithPath: "/d/\($0).wav"), label: String($0.prefix(3)), speaker: String($0.split(separator: "_")[1]),
                      index: Int($0.split(separator: "_")[2]))
        }
        let error = caught { _ = try UtteranceDataset.split(utterances, by: .speaker("dave")) }
        #expect(error as? DatasetError == .unknownSpeaker(name: "dave", known: ["alice", "bob", "carol"]))
        #expect("\(error!)" == "--split: speaker 'dave' is unknown; speakers found: alice, bob, carol")
        let (train, test) = try UtteranceDataset.split(utterances, by: .speaker("bob"))
        #expect(train.count == 3 && test.map(\.speaker) == ["bob"])
    }
}

/// speech-classify's predict and eval formats through the built tool.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SpeechPredictEvalTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    /// A tone set and a short run on it with a random test split; returns (data, checkpoint).
    func trainedRun(_ dir: URL, seed: Int = 2, split: String = "random:3:0.25") throws -> (String, String) {
        let data = dir.appendingPathComponent("data")
        if !FileManager.default.fileExists(atPath: data.path) {
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try writeToneSet(into: data, perClass: 6, seed: 3)
        }
        let out = dir.path + "/run\(seed)"
        let r = try runProcess(tool, ["train", "--data", data.path, "--out", out, "--split", split, "--hidden", "6", "--batch", "4",
                                      "--steps", "6", "--eval-every", "6", "--threads", "1", "--seed", "\(seed)"])
        #expect(r.status == 0, "\(r.stderr)")
        return (data.path, out + "/best.safetensors")
    }

    @Test func predictTopKAndEvalFormatsOnTheRecordedTestSplit() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (data, ckpt) = try trainedRun(dir)
        let ck = try SpeechCheckpoint.read(path: ckpt)
        // The recorded split's test files: what eval reads without --data.
        let (_, testFiles) = try UtteranceDataset.split(try UtteranceDataset.list(folder: URL(fileURLWithPath: data), rule: try LabelRule(parsing: "field:0:_")),
                                                        by: .random(seed: 3, testFraction: 0.25))
        let errors = dir.path + "/errors.tsv"
        let e = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--format", "json", "--errors", errors])
        #expect(e.status == 0, "\(e.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(o["files"] as? Int == testFiles.count && o["total"] as? Int == testFiles.count)
        #expect(o["data"] as? String == "the run's test split (random:3:0.25) of \(URL(fileURLWithPath: data).standardizedFileURL.path)")
        let correct = try #require(o["correct"] as? Int)
        #expect(abs((o["utterance_accuracy"] as? Double ?? -1) - Double(correct) / Double(testFiles.count)) < 1e-6)
        // Errors: the wrong files, reference = the label in the file name, prediction = predict's label.
        let lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "input\treference\tprediction" && lines.count - 1 == testFiles.count - correct)
        for line in lines.dropFirst() {
            let f = line.split(separator: "\t").map(String.init)
            #expect(URL(fileURLWithPath: f[0]).lastPathComponent.hasPrefix(f[1] + "_") && f[1] != f[2])
            let p = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--format", "tsv", f[0]])
            #expect(p.stdout.split(separator: "\t")[1] == Substring(f[2]))
        }
        // Predict: three classes, all of them with --top-k 3, summing to one, best first.
        let file = testFiles[0].url.path
        let p = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--top-k", "3", "--format", "json", file])
        let po = try #require(try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as? [String: Any])
        let top = try #require(po["top"] as? [[String: Any]])
        let probabilities = top.map { $0["probability"] as? Double ?? -1 }
        #expect(po["input"] as? String == file && top.count == 3 && Set(top.compactMap { $0["label"] as? String }) == Set(ck.labels.names))
        #expect(probabilities == probabilities.sorted(by: >) && abs(probabilities.reduce(0, +) - 1) < 1e-5)
        let text = try runProcess(tool, ["predict", "--checkpoint", ckpt, file])
        #expect(text.stdout == "\(file)  \(top[0]["label"] as? String ?? "") (\(String(format: "%.4f", probabilities[0])))\n", "\(text.stdout)")
        // Text metrics with the confusion matrix; --data evaluates the whole folder and says so.
        let all = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--data", data])
        #expect(all.stdout.hasPrefix("data: all files of \(data)\nfiles: 18\nutterance accuracy: ") && all.stdout.contains("confusion matrix:"),
                "\(all.stdout)")
    }

    @Test func anEnsembleAveragesWhatEachCheckpointPredicts() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two seeds and two training splits: different initialisations and statistics. Eval reads
        // the first checkpoint's recorded test split.
        let (_, a) = try trainedRun(dir, seed: 2)
        let (_, b) = try trainedRun(dir, seed: 5, split: "random:4:0.25")
        #expect(try SpeechCheckpoint.read(path: a).normalizer != SpeechCheckpoint.read(path: b).normalizer)
        let e = try runProcess(tool, ["eval", "--checkpoint", a, "--checkpoint", b, "--format", "json", "--errors", dir.path + "/errors.tsv"])
        #expect(e.status == 0, "\(e.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let total = try #require(o["total"] as? Int), correct = try #require(o["correct"] as? Int)
        #expect(o["checkpoints_averaged"] as? Int == 2)
        // The same files through predict, once per checkpoint, probabilities averaged here.
        let wrongLines = try String(contentsOfFile: dir.path + "/errors.tsv", encoding: .utf8).split(separator: "\n").count - 1
        #expect(wrongLines == total - correct)
        let split = try UtteranceDataset.split(try UtteranceDataset.list(folder: dir.appendingPathComponent("data"), rule: try LabelRule(parsing: "field:0:_")),
                                               by: .random(seed: 3, testFraction: 0.25)).1
        let files = split.map(\.url.path)
        #expect(files.count == total)
        func probabilities(_ checkpoints: [String]) throws -> [[String: Double]] {
            let r = try runProcess(tool, ["predict"] + checkpoints.flatMap { ["--checkpoint", $0] } + ["--top-k", "3", "--format", "json"] + files)
            #expect(r.status == 0, "\(r.stderr)")
            return try r.stdout.split(separator: "\n").map { line in
                let top = try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["top"] as? [[String: Any]])
                return Dictionary(uniqueKeysWithValues: top.map { ($0["label"] as? String ?? "", $0["probability"] as? Double ?? -1) })
            }
        }
        let pa = try probabilities([a]), pb = try probabilities([b]), both = try probabilities([a, b])
        var agree = 0, differ = false
        for (i, file) in files.enumerated() {
            var mean: [String: Double] = [:]
            for (label, p) in pa[i] { mean[label] = (p + (pb[i][label] ?? .nan)) / 2 }
            for (label, p) in mean { #expect(abs((both[i][label] ?? -1) - p) < 1e-5, "\(file) \(label)") }
            if pa[i].contains(where: { abs($0.value - (pb[i][$0.key] ?? 0)) > 1e-3 }) { differ = true }
            let best = mean.max { $0.value < $1.value }!.key
            if URL(fileURLWithPath: file).lastPathComponent.hasPrefix(best + "_") { agree += 1 }
        }
        #expect(differ, "the two checkpoints predict the same probabilities: the average proves nothing")
        #expect(agree == correct)
        let none = try runProcess(tool, ["eval"])
        #expect(none.status != 0 && none.stderr.contains("--checkpoint"), "\(none.stderr)")
    }

    @Test func audioShorterThanOneFrameIsRefused() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, ckpt) = try trainedRun(dir)
        let short = dir.appendingPathComponent("short.wav")
        try AudioWriter.write(short, interleaved: [Float](repeating: 0.1, count: 80), channels: 1, sampleRate: 8000)
        let r = try runProcess(tool, ["predict", "--checkpoint", ckpt, short.path])
        #expect(r.status == 1 && r.stdout.isEmpty)
        #expect(r.stderr == "speech-classify: \(short.path): 10 ms of audio, shorter than one 25 ms analysis frame: too short to classify\n", "\(r.stderr)")
    }
}

/// The sequence (CTC) task's predict and eval formats through the built tool.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SpeechSequencePredictEvalTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    @Test func sequenceEvalCountsAgreeWithTheErrorsFileAndPredict() throws {
        let source = try makeTempDir("seqfmt-source"), set = try makeTempDir("seqfmt-set")
        defer { for u in [source, set] { try? FileManager.default.removeItem(at: u) } }
        try SpeechSequenceTaskTests.writeToneDigits(into: source)
        var c = ConnectedDigits.Options()
        c.trainCount = 24; c.testCount = 6; c.testSpeakers = ["cc"]; c.digits = 2...3; c.gapMilliseconds = 40...120; c.seed = 2
        _ = try ConnectedDigits.make(source: source, out: set, options: c)
        let out = set.path + "/run"
        let r = try runProcess(tool, ["train", "--data", set.path, "--task", "sequence", "--hidden", "8", "--batch", "4", "--steps", "20",
                                      "--eval-every", "20", "--threads", "1", "--lr", "0.01", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let ckpt = out + "/best.safetensors"
        let errors = set.path + "/errors.tsv"
        let e = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--format", "json", "--errors", errors])
        #expect(e.status == 0, "\(e.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let files = try #require(o["files"] as? Int), exact = try #require(o["exact"] as? Int)
        #expect(files == 6 && o["label_error_rate"] != nil)
        // The run's split is its train/ and test/ folders, and the data line says so.
        #expect((o["data"] as? String)?.hasPrefix("the run's test split (train/ and test/ folders) of ") == true, "\(o["data"] ?? "")")
        #expect(abs((o["sequence_accuracy"] as? Double ?? -1) - Double(exact) / Double(files)) < 1e-6)
        let lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n")
        #expect(lines.count - 1 == files - exact)
        for line in lines.dropFirst() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            // The reference is the digit sequence in the file name; the prediction is what predict prints.
            let digits = URL(fileURLWithPath: f[0]).lastPathComponent.split(separator: "_")[0]
            #expect(f[1].replacingOccurrences(of: " ", with: "") == String(digits) && f[1] != f[2])
            let p = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--format", "tsv", "--top-k", "3", f[0]])
            let fields = p.stdout.dropLast().split(separator: "\t", omittingEmptySubsequences: false)
            #expect(fields.count == 3 && fields[1] == Substring(f[2]), "\(p.stdout)")
        }
        // --adapt-warp: the test part has one speaker (cc), so the adapted evaluation is the
        // evaluation at the factor reported for cc, and predict --adapt-warp prints what
        // predict --warp prints at that factor.
        let adapted = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--adapt-warp", "--format", "json"])
        #expect(adapted.status == 0, "\(adapted.stderr)")
        let report = adapted.stderr.split(separator: "\n").filter { $0.hasPrefix("eval: --adapt-warp: cc warped by ") }
        #expect(report.count == 1, "\(adapted.stderr)")
        let factor = try #require(report.first.flatMap { $0.split(separator: " ").dropFirst(5).first }.map(String.init))
        // "(mean -log p per label X; unwarped Y[, paired t T >= C])" for a factor kept, or with 1
        // kept "(… X; lowest Z at W, paired t T below C)": the kept factor is no less certain than
        // none, and a lower mean elsewhere was not significant.
        let line = try #require(report.first)
        let measures = line.split(whereSeparator: { " ();,".contains($0) }).compactMap { Double($0) }
        #expect(line.contains("(mean -log p per label ") && measures.count >= 3, "\(report)")
        if line.contains("; unwarped ") {
            #expect(measures[1] <= measures[2], "\(report)")
        } else {
            #expect(factor == "1.00" && measures[2] <= measures[1] && measures.count == 6 && measures[4] < measures[5], "\(report)")
        }
        let fixed = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--warp", factor, "--format", "json"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        let a = try #require(try JSONSerialization.jsonObject(with: Data(adapted.stdout.utf8)) as? [String: Any])
        let f = try #require(try JSONSerialization.jsonObject(with: Data(fixed.stdout.utf8)) as? [String: Any])
        for key in ["label_error_rate", "exact", "substitutions", "deletions", "insertions", "loss"] {
            #expect("\(a[key] ?? "-")" == "\(f[key] ?? "-")", "\(key): \(a[key] ?? "-") vs \(f[key] ?? "-")")
        }
        #expect((a["data"] as? String)?.hasSuffix(", filterbank warp adapted per speaker") == true)
        let wavs = try FileManager.default.contentsOfDirectory(atPath: set.path + "/test").sorted()
            .filter { $0.hasSuffix(".wav") }.map { set.path + "/test/" + $0 }
        let pa = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--adapt-warp"] + wavs)
        let pw = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--warp", factor] + wavs)
        #expect(pa.status == 0 && pw.status == 0 && pa.stdout == pw.stdout && wavs.count == 6, "\(pa.stderr)\(pw.stderr)")
        let text = try runProcess(tool, ["eval", "--checkpoint", ckpt])
        #expect(text.stdout.contains("\nlabel error rate: ") && text.stdout.contains("\nsequence accuracy: ") && !text.stdout.contains("confusion"))
    }
}
