import CSampleRate
import CSndFile
import Foundation

/// Facts about an audio file as stored on disk (before mixdown and resampling).
public struct AudioFileInfo: Sendable, Equatable {
    /// Sample rate of the file in Hz.
    public var sampleRate: Int
    /// Number of interleaved channels in the file.
    public var channels: Int
    /// Number of sample frames (one frame = one sample per channel) reported by the decoder.
    public var frames: Int

    /// Duration in seconds at the file's own rate.
    public var duration: Double { Double(frames) / Double(sampleRate) }
}

/// Streaming reader for any file libsndfile decodes (WAV PCM 8/16/24/32-bit and float, FLAC,
/// OGG/Vorbis, AIFF, ...).
///
/// The reader mixes any number of channels down to mono (the mean of the channels, as librosa
/// and torchaudio do) and, when the file's rate
/// differs from the requested rate, resamples with libsamplerate. Samples are delivered in blocks
/// of at most `blockFrames` frames, so memory stays bounded however long the file is; nothing is
/// allocated from a size field in the file.
///
/// Before decoding, RIFF/WAVE files are checked against their own header: a data chunk that
/// claims more bytes than the file holds is an error (`AudioError.truncated` when the RIFF size
/// also exceeds the file, `AudioError.inconsistentHeader` otherwise). A data size of `0xFFFFFFFF`
/// (the placeholder written by streaming encoders) means "until the end of the file" and is
/// accepted.
public final class AudioReader {
    /// Path used in error messages.
    public let path: String
    /// Format facts reported by libsndfile.
    public let info: AudioFileInfo
    private let handle: OpaquePointer

    /// Opens and validates `url`.
    /// - Throws: `AudioError` when the file is not audio, is truncated, has a lying or
    ///   self-contradicting header, holds no frames, or has more than `maxChannels` channels.
    public init(url: URL) throws {
        let path = url.path
        self.path = path
        try WAVHeaderCheck.validate(path: path)
        var sfInfo = SF_INFO()
        guard let h = sf_open(path, Int32(SFM_READ), &sfInfo) else {
            let reason = String(cString: sf_strerror(nil))
            throw AudioError.notAudio(path: path, reason: reason)
        }
        if Int(sfInfo.channels) > AudioReader.maxChannels {
            sf_close(h)
            throw AudioError.tooManyChannels(path: path, channels: Int(sfInfo.channels))
        }
        if sfInfo.channels < 1 {
            sf_close(h)
            throw AudioError.notAudio(path: path, reason: "channel count \(sfInfo.channels)")
        }
        if sfInfo.samplerate <= 0 || sfInfo.samplerate > 1_000_000 {
            sf_close(h)
            throw AudioError.invalidSampleRate(path: path, rate: Int(sfInfo.samplerate))
        }
        if sfInfo.frames <= 0 {
            sf_close(h)
            throw AudioError.empty(path: path)
        }
        handle = h
        info = AudioFileInfo(sampleRate: Int(sfInfo.samplerate), channels: Int(sfInfo.channels), frames: Int(sfInfo.frames))
    }

    deinit { sf_close(handle) }

    /// The most channels a file may have (libsndfile's own limit); all are averaged to mono.
    public static let maxChannels = 1024

    /// Decodes the whole file once, delivering mono blocks at `targetRate` Hz (the file's own rate
    /// when `nil`).
    ///
    /// - Parameters:
    ///   - targetRate: output rate in Hz; resampled with libsamplerate's medium-quality sinc
    ///     converter when it differs from the file's rate.
    ///   - blockFrames: frames decoded per block (the largest block `body` sees is about
    ///     `blockFrames * targetRate / fileRate` samples).
    ///   - body: receives each block of mono samples `[samples]`; the buffer is only valid for
    ///     the duration of the call.
    /// - Returns: the number of mono samples delivered in total.
    /// - Throws: `AudioError.nonFiniteSample` for NaN/Inf, `AudioError.truncated` when the
    ///   decoder delivers fewer frames than announced, `AudioError.readFailed` for decoder
    ///   errors, and whatever `body` throws.
    @discardableResult
    public func readMono(targetRate: Int? = nil, blockFrames: Int = 4096,
                         _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws -> Int {
        let channels = info.channels
        let block = max(64, blockFrames)
        let rate = targetRate ?? info.sampleRate
        guard rate > 0, rate <= 1_000_000 else { throw AudioError.invalidSampleRate(path: path, rate: rate) }
        var interleaved = [Float](repeating: 0, count: block * channels)
        var mono = [Float](repeating: 0, count: block)
        var resampler: Resampler? = nil
        if rate != info.sampleRate {
            resampler = try Resampler(path: path, ratio: Double(rate) / Double(info.sampleRate), maxInput: block)
        }
        var framesRead = 0
        var delivered = 0
        while true {
            let got = interleaved.withUnsafeMutableBufferPointer { buf in
                Int(sf_readf_float(handle, buf.baseAddress, sf_count_t(block)))
            }
            if got <= 0 { break }
            try interleaved.withUnsafeBufferPointer { src in
                try mono.withUnsafeMutableBufferPointer { dst in
                    let s = src.baseAddress!, d = dst.baseAddress!
                    if channels == 1 {
                        for i in 0..<got {
                            let v = s[i]
                            if !v.isFinite { throw AudioError.nonFiniteSample(path: path, frame: framesRead + i) }
                            d[i] = v
                        }
                    } else {
                        let count = Float(channels)
                        for i in 0..<got {
                            var sum: Float = 0
                            for c in 0..<channels {
                                let v = s[channels * i + c]
                                if !v.isFinite { throw AudioError.nonFiniteSample(path: path, frame: framesRead + i) }
                                sum += v
                            }
                            d[i] = sum / count
                        }
                    }
                }
            }
            framesRead += got
            if let r = resampler {
                try mono.withUnsafeBufferPointer { m in
                    try r.process(UnsafeBufferPointer(rebasing: m[0..<got]), endOfInput: false) { out in
                        delivered += out.count
                        try body(out)
                    }
                }
            } else {
                try mono.withUnsafeBufferPointer { m in
                    try body(UnsafeBufferPointer(rebasing: m[0..<got]))
                }
                delivered += got
            }
        }
        let err = sf_error(handle)
        if err != 0 {
            throw AudioError.readFailed(path: path, reason: String(cString: sf_strerror(handle)))
        }
        if framesRead < info.frames {
            throw AudioError.truncated(path: path,
                                       reason: "decoder delivered \(framesRead) of \(info.frames) announced frames")
        }
        if let r = resampler {
            try r.process(UnsafeBufferPointer(start: nil, count: 0), endOfInput: true) { out in
                delivered += out.count
                try body(out)
            }
        }
        if delivered == 0 { throw AudioError.empty(path: path) }
        return delivered
    }
}

/// Whole-file convenience entry points over `AudioReader`.
public enum AudioLoader {
    /// Format facts of `url` without decoding the samples.
    public static func info(_ url: URL) throws -> AudioFileInfo {
        try AudioReader(url: url).info
    }

