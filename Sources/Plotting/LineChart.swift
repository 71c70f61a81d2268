import Foundation

/// One line of a line chart: a name for the legend and its points in data coordinates.
public struct Series: Sendable {
    /// Legend text.
    public var name: String
    /// Points in drawing order; points with a NaN or infinite coordinate are skipped and break the line.
    public var points: [(x: Double, y: Double)]

    /// Creates a series from its name and points.
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }

    /// A series whose x values are 0, 1, 2, ... (e.g. loss per step).
    public init(name: String, values: [Double]) {
        self.name = name
        self.points = values.enumerated().map { (x: Double($0.offset), y: $0.element) }
    }
}

/// Where a line chart draws: plot area in pixels and the data ranges of its axes.
struct LineChartLayout {
    var width: Int
    var height: Int
    /// Plot area (inside the axes): left, top, width and height in pixels.
    var left: Int, top: Int, plotWidth: Int, plotHeight: Int
    var xTicks: Ticks
    var yTicks: Ticks

    /// Pixel of a data point (y grows upwards in data, downwards in pixels).
    func pixel(x: Double, y: Double) -> (x: Int, y: Int) {
        let fx = (x - xTicks.low) / (xTicks.high - xTicks.low)
        let fy = (y - yTicks.low) / (yTicks.high - yTicks.low)
        let px = Double(left) + fx * Double(plotWidth - 1)
        let py = Double(top + plotHeight - 1) - fy * Double(plotHeight - 1)
        return (Int(px.rounded()), Int(py.rounded()))
    }

    /// Finite data bounds of all series, nil when there is no finite point.
    static func bounds(_ series: [Series]) -> (minX: Double, maxX: Double, minY: Double, maxY: Double)? {
        var minX = Double.infinity, maxX = -Double.infinity, minY = Double.infinity, maxY = -Double.infinity
        for s in series {
            for p in s.points where p.x.isFinite && p.y.isFinite {
                minX = min(minX, p.x); maxX = max(maxX, p.x)
                minY = min(minY, p.y); maxY = max(maxY, p.y)
            }
        }
        return minX.isFinite ? (minX, maxX, minY, maxY) : nil
    }

    /// Layout for a chart of the given size, or nil when there is no finite point.
    init?(series: [Series], title: String, width: Int, height: Int) {
        guard let b = LineChartLayout.bounds(series) else { return nil }
        self.width = width
        self.height = height
        let xt = Ticks(minimum: b.minX, maximum: b.maxX, target: max(2, width / 120))
        let yt = Ticks(minimum: b.minY, maximum: b.maxY, target: max(2, height / 80))
        xTicks = xt
        yTicks = yt
        let labelWidth = yt.values.map { BitmapFont.width(of: yt.label($0)) }.max() ?? 0
        let titleHeight = title.isEmpty ? 8 : BitmapFont.height(scale: 2) + 18
        left = 8 + BitmapFont.glyphHeight + 8 + labelWidth + 6
        top = titleHeight
        let right = 16 + BitmapFont.width(of: xt.label(xt.high)) / 2
        let bottom = 6 + BitmapFont.glyphHeight + 8 + BitmapFont.glyphHeight + 10
        plotWidth = max(2, width - left - right)
        plotHeight = max(2, height - top - bottom)
    }
}

/// Plots written as PNG files.
public enum Plot {
    /// Line chart of one or more series with axes, ticks, legend, title; NaN/Inf points skipped.
    ///
    /// - Parameters:
    ///   - series: lines to draw, each `points` as `[(x, y)]`; series get `SeriesPalette` colours in order.
    ///   - width, height: image size in pixels (`Canvas.minimumSide...Canvas.maximumSide`).
    ///   - path: output PNG (RGB, 8 bit), written atomically.
    /// - Throws: `PlotError.noData` when no series has a finite point, `.invalidSize`, `.writeFailed`.
    public static func lineChart(series: [Series], title: String, xLabel: String, yLabel: String,
                                 width: Int = 800, height: Int = 500, to path: String) throws(PlotError) {
        let canvas = try lineChartCanvas(series: series, title: title, xLabel: xLabel, yLabel: yLabel,
                                         width: width, height: height, path: path)
        try canvas.writePNG(to: path)
    }

