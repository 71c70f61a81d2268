import Foundation
import RecurrentCore

/// Options of the synthetic `shapes` clips.
public struct ShapesOptions: Sendable, Equatable {
    /// Anti-aliasing of the rendered shapes.
    public enum AntiAlias: String, Sendable {
        /// 4x4 supersampling per pixel.
        case on
        /// One sample at each pixel centre (hard edges).
        case off
        /// Chosen per clip at random.
        case random
    }

    /// Frame width and height in pixels (at least 8).
    public var width: Int, height: Int
    /// Frames per clip (at least 2).
    public var frames: Int
    /// Anti-aliasing.
    public var antiAlias: AntiAlias

    /// Creates options; defaults: 32x32 grey, 12 frames, anti-aliasing chosen per clip.
    public init(width: Int = 32, height: Int = 32, frames: Int = 12, antiAlias: AntiAlias = .random) {
        self.width = width
        self.height = height
        self.frames = frames
        self.antiAlias = antiAlias
    }
}

/// Writers of PNG data sets, deterministic per seed: the same seed gives byte-identical files,
/// whatever the thread count (each clip draws from its own generator seeded by `(seed, class,
/// clip)`).
public enum FrameGenerator {
    /// The six `shapes` classes: a bar sweeping left or right, a disc growing or shrinking, a
    /// square rotating clockwise or counter-clockwise (as seen on screen, y pointing down).
    /// No single frame tells the class; the motion does.
    public static let shapeClasses = ["bar-left", "bar-right", "disc-grow", "disc-shrink", "square-ccw", "square-cw"]

    /// The eight `moving-digits` classes: the digit's initial direction of motion.
    public static let directionClasses = ["e", "n", "ne", "nw", "s", "se", "sw", "w"]

    /// Unit steps (dx, dy) of `directionClasses`, y pointing down.
    static let directionSteps: [(Int, Int)] = [(1, 0), (0, -1), (1, -1), (-1, -1), (0, 1), (1, 1), (-1, 1), (-1, 0)]

    // MARK: - shapes

    /// Renders one `shapes` clip of class `classIndex` (into `shapeClasses`).
    /// - Returns: frames `[frames][height * width]`, 8-bit grey.
    public static func renderShapeClip(classIndex: Int, options: ShapesOptions, rng: inout SeededRandom) -> [[UInt8]] {
        let w = options.width, h = options.height, fw = Float(w), fh = Float(h)
        let s = Float(min(w, h))
        let background = rng.uniform(0, 0.25)
        let foreground = rng.uniform(0.6, 1.0)
        let smooth: Bool
        switch options.antiAlias {
        case .on: smooth = true
        case .off: smooth = false
        case .random: smooth = rng.nextInt(below: 2) == 1
        }
        let last = Float(options.frames - 1)
        // Each shape is an inside(x, y, t) test in pixel coordinates (pixel centres at +0.5).
        let inside: (Float, Float, Float) -> Bool
        switch shapeClasses[classIndex] {
        case "square-cw", "square-ccw":
            let half = rng.uniform(0.18, 0.3) * s
            let reach = half * 1.4143
            let cx = rng.uniform(reach, fw - reach), cy = rng.uniform(reach, fh - reach)
            let speed = rng.uniform(8, 20) * Float.pi / 180
            let phase = rng.uniform(0, Float.pi / 2)
            let sign: Float = shapeClasses[classIndex] == "square-cw" ? 1 : -1
            inside = { x, y, t in
                let a = phase + sign * speed * t
                let c = cosf(a), sn = sinf(a)
                let dx = x - cx, dy = y - cy
                let u = dx * c + dy * sn, v = -dx * sn + dy * c
                return abs(u) <= half && abs(v) <= half
            }
        case "disc-grow", "disc-shrink":
            let small = rng.uniform(0.06, 0.14) * s
            let large = rng.uniform(0.28, 0.42) * s
            let cx = rng.uniform(large, fw - large), cy = rng.uniform(large, fh - large)
            let grow = shapeClasses[classIndex] == "disc-grow"
            // Random start phase: the sweep covers a random 70-100 % of [small, large].
            let span = rng.uniform(0.7, 1.0)
            let offset = rng.uniform(0, 1 - span)
            inside = { x, y, t in
                var p = offset + span * t / last
                if !grow { p = 1 - p }
                let r = small + (large - small) * p
                let dx = x - cx, dy = y - cy
                return dx * dx + dy * dy <= r * r
            }
        default: // bars
            let barWidth = rng.uniform(0.1, 0.2) * fw
            let barHeight = rng.uniform(0.5, 1.0) * fh
            let top = rng.uniform(0, fh - barHeight)
            let speed = rng.uniform(0.04, 0.07) * fw
            let travel = speed * last
            let start = rng.uniform(-barWidth / 2, max(-barWidth / 2, fw - barWidth / 2 - travel))
            let right = shapeClasses[classIndex] == "bar-right"
            inside = { x, y, t in
                let left = right ? start + speed * t : fw - barWidth - (start + speed * t)
                return x >= left && x < left + barWidth && y >= top && y < top + barHeight
            }
        }
        let sub = smooth ? 4 : 1
        let inv = 1 / Float(sub * sub)
        var frames: [[UInt8]] = []
        frames.reserveCapacity(options.frames)
        for f in 0..<options.frames {
            let t = Float(f)
            var pixels = [UInt8](repeating: 0, count: w * h)
            for y in 0..<h {
                for x in 0..<w {
                    var hits = 0
                    for j in 0..<sub {
                        for i in 0..<sub {
                            let px = Float(x) + (Float(i) + 0.5) / Float(sub)
                            let py = Float(y) + (Float(j) + 0.5) / Float(sub)
                            if inside(px, py, t) { hits += 1 }
                        }
                    }
                    let v = background + (foreground - background) * Float(hits) * inv
                    pixels[y * w + x] = UInt8(min(255, max(0, (v * 255).rounded())))
                }
            }
            frames.append(pixels)
        }
        return frames
    }

