/// An 8-bit sRGB colour.
public struct RGB: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Red, green and blue intensity, 0...255.
    public var r: UInt8, g: UInt8, b: UInt8

    /// Creates a colour from its three 8-bit components.
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    /// Pure white, the background of every plot.
    public static let white = RGB(255, 255, 255)
    /// Pure black, used for axes and text.
    public static let black = RGB(0, 0, 0)
    /// Light grey for grid lines.
    public static let gridGrey = RGB(225, 225, 225)
    /// Mid grey for cells without a finite value.
    public static let missingGrey = RGB(190, 190, 190)

    /// Relative luminance in [0, 1] (Rec. 709 weights on the 8-bit values).
    public var luminance: Double {
        (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255.0
    }

    /// "#rrggbb".
    public var description: String {
        let hex = [r, g, b].map { v -> String in
            let s = String(v, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        return "#" + hex.joined()
    }
}

/// Colours given to the series of a line chart, in order (repeating after the last).
public enum SeriesPalette {
    /// Ten well-separated colours.
    public static let colors: [RGB] = [
        RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40), RGB(148, 103, 189),
        RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127), RGB(188, 189, 34), RGB(23, 190, 207),
    ]

    /// Colour of series number `index` (0-based).
    public static func color(_ index: Int) -> RGB { colors[((index % colors.count) + colors.count) % colors.count] }
}

/// Sequential colour map from dark purple (low) through blue and green to yellow (high).
public enum ColorMap {
    /// Anchor colours at t = 0, 1/8, ..., 1; colours between anchors are interpolated linearly.
    public static let anchors: [RGB] = [
        RGB(68, 1, 84), RGB(72, 40, 120), RGB(62, 74, 137), RGB(49, 104, 142), RGB(38, 130, 142),
        RGB(31, 158, 137), RGB(53, 183, 121), RGB(109, 205, 89), RGB(253, 231, 37),
    ]
    /// Colour of the lowest value.
    public static var bottom: RGB { anchors[0] }
    /// Colour of the highest value.
    public static var top: RGB { anchors[anchors.count - 1] }

    /// Colour for `t` in [0, 1] (values outside are clamped; NaN gives `RGB.missingGrey`).
    public static func color(_ t: Double) -> RGB {
        guard !t.isNaN else { return .missingGrey }
        let c = min(max(t, 0), 1)
        let scaled = c * Double(anchors.count - 1)
        let i = min(Int(scaled), anchors.count - 2)
        let f = scaled - Double(i)
        let a = anchors[i], b = anchors[i + 1]
        func mix(_ x: UInt8, _ y: UInt8) -> UInt8 {
            UInt8((Double(x) + (Double(y) - Double(x)) * f).rounded())
        }
        return RGB(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b))
    }
}
