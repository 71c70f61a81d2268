import Foundation
import RecurrentCore
import Testing
@testable import ImageFrames

@Test func shapesGeneratorIsDeterministicPerSeed() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    let options = ShapesOptions(width: 16, height: 16, frames: 4)
    try FrameGenerator.writeShapes(directory: tmp.sub("a"), clipsPerClass: 2, seed: 7, options: options, threads: 2)
    try FrameGenerator.writeShapes(directory: tmp.sub("b"), clipsPerClass: 2, seed: 7, options: options, threads: 1)
    try FrameGenerator.writeShapes(directory: tmp.sub("c"), clipsPerClass: 2, seed: 8, options: options, threads: 2)
    let a = fileContents(under: tmp.sub("a")), b = fileContents(under: tmp.sub("b")), c = fileContents(under: tmp.sub("c"))
    #expect(a.count == 6 * 2 * 4)
    #expect(a == b)
    #expect(a.keys.sorted() == c.keys.sorted())
    #expect(a != c)
}

@Test func shapeClipsMoveAsTheirClassSays() {
    // The disc's ink area grows over time in "disc-grow" and shrinks in "disc-shrink"; the bar's
    // ink centre of mass moves right in "bar-right".
    func ink(_ frame: [UInt8]) -> (area: Int, cx: Double) {
        let threshold = (Int(frame.max() ?? 0) + Int(frame.min() ?? 0)) / 2
        var area = 0, sx = 0
        for (i, v) in frame.enumerated() where Int(v) > threshold { area += 1; sx += i % 32 }
        return (area, area > 0 ? Double(sx) / Double(area) : 0)
    }
    let options = ShapesOptions(width: 32, height: 32, frames: 12, antiAlias: .off)
    for seed in UInt64(1)...5 {
        var rng = SeededRandom(seed: seed)
        let grow = FrameGenerator.renderShapeClip(classIndex: FrameGenerator.shapeClasses.firstIndex(of: "disc-grow")!, options: options, rng: &rng)
        #expect(ink(grow.last!).area > ink(grow.first!).area)
        let shrink = FrameGenerator.renderShapeClip(classIndex: FrameGenerator.shapeClasses.firstIndex(of: "disc-shrink")!, options: options, rng: &rng)
        #expect(ink(shrink.last!).area < ink(shrink.first!).area)
        let right = FrameGenerator.renderShapeClip(classIndex: FrameGenerator.shapeClasses.firstIndex(of: "bar-right")!, options: options, rng: &rng)
        #expect(ink(right.last!).cx > ink(right.first!).cx)
        let left = FrameGenerator.renderShapeClip(classIndex: FrameGenerator.shapeClasses.firstIndex(of: "bar-left")!, options: options, rng: &rng)
        #expect(ink(left.last!).cx < ink(left.first!).cx)
    }
}