    /// Writes `clipsPerClass` `shapes` clips per class as `directory/<class>/clip_NNNN/frame_NN.png`.
    public static func writeShapes(directory: String, clipsPerClass: Int, seed: UInt64,
                                   options: ShapesOptions = ShapesOptions(), threads: Int? = nil) throws {
        guard options.width >= 8, options.height >= 8, options.frames >= 2, clipsPerClass >= 1 else {
            throw FrameError.invalidArgument("shapes need frames of at least 8x8, 2 frames and 1 clip per class")
        }
        let jobs = shapeClasses.indices.flatMap { c in (0..<clipsPerClass).map { (c, $0) } }
        _ = try Threading.parallelMap(count: jobs.count, threads: threads ?? Threading.defaultThreads) { k in
            let (c, clip) = jobs[k]
            var rng = clipRandom(seed: seed, group: c, clip: clip)
            let frames = renderShapeClip(classIndex: c, options: options, rng: &rng)
            let folder = "\(directory)/\(shapeClasses[c])/\(clipName(clip, of: clipsPerClass))"
            try writeClip(folder: folder, frames: frames, width: options.width, height: options.height)
        }
    }

    /// Writes a `shapes` set with `train/` and `test/` sub-folders (test seeded with `seed + 1`).
    public static func writeShapes(root: String, trainPerClass: Int, testPerClass: Int, seed: UInt64,
                                   options: ShapesOptions = ShapesOptions(), threads: Int? = nil) throws {
        try writeShapes(directory: root + "/train", clipsPerClass: trainPerClass, seed: seed, options: options, threads: threads)
        try writeShapes(directory: root + "/test", clipsPerClass: testPerClass, seed: seed &+ 1, options: options, threads: threads)
    }

    // MARK: - mnist-rows

    /// Writes MNIST images as PNG class folders: image `i < trainCount` to
    /// `directory/train/<digit>/img_NNNNN.png`, the rest to `directory/test/<digit>/`.
    /// Load with layout `.images` and `FeatureConfig(mode: .rows)` for sequential MNIST.
    public static func writeMNISTRows(_ mnist: MNISTSet, directory: String, trainCount: Int = 8000,
                                      threads: Int? = nil) throws {
        let side = mnist.rows * mnist.cols
        let _: [Void] = try Threading.parallelMap(count: mnist.count, threads: threads ?? Threading.defaultThreads) { i in
            let part = i < trainCount ? "train" : "test"
            let folder = "\(directory)/\(part)/\(mnist.labels[i])"
            try makeFolder(folder)
            let pixels = Array(mnist.images[(i * side)..<((i + 1) * side)])
            try PNGImage.write8(path: folder + "/img_" + pad(i, 5) + ".png", width: mnist.cols, height: mnist.rows,
                                channels: 1, samples: pixels)
        }
    }

    /// Reads `t10k-*-ubyte.gz` from `dataDirectory/mnist` and writes them with
    /// `writeMNISTRows` (images 0-7999 train, 8000-9999 test).
    public static func writeMNISTRows(dataDirectory: String, directory: String, threads: Int? = nil) throws {
        let mnist = try MNISTSet.loadTest(directory: dataDirectory + "/mnist")
        try writeMNISTRows(mnist, directory: directory, threads: threads)
    }

    // MARK: - moving-digits

