/// A confusion matrix of a classifier: `counts[truth][predicted]` over `classes` classes.
/// Printing is `text(labels:)`; `TrainingCLI.writeConfusionPlot` draws it.
public struct ConfusionMatrix: Sendable, Equatable {
    /// Number of classes.
    public let classes: Int
    /// `[classes][classes]` counts, row = true class, column = predicted class.
    public private(set) var counts: [[Int]]

    /// An empty matrix.
    public init(classes: Int) {
        self.classes = classes
        counts = Array(repeating: Array(repeating: 0, count: classes), count: classes)
    }

    /// A matrix holding `counts` (`[classes][classes]`, square).
    public init(counts: [[Int]]) {
        precondition(counts.allSatisfy { $0.count == counts.count }, "confusion counts must be square")
        classes = counts.count
        self.counts = counts
    }

    /// Counts one decision (indices outside the classes are ignored).
    public mutating func add(truth: Int, predicted: Int) {
        guard truth >= 0, truth < classes, predicted >= 0, predicted < classes else { return }
        counts[truth][predicted] += 1
    }

    /// Adds another matrix's counts (of the same classes), e.g. one computed on another MPI rank.
    public mutating func add(_ other: ConfusionMatrix) {
        precondition(other.classes == classes, "confusion matrices of \(classes) and \(other.classes) classes")
        for t in 0..<classes { for p in 0..<classes { counts[t][p] += other.counts[t][p] } }
    }

    /// Number of decisions counted.
    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    /// Number on the diagonal.
    public var correct: Int { (0..<classes).reduce(0) { $0 + counts[$1][$1] } }
    /// `correct / total` (0 when empty).
    public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : 0 }

    /// `labels` padded with class indices up to `classes` names.
    public func names(_ labels: [String]) -> [String] {
        (0..<classes).map { $0 < labels.count ? labels[$0] : "\($0)" }
    }

    /// The matrix as text: a header row of predicted labels, one row per true label, columns
    /// right-aligned to the widest label or count.
    public func text(labels: [String]) -> String {
        let names = names(labels)
        let width = max(names.map(\.count).max() ?? 1, String(counts.flatMap { $0 }.max() ?? 0).count, 3)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = [pad("") + " " + names.map(pad).joined(separator: " ") + "   (rows: true, columns: predicted)"]
        for (i, row) in counts.enumerated() {
            lines.append(pad(names[i]) + " " + row.map { pad(String($0)) }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
