import Foundation

/// Where a heatmap draws its cells.
struct HeatmapLayout {
    var width: Int, height: Int
    /// Top-left corner of the cell grid and the side of one (square) cell, in pixels.
    var gridLeft: Int, gridTop: Int, cell: Int
    var rows: Int, columns: Int
    /// Column labels drawn rotated (read bottom to top) when they do not fit horizontally.
    var rotateColumnLabels: Bool
    /// Colour bar position.
    var barLeft: Int, barTop: Int, barHeight: Int
    /// Draw every `labelStride`-th label when cells are too small for all of them.
    var labelStride: Int
    var rowLabels: [String], columnLabels: [String]
    var titleScale: Int
    /// Names of the axes: the rows' (drawn rotated, left of the row labels) and the columns'
    /// (drawn below the column labels); empty for none.
    var rowAxisLabel: String, columnAxisLabel: String
    /// Left edge of the rotated row-axis name and top of the column-axis name.
    var rowAxisLeft: Int, columnAxisTop: Int

    /// Rectangle of cell (row, column): left, top, side.
    func cellOrigin(row: Int, column: Int) -> (x: Int, y: Int) {
        (gridLeft + column * cell, gridTop + row * cell)
    }

    static let barWidth = 16
    static let maxLabelCharacters = 16

    init(rows: Int, columns: Int, rowLabels: [String], columnLabels: [String], title: String, barLabelWidth: Int,
         rowAxisLabel: String = "", columnAxisLabel: String = "") {
        self.rows = rows
        self.columns = columns
        cell = min(48, max(2, 560 / max(rows, columns)))
        labelStride = max(1, Int((Double(BitmapFont.glyphHeight + 2) / Double(cell)).rounded(.up)))
        let maxChars = HeatmapLayout.maxLabelCharacters
        let rl = rowLabels.map { Plot.fit($0, maxWidth: BitmapFont.width(of: String(repeating: "m", count: maxChars)), scale: 1) }
        let cl = columnLabels.map { Plot.fit($0, maxWidth: BitmapFont.width(of: String(repeating: "m", count: maxChars)), scale: 1) }
        self.rowLabels = rl
        self.columnLabels = cl
        let rowLabelWidth = rl.map { BitmapFont.width(of: $0) }.max() ?? 0
        let colLabelWidth = cl.map { BitmapFont.width(of: $0) }.max() ?? 0
        rotateColumnLabels = colLabelWidth > cell * labelStride - 2
        let colLabelHeight = cl.isEmpty ? 0 : (rotateColumnLabels ? colLabelWidth : BitmapFont.lineHeight)

        let gridHeight = rows * cell
        let axisMax = max(gridHeight, 40)
        self.rowAxisLabel = Plot.fit(rowAxisLabel, maxWidth: axisMax, scale: 1)
        rowAxisLeft = 10
        let rowAxisWidth = self.rowAxisLabel.isEmpty ? 0 : BitmapFont.lineHeight + 6
        gridLeft = 10 + rowAxisWidth + rowLabelWidth + (rowLabelWidth > 0 ? 6 : 0)
        let gridWidth = columns * cell
        self.columnAxisLabel = Plot.fit(columnAxisLabel, maxWidth: max(gridWidth, 40), scale: 1)
        titleScale = BitmapFont.width(of: title, scale: 2) <= gridLeft + gridWidth + 60 ? 2 : 1
        gridTop = title.isEmpty ? 10 : 10 + BitmapFont.height(scale: titleScale) + 12
        barLeft = gridLeft + gridWidth + 16
        barTop = gridTop
        barHeight = max(gridHeight, 80)
        let contentRight = barLeft + HeatmapLayout.barWidth + 6 + barLabelWidth + 10
        columnAxisTop = gridTop + gridHeight + 6 + colLabelHeight + 6
        let columnAxisHeight = self.columnAxisLabel.isEmpty ? 0 : 6 + BitmapFont.lineHeight
        let columnAxisRight = gridLeft + (gridWidth + BitmapFont.width(of: self.columnAxisLabel)) / 2 + 10
        width = max(contentRight, columnAxisRight, BitmapFont.width(of: title, scale: titleScale) + 20, Canvas.minimumSide)
        height = max(gridTop + max(gridHeight + 6 + colLabelHeight + columnAxisHeight, barHeight) + 12, Canvas.minimumSide)
    }
}