    /// Renders a line chart into a canvas (see `lineChart`); `path` only names the target in errors.
    public static func lineChartCanvas(series: [Series], title: String, xLabel: String, yLabel: String,
                                       width: Int = 800, height: Int = 500,
                                       path: String = "<memory>") throws(PlotError) -> Canvas {
        guard (Canvas.minimumSide...Canvas.maximumSide).contains(width),
              (Canvas.minimumSide...Canvas.maximumSide).contains(height) else {
            throw PlotError.invalidSize(path: path, width: width, height: height)
        }
        guard let layout = LineChartLayout(series: series, title: title, width: width, height: height) else {
            throw PlotError.noData(path: path)
        }
        var canvas = Canvas(width: width, height: height)
        let l = layout
        let bottomY = l.top + l.plotHeight - 1

        // Grid and tick labels.
        for v in l.xTicks.values {
            let p = l.pixel(x: v, y: l.yTicks.low)
            canvas.fillRect(x: p.x, y: l.top, width: 1, height: l.plotHeight, color: .gridGrey)
            canvas.fillRect(x: p.x, y: bottomY + 1, width: 1, height: 4, color: .black)
            let text = l.xTicks.label(v)
            canvas.drawText(text, x: p.x - BitmapFont.width(of: text) / 2, y: bottomY + 7, color: .black)
        }
        for v in l.yTicks.values {
            let p = l.pixel(x: l.xTicks.low, y: v)
            canvas.fillRect(x: l.left, y: p.y, width: l.plotWidth, height: 1, color: .gridGrey)
            canvas.fillRect(x: l.left - 4, y: p.y, width: 4, height: 1, color: .black)
            let text = l.yTicks.label(v)
            canvas.drawText(text, x: l.left - 7 - BitmapFont.width(of: text), y: p.y - 3, color: .black)
        }

        // Series, clipped to the plot area by construction (axis ranges cover every finite point).
        for (index, s) in series.enumerated() {
            let color = SeriesPalette.color(index)
            var previous: (x: Int, y: Int)? = nil
            var previousIsolated = false
            for point in s.points {
                guard point.x.isFinite && point.y.isFinite else {
                    if let p = previous, previousIsolated { canvas.fillRect(x: p.x - 1, y: p.y - 1, width: 3, height: 3, color: color) }
                    previous = nil
                    continue
                }
                let p = l.pixel(x: point.x, y: point.y)
                if let q = previous {
                    canvas.drawLine(x0: q.x, y0: q.y, x1: p.x, y1: p.y, color: color, thickness: 2)
                    previousIsolated = false
                } else {
                    previousIsolated = true
                }
                previous = p
            }
            if let p = previous, previousIsolated { canvas.fillRect(x: p.x - 1, y: p.y - 1, width: 3, height: 3, color: color) }
        }

        // Axes on top of the lines.
        canvas.fillRect(x: l.left - 1, y: l.top, width: 1, height: l.plotHeight + 1, color: .black)
        canvas.fillRect(x: l.left - 1, y: bottomY + 1, width: l.plotWidth + 1, height: 1, color: .black)

        // Title, axis labels.
        if !title.isEmpty {
            let scale = BitmapFont.width(of: title, scale: 2) <= width - 16 ? 2 : 1
            let text = fit(title, maxWidth: width - 16, scale: scale)
            canvas.drawText(text, x: (width - BitmapFont.width(of: text, scale: scale)) / 2, y: 10, color: .black, scale: scale)
        }
        let xText = fit(xLabel, maxWidth: l.plotWidth, scale: 1)
        canvas.drawText(xText, x: l.left + (l.plotWidth - BitmapFont.width(of: xText)) / 2,
                        y: height - 6 - BitmapFont.glyphHeight, color: .black)
        let yText = fit(yLabel, maxWidth: l.plotHeight, scale: 1)
        canvas.drawTextVertical(yText, x: 8, bottom: l.top + (l.plotHeight + BitmapFont.width(of: yText)) / 2,
                                color: .black)

        drawLegend(series: series, layout: l, canvas: &canvas)
        return canvas
    }

    /// Legend box in the top-right corner of the plot area: a colour swatch and the name per series.
    static func drawLegend(series: [Series], layout l: LineChartLayout, canvas: inout Canvas) {
        let named = series.enumerated().filter { !$0.element.name.isEmpty }
        guard !named.isEmpty else { return }
        let maxText = max(40, l.plotWidth / 2 - 40)
        let names = named.map { fit($0.element.name, maxWidth: maxText, scale: 1) }
        let lineHeight = 12
        let boxWidth = 8 + 20 + 6 + (names.map { BitmapFont.width(of: $0) }.max() ?? 0) + 8
        let rows = min(names.count, max(1, (l.plotHeight - 16) / lineHeight))
        let boxHeight = 8 + rows * lineHeight
        // The corner of the plot area that covers the fewest drawn line pixels, top right on ties.
        let corners = [
            (l.left + l.plotWidth - boxWidth - 8, l.top + 8), (l.left + 8, l.top + 8),
            (l.left + l.plotWidth - boxWidth - 8, l.top + l.plotHeight - boxHeight - 8),
            (l.left + 8, l.top + l.plotHeight - boxHeight - 8),
        ]
        var best = corners[0], bestCount = Int.max
        for corner in corners {
            var count = 0
            for py in corner.1..<(corner.1 + boxHeight) {
                for px in corner.0..<(corner.0 + boxWidth) {
                    if let c = canvas.pixel(x: px, y: py), c != .white, c != .gridGrey { count += 1 }
                }
            }
            if count < bestCount { best = corner; bestCount = count }
        }
        let (x, y) = best
        canvas.fillRect(x: x, y: y, width: boxWidth, height: boxHeight, color: .white)
        canvas.strokeRect(x: x, y: y, width: boxWidth, height: boxHeight, color: RGB(160, 160, 160))
        for i in 0..<rows {
            let rowY = y + 4 + i * lineHeight
            canvas.fillRect(x: x + 8, y: rowY + 3, width: 20, height: 2, color: SeriesPalette.color(named[i].offset))
            canvas.drawText(names[i], x: x + 34, y: rowY, color: .black)
        }
    }

    /// `text` shortened with ".." so that it is at most `maxWidth` pixels wide at `scale`.
    static func fit(_ text: String, maxWidth: Int, scale: Int) -> String {
        if BitmapFont.width(of: text, scale: scale) <= maxWidth { return text }
        var scalars = Array(text.unicodeScalars)
        while !scalars.isEmpty {
            scalars.removeLast()
            var s = String(String.UnicodeScalarView(scalars))
            s += ".."
            if BitmapFont.width(of: s, scale: scale) <= maxWidth { return s }
        }
        return ""
    }
}
