import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

@Suite("make-sequences: connected digits from isolated recordings")
struct ConnectedDigitsTests {
    static let rate = 8000
    static let speakers = ["ann", "bob", "cat"]

    /// The constant sample value of speaker s's recording of digit d (distinct per recording).
    static func level(digit: Int, speaker: Int) -> Int16 { Int16(1000 + 500 * digit + 100 * speaker) }

    /// Isolated "recordings": 400 samples (50 ms) of a constant level, written by hand.
    static func makeSource() throws -> URL {
        let dir = try makeTempDir("cdsource")
        for (s, speaker) in speakers.enumerated() {
            for d in 0..<10 {
                let data = int16Bytes([Int16](repeating: level(digit: d, speaker: s), count: 400))
                try writeBytes(wavBytes(channels: 1, sampleRate: UInt32(rate), bitsPerSample: 16, data: data),
                               to: dir.appendingPathComponent("\(d)_\(speaker)_0.wav"))
            }
        }
        return dir
    }

    static func options(seed: UInt64) -> ConnectedDigits.Options {
        var o = ConnectedDigits.Options()
        o.trainCount = 12; o.testCount = 5; o.testSpeakers = ["bob"]; o.seed = seed
        return o
    }

    static func files(_ dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for part in ["train", "test"] {
            let folder = dir.appendingPathComponent(part)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
                out["\(part)/\(name)"] = try Data(contentsOf: folder.appendingPathComponent(name))
            }
        }
        return out
    }

    @Test("same seed: byte-identical sets; another seed: another set")
    func deterministic() throws {
        let source = try Self.makeSource()
        let a = try makeTempDir("cda"), b = try makeTempDir("cdb"), c = try makeTempDir("cdc")
        defer { for u in [source, a, b, c] { try? FileManager.default.removeItem(at: u) } }
        _ = try ConnectedDigits.make(source: source, out: a, options: Self.options(seed: 7))
        _ = try ConnectedDigits.make(source: source, out: b, options: Self.options(seed: 7))
        _ = try ConnectedDigits.make(source: source, out: c, options: Self.options(seed: 8))
        let fa = try Self.files(a), fb = try Self.files(b), fc = try Self.files(c)
        #expect(fa.count == (12 + 5) * 2 + 2)
        #expect(fa == fb)
        #expect(fa["train/manifest.csv"] != fc["train/manifest.csv"])
    }

    @Test("test speakers are disjoint from training speakers; tracks, names and audio agree")
    func disjointAndConsistent() throws {
        let source = try Self.makeSource()
        let out = try makeTempDir("cdout")
        defer { for u in [source, out] { try? FileManager.default.removeItem(at: u) } }
        let summary = try ConnectedDigits.make(source: source, out: out, options: Self.options(seed: 3))
        #expect(summary.sampleRate == Self.rate)
        var seen: [String: Set<String>] = [:]
        for part in ["train", "test"] {
            let folder = out.appendingPathComponent(part)
            let manifest = try UtteranceDataset.readManifest(folder.appendingPathComponent("manifest.csv"))
            #expect(manifest.count == (part == "train" ? 12 : 5))
            for u in manifest {
                let speaker = try #require(u.speaker)
                seen[part, default: []].insert(speaker)
                let s = try #require(Self.speakers.firstIndex(of: speaker))
                #expect(u.url.lastPathComponent.hasPrefix(u.label + "_"))
                #expect((3...7).contains(u.label.count))
                let samples = try AudioLoader.loadMono(u.url)
                let track = try String(contentsOf: u.url.deletingPathExtension().appendingPathExtension("txt"), encoding: .utf8)
                let rows = track.split(separator: "\n").map { $0.split(separator: "\t") }
                #expect(rows.map { String($0[2]) }.joined() == u.label)
                var previousEnd = 0
                for (k, row) in rows.enumerated() {
                    let start = Int((Double(row[0])! * Double(Self.rate)).rounded())
                    let end = Int((Double(row[1])! * Double(Self.rate)).rounded())
                    #expect(end - start == 400)
                    let gap = start - previousEnd
                    #expect(gap >= 400 && gap <= 2400, "gap \(gap) samples before digit \(k)")  // 50-300 ms
                    #expect(samples[previousEnd..<start].allSatisfy { $0 == 0 }, "silence between digits")
                    // The segment is the recording of that digit by that speaker at a gain within ±3 dB.
                    let expected = Float(Self.level(digit: Int(String(row[2]))!, speaker: s)) / 32768
                    let mean = samples[start..<end].reduce(0, +) / 400
                    let ratio = mean / expected
                    #expect(ratio > 0.70 && ratio < 1.42, "segment level ratio \(ratio)")
                    #expect(samples[start..<end].allSatisfy { abs($0 - mean) < 1e-4 }, "one recording, one gain")
                    previousEnd = end
                }
                let tail = samples.count - previousEnd
                #expect(tail >= 400 && tail <= 2400)
            }
        }
        #expect(seen["test"] == ["bob"])
        #expect(seen["train"]!.isSubset(of: ["ann", "cat"]) && !seen["train"]!.isEmpty)
    }

    @Test("an unknown test speaker is refused naming the speakers found; a set is never written over another")
    func refusals() throws {
        let source = try Self.makeSource()
        let out = try makeTempDir("cdrefuse")
        defer { for u in [source, out] { try? FileManager.default.removeItem(at: u) } }
        var o = Self.options(seed: 1)
        o.testSpeakers = ["zed"]
        #expect { try ConnectedDigits.make(source: source, out: out, options: o) } throws: { error in
            "\(error)".contains("zed") && "\(error)".contains("ann, bob, cat")
        }
        _ = try ConnectedDigits.make(source: source, out: out, options: Self.options(seed: 1))
        #expect { try ConnectedDigits.make(source: source, out: out, options: Self.options(seed: 1)) } throws: { error in
            "\(error)".contains("manifest.csv") && "\(error)".contains("already exists")
        }
    }
}