extension Plot {
    /// Heatmap of `values` [rows][cols] with row/column labels, a colour bar, optional
    /// numbers in the cells (confusion matrices); labels may be rotated/truncated to fit.
    ///
    /// Colours follow `ColorMap` from the smallest finite value (`ColorMap.bottom`) to the largest
    /// (`ColorMap.top`); when all values are equal every cell gets `ColorMap.top`; NaN/Inf cells are grey.
    /// Cells are square, 2...48 pixels, so the grid is about 560 pixels on its longer side.
    /// - Parameters:
    ///   - values: `[rows][cols]`, every row the same length.
    ///   - rowLabels: `rows` labels (left of the grid) or empty for none.
    ///   - columnLabels: `cols` labels (below the grid) or empty for none.
    ///   - annotate: write each value into its cell when it fits (integers when all values are whole).
    ///   - rowAxis: name of the row axis (e.g. `true`), drawn rotated left of the row labels; empty for none.
    ///   - columnAxis: name of the column axis (e.g. `predicted`), drawn below the column labels; empty for none.
    ///   - path: output PNG (RGB, 8 bit), written atomically.
    /// - Throws: `PlotError.emptyValues`, `.raggedValues`, `.labelCountMismatch`, `.writeFailed`.
    public static func heatmap(values: [[Double]], rowLabels: [String], columnLabels: [String],
                               title: String, annotate: Bool = false, rowAxis: String = "", columnAxis: String = "",
                               to path: String) throws(PlotError) {
        let canvas = try heatmapCanvas(values: values, rowLabels: rowLabels, columnLabels: columnLabels,
                                       title: title, annotate: annotate, rowAxis: rowAxis, columnAxis: columnAxis, path: path)
        try canvas.writePNG(to: path)
    }

    /// Renders a heatmap into a canvas (see `heatmap`); `path` only names the target in errors.
    public static func heatmapCanvas(values: [[Double]], rowLabels: [String], columnLabels: [String],
                                     title: String, annotate: Bool = false, rowAxis: String = "", columnAxis: String = "",
                                     path: String = "<memory>") throws(PlotError) -> Canvas {
        let layout = try heatmapLayout(values: values, rowLabels: rowLabels, columnLabels: columnLabels,
                                       title: title, rowAxis: rowAxis, columnAxis: columnAxis, path: path)
        let l = layout
        var canvas = Canvas(width: l.width, height: l.height)
        let finite = values.joined().filter { $0.isFinite }
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        let allWhole = finite.allSatisfy { $0 == $0.rounded() && abs($0) < 1e9 }
        func t(_ v: Double) -> Double { hi > lo ? (v - lo) / (hi - lo) : 1 }

        for r in 0..<l.rows {
            for c in 0..<l.columns {
                let v = values[r][c]
                let color = v.isFinite ? ColorMap.color(t(v)) : RGB.missingGrey
                let o = l.cellOrigin(row: r, column: c)
                canvas.fillRect(x: o.x, y: o.y, width: l.cell, height: l.cell, color: color)
                if annotate {
                    let text = v.isFinite ? cellText(v, whole: allWhole, span: hi - lo) : "nan"
                    let tw = BitmapFont.width(of: text)
                    if tw <= l.cell - 2 && BitmapFont.glyphHeight <= l.cell - 2 {
                        canvas.drawText(text, x: o.x + (l.cell - tw) / 2, y: o.y + (l.cell - BitmapFont.glyphHeight) / 2,
                                        color: color.luminance < 0.5 ? .white : .black)
                    }
                }
            }
        }
        let gridW = l.columns * l.cell, gridH = l.rows * l.cell
        canvas.strokeRect(x: l.gridLeft - 1, y: l.gridTop - 1, width: gridW + 2, height: gridH + 2, color: .black)

        // Row labels, right-aligned against the grid, centred on their row.
        for (r, label) in l.rowLabels.enumerated() where r % l.labelStride == 0 {
            let tw = BitmapFont.width(of: label)
            let y = l.gridTop + r * l.cell + l.cell / 2 - BitmapFont.glyphHeight / 2
            canvas.drawText(label, x: l.gridLeft - 6 - tw, y: y, color: .black)
        }
        // Column labels below the grid, horizontal or rotated.
        let labelTop = l.gridTop + gridH + 6
        for (c, label) in l.columnLabels.enumerated() where c % l.labelStride == 0 {
            let tw = BitmapFont.width(of: label)
            let centre = l.gridLeft + c * l.cell + l.cell / 2
            if l.rotateColumnLabels {
                canvas.drawTextVertical(label, x: centre - BitmapFont.glyphHeight / 2, bottom: labelTop + tw - 1, color: .black)
            } else {
                canvas.drawText(label, x: centre - tw / 2, y: labelTop, color: .black)
            }
        }

        // Axis names: the rows' rotated and centred on the grid's height, the columns' centred below.
        if !l.rowAxisLabel.isEmpty {
            let tw = BitmapFont.width(of: l.rowAxisLabel)
            canvas.drawTextVertical(l.rowAxisLabel, x: l.rowAxisLeft, bottom: l.gridTop + (gridH + tw) / 2, color: .black)
        }
        if !l.columnAxisLabel.isEmpty {
            let tw = BitmapFont.width(of: l.columnAxisLabel)
            canvas.drawText(l.columnAxisLabel, x: l.gridLeft + (gridW - tw) / 2, y: l.columnAxisTop, color: .black)
        }

        // Colour bar: top colour at the top, with the extreme and middle values.
        for i in 0..<l.barHeight {
            let f = l.barHeight > 1 ? 1 - Double(i) / Double(l.barHeight - 1) : 1
            canvas.fillRect(x: l.barLeft, y: l.barTop + i, width: HeatmapLayout.barWidth, height: 1, color: ColorMap.color(f))
        }
        canvas.strokeRect(x: l.barLeft - 1, y: l.barTop - 1, width: HeatmapLayout.barWidth + 2, height: l.barHeight + 2, color: .black)
        for (f, v) in barTicks(lo: lo, hi: hi) {
            let y = l.barTop + Int(((1 - f) * Double(l.barHeight - 1)).rounded())
            canvas.fillRect(x: l.barLeft + HeatmapLayout.barWidth + 1, y: y, width: 3, height: 1, color: .black)
            canvas.drawText(v, x: l.barLeft + HeatmapLayout.barWidth + 6, y: y - 3, color: .black)
        }

        if !title.isEmpty {
            let text = fit(title, maxWidth: l.width - 20, scale: l.titleScale)
            canvas.drawText(text, x: (l.width - BitmapFont.width(of: text, scale: l.titleScale)) / 2, y: 10,
                            color: .black, scale: l.titleScale)
        }
        return canvas
    }