@Test func shapesRoundTripThroughTheLoader() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    let options = ShapesOptions(width: 16, height: 16, frames: 5, antiAlias: .on)
    try FrameGenerator.writeShapes(root: tmp.path, trainPerClass: 3, testPerClass: 1, seed: 3, options: options)
    let config = FeatureConfig(width: 8, height: 8)
    let split = try FrameSplit.load(root: tmp.path, layout: .clips, config: config, scope: nil, threads: 2)
    #expect(split.train.classNames == FrameGenerator.shapeClasses)
    #expect(split.train.examples.count == 18 && split.test.examples.count == 6)
    #expect(split.train.examples.map(\.label) == (0..<6).flatMap { [Int](repeating: $0, count: 3) })
    for e in split.train.examples + split.test.examples {
        #expect(e.time == 5 && e.featuresPerStep == 64 && e.features.count == 320)
        #expect(e.stepLabels == nil)
    }
    // The features are 2x2 block means of the pixels the generator rendered (8-bit / 255).
    var rng = FrameGenerator.clipRandom(seed: 3, group: 0, clip: 0)
    let frames = FrameGenerator.renderShapeClip(classIndex: 0, options: options, rng: &rng)
    let first = split.train.examples[0]
    #expect(first.source.hasSuffix("train/bar-left/clip_0000"))
    for f in 0..<5 {
        for y in 0..<8 {
            for x in 0..<8 {
                let p = frames[f]
                let sum = Int(p[(2 * y) * 16 + 2 * x]) + Int(p[(2 * y) * 16 + 2 * x + 1])
                    + Int(p[(2 * y + 1) * 16 + 2 * x]) + Int(p[(2 * y + 1) * 16 + 2 * x + 1])
                #expect(abs(first.features[f * 64 + y * 8 + x] - Float(sum) / (4 * 255)) < 1e-5)
            }
        }
    }
    // One thread gives the same numbers as two; statistics normalise the training set to mean 0, std 1.
    let single = try FrameSplit.load(root: tmp.path, layout: .clips, config: config, threads: 1)
    let double = try FrameSplit.load(root: tmp.path, layout: .clips, config: config, threads: 2)
    #expect(single.train.examples == double.train.examples && single.statistics == double.statistics)
    let all = single.train.examples.flatMap(\.features).map(Double.init)
    let mean = all.reduce(0, +) / Double(all.count)
    let variance = all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)
    #expect(abs(mean) < 1e-4 && abs(variance - 1) < 1e-3)
    // Rows mode: one row per step.
    let rows = try FrameDataset.load(index: FrameIndex.scan(directory: tmp.sub("test"), layout: .clips),
                                     config: FeatureConfig(width: 8, height: 8, mode: .rows))
    #expect(rows.examples[0].time == 40 && rows.examples[0].featuresPerStep == 8)
}

@Test func perFrameLabelsManifestAndSeededSplit() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    for (cls, clip) in [("a", "c1"), ("a", "c2"), ("a", "c3"), ("b", "c1"), ("b", "c2")] {
        for f in [1, 2, 10] { try writeGrey(tmp.sub("set/\(cls)/\(clip)/f\(f).png"), width: 4, height: 2) { x, _ in UInt8(f * 20 + x) } }
    }
    try "run\nstop\nrun\n".write(toFile: tmp.sub("set/a/c1/labels.txt"), atomically: true, encoding: .utf8)
    let index = try FrameIndex.scan(directory: tmp.sub("set"), layout: .clips)
    #expect(index.classNames == ["a", "b"])
    #expect(index.items[0].frames.map { ($0 as NSString).lastPathComponent } == ["f1.png", "f2.png", "f10.png"])
    #expect(index.frameClassNames == ["run", "stop"])
    let data = try FrameDataset.load(index: index, config: FeatureConfig(width: 4, height: 2, mode: .rows))
    #expect(data.examples[0].stepLabels == [0, 0, 1, 1, 0, 0])
    // Frame order follows natural order: frame 2 of the sequence is f10 (value 200 + x).
    #expect(abs(data.examples[0].features[2 * 8 + 1] - 201 / 255) < 1e-6)

    // Seeded, stratified split: same seed same split; every class keeps training items.
    let s1 = try index.split(testFraction: 0.4, seed: 5), s2 = try index.split(testFraction: 0.4, seed: 5)
    #expect(s1.train == s2.train && s1.test == s2.test)
    #expect(s1.test.items.filter { $0.className == "a" }.count == 1)
    #expect(s1.test.items.filter { $0.className == "b" }.count == 1)
    #expect(Set(s1.train.items.map(\.name)).isDisjoint(with: s1.test.items.map(\.name)))

    // CSV manifest: header, a clip folder and a single image, relative paths.
    let manifest = tmp.sub("set/list.csv")
    try "path,label\na/c2,walk\n\"b/c1/f2.png\",still\n".write(toFile: manifest, atomically: true, encoding: .utf8)
    let listed = try FrameIndex.manifest(path: manifest)
    #expect(listed.classNames == ["still", "walk"])
    #expect(listed.items.map(\.frames.count) == [3, 1])
    let loaded = try FrameDataset.load(index: listed, config: FeatureConfig(width: 2, height: 1))
    #expect(loaded.examples.map(\.label) == [1, 0])
    #expect(loaded.examples.map(\.time) == [3, 1])
    try "path,label\nnowhere.png,x\n".write(toFile: manifest, atomically: true, encoding: .utf8)
    #expect(thrownFrameError { _ = try FrameIndex.manifest(path: manifest) }?.description.hasPrefix(manifest + ":2: no such file") == true)
}

