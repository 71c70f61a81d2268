import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

@Suite("training-audio augmentation")
struct AugmentationTests {
    static func tone(_ hz: Double, seconds: Double = 0.5, rate: Int = 8000, amplitude: Float = 0.5) -> [Float] {
        (0..<Int(seconds * Double(rate))).map { amplitude * Float(sin(2 * Double.pi * hz * Double($0) / Double(rate))) }
    }

    static func rms(_ x: [Float]) -> Double { (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)).squareRoot() }

    /// Upward zero crossings per second of the middle of a signal (away from filter edges).
    static func frequency(_ x: [Float], rate: Int = 8000) -> Double {
        let mid = x[(x.count / 4)..<(3 * x.count / 4)]
        var crossings = 0
        var previous = mid.first!
        for v in mid.dropFirst() { if previous < 0 && v >= 0 { crossings += 1 }; previous = v }
        return Double(crossings) / (Double(mid.count) / Double(rate))
    }

    @Test("speed 1.1 shortens by 1/1.1 and raises a 1000 Hz tone to 1100 Hz; 0.9 the reverse")
    func speed() throws {
        let x = Self.tone(1000)
        for speed in [1.1, 0.9] {
            var a = AugmentationConfig()
            a.speeds = [speed]
            var rng = SeededRandom(seed: 1)
            let y = try a.perturb(x, sampleRate: 8000, rng: &rng)
            #expect(abs(Double(y.count) - Double(x.count) / speed) <= 2, "length \(y.count) at speed \(speed)")
            #expect(abs(Self.frequency(y) - 1000 * speed) < 15, "frequency \(Self.frequency(y)) at speed \(speed)")
        }
    }

    @Test("gain scales the level by the drawn decibels; noise lands at the drawn signal-to-noise ratio")
    func gainAndNoise() throws {
        let x = Self.tone(440, seconds: 2)
        var g = AugmentationConfig()
        g.gainDecibels = -6 ... -6
        var rng = SeededRandom(seed: 2)
        let y = try g.perturb(x, sampleRate: 8000, rng: &rng)
        #expect(abs(Self.rms(y) / Self.rms(x) - pow(10, -6.0 / 20)) < 1e-4)

        var n = AugmentationConfig()
        n.noiseSNR = 10...10
        let z = try n.perturb(x, sampleRate: 8000, rng: &rng)
        let noise = zip(z, x).map { $0 - $1 }
        let snr = 20 * log10(Self.rms(x) / Self.rms(noise))
        #expect(abs(snr - 10) < 0.3, "measured SNR \(snr) dB")
    }

    @Test("a fade falls (or rises) linearly in decibels between the drawn point and the end (or start)")
    func fade() throws {
        // 101 samples of 1, the point at sample 50, 20 dB deep.
        var out = [Float](repeating: 1, count: 101), into = out
        AugmentationConfig.applyFade(&out, decibels: 20, at: 0.5, out: true)
        AugmentationConfig.applyFade(&into, decibels: 20, at: 0.5, out: false)
        for i in 0...50 { #expect(out[i] == 1 && into[100 - i] == 1) }
        // Half way along the ramp: -10 dB; at its far end: -20 dB.
        #expect(abs(out[75] - 0.316228) < 1e-5 && abs(out[100] - 0.1) < 1e-6)
        #expect(abs(into[25] - 0.316228) < 1e-5 && abs(into[0] - 0.1) < 1e-6)
        for i in 51...100 { #expect(out[i] < out[i - 1]) }

        // Through perturb: one end of a constant signal 20 dB down, the other untouched.
        var a = AugmentationConfig()
        a.fadeDecibels = 20...20
        var ends: Set<Bool> = []
        for seed in 1...8 as ClosedRange<UInt64> {
            var rng = SeededRandom(seed: seed)
            let y = try a.perturb([Float](repeating: 0.5, count: 800), sampleRate: 8000, rng: &rng)
            #expect(y.count == 800)
            let fadedOut = abs(y[799] - 0.05) < 1e-6
            #expect(fadedOut ? y[0] == 0.5 : abs(y[0] - 0.05) < 1e-6 && y[799] == 0.5, "seed \(seed): \(y[0]) \(y[799])")
            ends.insert(fadedOut)
        }
        #expect(ends == [true, false], "eight draws are not all the same way")
        a.fadeDecibels = 0...70
        #expect(a.problem == "fade depths must be within 0...60 dB")
    }

    @Test("frequency masks zero the same coefficients in the static, delta and delta-delta groups; time masks whole frames")
    func masks() {
        var a = AugmentationConfig()
        a.frequencyMasks = 1; a.frequencyMaskWidth = 4
        let T = 50, F = 39
        var m = FeatureMatrix(frames: T, features: F, values: [Float](repeating: 1, count: T * F))
        var rng = SeededRandom(seed: 3)
        a.mask(&m, cepstral: 13, rng: &rng)
        let zeroColumns = (0..<F).filter { f in (0..<T).allSatisfy { m.values[$0 * F + f] == 0 } }
        let statics = zeroColumns.filter { $0 < 13 }
        #expect(statics.count <= 4)
        #expect(zeroColumns == statics + statics.map { $0 + 13 } + statics.map { $0 + 26 })
        #expect(m.values.filter { $0 == 0 }.count == zeroColumns.count * T)

        var t = AugmentationConfig()
        t.timeMasks = 2; t.timeMaskWidth = 6
        var found = false
        for seed in 0..<10 {
            var u = FeatureMatrix(frames: T, features: F, values: [Float](repeating: 1, count: T * F))
            var r = SeededRandom(seed: UInt64(seed))
            t.mask(&u, cepstral: 13, rng: &r)
            let zeroFrames = (0..<T).filter { f in (0..<F).allSatisfy { u.values[f * F + $0] == 0 } }
            #expect(zeroFrames.count <= 12)
            #expect(u.values.filter { $0 == 0 }.count == zeroFrames.count * F)
            found = found || !zeroFrames.isEmpty
        }
        #expect(found)
    }

    @Test("the random low-pass keeps a tone well below its cutoff and takes 20 dB or more off one an octave above")
    func lowPass() throws {
        var a = AugmentationConfig()
        a.lowPass = 1000...1000
        var rng = SeededRandom(seed: 4)
        // Measured on the second half, after the filter's start-up transient.
        func level(_ x: [Float]) -> Double { Self.rms(Array(x[(x.count / 2)...])) }
        let low = Self.tone(250, seconds: 1), high = Self.tone(2000, seconds: 1)
        let lowGain = 20 * log10(level(try a.perturb(low, sampleRate: 8000, rng: &rng)) / level(low))
        let highGain = 20 * log10(level(try a.perturb(high, sampleRate: 8000, rng: &rng)) / level(high))
        #expect(abs(lowGain) < 0.5, "250 Hz: \(lowGain) dB")
        #expect(highGain < -20, "2000 Hz: \(highGain) dB")
        // A cutoff near the Nyquist frequency changes nothing.
        a.lowPass = 3900...3900
        #expect(try a.perturb(high, sampleRate: 8000, rng: &rng) == high)
        var bad = AugmentationConfig()
        bad.lowPass = 10...3000
        #expect(bad.problem != nil)
    }

    @Test("the VTLP warp keeps 0 and Nyquist, scales by the factor below its boundary, is continuous and increasing")
    func vtlpWarpShape() {
        let nyquist = 4000.0
        for a in [0.8, 0.9, 1.0, 1.1, 1.25] {
            #expect(MelScale.vtlpWarp(0, factor: a, nyquist: nyquist) == 0)
            #expect(abs(MelScale.vtlpWarp(nyquist, factor: a, nyquist: nyquist) - nyquist) < 1e-9)
            // Below 0.8 · Nyquist · min(a, 1) / a the map is f ↦ a f.
            let boundary = 0.8 * nyquist * min(a, 1) / a
            for f in stride(from: 0.0, through: boundary, by: boundary / 10) {
                #expect(abs(MelScale.vtlpWarp(f, factor: a, nyquist: nyquist) - a * f) < 1e-9)
            }
            // Continuous at the boundary: no jump between either side of it.
            let below = MelScale.vtlpWarp(boundary - 1e-6, factor: a, nyquist: nyquist)
            let above = MelScale.vtlpWarp(boundary + 1e-6, factor: a, nyquist: nyquist)
            #expect(abs(above - below) < 1e-5)
            var previous = -1.0
            for k in 0...4000 {
                let y = MelScale.vtlpWarp(Double(k), factor: a, nyquist: nyquist)
                #expect(y > previous, "not increasing at \(k) Hz for factor \(a)")
                previous = y
            }
        }
    }

    @Test("a warp above 1 moves every filter's peak up, below 1 down; 1 is the unwarped bank")
    func warpedFilterbank() throws {
        func peaks(_ warp: Double) -> [Int] {
            let fb = MelScale.filterbank(filters: 26, fftSize: 256, sampleRate: 8000, lowFrequency: 0, highFrequency: 4000, warp: warp)
            return (0..<26).map { j in (0..<129).max { fb[j * 129 + $0] < fb[j * 129 + $1] }! }
        }
        let plain = MelScale.filterbank(filters: 26, fftSize: 256, sampleRate: 8000, lowFrequency: 0, highFrequency: 4000)
        #expect(MelScale.filterbank(filters: 26, fftSize: 256, sampleRate: 8000, lowFrequency: 0, highFrequency: 4000, warp: 1) == plain)
        let p1 = peaks(1), up = peaks(1.15), down = peaks(0.85)
        #expect(zip(up, p1).allSatisfy { $0 >= $1 } && zip(up, p1).filter { $0 > $1 }.count >= 15)
        #expect(zip(down, p1).allSatisfy { $0 <= $1 } && zip(down, p1).filter { $0 < $1 }.count >= 15)
        // A 1 kHz tone's strongest band: a bank moved up puts it in a lower band.
        let x = Self.tone(1000)
        func strongestBand(_ warp: Double) throws -> Int {
            var c = FeatureConfig(); c.cepstralCount = 26; c.lifter = 0; c.appendEnergy = false; c.includeDeltas = false
            c.includeDeltaDeltas = false
            // With all 26 cepstra and no lifter the DCT is orthonormal, so its inverse gives the log-mel energies back.
            let m = try MFCCExtractor(config: c, frequencyWarp: warp).features(of: x)
            let f = m.frames / 2
            let logMel = (0..<26).map { n in (0..<26).reduce(0.0) { s, k in
                let scale = k == 0 ? (1 / 26.0).squareRoot() : (2 / 26.0).squareRoot()
                return s + Double(m[f, k]) * scale * cos(Double.pi * Double(k) * (2 * Double(n) + 1) / 52)
            } }
            return (0..<26).max { logMel[$0] < logMel[$1] }!
        }
        let (b08, b10, b12) = (try strongestBand(0.8), try strongestBand(1.0), try strongestBand(1.2))
        #expect(b12 < b10 && b08 > b10, "strongest bands \(b08), \(b10), \(b12)")
        #expect(throws: FeatureError.self) { try MFCCExtractor(frequencyWarp: 3) }
    }

    @Test("VTLP alone changes the features of every example, reproducibly for a seed")
    func vtlpAugmentation() throws {
        var a = AugmentationConfig()
        a.vtlp = 0.85...1.15
        #expect(a.changesAudio && a.problem == nil)
        let features = FeatureConfig()
        let extractor = try MFCCExtractor(config: features)
        let examples = [500.0, 1200.0].enumerated().map { k, hz -> SpeechExample in
            var e = SpeechExample(path: "tone\(k).wav", features: extractor.features(of: Self.tone(hz)), label: k)
            e.audio = Self.tone(hz)
            return e
        }
        let normalizer = try FeatureNormalizer.fitted(to: examples.map(\.features), featureCount: features.featureCount)
        let augmenter = SpeechAugmenter(config: a, features: features, normalizer: normalizer, threads: 2)
        let x = augmenter.augment(examples, seed: 5), y = augmenter.augment(examples, seed: 5)
        #expect(x.map(\.features) == y.map(\.features))
        #expect(x.map(\.features.frames) == examples.map(\.features.frames))
        // A warp of exactly 1 gives the clean features, normalised as training normalises them.
        var identity = AugmentationConfig()
        identity.vtlp = 1...1
        let clean = SpeechAugmenter(config: identity, features: features, normalizer: normalizer, threads: 1).augment(examples, seed: 5)
        for k in examples.indices {
            var expected = examples[k].features
            try normalizer.apply(to: &expected, source: "tone")
            #expect(clean[k].features == expected)
            #expect(x[k].features != expected)
        }
        var bad = AugmentationConfig()
        bad.vtlp = 0.5...1.1
        #expect(bad.problem?.contains("0.7...1.3") == true)
    }

    @Test("augmented batches depend on the seed and the example alone, not on the thread count")
    func deterministic() throws {
        var a = AugmentationConfig()
        a.speeds = [0.9, 1.0, 1.1]; a.gainDecibels = -6...6; a.noiseSNR = 10...30; a.timeMasks = 1; a.timeMaskWidth = 5
        let features = FeatureConfig()
        let extractor = try MFCCExtractor(config: features)
        let examples = [440.0, 900.0, 1500.0].enumerated().map { k, hz -> SpeechExample in
            var e = SpeechExample(path: "tone\(k).wav", features: extractor.features(of: Self.tone(hz)), label: k)
            e.audio = Self.tone(hz)
            return e
        }
        let normalizer = try FeatureNormalizer.fitted(to: examples.map(\.features), featureCount: features.featureCount)
        let one = SpeechAugmenter(config: a, features: features, normalizer: normalizer, threads: 1)
        let two = SpeechAugmenter(config: a, features: features, normalizer: normalizer, threads: 2)
        let x = one.augment(examples, seed: 7), y = two.augment(examples, seed: 7), z = one.augment(examples, seed: 8)
        #expect(x.map(\.features) == y.map(\.features))
        #expect(x.map(\.features) != z.map(\.features))
        #expect(x.map(\.label) == [0, 1, 2])
        #expect(x.map(\.features) != examples.map(\.features))
    }

    @Test("front-end sizes out of range are refused naming the flag; the fingerprint of default features is unchanged")
    func frontEndOptions() throws {
        var o = SpeechTrainingOptions()
        o.cepstra = 30
        #expect { try o.validate() } throws: { "\($0)".contains("--cepstra") && "\($0)".contains("1...26") }
        o.cepstra = 13; o.melFilters = 4
        #expect { try o.validate() } throws: { "\($0)".contains("--mel-filters") }
        // Runs made before these options existed resume: their keys appear only when set.
        let plain = TrainingFingerprint.fields(of: SpeechTrainingOptions())
        #expect(plain["utterance_cmvn"] == nil && plain["mel_filters"] == nil && plain["cepstra"] == nil)
        o.melFilters = 40; o.cepstra = 20; o.utteranceCMVN = true
        let set = TrainingFingerprint.fields(of: o)
        #expect(set["utterance_cmvn"] == "1" && set["mel_filters"] == "40" && set["cepstra"] == "20")
        #expect(Set(set.keys).subtracting(["utterance_cmvn", "mel_filters", "cepstra"]) == Set(plain.keys))
    }

    @Test("speed perturbation and tempo with the frame task are refused naming the flag")
    func frameTaskRefusesSpeed() {
        var o = SpeechTrainingOptions()
        o.task = .frame
        var a = AugmentationConfig()
        a.speeds = [0.9, 1.1]
        o.augmentation = a
        #expect { try o.validate() } throws: { "\($0)".contains("--speed-perturb") }
        a.speeds = []; a.tempo = 0.8...1.2
        o.augmentation = a
        #expect { try o.validate() } throws: { "\($0)".contains("--tempo") }
        o.task = .sequence
        #expect(throws: Never.self) { try o.validate() }
        a.tempo = 0.4...1.2
        o.augmentation = a
        #expect { try o.validate() } throws: { "\($0)".contains("tempo factors must be within 0.5...2") }
    }

    @Test("a tempo change resamples frames linearly: a ramp in time stays the same ramp, ends kept")
    func tempoStretch() {
        // Column f of frame t: 2 + 0.5·t·(f + 1), linear in t, so interpolation is exact.
        let T = 21, F = 3
        let m = FeatureMatrix(frames: T, features: F, values: (0..<(T * F)).map { Float(2 + 0.5 * Double($0 / F) * Double($0 % F + 1)) })
        for (factor, frames) in [(1.25, 17), (0.8, 26), (2.0, 11), (0.5, 42)] {
            let s = AugmentationConfig.stretch(m, factor: factor)
            #expect(s.frames == frames && s.features == F)
            for u in 0..<frames {
                let position = Double(u) * Double(T - 1) / Double(frames - 1)
                for f in 0..<F { #expect(abs(Double(s.values[u * F + f]) - (2 + 0.5 * position * Double(f + 1))) < 1e-5) }
            }
            #expect(Array(s.values.prefix(F)) == Array(m.values.prefix(F)) && Array(s.values.suffix(F)) == Array(m.values.suffix(F)))
        }
        #expect(AugmentationConfig.stretch(m, factor: 1).values == m.values)
        let one = FeatureMatrix(frames: 1, features: F, values: [1, 2, 3])
        #expect(AugmentationConfig.stretch(one, factor: 0.5).values == [1, 2, 3])
    }
}

@Suite("augmented training on the engine", .serialized)
struct AugmentedTrainingTests {
    func run(_ o: SpeechTrainingOptions, _ data: SpeechTrainingData, out: String, steps: Int, resume: Bool = false) throws -> TrainingRunSummary {
        var t = TrainingConfiguration()
        t.learningRate = 1e-2; t.lrSchedule = .constant; t.steps = steps; t.evalEvery = 4; t.seed = 3; t.threads = 2
        t.outDirectory = out; t.resume = resume
        let engine = TrainingEngine(configuration: t, task: try SpeechTraining.task(options: o, data: data, training: t))
        engine.progressOutput = { _ in }
        return try engine.run()
    }

    /// Augmentation changes what the steps see; a resumed augmented run equals an uninterrupted one.
    @Test func augmentationChangesStepsAndResumesExactly() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 4, seed: 9)
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.split = "random:3:0.25"; o.cell = .gru; o.hidden = 6; o.batch = 4; o.valFraction = 0.2
        let plain = try run(o, try SpeechTraining.prepare(options: o, seed: 3, threads: 2), out: dir.path + "/plain", steps: 8)
        var a = AugmentationConfig()
        a.speeds = [0.9, 1.1]; a.noiseSNR = 10...20; a.frequencyMasks = 1; a.frequencyMaskWidth = 2
        o.augmentation = a
        let data = try SpeechTraining.prepare(options: o, seed: 3, threads: 2)
        #expect(data.train.allSatisfy { $0.audio != nil } && data.validation.allSatisfy { $0.audio == nil })
        let full = try run(o, data, out: dir.path + "/full", steps: 8)
        #expect(full.stepLosses != plain.stepLosses)
        _ = try run(o, data, out: dir.path + "/split", steps: 4)
        let resumed = try run(o, data, out: dir.path + "/split", steps: 8, resume: true)
        #expect(resumed.stepLosses == Array(full.stepLosses.suffix(4)))
        #expect(try differingTensors(dir.path + "/full/last.safetensors", dir.path + "/split/last.safetensors") == [])
    }
}

