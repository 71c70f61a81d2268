import Foundation

/// Errors in a label-track file.
public enum LabelError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file cannot be read or is not UTF-8.
    case unreadable(path: String)
    /// A line does not have the form `start<TAB>end<TAB>label`.
    case malformedLine(path: String, line: Int, reason: String)
    /// A segment ends before it starts.
    case reversedSegment(path: String, line: Int, start: Double, end: Double)
    /// Two segments overlap.
    case overlappingSegments(path: String, line: Int, previousEnd: Double, start: Double)
    /// A segment ends after the audio does (beyond the tolerance).
    case pastEndOfAudio(path: String, line: Int, end: Double, duration: Double)

    /// One line naming the file and what is wrong.
    public var description: String {
        switch self {
        case let .unreadable(path): return "\(path): cannot read label file"
        case let .malformedLine(path, line, reason): return "\(path):\(line): \(reason)"
        case let .reversedSegment(path, line, s, e): return "\(path):\(line): segment ends (\(e) s) before it starts (\(s) s)"
        case let .overlappingSegments(path, line, pe, s):
            return "\(path):\(line): segment starting at \(s) s overlaps the previous one ending at \(pe) s"
        case let .pastEndOfAudio(path, line, e, d):
            return "\(path):\(line): segment ends at \(e) s, after the end of the audio (\(d) s)"
        }
    }
}

/// One labelled time span (seconds).
public struct LabelSegment: Sendable, Equatable, Codable {
    /// Start time in seconds.
    public var start: Double
    /// End time in seconds (≥ start).
    public var end: Double
    /// The label text.
    public var label: String

    /// Creates a segment.
    public init(start: Double, end: Double, label: String) {
        self.start = start; self.end = end; self.label = label
    }
}

/// A label track in Audacity's text format: one `start<TAB>end<TAB>label` line per segment,
/// times in seconds. Lines starting with `\` (Audacity's spectral-selection rows) and blank lines
/// are skipped. Segments are kept in file order, which must be by increasing time and
/// non-overlapping (touching is fine).
public struct LabelTrack: Sendable, Equatable {
    /// Segments in time order.
    public var segments: [LabelSegment]
    /// Where the track came from (used in errors).
    public var path: String
    /// 1-based source line of each segment (for errors).
    var lines: [Int]

    /// Label given to frames outside every segment.
    public static let silence = "silence"
    /// Default tolerance for a segment ending after the audio: 10 ms (one frame step at the
    /// default configuration), enough for times rounded to milliseconds by label editors and for
    /// resampling changing the length by a few samples.
    public static let defaultEndTolerance = 0.010

    /// Parses `text`; `path` names the source in errors.
    /// - Throws: `LabelError` for malformed lines, reversed or overlapping segments.
    public init(parsing text: String, path: String) throws {
        self.path = path
        segments = []
        lines = []
        var lineNo = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNo += 1
            let line = raw
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("\\") { continue }
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count >= 2 else {
                throw LabelError.malformedLine(path: path, line: lineNo, reason: "expected start<TAB>end<TAB>label")
            }
            guard let s = Double(fields[0].trimmingCharacters(in: .whitespaces)), s.isFinite, s >= 0 else {
                throw LabelError.malformedLine(path: path, line: lineNo, reason: "start time '\(fields[0])' is not a non-negative number")
            }
            guard let e = Double(fields[1].trimmingCharacters(in: .whitespaces)), e.isFinite, e >= 0 else {
                throw LabelError.malformedLine(path: path, line: lineNo, reason: "end time '\(fields[1])' is not a non-negative number")
            }
            if e < s { throw LabelError.reversedSegment(path: path, line: lineNo, start: s, end: e) }
            if let prev = segments.last, s < prev.end {
                throw LabelError.overlappingSegments(path: path, line: lineNo, previousEnd: prev.end, start: s)
            }
            let label = fields.count > 2 ? String(fields[2]) : ""
            segments.append(LabelSegment(start: s, end: e, label: label))
            lines.append(lineNo)
        }
    }

    /// Reads and parses a label file.
    public static func load(_ url: URL) throws -> LabelTrack {
        guard let data = FileManager.default.contents(atPath: url.path),
              let text = String(data: data, encoding: .utf8) else { throw LabelError.unreadable(path: url.path) }
        return try LabelTrack(parsing: text, path: url.path)
    }

    /// The label file conventionally beside `audio`: same name with extension `.txt`.
    public static func labelFileURL(forAudio audio: URL) -> URL {
        audio.deletingPathExtension().appendingPathExtension("txt")
    }

    /// Throws `LabelError.pastEndOfAudio` when a segment ends after `duration` + `tolerance` seconds.
    public func validate(duration: Double, tolerance: Double = LabelTrack.defaultEndTolerance) throws {
        for (i, s) in segments.enumerated() where s.end > duration + tolerance {
            throw LabelError.pastEndOfAudio(path: path, line: lines[i], end: s.end, duration: duration)
        }
    }

    /// One label per frame `[frames]`: the segment covering the frame's centre
    /// `(i·step + length/2) / rate` (half-open `[start, end)`), else `silence`.
    public func frameLabels(frameCount: Int, config: FeatureConfig, silence: String = LabelTrack.silence) -> [String] {
        let rate = Double(config.sampleRate)
        let step = Double(config.frameStep), half = Double(config.frameLength) / 2
        var out = [String](repeating: silence, count: max(0, frameCount))
        var seg = 0
        for i in 0..<max(0, frameCount) {
            let c = (Double(i) * step + half) / rate
            while seg < segments.count && segments[seg].end <= c { seg += 1 }
            if seg < segments.count && segments[seg].start <= c { out[i] = segments[seg].label }
        }
        return out
    }

    /// Features of `audio` with per-frame labels from the label file beside it.
    /// - Returns: features `[frames, config.featureCount]` and labels `[frames]`.
    /// - Throws: `AudioError`, `LabelError` (including segments past the end of the audio);
    ///   `FeatureError.invalidConfig` when the extractor trims silence (the labels belong to
    ///   the untrimmed frames).
    public static func labelledFeatures(audio: URL, extractor: MFCCExtractor,
                                        tolerance: Double = LabelTrack.defaultEndTolerance) throws -> (FeatureMatrix, [String]) {
        if extractor.config.trimDecibels != nil {
            throw FeatureError.invalidConfig(source: audio.path, reason: "silence trimming does not apply to label tracks (frame task)")
        }
        let track = try load(labelFileURL(forAudio: audio))
        let reader = try AudioReader(url: audio)
        try track.validate(duration: reader.info.duration, tolerance: tolerance)
        let feats = try extractor.features(ofFile: audio)
        return (feats, track.frameLabels(frameCount: feats.frames, config: extractor.config))
    }
}
