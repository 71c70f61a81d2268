import CZlib
import Foundation
import Testing
@testable import ImageFrames

/// IDX bytes built by hand: magic 0 0 0x08 ndim, big-endian dims, data.
private func idxBytes(dims: [Int], data: [UInt8], type: UInt8 = 0x08) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return out + data
}

/// Gzips `bytes` into `path` with zlib.
private func writeGzip(_ path: String, _ bytes: [UInt8]) {
    let file = gzopen(path, "wb")
    _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32(bytes.count)) }
    gzclose(file)
}

@Test func idxReadsGzippedImagesAndLabels() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    // 3 images of 2x4 pixels with pixel value 10*i + k.
    var pixels: [UInt8] = []
    for i in 0..<3 { for k in 0..<8 { pixels.append(UInt8(10 * i + k)) } }
    writeGzip(tmp.sub("img.gz"), idxBytes(dims: [3, 2, 4], data: pixels))
    writeGzip(tmp.sub("lab.gz"), idxBytes(dims: [3], data: [7, 0, 9]))
    let images = try IDXArray.read(path: tmp.sub("img.gz"))
    #expect(images.dimensions == [3, 2, 4])
    #expect(images.bytes[8 + 5] == 15)  // image 1, row 1, col 1
    let set = try MNISTSet.load(imagesPath: tmp.sub("img.gz"), labelsPath: tmp.sub("lab.gz"))
    #expect(set.count == 3 && set.rows == 2 && set.cols == 4)
    #expect(set.labels == [7, 0, 9])
    // Plain (uncompressed) IDX reads too.
    let raw = idxBytes(dims: [2], data: [1, 2])
    _ = FileManager.default.createFile(atPath: tmp.sub("raw"), contents: Data(raw))
    #expect(try IDXArray.read(path: tmp.sub("raw")).bytes == [1, 2])
}

@Test func idxRejectsBadFiles() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    func error(_ name: String, _ bytes: [UInt8], maxElements: Int = 1 << 28) -> FrameError? {
        writeGzip(tmp.sub(name), bytes)
        return thrownFrameError { _ = try IDXArray.read(path: tmp.sub(name), maxElements: maxElements) }
    }
    // Bad magic.
    let magic = error("magic.gz", [1, 0, 8, 1, 0, 0, 0, 1, 5])
    #expect(magic?.description.contains("magic.gz") == true)
    #expect(magic?.description.contains("magic") == true)
    // Element type other than unsigned byte.
    #expect(error("type.gz", idxBytes(dims: [1], data: [0, 0, 0, 0], type: 0x0D))?.description.contains("element type") == true)
    // Data shorter than the header says.
    let short = error("short.gz", idxBytes(dims: [10, 28, 28], data: [UInt8](repeating: 1, count: 100)))
    #expect(short?.description.contains("truncated") == true)
    // Header of 2^31 x 2^31 elements: refused from the header, before any allocation.
    let huge = error("huge.gz", [0, 0, 8, 2, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF])
    #expect(huge?.description.contains("exceed the limit") == true)
    // Trailing bytes.
    #expect(error("long.gz", idxBytes(dims: [2], data: [1, 2, 3]))?.description.contains("trailing") == true)
    // File ends inside the dimensions.
    #expect(error("dims.gz", [0, 0, 8, 3, 0, 0])?.description.contains("dimensions") == true)
    // Corrupt gzip stream (valid header, garbage deflate data).
    _ = FileManager.default.createFile(atPath: tmp.sub("bad.gz"), contents: Data([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff]))
    #expect(thrownFrameError { _ = try IDXArray.read(path: tmp.sub("bad.gz")) } != nil)
    // Missing file.
    #expect(thrownFrameError { _ = try IDXArray.read(path: tmp.sub("none.gz")) } == .unreadable(path: tmp.sub("none.gz"), reason: "no such readable file"))
}

@Test func mnistSetRejectsMismatchedCounts() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    writeGzip(tmp.sub("img.gz"), idxBytes(dims: [2, 1, 1], data: [0, 1]))
    writeGzip(tmp.sub("lab.gz"), idxBytes(dims: [3], data: [0, 1, 2]))
    let error = thrownFrameError { _ = try MNISTSet.load(imagesPath: tmp.sub("img.gz"), labelsPath: tmp.sub("lab.gz")) }
    #expect(error?.description.contains("2 images but 3 labels") == true)
    #expect(error?.description.contains("img.gz") == true && error?.description.contains("lab.gz") == true)
}
