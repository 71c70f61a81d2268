import Foundation
import RecurrentCore

/// Errors while listing or splitting an utterance data set.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The folder cannot be listed.
    case unreadableFolder(path: String)
    /// A manifest cannot be read or a line is malformed.
    case badManifest(path: String, line: Int, reason: String)
    /// A file name does not yield a label (or speaker/index) with the chosen rule.
    case unlabelled(path: String, reason: String)
    /// An invalid option (label rule, split name); `source` says where it came from.
    case invalidOption(source: String, reason: String)
    /// `speaker:NAME` names no speaker of the data; `known` lists those found (sorted).
    case unknownSpeaker(name: String, known: [String])
    /// Speaker normalisation needs every training and test file's speaker; this name has none.
    case noSpeaker(path: String)

    /// One line naming the file and what is wrong.
    public var description: String {
        switch self {
        case let .unreadableFolder(path): return "\(path): cannot list folder"
        case let .badManifest(path, line, reason): return "\(path):\(line): \(reason)"
        case let .unlabelled(path, reason): return "\(path): no label: \(reason)"
        case let .invalidOption(source, reason): return "\(source): \(reason)"
        case let .unknownSpeaker(name, known):
            let list = known.prefix(20).joined(separator: ", ") + (known.count > 20 ? ", … (\(known.count) in all)" : "")
            return "--split: speaker '\(name)' is unknown; speakers found: \(known.isEmpty ? "none" : list)"
        case let .noSpeaker(path):
            return "\(path): no speaker in the name ({label}_{speaker}_{index}), which --speaker-cmvn groups the files by"
        }
    }
}

/// One audio file with its utterance label.
public struct Utterance: Sendable, Hashable {
    /// The audio file.
    public var url: URL
    /// Class label.
    public var label: String
    /// Speaker, when the file name follows FSDD's `{label}_{speaker}_{index}` convention.
    public var speaker: String?
    /// Take index, when the file name follows FSDD's convention.
    public var index: Int?

    /// Creates an utterance record.
    public init(url: URL, label: String, speaker: String? = nil, index: Int? = nil) {
        self.url = url; self.label = label; self.speaker = speaker; self.index = index
    }

    /// Speaker and take index of an FSDD-style name `{label}_{speaker}_{index}.ext` (three
    /// fields split at `_`; the index is nil when not a number); nil for other names.
    public static func fsddFields(of url: URL) -> (speaker: String, index: Int?)? {
        let fields = url.deletingPathExtension().lastPathComponent.split(separator: "_", omittingEmptySubsequences: false)
        return fields.count == 3 ? (String(fields[1]), Int(fields[2])) : nil
    }
}

/// How an utterance gets its label.
public enum LabelRule: Sendable, Equatable {
    /// Field `index` (0-based) of the file's base name split at `separator` (FSDD: field 0, `_`).
    case filenameField(index: Int, separator: Character)
    /// First capture group of a regular expression matched against the base name (no extension).
    case filenamePattern(String)
    /// Name of the folder holding the file.
    case parentFolder
    /// CSV manifest `path,label` (header line `path,label` optional; relative paths are
    /// relative to the manifest's folder).
    case manifest(URL)

    /// FSDD's convention: the leading field before `_`.
    public static let fsdd = LabelRule.filenameField(index: 0, separator: "_")

    /// Parses `field:N`, `field:N:SEP`, `regex:PATTERN`, `folder`, `manifest:PATH`.
    public init(parsing s: String) throws {
        if s == "folder" { self = .parentFolder; return }
        if s.hasPrefix("regex:") {
            let p = String(s.dropFirst(6))
            guard (try? Regex(p)) != nil else { throw DatasetError.invalidOption(source: "label rule", reason: "invalid regular expression '\(p)'") }
            self = .filenamePattern(p); return
        }
        if s.hasPrefix("manifest:") { self = .manifest(URL(fileURLWithPath: String(s.dropFirst(9)))); return }
        if s.hasPrefix("field:") {
            let parts = s.dropFirst(6).split(separator: ":", maxSplits: 1)
            if let f = parts.first, let i = Int(f), i >= 0 {
                let sep: Character = parts.count > 1 ? (parts[1].first ?? "_") : "_"
                self = .filenameField(index: i, separator: sep); return
            }
        }
        throw DatasetError.invalidOption(source: "label rule", reason: "'\(s)' is not field:N[:SEP], regex:PATTERN, folder or manifest:PATH")
    }
}

/// How to split utterances into training and test sets.
public enum DatasetSplit: Sendable, Equatable {
    /// FSDD's official split: take index 0–4 → test, 5–49 → train.
    case official
    /// All utterances of this speaker → test, the rest → train.
    case speaker(String)
    /// All utterances of these speakers → test, the rest → train.
    case speakers([String])
    /// Seeded shuffle, then the first `testFraction` of the files → test.
    case random(seed: UInt64, testFraction: Double)

