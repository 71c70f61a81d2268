import ArgumentParser
import AudioFeatures
import Foundation
import TrainingCLI

/// `speech-classify make-sequences`: a connected-digit set from isolated recordings.
struct MakeSequences: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-sequences",
        abstract: "Build a connected-digit set (3-7 digits of one speaker per file) from isolated digit recordings.",
        discussion: """
        Source: a folder of FSDD-style recordings {digit}_{speaker}_{index}.wav; default \
        $RNN_DATA_DIR/fsdd/recordings, else isolated digits synthesised with espeak-ng into \
        OUT/isolated. Writes {digits}_{speaker}_{n}.wav with a label track and manifest.csv \
        (path,label); with --test-speakers their files go to OUT/test and the rest to OUT/train, \
        so no speaker is in both. Deterministic for the same source, seed and options.
        """)
    @Option(help: "Folder of isolated recordings (default: $RNN_DATA_DIR/fsdd/recordings, else espeak-ng).") var source: String?
    @Option(help: "Output folder.") var out: String
    @Option(name: .customLong("train-count"), help: "Utterances of the training part (the whole set without test speakers).") var trainCount = 1000
    @Option(name: .customLong("test-count"), help: "Utterances of the test part.") var testCount = 200
    @Option(name: .customLong("test-speakers"), help: "Comma-separated speakers held out for the test part.") var testSpeakers: String?
    @Option(name: .customLong("min-digits"), help: "Fewest digits per utterance.") var minDigits = 3
    @Option(name: .customLong("max-digits"), help: "Most digits per utterance.") var maxDigits = 7
    @Option(name: .customLong("gap-ms"), help: "Silence before, between and after digits: MIN:MAX milliseconds.") var gap = "50:300"
    @Option(name: .customLong("gain-db"), help: "Gain of each digit: MIN:MAX decibels.") var gain = "-3:3"
    @Option(name: .customLong("noise-snr"), help: "White noise over the whole utterance at a signal-to-noise ratio of MIN:MAX dB, a noise floor under the gaps, which would otherwise be digital silence that no microphone records; off for none.") var noise = "30:50"
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            func range(_ s: String, _ flag: String) throws -> ClosedRange<Double> {
                let parts = s.split(separator: ":").map { Double($0) }
                guard parts.count == 2, let a = parts[0], let b = parts[1], a.isFinite, b.isFinite, a <= b else {
                    throw ValidationError("\(flag): expected MIN:MAX with MIN <= MAX, got '\(s)'")
                }
                return a...b
            }
            guard minDigits >= 1, minDigits <= maxDigits else { throw ValidationError("--min-digits must be at least 1 and at most --max-digits") }
            var o = ConnectedDigits.Options()
            o.trainCount = trainCount; o.testCount = testCount; o.digits = minDigits...maxDigits
            o.gapMilliseconds = try range(gap, "--gap-ms"); o.gainDecibels = try range(gain, "--gain-db")
            o.noiseSNR = noise == "off" ? nil : try range(noise, "--noise-snr")
            o.testSpeakers = (testSpeakers ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            o.seed = seed
            let outURL = URL(fileURLWithPath: out)
            let sourceURL: URL
            if let source {
                sourceURL = URL(fileURLWithPath: source)
            } else if let dir = ProcessInfo.processInfo.environment["RNN_DATA_DIR"], FileManager.default.fileExists(atPath: dir + "/fsdd/recordings") {
                sourceURL = URL(fileURLWithPath: dir + "/fsdd/recordings")
            } else {
                sourceURL = outURL.appendingPathComponent("isolated")
                note("make-sequences: no --source and no RNN_DATA_DIR/fsdd; synthesising isolated digits with espeak-ng into \(sourceURL.path)")
                let voices = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-029+f4", "en-gb-scotland+m1"]
                _ = try SpokenDigitSynthesizer.generate(into: sourceURL, voices: voices, speeds: [130, 170, 210], pitches: [30, 50, 70])
            }
            note("make-sequences: reading \(sourceURL.path)")
            let summary = try ConnectedDigits.make(source: sourceURL, out: outURL, options: o) { note("make-sequences: \($0)") }
            for (part, count) in summary.counts {
                let speakers = summary.speakers.first { $0.part == part }?.names ?? []
                let folder = part == "all" ? out : "\(out)/\(part)"
                print("\(folder): \(count) files at \(summary.sampleRate) Hz, speakers \(speakers.joined(separator: ", "))")
            }
        }
    }
}
