import Foundation
import RecurrentCore
import Testing
import TrainingCLI
@testable import AudioFeatures

/// Writes a synthetic utterance set: three classes of 0.2–0.35 s signals at 8 kHz with random
/// amplitude and background noise — "low" (a 300–500 Hz tone), "high" (a 1800–2400 Hz tone)
/// and "sweep" (a chirp rising from 300 to 2500 Hz) — named `{class}_{speaker}_{index}.wav`.
func writeToneSet(into dir: URL, perClass: Int, seed: UInt64) throws {
    var rng = SeededRandom(seed: seed)
    let rate = 8000
    for (c, name) in ["low", "high", "sweep"].enumerated() {
        for i in 0..<perClass {
            let n = Int(Double(rate) * Double(rng.uniform(0.2, 0.35)))
            let amp = rng.uniform(0.2, 0.8)
            var phase = 0.0
            var x = [Float](repeating: 0, count: n)
            let f0 = Double(c == 0 ? rng.uniform(300, 500) : rng.uniform(1800, 2400))
            for t in 0..<n {
                let f = c == 2 ? 300 + 2200 * Double(t) / Double(n) : f0
                phase += 2 * Double.pi * f / Double(rate)
                x[t] = amp * Float(sin(phase)) + 0.02 * rng.uniform(-1, 1)
            }
            try AudioWriter.write(dir.appendingPathComponent("\(name)_s\(i % 3)_\(i).wav"), interleaved: x, channels: 1, sampleRate: rate)
        }
    }
}

/// A small network configuration for tests.
private func tinyConfig(classes: Int, mode: SequenceClassifierConfig.Mode = .manyToOne) -> SequenceClassifierConfig {
    SequenceClassifierConfig(inputSize: FeatureConfig().featureCount, cell: .gru, layers: 1, hidden: 12, bidirectional: true,
                             classes: classes, mode: mode, pooling: .mean)
}

/// Trains with the engine (Adam 1e-2, cosine to 5 %, clip 5, validation every epoch) and
/// evaluates `best.safetensors` on the test examples.
func trainSpeech(_ o: SpeechTrainingOptions, data: SpeechTrainingData, epochs: Int, out: String, seed: UInt64 = 1) throws -> SpeechRunReport {
    var t = TrainingConfiguration()
    t.learningRate = 1e-2; t.lrSchedule = .cosine; t.lrFloor = 0.05; t.clip = 5; t.epochs = epochs; t.seed = seed; t.threads = 2
    t.outDirectory = out
    t.evalEvery = SpeechBatchSource.batchesPerEpoch(count: data.train.count, batchSize: o.batch)
    let engine = TrainingEngine(configuration: t, task: try SpeechTraining.task(options: o, data: data, training: t))
    engine.progressOutput = { _ in }
    return try SpeechTraining.run(engine, data: data)
}

