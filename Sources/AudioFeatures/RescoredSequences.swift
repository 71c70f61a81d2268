import Foundation
import RecurrentCore

/// Two-pass recognition of connected words: a sequence (CTC) model finds how many words a file
/// holds and where, and an utterance model, trained on isolated words with the same label
/// names, says which word each piece is.
///
/// Per file: the first pass decodes the label sequence (`SpeechEnsemble.decodeSequences`), and
/// the most probable alignment of that sequence under the first pass's averaged frame
/// probabilities (`CTC.bestAlignment`) gives the frame where each word is first emitted. The
/// audio between each two neighbouring words is cut around the quietest stretch between their
/// frames (`wordRanges`), and each piece goes through the utterance model's own front end (silence
/// trimming, per-speaker normalisation over all pieces of that speaker, as the members were
/// trained). Each word is the utterance model's most probable label; the count and order stay the
/// first pass's. A sequence's probability is then the product of its words' probabilities.
public final class RescoredSequenceScorer: SpeechScorer {
    /// The sequence (CTC) models.
    public let sequence: SpeechEnsemble
    /// The utterance models that name each piece.
    public let words: SpeechEnsemble
    /// Sequence class index of each utterance class (by name).
    private let classMap: [Int]
    private let threads: Int

    /// Why two ensembles cannot be combined, in one line naming the checkpoints.
    public enum Problem: Error, CustomStringConvertible, Equatable, Sendable {
        case task(path: String, expected: SpeechTask, got: SpeechTask)
        case unknownLabel(path: String, label: String, sequencePath: String)
        case trimmed(path: String)
        case sampleRate(path: String, rate: Int, sequencePath: String, sequenceRate: Int)

        public var description: String {
            switch self {
            case let .task(path, expected, got): "\(path): its task is \(got), where \(expected) is needed"
            case let .unknownLabel(path, label, sequencePath): "\(path): class '\(label)' is not a label of \(sequencePath)"
            case let .trimmed(path): "\(path): trims silence (--trim-silence), so its frames do not map to the audio's; the first pass needs untrimmed frames"
            case let .sampleRate(path, rate, sequencePath, sequenceRate):
                "\(path): features at \(rate) Hz, \(sequencePath) at \(sequenceRate) Hz"
            }
        }
    }

    /// - Throws: `Problem` when `sequence` is not a sequence-task ensemble with untrimmed
    ///   frames, `words` not an utterance-task one, a word class is not a sequence label, or
    ///   the two read audio at different rates.
    public init(sequence: SpeechEnsemble, sequencePath: String, words: SpeechEnsemble, wordsPath: String, threads: Int) throws {
        guard sequence.task == .sequence else { throw Problem.task(path: sequencePath, expected: .sequence, got: sequence.task) }
        guard words.task == .utterance else { throw Problem.task(path: wordsPath, expected: .utterance, got: words.task) }
        if sequence.featureConfigurations.contains(where: { $0.trimDecibels != nil }) { throw Problem.trimmed(path: sequencePath) }
        if let odd = words.featureConfigurations.first(where: { $0.sampleRate != sequence.features.sampleRate }) {
            throw Problem.sampleRate(path: wordsPath, rate: odd.sampleRate, sequencePath: sequencePath, sequenceRate: sequence.features.sampleRate)
        }
        classMap = try words.labels.names.map { name in
            guard let i = sequence.labels.index(of: name), name != SpeechTask.blank else {
                throw Problem.unknownLabel(path: wordsPath, label: name, sequencePath: sequencePath)
            }
            return i
        }
        self.sequence = sequence
        self.words = words
        self.threads = max(1, threads)
    }

    public var task: SpeechTask { .sequence }
    public var classes: Int { sequence.classes }

    /// The first pass's frame probabilities and loss.
    public func probabilities(_ examples: [SpeechExample]) -> (probabilities: [Float], loss: Double) {
        sequence.scorer.probabilities(examples)
    }

    /// Examples per batch through the networks. `decodeSequences` takes every file of a speaker
    /// at once (the pieces of a speaker are normalised together) and batches them itself.
    static let batch = 64

    /// Frames kept on each side of a word, as `SilenceTrim` keeps them.
    static let margin = 3

