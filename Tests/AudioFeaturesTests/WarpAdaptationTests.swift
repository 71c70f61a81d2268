import Foundation
import Testing
@testable import AudioFeatures
import RecurrentCore
import TestSupport

/// A scorer whose probability row for an example is the example's first frame (two classes).
private struct FirstFrameScorer: SpeechScorer {
    var task: SpeechTask { .utterance }
    var classes: Int { 2 }
    func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        (examples.flatMap { Array($0.features.values[0..<2]) }, 0)
    }
    func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        ([], 0)
    }
}

/// A frame-task scorer (two classes) whose probability rows are the examples' frames.
private struct FramesScorer: SpeechScorer {
    var task: SpeechTask { .frame }
    var classes: Int { 2 }
    func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        (examples.flatMap(\.features.values), 0)
    }
}

/// A sequence-task scorer whose decoded sequence for an example is given by its path.
private struct DecodedScorer: SpeechScorer {
    var decoded: [String: (labels: [Int], probability: Double)]
    var task: SpeechTask { .sequence }
    var classes: Int { 3 }
    func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        Issue.record("a sequence model's uncertainty reads its decoded sequences, not its frames")
        return ([Float](repeating: 1.0 / 3, count: 3 * examples.reduce(0) { $0 + $1.features.frames }), 0)
    }
    func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        #expect(beamWidth == 1)
        return (examples.map { decoded[$0.path]! }, 0)
    }
}

/// An example of `frames` frames whose first frame is `row`.
private func example(_ path: String, speaker: String?, row: [Float], frames: Int) -> SpeechExample {
    var e = SpeechExample(path: path, features: FeatureMatrix(frames: frames, features: 2,
                                                              values: row + [Float](repeating: 0.5, count: 2 * (frames - 1))))
    e.speaker = speaker
    return e
}

@Suite struct WarpAdaptationTests {
    @Test func entropyInNats() {
        #expect(abs(WarpAdaptation.entropy([Float](repeating: 0.25, count: 4)) - log(4)) < 1e-9)
        #expect(WarpAdaptation.entropy([1, 0, 0] as [Float]) == 0)
        let h = -(0.9 * log(0.9) + 0.1 * log(0.1))
        #expect(abs(WarpAdaptation.entropy([0.9, 0.1] as [Float]) - h) < 1e-7)
    }

    /// Three groups, three factors: a clear minimum, a three-way tie (1 wins) and a tie between
    /// 0.9 and 1.1 below 1 (the smaller is the lowest; one file allows no test, so 1 is kept).
    @Test func choosesTheLowestMeanEntropyPerGroupAndBreaksTiesTowardOne() {
        let warps = [0.9, 1.0, 1.1]
        let groups = ["a", "a", "a", "b", "c"]
        let half: [Float] = [0.5, 0.5], sure: [Float] = [1, 0], lean: [Float] = [0.9, 0.1]
        // Rows per factor, files in the order of `groups`.
        let tables: [[Float]] = [
            half + half + half + lean + sure,      // 0.9: a 0.693, b 0.325, c 0
            lean + half + half + lean + half,      // 1.0: a 0.570, b 0.325, c 0.693
            sure + lean + lean + lean + sure,      // 1.1: a 0.217, b 0.325, c 0
        ]
        let entropies = tables.map { t in (0..<groups.count).map { WarpAdaptation.entropy(t[(2 * $0)..<(2 * $0 + 2)]) } }
        let decided = WarpAdaptation.decide(warps: warps, uncertainties: entropies, groups: groups)
        #expect(decided.mapValues(\.lowest) == ["a": 2, "b": 1, "c": 0])
        // a: differences h(0.9) − 0, log 2 − h(0.9), log 2 − h(0.9) over 3 files; 2 degrees of
        // freedom, two alternatives: the 2.5 % point of Student's t with 2 degrees is 4.303.
        let h9 = WarpAdaptation.entropy(lean), l2 = log(2.0)
        let d = [h9, l2 - h9, l2 - h9], m = d.reduce(0, +) / 3
        let sd = (d.reduce(0.0) { $0 + ($1 - m) * ($1 - m) } / 2).squareRoot()
        #expect(abs(decided["a"]!.t! - m / (sd / 3.0.squareRoot())) < 1e-9)
        #expect(abs(decided["a"]!.critical! - 4.3027) < 1e-3)
        #expect(decided["a"]!.t! > 4.3027 && decided["a"]!.chosen == 2)
        #expect(decided["b"]!.t == nil && decided["c"]!.t == nil)
        #expect(decided.mapValues(\.chosen) == ["a": 2, "b": 1, "c": 1])
    }

