/// Area-averaging weights along one axis: destination cell `i` covers the source interval
/// `[i * s / d, (i + 1) * s / d)`; each source cell contributes its overlap length divided by
/// the interval length `s / d`, so the weights of one destination cell sum to 1.
struct AreaWeights: Sendable {
    /// First source index for each destination index.
    var start: [Int]
    /// Number of source cells for each destination index.
    var count: [Int]
    /// Offset of each destination index's weights in `weights`.
    var offset: [Int]
    /// Concatenated weights.
    var weights: [Float]

    init(source: Int, destination: Int) {
        let scale = Double(source) / Double(destination)
        start = []; count = []; offset = []; weights = []
        start.reserveCapacity(destination); count.reserveCapacity(destination); offset.reserveCapacity(destination)
        for i in 0..<destination {
            let lo = Double(i) * scale, hi = Double(i + 1) * scale
            var first = Int(lo.rounded(.down))
            let last = min(source, Int(hi.rounded(.up)))
            var ws: [Float] = []
            var s = first
            while s < last {
                let overlap = min(hi, Double(s + 1)) - max(lo, Double(s))
                if overlap > 1e-9 {
                    ws.append(Float(overlap / scale))
                } else if ws.isEmpty {
                    first = s + 1
                }
                s += 1
            }
            start.append(first)
            offset.append(weights.count)
            count.append(ws.count)
            weights.append(contentsOf: ws)
        }
    }
}

/// Turns decoded frames of one source size into feature vectors per a `FeatureConfig`:
/// colour conversion, area-average resize to `config.width` x `config.height`, flatten to
/// `[height, width, channels]`.
///
/// Holds scratch buffers, so one extractor serves one thread; create one per source size.
public final class FrameFeatureExtractor {
    /// The feature configuration.
    public let config: FeatureConfig
    /// Source width, height and channels this extractor accepts.
    public let sourceWidth: Int, sourceHeight: Int, sourceChannels: Int

    private let horizontal: AreaWeights
    private let vertical: AreaWeights
    private let plane: UnsafeMutablePointer<Float>     // [sh, sw, oc] colour-converted
    private let rows: UnsafeMutablePointer<Float>      // [sh, dw, oc] after the horizontal pass

    /// Creates an extractor for sources of `width` x `height` x `channels` (channels 1...4).
    public init(config: FeatureConfig, width: Int, height: Int, channels: Int) {
        precondition(width > 0 && height > 0 && (1...4).contains(channels), "bad source size")
        self.config = config
        sourceWidth = width; sourceHeight = height; sourceChannels = channels
        horizontal = AreaWeights(source: width, destination: config.width)
        vertical = AreaWeights(source: height, destination: config.height)
        let oc = config.channels
        plane = .allocate(capacity: width * height * oc)
        rows = .allocate(capacity: height * config.width * oc)
    }

    deinit {
        plane.deallocate()
        rows.deallocate()
    }

