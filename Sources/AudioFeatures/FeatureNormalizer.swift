import Foundation

/// Per-feature mean/variance normalisation with statistics accumulated over a training set.
///
/// Accumulates count, Σx and Σx² per feature in `Double`; `apply` maps each column to
/// `(x - mean) / max(std, minimumStd)`. Codable, so the statistics can be stored as JSON beside a
/// model (or in checkpoint metadata) and restored for inference.
public struct FeatureNormalizer: Codable, Sendable, Equatable {
    /// Feature width this normaliser expects.
    public private(set) var featureCount: Int
    /// Number of frames accumulated.
    public private(set) var count: Int
    /// Σx per feature `[featureCount]`.
    public private(set) var sum: [Double]
    /// Σx² per feature `[featureCount]`.
    public private(set) var sumSquares: [Double]
    /// Standard deviations below this are clamped (constant features are only centred).
    public var minimumStd: Double = 1e-5

    /// An empty accumulator for rows of `featureCount` features.
    public init(featureCount: Int) {
        self.featureCount = featureCount
        count = 0
        sum = [Double](repeating: 0, count: featureCount)
        sumSquares = [Double](repeating: 0, count: featureCount)
    }

    /// Statistics over every frame of `matrices` (each `[frames, featureCount]`), e.g. the
    /// training set's features.
    public static func fitted(to matrices: [FeatureMatrix], featureCount: Int) throws -> FeatureNormalizer {
        var n = FeatureNormalizer(featureCount: featureCount)
        for (i, m) in matrices.enumerated() { try n.accumulate(m, source: "features #\(i)") }
        return n
    }

    /// Adds every frame of `m` `[frames, featureCount]`.
    /// - Throws: `FeatureError.dimensionMismatch` when the width differs.
    public mutating func accumulate(_ m: FeatureMatrix, source: String = "features") throws {
        guard m.features == featureCount else {
            throw FeatureError.dimensionMismatch(source: source, expected: featureCount, got: m.features)
        }
        let f = featureCount
        sum.withUnsafeMutableBufferPointer { s in
            sumSquares.withUnsafeMutableBufferPointer { q in
                m.values.withUnsafeBufferPointer { v in
                    for t in 0..<m.frames {
                        let row = v.baseAddress! + t * f
                        for k in 0..<f { let x = Double(row[k]); s[k] += x; q[k] += x * x }
                    }
                }
            }
        }
        count += m.frames
    }

    /// Combines the statistics of two accumulators of the same width.
    public mutating func merge(_ other: FeatureNormalizer) throws {
        guard other.featureCount == featureCount else {
            throw FeatureError.dimensionMismatch(source: "normaliser merge", expected: featureCount, got: other.featureCount)
        }
        for k in 0..<featureCount { sum[k] += other.sum[k]; sumSquares[k] += other.sumSquares[k] }
        count += other.count
    }

    /// Mean per feature `[featureCount]` (zeros before any data).
    public var mean: [Double] { sum.map { count > 0 ? $0 / Double(count) : 0 } }

    /// Population standard deviation per feature `[featureCount]` (ones before any data).
    public var standardDeviation: [Double] {
        guard count > 0 else { return [Double](repeating: 1, count: featureCount) }
        let n = Double(count)
        return (0..<featureCount).map { k in
            let m = sum[k] / n
            return max(0, sumSquares[k] / n - m * m).squareRoot()
        }
    }

    /// Normalises `m` `[frames, featureCount]` in place.
    public func apply(to m: inout FeatureMatrix, source: String = "features") throws {
        guard m.features == featureCount else {
            throw FeatureError.dimensionMismatch(source: source, expected: featureCount, got: m.features)
        }
        let mu = mean.map { Float($0) }
        let inv = standardDeviation.map { Float(1 / max($0, minimumStd)) }
        let f = featureCount, frames = m.frames
        m.values.withUnsafeMutableBufferPointer { v in
            for t in 0..<frames {
                let row = v.baseAddress! + t * f
                for k in 0..<f { row[k] = (row[k] - mu[k]) * inv[k] }
            }
        }
    }

    /// JSON encoding of the statistics.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(self)
    }

    /// Decodes and validates statistics from JSON; `path` names the source in errors.
    public static func decode(jsonData: Data, path: String) throws -> FeatureNormalizer {
        let n: FeatureNormalizer
        do { n = try JSONDecoder().decode(FeatureNormalizer.self, from: jsonData) } catch {
            throw FeatureError.invalidStatistics(path: path, reason: "not valid JSON statistics")
        }
        guard n.featureCount >= 1, n.featureCount <= 100_000 else {
            throw FeatureError.invalidStatistics(path: path, reason: "featureCount \(n.featureCount)")
        }
        guard n.sum.count == n.featureCount, n.sumSquares.count == n.featureCount else {
            throw FeatureError.invalidStatistics(path: path, reason: "sum arrays do not have featureCount \(n.featureCount) entries")
        }
        guard n.count >= 0, n.sum.allSatisfy(\.isFinite), n.sumSquares.allSatisfy({ $0.isFinite && $0 >= 0 }),
              n.minimumStd.isFinite, n.minimumStd > 0 else {
            throw FeatureError.invalidStatistics(path: path, reason: "negative count or non-finite sums")
        }
        return n
    }

    /// Reads statistics written by `write(to:)`.
    public static func load(_ url: URL) throws -> FeatureNormalizer {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FeatureError.invalidStatistics(path: url.path, reason: "cannot read file")
        }
        return try decode(jsonData: data, path: url.path)
    }

    /// Writes the statistics as JSON (atomically).
    public func write(to url: URL) throws {
        try jsonData().write(to: url, options: .atomic)
    }
}