    /// Parses `official`, `speaker:NAME`, `speakers:A,B,...`, `random`, `random:SEED`,
    /// `random:SEED:FRACTION` (defaults seed 1, fraction 0.1).
    public init(parsing s: String) throws {
        if s == "official" { self = .official; return }
        if s.hasPrefix("speaker:"), s.count > 8 { self = .speaker(String(s.dropFirst(8))); return }
        if s.hasPrefix("speakers:") {
            let names = s.dropFirst(9).split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty }) else {
                throw DatasetError.invalidOption(source: "split", reason: "'\(s)' is not speakers:A,B,... (names separated by commas)")
            }
            self = .speakers(names); return
        }
        if s == "random" || s.hasPrefix("random:") {
            let parts = s.split(separator: ":").dropFirst()
            let seed = parts.first.flatMap { UInt64($0) }
            let frac = parts.dropFirst().first.flatMap { Double($0) }
            if (parts.count >= 1 && seed == nil) || (parts.count >= 2 && frac == nil) || parts.count > 2 {
                throw DatasetError.invalidOption(source: "split", reason: "'\(s)' is not random[:SEED[:FRACTION]]")
            }
            let f = frac ?? 0.1
            guard f > 0, f < 1 else { throw DatasetError.invalidOption(source: "split", reason: "test fraction \(f) outside (0, 1)") }
            self = .random(seed: seed ?? 1, testFraction: f); return
        }
        throw DatasetError.invalidOption(source: "split", reason: "'\(s)' is not official, speaker:NAME, speakers:A,B,... or random[:SEED[:FRACTION]]")
    }

    /// The `--split` text of a training run given `--split` and `--test-fraction`: the fraction is
    /// that of a random split (`random:SEED:F`, seeded by `seed` unless the split names its own);
    /// with neither, `official`.
    /// - Throws: `DatasetError.invalidOption` when the fraction is outside (0, 1), the split is not
    ///   random, or both give a fraction.
    public static func trainingText(split: String?, testFraction: Double?, seed: UInt64) throws -> String {
        guard let f = testFraction else { return split ?? "official" }
        guard f > 0, f < 1 else { throw DatasetError.invalidOption(source: "--test-fraction", reason: "must be above 0 and below 1 (got \(f))") }
        guard let split else { return "random:\(seed):\(f)" }
        let parts = split.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.first == "random" else {
            throw DatasetError.invalidOption(source: "--test-fraction", reason: "applies to a random split; --split \(split) chooses the test files itself")
        }
        switch parts.count {
        case 1: return "random:\(seed):\(f)"
        case 2: return "\(split):\(f)"
        default: throw DatasetError.invalidOption(source: "--test-fraction", reason: "--split \(split) already gives the test fraction")
        }
    }
}

/// Listing, labelling, splitting and parallel feature extraction of utterance data sets.
public enum UtteranceDataset {
    /// Extensions listed by default.
    public static let audioExtensions: Set<String> = ["wav", "flac", "ogg", "aiff", "aif", "au"]