@Test func badDataSetLayoutsAreReported() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    // Frames of different sizes in one clip: both files named.
    try writeGrey(tmp.sub("sizes/x/clip/f1.png"), width: 4, height: 4)
    try writeGrey(tmp.sub("sizes/x/clip/f2.png"), width: 5, height: 4)
    let mismatch = thrownFrameError {
        _ = try FrameDataset.load(index: FrameIndex.scan(directory: tmp.sub("sizes"), layout: .clips), config: FeatureConfig(width: 2, height: 2))
    }
    #expect(mismatch == .frameSizeMismatch(first: tmp.sub("sizes/x/clip/f1.png"), firstSize: "4x4x1",
                                           other: tmp.sub("sizes/x/clip/f2.png"), otherSize: "5x4x1"))
    #expect(mismatch?.description.contains("f1.png") == true && mismatch?.description.contains("f2.png") == true)

    // Empty clip folder.
    try writeGrey(tmp.sub("emptyclip/x/good/f1.png"), width: 2, height: 2)
    try FileManager.default.createDirectory(atPath: tmp.sub("emptyclip/x/hollow"), withIntermediateDirectories: true)
    #expect(thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("emptyclip"), layout: .clips) } == .emptyClip(path: tmp.sub("emptyclip/x/hollow")))

    // Class folder with no clips.
    try writeGrey(tmp.sub("emptyclass/x/c/f1.png"), width: 2, height: 2)
    try FileManager.default.createDirectory(atPath: tmp.sub("emptyclass/y"), withIntermediateDirectories: true)
    #expect(thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("emptyclass"), layout: .clips) } == .emptyClass(path: tmp.sub("emptyclass/y")))
    #expect(thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("emptyclass"), layout: .images) } == .emptyClass(path: tmp.sub("emptyclass/x")))

    // Label file whose length differs from the frame count.
    try writeGrey(tmp.sub("labels/x/c/f1.png"), width: 2, height: 2)
    try writeGrey(tmp.sub("labels/x/c/f2.png"), width: 2, height: 2)
    try "on\noff\non\n".write(toFile: tmp.sub("labels/x/c/labels.txt"), atomically: true, encoding: .utf8)
    let labels = thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("labels"), layout: .clips) }
    #expect(labels == .labelCountMismatch(path: tmp.sub("labels/x/c/labels.txt"), labels: 3, frames: 2))
    #expect(labels?.description == "\(tmp.sub("labels/x/c/labels.txt")): 3 labels for 2 frames (one label per frame expected)")

    // No class folders at all, and a missing folder.
    try FileManager.default.createDirectory(atPath: tmp.sub("bare"), withIntermediateDirectories: true)
    #expect(thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("bare"), layout: .clips) } == .noClasses(path: tmp.sub("bare")))
    #expect(thrownFrameError { _ = try FrameIndex.scan(directory: tmp.sub("absent"), layout: .clips) } != nil)

    // A broken frame inside a data set surfaces as the PNG error naming that frame.
    try writeGrey(tmp.sub("broken/x/c/f1.png"), width: 2, height: 2)
    _ = FileManager.default.createFile(atPath: tmp.sub("broken/x/c/f2.png"), contents: Data("GIF89a".utf8))
    #expect(thrownFrameError {
        _ = try FrameDataset.load(index: FrameIndex.scan(directory: tmp.sub("broken"), layout: .clips), config: FeatureConfig(width: 2, height: 2), threads: 2)
    } == .notPNG(path: tmp.sub("broken/x/c/f2.png")))
}

