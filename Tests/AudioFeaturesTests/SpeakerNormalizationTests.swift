import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

/// Speaker-level CMVN (`--speaker-cmvn`): statistics per speaker, applied in loading, augmentation,
/// eval and predict alike.
@Suite struct SpeakerNormalizationTests {
    /// Mean and variance of feature `k` over all frames of `matrices`, in double precision.
    func moments(_ matrices: [FeatureMatrix], _ k: Int) -> (mean: Double, variance: Double) {
        var s = 0.0, q = 0.0, n = 0.0
        for m in matrices {
            for t in 0..<m.frames { let x = Double(m.values[t * m.features + k]); s += x; q += x * x; n += 1 }
        }
        let mean = s / n
        return (mean, q / n - mean * mean)
    }

    func config(speaker: Bool = true) -> FeatureConfig {
        var c = FeatureConfig()
        c.speakerNormalization = speaker
        return c
    }

    @Test("each speaker's files come out with zero mean and unit variance per feature; raw minus that speaker's mean over its standard deviation")
    func perSpeakerMoments() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 6, seed: 4)
        let files = try UtteranceDataset.list(folder: dir)
        let raw = try SpeechCorpus.load(files, task: .utterance, config: config(speaker: false), threads: 2)
        let normalized = try SpeechCorpus.load(files, task: .utterance, config: config(), threads: 2)
        #expect(raw.speakers.isEmpty && Set(normalized.speakers.keys) == ["s0", "s1", "s2"])
        #expect(normalized.loaded.map(\.speaker) == files.map(\.speaker))
        for speaker in ["s0", "s1", "s2"] {
            let mine = normalized.loaded.indices.filter { normalized.loaded[$0].speaker == speaker }
            let before = mine.map { raw.loaded[$0].features }, after = mine.map { normalized.loaded[$0].features }
            for k in 0..<39 {
                let (m0, v0) = moments(before, k), (m1, v1) = moments(after, k)
                #expect(abs(m1) < 1e-4 && abs(v1 - 1) < 1e-3, "\(speaker) feature \(k): mean \(m1), variance \(v1)")
                // One value checked against the raw features and the moments computed here.
                let x = Double(before[1].values[3 * 39 + k]), y = Double(after[1].values[3 * 39 + k])
                #expect(abs(y - (x - m0) / sqrt(v0)) < 1e-3 * max(1, abs(y)), "\(speaker) feature \(k)")
            }
        }
    }

    @Test("a speaker recorded 6 dB quieter gives the same normalised features (log energy shifts, the rest does not)")
    func quieterSpeaker() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 3, seed: 5)
        let quiet = try UtteranceDataset.list(folder: dir).filter { $0.speaker == "s1" }
        let loud = dir.appendingPathComponent("quieter")
        try FileManager.default.createDirectory(at: loud, withIntermediateDirectories: true)
        for u in quiet {
            let x = try AudioLoader.loadMono(u.url, sampleRate: 8000)
            try AudioWriter.write(loud.appendingPathComponent(u.url.lastPathComponent), interleaved: x.map { $0 * 0.5 }, channels: 1, sampleRate: 8000)
        }
        let a = try SpeechCorpus.load(quiet, task: .utterance, config: config(), threads: 1).loaded
        let b = try SpeechCorpus.load(try UtteranceDataset.list(folder: loud), task: .utterance, config: config(), threads: 1).loaded
        let rawA = try SpeechCorpus.load(quiet, task: .utterance, config: config(speaker: false), threads: 1).loaded
        let rawB = try SpeechCorpus.load(try UtteranceDataset.list(folder: loud), task: .utterance, config: config(speaker: false), threads: 1).loaded
        #expect(abs(moments(rawA.map(\.features), 0).mean - moments(rawB.map(\.features), 0).mean - log(4)) < 0.01)
        var worst: Float = 0
        for (x, y) in zip(a, b) { for (u, v) in zip(x.features.values, y.features.values) { worst = max(worst, abs(u - v)) } }
        // Up to the 16-bit rounding of the quieter copy (the raw log energies differ by log 4).
        #expect(worst < 1e-2, "largest difference \(worst)")
    }

    @Test("training refuses a file whose name has no speaker, naming it and the flag")
    func needsSpeakers() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 3, seed: 6)
        let odd = dir.appendingPathComponent("low_x.wav")
        try FileManager.default.copyItem(at: try UtteranceDataset.list(folder: dir)[0].url, to: odd)
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.split = "random:1:0.3"; o.speakerCMVN = true
        let error = caught { _ = try SpeechTraining.prepare(options: o, seed: 1, threads: 1) }
        #expect(error as? DatasetError == .noSpeaker(path: odd.path))
        #expect("\(error!)".hasPrefix(odd.path + ": no speaker") && "\(error!)".contains("--speaker-cmvn"))
    }

    @Test("augmented features are normalised with their speaker's statistics, then the training set's")
    func augmentationUsesTheSpeaker() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 4, seed: 7)
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.split = "speaker:s2"; o.speakerCMVN = true; o.valFraction = 0
        var identity = AugmentationConfig()
        identity.gainDecibels = 0...0
        o.augmentation = identity
        let data = try SpeechTraining.prepare(options: o, seed: 1, threads: 2)
        #expect(data.features.speakerNormalization && Set(data.speakerStatistics.keys) == ["s0", "s1"])
        #expect(data.train.allSatisfy { $0.audio != nil && $0.speaker != nil } && data.test.allSatisfy { $0.speaker == "s2" })
        let augmenter = SpeechAugmenter(config: identity, features: data.features, normalizer: data.normalizer,
                                        speakerStatistics: data.speakerStatistics, threads: 2)
        // A gain of 0 dB leaves the audio as it is: the features must be the prepared ones.
        let out = augmenter.augment(data.train, seed: 3)
        var worst: Float = 0
        for (x, y) in zip(out, data.train) { for (u, v) in zip(x.features.values, y.features.values) { worst = max(worst, abs(u - v)) } }
        #expect(worst < 1e-4, "largest difference \(worst)")
        // The same with the other training speaker's statistics swapped in differs.
        let swapped = SpeechAugmenter(config: identity, features: data.features, normalizer: data.normalizer,
                                      speakerStatistics: ["s0": data.speakerStatistics["s1"]!, "s1": data.speakerStatistics["s0"]!], threads: 2)
        let differs = swapped.augment(data.train, seed: 3).map(\.features) != out.map(\.features)
        #expect(differs)
    }

    @Test("the setting is written only when on: earlier configurations keep their bytes and read back without it")
    func configurationBytes() throws {
        let plain = String(decoding: try FeatureConfig().jsonData(), as: UTF8.self)
        #expect(!plain.contains("speakerNormalization"))
        #expect(try FeatureConfig.decode(jsonData: Data(plain.utf8)) == FeatureConfig())
        let on = try FeatureConfig.decode(jsonData: try config().jsonData())
        #expect(on.speakerNormalization && on == config())
        var o = SpeechTrainingOptions()
        #expect(TrainingFingerprint.fields(of: o)["speaker_cmvn"] == nil)
        o.speakerCMVN = true
        #expect(TrainingFingerprint.fields(of: o)["speaker_cmvn"] == "1")
    }
}