    /// Renders one `moving-digits` clip: the MNIST image `imageIndex` pasted on a `size` x
    /// `size` black canvas, starting at a random position and moving `speed` (1-3) pixels per
    /// frame per axis in direction `directionIndex` (into `directionClasses`), bouncing off
    /// the borders. The start position leaves room for the first step, so the first two frames
    /// always show the class direction.
    /// - Returns: frames `[frames][size * size]`, 8-bit grey.
    public static func renderMovingDigit(_ mnist: MNISTSet, imageIndex: Int, directionIndex: Int, size: Int,
                                         frames: Int, rng: inout SeededRandom) -> [[UInt8]] {
        let dw = mnist.cols, dh = mnist.rows
        let maxX = size - dw, maxY = size - dh
        let speed = rng.nextInt(in: 1...3)
        var vx = directionSteps[directionIndex].0 * speed, vy = directionSteps[directionIndex].1 * speed
        // The start leaves room for the first step, so it always goes in the class direction
        // (a digit starting against a border would otherwise bounce at once and look like the
        // opposite direction).
        func start(_ v: Int, _ limit: Int) -> Int {
            v < 0 ? rng.nextInt(in: min(-v, limit)...limit) : rng.nextInt(in: 0...max(limit - v, 0))
        }
        var x = start(vx, maxX), y = start(vy, maxY)
        var out: [[UInt8]] = []
        out.reserveCapacity(frames)
        mnist.images.withUnsafeBufferPointer { images in
            let digit = images.baseAddress! + imageIndex * dw * dh
            for _ in 0..<frames {
                var canvas = [UInt8](repeating: 0, count: size * size)
                canvas.withUnsafeMutableBufferPointer { c in
                    for r in 0..<dh {
                        let dst = c.baseAddress! + (y + r) * size + x
                        let src = digit + r * dw
                        for k in 0..<dw { dst[k] = src[k] }
                    }
                }
                out.append(canvas)
                x += vx; y += vy
                if x < 0 { x = -x; vx = -vx } else if x > maxX { x = 2 * maxX - x; vx = -vx }
                if y < 0 { y = -y; vy = -vy } else if y > maxY { y = 2 * maxY - y; vy = -vy }
                x = min(max(x, 0), maxX); y = min(max(y, 0), maxY)
            }
        }
        return out
    }

    /// Writes `clipsPerClass` `moving-digits` clips per direction as
    /// `directory/<direction>/clip_NNNN/frame_NN.png`, digits drawn from `imageRange` of `mnist`.
    public static func writeMovingDigits(_ mnist: MNISTSet, directory: String, clipsPerClass: Int, seed: UInt64,
                                         imageRange: Range<Int>? = nil, size: Int = 48, frames: Int = 16,
                                         threads: Int? = nil) throws {
        let range = imageRange ?? 0..<mnist.count
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= mnist.count else {
            throw FrameError.invalidArgument("image range \(range) outside 0..<\(mnist.count)")
        }
        guard size >= max(mnist.rows, mnist.cols), frames >= 2, clipsPerClass >= 1 else {
            throw FrameError.invalidArgument("moving digits need a canvas of at least \(mnist.cols)x\(mnist.rows), 2 frames and 1 clip per class")
        }
        let jobs = directionClasses.indices.flatMap { c in (0..<clipsPerClass).map { (c, $0) } }
        _ = try Threading.parallelMap(count: jobs.count, threads: threads ?? Threading.defaultThreads) { k in
            let (c, clip) = jobs[k]
            var rng = clipRandom(seed: seed, group: c, clip: clip)
            let image = range.lowerBound + rng.nextInt(below: range.count)
            let clipFrames = renderMovingDigit(mnist, imageIndex: image, directionIndex: c, size: size,
                                               frames: frames, rng: &rng)
            let folder = "\(directory)/\(directionClasses[c])/\(clipName(clip, of: clipsPerClass))"
            try writeClip(folder: folder, frames: clipFrames, width: size, height: size)
        }
    }

    /// Writes `train/` (digits 0-7999) and `test/` (digits 8000-9999) `moving-digits` sets
    /// from `dataDirectory/mnist`; the test part is seeded with `seed + 1`.
    public static func writeMovingDigits(dataDirectory: String, root: String, trainPerClass: Int, testPerClass: Int,
                                         seed: UInt64, threads: Int? = nil) throws {
        let mnist = try MNISTSet.loadTest(directory: dataDirectory + "/mnist")
        let split = min(8000, mnist.count - 1)
        try writeMovingDigits(mnist, directory: root + "/train", clipsPerClass: trainPerClass, seed: seed,
                              imageRange: 0..<split, threads: threads)
        try writeMovingDigits(mnist, directory: root + "/test", clipsPerClass: testPerClass, seed: seed &+ 1,
                              imageRange: split..<mnist.count, threads: threads)
    }

    // MARK: - helpers

    /// A generator for clip `clip` of group `group`, independent of the order clips are made in.
    static func clipRandom(seed: UInt64, group: Int, clip: Int) -> SeededRandom {
        var mixer = SeededRandom(seed: seed)
        let a = mixer.next()
        return SeededRandom(seed: a ^ (UInt64(group) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(clip) &* 0xD1B5_4A32_D192_ED03))
    }

    static func clipName(_ clip: Int, of count: Int) -> String {
        "clip_" + pad(clip, max(4, String(count - 1).count))
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    static func makeFolder(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FrameError.writeFailed(path: path, reason: "cannot create folder: " + (FileSystemErrorText.reason(error) ?? "\(error)"))
        }
    }

    static func writeClip(folder: String, frames: [[UInt8]], width: Int, height: Int) throws {
        try makeFolder(folder)
        let digits = max(2, String(frames.count - 1).count)
        for (f, pixels) in frames.enumerated() {
            try PNGImage.write8(path: folder + "/frame_" + pad(f, digits) + ".png", width: width, height: height,
                                channels: 1, samples: pixels)
        }
    }
}
