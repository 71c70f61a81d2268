import PNGCodec

/// An RGB image, 8 bits per channel, drawn in pixel coordinates with (0, 0) at the top left.
/// Drawing outside the image is clipped silently.
public struct Canvas: Sendable {
    /// Smallest accepted side length in pixels.
    public static let minimumSide = 16
    /// Largest accepted side length in pixels.
    public static let maximumSide = 16384

    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Pixel data, interleaved `[height][width][3]` (R, G, B), top row first.
    public private(set) var pixels: [UInt8]

    /// Creates a canvas filled with `background`; sizes are clamped to at least 1 pixel.
    public init(width: Int, height: Int, background: RGB = .white) {
        self.width = max(1, width)
        self.height = max(1, height)
        var px = [UInt8](repeating: 0, count: self.width * self.height * 3)
        px.withUnsafeMutableBufferPointer { buf in
            var i = 0
            while i < buf.count {
                buf[i] = background.r
                buf[i + 1] = background.g
                buf[i + 2] = background.b
                i += 3
            }
        }
        pixels = px
    }

    /// Colour at (x, y); nil outside the canvas.
    public func pixel(x: Int, y: Int) -> RGB? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Sets one pixel (ignored outside the canvas).
    public mutating func setPixel(x: Int, y: Int, color: RGB) {
        fillRect(x: x, y: y, width: 1, height: 1, color: color)
    }

    /// Fills the rectangle with top-left corner (x, y) and the given size, clipped to the canvas.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        let stride = width
        pixels.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            for row in y0..<y1 {
                var p = base + (row * stride + x0) * 3
                for _ in x0..<x1 {
                    p[0] = color.r
                    p[1] = color.g
                    p[2] = color.b
                    p += 3
                }
            }
        }
    }

    /// Outline of a rectangle, one pixel wide, inside the given bounds.
    public mutating func strokeRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        guard w > 0, h > 0 else { return }
        fillRect(x: x, y: y, width: w, height: 1, color: color)
        fillRect(x: x, y: y + h - 1, width: w, height: 1, color: color)
        fillRect(x: x, y: y, width: 1, height: h, color: color)
        fillRect(x: x + w - 1, y: y, width: 1, height: h, color: color)
    }

    /// Straight line between two pixel centres (Bresenham), `thickness` pixels wide (a square pen).
    /// Coordinates far outside the canvas are clipped to a safe range first.
    public mutating func drawLine(x0: Int, y0: Int, x1: Int, y1: Int, color: RGB, thickness: Int = 1) {
        let limit = 4 * max(width, height) + 64
        // Lines whose ends lie beyond ±limit are not expected from the plots; clamp to keep the
        // loop bounded (the part inside the canvas stays exact for near lines).
        var ax = min(max(x0, -limit), limit), ay = min(max(y0, -limit), limit)
        let bx = min(max(x1, -limit), limit), by = min(max(y1, -limit), limit)
        let pen = max(1, thickness)
        let offset = (pen - 1) / 2
        let dx = abs(bx - ax), sx = ax < bx ? 1 : -1
        let dy = -abs(by - ay), sy = ay < by ? 1 : -1
        var err = dx + dy
        let w = width, h = height
        pixels.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            while true {
                for py in (ay - offset)..<(ay - offset + pen) where py >= 0 && py < h {
                    for px in (ax - offset)..<(ax - offset + pen) where px >= 0 && px < w {
                        let p = base + (py * w + px) * 3
                        p[0] = color.r
                        p[1] = color.g
                        p[2] = color.b
                    }
                }
                if ax == bx && ay == by { break }
                let e2 = 2 * err
                if e2 >= dy { err += dy; ax += sx }
                if e2 <= dx { err += dx; ay += sy }
            }
        }
    }

    /// Draws `text` with the built-in 5x7 font, top-left corner of the first glyph at (x, y),
    /// each font pixel a `scale` x `scale` square.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: RGB, scale: Int = 1) {
        let s = max(1, scale)
        var cx = x
        for scalar in text.unicodeScalars {
            let glyph = BitmapFont.glyph(scalar)
            for (row, bits) in glyph.enumerated() where bits != 0 {
                for col in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - col)) != 0 {
                    fillRect(x: cx + col * s, y: y + row * s, width: s, height: s, color: color)
                }
            }
            cx += BitmapFont.advance * s
        }
    }

    /// Draws `text` rotated 90° counter-clockwise (read bottom to top). The text occupies the
    /// columns x..<x+9*scale (descenders included) and the rows ending at `bottom` (inclusive) going up.
    public mutating func drawTextVertical(_ text: String, x: Int, bottom: Int, color: RGB, scale: Int = 1) {
        let s = max(1, scale)
        var along = 0
        for scalar in text.unicodeScalars {
            let glyph = BitmapFont.glyph(scalar)
            for (row, bits) in glyph.enumerated() where bits != 0 {
                for col in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - col)) != 0 {
                    // Glyph column runs upwards, glyph row runs to the right.
                    fillRect(x: x + row * s, y: bottom - (along + col + 1) * s + 1, width: s, height: s, color: color)
                }
            }
            along += BitmapFont.advance
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG (atomically: temporary file, then rename).
    public func writePNG(to path: String) throws(PlotError) {
        let samples = pixels.map(UInt16.init)
        var err = [CChar](repeating: 0, count: 512)
        let rc = samples.withUnsafeBufferPointer { s in
            rnn_png_write_file(path, s.baseAddress, Int32(width), Int32(height), Int32(RNN_PNG_RGB), 8, 0,
                               nil, 0, &err, Int32(err.count))
        }
        if rc != 0 {
            let reason = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PlotError.writeFailed(path: path, reason: reason.isEmpty ? "unknown error" : reason)
        }
    }
}