    /// Decodes `url` to a mono `[samples]` signal at `sampleRate` Hz (the file's rate when `nil`).
    ///
    /// Holds only the mono float signal (plus one decoding block) in memory.
    public static func loadMono(_ url: URL, sampleRate: Int? = nil) throws -> [Float] {
        let reader = try AudioReader(url: url)
        var out: [Float] = []
        let rate = sampleRate ?? reader.info.sampleRate
        // Capacity from the decoder's frame count, bounded so a lying header cannot force a
        // large allocation up front; the array grows as real samples arrive.
        let expected = Double(reader.info.frames) * Double(rate) / Double(reader.info.sampleRate)
        out.reserveCapacity(Int(min(expected + 16, Double(1 << 22))))
        try reader.readMono(targetRate: rate) { block in out.append(contentsOf: block) }
        return out
    }
}

/// Streaming sample-rate converter around libsamplerate (mono).
final class Resampler {
    private let state: OpaquePointer
    private let ratio: Double
    private var output: [Float]
    private let path: String
    private let dummy: UnsafeMutablePointer<Float>

    init(path: String, ratio: Double, maxInput: Int) throws {
        self.path = path
        self.ratio = ratio
        var err: Int32 = 0
        guard src_is_valid_ratio(ratio) != 0, let s = src_new(Int32(SRC_SINC_MEDIUM_QUALITY), 1, &err) else {
            throw AudioError.readFailed(path: path, reason: "cannot resample with ratio \(ratio)")
        }
        state = s
        dummy = .allocate(capacity: 1)
        dummy.initialize(to: 0)
        output = [Float](repeating: 0, count: Int(Double(maxInput) * ratio) + 256)
    }

    deinit { src_delete(state); dummy.deallocate() }

    /// Converts `input` (mono), delivering converted blocks to `body`.
    func process(_ input: UnsafeBufferPointer<Float>, endOfInput: Bool,
                 _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        var offset = 0
        let outCapacity = output.count
        var idleRounds = 0
        while true {
            var data = SRC_DATA()
            let remaining = input.count - offset
            let generated: Int
            let used: Int
            let status: Int32 = output.withUnsafeMutableBufferPointer { out in
                // libsamplerate ignores a call whose data_in is NULL, even the final flush, so an
                // empty input still points at a (valid, unread) buffer.
                data.data_in = input.baseAddress.map { UnsafePointer($0 + offset) } ?? UnsafePointer(dummy)
                data.input_frames = remaining
                data.data_out = out.baseAddress
                data.output_frames = outCapacity
                data.end_of_input = endOfInput ? 1 : 0
                data.src_ratio = ratio
                return src_process(state, &data)
            }
            if status != 0 {
                throw AudioError.readFailed(path: path, reason: String(cString: src_strerror(status)))
            }
            generated = Int(data.output_frames_gen)
            used = Int(data.input_frames_used)
            offset += used
            if generated > 0 {
                try output.withUnsafeBufferPointer { out in
                    try body(UnsafeBufferPointer(rebasing: out[0..<generated]))
                }
            }
            if generated == 0 && used == 0 {
                idleRounds += 1
                if idleRounds > 1 || !endOfInput || offset >= input.count { break }
            } else {
                idleRounds = 0
            }
            if !endOfInput && offset >= input.count { break }
        }
    }
}