    /// Features of one frame.
    /// - Parameters:
    ///   - source: samples `[sourceHeight, sourceWidth, sourceChannels]` in [0, 1].
    ///   - output: receives `config.featuresPerFrame` values `[height, width, channels]`.
    public func extract(_ source: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        let sw = sourceWidth, sh = sourceHeight
        let dw = config.width, dh = config.height
        let sameSize = sw == dw && sh == dh
        // 1. Colour conversion (straight into the output when no resize is needed).
        let converted = sameSize ? output : plane
        convertColour(source, into: converted, pixels: sw * sh)
        if sameSize { return }
        let oc = config.channels
        // 2. Horizontal pass: rows[y, i, c] = sum_k w[i,k] * plane[y, start_i + k, c].
        horizontal.start.withUnsafeBufferPointer { hs in
        horizontal.count.withUnsafeBufferPointer { hc in
        horizontal.offset.withUnsafeBufferPointer { ho in
        horizontal.weights.withUnsafeBufferPointer { hw in
            for y in 0..<sh {
                let src = plane + y * sw * oc
                let dst = rows + y * dw * oc
                if oc == 1 {
                    for i in 0..<dw {
                        var acc: Float = 0
                        let s = src + hs[i]
                        let w = hw.baseAddress! + ho[i]
                        for k in 0..<hc[i] { acc += w[k] * s[k] }
                        dst[i] = acc
                    }
                } else {
                    for i in 0..<dw {
                        let s = src + hs[i] * oc
                        let w = hw.baseAddress! + ho[i]
                        for c in 0..<oc {
                            var acc: Float = 0
                            for k in 0..<hc[i] { acc += w[k] * s[k * oc + c] }
                            dst[i * oc + c] = acc
                        }
                    }
                }
            }
        }}}}
        // 3. Vertical pass: output[j, :] = sum_k w[j,k] * rows[start_j + k, :].
        let rowLength = dw * oc
        vertical.start.withUnsafeBufferPointer { vs in
        vertical.count.withUnsafeBufferPointer { vc in
        vertical.offset.withUnsafeBufferPointer { vo in
        vertical.weights.withUnsafeBufferPointer { vw in
            for j in 0..<dh {
                let dst = output + j * rowLength
                dst.update(repeating: 0, count: rowLength)
                for k in 0..<vc[j] {
                    let w = vw[vo[j] + k]
                    let src = rows + (vs[j] + k) * rowLength
                    for x in 0..<rowLength { dst[x] += w * src[x] }
                }
            }
        }}}}
    }

    /// Converts `pixels` source pixels to the output colour (alpha dropped).
    private func convertColour(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, pixels: Int) {
        let ic = sourceChannels
        switch (config.colour, ic) {
        case (.grey, 1):
            dst.update(from: src, count: pixels)
        case (.grey, 2):
            for p in 0..<pixels { dst[p] = src[p * 2] }
        case (.grey, _):
            for p in 0..<pixels {
                let s = src + p * ic
                dst[p] = 0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]
            }
        case (.rgb, 1), (.rgb, 2):
            for p in 0..<pixels {
                let v = src[p * ic]
                dst[p * 3] = v; dst[p * 3 + 1] = v; dst[p * 3 + 2] = v
            }
        case (.rgb, 3):
            dst.update(from: src, count: pixels * 3)
        case (.rgb, _):
            for p in 0..<pixels {
                dst[p * 3] = src[p * 4]; dst[p * 3 + 1] = src[p * 4 + 1]; dst[p * 3 + 2] = src[p * 4 + 2]
            }
        }
    }

    /// Features of one image as a new array `[height, width, channels]` (convenience).
    public func extract(_ image: FrameImage) -> [Float] {
        precondition(image.width == sourceWidth && image.height == sourceHeight && image.channels == sourceChannels,
                     "image size differs from the extractor's source size")
        var out = [Float](repeating: 0, count: config.featuresPerFrame)
        image.samples.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                extract(src.baseAddress!, into: dst.baseAddress!)
            }
        }
        return out
    }
}

/// Stand-alone image operations.
public enum FrameOps {
    /// Resizes `image` to `width` x `height` by exact area averaging (each output pixel is the
    /// mean of the source area it covers, fractional overlaps weighted by area); channels kept.
    /// - Returns: an image `[height, width, image.channels]`.
    public static func resizeAreaAverage(_ image: FrameImage, width: Int, height: Int) -> FrameImage {
        // Area averaging is linear and per channel: resize each channel as a grey plane.
        let n = image.width * image.height
        var out = [Float](repeating: 0, count: width * height * image.channels)
        let config = FeatureConfig(width: width, height: height, colour: .grey)
        let extractor = FrameFeatureExtractor(config: config, width: image.width, height: image.height, channels: 1)
        var planeIn = [Float](repeating: 0, count: n)
        var planeOut = [Float](repeating: 0, count: width * height)
        for c in 0..<image.channels {
            for p in 0..<n { planeIn[p] = image.samples[p * image.channels + c] }
            planeIn.withUnsafeBufferPointer { src in
                planeOut.withUnsafeMutableBufferPointer { dst in
                    extractor.extract(src.baseAddress!, into: dst.baseAddress!)
                }
            }
            for p in 0..<(width * height) { out[p * image.channels + c] = planeOut[p] }
        }
        return FrameImage(width: width, height: height, channels: image.channels, samples: out)
    }
}
