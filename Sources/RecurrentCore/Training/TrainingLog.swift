import Foundation

/// One row of `log.csv`: the state at an evaluation point.
public struct TrainingLogRow: Sendable, Equatable {
    /// Optimizer steps so far.
    public var step: Int
    /// Mean training loss over the steps since the previous row.
    public var trainLoss: Double
    /// The evaluation's metrics, in the log's column order (NaN when not measured).
    public var metrics: [Double]
    /// Training throughput over the steps since the previous row.
    public var itemsPerSecond: Double
    /// Seconds of the whole run so far, evaluations included.
    public var seconds: Double

    /// A row; see the properties.
    public init(step: Int, trainLoss: Double, metrics: [Double], itemsPerSecond: Double, seconds: Double) {
        self.step = step; self.trainLoss = trainLoss; self.metrics = metrics
        self.itemsPerSecond = itemsPerSecond; self.seconds = seconds
    }
}

/// `log.csv`: `step,train_loss,<metric>…,<items>_per_s,seconds`, one row per evaluation.
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
    public var header: String { (["step", "train_loss"] + metricNames + ["\(itemName)_per_s", "seconds"]).joined(separator: ",") }

    /// The whole file.
    public var csv: String {
        var s = header + "\n"
        for r in rows {
            s += "\(r.step)," + String(format: "%.6f", r.trainLoss)
            for m in r.metrics { s += "," + String(format: "%.6f", m) }
            s += String(format: ",%.1f,%.2f\n", r.itemsPerSecond, r.seconds)
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
        let columns = metricNames.count + 4
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) }
            guard f.count == columns, f.allSatisfy({ $0 != nil }), let step = Int(exactly: f[0]!) else { continue }
            log.rows.append(TrainingLogRow(step: step, trainLoss: f[1]!, metrics: f[2..<(columns - 2)].map { $0! },
                                           itemsPerSecond: f[columns - 2]!, seconds: f[columns - 1]!))
        }
        return log
    }
}

/// Draws `loss.png` from the log (`title`, the log, destination path). The engine knows no
/// image format; the command-line layer supplies one (`TrainingCLI.writeLossPlot`).
public typealias LossPlotter = (_ title: String, _ log: TrainingLog, _ path: String) throws -> Void
