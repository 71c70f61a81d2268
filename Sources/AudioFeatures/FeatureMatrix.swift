import RecurrentCore
/// A feature sequence `[frames, features]`, row-major `Float`.
public struct FeatureMatrix: Sendable, Equatable {
    /// Number of rows (time steps).
    public var frames: Int
    /// Number of columns (features per frame).
    public var features: Int
    /// Row-major values `[frames * features]`.
    public var values: [Float]

    /// Wraps `values` `[frames * features]`; requires `values.count == frames * features`.
    public init(frames: Int, features: Int, values: [Float]) {
        precondition(frames >= 0 && features >= 0 && values.count == frames * features, "FeatureMatrix shape mismatch")
        self.frames = frames
        self.features = features
        self.values = values
    }

    /// Element at (`frame`, `feature`).
    public subscript(frame: Int, feature: Int) -> Float {
        get { values[frame * features + feature] }
        set { values[frame * features + feature] = newValue }
    }

    /// One row `[features]`.
    public func row(_ frame: Int) -> ArraySlice<Float> {
        values[(frame * features)..<((frame + 1) * features)]
    }
}

/// Regression deltas as in HTK and `python_speech_features.delta`.
public enum Deltas {
    /// Δ of `input` `[frames, width]` over ±`window` frames with edge padding:
    /// `d_t = Σ_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 Σ n²)`. Writes `[frames, width]` to `output`.
    public static func compute(input: UnsafePointer<Float>, inputStride: Int, output: UnsafeMutablePointer<Float>,
                               outputStride: Int, frames: Int, width: Int, window: Int) {
        guard frames > 0, width > 0 else { return }
        var denom: Float = 0
        for n in 1...window { denom += Float(2 * n * n) }
        let scale = 1 / denom
        for t in 0..<frames {
            let out = output + t * outputStride
            for k in 0..<width { out[k] = 0 }
            for n in 1...window {
                let fwd = input + min(t + n, frames - 1) * inputStride
                let bwd = input + max(t - n, 0) * inputStride
                let w = Float(n)
                for k in 0..<width { out[k] += w * (fwd[k] - bwd[k]) }
            }
            for k in 0..<width { out[k] *= scale }
        }
    }

    /// Δ of a `[frames, width]` matrix over ±`window` frames (edge padding); result `[frames, width]`.
    public static func delta(_ m: FeatureMatrix, window: Int = 2) -> FeatureMatrix {
        var out = [Float](repeating: 0, count: m.values.count)
        m.values.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                if let ib = i.baseAddress, let ob = o.baseAddress {
                    compute(input: ib, inputStride: m.features, output: ob, outputStride: m.features,
                            frames: m.frames, width: m.features, window: max(1, window))
                }
            }
        }
        return FeatureMatrix(frames: m.frames, features: m.features, values: out)
    }
}

extension FeatureNormalizer {
    /// Statistics over every frame of `matrices` (each `[frames, featureCount]`), e.g. the
    /// training set's features.
    public static func fitted(to matrices: [FeatureMatrix], featureCount: Int) throws -> FeatureNormalizer {
        var n = FeatureNormalizer(featureCount: featureCount)
        for (i, m) in matrices.enumerated() { try n.accumulate(m, source: "features #\(i)") }
        return n
    }

    /// Adds every frame of `m` `[frames, featureCount]`.
    /// - Throws: `FeatureNormalizerError.widthMismatch` when the width differs.
    public mutating func accumulate(_ m: FeatureMatrix, source: String = "features") throws {
        try accumulate(m.values, width: m.features, source: source)
    }

    /// Normalises `m` `[frames, featureCount]` in place.
    public func apply(to m: inout FeatureMatrix, source: String = "features") throws {
        try apply(to: &m.values, width: m.features, source: source)
    }
}