    /// Each word's frames (ranges of `energies`' indices, in order). Between each two
    /// neighbouring first frames of `wordFrames` (increasing) lies the quiet stretch that
    /// separates the two words: the longest run of frames whose log energy, averaged over three
    /// frames, is within 3 dB of the lowest there; the earlier word ends `margin` frames into it
    /// and the later one starts `margin` frames before its end (at its middle when it is shorter
    /// than that). The first word starts `margin` frames before the end of the file's leading
    /// quiet run (frames from the start within 3 dB of the lowest before the word, when that is
    /// 10 dB below the loudest there), the last ends `margin` frames into the trailing one.
    /// `energies`: one log energy (dB) per frame.
    public static func wordRanges(energies: [Double], wordFrames: [Int]) -> [Range<Int>] {
        let T = energies.count, N = wordFrames.count
        guard N > 0 else { return [] }
        guard T > 0 else { return Array(repeating: 0..<0, count: N) }
        let smooth = (0..<T).map { t -> Double in
            let lo = max(0, t - 1), hi = min(T - 1, t + 1)
            return energies[lo...hi].reduce(0, +) / Double(hi - lo + 1)
        }
        let frames = wordFrames.map { min(max($0, 0), T - 1) }
        var starts = [Int](repeating: 0, count: N), ends = [Int](repeating: T, count: N)
        for i in 0..<(N - 1) {
            // Frames after word i's first frame, up to and including word i + 1's.
            let a = min(frames[i] + 1, T - 1), b = max(frames[i + 1], a)
            let floor = smooth[a...b].min()! + 3
            var best = (start: a, length: 0), t = a
            while t <= b {
                guard smooth[t] <= floor else { t += 1; continue }
                let begin = t
                while t <= b && smooth[t] <= floor { t += 1 }
                if t - begin > best.length { best = (begin, t - begin) }
            }
            if best.length >= 2 * margin {
                ends[i] = best.start + margin; starts[i + 1] = best.start + best.length - margin
            } else {
                ends[i] = best.start + best.length / 2 + 1; starts[i + 1] = ends[i]
            }
        }
        // Leading and trailing quiet runs, when there is a quiet part (10 dB below the loudest).
        let head = smooth[0...frames[0]], rest = smooth[frames[N - 1]...]
        var lead = 0
        if head.min()! + 10 <= head.max()! {
            while lead < frames[0] && smooth[lead] <= head.min()! + 3 { lead += 1 }
        }
        starts[0] = max(0, lead - margin)
        var tail = T
        if rest.min()! + 10 <= rest.max()! {
            while tail > frames[N - 1] + 1 && smooth[tail - 1] <= rest.min()! + 3 { tail -= 1 }
        }
        ends[N - 1] = min(T, tail + margin)
        return (0..<N).map { starts[$0]..<max(ends[$0], starts[$0]) }
    }

    /// Log energy (dB) of each `step`-sample block of `audio`.
    static func blockEnergies(_ audio: [Float], step: Int) -> [Double] {
        let n = audio.count / step
        return (0..<n).map { k in
            var s = 0.0
            for x in audio[(k * step)..<((k + 1) * step)] { s += Double(x) * Double(x) }
            return 10 * log10(s / Double(step) + 1e-10)
        }
    }

    /// The first pass, then each word named by the utterance models (see the type's notes).
    /// A file whose audio cannot be read again, whose sequence has no alignment, or one of
    /// whose pieces has no frame left keeps the first pass's labels. The last call's result is
    /// kept: asking again for the same files and width (`eval`'s metrics, then its errors file)
    /// returns it instead of running both passes again.
    public func decodeSequences(_ examples: [SpeechExample], beamWidth: Int) -> (decoded: [(labels: [Int], probability: Double)], loss: Double) {
        let r = decodeSequencesWithFrames(examples, beamWidth: beamWidth)
        return (r.decoded, r.loss)
    }

