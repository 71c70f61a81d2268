import CZlib
import Foundation
import PNGCodec

/// PNG files in and out of `FrameImage`s, through the `PNGCodec` libpng shim.
///
/// Decoding yields float samples in [0, 1], interleaved `[height, width, channels]`
/// (palettes expanded, 1/2/4/16-bit depths scaled). Failures become `FrameError` values that
/// name the file: `notPNG`, `truncatedPNG`, `crcMismatch`, `imageTooLarge`, `unreadable` or
/// `invalidPNG` (the decoder's own message). The class of a failure is found by a structural
/// scan of the file (signature, chunk lengths, CRCs, `IHDR` size) that runs only after the
/// decoder has failed, so successful loads pay nothing for it.
public enum PNGImage {
    /// Decodes the PNG at `path`, refusing headers of more than `maxPixels` pixels before any
    /// pixel memory is allocated.
    /// - Returns: the image, samples `[height, width, channels]` in [0, 1].
    public static func load(path: String, maxPixels: Int) throws -> FrameImage {
        try withDecoded(path: path, maxPixels: maxPixels) { width, height, channels, samples in
            FrameImage(width: width, height: height, channels: channels,
                       samples: Array(UnsafeBufferPointer(start: samples, count: width * height * channels)))
        }
    }

    /// Decodes the PNG at `path` and passes its samples to `body` without copying them.
    /// - Parameter body: receives width, height, channels and the samples
    ///   `[height, width, channels]`; the pointer is valid only during the call.
    public static func withDecoded<R>(path: String, maxPixels: Int,
                                      _ body: (Int, Int, Int, UnsafePointer<Float>) throws -> R) throws -> R {
        var info = rnn_png_info()
        var out: UnsafeMutablePointer<Float>? = nil
        var message = [CChar](repeating: 0, count: 512)
        let status = rnn_png_read_file(path, maxPixels, &info, &out, &message, Int32(message.count))
        defer { rnn_png_free(out) }
        guard status == 0, let samples = out else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw PNGDiagnosis.classify(path: path, maxPixels: maxPixels, decoderMessage: text)
        }
        let width = Int(info.width), height = Int(info.height), channels = Int(info.channels)
        guard width > 0, height > 0, (1...4).contains(channels) else {
            throw FrameError.invalidPNG(path: path, detail: "decoder returned size \(width)x\(height)x\(channels)")
        }
        return try body(width, height, channels, UnsafePointer(samples))
    }

    /// Writes 8-bit samples `[height, width, channels]` (channels 1 grey, 2 grey+alpha, 3 RGB,
    /// 4 RGBA) atomically (temporary file + rename).
    public static func write8(path: String, width: Int, height: Int, channels: Int, samples: [UInt8]) throws {
        guard width > 0, height > 0, (1...4).contains(channels), samples.count == width * height * channels else {
            throw FrameError.writeFailed(path: path, reason: "\(samples.count) samples do not fit \(width)x\(height)x\(channels)")
        }
        let wide = samples.map { UInt16($0) }
        try writeSamples(path: path, width: width, height: height, channels: channels, bitDepth: 8, samples: wide)
    }

    /// Writes `image` quantised to `bitDepth` (8 or 16) bits, rounding to nearest and clamping
    /// to [0, 1] first.
    public static func write(path: String, image: FrameImage, bitDepth: Int = 8) throws {
        guard bitDepth == 8 || bitDepth == 16 else {
            throw FrameError.writeFailed(path: path, reason: "bit depth \(bitDepth) not supported (8 or 16)")
        }
        let scale: Float = bitDepth == 8 ? 255 : 65535
        let wide = image.samples.map { UInt16((min(max($0, 0), 1) * scale).rounded()) }
        try writeSamples(path: path, width: image.width, height: image.height, channels: image.channels,
                         bitDepth: bitDepth, samples: wide)
    }

    private static func writeSamples(path: String, width: Int, height: Int, channels: Int, bitDepth: Int,
                                     samples: [UInt16]) throws {
        let colourType: Int32
        switch channels {
        case 1: colourType = RNN_PNG_GRAY
        case 2: colourType = RNN_PNG_GRAY_ALPHA
        case 3: colourType = RNN_PNG_RGB
        default: colourType = RNN_PNG_RGBA
        }
        var message = [CChar](repeating: 0, count: 512)
        let status = samples.withUnsafeBufferPointer { s in
            rnn_png_write_file(path, s.baseAddress, Int32(width), Int32(height), colourType, Int32(bitDepth), 0,
                               nil, 0, &message, Int32(message.count))
        }
        guard status == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // The codec's message already starts with the path; keep only what is wrong.
            let reason = text.hasPrefix(path + ": ") ? String(text.dropFirst(path.count + 2)) : text
            throw FrameError.writeFailed(path: path, reason: reason.isEmpty ? "unknown error" : reason)
        }
    }
}

