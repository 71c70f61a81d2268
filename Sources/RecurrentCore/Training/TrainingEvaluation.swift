/// Whether a larger or a smaller value of a metric is better.
public enum MetricDirection: String, Codable, Sendable {
    /// Losses, error rates.
    case lowerIsBetter
    /// Accuracies, exact-match rates.
    case higherIsBetter

    /// Whether `value` improves on `best` (NaN never does; anything finite beats an infinite start).
    public func isBetter(_ value: Double, than best: Double) -> Bool {
        guard !value.isNaN else { return false }
        if best.isNaN { return true }
        return self == .lowerIsBetter ? value < best : value > best
    }

    /// The starting value before any evaluation.
    public var worst: Double { self == .lowerIsBetter ? .infinity : -.infinity }
}

/// How an application scores its model on held-out data: the metrics it reports (in the
/// order of the `log.csv` columns), the one that picks `best.safetensors`, and the function
/// that computes them.
public struct TrainingEvaluation {
    /// Metric names, the `log.csv` columns after `train_loss` (e.g. `["val_loss"]`).
    public var metricNames: [String]
    /// The metric that chooses `best.safetensors`; one of `metricNames`.
    public var validationMetric: String
    /// Whether a larger or smaller `validationMetric` is better.
    public var direction: MetricDirection
    /// Evaluates the current model without changing its training state; returns a value for
    /// each of `metricNames` (missing ones are logged as NaN).
    public var evaluate: () throws -> [String: Double]

    /// An evaluation; `validationMetric` must be one of `metricNames`.
    public init(metricNames: [String], validationMetric: String, direction: MetricDirection,
                evaluate: @escaping () throws -> [String: Double]) {
        precondition(metricNames.contains(validationMetric), "the validation metric must be one of the metric names")
        self.metricNames = metricNames
        self.validationMetric = validationMetric
        self.direction = direction
        self.evaluate = evaluate
    }
}