    /// Checks the matrix and labels and computes where everything goes.
    static func heatmapLayout(values: [[Double]], rowLabels: [String], columnLabels: [String],
                              title: String, rowAxis: String = "", columnAxis: String = "",
                              path: String) throws(PlotError) -> HeatmapLayout {
        guard let first = values.first, !first.isEmpty else { throw PlotError.emptyValues(path: path) }
        for (r, row) in values.enumerated() where row.count != first.count {
            throw PlotError.raggedValues(path: path, row: r, expected: first.count, got: row.count)
        }
        if !rowLabels.isEmpty && rowLabels.count != values.count {
            throw PlotError.labelCountMismatch(path: path, axis: "row", expected: values.count, got: rowLabels.count)
        }
        if !columnLabels.isEmpty && columnLabels.count != first.count {
            throw PlotError.labelCountMismatch(path: path, axis: "column", expected: first.count, got: columnLabels.count)
        }
        let finite = values.joined().filter { $0.isFinite }
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        let barLabelWidth = barTicks(lo: lo, hi: hi).map { BitmapFont.width(of: $0.1) }.max() ?? 0
        return HeatmapLayout(rows: values.count, columns: first.count, rowLabels: rowLabels, columnLabels: columnLabels,
                             title: title, barLabelWidth: barLabelWidth, rowAxisLabel: rowAxis, columnAxisLabel: columnAxis)
    }

    /// Colour-bar labels: (position 0...1 from the bottom, text) for the minimum, middle and maximum.
    static func barTicks(lo: Double, hi: Double) -> [(Double, String)] {
        let span = hi - lo
        let step = span > 0 ? span / 2 : max(abs(hi), 1)
        let positions: [Double] = span > 0 ? [0, 0.5, 1] : [1]
        return positions.map { f in (f, Ticks.format(lo + f * span, step: step)) }
    }

    /// Text of one annotated cell.
    static func cellText(_ v: Double, whole: Bool, span: Double) -> String {
        if whole { return String(Int64(v)) }
        if abs(v) >= 1000 || (abs(v) < 0.01 && v != 0) { return String(format: "%.1e", v) }
        return String(format: abs(v) >= 100 ? "%.0f" : abs(v) >= 10 ? "%.1f" : "%.2f", v)
    }
}
