import Foundation

/// What a training run achieved. Its `json` is the last line every training tool prints, with
/// the same keys in every tool.
public struct TrainingRunSummary: Sendable {
    /// The tool (the task's label), e.g. `lm-train`.
    public var tool: String = ""
    /// The run folder.
    public var runDirectory: String = ""
    /// Optimizer steps in all (a resumed run counts the earlier ones).
    public var steps: Int
    /// Passes over the training batches, `steps / batchesPerEpoch`.
    public var epochs: Double
    /// Seconds of the whole run, evaluations included (earlier parts of a resumed run too).
    public var seconds: Double
    /// Seconds of training steps only (the time budget's measure).
    public var trainSeconds: Double
    /// Mean training loss of the last `log.csv` row: the steps since the row before it (at most
    /// `logEvery` steps), the same definition as the log's `train_loss`.
    public var trainLoss: Double
    /// Training throughput of this process (items per second of training).
    public var itemsPerSecond: Double
    /// What the throughput counts (`tokens`, `utterances`, `clips`).
    public var itemName: String
    /// The metric that chose `best.safetensors` (empty without evaluation).
    public var validationMetric: String
    /// Its value at the end (NaN without evaluation).
    public var validation: Double
    /// Its best value (the one of `best.safetensors`).
    public var bestValidation: Double
    /// The step of `best.safetensors`.
    public var bestStep: Int
    /// Every metric at the end (the tool adds its test figures).
    public var metrics: [String: Double]
    /// The held-out test figure of `best.safetensors` (set by tools with a test split; its name
    /// is one of `metrics`' keys).
    public var testMetric: String?
    /// Whether `--patience` ended the run.
    public var stoppedEarly = false
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

    /// A summary; see the properties.
    public init(tool: String = "", runDirectory: String = "", steps: Int, epochs: Double, seconds: Double, trainSeconds: Double,
                trainLoss: Double, itemsPerSecond: Double, itemName: String, validationMetric: String, validation: Double,
                bestValidation: Double, bestStep: Int, metrics: [String: Double], checkpoint: String, stepLosses: [Double],
                ranks: Int = 1, allReduceSeconds: Double = 0, rankWaitSeconds: Double = 0) {
        self.tool = tool; self.runDirectory = runDirectory; self.steps = steps; self.epochs = epochs; self.seconds = seconds
        self.trainSeconds = trainSeconds; self.trainLoss = trainLoss; self.itemsPerSecond = itemsPerSecond; self.itemName = itemName
        self.validationMetric = validationMetric; self.validation = validation; self.bestValidation = bestValidation
        self.bestStep = bestStep; self.metrics = metrics; self.checkpoint = checkpoint; self.stepLosses = stepLosses
        self.ranks = ranks; self.allReduceSeconds = allReduceSeconds; self.rankWaitSeconds = rankWaitSeconds
    }

    /// The keys of `json`, in order, the same for every tool.
    public static let keys = ["tool", "run_dir", "steps", "epochs", "seconds", "train_loss", "val_loss", "val_metric", "test_metric",
                              "throughput", "checkpoint", "stopped_early", "ranks", "allreduce_seconds", "wait_seconds", "metrics"]

    /// One line of JSON with `keys`: `val_metric` is `{"name", "value", "best", "best_step"}`
    /// (null without validation), `test_metric` `{"name", "value"}` (null without a test
    /// split), `throughput` `{"value", "unit"}` (e.g. `tokens/s`), `ranks` (MPI processes, 1
    /// without `mpirun`) with the seconds spent summing gradients over them and waiting for
    /// them (`allreduce_seconds`, `wait_seconds`; 0 for one process); losses and metrics have 4
    /// decimals, seconds 1, epochs 2, throughput whole units; missing or non-finite numbers
    /// are `null`; slashes are not escaped.
    public var json: String {
        func num(_ x: Double?, _ digits: Int = 4) -> String {
            guard let x, x.isFinite else { return "null" }
            return String(format: "%.\(digits)f", x)
        }
        /// Whole numbers from 2 up (counts: test pairs, clips) without decimals, anything else
        /// (losses, rates, accuracies, 1.0 included) with 4.
        func metric(_ x: Double) -> String { x.isFinite && x == x.rounded() && x >= 2 && x < 1e15 ? "\(Int(x))" : num(x) }
        func str(_ s: String) -> String {
            let d = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            return String(String(decoding: d, as: UTF8.self).dropFirst().dropLast())
        }
        let val = validationMetric.isEmpty ? "null"
            : "{\"name\":\(str(validationMetric)),\"value\":\(num(validation)),\"best\":\(num(bestValidation)),\"best_step\":\(bestStep)}"
        let test = testMetric.map { "{\"name\":\(str($0)),\"value\":\(num(metrics[$0]))}" } ?? "null"
        let rate = itemsPerSecond.isFinite ? (itemsPerSecond < 100 ? String(format: "%.1f", itemsPerSecond) : String(format: "%.0f", itemsPerSecond)) : "null"
        let m = metrics.keys.sorted().map { "\(str($0)):\(metric(metrics[$0]!))" }.joined(separator: ",")
        return "{\"tool\":\(str(tool)),\"run_dir\":\(str(runDirectory)),\"steps\":\(steps),\"epochs\":\(num(epochs, 2)),"
            + "\"seconds\":\(num(seconds, 1)),\"train_loss\":\(num(trainLoss)),\"val_loss\":\(num(metrics["val_loss"])),"
            + "\"val_metric\":\(val),\"test_metric\":\(test),\"throughput\":{\"value\":\(rate),\"unit\":\(str(itemName + "/s"))},"
            + "\"checkpoint\":\(str(checkpoint)),\"stopped_early\":\(stoppedEarly),\"ranks\":\(ranks),"
            + "\"allreduce_seconds\":\(num(allReduceSeconds, 3)),\"wait_seconds\":\(num(rankWaitSeconds, 3)),\"metrics\":{\(m)}}"
    }
}