@Test func movingDigitsBounceAndKeepTheDigit() throws {
    // A synthetic 4-image "MNIST" of 28x28 with a single bright pixel at (row 0, col 0) of each.
    var images = [UInt8](repeating: 0, count: 4 * 784)
    for i in 0..<4 { images[i * 784] = 255 }
    let mnist = MNISTSet(count: 4, rows: 28, cols: 28, images: images, labels: [0, 1, 2, 3])
    for direction in 0..<8 {
        var rng = SeededRandom(seed: UInt64(direction))
        let clip = FrameGenerator.renderMovingDigit(mnist, imageIndex: 1, directionIndex: direction, size: 48, frames: 16, rng: &rng)
        #expect(clip.count == 16)
        let positions = clip.map { frame -> (Int, Int) in
            let i = frame.firstIndex(of: 255) ?? -1
            return (i % 48, i / 48)
        }
        // The marker stays inside the digit's allowed range and moves every frame (speed >= 1).
        for (x, y) in positions { #expect((0...20).contains(x) && (0...20).contains(y)) }
        let (dx, dy) = FrameGenerator.directionSteps[direction]
        let first = positions[0], second = positions[1]
        // The first step goes in the class direction unless the digit starts against a border.
        if (1...19).contains(first.0) || dx == 0, (1...19).contains(first.1) || dy == 0 {
            #expect((second.0 - first.0).signum() == dx && (second.1 - first.1).signum() == dy)
        }
    }
    let tmp = TempFolder(); defer { tmp.cleanup() }
    try FrameGenerator.writeMovingDigits(mnist, directory: tmp.path, clipsPerClass: 1, seed: 2, frames: 3)
    let index = try FrameIndex.scan(directory: tmp.path, layout: .clips)
    #expect(index.classNames == FrameGenerator.directionClasses.sorted())
    #expect(index.items.allSatisfy { $0.frames.count == 3 })
}

@Test(.enabled(if: ProcessInfo.processInfo.environment["RNN_DATA_DIR"] != nil))
func realMNISTLoadsAndBecomesRowSequences() throws {
    let dir = ProcessInfo.processInfo.environment["RNN_DATA_DIR"]! + "/mnist"
    let mnist = try MNISTSet.loadTest(directory: dir)
    #expect(mnist.count == 10_000 && mnist.rows == 28 && mnist.cols == 28)
    var counts = [Int](repeating: 0, count: 10)
    for l in mnist.labels { counts[Int(l)] += 1 }
    #expect(counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])  // published t10k counts
    #expect(Array(mnist.labels[0..<5]) == [7, 2, 1, 0, 4])  // the well-known first test digits
    // Write the first 30 images (24 train, 6 test) and load them as sequential MNIST.
    let subset = MNISTSet(count: 30, rows: 28, cols: 28, images: Array(mnist.images[0..<(30 * 784)]), labels: Array(mnist.labels[0..<30]))
    let tmp = TempFolder(); defer { tmp.cleanup() }
    try FrameGenerator.writeMNISTRows(subset, directory: tmp.path, trainCount: 24)
    let split = try FrameSplit.load(root: tmp.path, layout: .images, config: FeatureConfig(width: 28, height: 28, mode: .rows), scope: nil)
    #expect(split.train.examples.count == 24 && split.test.examples.count == 6)
    let example = try #require(split.test.examples.first { $0.source.hasSuffix("img_00024.png") })
    #expect(example.time == 28 && example.featuresPerStep == 28)
    #expect(split.test.classNames[example.label] == String(mnist.labels[24]))
    for k in 0..<784 { #expect(abs(example.features[k] - Float(mnist.images[24 * 784 + k]) / 255) < 1e-6) }
}
