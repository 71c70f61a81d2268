import CSndFile
import Foundation

/// Container and sample encoding for `AudioWriter`.
public enum AudioFileFormat: String, Sendable, CaseIterable, Codable {
    /// WAV, signed 16-bit PCM.
    case wavPCM16
    /// WAV, signed 24-bit PCM.
    case wavPCM24
    /// WAV, signed 32-bit PCM.
    case wavPCM32
    /// WAV, unsigned 8-bit PCM.
    case wavPCM8
    /// WAV, 32-bit IEEE float.
    case wavFloat
    /// FLAC, 16-bit.
    case flac16
    /// Ogg Vorbis (lossy).
    case oggVorbis

    var sfFormat: Int32 {
        switch self {
        case .wavPCM16: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
        case .wavPCM24: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_24)
        case .wavPCM32: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_32)
        case .wavPCM8: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_U8)
        case .wavFloat: return Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)
        case .flac16: return Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
        case .oggVorbis: return Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS)
        }
    }
}

/// Writes audio files through libsndfile.
public enum AudioWriter {
    /// Writes interleaved samples `[frames * channels]` (values in [-1, 1] for PCM formats;
    /// out-of-range values are clipped) to `url`.
    ///
    /// The file is written to a temporary name beside `url` and renamed into place, so a failed
    /// write leaves nothing half-written under `url`.
    /// - Throws: `AudioError.writeFailed` for an invalid request (channel count, rate, a sample
    ///   count that is not a multiple of `channels`, NaN in a PCM format) or an I/O failure.
    public static func write(_ url: URL, interleaved samples: [Float], channels: Int,
                             sampleRate: Int, format: AudioFileFormat = .wavPCM16) throws {
        let path = url.path
        guard channels >= 1, channels <= 64 else {
            throw AudioError.writeFailed(path: path, reason: "channel count \(channels)")
        }
        guard sampleRate > 0, sampleRate <= 1_000_000 else { throw AudioError.invalidSampleRate(path: path, rate: sampleRate) }
        guard samples.count % channels == 0 else {
            throw AudioError.writeFailed(path: path, reason: "\(samples.count) samples is not a multiple of \(channels) channels")
        }
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = format.sfFormat
        guard sf_format_check(&info) != 0 else {
            throw AudioError.writeFailed(path: path, reason: "libsndfile rejects \(format.rawValue) with \(channels) channels at \(sampleRate) Hz")
        }
        guard let h = sf_open(tmp, Int32(SFM_WRITE), &info) else {
            throw AudioError.writeFailed(path: path, reason: String(cString: sf_strerror(nil)))
        }
        if format != .wavFloat {
            _ = sf_command(h, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
        }
        let frames = samples.count / channels
        let written = samples.withUnsafeBufferPointer { buf in
            Int(sf_writef_float(h, buf.baseAddress, sf_count_t(frames)))
        }
        let err = sf_error(h)
        let closeStatus = sf_close(h)
        if written != frames || err != 0 || closeStatus != 0 {
            unlink(tmp)
            throw AudioError.writeFailed(path: path, reason: "wrote \(written) of \(frames) frames")
        }
        if rename(tmp, path) != 0 {
            unlink(tmp)
            throw AudioError.writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }
}