@Suite struct SpeechTrainingTests {
    /// 3 classes (chance 33 %): after a few seconds of training in debug the held-out accuracy
    /// must reach 90 %, a margin of more than 55 points over chance.
    @Test func shortUtteranceTrainingOnSynthesisedAudioBeatsChance() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 16, seed: 7)
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.split = "random:3:0.25"; o.cell = .gru; o.hidden = 12; o.bidirectional = true
        o.batch = 8; o.valFraction = 0.2
        let data = try SpeechTraining.prepare(options: o, seed: 1, threads: 2)
        #expect(data.labels.names == ["high", "low", "sweep"])
        #expect(data.train.count + data.validation.count + data.test.count == 48)
        #expect(data.test.count == 12)
        // Stratified: each class gives round(0.2 × its training files) to validation.
        var perClass: [Int: Int] = [:]
        for e in data.train + data.validation { perClass[e.label, default: 0] += 1 }
        #expect(data.validation.count == perClass.values.map { Int((0.2 * Double($0)).rounded()) }.reduce(0, +))
        #expect(Set(data.validation.map(\.label)) == [0, 1, 2])
        #expect(data.skipped.isEmpty)
        // Validation comes out of the training files only, never out of the test split.
        let testPaths = Set(data.test.map(\.path))
        #expect(data.validation.allSatisfy { !testPaths.contains($0.path) })
        let report = try trainSpeech(o, data: data, epochs: 12, out: dir.appendingPathComponent("run").path)
        // Fewer than 20 batches of 8 an epoch: every epoch is ceil(train / 8) batches.
        #expect(data.train.count < 160)
        #expect(report.summary.steps == 12 * ((data.train.count + 7) / 8))
        #expect(report.summary.stepLosses.suffix(5).reduce(0, +) < report.summary.stepLosses.prefix(5).reduce(0, +))
        #expect(report.test.accuracy >= 0.9, "held-out accuracy \(report.test.accuracy)")
    }

    @Test func frameTaskLearnsToneSegmentsAndScoresSegments() throws {
        // Each file: silence, a tone "a" (500 Hz) or "b" (2000 Hz), silence, another tone, silence.
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededRandom(seed: 11)
        let rate = 8000
        for i in 0..<16 {
            var x: [Float] = [], track = ""
            func silence(_ s: Double) { for _ in 0..<Int(s * Double(rate)) { x.append(0.01 * rng.uniform(-1, 1)) } }
            func tone(_ label: String, _ s: Double) {
                let start = Double(x.count) / Double(rate)
                let f: Double = label == "a" ? 500 : 2000
                for t in 0..<Int(s * Double(rate)) { x.append(0.5 * Float(sin(2 * Double.pi * f * Double(t) / Double(rate)))) }
                track += "\(start)\t\(Double(x.count) / Double(rate))\t\(label)\n"
            }
            silence(0.1); tone(i % 2 == 0 ? "a" : "b", 0.15); silence(0.1); tone(i % 4 < 2 ? "b" : "a", 0.15); silence(0.1)
            let url = dir.appendingPathComponent("ab_v\(i % 4)_\(i).wav")
            try AudioWriter.write(url, interleaved: x, channels: 1, sampleRate: rate)
            try track.write(to: LabelTrack.labelFileURL(forAudio: url), atomically: true, encoding: .utf8)
        }
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.task = .frame; o.split = "speaker:v3"; o.cell = .gru; o.hidden = 12; o.bidirectional = true
        o.batch = 4; o.valFraction = 0.25
        let data = try SpeechTraining.prepare(options: o, seed: 2, threads: 2)
        #expect(data.labels.names == ["silence", "a", "b"])
        #expect(data.test.count == 4 && data.validation.count == 3 && data.train.count == 9)
        let report = try trainSpeech(o, data: data, epochs: 15, out: dir.appendingPathComponent("run").path)
        // Frame chance is about 52 % (silence share); a trained model must do far better.
        #expect(report.test.accuracy >= 0.85, "frame accuracy \(report.test.accuracy)")
        let seg = try #require(report.test.segments)
        #expect(seg.reference == 8)
        #expect(report.summary.metrics["val_segment_accuracy"] != nil)
    }

    @Test func batchedProbabilitiesEqualOneAtATime() throws {
        // Padding a short example next to a long one must not change its outputs.
        let F = FeatureConfig().featureCount
        var rng = SeededRandom(seed: 5)
        func example(_ frames: Int) -> SpeechExample {
            SpeechExample(path: "x", features: FeatureMatrix(frames: frames, features: F, values: (0..<(frames * F)).map { _ in rng.normal() }),
                          label: 0, frameLabels: [Int32](repeating: 1, count: frames))
        }
        let a = example(3), b = example(9)
        for mode in [SequenceClassifierConfig.Mode.manyToOne, .manyToMany] {
            let model = try SpeechClassifier(config: tinyConfig(classes: 3, mode: mode), seed: 4, threads: 2)
            let both = model.probabilities([a, b]).probabilities
            let alone = model.probabilities([a]).probabilities + model.probabilities([b]).probabilities
            #expect(both.count == alone.count)
            #expect(zip(both, alone).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }
}

@Suite struct SpeechCheckpointTests {
    private func smallCheckpoint() throws -> SpeechCheckpoint {
        var norm = FeatureNormalizer(featureCount: FeatureConfig().featureCount)
        try norm.accumulate(FeatureMatrix(frames: 2, features: 39, values: (0..<78).map { Float($0) / 7 }))
        let model = try SpeechClassifier(config: tinyConfig(classes: 4), seed: 9)
        return SpeechCheckpoint(model: model, features: FeatureConfig(), normalizer: norm,
                                labels: LabelSet(names: ["yes", "no", "up", "down"]), training: "{\"epoch\":3}")
    }

    @Test func roundTripKeepsTensorsMetadataAndOutputs() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ck = try smallCheckpoint()
        let path = dir.appendingPathComponent("m.safetensors").path
        try ck.write(to: path)
        let back = try SpeechCheckpoint.read(path: path)
        #expect(back.labels.names == ["yes", "no", "up", "down"])
        #expect(back.features == ck.features)
        #expect(back.normalizer == ck.normalizer)
        #expect(back.model.config == ck.model.config)
        #expect(back.training == "{\"epoch\":3}")
        #expect(back.model.network.stateDict == ck.model.network.stateDict)
        let archive = try SafeTensors.read(path: path)
        #expect(archive.metadata["format"] == "rnn-suite/speech/1")
        #expect(archive.tensor("rnn.weight_ih_l0_reverse")?.shape == [36, 39])
        #expect(archive.tensor("classifier.weight")?.shape == [4, 24])
        let x = SpeechExample(path: "x", features: FeatureMatrix(frames: 5, features: 39, values: (0..<195).map { sin(Float($0)) }))
        #expect(back.model.probabilities([x]).probabilities == ck.model.probabilities([x]).probabilities)
    }

    /// A checkpoint in the `rnn-suite/speech/1` layout written before the shared checkpoint
    /// wrapper: the format, labels, model and training entries and every tensor spelled out
    /// here, not produced by `SpeechCheckpoint.write`.
    @Test func checkpointInTheOriginalLayoutLoads() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var norm = FeatureNormalizer(featureCount: 39)
        try norm.accumulate(FeatureMatrix(frames: 2, features: 39, values: (0..<78).map { Float($0) / 9 }))
        let meta = [
            "format": "rnn-suite/speech/1",
            "features": String(decoding: try FeatureConfig().jsonData(), as: UTF8.self),
            "normalizer": String(decoding: try norm.jsonData(), as: UTF8.self),
            "labels": #"{"names":["yes","no"]}"#,
            "model": #"{"bidirectional":false,"cell":"gru","classes":2,"dropout":0,"hidden":5,"input_size":39,"layers":1,"mode":"many-to-one","pooling":"mean","projection":0,"projection_activation":"tanh","unit_forget_bias":false}"#,
            "training": #"{"epoch":2}"#,
            "step": "40",
        ]
        func tensor(_ name: String, _ shape: [Int], _ k: Int) -> NamedTensor {
            NamedTensor(name: name, shape: shape, values: (0..<shape.reduce(1, *)).map { Float(($0 * 5 + k) % 13) / 13 - 0.5 })
        }
        let tensors = [tensor("rnn.weight_ih_l0", [15, 39], 1), tensor("rnn.weight_hh_l0", [15, 5], 2),
                       tensor("rnn.bias_ih_l0", [15], 3), tensor("rnn.bias_hh_l0", [15], 4),
                       tensor("classifier.weight", [2, 5], 5), tensor("classifier.bias", [2], 6)]
        let path = dir.appendingPathComponent("old.safetensors").path
        try SafeTensors.write(tensors, metadata: meta, to: path)

        let ck = try SpeechCheckpoint.read(path: path)
        #expect(ck.labels.names == ["yes", "no"])
        #expect(ck.training == #"{"epoch":2}"#)
        #expect(ck.normalizer == norm)
        #expect(ck.model.config == SequenceClassifierConfig(inputSize: 39, cell: .gru, layers: 1, hidden: 5, classes: 2, pooling: .mean))
        let loaded = Dictionary(uniqueKeysWithValues: ck.model.network.stateDict.map { ($0.name, $0) })
        #expect(loaded.count == tensors.count)
        for t in tensors { #expect(loaded[t.name] == t) }
        // Writing it again keeps the layout's keys.
        let again = dir.appendingPathComponent("again.safetensors").path
        try ck.write(to: again, extra: ["step": "40"])
        #expect(Set(try SafeTensors.read(path: again).metadata.keys) == Set(meta.keys))
    }

    @Test func wrongFormatAndInconsistentMetadataAreNamedErrors() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ck = try smallCheckpoint()
        let good = try { () throws -> SafeTensorsArchive in
            let p = dir.appendingPathComponent("g.safetensors").path
            try ck.write(to: p)
            return try SafeTensors.read(path: p)
        }()
        func rewrite(_ name: String, _ change: (inout [String: String]) -> Void) throws -> String {
            var meta = good.metadata
            change(&meta)
            let p = dir.appendingPathComponent(name).path
            try SafeTensors.write(good.tensors, metadata: meta, to: p)
            return p
        }
        let lm = try rewrite("lm.safetensors") { $0["format"] = "rnn-suite/lm/1" }
        let e1 = caught { _ = try SpeechCheckpoint.read(path: lm) }
        #expect("\(e1!)" == "\(lm): checkpoint format is 'rnn-suite/lm/1', expected 'rnn-suite/speech/1'")
        let extra = dir.appendingPathComponent("extra.safetensors").path
        try SafeTensors.write(good.tensors + [NamedTensor(name: "rnn.weight_ih_l1", shape: [1], values: [0])], metadata: good.metadata, to: extra)
        #expect("\(caught { _ = try SpeechCheckpoint.read(path: extra) }!)" == "\(extra): unexpected tensor 'rnn.weight_ih_l1' for this configuration")
        let missing = dir.appendingPathComponent("missing.safetensors").path
        try SafeTensors.write(good.tensors.filter { $0.name != "classifier.bias" }, metadata: good.metadata, to: missing)
        #expect("\(caught { _ = try SpeechCheckpoint.read(path: missing) }!)" == "\(missing): tensor 'classifier.bias' is missing")
        let fewer = try rewrite("labels.safetensors") { $0["labels"] = "{\"names\":[\"a\",\"b\"]}" }
        let e2 = caught { _ = try SpeechCheckpoint.read(path: fewer) }
        #expect("\(e2!)".hasPrefix(fewer + ": metadata 'labels'"))
        let noStats = try rewrite("stats.safetensors") { $0.removeValue(forKey: "normalizer") }
        let e3 = caught { _ = try SpeechCheckpoint.read(path: noStats) }
        #expect(e3 as? SpeechCheckpointError == .badMetadata(path: noStats, key: "normalizer", reason: "missing"))
        // A truncated file: the safetensors reader names it.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.appendingPathComponent("g.safetensors").path))
        let cut = dir.appendingPathComponent("cut.safetensors")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        let e4 = caught { _ = try SpeechCheckpoint.read(path: cut.path) }
        #expect(e4 is CheckpointError)
        #expect("\(e4!)".hasPrefix(cut.path + ": "))
        #expect(!"\(e4!)".contains("\n"))
    }
}