    /// `decodeSequences` with the first pass's frame probabilities.
    public func decodeSequencesWithFrames(_ examples: [SpeechExample], beamWidth: Int)
        -> (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float]) {
        let paths = examples.map(\.path)
        if let last, last.paths == paths, last.beamWidth == beamWidth { return last.result }
        // The first pass in batches (its memory grows with the batch); the loss is their mean.
        var first: (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float]) = ([], 0, [])
        for start in stride(from: 0, to: examples.count, by: Self.batch) {
            let part = Array(examples[start..<min(start + Self.batch, examples.count)])
            let r = sequence.scorer.decodeSequencesWithFrames(part, beamWidth: beamWidth)
            first.decoded += r.decoded
            first.loss += r.loss * Double(part.count) / Double(examples.count)
            first.frames += r.frames
        }
        let split = pieces(examples, decoded: first.decoded.map(\.labels), frames: first.frames)
        var pieces: [(example: Int, samples: [Float])] = []
        for (k, p) in split.enumerated() {
            guard let (audio, ranges) = p else { continue }
            for r in ranges { pieces.append((k, Array(audio[r]))) }
        }
        let named = name(pieces, examples)
        var result = first
        var p = 0
        for k in examples.indices where p < pieces.count && pieces[p].example == k {
            let count = result.decoded[k].labels.count
            let mine = named[p..<(p + count)]
            p += count
            if mine.contains(where: { $0 == nil }) { continue }
            result.decoded[k] = (mine.map { classMap[$0!.label] }, mine.reduce(1.0) { $0 * $1!.probability })
        }
        last = (paths, beamWidth, result)
        return result
    }

    /// The last `decodeSequencesWithFrames` call's files, width and result.
    private var last: (paths: [String], beamWidth: Int, result: (decoded: [(labels: [Int], probability: Double)], loss: Double, frames: [Float]))?

    /// Each example's audio and the sample range of each of its `decoded` words (nil for an
    /// example with no word, no alignment or unreadable audio), from the first pass's `frames`
    /// (`[sum of frames, classes]`).
    func pieces(_ examples: [SpeechExample], decoded: [[Int]], frames frameProbabilities: [Float]) -> [(audio: [Float], ranges: [Range<Int>])?] {
        let C = classes, config = sequence.features
        let step = max(1, config.frameStep)
        var out: [(audio: [Float], ranges: [Range<Int>])?] = []
        var row = 0
        for (k, e) in examples.enumerated() {
            let n = e.features.frames
            defer { row += n }
            let labels = decoded[k]
            let logits = frameProbabilities[(row * C)..<((row + n) * C)].map { log(max($0, .leastNormalMagnitude)) }
            guard !labels.isEmpty, let wordFrames = logits.withUnsafeBufferPointer({
                CTC.bestAlignment(logits: $0.baseAddress!, frames: n, classes: C, target: labels.map { Int32($0) })
            }), let audio = try? AudioLoader.loadMono(URL(fileURLWithPath: e.path), sampleRate: config.sampleRate) else {
                out.append(nil); continue
            }
            let frames = Self.wordRanges(energies: Self.blockEnergies(audio, step: step), wordFrames: wordFrames)
            let ranges = frames.enumerated().map { i, r -> Range<Int> in
                let a = min(r.lowerBound * step, audio.count)
                // The last word's range ends with the audio when it reaches the last whole frame.
                let b = i == frames.count - 1 && r.upperBound >= audio.count / step ? audio.count : min(r.upperBound * step, audio.count)
                return a..<max(a, b)
            }
            out.append((audio, ranges))
        }
        return out
    }

    /// The utterance models' most probable class and its probability for each piece (nil for
    /// a piece that keeps no frame). The `try!`s cannot fail: an extractor fails only on a
    /// configuration no checkpoint loads with, statistics and normalisers only on a width
    /// mismatch, and every width here is a checkpoint's own, checked when it was read.
    func name(_ pieces: [(example: Int, samples: [Float])], _ examples: [SpeechExample]) -> [(label: Int, probability: Double)?] {
        let speakers = pieces.map { examples[$0.example].speaker }
        let paths = pieces.enumerated().map { "\(examples[$0.element.example].path)#\($0.offset)" }
        // Features under every configuration of the utterance models, speakers normalised over their pieces.
        let byConfiguration: [[FeatureMatrix]] = words.featureConfigurations.map { config in
            let extracted = Threading.parallelMap(count: pieces.count, threads: threads,
                                                  makeWorker: { try MFCCExtractor(config: config) }) { extractor, i in
                extractor.features(of: pieces[i].samples)
            }
            var features = extracted.map { try! $0.get() }
            if config.speakerNormalization {
                let usable = features.indices.filter { features[$0].frames > 0 }
                var some = usable.map { features[$0] }
                _ = try! SpeakerNormalization.normalize(&some, speakers: usable.map { speakers[$0] }, paths: usable.map { paths[$0] })
                for (j, i) in usable.enumerated() { features[i] = some[j] }
            }
            return features
        }
        let usable = pieces.indices.filter { i in byConfiguration.allSatisfy { $0[i].frames > 0 } }
        var wordExamples: [SpeechExample] = usable.map { i in
            var e = SpeechExample(path: paths[i], features: byConfiguration[0][i])
            e.speaker = speakers[i]
            e.variants = byConfiguration.dropFirst().map { $0[i] }
            return e
        }
        let normalizer = words.inputNormalizer
        for k in wordExamples.indices { try! normalizer.apply(to: &wordExamples[k].features, source: wordExamples[k].path) }
        var out = [(label: Int, probability: Double)?](repeating: nil, count: pieces.count)
        guard !wordExamples.isEmpty else { return out }
        var p: [Float] = []
        for start in stride(from: 0, to: wordExamples.count, by: Self.batch) {
            p += words.scorer.probabilities(Array(wordExamples[start..<min(start + Self.batch, wordExamples.count)])).probabilities
        }
        let W = words.classes
        for (j, i) in usable.enumerated() {
            let row = p[(j * W)..<((j + 1) * W)]
            let best = row.indices.max { row[$0] < row[$1] }!
            out[i] = (best - j * W, Double(row[best]))
        }
        return out
    }
}
