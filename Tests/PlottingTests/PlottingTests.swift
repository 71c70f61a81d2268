import Foundation
import PNGCodec
@testable import Plotting
import Testing

/// Directory for plot files: `PLOTTING_TEST_OUTPUT` when set (kept for viewing), else a fresh temporary one.
func plotDirectory() throws -> (url: URL, cleanup: () -> Void) {
    if let keep = ProcessInfo.processInfo.environment["PLOTTING_TEST_OUTPUT"] {
        let url = URL(fileURLWithPath: keep, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return (url, {})
    }
    let url = try makeTempDirectory()
    return (url, { try? FileManager.default.removeItem(at: url) })
}

/// An 8-bit RGB image read back through the codec.
struct ReadBack {
    var width: Int, height: Int
    var samples: [Float]

    init(path: String) throws {
        let d = try decode(path).get()
        #expect(d.info.channels == 3)
        #expect(d.info.bit_depth == 8)
        width = Int(d.info.width)
        height = Int(d.info.height)
        samples = d.samples
    }

    func color(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * 3
        func byte(_ f: Float) -> UInt8 { UInt8((f * 255).rounded()) }
        return RGB(byte(samples[i]), byte(samples[i + 1]), byte(samples[i + 2]))
    }
}

@Test func lineChartDrawsSeriesAtTheirDataPoints() throws {
    let (dir, cleanup) = try plotDirectory()
    defer { cleanup() }
    let path = dir.appendingPathComponent("loss.png").path
    // Series 0 rises linearly; series 1 is constant with a NaN gap between x = 4 and x = 6.
    let rising = Series(name: "train", points: (0...10).map { (x: Double($0), y: Double($0) * 0.8) })
    var flatPoints = (0...10).map { (x: Double($0), y: 2.0) }
    flatPoints[5].y = .nan
    let flat = Series(name: "valid", points: flatPoints)
    try Plot.lineChart(series: [rising, flat], title: "Loss per epoch", xLabel: "epoch", yLabel: "loss", to: path)

    let image = try ReadBack(path: path)
    #expect(image.width == 800 && image.height == 500)
    #expect(image.color(1, 1) == .white)
    #expect(image.color(799, 499) == .white)

    let layout = try #require(LineChartLayout(series: [rising, flat], title: "Loss per epoch", width: 800, height: 500))
    // Axis ranges must cover the data: x 0...10, y 0...8.
    #expect(layout.xTicks.low <= 0 && layout.xTicks.high >= 10)
    #expect(layout.yTicks.low <= 0 && layout.yTicks.high >= 8)
    // A point only on the rising series, inside segment (7, 5.6)-(8, 6.4): (7.5, 6.0).
    let p = layout.pixel(x: 7.5, y: 6.0)
    #expect(image.color(p.x, p.y) == SeriesPalette.color(0))
    // The flat series at x = 1.5 (left of the crossing): its colour at y = 2.
    let q = layout.pixel(x: 1.5, y: 2.0)
    #expect(image.color(q.x, q.y) == SeriesPalette.color(1))
    // The rising line lies above the flat one at x = 7.5 (smaller row), below at x = 1.
    let flatAt75 = layout.pixel(x: 7.5, y: 2.0)
    #expect(p.y < flatAt75.y)
    #expect(image.color(flatAt75.x, flatAt75.y) == SeriesPalette.color(1))
    // NaN gap: between x = 4 and x = 6 the flat line is absent at x = 5.
    let gap = layout.pixel(x: 5.0, y: 2.0)
    for dy in -2...2 { #expect(image.color(gap.x, gap.y + dy) != SeriesPalette.color(1)) }
    // Pixel coordinates grow to the right and downwards.
    #expect(layout.pixel(x: 0, y: 0).x < layout.pixel(x: 10, y: 0).x)
    #expect(layout.pixel(x: 0, y: 0).y > layout.pixel(x: 0, y: 8).y)
    // The title is drawn in black somewhere in the top band.
    var blackInTitle = 0
    for y in 0..<layout.top { for x in 0..<800 where image.color(x, y) == .black { blackInTitle += 1 } }
    #expect(blackInTitle > 50)
}

@Test func legendAvoidsTheLines() throws {
    // Rising line from bottom left to top right: the legend should go to the top-left corner.
    let s = Series(name: "accuracy", values: (0...60).map { Double($0) })
    let canvas = try Plot.lineChartCanvas(series: [s], title: "", xLabel: "", yLabel: "", width: 400, height: 300)
    let layout = try #require(LineChartLayout(series: [s], title: "", width: 400, height: 300))
    if let keep = ProcessInfo.processInfo.environment["PLOTTING_TEST_OUTPUT"] {
        try canvas.writePNG(to: keep + "/legend.png")
    }
    // The legend's swatch (series colour, 20 x 2 pixels) lies in the left half, top quarter.
    var swatch = 0
    for y in layout.top..<(layout.top + layout.plotHeight / 4) {
        for x in layout.left..<(layout.left + layout.plotWidth / 2) where canvas.pixel(x: x, y: y) == SeriesPalette.color(0) {
            swatch += 1
        }
    }
    #expect(swatch >= 40)
}

@Test func lineChartSkipsInfiniteAndKeepsIsolatedPoints() throws {
    // One finite point between non-finite ones is drawn as a dot; infinite values do not stretch the axes.
    let s = Series(name: "", points: [(0, .infinity), (1, 5), (2, -.infinity), (3, 1), (4, 3)])
    let canvas = try Plot.lineChartCanvas(series: [s], title: "", xLabel: "", yLabel: "", width: 300, height: 200)
    let layout = try #require(LineChartLayout(series: [s], title: "", width: 300, height: 200))
    #expect(layout.yTicks.high < 10 && layout.yTicks.low >= 0)
    let dot = layout.pixel(x: 1, y: 5)
    #expect(canvas.pixel(x: dot.x, y: dot.y) == SeriesPalette.color(0))
}

@Test func lineChartErrors() throws {
    #expect(throws: PlotError.noData(path: "/tmp/x.png")) {
        try Plot.lineChart(series: [], title: "t", xLabel: "x", yLabel: "y", to: "/tmp/x.png")
    }
    #expect(throws: PlotError.noData(path: "/tmp/x.png")) {
        try Plot.lineChart(series: [Series(name: "a", points: []), Series(name: "b", values: [.nan, .infinity])],
                           title: "t", xLabel: "x", yLabel: "y", to: "/tmp/x.png")
    }
    #expect(throws: PlotError.invalidSize(path: "/tmp/x.png", width: 0, height: 500)) {
        try Plot.lineChart(series: [Series(name: "a", values: [1, 2])], title: "t", xLabel: "x", yLabel: "y",
                           width: 0, to: "/tmp/x.png")
    }
    let (dir, cleanup) = try plotDirectory()
    defer { cleanup() }
    let bad = dir.appendingPathComponent("missing-dir/loss.png").path
    do {
        try Plot.lineChart(series: [Series(name: "a", values: [1, 2])], title: "t", xLabel: "x", yLabel: "y", to: bad)
        Issue.record("wrote into a missing directory")
    } catch {
        #expect(error.description.contains(bad))
        #expect(error.description.contains("cannot write plot"))
        #expect(!error.description.contains("\n"))
    }
}

