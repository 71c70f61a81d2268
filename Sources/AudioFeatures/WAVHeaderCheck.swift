import Foundation

/// Consistency check of RIFF/WAVE chunk sizes against the real file size, and of the `fmt `
/// chunk's fields against each other, run before decoding.
///
/// libsndfile quietly clamps a data chunk that is longer than the file; the loader wants such a
/// file reported instead, because a cut-off recording silently changes the data set.
enum WAVHeaderCheck {
    /// At most this many chunks are walked before the data chunk; a header with more is unusual
    /// enough to be left to libsndfile.
    static let maxChunks = 256

    /// Throws `AudioError.truncated` or `AudioError.inconsistentHeader` when `path` is a
    /// little-endian RIFF/WAVE file whose sizes claim more bytes than the file holds, or whose
    /// format chunk contradicts itself (`formatProblem`). Files that
    /// are not RIFF/WAVE pass unchanged (libsndfile decides about them).
    static func validate(path: String) throws {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw AudioError.notAudio(path: path, reason: "cannot open file")
        }
        defer { try? fh.close() }
        let fileSize: UInt64
        do { fileSize = try fh.seekToEnd(); try fh.seek(toOffset: 0) } catch {
            throw AudioError.notAudio(path: path, reason: "cannot read file")
        }
        guard fileSize >= 12, let head = try? fh.read(upToCount: 12), head.count == 12 else { return }
        let bytes = [UInt8](head)
        guard bytes[0..<4] == [0x52, 0x49, 0x46, 0x46][...],  // "RIFF"
              bytes[8..<12] == [0x57, 0x41, 0x56, 0x45][...]  // "WAVE"
        else { return }
        let riffSize = UInt64(le32(bytes, 4))
        let riffTooLong = riffSize != 0xFFFF_FFFF && riffSize + 8 > fileSize
        var offset: UInt64 = 12
        for _ in 0..<maxChunks {
            if offset + 8 > fileSize {
                if riffTooLong {
                    throw AudioError.truncated(path: path, reason: "RIFF header declares \(riffSize + 8) bytes but the file holds \(fileSize), and no data chunk is present")
                }
                return  // libsndfile reports the missing data chunk
            }
            guard (try? fh.seek(toOffset: offset)) != nil,
                  let ch = try? fh.read(upToCount: 8), ch.count == 8 else { return }
            let c = [UInt8](ch)
            let size = UInt64(le32(c, 4))
            let isData = c[0..<4] == [0x64, 0x61, 0x74, 0x61][...]  // "data"
            let available = fileSize - (offset + 8)
            if isData {
                if size == 0xFFFF_FFFF { return }  // streamed: "until the end of the file"
                if size > available {
                    if riffTooLong {
                        throw AudioError.truncated(path: path, reason: "data chunk declares \(size) bytes but only \(available) follow it (RIFF size \(riffSize + 8), file \(fileSize) bytes)")
                    }
                    throw AudioError.inconsistentHeader(path: path, reason: "data chunk declares \(size) bytes but only \(available) follow it in a \(fileSize)-byte file")
                }
                return
            }
            if size > available {
                if riffTooLong {
                    throw AudioError.truncated(path: path, reason: "chunk at byte \(offset) declares \(size) bytes but only \(available) follow it")
                }
                throw AudioError.inconsistentHeader(path: path, reason: "chunk at byte \(offset) declares \(size) bytes but only \(available) follow it")
            }
            if c[0..<4] == [0x66, 0x6D, 0x74, 0x20][...], size >= 16,  // "fmt "
               let f = try? fh.read(upToCount: Int(min(size, 40))), f.count >= 16 {
                if let reason = formatProblem([UInt8](f)) { throw AudioError.inconsistentHeader(path: path, reason: reason) }
            }
            offset += 8 + size + (size & 1)
        }
    }

    /// What contradicts itself in a PCM, IEEE-float or extensible `fmt ` chunk (`nil`: nothing).
    ///
    /// libsndfile derives the bytes per sample from the bits-per-sample field alone, so a header
    /// whose bits per sample disagree with its block alignment (say 6 bits per sample over 16-bit
    /// frames) would be decoded as garbage. Other encodings (ADPCM, GSM, ...) are left to
    /// libsndfile.
    static func formatProblem(_ f: [UInt8]) -> String? {
        let tag = le16(f, 0), channels = Int(le16(f, 2)), rate = le32(f, 4)
        let blockAlign = Int(le16(f, 12)), bits = Int(le16(f, 14))
        var isFloat = tag == 3
        if tag == 0xFFFE {
            guard f.count >= 40, le16(f, 16) >= 22 else { return "extensible format chunk is shorter than 40 bytes" }
            let validBits = Int(le16(f, 18))
            if validBits > bits { return "\(validBits) valid bits per sample exceed the \(bits)-bit container" }
            let subTag = le16(f, 24)
            guard subTag == 1 || subTag == 3 else { return nil }
            isFloat = subTag == 3
        } else if tag != 1 && tag != 3 {
            return nil
        }
        if channels < 1 { return "\(channels) channels" }
        if rate == 0 { return "sample rate 0 Hz" }
        if isFloat ? !(bits == 32 || bits == 64) : !(1...32).contains(bits) {
            return "\(bits) bits per sample is not a valid \(isFloat ? "floating-point" : "PCM") sample size"
        }
        let frameBytes = channels * ((bits + 7) / 8)
        if blockAlign != frameBytes {
            return "\(bits) bits per sample and \(channels) channel\(channels == 1 ? "" : "s") make \(frameBytes)-byte frames, but the block alignment is \(blockAlign) bytes"
        }
        return nil
    }

    @inline(__always)
    private static func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }

    @inline(__always)
    private static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}