    /// A lower mean from a few files that improve much while the rest get worse is not kept;
    /// the same mean improvement spread evenly over the files is.
    @Test func keepsAWarpOnlyWhenTheImprovementIsSignificant() {
        let warps = [1.0, 1.08]
        let n = 40
        let groups = [String](repeating: "noisy", count: n) + [String](repeating: "even", count: n)
        let unwarped = [Double](repeating: 0.5, count: 2 * n)
        // noisy: 4 files gain 1.0, 36 lose 0.1 (mean gain 0.01); even: every file gains 0.01 ± 0.001.
        let noisy = (0..<n).map { $0 < 4 ? -0.5 : 0.6 }
        let even = (0..<n).map { 0.49 + ($0 % 2 == 0 ? 0.001 : -0.001) }
        let decided = WarpAdaptation.decide(warps: warps, uncertainties: [unwarped, noisy + even], groups: groups)
        #expect(decided["noisy"]!.lowest == 1 && decided["even"]!.lowest == 1)
        #expect(decided["noisy"]!.chosen == 0 && decided["even"]!.chosen == 1)
        // noisy: mean 0.01, sd sqrt(40 · 0.099 / 39 ... ): t = 0.01 / (sd / √40), about 0.2.
        let d = noisy.map { 0.5 - $0 }, m = d.reduce(0, +) / Double(n)
        let sd = (d.reduce(0.0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)).squareRoot()
        #expect(abs(decided["noisy"]!.t! - m / (sd / Double(n).squareRoot())) < 1e-9 && decided["noisy"]!.t! < 1)
        #expect(decided["even"]!.t! > 50)
        // One alternative, 39 degrees of freedom: the 5 % point is 1.685.
        #expect(abs(decided["even"]!.critical! - 1.6849) < 1e-3)
    }

    /// Student's t upper tail against closed forms (1 and 2 degrees of freedom) and tabulated
    /// values; critical values against the usual tables.
    @Test func studentTailsAndCriticalValues() {
        for t in [0.0, 0.3, 1.0, 2.5, 10.0, 100.0] {
            #expect(abs(WarpAdaptation.studentUpperTail(t, degrees: 1) - (0.5 - atan(t) / Double.pi)) < 1e-12, "\(t)")
            #expect(abs(WarpAdaptation.studentUpperTail(t, degrees: 2) - 0.5 * (1 - t / (t * t + 2).squareRoot())) < 1e-12, "\(t)")
        }
        #expect(abs(WarpAdaptation.studentUpperTail(1.5, degrees: 5) - 0.096952) < 1e-6)
        #expect(abs(WarpAdaptation.studentUpperTail(3.0, degrees: 29) - 0.0027496) < 1e-7)
        #expect(WarpAdaptation.studentUpperTail(.infinity, degrees: 3) == 0)
        #expect(abs(WarpAdaptation.criticalT(degrees: 1, alternatives: 1) - 6.3138) < 1e-4)
        #expect(abs(WarpAdaptation.criticalT(degrees: 1, alternatives: 2) - 12.7062) < 1e-4)
        #expect(abs(WarpAdaptation.criticalT(degrees: 10, alternatives: 2) - 2.2281) < 1e-4)
        #expect(abs(WarpAdaptation.criticalT(degrees: 499, alternatives: 7) - 2.4586) < 1e-4)
        #expect(WarpAdaptation.pairedT([0.2, 0.2, 0.2]) == .infinity && WarpAdaptation.pairedT([0, 0]) == 0)
    }

