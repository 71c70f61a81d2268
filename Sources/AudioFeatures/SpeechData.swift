import Foundation
import RecurrentCore

/// One training or evaluation example: normalised features and class indices.
public struct SpeechExample: Sendable {
    /// The audio file it came from.
    public var path: String
    /// Features `[frames, features]`.
    public var features: FeatureMatrix
    /// Utterance class index (utterance task), -1 when unknown.
    public var label: Int
    /// Per-frame class indices `[frames]` (frame task), empty otherwise.
    public var frameLabels: [Int32]
    /// Class indices of the label sequence (sequence task; never the blank 0), empty otherwise.
    public var labelSequence: [Int32]
    /// The decoded mono audio at the feature rate, kept for training examples when augmentation
    /// changes the audio (features are then recomputed at every step); nil otherwise.
    public var audio: [Float]? = nil
    /// The speaker, from an FSDD-style name; nil otherwise. With speaker normalisation,
    /// augmented features are normalised with this speaker's statistics.
    public var speaker: String? = nil
    /// For an ensemble whose members normalise differently: the same file's features under the
    /// ensemble's other configurations (`SpeechEnsemble.featureConfigurations[1...]`, in order),
    /// un-normalised by training statistics like `features`; empty otherwise.
    public var variants: [FeatureMatrix] = []

    /// Creates an example.
    public init(path: String, features: FeatureMatrix, label: Int = -1, frameLabels: [Int32] = [], labelSequence: [Int32] = []) {
        self.path = path; self.features = features; self.label = label; self.frameLabels = frameLabels
        self.labelSequence = labelSequence
    }
}

/// Features of one audio file with its labels as text, before encoding.
public struct LoadedUtterance: Sendable {
    /// The audio file.
    public var url: URL
    /// Features `[frames, features]` (not normalised).
    public var features: FeatureMatrix
    /// Utterance label (utterance task).
    public var label: String
    /// Per-frame labels `[frames]` (frame task), empty otherwise.
    public var frameLabels: [String]
    /// The speaker, from an FSDD-style name; nil otherwise.
    public var speaker: String? = nil
}

/// A file left out of a data set, with the one-line reason (the error's description, which
/// names the file).
public struct SkippedFile: Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// Why it was left out (one line naming the file).
    public var reason: String
    /// `reason`.
    public var description: String { reason }
}

/// Errors that stop the loading of a data set.
public enum SpeechDataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No usable file is left in a part of the data set.
    case noUsableFiles(path: String, part: String, skipped: Int)
    /// Labels that the data set lacks for a meaningful classifier.
    case tooFewClasses(path: String, found: [String])

    /// One line naming the folder and the problem.
    public var description: String {
        switch self {
        case let .noUsableFiles(path, part, skipped):
            return "\(path): no usable audio files for the \(part) set (\(skipped) skipped)"
        case let .tooFewClasses(path, found):
            return "\(path): need at least 2 classes, found \(found.count) (\(found.joined(separator: ", ")))"
        }
    }
}

/// Class names and their indices, in a fixed order stored in checkpoints.
public struct LabelSet: Codable, Sendable, Equatable {
    /// Class names; index = position.
    public let names: [String]
    private let index: [String: Int]

    /// Creates the set from names (duplicates removed, first occurrence kept).
    public init(names: [String]) {
        var seen: [String] = []
        var idx: [String: Int] = [:]
        for n in names where idx[n] == nil { idx[n] = seen.count; seen.append(n) }
        self.names = seen
        index = idx
    }

    /// The labels present in `labels`, sorted, with `first` (e.g. `silence`) placed first when given and present.
    public static func collecting<S: Sequence>(_ labels: S, first: String? = nil) -> LabelSet where S.Element == String {
        var all = Set(labels)
        var out: [String] = []
        if let first, all.remove(first) != nil { out.append(first) }
        out += all.sorted { a, b in
            if let x = Int(a), let y = Int(b) { return x < y }
            return a < b
        }
        return LabelSet(names: out)
    }

    /// Index of `name`, nil when unknown.
    public func index(of name: String) -> Int? { index[name] }
    /// Number of classes.
    public var count: Int { names.count }

