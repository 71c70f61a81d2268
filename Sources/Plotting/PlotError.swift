/// Errors of the plotting functions; each description is one line naming the output file.
public enum PlotError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No series, or no finite point in any series.
    case noData(path: String)
    /// Requested image size outside the supported range.
    case invalidSize(path: String, width: Int, height: Int)
    /// The heatmap has no rows or no columns.
    case emptyValues(path: String)
    /// A heatmap row has a different length than the first row.
    case raggedValues(path: String, row: Int, expected: Int, got: Int)
    /// Number of row or column labels does not match the matrix.
    case labelCountMismatch(path: String, axis: String, expected: Int, got: Int)
    /// The PNG could not be written.
    case writeFailed(path: String, reason: String)

    /// One line: the output path and what is wrong.
    public var description: String {
        switch self {
        case .noData(let path):
            return "\(path): nothing to plot (no series with a finite point)"
        case .invalidSize(let path, let w, let h):
            return "\(path): invalid image size \(w)x\(h) (each side must be \(Canvas.minimumSide)...\(Canvas.maximumSide))"
        case .emptyValues(let path):
            return "\(path): heatmap has no values (zero rows or columns)"
        case .raggedValues(let path, let row, let expected, let got):
            return "\(path): heatmap row \(row) has \(got) values, expected \(expected) like row 0"
        case .labelCountMismatch(let path, let axis, let expected, let got):
            return "\(path): \(got) \(axis) labels for \(expected) \(axis)s"
        case .writeFailed(let path, let reason):
            // The codec's reason already starts with the path.
            return reason.hasPrefix(path) ? "cannot write plot \(reason)" : "cannot write plot \(path): \(reason)"
        }
    }
}
