import Foundation

/// How frames become feature vectors; stored with a model (it round-trips through JSON).
///
/// Every frame is converted to `colour`, resized to `width` x `height` by area averaging and
/// flattened row-major as `[height, width, channels]`. In `.frames` mode each frame is one time
/// step of `height * width * channels` features; in `.rows` mode each image row is one time step
/// of `width * channels` features ("sequential MNIST"), so a clip of `F` frames becomes
/// `F * height` steps. Both modes share the same memory layout; only the shape differs.
///
/// With `deltas` (frame mode only) each step also carries the temporal difference of the
/// normalised frame features, like the Δ features of speech: step `t` is
/// `[frame_t, frame_t - frame_(t-1)]`, `2 * featuresPerFrame` values, with a zero difference
/// at `t = 0`. Normalisation statistics cover the frame part only; the difference of two
/// normalised frames is the raw difference divided by the standard deviation.
public struct FeatureConfig: Codable, Sendable, Equatable {
    /// Colour of the features.
    public enum Colour: String, Codable, Sendable {
        /// One channel: luma `0.299 R + 0.587 G + 0.114 B` (grey input is taken as is).
        case grey
        /// Three channels R, G, B (grey input is replicated).
        case rgb
    }

    /// What one time step is.
    public enum SequenceMode: String, Codable, Sendable {
        /// One frame per time step.
        case frames
        /// One image row per time step.
        case rows
    }

    /// Output width in pixels (1...4096).
    public var width: Int
    /// Output height in pixels (1...4096).
    public var height: Int
    /// Output colour.
    public var colour: Colour
    /// Time-step unit.
    public var mode: SequenceMode
    /// Largest source image accepted, in pixels (width * height); larger headers are rejected
    /// before any pixel memory is allocated.
    public var maxPixels: Int
    /// Append frame differences to every step (frame mode only; absent in JSON = false).
    public var deltas: Bool

    /// Creates a configuration.
    public init(width: Int, height: Int, colour: Colour = .grey, mode: SequenceMode = .frames,
                maxPixels: Int = 4096 * 4096, deltas: Bool = false) {
        self.width = width
        self.height = height
        self.colour = colour
        self.mode = mode
        self.maxPixels = maxPixels
        self.deltas = deltas
    }

    private enum CodingKeys: String, CodingKey {
        case width, height, colour, mode, maxPixels, deltas
    }

    /// Decodes a configuration; `deltas` may be absent (configurations written before it
    /// existed) and then means false.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        width = try c.decode(Int.self, forKey: .width)
        height = try c.decode(Int.self, forKey: .height)
        colour = try c.decode(Colour.self, forKey: .colour)
        mode = try c.decode(SequenceMode.self, forKey: .mode)
        maxPixels = try c.decode(Int.self, forKey: .maxPixels)
        deltas = try c.decodeIfPresent(Bool.self, forKey: .deltas) ?? false
    }

    /// Channels per output pixel: 1 for grey, 3 for RGB.
    public var channels: Int { colour == .grey ? 1 : 3 }

    /// Features of one frame: `height * width * channels`.
    public var featuresPerFrame: Int { width * height * channels }

    /// Features of one time step before differences are appended (what normalisation
    /// statistics cover): a whole frame, or one row (`width * channels`).
    public var baseFeaturesPerStep: Int { mode == .frames ? featuresPerFrame : width * channels }

    /// Features of one time step: `baseFeaturesPerStep`, doubled with `deltas`.
    public var featuresPerStep: Int { deltas ? 2 * baseFeaturesPerStep : baseFeaturesPerStep }

    /// Time steps produced by `frames` frames.
    public func steps(frames: Int) -> Int { mode == .frames ? frames : frames * height }

    /// Time steps per frame: 1 or `height`.
    public var stepsPerFrame: Int { mode == .frames ? 1 : height }

    /// Throws `FrameError.invalidArgument` when a field is out of range.
    public func validate() throws {
        guard (1...4096).contains(width), (1...4096).contains(height) else {
            throw FrameError.invalidArgument("feature size \(width)x\(height) outside 1...4096")
        }
        guard maxPixels > 0 else {
            throw FrameError.invalidArgument("maxPixels \(maxPixels) must be positive")
        }
        guard !deltas || mode == .frames else {
            throw FrameError.invalidArgument("frame differences (deltas) need one frame per step, not rows")
        }
    }

    /// The configuration as a compact JSON object (keys sorted, stable across runs).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain integers and strings cannot fail.
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else {
            return "{}"
        }
        return text
    }

    /// Parses and validates a configuration written by `jsonString()`.
    public init(json: String) throws {
        do {
            self = try JSONDecoder().decode(FeatureConfig.self, from: Data(json.utf8))
        } catch {
            throw FrameError.invalidJSON(what: "feature configuration", reason: Self.shortReason(error))
        }
        try validate()
    }

    static func shortReason(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "missing key '\(key.stringValue)'"
        case let DecodingError.typeMismatch(_, ctx): return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case let DecodingError.valueNotFound(_, ctx): return "missing value at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case let DecodingError.dataCorrupted(ctx):
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return at.isEmpty ? "not valid JSON" : "bad value at '\(at)'"
        default: return "\(error)".split(separator: "\n").first.map(String.init) ?? "unknown error"
        }
    }
}