@Test func heatmapColoursFollowTheValues() throws {
    let (dir, cleanup) = try plotDirectory()
    defer { cleanup() }
    let values: [[Double]] = [[5, 1, 0], [2, 40, 3], [0, 7, 12], [1, 1, 9]]
    let rows = ["cat", "dog", "bird", "a rather long class name"]
    let cols = ["cat", "dog", "bird"]
    for annotate in [false, true] {
        let path = dir.appendingPathComponent("confusion-\(annotate).png").path
        try Plot.heatmap(values: values, rowLabels: rows, columnLabels: cols, title: "Confusion matrix",
                         annotate: annotate, to: path)
        let image = try ReadBack(path: path)
        let layout = try Plot.heatmapLayout(values: values, rowLabels: rows, columnLabels: cols,
                                            title: "Confusion matrix", path: path)
        #expect(image.width == layout.width && image.height == layout.height)
        #expect(image.color(0, 0) == .white)
        // Cell of the maximum (row 1, col 2 -> value 40) has the top colour; a zero cell has the bottom one.
        let top = layout.cellOrigin(row: 1, column: 1)
        #expect(image.color(top.x + 1, top.y + 1) == ColorMap.top)
        #expect(image.color(top.x + layout.cell - 2, top.y + layout.cell - 2) == ColorMap.top)
        let bottom = layout.cellOrigin(row: 2, column: 0)
        #expect(image.color(bottom.x + 1, bottom.y + 1) == ColorMap.bottom)
        // Value 20 would be halfway; value 12 lies at 12/40 = 0.3 of the map.
        let c12 = layout.cellOrigin(row: 2, column: 2)
        #expect(image.color(c12.x + 1, c12.y + 1) == ColorMap.color(0.3))
        // Annotated numbers: black text on the bright top cell, white text on the dark bottom cell.
        func count(_ color: RGB, inCell o: (x: Int, y: Int)) -> Int {
            var n = 0
            for y in o.y..<(o.y + layout.cell) { for x in o.x..<(o.x + layout.cell) where image.color(x, y) == color { n += 1 } }
            return n
        }
        #expect((count(.black, inCell: top) > 0) == annotate)
        #expect((count(.white, inCell: bottom) > 0) == annotate)
    }
}

