import Foundation

/// What a training run achieved. Its `json` is the last line every training tool prints, with
/// the same keys in every tool.
public struct TrainingRunSummary: Sendable {
    /// Optimizer steps in all (a resumed run counts the earlier ones).
    public var steps: Int
    /// Passes over the training batches, `steps / batchesPerEpoch`.
    public var epochs: Double
    /// Seconds of the whole run, evaluations included (earlier parts of a resumed run too).
    public var seconds: Double
    /// Seconds of training steps only (the time budget's measure).
    public var trainSeconds: Double
    /// Loss of the last step.
    public var trainLoss: Double
    /// Training throughput of this process (items per second of training).
    public var itemsPerSecond: Double
    /// What the throughput counts (`tokens`, `examples`).
    public var itemName: String
    /// The metric that chose `best.safetensors` (empty without evaluation).
    public var validationMetric: String
    /// Its value at the end (NaN without evaluation).
    public var validation: Double
    /// Its best value (the one of `best.safetensors`).
    public var bestValidation: Double
    /// The step of `best.safetensors`.
    public var bestStep: Int
    /// Every metric at the end.
    public var metrics: [String: Double]
    /// Path of `best.safetensors`.
    public var checkpoint: String
    /// Training loss of every step of this process, in order (for tests and plots).
    public var stepLosses: [Double]
    /// Processes that trained together (MPI ranks; 1 without `mpirun`).
    public var ranks: Int = 1
    /// Seconds this process spent summing gradients over the ranks (0 for one process).
    public var allReduceSeconds: Double = 0
    /// Seconds this process waited for the other ranks before each sum (0 for one process).
    public var rankWaitSeconds: Double = 0

    /// One line of JSON with the keys `steps`, `epochs`, `seconds`, `train_seconds`,
    /// `train_loss`, `items_per_s`, `items`, `val_metric`, `val`, `best_val`, `best_step`,
    /// `ranks`, `allreduce_seconds`, `wait_seconds`, `metrics` (object) and `checkpoint`; non-finite numbers
    /// are `null`.
    public var json: String {
        func num(_ x: Double, _ digits: Int = 4) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "null" }
        func str(_ s: String) -> String {
            let d = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
        }
        let m = metrics.keys.sorted().map { "\(str($0)):\(num(metrics[$0]!, 6))" }.joined(separator: ",")
        return "{\"steps\":\(steps),\"epochs\":\(num(epochs, 3)),\"seconds\":\(num(seconds, 1)),\"train_seconds\":\(num(trainSeconds, 1)),"
            + "\"train_loss\":\(num(trainLoss)),\"items_per_s\":\(num(itemsPerSecond, 0)),\"items\":\(str(itemName)),"
            + "\"val_metric\":\(str(validationMetric)),\"val\":\(num(validation)),\"best_val\":\(num(bestValidation)),"
            + "\"best_step\":\(bestStep),\"ranks\":\(ranks),\"allreduce_seconds\":\(num(allReduceSeconds, 3)),\"wait_seconds\":\(num(rankWaitSeconds, 3)),\"metrics\":{\(m)},\"checkpoint\":\(str(checkpoint))}"
    }
}