    /// Lists audio files directly in `folder` (or, for `.parentFolder`, in its immediate
    /// subfolders; for `.manifest`, the files the manifest names), sorted by path, labelled by
    /// `rule`. FSDD-style `{label}_{speaker}_{index}` names also fill `speaker` and `index`.
    public static func list(folder: URL, rule: LabelRule = .fsdd,
                            extensions: Set<String> = audioExtensions) throws -> [Utterance] {
        if case let .manifest(m) = rule { return try readManifest(m) }
        let fm = FileManager.default
        var files: [URL] = []
        func audioFiles(in dir: URL) throws -> [URL] {
            guard let names = try? fm.contentsOfDirectory(atPath: dir.path) else {
                throw DatasetError.unreadableFolder(path: dir.path)
            }
            return names.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) && !$0.hasPrefix(".") }
                .map { dir.appendingPathComponent($0) }
        }
        if case .parentFolder = rule {
            guard let names = try? fm.contentsOfDirectory(atPath: folder.path) else {
                throw DatasetError.unreadableFolder(path: folder.path)
            }
            for n in names where !n.hasPrefix(".") {
                var isDir: ObjCBool = false
                let sub = folder.appendingPathComponent(n)
                if fm.fileExists(atPath: sub.path, isDirectory: &isDir), isDir.boolValue { files += try audioFiles(in: sub) }
            }
        } else {
            files = try audioFiles(in: folder)
        }
        files.sort { $0.path < $1.path }
        let regex: Regex<AnyRegexOutput>?
        if case let .filenamePattern(p) = rule {
            do { regex = try Regex(p) } catch {
                throw DatasetError.invalidOption(source: "label rule", reason: "invalid regular expression '\(p)'")
            }
        } else { regex = nil }
        return try files.map { url in
            let base = url.deletingPathExtension().lastPathComponent
            let fsdd = Utterance.fsddFields(of: url)
            let label: String
            switch rule {
            case let .filenameField(i, sep):
                let f = base.split(separator: sep, omittingEmptySubsequences: false)
                guard i < f.count, !f[i].isEmpty else {
                    throw DatasetError.unlabelled(path: url.path, reason: "no field \(i) when split at '\(sep)'")
                }
                label = String(f[i])
            case .filenamePattern:
                guard let r = regex, let m = try? r.firstMatch(in: base), m.output.count > 1,
                      let sub = m.output[1].substring, !sub.isEmpty else {
                    throw DatasetError.unlabelled(path: url.path, reason: "name does not match the label pattern")
                }
                label = String(sub)
            case .parentFolder:
                label = url.deletingLastPathComponent().lastPathComponent
            case .manifest:
                label = ""
            }
            return Utterance(url: url, label: label, speaker: fsdd?.speaker, index: fsdd?.index)
        }
    }

    /// Reads a CSV manifest `path,label` (one per line; optional header `path,label`; `#`
    /// comments and blank lines skipped; relative paths resolved against the manifest's folder).
    public static func readManifest(_ manifest: URL) throws -> [Utterance] {
        guard let data = FileManager.default.contents(atPath: manifest.path),
              let text = String(data: data, encoding: .utf8) else {
            throw DatasetError.badManifest(path: manifest.path, line: 0, reason: "cannot read manifest")
        }
        let dir = manifest.deletingLastPathComponent()
        var out: [Utterance] = []
        var lineNo = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNo += 1
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if lineNo == 1 && line.lowercased() == "path,label" { continue }
            guard let comma = line.lastIndex(of: ",") else {
                throw DatasetError.badManifest(path: manifest.path, line: lineNo, reason: "expected path,label")
            }
            let p = String(line[..<comma]).trimmingCharacters(in: .whitespaces)
            let l = String(line[line.index(after: comma)...]).trimmingCharacters(in: .whitespaces)
            guard !p.isEmpty, !l.isEmpty else {
                throw DatasetError.badManifest(path: manifest.path, line: lineNo, reason: "empty path or label")
            }
            let url = p.hasPrefix("/") ? URL(fileURLWithPath: p) : dir.appendingPathComponent(p)
            let fsdd = Utterance.fsddFields(of: url)
            out.append(Utterance(url: url, label: l, speaker: fsdd?.speaker, index: fsdd?.index))
        }
        return out
    }

    /// Splits `utterances` into (train, test), keeping the input order within each part.
    /// - Throws: `DatasetError.unlabelled` when `official` or `speaker:` meets a file without
    ///   FSDD-style speaker/index fields; `.unknownSpeaker` when no file has the speaker.
    public static func split(_ utterances: [Utterance], by split: DatasetSplit) throws -> (train: [Utterance], test: [Utterance]) {
        var train: [Utterance] = [], test: [Utterance] = []
        switch split {
        case .official:
            for u in utterances {
                guard let i = u.index else { throw DatasetError.unlabelled(path: u.url.path, reason: "no take index ({label}_{speaker}_{index})") }
                if i <= 4 { test.append(u) } else { train.append(u) }
            }
        case .speaker, .speakers:
            let held: Set<String>
            if case let .speaker(name) = split { held = [name] } else if case let .speakers(names) = split { held = Set(names) } else { held = [] }
            for u in utterances {
                guard let s = u.speaker else { throw DatasetError.unlabelled(path: u.url.path, reason: "no speaker ({label}_{speaker}_{index})") }
                if held.contains(s) { test.append(u) } else { train.append(u) }
            }
            let known = Set(utterances.compactMap(\.speaker))
            if !utterances.isEmpty, let missing = held.sorted().first(where: { !known.contains($0) }) {
                throw DatasetError.unknownSpeaker(name: missing, known: known.sorted())
            }
        case let .random(seed, fraction):
            var order = Array(utterances.indices)
            var rng = SeededRandom(seed: seed)
            rng.shuffle(&order)
            let nTest = Int((Double(utterances.count) * fraction).rounded())
            var isTest = [Bool](repeating: false, count: utterances.count)
            for i in order.prefix(nTest) { isTest[i] = true }
            for (i, u) in utterances.enumerated() { if isTest[i] { test.append(u) } else { train.append(u) } }
        }
        return (train, test)
    }

    /// Features `[frames, config.featureCount]` of each file, in the order of `urls`, computed on
    /// `threads` worker threads (default: active processor count) with one extractor per worker.
    /// The result does not depend on the thread count. When files fail, the error of the first
    /// failing file (lowest index) is thrown.
    public static func extractFeatures(_ urls: [URL], config: FeatureConfig = FeatureConfig(),
                                       threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> [FeatureMatrix] {
        try config.validate()
        let n = urls.count
        if n == 0 { return [] }
        return try Threading.parallelMap(count: n, threads: threads, makeWorker: { try MFCCExtractor(config: config) }) {
            extractor, i in try extractor.features(ofFile: urls[i])
        }.map { try $0.get() }
    }
}

