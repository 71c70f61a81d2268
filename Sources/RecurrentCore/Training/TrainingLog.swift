import Foundation

/// One row of `log.csv`: every `logEvery` steps and at every evaluation.
public struct TrainingLogRow: Sendable, Equatable {
    /// Optimizer steps so far.
    public var step: Int
    /// Mean training loss over the steps since the previous row (NaN when there were none).
    public var trainLoss: Double
    /// The learning rate of the row's last step.
    public var learningRate: Double
    /// Mean global gradient norm (before clipping) over the steps since the previous row.
    public var gradientNorm: Double
    /// The evaluation's metrics, in the log's column order (NaN when not measured: rows without
    /// an evaluation leave these columns empty).
    public var metrics: [Double]
    /// Training throughput over the steps since the previous row.
    public var itemsPerSecond: Double
    /// Seconds of the whole run so far, evaluations included.
    public var seconds: Double

    /// A row; see the properties.
    public init(step: Int, trainLoss: Double, learningRate: Double = .nan, gradientNorm: Double = .nan, metrics: [Double],
                itemsPerSecond: Double, seconds: Double) {
        self.step = step; self.trainLoss = trainLoss; self.learningRate = learningRate; self.gradientNorm = gradientNorm
        self.metrics = metrics
        self.itemsPerSecond = itemsPerSecond; self.seconds = seconds
    }
}

/// `log.csv`: `step,train_loss,lr,grad_norm,<metric>…,<items>_per_s,seconds`, a row every
/// `logEvery` steps and at every evaluation (metric columns empty in rows without one).
public struct TrainingLog: Sendable, Equatable {
    /// Metric column names.
    public var metricNames: [String]
    /// What the throughput counts (`tokens` gives the column `tokens_per_s`).
    public var itemName: String
    /// The rows in step order.
    public var rows: [TrainingLogRow] = []

    /// An empty log with these columns.
    public init(metricNames: [String], itemName: String) {
        self.metricNames = metricNames
        self.itemName = itemName
    }

    /// The header line.
    public var header: String {
        (["step", "train_loss", "lr", "grad_norm"] + metricNames + ["\(itemName)_per_s", "seconds"]).joined(separator: ",")
    }

    /// The rows that hold an evaluation.
    public var evaluationRows: [TrainingLogRow] { rows.filter { $0.metrics.contains { !$0.isNaN } } }

    /// The whole file; a NaN is an empty field.
    public var csv: String {
        func f(_ x: Double, _ pattern: String) -> String { x.isNaN ? "" : String(format: pattern, x) }
        var s = header + "\n"
        for r in rows {
            s += "\(r.step)," + f(r.trainLoss, "%.6f") + "," + f(r.learningRate, "%.6g") + "," + f(r.gradientNorm, "%.6g")
            for m in r.metrics { s += "," + f(m, "%.6f") }
            s += "," + f(r.itemsPerSecond, "%.1f") + "," + f(r.seconds, "%.2f") + "\n"
        }
        return s
    }

    /// Writes `csv` atomically.
    public func write(to path: String) throws { try AtomicFile.write(text: csv, to: path) }

    /// The rows of a file with the same header; no rows when it is missing or has other columns.
    public static func read(path: String, metricNames: [String], itemName: String) -> TrainingLog {
        var log = TrainingLog(metricNames: metricNames, itemName: itemName)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return log }
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.first == log.header else { return log }
        let columns = metricNames.count + 6
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            let f = fields.map { $0.isEmpty ? Double.nan : Double($0) }
            guard f.count == columns, f.allSatisfy({ $0 != nil }), let step = Int(fields[0]) else { continue }
            log.rows.append(TrainingLogRow(step: step, trainLoss: f[1]!, learningRate: f[2]!, gradientNorm: f[3]!,
                                           metrics: f[4..<(columns - 2)].map { $0! }, itemsPerSecond: f[columns - 2]!,
                                           seconds: f[columns - 1]!))
        }
        return log
    }
}

/// Draws `loss.png` from the log (`title`, the log, destination path). The engine knows no
/// image format; the command-line layer supplies one (`TrainingCLI.writeLossPlot`).
public typealias LossPlotter = (_ title: String, _ log: TrainingLog, _ path: String) throws -> Void