@Suite struct SpeechDataTests {
    @Test func everyBadFileIsSkippedWithOneLineNamingIt() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 2, seed: 1)
        let tone = (0..<800).map { Float(sin(Double($0) * 0.3)) * 0.5 }
        // Not audio, truncated, header sizes that lie, zero-length, NaN in float data, a format
        // chunk whose 6 bits per sample contradict its 2-byte frames.
        try writeBytes(Array("this is not a wav file at all, just text".utf8), to: dir.appendingPathComponent("low_bad_90.wav"))
        let full = wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: int16Bytes(tone.map { Int16($0 * 30000) }))
        try writeBytes(Array(full.prefix(30)), to: dir.appendingPathComponent("low_bad_91.wav"))
        try writeBytes(wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: int16Bytes([1, 2, 3, 4]), dataSizeOverride: 1_000_000),
                       to: dir.appendingPathComponent("low_bad_92.wav"))
        try writeBytes(wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: []), to: dir.appendingPathComponent("low_bad_93.wav"))
        var nan = tone; nan[100] = .nan
        try writeBytes(wavBytes(formatTag: 3, channels: 1, sampleRate: 8000, bitsPerSample: 32, data: float32Bytes(nan)),
                       to: dir.appendingPathComponent("low_bad_94.wav"))
        var sixBits = wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: int16Bytes([Int16](repeating: 5, count: 3000)))
        sixBits[34] = 6
        try writeBytes(sixBits, to: dir.appendingPathComponent("low_bad_95.wav"))
        let files = try SpeechCorpus.list(folder: dir, task: .utterance)
        #expect(files.count == 12)
        let (loaded, skipped, _) = try SpeechCorpus.load(files, task: .utterance, config: FeatureConfig(), threads: 2)
        #expect(loaded.count == 6)
        #expect(skipped.map { URL(fileURLWithPath: $0.path).lastPathComponent } == (90...95).map { "low_bad_\($0).wav" })
        for s in skipped {
            #expect(s.reason.hasPrefix(s.path + ": "), "\(s.reason)")
            #expect(!s.reason.contains("\n"))
        }
        // Training data with every test file bad stops with a named error instead of crashing.
        let e = caught { _ = try SpeechCorpus.prepare(folder: dir, task: .utterance, split: .speaker("bad"), config: FeatureConfig(), threads: 1) }
        #expect(e as? SpeechDataError == .noUsableFiles(path: dir.path, part: "test", skipped: 6))
    }

    @Test func brokenLabelTracksAreSkippedWithTheirLine() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = (0..<4000).map { Float(sin(Double($0) * 0.2)) * 0.4 }   // 0.5 s
        let tracks = ["ok": "0.1\t0.2\ta\n", "overlap": "0.1\t0.3\ta\n0.2\t0.4\tb\n", "reversed": "0.3\t0.1\ta\n",
                      "past": "0.1\t0.9\ta\n", "missing": nil]
        for (name, track) in tracks {
            let url = dir.appendingPathComponent("\(name)_v_1.wav")
            try AudioWriter.write(url, interleaved: x, channels: 1, sampleRate: 8000)
            if let track { try track.write(to: LabelTrack.labelFileURL(forAudio: url), atomically: true, encoding: .utf8) }
        }
        let files = try SpeechCorpus.list(folder: dir, task: .frame)
        let (loaded, skipped, _) = try SpeechCorpus.load(files, task: .frame, config: FeatureConfig(), threads: 1)
        #expect(loaded.map { $0.url.lastPathComponent } == ["ok_v_1.wav"])
        let reasons = Dictionary(uniqueKeysWithValues: skipped.map { (URL(fileURLWithPath: $0.path).lastPathComponent, $0.reason) })
        #expect(reasons["overlap_v_1.wav"]?.contains("overlap_v_1.txt:2: segment starting at 0.2 s overlaps") == true)
        #expect(reasons["reversed_v_1.wav"]?.contains("reversed_v_1.txt:1: segment ends") == true)
        #expect(reasons["past_v_1.wav"]?.contains("past_v_1.txt:1: segment ends at 0.9 s, after the end") == true)
        #expect(reasons["missing_v_1.wav"]?.contains("missing_v_1.txt: cannot read label file") == true)
        // Frame labels: centre of frame i is (80 i + 100) / 8000 s; 0.1 <= c < 0.2 for i = 9...18.
        let labels = loaded[0].frameLabels
        #expect(labels.indices.filter { labels[$0] == "a" } == Array(9...18))
    }

    @Test func labelSetOrderAndEncodingSkipsUnknownLabels() throws {
        let set = LabelSet.collecting(["10", "2", "silence", "1", "2"], first: "silence")
        #expect(set.names == ["silence", "1", "2", "10"])
        #expect(set.index(of: "10") == 3)
        #expect(set.index(of: "7") == nil)
        for name in ["official", "speaker:theo", "random:3:0.2"] { #expect(try DatasetSplit(parsing: name).name == name) }
        let m = FeatureMatrix(frames: 1, features: 39, values: [Float](repeating: 1, count: 39))
        let items = [LoadedUtterance(url: URL(fileURLWithPath: "/d/1_a_0.wav"), features: m, label: "1", frameLabels: []),
                     LoadedUtterance(url: URL(fileURLWithPath: "/d/7_a_0.wav"), features: m, label: "7", frameLabels: [])]
        let (ex, skipped) = try SpeechCorpus.encode(items, task: .utterance, labels: set, normalizer: FeatureNormalizer(featureCount: 39))
        #expect(ex.map(\.label) == [1])
        #expect(skipped == [SkippedFile(path: "/d/7_a_0.wav", reason: "/d/7_a_0.wav: label '7' is not one of the model's classes")])
    }

    @Test func batchesCoverEveryExampleOnceAndGroupSimilarLengths() {
        var rng = SeededRandom(seed: 3)
        let lengths = (0..<97).map { _ in rng.nextInt(below: 200) + 1 }
        let b = SpeechCorpus.batches(lengths: lengths, batchSize: 8, rng: &rng)
        #expect(b.flatMap { $0 }.sorted() == Array(0..<97))
        #expect(b.allSatisfy { $0.count <= 8 })
        let ordered = SpeechCorpus.orderedBatches(lengths: lengths, batchSize: 10)
        #expect(ordered.flatMap { $0 }.map { lengths[$0] } == lengths.sorted())
    }

    @Test func npyExportHasNumpyHeaderAndLittleEndianValues() {
        let m = FeatureMatrix(frames: 2, features: 3, values: [1, -2, 0.5, 3, 4, 1e-3])
        let d = [UInt8](m.npyData())
        #expect(Array(d.prefix(8)) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let hlen = Int(d[8]) | Int(d[9]) << 8
        #expect((10 + hlen) % 64 == 0)
        let header = String(decoding: d[10..<(10 + hlen)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"))
        #expect(header.hasSuffix("\n"))
        let body = Array(d[(10 + hlen)...])
        #expect(body.count == 24)
        // 1.0f = 0x3F800000, -2.0f = 0xC0000000 (little-endian bytes).
        #expect(Array(body[0..<8]) == [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])
        #expect(m.csvText() == "1.0,-2.0,0.5\n3.0,4.0,0.001\n")
    }
}

@Suite struct SpeechMetricsTests {
    @Test func segmentsMergeRunsAndDropSilence() {
        // s s 1 1 s 1 2 2 s  → runs s,1,s,1,2,s → segments 1,1,2
        #expect(SegmentScoring.segments([0, 0, 1, 1, 0, 1, 2, 2, 0], silence: 0) == [1, 1, 2])
        #expect(SegmentScoring.runs([3, 3, 4]) == [LabelRun(label: 3, start: 0, end: 2), LabelRun(label: 4, start: 2, end: 3)])
    }

    @Test func alignmentCountsMatchHandWorkedExamples() {
        // ref 1 2 3, hyp 1 3: one deletion.
        #expect(SegmentScoring.align(reference: [1, 2, 3], hypothesis: [1, 3]) == SegmentCounts(reference: 3, deletions: 1))
        // ref 1 2, hyp 1 5 2 6: two insertions → accuracy (2 - 2) / 2 = 0, correctness 1.
        let c = SegmentScoring.align(reference: [1, 2], hypothesis: [1, 5, 2, 6])
        #expect(c == SegmentCounts(reference: 2, insertions: 2))
        #expect(c.accuracy == 0 && c.correctness == 1)
        // ref 4 5 6, hyp 4 7 6: one substitution → accuracy 2/3.
        let s = SegmentScoring.align(reference: [4, 5, 6], hypothesis: [4, 7, 6])
        #expect(s == SegmentCounts(reference: 3, substitutions: 1))
        #expect(abs(s.accuracy - 2.0 / 3.0) < 1e-12)
        // Frame level: a one-frame flicker inside a digit is an insertion pair (split + wrong label).
        let f = SegmentScoring.score(reference: [0, 1, 1, 1, 1, 0], predicted: [0, 1, 2, 1, 1, 0], silence: 0)
        #expect(f == SegmentCounts(reference: 1, insertions: 2))
        #expect(SegmentScoring.align(reference: [], hypothesis: []).accuracy == 0)
    }

    @Test func confusionMatrixCountsAndText() {
        var m = ConfusionMatrix(classes: 3)
        for (t, p) in [(0, 0), (0, 1), (1, 1), (2, 2), (2, 2), (2, 0), (5, 0)] { m.add(truth: t, predicted: p) }
        #expect(m.total == 6 && m.correct == 4)
        #expect(abs(m.accuracy - 4.0 / 6.0) < 1e-12)
        #expect(m.counts == [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
        let lines = m.text(labels: ["a", "b", "c"]).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[3] == "  c   1   0   2")
    }

    @Test func confusionPNGIsWrittenAndReadable() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var m = ConfusionMatrix(classes: 2)
        m.add(truth: 0, predicted: 0); m.add(truth: 1, predicted: 0)
        let p = dir.appendingPathComponent("cm.png")
        try TrainingCLI.writeConfusionPlot(m, labels: ["x", "y"], title: "cm", path: p.path)
        let bytes = [UInt8](try Data(contentsOf: p))
        #expect(Array(bytes.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    }
}

@Suite struct UtteranceMeanNormalizationTests {
    @Test func staticColumnsHaveZeroMeanAndDeltasAreUnchanged() throws {
        var rng = SeededRandom(seed: 21)
        let signal = (0..<4000).map { i in 0.3 * Float(sin(Double(i) * 0.07)) + 0.05 * rng.uniform(-1, 1) }
        var cfg = FeatureConfig()
        let plain = try MFCCExtractor(config: cfg).features(of: signal)
        cfg.utteranceMeanNormalization = true
        let cmn = try MFCCExtractor(config: cfg).features(of: signal)
        #expect(cmn.frames == plain.frames && cmn.features == 39)
        for j in 0..<13 {
            // Independent reference: the plain statics minus their column mean (in Double).
            let mean = (0..<plain.frames).reduce(0.0) { $0 + Double(plain[$1, j]) } / Double(plain.frames)
            for f in 0..<plain.frames { #expect(abs(Double(cmn[f, j]) - (Double(plain[f, j]) - mean)) < 1e-3) }
        }
        // Δ and ΔΔ of a shifted column are the same (the regression weights sum to zero).
        for f in 0..<plain.frames { for j in 13..<39 { #expect(abs(cmn[f, j] - plain[f, j]) < 1e-3) } }
        // The flag survives the JSON round trip; old JSON without it decodes to false.
        #expect(try FeatureConfig.decode(jsonData: try cfg.jsonData()).utteranceMeanNormalization)
        #expect(try !FeatureConfig.decode(jsonData: Data("{}".utf8)).utteranceMeanNormalization)
    }
}

@Suite struct UtteranceVarianceNormalizationTests {
    @Test func staticColumnsAreStandardisedPerUtterance() throws {
        var rng = SeededRandom(seed: 22)
        let signal = (0..<4000).map { i in 0.2 * Float(sin(Double(i) * 0.11)) + 0.05 * rng.uniform(-1, 1) }
        let plain = try MFCCExtractor(config: FeatureConfig()).features(of: signal)
        let cfg = FeatureConfig(meanNormalization: false, varianceNormalization: true, melFilters: 26, cepstra: 13)
        #expect(cfg.utteranceMeanNormalization && cfg.utteranceVarianceNormalization)
        let cmvn = try MFCCExtractor(config: cfg).features(of: signal)
        #expect(cmvn.frames == plain.frames && cmvn.features == 39)
        let T = Double(plain.frames)
        for j in 0..<13 {
            // Independent reference in Double: (x - mean) / standard deviation of the plain column.
            let mean = (0..<plain.frames).reduce(0.0) { $0 + Double(plain[$1, j]) } / T
            let sd = ((0..<plain.frames).reduce(0.0) { $0 + pow(Double(plain[$1, j]) - mean, 2) } / T).squareRoot()
            for f in 0..<plain.frames {
                #expect(abs(Double(cmvn[f, j]) - (Double(plain[f, j]) - mean) / sd) < 2e-3, "frame \(f) coefficient \(j)")
            }
        }
        #expect(try FeatureConfig.decode(jsonData: try cfg.jsonData()).utteranceVarianceNormalization)
        #expect(try !FeatureConfig.decode(jsonData: Data("{}".utf8)).utteranceVarianceNormalization)
        var bad = FeatureConfig()
        bad.utteranceVarianceNormalization = true
        #expect { try bad.validate() } throws: { "\($0)".contains("needs utteranceMeanNormalization") }
    }

    @Test func aConstantColumnStaysZero() throws {
        // Silence: every frame equal, so every static column is constant.
        let cfg = FeatureConfig(meanNormalization: true, varianceNormalization: true, melFilters: 26, cepstra: 13)
        let m = try MFCCExtractor(config: cfg).features(of: [Float](repeating: 0, count: 2000))
        #expect(m.values.allSatisfy { $0 == 0 })
    }
}

@Suite struct SpeechPredictionTests {
    @Test func frameTrackTimesFollowFrameCentres() throws {
        let model = try SpeechClassifier(config: tinyConfig(classes: 3, mode: .manyToMany), seed: 1)
        // Classifier forced to class 2 for frames: zero weights, bias favouring class 2.
        model.network.classifier.weight.values = [Float](repeating: 0, count: model.network.classifier.weight.count)
        model.network.classifier.bias?.values = [0, 0, 20]
        let x = SpeechExample(path: "f.wav", features: FeatureMatrix(frames: 5, features: 39, values: [Float](repeating: 0.5, count: 195)))
        let labels = LabelSet(names: ["silence", "a", "b"])
        let p = SpeechInference.predict(model, examples: [x], labels: labels, features: FeatureConfig())[0]
        #expect(p.frameLabels == [2, 2, 2, 2, 2])
        #expect(p.label == "b")
        // 25 ms windows every 10 ms: frame centres at 12.5 + 10 t ms; 5 frames end at 57.5 ms.
        #expect(p.segments.count == 1)
        #expect(p.segments[0].start == 0 && p.segments[0].label == "b")
        #expect(abs(p.segments[0].end - 0.0575) < 1e-9)
        #expect(p.probability > 0.99)
    }
}