    /// Frame and sequence models: a file's entropy is the mean of its frames', in input order
    /// whatever order the length-sorted batches took.
    @Test func fileEntropyOfAFrameModelIsTheMeanOverItsFrames() {
        let frames: [[[Float]]] = [
            [[0.5, 0.5], [1, 0], [0.9, 0.1]],                 // (log 2 + 0 + h(0.9)) / 3
            [[0.9, 0.1]],                                      // h(0.9)
            [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [1, 0]],      // 3 log 2 / 4
        ]
        let examples = frames.enumerated().map { k, rows in
            SpeechExample(path: "f\(k).wav", features: FeatureMatrix(frames: rows.count, features: 2, values: rows.flatMap { $0 }))
        }
        let h9 = -(0.9 * log(0.9) + 0.1 * log(0.1))
        let expected = [(log(2) + h9) / 3, h9, 3 * log(2) / 4]
        for batchSize in [1, 2, 64] {
            let h = WarpAdaptation.fileUncertainties(FramesScorer(), examples, batchSize: batchSize)
            #expect(h.count == 3 && zip(h, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "batch \(batchSize): \(h)")
        }
    }

    /// Sequence models: a file's uncertainty is −log P / labels of its decoded sequence (an
    /// empty one counts as one label), in input order.
    @Test func fileUncertaintyOfASequenceModelIsTheDecodedLogProbabilityPerLabel() {
        let decoded: [String: (labels: [Int], probability: Double)] = [
            "a.wav": ([1, 2, 1], 0.125), "b.wav": ([], 0.5), "c.wav": ([2], 0.9), "d.wav": ([1, 1], 1e-300),
        ]
        let lengths = ["a.wav": 7, "b.wav": 2, "c.wav": 5, "d.wav": 9]
        let examples = ["a.wav", "b.wav", "c.wav", "d.wav"].map {
            SpeechExample(path: $0, features: FeatureMatrix(frames: lengths[$0]!, features: 1, values: [Float](repeating: 0, count: lengths[$0]!)))
        }
        let expected = [log(8) / 3, log(2), -log(0.9), 300 * log(10) / 2]
        for batchSize in [1, 3, 64] {
            let h = WarpAdaptation.fileUncertainties(DecodedScorer(decoded: decoded), examples, batchSize: batchSize)
            #expect(h.count == 4 && zip(h, expected).allSatisfy { abs($0 - $1) < 1e-9 * max(1, $1) }, "batch \(batchSize): \(h)")
        }
    }

