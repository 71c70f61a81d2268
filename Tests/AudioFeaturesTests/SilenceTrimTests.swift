import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

/// A 0.2 s tone (amplitude `amplitude`) with `before` and `after` seconds of digital silence
/// around it, at 8 kHz. Both pads are whole frame steps, so the tone meets the same frame grid.
func paddedTone(before: Double, after: Double, amplitude: Float = 0.5) -> [Float] {
    let rate = 8000.0
    let tone = (0..<1600).map { t in amplitude * Float(sin(2 * Double.pi * 440 * Double(t) / rate)) }
    return [Float](repeating: 0, count: Int(before * rate)) + tone + [Float](repeating: 0, count: Int(after * rate))
}

/// `FeatureConfig.trimDecibels`: leading and trailing silence dropped before normalisation.
@Suite struct SilenceTrimTests {
    @Test("kept frames: first to last within the threshold, widened by the margin and clipped to the file")
    func keptFrames() {
        // 40 dB is a factor 10^4 in energy: ln 10^4 = 9.21, so with a peak at 10 the threshold is 0.79.
        let e: [Float] = [0, 0, 0, 0, 0, 10, 0.5, 1, 0, 0, 0, 0, 0, 0]
        #expect(SilenceTrim.keptFrames(logEnergies: e, decibels: 40) == 2..<11)   // frames 5...7, ±3
        #expect(SilenceTrim.keptFrames(logEnergies: e, decibels: 40, margin: 0) == 5..<8)
        // 20 dB (threshold 5.39) keeps the peak alone.
        #expect(SilenceTrim.keptFrames(logEnergies: e, decibels: 20, margin: 1) == 4..<7)
        // The margin stops at the file's ends.
        #expect(SilenceTrim.keptFrames(logEnergies: [9, 0, 0, 0, 0, 0, 8], decibels: 10, margin: 3) == 0..<7)
        #expect(SilenceTrim.keptFrames(logEnergies: [9, 0, 0, 0, 0, 0, 0, 0], decibels: 10, margin: 2) == 0..<3)
        #expect(SilenceTrim.keptFrames(logEnergies: [2, 2, 2], decibels: 10) == 0..<3)
        #expect(SilenceTrim.keptFrames(logEnergies: [], decibels: 10) == 0..<0)
    }

    @Test("the extractor keeps the untrimmed rows from the first to the last loud frame (±3), found here from c0, the log energy")
    func extractorKeepsTheLoudRows() throws {
        var plain = FeatureConfig(); plain.includeDeltas = false; plain.includeDeltaDeltas = false
        var trimmed = plain; trimmed.trimDecibels = 40
        let x = paddedTone(before: 0.3, after: 0.3)
        let all = try MFCCExtractor(config: plain).features(of: x)
        let kept = try MFCCExtractor(config: trimmed).features(of: x)
        let c0 = (0..<all.frames).map { all.values[$0 * all.features] }
        let threshold = c0.max()! - Float(4 * log(10.0))
        let first = c0.firstIndex { $0 >= threshold }! - 3, last = c0.lastIndex { $0 >= threshold }! + 3
        #expect(kept.frames == last - first + 1)
        #expect(kept.values == Array(all.values[(first * 13)..<((last + 1) * 13)]))
        // The tone covers frames 30...49 whole (samples 2400..<4000, 200-sample frames every 80):
        // what is kept is the tone, the frames that overlap it in part, and the margin.
        #expect(first >= 30 - 2 - 3 && first <= 30 - 3 && last >= 49 + 3 && last <= 49 + 2 + 3, "kept \(first)...\(last)")
        #expect(all.frames == 79)   // 6400 samples: 1 + ⌈(6400 − 200) / 80⌉
    }

    @Test("with trimming the padding around a word does not change its features; without it, it does")
    func paddingDoesNotMatter() throws {
        var c = FeatureConfig(); c.utteranceMeanNormalization = true
        var t = c; t.trimDecibels = 40
        let a = paddedTone(before: 0.3, after: 0.3), b = paddedTone(before: 0.8, after: 0.1)
        #expect(try MFCCExtractor(config: t).features(of: a) == MFCCExtractor(config: t).features(of: b))
        #expect(try MFCCExtractor(config: c).features(of: a) != MFCCExtractor(config: c).features(of: b))
        // The threshold is relative to the loudest frame: 20 dB quieter keeps the same frames.
        let quiet = a.map { $0 * 0.1 }
        #expect(try MFCCExtractor(config: t).features(of: quiet).frames == MFCCExtractor(config: t).features(of: a).frames)
    }

    @Test("the setting is written only when set, reads back, and is checked")
    func configuration() throws {
        let plain = String(decoding: try FeatureConfig().jsonData(), as: UTF8.self)
        #expect(!plain.contains("trimDecibels"))
        var c = FeatureConfig(); c.trimDecibels = 35
        let back = try FeatureConfig.decode(jsonData: try c.jsonData())
        #expect(back.trimDecibels == 35 && back == c)
        c.trimDecibels = 5
        #expect(throws: FeatureError.self) { try c.validate() }
        #expect(FeatureConfig.frontEndProblem(melFilters: 26, cepstra: 13, trimDecibels: 101)?.option == "--trim-silence")
        #expect(FeatureConfig.frontEndProblem(melFilters: 26, cepstra: 13, trimDecibels: 40) == nil)
        // The resume fingerprint names it only when set.
        var o = SpeechTrainingOptions()
        #expect(TrainingFingerprint.fields(of: o)["trim_db"] == nil)
        o.trimDecibels = 35
        #expect(TrainingFingerprint.fields(of: o)["trim_db"] == "35")
        // Label tracks belong to the untrimmed frames.
        var trimmed = FeatureConfig(); trimmed.trimDecibels = 40
        let error = caught { _ = try LabelTrack.labelledFeatures(audio: URL(fileURLWithPath: "/nonexistent/a.wav"),
                                                                 extractor: try MFCCExtractor(config: trimmed)) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("label tracks"))
    }
}