/// `--speaker-cmvn` through the built tool: train records it, eval and predict normalise per speaker.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SpeakerNormalizationCommandTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    /// A tone set in `dir/data` (made once per folder).
    func toneSet(in dir: URL, seed: UInt64) throws -> URL {
        let data = dir.appendingPathComponent("data")
        if !FileManager.default.fileExists(atPath: data.path) {
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try writeToneSet(into: data, perClass: 6, seed: seed)
        }
        return data
    }

    /// Six steps of training on `data` with speaker s1 held out and `flag`'s normalisation into
    /// `out`; the run's result.
    func train(_ data: URL, out: String, flag: String, more: [String] = []) throws -> ProcessResult {
        let r = try runProcess(tool, ["train", "--data", data.path, "--out", out, "--split", "speaker:s1", flag] + more + ["--hidden", "6",
                                      "--batch", "4", "--steps", "6", "--eval-every", "6", "--threads", "1", "--no-augment"])
        #expect(r.status == 0, "\(r.stderr)")
        return r
    }

    @Test func evalAndPredictNormaliseEachSpeakerOverTheFilesGiven() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try toneSet(in: dir, seed: 3)
        let out = dir.path + "/run"
        let r = try train(data, out: out, flag: "--speaker-cmvn")
        let ckpt = out + "/best.safetensors"
        #expect(try SpeechCheckpoint.read(path: ckpt).features.speakerNormalization)
        let test = try UtteranceDataset.list(folder: data).filter { $0.speaker == "s1" }.map(\.url.path)
        let other = try UtteranceDataset.list(folder: data).filter { $0.speaker == "s0" }.map(\.url.path)
        // predict: a speaker's files get the same lines whether or not another speaker's come along.
        let alone = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--format", "tsv", "--top-k", "3"] + test)
        let mixed = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--format", "tsv", "--top-k", "3"] + other + test)
        #expect(alone.status == 0 && mixed.status == 0, "\(alone.stderr)\(mixed.stderr)")
        let aloneLines = alone.stdout.split(separator: "\n")
        #expect(aloneLines.count == test.count && Array(mixed.stdout.split(separator: "\n").suffix(test.count)) == aloneLines)
        // One file on its own is normalised with its own statistics: not what it gets among its speaker's files.
        let single = try runProcess(tool, ["predict", "--checkpoint", ckpt, "--format", "tsv", "--top-k", "3", test[0]])
        #expect(single.status == 0 && single.stdout.split(separator: "\n").first != aloneLines.first)
        // eval of the recorded split (speaker s1) counts what predict says over the same files.
        let e = try runProcess(tool, ["eval", "--checkpoint", ckpt, "--format", "json"])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let right = zip(test, aloneLines).filter { path, line in
            URL(fileURLWithPath: path).lastPathComponent.hasPrefix(line.split(separator: "\t")[1] + "_")
        }.count
        #expect(o["files"] as? Int == test.count && o["correct"] as? Int == right, "\(e.stdout)")
        // The summary's test accuracy is the same figure.
        let summary = try #require(try JSONSerialization.jsonObject(with: Data((r.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        let metrics = try #require(summary["metrics"] as? [String: Any])
        #expect(abs((metrics["test_accuracy"] as? Double ?? -1) - Double(right) / Double(test.count)) < 1e-4)
    }

    /// The second member normalises per speaker, or (utterance task: one row per file whatever
    /// the features) computes 8 cepstra instead of 13.
    @Test(arguments: [["--speaker-cmvn"], ["--utterance-cmn", "--cepstra", "8"]])
    func anEnsembleOfDifferentlyNormalisedModelsAveragesEachOnItsOwnFeatures(second: [String]) throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try toneSet(in: dir, seed: 11)
        var checkpoints: [String] = []
        for (name, flags) in [("first", ["--utterance-cmn"]), ("second", second)] {
            _ = try train(data, out: dir.path + "/" + name, flag: flags[0], more: Array(flags.dropFirst()))
            checkpoints.append(dir.path + "/" + name + "/best.safetensors")
        }
        let test = try UtteranceDataset.list(folder: data).filter { $0.speaker == "s1" }.map(\.url.path)
        let alone = try checkpoints.map { c in
            try predictedProbabilities(try runProcess(tool, ["predict", "--checkpoint", c, "--format", "json", "--top-k", "3"] + test).stdout)
        }
        let both = try predictedProbabilities(try runProcess(tool, ["predict", "--checkpoint", checkpoints[0], "--checkpoint", checkpoints[1],
                                                           "--format", "json", "--top-k", "3"] + test).stdout)
        var right = 0, differs = false
        for file in test {
            let a = try #require(alone[0][file]), b = try #require(alone[1][file]), e = try #require(both[file])
            for (label, p) in e { #expect(abs(p - (a[label]! + b[label]!) / 2) < 2e-6, "\(file) \(label)") }
            differs = differs || a.keys.contains { abs(a[$0]! - b[$0]!) > 1e-3 }
            if URL(fileURLWithPath: file).lastPathComponent.hasPrefix(e.max { $0.value < $1.value }!.key + "_") { right += 1 }
        }
        #expect(differs, "the two members should not agree on every file")
        let e = try runProcess(tool, ["eval", "--checkpoint", checkpoints[0], "--checkpoint", checkpoints[1], "--format", "json"])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(o["files"] as? Int == test.count && o["correct"] as? Int == right, "\(e.stdout)\(e.stderr)")
    }
}
