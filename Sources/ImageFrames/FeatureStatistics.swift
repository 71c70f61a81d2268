import Foundation
import RecurrentCore

/// Feature normalisation statistics computed on a training set and applied at load time:
/// `x' = (x - mean) / std`.
///
/// Two scopes:
/// - `.global` (default): one mean and one standard deviation over every feature of every
///   time step of every training example (pixels share one scale, like the usual MNIST
///   normalisation); `mean` and `std` hold one value each.
/// - `.perFeature`: one mean/std per feature index of a time step, pooled over all time steps
///   and examples; `mean` and `std` hold `featuresPerStep` values.
///
/// Standard deviations are population values (divide by N), computed in `Double`, and clamped
/// to at least `minimumStd` so that constant features (image borders) map to 0 instead of
/// exploding. Serialises to a JSON object for checkpoint metadata.
public struct FeatureStatistics: Codable, Sendable, Equatable {
    /// Which features share a mean and standard deviation.
    public enum Scope: String, Codable, Sendable {
        /// One value for all features.
        case global
        /// One value per feature index of a time step.
        case perFeature
    }

    /// Smallest standard deviation used for scaling.
    public static let minimumStd: Float = 1e-2

    /// The scope.
    public var scope: Scope
    /// Means: 1 value (`.global`) or `[featuresPerStep]`.
    public var mean: [Float]
    /// Standard deviations (already clamped): same count as `mean`.
    public var std: [Float]

    /// Creates statistics from explicit values (counts must match and be nonzero).
    public init(scope: Scope, mean: [Float], std: [Float]) {
        self.scope = scope
        self.mean = mean
        self.std = std
    }

    /// Computes statistics over `examples`, each `features` `[time, featuresPerStep]`, with a
    /// `FeatureNormalizer` accumulating every value (`.global`) or every step's features.
    /// - Throws: `FrameError.invalidArgument` when there are no time steps or the examples
    ///   disagree on `featuresPerStep`.
    public static func compute(_ examples: [FrameExample], scope: Scope = .global) throws -> FeatureStatistics {
        guard let first = examples.first else {
            throw FrameError.invalidArgument("cannot compute statistics of an empty data set")
        }
        let f = first.featuresPerStep
        var accumulator = FeatureNormalizer(featureCount: scope == .global ? 1 : f)
        for example in examples {
            guard example.featuresPerStep == f else {
                throw FrameError.invalidArgument("examples have \(f) and \(example.featuresPerStep) features per step")
            }
            try accumulator.accumulate(example.features, width: accumulator.featureCount, source: example.source)
        }
        guard accumulator.count > 0 else { throw FrameError.invalidArgument("cannot compute statistics of zero time steps") }
        return FeatureStatistics(scope: scope, mean: accumulator.mean.map { Float($0) },
                                 std: accumulator.standardDeviation.map { max(minimumStd, Float($0)) })
    }

    /// Normalises `features` `[time, featuresPerStep]` in place.
    public func apply(to features: UnsafeMutableBufferPointer<Float>, featuresPerStep f: Int) {
        if mean.count == 1 {
            let m = mean[0], inv = 1 / std[0]
            for i in 0..<features.count { features[i] = (features[i] - m) * inv }
            return
        }
        precondition(mean.count == f, "statistics have \(mean.count) features, data has \(f)")
        let inv = std.map { 1 / $0 }
        mean.withUnsafeBufferPointer { m in
            inv.withUnsafeBufferPointer { s in
                var base = 0
                while base + f <= features.count {
                    for k in 0..<f { features[base + k] = (features[base + k] - m[k]) * s[k] }
                    base += f
                }
            }
        }
    }

    /// Normalises every example of `dataset` in place; the examples must not carry frame
    /// differences yet (`[time, config.baseFeaturesPerStep]`).
    public func apply(to dataset: inout FrameDataset) throws {
        let base = dataset.config.baseFeaturesPerStep
        if mean.count != 1 && mean.count != base {
            throw FrameError.invalidArgument("statistics have \(mean.count) features, data has \(base) per step")
        }
        if let wide = dataset.examples.first(where: { $0.featuresPerStep != base }) {
            throw FrameError.invalidArgument("\(wide.source): \(wide.featuresPerStep) features per step, statistics apply to \(base) (normalise before appending frame differences)")
        }
        for i in dataset.examples.indices {
            let f = dataset.examples[i].featuresPerStep
            dataset.examples[i].features.withUnsafeMutableBufferPointer { apply(to: $0, featuresPerStep: f) }
        }
    }

    /// The statistics as a compact JSON object (sorted keys).
    public func jsonString() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self), let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text
    }

    /// Parses statistics written by `jsonString()`; checks counts and positive finite values.
    public init(json: String) throws {
        let decoded: FeatureStatistics
        do {
            decoded = try JSONDecoder().decode(FeatureStatistics.self, from: Data(json.utf8))
        } catch {
            throw FrameError.invalidJSON(what: "feature statistics", reason: FeatureConfig.shortReason(error))
        }
        guard !decoded.mean.isEmpty, decoded.mean.count == decoded.std.count,
              decoded.scope == .perFeature || decoded.mean.count == 1 else {
            throw FrameError.invalidJSON(what: "feature statistics", reason: "mean has \(decoded.mean.count) values, std \(decoded.std.count)")
        }
        guard decoded.mean.allSatisfy(\.isFinite), decoded.std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw FrameError.invalidJSON(what: "feature statistics", reason: "non-finite mean or non-positive std")
        }
        self = decoded
    }
}