/// Finds out why a PNG failed to decode by scanning its structure.
enum PNGDiagnosis {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Files larger than this are scanned only up to it (enough for any header).
    static let scanLimit = 1 << 28

    static func classify(path: String, maxPixels: Int, decoderMessage: String) -> FrameError {
        let detail: String = {
            let prefix = path + ": "
            return decoderMessage.hasPrefix(prefix) ? String(decoderMessage.dropFirst(prefix.count)) : decoderMessage
        }()
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")
        }
        defer { try? handle.close() }
        let bytes: [UInt8]
        do {
            bytes = Array(try handle.read(upToCount: scanLimit) ?? Data())
        } catch {
            return .unreadable(path: path, reason: "read failed")
        }
        if let error = scan(bytes, path: path, maxPixels: maxPixels) {
            // A file longer than the scan window only looks truncated.
            if case .truncatedPNG = error, bytes.count >= scanLimit {
                return .invalidPNG(path: path, detail: detail.isEmpty ? "decoder failed" : detail)
            }
            return error
        }
        return .invalidPNG(path: path, detail: detail.isEmpty ? "decoder failed" : detail)
    }

    /// Structural problems of the PNG byte stream `b`, or nil when the structure is sound.
    static func scan(_ b: [UInt8], path: String, maxPixels: Int) -> FrameError? {
        let n = b.count
        if n < 8 {
            return n > 0 && Array(b) == Array(signature.prefix(n)) ? .truncatedPNG(path: path, detail: "file ends inside the signature") : .notPNG(path: path)
        }
        guard Array(b[0..<8]) == signature else { return .notPNG(path: path) }
        var pos = 8
        var first = true
        while true {
            guard pos + 8 <= n else {
                return .truncatedPNG(path: path, detail: "file ends at byte \(n) inside a chunk header, before IEND")
            }
            let length = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            let type = String(decoding: b[(pos + 4)..<(pos + 8)], as: UTF8.self)
            guard length <= 0x7FFF_FFFF else {
                return .invalidPNG(path: path, detail: "chunk \(type) length \(length) out of range")
            }
            guard pos + 12 + length <= n else {
                return .truncatedPNG(path: path, detail: "chunk \(type) needs \(length + 12) bytes at offset \(pos), file ends at \(n)")
            }
            let stored = UInt32(b[pos + 8 + length]) << 24 | UInt32(b[pos + 9 + length]) << 16
                | UInt32(b[pos + 10 + length]) << 8 | UInt32(b[pos + 11 + length])
            let computed = b.withUnsafeBufferPointer { p in
                UInt32(crc32(0, p.baseAddress! + pos + 4, UInt32(length + 4)))
            }
            guard stored == computed else { return .crcMismatch(path: path, chunk: type) }
            if first {
                guard type == "IHDR", length >= 8 else {
                    return .invalidPNG(path: path, detail: "first chunk is \(type), not IHDR")
                }
                let w = Int(b[pos + 8]) << 24 | Int(b[pos + 9]) << 16 | Int(b[pos + 10]) << 8 | Int(b[pos + 11])
                let h = Int(b[pos + 12]) << 24 | Int(b[pos + 13]) << 16 | Int(b[pos + 14]) << 8 | Int(b[pos + 15])
                if w > 0, h > 0, w * h > maxPixels {
                    return .imageTooLarge(path: path, width: w, height: h, limit: maxPixels)
                }
                first = false
            }
            if type == "IEND" { return nil }
            pos += 12 + length
        }
    }
}