/// `speech-classify make-sequences` through the built tool: a noise floor under the gaps by
/// default, digital silence with `--noise-snr off`.
@Suite(.enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct MakeSequencesCommandTests {
    @Test func theGapsHaveANoiseFloorUnlessSwitchedOff() throws {
        let tool = builtExecutable("speech-classify") ?? "speech-classify"
        let source = try ConnectedDigitsTests.makeSource(), out = try makeTempDir("cdcli")
        defer { for u in [source, out] { try? FileManager.default.removeItem(at: u) } }
        /// The first gap of every file (before its first digit, from the label track).
        func leadingGaps(_ folder: String, _ extra: [String]) throws -> [[Float]] {
            let r = try runProcess(tool, ["make-sequences", "--source", source.path, "--out", out.path + "/" + folder,
                                          "--train-count", "6"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let dir = out.appendingPathComponent(folder)
            return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".wav") }.map { name in
                let samples = try AudioLoader.loadMono(dir.appendingPathComponent(name))
                let track = try String(contentsOf: dir.appendingPathComponent(String(name.dropLast(4)) + ".txt"), encoding: .utf8)
                let start = Double(track.split(separator: "\t").first.map(String.init) ?? "") ?? 0
                return Array(samples.prefix(Int(start * 8000)))
            }
        }
        let floor = try leadingGaps("floor", [])
        let silent = try leadingGaps("silent", ["--noise-snr", "off"])
        #expect(floor.count == 6 && silent.count == 6)
        #expect(floor.allSatisfy { gap in !gap.isEmpty && gap.contains { $0 != 0 } })
        #expect(silent.allSatisfy { gap in !gap.isEmpty && gap.allSatisfy { $0 == 0 } })
        let bad = try runProcess(tool, ["make-sequences", "--source", source.path, "--out", out.path + "/bad", "--noise-snr", "loud"])
        #expect(bad.status != 0 && bad.stderr.contains("--noise-snr"))
    }

    @Test func featuresAndTrainRefuseABadFrontEndWithTheSameLine() throws {
        let tool = builtExecutable("speech-classify") ?? "speech-classify"
        let source = try ConnectedDigitsTests.makeSource()
        defer { try? FileManager.default.removeItem(at: source) }
        let wav = source.appendingPathComponent("1_ann_0.wav").path
        let features = try runProcess(tool, ["features", wav, "--cepstra", "30"])
        let train = try runProcess(tool, ["train", "--data", source.path, "--cepstra", "30", "--out", source.path + "/run"])
        let line = "--cepstra: must be 1...26, the mel filters (got 30)"
        #expect(features.status == 1 && features.stderr.contains(line), "\(features.stderr)")
        #expect(train.status == 1 && train.stderr.contains(line), "\(train.stderr)")
        #expect(!FileManager.default.fileExists(atPath: source.path + "/run"))
    }
}

@Suite("speech-classify sequence task (CTC) end to end")
struct SpeechSequenceTaskTests {
    /// Isolated "digits" 1, 2, 3 as tones of 400, 1200 and 2400 Hz (0.1–0.14 s, a little
    /// noise), three takes per digit for each of three speakers; `padded`: with 40–80 ms of
    /// fainter noise before and after each, as a recording has.
    static func writeToneDigits(into dir: URL, padded: Bool = false) throws {
        var rng = SeededRandom(seed: padded ? 23 : 21)
        let rate = 8000
        for speaker in ["aa", "bb", "cc"] {
            for (d, f) in [(1, 400.0), (2, 1200.0), (3, 2400.0)] {
                for take in 0..<3 {
                    let before = padded ? Int(Double(rate) * Double(rng.uniform(0.04, 0.08))) : 0
                    let after = padded ? Int(Double(rate) * Double(rng.uniform(0.04, 0.08))) : 0
                    let n = Int(Double(rate) * Double(rng.uniform(0.10, 0.14)))
                    let amp = rng.uniform(0.3, 0.7)
                    var x = [Float](repeating: 0, count: before + n + after)
                    for t in 0..<n {
                        let phase = 2 * Double.pi * f * Double(t) / Double(rate)
                        x[before + t] = amp * Float(sin(phase)) + 0.01 * rng.uniform(-1, 1)
                    }
                    for t in Array(0..<before) + Array((before + n)..<(before + n + after)) { x[t] = 0.003 * rng.uniform(-1, 1) }
                    try AudioWriter.write(dir.appendingPathComponent("\(d)_\(speaker)_\(take).wav"), interleaved: x, channels: 1, sampleRate: rate)
                }
            }
        }
    }

    /// Connected tone digits of two speakers for training, a third speaker's for testing:
    /// a few seconds of training in debug bring the held-out label error rate to 10 % or less
    /// (an untrained model emits blanks: 100 %).
    @Test func learnsConnectedToneDigitsOfAnUnheardSpeaker() throws {
        let source = try makeTempDir("seqsource"), set = try makeTempDir("seqset")
        defer { for u in [source, set] { try? FileManager.default.removeItem(at: u) } }
        try Self.writeToneDigits(into: source)
        var c = ConnectedDigits.Options()
        c.trainCount = 48; c.testCount = 12; c.testSpeakers = ["cc"]; c.digits = 2...4; c.gapMilliseconds = 40...120; c.seed = 2
        _ = try ConnectedDigits.make(source: source, out: set, options: c)

        var o = SpeechTrainingOptions()
        o.dataPath = set.path; o.task = .sequence; o.cell = .gru; o.hidden = 16; o.bidirectional = true
        o.batch = 8; o.valFraction = 0.15
        let data = try SpeechTraining.prepare(options: o, seed: 1, threads: 2)
        #expect(data.labels.names == [SpeechTask.blank, "1", "2", "3"])
        #expect(data.test.count == 12 && data.train.count + data.validation.count == 48)
        #expect(data.test.allSatisfy { $0.path.contains("_cc_") })
        #expect(data.test.allSatisfy { (2...4).contains($0.labelSequence.count) && !$0.labelSequence.contains(0) })

        let report = try trainSpeech(o, data: data, epochs: 25, out: set.path + "/run")
        let ler = try #require(report.test.labelErrorRate)
        #expect(ler <= 0.10, "held-out label error rate \(ler)")
        #expect(report.summary.metrics["test_label_error_rate"] == ler)
        #expect(report.lines.first?.hasPrefix("test label error rate:") == true)
    }
}