    /// `adapt` takes each file's version from its group's factor, whatever order the length-sorted
    /// batches scored them in; files without a speaker are groups of their own and keep 1.
    @Test func adaptTakesEachFileFromItsSpeakersFactor() {
        let warps = [0.92, 1.0, 1.08]
        // x (three files): sure at 1.08; y (three files): sure at 0.92; the lone file: surer at
        // 0.92 than at 1, but one file allows no test.
        let rows: [[[Float]]] = [
            [[0.6, 0.4], [0.5, 0.5], [0.55, 0.45], [1, 0], [0.99, 0.01], [1, 0], [1, 0]],
            [[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.6, 0.4]],
            [[1, 0], [0.99, 0.01], [1, 0], [0.5, 0.5], [0.6, 0.4], [0.55, 0.45], [0.5, 0.5]],
        ]
        let names: [(String, String?, Int)] = [("1_x_0.wav", "x", 9), ("2_x_1.wav", "x", 3), ("3_x_2.wav", "x", 4),
                                               ("1_y_0.wav", "y", 5), ("2_y_1.wav", "y", 2), ("3_y_2.wav", "y", 7),
                                               ("lone.wav", nil, 1)]
        let candidates = rows.map { table in
            zip(names, table).map { n, row in example(n.0, speaker: n.1, row: row, frames: n.2) }
        }
        let (adapted, choices) = WarpAdaptation.adapt(FirstFrameScorer(), warps: warps, candidates: candidates)
        #expect(adapted.map(\.path) == names.map(\.0))
        #expect(adapted.map { Array($0.features.values[0..<2]) }
            == [[1, 0], [0.99, 0.01], [1, 0], [1, 0], [0.99, 0.01], [1, 0], [0.6, 0.4]])
        #expect(choices.map(\.group) == ["lone.wav", "x", "y"])
        #expect(choices.map(\.warp) == [1.0, 1.08, 0.92])
        #expect(choices[0].lowestWarp == 0.92 && choices[0].t == nil)
        let x = choices[1]
        #expect(abs(x.uncertainty - WarpAdaptation.entropy([0.99, 0.01] as [Float]) / 3) < 1e-9)
        let unwarped = [[0.8, 0.2], [0.6, 0.4], [0.7, 0.3]].reduce(0.0) { $0 + WarpAdaptation.entropy($1 as [Float]) } / 3
        #expect(abs((x.unwarpedUncertainty ?? 0) - unwarped) < 1e-9)
        #expect(x.lowestWarp == 1.08 && x.t! >= x.critical!)
    }
}

