import Foundation
import PNGCodec
import Testing

/// Small deterministic generator for test content (SplitMix64).
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// A fresh empty directory for one test.
func makeTempDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("plotting-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Result of decoding through `rnn_png_read_file`.
struct Decoded {
    var info: rnn_png_info
    var samples: [Float]
}

/// Error text of a failed decode.
struct DecodeFailure: Error { var message: String }

/// Decodes a file; returns the error text on failure.
func decode(_ path: String, maxPixels: Int = 1 << 24) -> Result<Decoded, DecodeFailure> {
    var info = rnn_png_info()
    var out: UnsafeMutablePointer<Float>? = nil
    var err = [CChar](repeating: 0, count: 512)
    let rc = rnn_png_read_file(path, maxPixels, &info, &out, &err, Int32(err.count))
    defer { rnn_png_free(out) }
    let message = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard rc == 0 else { return .failure(DecodeFailure(message: message)) }
    guard let out else { return .failure(DecodeFailure(message: "no output")) }
    let count = Int(info.width) * Int(info.height) * Int(info.channels)
    return .success(Decoded(info: info, samples: Array(UnsafeBufferPointer(start: out, count: count))))
}

/// Writes a PNG; returns the error text on failure.
func encode(_ path: String, _ samples: [UInt16], width: Int, height: Int, colorType: Int32, bitDepth: Int32,
            interlace: Int32, palette: [UInt8]? = nil, alpha: [UInt8]? = nil) -> String? {
    var err = [CChar](repeating: 0, count: 512)
    let paletteCount = Int32((palette?.count ?? 0) / 3)
    let pal = palette ?? []
    let alp = alpha ?? []
    let rc: Int32 = samples.withUnsafeBufferPointer { s in
        pal.withUnsafeBufferPointer { p in
            alp.withUnsafeBufferPointer { a in
                rnn_png_write_file_trns(path, s.baseAddress, Int32(width), Int32(height), colorType, bitDepth,
                                        interlace, palette == nil ? nil : p.baseAddress, paletteCount,
                                        alpha == nil ? nil : a.baseAddress, Int32(alp.count), &err, Int32(err.count))
            }
        }
    }
    if rc == 0 { return nil }
    return String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

struct FormatCase: CustomStringConvertible, Sendable {
    var colorType: Int32
    var bitDepth: Int32
    var interlace: Int32
    var withTRNS: Bool = false
    var description: String { "type \(colorType) depth \(bitDepth) interlace \(interlace) tRNS \(withTRNS)" }
}

/// Every colour type and bit depth PNG allows, plain and Adam7, palettes with and without tRNS.
let allFormats: [FormatCase] = {
    var cases: [FormatCase] = []
    let depths: [(Int32, [Int32])] = [(0, [1, 2, 4, 8, 16]), (4, [8, 16]), (2, [8, 16]), (6, [8, 16]), (3, [1, 2, 4, 8])]
    for (type, ds) in depths {
        for d in ds {
            for il: Int32 in [0, 1] {
                cases.append(FormatCase(colorType: type, bitDepth: d, interlace: il))
                if type == 3 { cases.append(FormatCase(colorType: type, bitDepth: d, interlace: il, withTRNS: true)) }
            }
        }
    }
    return cases
}()

@Test(arguments: allFormats)
func roundTripEveryFormat(_ format: FormatCase) throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("img.png").path
    // Odd sizes exercise partial bytes at the row end and the smaller Adam7 passes.
    let width = 13, height = 9
    var rng = TestRandom(state: UInt64(format.colorType * 100 + format.bitDepth * 10 + format.interlace)
        + (format.withTRNS ? 7 : 0))
    let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(format.colorType)] ?? 0
    let maxValue = format.bitDepth == 16 ? 65535 : (1 << Int(format.bitDepth)) - 1
    var palette: [UInt8]? = nil
    var alpha: [UInt8]? = nil
    var samples = [UInt16](repeating: 0, count: width * height * channels)
    if format.colorType == 3 {
        let entries = maxValue + 1
        palette = (0..<(entries * 3)).map { _ in UInt8(rng.below(256)) }
        // One entry fewer than the palette: the last entry must come back opaque.
        if format.withTRNS { alpha = (0..<max(1, entries - 1)).map { _ in UInt8(rng.below(256)) } }
        for i in samples.indices { samples[i] = UInt16(rng.below(entries)) }
    } else {
        for i in samples.indices { samples[i] = UInt16(rng.below(maxValue + 1)) }
    }
    // Make sure both extremes occur.
    samples[0] = 0
    samples[samples.count - 1] = UInt16(maxValue)

    if let message = encode(path, samples, width: width, height: height, colorType: format.colorType,
                            bitDepth: format.bitDepth, interlace: format.interlace, palette: palette, alpha: alpha) {
        Issue.record("write failed: \(message)")
        return
    }
    let decoded = try decode(path).get()
    #expect(decoded.info.width == Int32(width))
    #expect(decoded.info.height == Int32(height))
    #expect(decoded.info.bit_depth == format.bitDepth)
    #expect(decoded.info.color_type == format.colorType)
    #expect(decoded.info.interlaced == format.interlace)

    // Expected floats computed from the integer samples by the formulas of the format.
    var expected: [Float] = []
    if let palette {
        #expect(decoded.info.channels == (alpha == nil ? 3 : 4))
        for index in samples.map(Int.init) {
            for c in 0..<3 { expected.append(Float(Double(palette[index * 3 + c]) / 255.0)) }
            if let alpha { expected.append(index < alpha.count ? Float(Double(alpha[index]) / 255.0) : 1) }
        }
    } else {
        #expect(decoded.info.channels == Int32(channels))
        expected = samples.map { Float(Double($0) / Double(maxValue)) }
    }
    #expect(decoded.samples.count == expected.count)
    var worst = 0.0
    for (a, b) in zip(decoded.samples, expected) { worst = max(worst, Double(abs(a - b))) }
    #expect(worst <= 1e-6, "largest difference \(worst)")

    var info = rnn_png_info()
    var err = [CChar](repeating: 0, count: 256)
    #expect(rnn_png_read_info(path, &info, &err, 256) == 0)
    #expect(info.width == Int32(width) && info.height == Int32(height) && info.channels == decoded.info.channels)
}