    enum CodingKeys: String, CodingKey { case names }
    /// Decodes `{"names": [...]}`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(names: try c.decode([String].self, forKey: .names))
    }
    /// Encodes `{"names": [...]}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(names, forKey: .names)
    }
}

/// Loading of speech data sets for both tasks, with the skip policy of the suite:
/// a file that cannot be used (not audio, truncated, lying or self-contradicting header, empty,
/// NaN/Inf samples, a broken or missing label track, a label unknown to the model) is
/// left out and reported as one line naming it; loading stops with an error only when a part
/// of the data set has no usable file left.
public enum SpeechCorpus {
    /// Lists a data set folder for `task`.
    ///
    /// Utterance task: audio files directly in `folder`, labelled by `rule` (default FSDD's
    /// `{label}_{speaker}_{index}`). Frame task: audio files directly in `folder`, each with a
    /// label track `NAME.txt` beside it; FSDD-style names give the speaker (voice) and index.
    public static func list(folder: URL, task: SpeechTask, rule: LabelRule = .fsdd) throws -> [Utterance] {
        switch task {
        case .utterance, .sequence:
            return try UtteranceDataset.list(folder: folder, rule: rule)
        case .frame:
            // Labels come from the tracks; names only give speaker/index. A file whose name
            // has no field 0 still loads.
            return try UtteranceDataset.list(folder: folder, rule: .filenamePattern("^(.*)$"))
        }
    }

