import Foundation
import RecurrentCore

/// Builds a connected-digit speech set from isolated recordings (FSDD-style names
/// `{digit}_{speaker}_{index}.wav`): each utterance is 3–7 recordings of one speaker joined with
/// random silent gaps, each recording at a random gain, optionally with white noise at a random
/// signal-to-noise ratio. Deterministic for a given source folder, seed and options.
///
/// Output: `{digits}_{speaker}_{n}.wav` (mono 16-bit PCM at the source rate), a label track
/// `{digits}_{speaker}_{n}.txt` (`start<TAB>end<TAB>digit`, seconds) and `manifest.csv`
/// (`path,label`, the label the digit string). With test speakers, their utterances go to
/// `OUT/test` and the others' to `OUT/train`, so the two parts share no speaker.
public enum ConnectedDigits {
    /// What to build.
    public struct Options: Sendable {
        /// Utterances of the training part (or of the whole set without test speakers).
        public var trainCount = 1000
        /// Utterances of the test part.
        public var testCount = 200
        /// Digits per utterance.
        public var digits: ClosedRange<Int> = 3...7
        /// Silence before, between and after recordings, in milliseconds.
        public var gapMilliseconds: ClosedRange<Double> = 50...300
        /// Gain of each recording, in decibels.
        public var gainDecibels: ClosedRange<Double> = -3...3
        /// Signal-to-noise ratio of added white noise, in decibels; nil = no noise.
        public var noiseSNR: ClosedRange<Double>? = nil
        /// Speakers whose utterances form the test part.
        public var testSpeakers: [String] = []
        /// Seeds every choice.
        public var seed: UInt64 = 1
        public init() {}
    }

    /// What was written.
    public struct Summary: Sendable {
        /// Utterances written per part (`train`, `test`, or `all`).
        public var counts: [(part: String, count: Int)]
        /// Speakers of each part.
        public var speakers: [(part: String, names: [String])]
        /// The sample rate of the written files.
        public var sampleRate: Int
    }

    /// Errors naming the folder and what is wrong.
    public enum Failure: Error, CustomStringConvertible {
        case badOptions(String)
        case source(path: String, reason: String)

        public var description: String {
            switch self {
            case .badOptions(let s): return s
            case let .source(path, reason): return "\(path): \(reason)"
            }
        }
    }

