import Foundation
import Testing
@testable import ImageFrames

@Test func pngLoadsWhatWasWritten() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    try writeGrey(tmp.sub("a.png"), width: 5, height: 3) { x, y in UInt8(x * 50 + y) }
    let image = try PNGImage.load(path: tmp.sub("a.png"), maxPixels: 100)
    #expect(image.width == 5 && image.height == 3 && image.channels == 1)
    #expect(abs(image.samples[1 * 5 + 4] - Float(201) / 255) < 1e-6)
}

@Test func pngErrorsNameTheFileAndTheProblem() throws {
    let tmp = TempFolder(); defer { tmp.cleanup() }
    let good = tmp.sub("good.png")
    try writeGrey(good, width: 16, height: 16)
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))

    // Not a PNG.
    let text = tmp.sub("text.png")
    _ = FileManager.default.createFile(atPath: text, contents: Data("hello, not an image\n".utf8))
    #expect(thrownFrameError { _ = try PNGImage.load(path: text, maxPixels: 1000) } == .notPNG(path: text))

    // Truncated: cut inside the image data.
    let cut = tmp.sub("cut.png")
    _ = FileManager.default.createFile(atPath: cut, contents: Data(bytes[0..<(bytes.count - 20)]))
    let truncated = thrownFrameError { _ = try PNGImage.load(path: cut, maxPixels: 1000) }
    if case .truncatedPNG(let path, _)? = truncated { #expect(path == cut) } else { Issue.record("got \(String(describing: truncated))") }
    #expect(truncated?.description.hasPrefix(cut + ": truncated PNG") == true)

    // CRC error: flip one byte inside the IDAT chunk's data.
    var flipped = bytes
    let idat = findChunk("IDAT", in: bytes)
    flipped[idat + 8] ^= 0x55
    let crc = tmp.sub("crc.png")
    _ = FileManager.default.createFile(atPath: crc, contents: Data(flipped))
    #expect(thrownFrameError { _ = try PNGImage.load(path: crc, maxPixels: 1000) } == .crcMismatch(path: crc, chunk: "IDAT"))

    // Header larger than the limit.
    let large = thrownFrameError { _ = try PNGImage.load(path: good, maxPixels: 255) }
    #expect(large == .imageTooLarge(path: good, width: 16, height: 16, limit: 255))
    #expect(large?.description == "\(good): PNG header says 16x16 = 256 pixels, more than the limit of 255")

    // Missing file.
    let missing = tmp.sub("missing.png")
    if case .unreadable(let path, _)? = thrownFrameError({ _ = try PNGImage.load(path: missing, maxPixels: 1000) }) {
        #expect(path == missing)
    } else { Issue.record("missing file not reported as unreadable") }
}

/// Offset of the first chunk of `type` in a PNG byte stream (walking the chunk lengths).
private func findChunk(_ type: String, in b: [UInt8]) -> Int {
    var pos = 8
    while pos + 8 <= b.count {
        let length = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
        if String(decoding: b[(pos + 4)..<(pos + 8)], as: UTF8.self) == type { return pos }
        pos += 12 + length
    }
    return -1
}