    /// Train/test lists of a folder. When `folder/train` and `folder/test` both exist (the
    /// generator's held-out-voice layout) they are used and `split` is ignored; otherwise the
    /// files of `folder` are split by `split`.
    /// - Returns: the two lists and a note saying which split was used.
    public static func trainTest(folder: URL, task: SpeechTask, split: DatasetSplit,
                                 rule: LabelRule = .fsdd) throws -> (train: [Utterance], test: [Utterance], note: String) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let tr = folder.appendingPathComponent("train"), te = folder.appendingPathComponent("test")
        if fm.fileExists(atPath: tr.path, isDirectory: &isDir), isDir.boolValue,
           fm.fileExists(atPath: te.path, isDirectory: &isDir), isDir.boolValue {
            return (try list(folder: tr, task: task, rule: rule), try list(folder: te, task: task, rule: rule), "train/ and test/ folders")
        }
        let all = try list(folder: folder, task: task, rule: rule)
        let parts = try UtteranceDataset.split(all, by: split)
        return (parts.train, parts.test, split.name)
    }

    /// Extracts the features (and, for the frame task, the per-frame labels) of every file on
    /// `threads` threads, one extractor per thread. Files that fail are returned in `skipped`
    /// (input order), the rest in `loaded` (input order). Files with no frame are skipped.
    /// With `config.speakerNormalization` the loaded files' features are normalised per speaker
    /// (`SpeakerNormalization`) and `speakers` holds each group's statistics (before
    /// normalisation); otherwise `speakers` is empty. `frequencyWarp` ≠ 1 warps the mel
    /// filterbank (`MFCCExtractor(config:frequencyWarp:)`; test-time adaptation, `WarpAdaptation`).
    public static func load(_ files: [Utterance], task: SpeechTask, config: FeatureConfig, frequencyWarp: Double = 1,
                            threads: Int = Threading.defaultThreads) throws
        -> (loaded: [LoadedUtterance], skipped: [SkippedFile], speakers: [String: FeatureNormalizer]) {
        try config.validate()
        let n = files.count
        if n == 0 { return ([], [], [:]) }
        let results = Threading.parallelMap(count: n, threads: threads,
                                            makeWorker: { try MFCCExtractor(config: config, frequencyWarp: frequencyWarp) }) {
            extractor, i -> LoadedUtterance in
            let u = files[i]
            let item: LoadedUtterance
            switch task {
            case .utterance, .sequence:
                item = LoadedUtterance(url: u.url, features: try extractor.features(ofFile: u.url), label: u.label, frameLabels: [])
            case .frame:
                let (f, labels) = try LabelTrack.labelledFeatures(audio: u.url, extractor: extractor)
                item = LoadedUtterance(url: u.url, features: f, label: u.label, frameLabels: labels)
            }
            if item.features.frames == 0 { throw AudioError.empty(path: u.url.path) }
            return item
        }
        var loaded: [LoadedUtterance] = [], skipped: [SkippedFile] = []
        for (i, r) in results.enumerated() {
            switch r {
            case var .success(item): item.speaker = files[i].speaker; loaded.append(item)
            case let .failure(e): skipped.append(SkippedFile(path: files[i].url.path, reason: "\(e)"))
            }
        }
        guard config.speakerNormalization else { return (loaded, skipped, [:]) }
        var features = loaded.map(\.features)
        let speakers = try SpeakerNormalization.normalize(&features, speakers: loaded.map(\.speaker), paths: loaded.map(\.url.path))
        for k in loaded.indices { loaded[k].features = features[k] }
        return (loaded, skipped, speakers)
    }

    /// Normalises and encodes loaded files with `labels`; a file whose label (utterance task)
    /// or any frame label (frame task) is not in `labels` is skipped.
    public static func encode(_ loaded: [LoadedUtterance], task: SpeechTask, labels: LabelSet,
                              normalizer: FeatureNormalizer) throws -> (examples: [SpeechExample], skipped: [SkippedFile]) {
        var out: [SpeechExample] = [], skipped: [SkippedFile] = []
        out.reserveCapacity(loaded.count)
        for item in loaded {
            var f = item.features
            try normalizer.apply(to: &f, source: item.url.path)
            var e: SpeechExample
            switch task {
            case .utterance:
                guard let k = labels.index(of: item.label) else {
                    skipped.append(SkippedFile(path: item.url.path, reason: "\(item.url.path): label '\(item.label)' is not one of the model's classes"))
                    continue
                }
                e = SpeechExample(path: item.url.path, features: f, label: k)
            case .frame:
                var ids = [Int32](repeating: 0, count: item.frameLabels.count)
                var unknown: String?
                for (t, l) in item.frameLabels.enumerated() {
                    if let k = labels.index(of: l) { ids[t] = Int32(k) } else { unknown = l; break }
                }
                if let unknown {
                    skipped.append(SkippedFile(path: item.url.path, reason: "\(item.url.path): frame label '\(unknown)' is not one of the model's classes"))
                    continue
                }
                e = SpeechExample(path: item.url.path, features: f, frameLabels: ids)
            case .sequence:
                let tokens = SpeechTask.tokens(of: item.label)
                var ids: [Int32] = []
                if let unknown = tokens.first(where: { labels.index(of: $0) == nil || $0 == SpeechTask.blank }) {
                    skipped.append(SkippedFile(path: item.url.path, reason: "\(item.url.path): label '\(unknown)' is not one of the model's classes"))
                    continue
                }
                for t in tokens { ids.append(Int32(labels.index(of: t)!)) }
                guard !ids.isEmpty else {
                    skipped.append(SkippedFile(path: item.url.path, reason: "\(item.url.path): empty label sequence"))
                    continue
                }
                e = SpeechExample(path: item.url.path, features: f, labelSequence: ids)
            }
            e.speaker = item.speaker
            out.append(e)
        }
        return (out, skipped)
    }

    /// Mini-batches of example indices grouped by length: the indices are shuffled, cut into
    /// pools of `batchSize * 20`, each pool sorted by length and cut into batches, and the
    /// batch order shuffled. Padding stays small while every epoch sees a new grouping.
    public static func batches(lengths: [Int], batchSize: Int, rng: inout SeededRandom) -> [[Int]] {
        var order = Array(lengths.indices)
        rng.shuffle(&order)
        let bs = max(1, batchSize), pool = bs * 20
        var out: [[Int]] = []
        var start = 0
        while start < order.count {
            let chunk = order[start..<min(start + pool, order.count)].sorted { lengths[$0] < lengths[$1] }
            var s = 0
            while s < chunk.count { out.append(Array(chunk[s..<min(s + bs, chunk.count)])); s += bs }
            start += pool
        }
        rng.shuffle(&out)
        return out
    }

    /// Batches in length order (no shuffling), for evaluation.
    public static func orderedBatches(lengths: [Int], batchSize: Int) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] < lengths[$1] }
        let bs = max(1, batchSize)
        return stride(from: 0, to: order.count, by: bs).map { Array(order[$0..<min($0 + bs, order.count)]) }
    }
}