/// `eval` and `predict` with `--warp` and `--adapt-warp` through the built tool.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct WarpAdaptationCommandTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    /// A tone set (speakers s0, s1, s2) in `dir/data` and a small model trained on it for `steps` steps.
    func trainedToneModel(in dir: URL, perClass: Int, seed: UInt64, steps: Int) throws -> (checkpoint: String, data: String, files: [String]) {
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try writeToneSet(into: data, perClass: perClass, seed: seed)
        let out = dir.path + "/run"
        let r = try runProcess(tool, ["train", "--data", data.path, "--out", out, "--hidden", "6", "--batch", "6", "--steps", "\(steps)",
                                      "--eval-every", "\(steps)", "--threads", "1", "--no-augment", "--utterance-cmn", "--split", "random:3:0.3"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: data.path).sorted().map { data.path + "/" + $0 }
        return (out + "/best.safetensors", data.path, files)
    }

    /// The factor `eval --adapt-warp` reports for each speaker is the one whose `predict --warp`
    /// probabilities, taken from the tool and scored here, have the lowest mean entropy, or 1 when
    /// that factor's paired t against 1 (computed here) is below the critical value; the
    /// adapted accuracy is that of those predictions; a fixed `--warp` changes the features.
    @Test func adaptedFactorsHaveTheLowestMeanEntropyOfEveryFactor() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (checkpoint, data, files) = try trainedToneModel(in: dir, perClass: 6, seed: 21, steps: 8)
        let e = try runProcess(tool, ["eval", "--checkpoint", checkpoint, "--data", data, "--adapt-warp", "--format", "json"])
        #expect(e.status == 0, "\(e.stderr)")
        // "eval: --adapt-warp: s0 warped by 1.04 (mean entropy ...; unwarped ...)"
        var chosen: [String: Double] = [:]
        for line in e.stderr.split(separator: "\n") where line.contains("--adapt-warp:") {
            let words = line.split(separator: " ")
            if let k = words.firstIndex(of: "by"), k + 1 < words.count { chosen[String(words[k - 2])] = Double(words[k + 1]) }
        }
        #expect(chosen.keys.sorted() == ["s0", "s1", "s2"], "\(e.stderr)")
        var byFactor: [Double: [String: [String: Double]]] = [:]
        for w in WarpAdaptation.grid {
            let p = try runProcess(tool, ["predict", "--checkpoint", checkpoint, "--warp", String(w), "--format", "json", "--top-k", "3"] + files)
            #expect(p.status == 0, "\(p.stderr)")
            byFactor[w] = try predictedProbabilities(p.stdout)
        }
        #expect(byFactor[0.88] != byFactor[1.0] && byFactor[1.0]?.count == files.count)
        var correct = 0
        for speaker in ["s0", "s1", "s2"] {
            let mine = files.filter { ($0 as NSString).lastPathComponent.split(separator: "_")[1] == speaker }
            func meanEntropy(_ w: Double) -> Double {
                mine.reduce(0.0) { sum, f in sum - byFactor[w]![f]!.values.reduce(0.0) { $0 + ($1 > 0 ? $1 * log($1) : 0) } } / Double(mine.count)
            }
            func entropies(_ w: Double) -> [Double] {
                mine.map { f in -byFactor[w]![f]!.values.reduce(0.0) { $0 + ($1 > 0 ? $1 * log($1) : 0) } }
            }
            let w = try #require(chosen[speaker])
            let lowest = WarpAdaptation.grid.min { meanEntropy($0) < meanEntropy($1) }!
            if w != 1 {
                for other in WarpAdaptation.grid { #expect(meanEntropy(w) <= meanEntropy(other) + 1e-5, "\(speaker): \(w) vs \(other)") }
            }
            if abs(meanEntropy(lowest) - meanEntropy(1)) > 1e-4 {
                // A clear minimum elsewhere: kept exactly when its paired t reaches the critical value.
                let d = zip(entropies(1), entropies(lowest)).map { $0 - $1 }, n = Double(d.count), m = d.reduce(0, +) / n
                let t = m / ((d.reduce(0.0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)) / n).squareRoot()
                let critical = WarpAdaptation.criticalT(degrees: d.count - 1, alternatives: WarpAdaptation.grid.count - 1)
                #expect(w == (t >= critical ? lowest : 1), "\(speaker): kept \(w), lowest \(lowest), t \(t) against \(critical)")
            }
            for f in mine {
                let p = byFactor[w]![f]!
                let top = p.max { $0.value < $1.value }!.key
                if top == String((f as NSString).lastPathComponent.split(separator: "_")[0]) { correct += 1 }
            }
        }
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect(summary["correct"] as? Int == correct, "\(e.stdout)")
        #expect((summary["data"] as? String)?.hasSuffix(", filterbank warp adapted per speaker") == true, "\(e.stdout)")
        // predict --adapt-warp over the same files gives the adapted probabilities.
        let pa = try runProcess(tool, ["predict", "--checkpoint", checkpoint, "--adapt-warp", "--format", "json", "--top-k", "3"] + files)
        #expect(pa.status == 0 && pa.stderr.contains("predict: --adapt-warp: s1 warped by"), "\(pa.stderr)")
        let adapted = try predictedProbabilities(pa.stdout)
        for f in files {
            let speaker = String((f as NSString).lastPathComponent.split(separator: "_")[1])
            let expected = byFactor[chosen[speaker]!]![f]!
            for (label, q) in expected { #expect(abs(adapted[f]![label]! - q) < 1e-6, "\(f) \(label)") }
        }
    }

    @Test func refusedOutOfRangeAndTogether() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (checkpoint, _, files) = try trainedToneModel(in: dir, perClass: 6, seed: 2, steps: 1)
        let file = files[0]
        for (args, message) in [(["--warp", "1.5"], "--warp 1.5 is outside 0.7...1.3"),
                                (["--warp", "1.1", "--adapt-warp"], "--warp and --adapt-warp exclude each other")] {
            let p = try runProcess(tool, ["predict", "--checkpoint", checkpoint] + args + [file])
            #expect(p.status != 0 && p.stderr.contains(message) && p.stdout.isEmpty, "\(p.stderr)")
            #expect(p.stderr.split(separator: "\n").count == 1, "\(p.stderr)")
        }
    }
}