    /// Reads the isolated recordings of `source` and writes the set under `out` (created; an
    /// existing `manifest.csv` there is refused so a set is never mixed with another).
    public static func make(source: URL, out: URL, options o: Options,
                            progress: ((String) -> Void)? = nil) throws -> Summary {
        guard o.digits.lowerBound >= 1, o.digits.upperBound <= 50 else { throw Failure.badOptions("digits per utterance must be within 1...50") }
        guard o.gapMilliseconds.lowerBound >= 0, o.gapMilliseconds.upperBound <= 10_000 else {
            throw Failure.badOptions("gaps must be within 0...10000 ms")
        }
        guard o.gainDecibels.lowerBound >= -40, o.gainDecibels.upperBound <= 20 else { throw Failure.badOptions("gain must be within -40...20 dB") }
        if let snr = o.noiseSNR, snr.lowerBound < -20 || snr.upperBound > 100 { throw Failure.badOptions("SNR must be within -20...100 dB") }
        guard o.trainCount >= 1, o.trainCount <= 1_000_000, o.testCount >= 0, o.testCount <= 1_000_000 else {
            throw Failure.badOptions("counts must be within 1...1000000 (train) and 0...1000000 (test)")
        }

        let files = try UtteranceDataset.list(folder: source, rule: .fsdd)
        // speaker -> digit -> recordings, in a fixed order.
        var bySpeaker: [String: [String: [URL]]] = [:]
        for u in files {
            guard let speaker = u.speaker, u.label.count == 1, u.label.first!.isASCII, u.label.first!.isNumber else { continue }
            bySpeaker[speaker, default: [:]][u.label, default: []].append(u.url)
        }
        guard !bySpeaker.isEmpty else {
            throw Failure.source(path: source.path, reason: "no recordings named {digit}_{speaker}_{index} (e.g. 3_jackson_12.wav)")
        }
        for (s, digits) in bySpeaker { bySpeaker[s] = digits.mapValues { $0.sorted { $0.path < $1.path } } }
        let speakers = bySpeaker.keys.sorted()
        let unknown = o.testSpeakers.filter { bySpeaker[$0] == nil }
        guard unknown.isEmpty else {
            throw Failure.source(path: source.path, reason: "no recordings of speaker(s) \(unknown.joined(separator: ", ")); speakers found: \(speakers.joined(separator: ", "))")
        }
        let testSet = Set(o.testSpeakers)
        let trainSpeakers = speakers.filter { !testSet.contains($0) }
        guard !trainSpeakers.isEmpty else { throw Failure.badOptions("every speaker is a test speaker; leave at least one for training") }

        let manifestAt: (URL) -> URL = { $0.appendingPathComponent("manifest.csv") }
        let parts: [(name: String, folder: URL, speakers: [String], count: Int)] = testSet.isEmpty
            ? [("all", out, trainSpeakers, o.trainCount)]
            : [("train", out.appendingPathComponent("train"), trainSpeakers, o.trainCount),
               ("test", out.appendingPathComponent("test"), o.testSpeakers.sorted(), o.testCount)]
        for p in parts where FileManager.default.fileExists(atPath: manifestAt(p.folder).path) {
            throw Failure.source(path: manifestAt(p.folder).path, reason: "already exists; choose an empty output folder")
        }

        // The rate of the first recording is the set's rate; others are resampled to it.
        let first = bySpeaker[speakers[0]]!.values.first!.first!
        let rate = try AudioLoader.info(first).sampleRate
        var cache: [URL: [Float]] = [:]
        func load(_ url: URL) throws -> [Float] {
            if let s = cache[url] { return s }
            let s = try AudioLoader.loadMono(url, sampleRate: rate)
            cache[url] = s
            return s
        }

        var rng = SeededRandom(seed: o.seed)
        for p in parts {
            try FileManager.default.createDirectory(at: p.folder, withIntermediateDirectories: true)
            var manifest = "path,label\n"
            for n in 0..<p.count {
                let speaker = p.speakers[rng.nextInt(below: p.speakers.count)]
                let available = bySpeaker[speaker]!.keys.sorted()
                let length = rng.nextInt(in: o.digits)
                var samples: [Float] = []
                var track = ""
                var digits = ""
                func gap() { samples += [Float](repeating: 0, count: Int(rng.uniform(in: o.gapMilliseconds) / 1000 * Double(rate))) }
                gap()
                for _ in 0..<length {
                    let digit = available[rng.nextInt(below: available.count)]
                    let takes = bySpeaker[speaker]![digit]!
                    let recording = try load(takes[rng.nextInt(below: takes.count)])
                    var take = recording
                    AugmentationConfig.applyGain(&take, decibels: rng.uniform(in: o.gainDecibels))
                    let start = samples.count
                    samples += take
                    track += String(format: "%.6f\t%.6f\t%@\n", Double(start) / Double(rate), Double(samples.count) / Double(rate), digit)
                    digits += digit
                    gap()
                }
                if let snr = o.noiseSNR {
                    AugmentationConfig.addWhiteNoise(&samples, snrDecibels: rng.uniform(in: snr), rng: &rng)
                }
                // Keep within full scale: scale the whole utterance down if a peak would clip.
                let peak = samples.reduce(Float(0)) { max($0, abs($1)) }
                if peak > 0.99 { let k = 0.99 / peak; for i in samples.indices { samples[i] *= k } }
                let name = "\(digits)_\(speaker)_\(n)"
                try AudioWriter.write(p.folder.appendingPathComponent(name + ".wav"), interleaved: samples, channels: 1, sampleRate: rate)
                try Data(track.utf8).write(to: p.folder.appendingPathComponent(name + ".txt"), options: .atomic)
                manifest += "\(name).wav,\(digits)\n"
                if (n + 1) % 200 == 0 { progress?("\(p.name): \(n + 1)/\(p.count)") }
            }
            // The manifest last: a folder without one is an unfinished set.
            try Data(manifest.utf8).write(to: manifestAt(p.folder), options: .atomic)
        }
        return Summary(counts: parts.map { ($0.name, $0.count) }, speakers: parts.map { ($0.name, $0.speakers) }, sampleRate: rate)
    }
}