extension DatasetSplit {
    /// The split as written on command lines: `official`, `speaker:NAME`, `random:SEED:FRACTION`.
    public var name: String {
        switch self {
        case .official: return "official"
        case let .speaker(s): return "speaker:\(s)"
        case let .speakers(names): return "speakers:" + names.joined(separator: ",")
        case let .random(seed, fraction): return "random:\(seed):\(fraction)"
        }
    }
}

/// A data set ready for training: encoded, normalised train and test examples.
public struct PreparedSpeechData: Sendable {
    /// Training examples (normalised with `normalizer`).
    public var train: [SpeechExample]
    /// Held-out examples (normalised with `normalizer`).
    public var test: [SpeechExample]
    /// Class names (from the training files; `silence` first for the frame task).
    public var labels: LabelSet
    /// Statistics of the training features.
    public var normalizer: FeatureNormalizer
    /// With speaker normalisation: each training speaker's statistics (before normalisation),
    /// which augmented features of that speaker are normalised with; empty otherwise.
    public var speakerStatistics: [String: FeatureNormalizer] = [:]
    /// Files left out, with reasons.
    public var skipped: [SkippedFile]
    /// Which split was used.
    public var splitNote: String
}

extension SpeechCorpus {
    /// Lists, splits, loads (skipping unusable files), fits the normaliser on the training
    /// features, collects the class names from the training labels and encodes both parts.
    /// - Throws: listing errors, `SpeechDataError.noUsableFiles` when a part ends up empty,
    ///   `SpeechDataError.tooFewClasses` when the training labels have fewer than 2 classes.
    public static func prepare(folder: URL, task: SpeechTask, split: DatasetSplit, rule: LabelRule = .fsdd,
                               config: FeatureConfig, threads: Int = Threading.defaultThreads) throws -> PreparedSpeechData {
        let (trainFiles, testFiles, note) = try trainTest(folder: folder, task: task, split: split, rule: rule)
        if config.speakerNormalization, let u = (trainFiles + testFiles).first(where: { $0.speaker == nil }) {
            throw DatasetError.noSpeaker(path: u.url.path)
        }
        let tr = try load(trainFiles, task: task, config: config, threads: threads)
        let te = try load(testFiles, task: task, config: config, threads: threads)
        var skipped = tr.skipped + te.skipped
        guard !tr.loaded.isEmpty else { throw SpeechDataError.noUsableFiles(path: folder.path, part: "training", skipped: tr.skipped.count) }
        guard !te.loaded.isEmpty else { throw SpeechDataError.noUsableFiles(path: folder.path, part: "test", skipped: te.skipped.count) }
        var normalizer = FeatureNormalizer(featureCount: config.featureCount)
        for item in tr.loaded { try normalizer.accumulate(item.features, source: item.url.path) }
        let labels: LabelSet
        switch task {
        case .utterance: labels = LabelSet.collecting(tr.loaded.map(\.label))
        case .frame: labels = LabelSet.collecting(tr.loaded.flatMap(\.frameLabels) + [LabelTrack.silence], first: LabelTrack.silence)
        case .sequence:
            labels = LabelSet(names: [SpeechTask.blank] + LabelSet.collecting(tr.loaded.flatMap { SpeechTask.tokens(of: $0.label) }).names)
        }
        guard labels.count >= 2 else { throw SpeechDataError.tooFewClasses(path: folder.path, found: labels.names) }
        let trainEnc = try encode(tr.loaded, task: task, labels: labels, normalizer: normalizer)
        let testEnc = try encode(te.loaded, task: task, labels: labels, normalizer: normalizer)
        skipped += trainEnc.skipped + testEnc.skipped
        guard !testEnc.examples.isEmpty else { throw SpeechDataError.noUsableFiles(path: folder.path, part: "test", skipped: te.skipped.count + testEnc.skipped.count) }
        return PreparedSpeechData(train: trainEnc.examples, test: testEnc.examples, labels: labels, normalizer: normalizer,
                                  speakerStatistics: tr.speakers, skipped: skipped, splitNote: note)
    }
}