/// A valid 8-bit RGB PNG's bytes, written through the codec.
func validPNGBytes(in dir: URL, width: Int = 16, height: Int = 8) throws -> [UInt8] {
    let path = dir.appendingPathComponent("valid.png").path
    var rng = TestRandom(state: 42)
    let samples = (0..<(width * height * 3)).map { _ in UInt16(rng.below(256)) }
    if let message = encode(path, samples, width: width, height: height, colorType: 2, bitDepth: 8, interlace: 0) {
        throw DecodeFailure(message: message)
    }
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Offset of the first chunk of the given type, or nil.
func chunkOffset(_ bytes: [UInt8], type: String) -> Int? {
    var offset = 8
    let wanted = Array(type.utf8)
    while offset + 8 <= bytes.count {
        let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        if Array(bytes[(offset + 4)..<(offset + 8)]) == wanted { return offset }
        offset += 12 + length
    }
    return nil
}

/// CRC-32 (polynomial 0xEDB88320) computed bit by bit, independent of zlib.
func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}

@Test func notAPNGIsRejected() throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("text.png").path
    try Data("hello, this is text and not an image at all".utf8).write(to: URL(fileURLWithPath: path))
    guard case .failure(let failure) = decode(path) else { Issue.record("decoded a text file"); return }
    #expect(failure.message.contains("not a PNG"))
    #expect(failure.message.hasPrefix(path))
    let missing = dir.appendingPathComponent("missing.png").path
    guard case .failure(let f2) = decode(missing) else { Issue.record("decoded a missing file"); return }
    #expect(f2.message.contains("cannot open"))
}

@Test func truncatedFileIsRejected() throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bytes = try validPNGBytes(in: dir)
    let idat = try #require(chunkOffset(bytes, type: "IDAT"))
    for cut in [idat + 20, bytes.count - 6, 40] {
        let path = dir.appendingPathComponent("cut\(cut).png").path
        try Data(bytes[0..<cut]).write(to: URL(fileURLWithPath: path))
        guard case .failure(let failure) = decode(path) else { Issue.record("decoded truncated file at \(cut)"); continue }
        #expect(failure.message.contains("truncated"), "\(failure.message)")
    }
}

@Test func flippedByteGivesCRCError() throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var bytes = try validPNGBytes(in: dir)
    let idat = try #require(chunkOffset(bytes, type: "IDAT"))
    bytes[idat + 10] ^= 0x40
    let path = dir.appendingPathComponent("crc.png").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    guard case .failure(let failure) = decode(path) else { Issue.record("decoded a corrupted file"); return }
    #expect(failure.message.contains("CRC error"), "\(failure.message)")
}

@Test func headerAboveLimitIsRejectedBeforeDecoding() throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var bytes = try validPNGBytes(in: dir, width: 16, height: 8)
    // Patch IHDR to claim 60000 x 50000 pixels and fix its CRC, leaving the data as is.
    let ihdr = try #require(chunkOffset(bytes, type: "IHDR"))
    let w: UInt32 = 60000, h: UInt32 = 50000
    for i in 0..<4 {
        bytes[ihdr + 8 + i] = UInt8(truncatingIfNeeded: w >> (24 - 8 * i))
        bytes[ihdr + 12 + i] = UInt8(truncatingIfNeeded: h >> (24 - 8 * i))
    }
    let crc = crc32(bytes[(ihdr + 4)..<(ihdr + 8 + 13)])
    for i in 0..<4 { bytes[ihdr + 21 + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * i)) }
    let path = dir.appendingPathComponent("huge.png").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    guard case .failure(let failure) = decode(path, maxPixels: 1_000_000) else { Issue.record("decoded huge file"); return }
    #expect(failure.message.contains("image 60000x50000 exceeds the limit of 1000000 pixels"), "\(failure.message)")
    // The header alone still reads.
    var info = rnn_png_info()
    var err = [CChar](repeating: 0, count: 256)
    #expect(rnn_png_read_info(path, &info, &err, 256) == 0)
    #expect(info.width == 60000 && info.height == 50000)
}

@Test func invalidWriteArgumentsAreRejectedAndLeaveNoFile() throws {
    let dir = try makeTempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("bad.png").path
    let tooBig = encode(path, [0, 1, 2, 4], width: 2, height: 2, colorType: 0, bitDepth: 2, interlace: 0)
    #expect(tooBig?.contains("exceeds the maximum 3") == true)
    let badDepth = encode(path, [0, 0, 0], width: 1, height: 1, colorType: 2, bitDepth: 4, interlace: 0)
    #expect(badDepth?.contains("bit depth 4 is not allowed") == true)
    let badIndex = encode(path, [0, 2], width: 2, height: 1, colorType: 3, bitDepth: 8, interlace: 0,
                          palette: [0, 0, 0, 255, 255, 255])
    #expect(badIndex?.contains("palette index") == true)
    let noDir = encode(dir.appendingPathComponent("nodir/x.png").path, [0], width: 1, height: 1, colorType: 0,
                       bitDepth: 8, interlace: 0)
    #expect(noDir?.contains("cannot create temporary file") == true)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    #expect(leftovers.isEmpty, "\(leftovers)")
}