/// speech-classify train's augmentation defaults, read back from the run's recorded fingerprint.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct AugmentationDefaultTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    /// The augmentation a two-step utterance run on a tone set records, decoded; nil when none.
    func recorded(_ extra: [String], in dir: URL) throws -> [String: Any]? {
        let data = dir.appendingPathComponent("data")
        if !FileManager.default.fileExists(atPath: data.path) {
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            try writeToneSet(into: data, perClass: 4, seed: 9)
        }
        let out = dir.appendingPathComponent("run").path
        let r = try runProcess(tool, ["train", "--data", data.path, "--out", out, "--overwrite", "--split", "random:1:0.25", "--hidden", "4",
                                      "--batch", "4", "--steps", "2", "--threads", "1"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
        let fingerprint = try #require(config["fingerprint"] as? [String: String])
        return try fingerprint["augmentation"].map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test func utteranceTrainingAugmentsUnlessTold() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let byDefault = try #require(try recorded([], in: dir))
        #expect(byDefault["speeds"] as? [Double] == [0.9, 1, 1.1] && byDefault["noiseSNR"] as? [Double] == [10, 40])
        #expect(byDefault["gainDecibels"] as? [Double] == [-6, 6] && byDefault["timeMasks"] as? Int == 2 && byDefault["frequencyMasks"] as? Int == 2)
        #expect(try recorded(["--augment"], in: dir).map { NSDictionary(dictionary: $0) } == NSDictionary(dictionary: byDefault))
        #expect(try recorded(["--no-augment"], in: dir) == nil)
        // The last of the pair wins (tools add --no-augment before the user's arguments).
        #expect(try recorded(["--no-augment", "--augment"], in: dir).map { NSDictionary(dictionary: $0) } == NSDictionary(dictionary: byDefault))
        // A part's flag on top of --no-augment: that part alone.
        let noiseOnly = try #require(try recorded(["--no-augment", "--noise-snr", "20:30"], in: dir))
        #expect(noiseOnly["noiseSNR"] as? [Double] == [20, 30] && (noiseOnly["speeds"] as? [Double] ?? []).isEmpty)
        #expect(noiseOnly["gainDecibels"] == nil && (noiseOnly["timeMasks"] as? Int ?? 0) == 0)
        // The fade is not in the default set; its flag adds it.
        #expect(byDefault["fadeDecibels"] == nil)
        let faded = try #require(try recorded(["--fade-db", "0:24"], in: dir))
        #expect(faded["fadeDecibels"] as? [Double] == [0, 24] && faded["speeds"] as? [Double] == [0.9, 1, 1.1])
        let bad = try runProcess(tool, ["train", "--data", dir.path + "/data", "--out", dir.path + "/bad", "--steps", "1", "--fade-db", "0:90"])
        #expect(bad.status != 0 && bad.stderr.contains("fade depths must be within 0...60 dB") && !FileManager.default.fileExists(atPath: dir.path + "/bad"), "\(bad.stderr)")
    }

    @Test func aRunSavedWithoutAugmentationResumesWithoutIt() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try recorded(["--no-augment"], in: dir) == nil)
        // What a version before the default recorded: neither flag among the arguments.
        let path = dir.path + "/run/config.json"
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var training = try #require(config["training"] as? [String: Any])
        training["arguments"] = (training["arguments"] as? [String] ?? []).filter { $0 != "--no-augment" }
        config["training"] = training
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let r = try runProcess(tool, ["train", "--resume", dir.path + "/run", "--steps", "4"])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        #expect((after["fingerprint"] as? [String: String])?["augmentation"] == nil)
        #expect(r.stdout.contains("\"steps\":4"), "\(r.stdout)")
    }
}
