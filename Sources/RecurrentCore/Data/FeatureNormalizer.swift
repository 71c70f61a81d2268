import Foundation

/// Errors of `FeatureNormalizer`; one line naming the source and what is wrong.
public enum FeatureNormalizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Rows of `got` features given to a normaliser for `expected`.
    case widthMismatch(source: String, expected: Int, got: Int)
    /// Stored statistics that cannot be used.
    case invalidStatistics(path: String, reason: String)

    /// One line naming the source.
    public var description: String {
        switch self {
        case let .widthMismatch(source, expected, got): return "\(source): \(got) features per row, expected \(expected)"
        case let .invalidStatistics(path, reason): return "\(path): invalid normalisation statistics: \(reason)"
        }
    }
}

/// Per-feature mean/variance normalisation with statistics accumulated over a training set of
/// dense sequences (audio frames, image rows, any `[rows, featureCount]` row-major data).
///
/// Accumulates count, Σx and Σx² per feature in `Double`; `apply` maps each column to
/// `(x - mean) / max(std, minimumStd)`. Codable (keys `featureCount`, `count`, `sum`,
/// `sumSquares`, `minimumStd`), so the statistics can be stored as JSON beside a model or in
/// checkpoint metadata and restored for inference.
public struct FeatureNormalizer: Codable, Sendable, Equatable {
    /// Feature width this normaliser expects.
    public private(set) var featureCount: Int
    /// Number of rows accumulated.
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

    /// Adds every row of `values`, row-major `[rows, width]`.
    /// - Throws: `FeatureNormalizerError.widthMismatch` naming `source` when `width` is not
    ///   `featureCount` or `values.count` is not a multiple of it.
    public mutating func accumulate(_ values: [Float], width: Int, source: String = "features") throws {
        guard width == featureCount, width > 0, values.count % width == 0 else {
            throw FeatureNormalizerError.widthMismatch(source: source, expected: featureCount, got: width)
        }
        let f = featureCount, rows = values.count / width
        sum.withUnsafeMutableBufferPointer { s in
            sumSquares.withUnsafeMutableBufferPointer { q in
                values.withUnsafeBufferPointer { v in
                    for t in 0..<rows {
                        let row = v.baseAddress! + t * f
                        for k in 0..<f { let x = Double(row[k]); s[k] += x; q[k] += x * x }
                    }
                }
            }
        }
        count += rows
    }

    /// Combines the statistics of two accumulators of the same width.
    public mutating func merge(_ other: FeatureNormalizer) throws {
        guard other.featureCount == featureCount else {
            throw FeatureNormalizerError.widthMismatch(source: "normaliser merge", expected: featureCount, got: other.featureCount)
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

    /// Normalises `values`, row-major `[rows, width]`, in place.
    /// - Throws: `FeatureNormalizerError.widthMismatch` as `accumulate`.
    public func apply(to values: inout [Float], width: Int, source: String = "features") throws {
        guard width == featureCount, width > 0, values.count % width == 0 else {
            throw FeatureNormalizerError.widthMismatch(source: source, expected: featureCount, got: width)
        }
        let mu = mean.map { Float($0) }
        let inv = standardDeviation.map { Float(1 / max($0, minimumStd)) }
        let f = featureCount, rows = values.count / width
        values.withUnsafeMutableBufferPointer { v in
            for t in 0..<rows {
                let row = v.baseAddress! + t * f
                for k in 0..<f { row[k] = (row[k] - mu[k]) * inv[k] }
            }
        }
    }

    /// JSON encoding of the statistics (sorted keys).
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(self)
    }

    /// Decodes and validates statistics from JSON; `path` names the source in errors.
    /// - Throws: `FeatureNormalizerError.invalidStatistics`.
    public static func decode(jsonData: Data, path: String) throws -> FeatureNormalizer {
        let n: FeatureNormalizer
        do { n = try JSONDecoder().decode(FeatureNormalizer.self, from: jsonData) } catch {
            throw FeatureNormalizerError.invalidStatistics(path: path, reason: "not valid JSON statistics")
        }
        guard n.featureCount >= 1, n.featureCount <= 100_000 else {
            throw FeatureNormalizerError.invalidStatistics(path: path, reason: "featureCount \(n.featureCount)")
        }
        guard n.sum.count == n.featureCount, n.sumSquares.count == n.featureCount else {
            throw FeatureNormalizerError.invalidStatistics(path: path, reason: "sum arrays do not have featureCount \(n.featureCount) entries")
        }
        guard n.count >= 0, n.sum.allSatisfy(\.isFinite), n.sumSquares.allSatisfy({ $0.isFinite && $0 >= 0 }),
              n.minimumStd.isFinite, n.minimumStd > 0 else {
            throw FeatureNormalizerError.invalidStatistics(path: path, reason: "negative count or non-finite sums")
        }
        return n
    }

    /// Reads statistics written by `write(to:)`.
    public static func load(_ url: URL) throws -> FeatureNormalizer {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FeatureNormalizerError.invalidStatistics(path: url.path, reason: "cannot read file")
        }
        return try decode(jsonData: data, path: url.path)
    }

    /// Writes the statistics as JSON (atomically).
    public func write(to url: URL) throws {
        try AtomicFile.write(try jsonData(), to: url.path)
    }
}