/// `--trim-silence` through the built tool.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SilenceTrimCommandTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    @Test func aTrimmedModelGivesTheSameAnswerWhateverThePaddingAndRecordsTheSetting() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try writeToneSet(into: data, perClass: 6, seed: 8)
        let a = dir.appendingPathComponent("a.wav").path, b = dir.appendingPathComponent("b.wav").path
        try AudioWriter.write(URL(fileURLWithPath: a), interleaved: paddedTone(before: 0.3, after: 0.3), channels: 1, sampleRate: 8000)
        try AudioWriter.write(URL(fileURLWithPath: b), interleaved: paddedTone(before: 0.8, after: 0.1), channels: 1, sampleRate: 8000)
        var answers: [String: [String: [String: Double]]] = [:]
        for (name, flags) in [("trimmed", ["--trim-silence", "40"]), ("plain", [])] {
            let out = dir.path + "/" + name
            let r = try runProcess(tool, ["train", "--data", data.path, "--out", out, "--hidden", "6", "--batch", "4", "--steps", "6",
                                          "--eval-every", "6", "--threads", "1", "--no-augment", "--utterance-cmn"] + flags)
            #expect(r.status == 0, "\(r.stderr)")
            let p = try runProcess(tool, ["predict", "--checkpoint", out + "/best.safetensors", "--format", "json", "--top-k", "3", a, b])
            #expect(p.status == 0, "\(p.stderr)")
            answers[name] = try predictedProbabilities(p.stdout)
        }
        #expect(try SpeechCheckpoint.read(path: dir.path + "/trimmed/best.safetensors").features.trimDecibels == 40)
        #expect(try SpeechCheckpoint.read(path: dir.path + "/plain/best.safetensors").features.trimDecibels == nil)
        let t = try #require(answers["trimmed"]), p = try #require(answers["plain"])
        #expect(t[a] != nil && t[a] == t[b])
        #expect(p[a] != nil && p[a] != p[b])
        // The two together (utterance task: each fed its own frames) give the mean of each one's answer.
        let both = try predictedProbabilities(try runProcess(tool, ["predict", "--checkpoint", dir.path + "/trimmed/best.safetensors",
                                                                    "--checkpoint", dir.path + "/plain/best.safetensors",
                                                                    "--format", "json", "--top-k", "3", a, b]).stdout)
        for file in [a, b] {
            let e = try #require(both[file]), x = try #require(t[file]), y = try #require(p[file])
            for (label, q) in e { #expect(abs(q - (x[label]! + y[label]!) / 2) < 2e-6, "\(file) \(label)") }
        }
        // `features` prints the frames such a model is fed.
        let fa = try runProcess(tool, ["features", "--trim-silence", "40", a]), fb = try runProcess(tool, ["features", "--trim-silence", "40", b])
        let whole = try runProcess(tool, ["features", a])
        let expected = try MFCCExtractor(config: FeatureConfig(meanNormalization: false, varianceNormalization: false, melFilters: 26,
                                                               cepstra: 13, trimDecibels: 40)).features(of: paddedTone(before: 0.3, after: 0.3))
        #expect(fa.status == 0 && fa.stdout == fb.stdout && fa.stderr.contains("\(expected.frames) frames"), "\(fa.stderr)")
        #expect(whole.stderr.contains("79 frames") && expected.frames < 40, "\(whole.stderr)")
        // `features --warp` prints the features under that filterbank warp.
        let warped = try runProcess(tool, ["features", "--warp", "1.1", a])
        let reference = try MFCCExtractor(config: FeatureConfig(), frequencyWarp: 1.1).features(ofFile: URL(fileURLWithPath: a))
        #expect(warped.status == 0 && warped.stdout == reference.csvText() && warped.stdout != whole.stdout, "\(warped.stderr)")
        let refused = try runProcess(tool, ["features", "--warp", "1.5", a])
        #expect(refused.status != 0 && refused.stdout.isEmpty && refused.stderr.contains("--warp 1.5 is outside 0.7...1.3")
            && refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
    }

    @Test func refusedWithTheFrameTaskAndOutOfRange() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runProcess(tool, ["train", "--data", dir.path, "--task", "frame", "--trim-silence", "40", "--out", dir.path + "/run"])
        #expect(r.status != 0 && r.stderr.contains("--trim-silence") && r.stderr.contains("frame task"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/run/best.safetensors"))
        let f = try runProcess(tool, ["features", "--trim-silence", "3", dir.path + "/x.wav"])
        #expect(f.status != 0 && f.stderr.contains("--trim-silence: must be 10...100 dB"), "\(f.stderr)")
        #expect(f.stderr.split(separator: "\n").count == 1, "\(f.stderr)")
    }
}