@Test func colorMapEndsAndInterpolation() {
    #expect(ColorMap.color(0) == RGB(68, 1, 84))
    #expect(ColorMap.color(1) == RGB(253, 231, 37))
    #expect(ColorMap.color(-3) == ColorMap.bottom && ColorMap.color(7) == ColorMap.top)
    // Halfway between anchors 7 (109, 205, 89) and 8 (253, 231, 37), computed by hand.
    #expect(ColorMap.color(0.9375) == RGB(181, 218, 63))
    #expect(ColorMap.color(.nan) == RGB.missingGrey)
}

@Test func heatmapErrors() {
    let p = "/tmp/h.png"
    #expect(throws: PlotError.emptyValues(path: p)) {
        try Plot.heatmap(values: [], rowLabels: [], columnLabels: [], title: "", to: p)
    }
    #expect(throws: PlotError.raggedValues(path: p, row: 1, expected: 2, got: 3)) {
        try Plot.heatmap(values: [[1, 2], [3, 4, 5]], rowLabels: [], columnLabels: [], title: "", to: p)
    }
    #expect(throws: PlotError.labelCountMismatch(path: p, axis: "row", expected: 2, got: 1)) {
        try Plot.heatmap(values: [[1, 2], [3, 4]], rowLabels: ["a"], columnLabels: ["x", "y"], title: "", to: p)
    }
    #expect(throws: PlotError.labelCountMismatch(path: p, axis: "column", expected: 2, got: 3)) {
        try Plot.heatmap(values: [[1, 2], [3, 4]], rowLabels: ["a", "b"], columnLabels: ["x", "y", "z"], title: "", to: p)
    }
    #expect(PlotError.labelCountMismatch(path: p, axis: "column", expected: 2, got: 3).description
        == "/tmp/h.png: 3 column labels for 2 columns")
}

@Test func largeHeatmapWithLongLabelsRotatesAndFits() throws {
    // Attention-style map: 40 x 60 cells, labels longer than a cell -> rotated, some skipped.
    let values = (0..<40).map { r in (0..<60).map { c in Double((r * 7 + c * 3) % 11) } }
    let rows = (0..<40).map { "source token \($0)" }
    let cols = (0..<60).map { "target \($0)" }
    let (dir, cleanup) = try plotDirectory()
    defer { cleanup() }
    let path = dir.appendingPathComponent("attention.png").path
    try Plot.heatmap(values: values, rowLabels: rows, columnLabels: cols, title: "Attention", to: path)
    let canvas = try Plot.heatmapCanvas(values: values, rowLabels: rows, columnLabels: cols, title: "Attention")
    let image = try ReadBack(path: path)
    #expect(image.width == canvas.width && image.height == canvas.height)
    #expect(image.color(canvas.width / 2, canvas.height / 2) == canvas.pixel(x: canvas.width / 2, y: canvas.height / 2))
    let layout = try Plot.heatmapLayout(values: values, rowLabels: rows, columnLabels: cols, title: "Attention", path: "x")
    #expect(layout.rotateColumnLabels)
    #expect(layout.cell == 560 / 60)
    #expect(canvas.width == layout.width && canvas.height == layout.height)
    // Every cell's colour matches its value: (r, c) with value 10 is the top colour.
    let o = layout.cellOrigin(row: 0, column: 7) // (0 * 7 + 7 * 3) % 11 = 10
    #expect(canvas.pixel(x: o.x + 1, y: o.y + 1) == ColorMap.top)
    // Labels fit inside the image: nothing drawn touches the last column or row.
    for y in 0..<canvas.height { #expect(canvas.pixel(x: canvas.width - 1, y: y) == .white) }
    for x in 0..<canvas.width { #expect(canvas.pixel(x: x, y: canvas.height - 1) == .white) }
}

@Test func canvasLinesRectsAndClipping() {
    var c = Canvas(width: 20, height: 10)
    c.drawLine(x0: 2, y0: 5, x1: 10, y1: 5, color: .black)
    for x in 0..<20 { #expect((c.pixel(x: x, y: 5) == .black) == (2...10).contains(x)) }
    c.drawLine(x0: 0, y0: 0, x1: 4, y1: 4, color: RGB(255, 0, 0))
    for i in 0...4 { #expect(c.pixel(x: i, y: i) == RGB(255, 0, 0)) }
    #expect(c.pixel(x: 1, y: 0) == .white)
    // Clipped drawing far outside does not crash and touches only the visible part.
    c.fillRect(x: -5, y: -5, width: 7, height: 7, color: RGB(0, 0, 255))
    #expect(c.pixel(x: 1, y: 1) == RGB(0, 0, 255) && c.pixel(x: 2, y: 1) == .white && c.pixel(x: 1, y: 2) == .white)
    c.drawLine(x0: -1_000_000, y0: 9, x1: 1_000_000, y1: 9, color: RGB(0, 255, 0), thickness: 1)
    #expect(c.pixel(x: 0, y: 9) == RGB(0, 255, 0) && c.pixel(x: 19, y: 9) == RGB(0, 255, 0))
    #expect(c.pixel(x: 20, y: 0) == nil && c.pixel(x: -1, y: 0) == nil)
}

@Test func fontGlyphsAndText() {
    // All 95 printable glyphs are distinct; only the space is blank.
    var seen = Set<[UInt8]>()
    for v in 32...126 {
        let g = BitmapFont.glyph(Unicode.Scalar(UInt8(v)))
        #expect(g.count == ("gjpqy".unicodeScalars.contains(Unicode.Scalar(UInt8(v))) ? 9 : 7))
        #expect(g.allSatisfy { $0 < 32 })
        #expect((g.allSatisfy { $0 == 0 }) == (v == 32))
        seen.insert(g)
    }
    #expect(seen.count == 95)
    // Characters outside the table draw as a box.
    #expect(BitmapFont.glyph("é") == [31, 17, 17, 17, 17, 17, 31])
    #expect(BitmapFont.width(of: "abc") == 17)
    #expect(BitmapFont.width(of: "abc", scale: 2) == 34)
    // "T" drawn at (1, 1): its top bar covers columns 1...5 of row 1 and the stem is column 3.
    var c = Canvas(width: 10, height: 10)
    c.drawText("T", x: 1, y: 1, color: .black)
    for x in 0..<10 { #expect((c.pixel(x: x, y: 1) == .black) == (1...5).contains(x)) }
    for y in 2...7 { #expect(c.pixel(x: 3, y: y) == .black && c.pixel(x: 2, y: y) == .white) }
    // Rotated: "T" read bottom to top; the bar becomes the leftmost column x = 1, rows 5...9.
    var v = Canvas(width: 10, height: 12)
    v.drawTextVertical("T", x: 1, bottom: 9, color: .black)
    for y in 0..<12 { #expect((v.pixel(x: 1, y: y) == .black) == (5...9).contains(y)) }
    for x in 2...7 { #expect(v.pixel(x: x, y: 7) == .black && v.pixel(x: x, y: 8) == .white) }
}

@Test func ticksAreNiceAndCoverTheData() {
    // 0.13...9.7 with about 5 intervals: raw step 1.914 -> 2, axis 0...10.
    let a = Ticks(minimum: 0.13, maximum: 9.7, target: 5)
    #expect(a.step == 2 && a.low == 0 && a.high == 10)
    #expect(a.values == [0, 2, 4, 6, 8, 10])
    #expect(a.label(4) == "4")
    // Losses 2.31...2.37: raw step 0.012 -> 0.02, axis 2.30...2.38, two decimals.
    let b = Ticks(minimum: 2.31, maximum: 2.37, target: 5)
    #expect(abs(b.step - 0.02) < 1e-12 && abs(b.low - 2.30) < 1e-9 && abs(b.high - 2.38) < 1e-9)
    #expect(b.label(2.34) == "2.34")
    // A constant series still gets a non-empty range around its value.
    let c = Ticks(minimum: 5, maximum: 5, target: 4)
    #expect(c.low < 5 && c.high > 5)
    #expect(Ticks.format(2_500_000, step: 500_000) == "2.50e+06")
}

@Test func descendersReachBelowTheBaseline() {
    // "op" drawn at y = 0: the 'o' stays in rows 0...6, the 'p' stem (column 0 of the second
    // glyph, x = 6) continues into rows 7 and 8; nothing reaches row 9.
    var c = Canvas(width: 20, height: 12)
    c.drawText("op", x: 0, y: 0, color: .black)
    func black(_ x: Int, _ y: Int) -> Bool { c.pixel(x: x, y: y) == .black }
    #expect(black(6, 7) && black(6, 8))
    #expect((0..<6).allSatisfy { x in !black(x, 7) && !black(x, 8) })
    #expect((0..<20).allSatisfy { x in !black(x, 9) })
    // 'g' and 'y' close their tails in the last row; 'q' keeps its stem on the right.
    var g = Canvas(width: 30, height: 12)
    g.drawText("gyq", x: 0, y: 0, color: .black)
    #expect(g.pixel(x: 2, y: 8) == .black && g.pixel(x: 8, y: 8) == .black && g.pixel(x: 16, y: 8) == .black)
    #expect(g.pixel(x: 12, y: 8) == .white)
    #expect(BitmapFont.lineHeight == 9)
}

@Test func heatmapNamesItsAxes() throws {
    let values: [[Double]] = [[3, 1], [0, 4]]
    let names = ["cat", "dog"]
    // Black pixels inside a rectangle, as their bounding box (nil when none).
    func box(_ c: Canvas, x: Range<Int>, y: Range<Int>) -> (x: ClosedRange<Int>, y: ClosedRange<Int>)? {
        var xs: [Int] = [], ys: [Int] = []
        for yy in y { for xx in x where c.pixel(x: xx, y: yy) == .black { xs.append(xx); ys.append(yy) } }
        guard let x0 = xs.min(), let x1 = xs.max(), let y0 = ys.min(), let y1 = ys.max() else { return nil }
        return (x0...x1, y0...y1)
    }
    let plain = try Plot.heatmapCanvas(values: values, rowLabels: names, columnLabels: names, title: "", annotate: true)
    let named = try Plot.heatmapCanvas(values: values, rowLabels: names, columnLabels: names, title: "", annotate: true,
                                       rowAxis: "true", columnAxis: "predicted")
    let l = try Plot.heatmapLayout(values: values, rowLabels: names, columnLabels: names, title: "",
                                   rowAxis: "true", columnAxis: "predicted", path: "x")
    let gridW = 2 * l.cell, gridH = 2 * l.cell
    // The row axis: "true" read bottom to top, left of the row labels, as long as its text, centred on the grid.
    let rowLabelsLeft = l.gridLeft - 6 - BitmapFont.width(of: "cat")
    let r = try #require(box(named, x: 0..<rowLabelsLeft, y: 0..<named.height))
    #expect(r.y.count == BitmapFont.width(of: "true"))
    #expect(r.x.count <= BitmapFont.lineHeight && r.x.upperBound < rowLabelsLeft - 2)
    #expect(abs((r.y.lowerBound + r.y.upperBound) / 2 - (l.gridTop + gridH / 2)) <= 1)
    // The column axis: "predicted" below the column labels, centred on the grid, 'p' and 'd' reaching
    // below 'r' (descender of p; 'd' has none, so the box is one line with a descender).
    let labelsBottom = l.gridTop + gridH + 6 + BitmapFont.lineHeight
    let c = try #require(box(named, x: 0..<named.width, y: labelsBottom..<named.height))
    #expect(c.x.count == BitmapFont.width(of: "predicted"))
    #expect(c.y.count == BitmapFont.lineHeight)
    #expect(abs((c.x.lowerBound + c.x.upperBound) / 2 - (l.gridLeft + gridW / 2)) <= 1)
    // Without axis names nothing is drawn there, and the grid starts further left.
    let p = try Plot.heatmapLayout(values: values, rowLabels: names, columnLabels: names, title: "", path: "x")
    #expect(box(plain, x: 0..<(p.gridLeft - 6 - BitmapFont.width(of: "cat")), y: 0..<plain.height) == nil)
    #expect(box(plain, x: 0..<plain.width, y: (p.gridTop + gridH + 6 + BitmapFont.lineHeight)..<plain.height) == nil)
    #expect(l.gridLeft == p.gridLeft + BitmapFont.lineHeight + 6)
}
