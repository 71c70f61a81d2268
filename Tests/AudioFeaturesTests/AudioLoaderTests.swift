import RecurrentCore
import Foundation
import Testing
@testable import AudioFeatures

@Suite struct AudioLoaderTests {
    /// A short test tone `[frames]` in (-1, 1).
    func tone(_ n: Int, rate: Double, freq: Double, amp: Double = 0.5) -> [Float] {
        (0..<n).map { Float(amp * sin(2 * Double.pi * freq * Double($0) / rate)) }
    }

    @Test func handBuiltPCM16IsReadAsIntOver32768() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("hand.wav")
        let pcm: [Int16] = [0, 16384, -16384, 32767, -32768, 1, -1]
        try writeBytes(wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: int16Bytes(pcm)), to: url)
        let info = try AudioLoader.info(url)
        #expect(info == AudioFileInfo(sampleRate: 8000, channels: 1, frames: 7))
        let x = try AudioLoader.loadMono(url)
        #expect(x == pcm.map { Float($0) / 32768 })
    }

    @Test(arguments: [(AudioFileFormat.wavPCM16, Float(1.0 / 32768)), (.wavPCM24, Float(1.0 / 8_388_608)),
                      (.wavPCM32, Float(1e-7)), (.wavFloat, Float(0)), (.flac16, Float(1.0 / 32768)),
                      (.wavPCM8, Float(1.0 / 128))])
    func writeThenReadRoundTrip(format: AudioFileFormat, quantum: Float) throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("rt.\(format == .flac16 ? "flac" : "wav")")
        let x = tone(1234, rate: 8000, freq: 313, amp: 0.7)
        try AudioWriter.write(url, interleaved: x, channels: 1, sampleRate: 8000, format: format)
        let info = try AudioLoader.info(url)
        #expect(info.frames == 1234 && info.sampleRate == 8000 && info.channels == 1)
        let y = try AudioLoader.loadMono(url)
        #expect(y.count == x.count)
        let maxErr = zip(x, y).map { abs($0 - $1) }.max() ?? 1
        #expect(maxErr <= quantum)  // rounding to the nearest step costs at most half a step
    }

    @Test func oggVorbisRoundTripKeepsTheWaveform() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("tone.ogg")
        let x = tone(8000, rate: 8000, freq: 440, amp: 0.5)
        try AudioWriter.write(url, interleaved: x, channels: 1, sampleRate: 8000, format: .oggVorbis)
        let y = try AudioLoader.loadMono(url)
        #expect(y.count == x.count)
        // Lossy codec: compare by normalised correlation instead of sample equality.
        let n = min(x.count, y.count)
        var xy = 0.0, xx = 0.0, yy = 0.0
        for i in 0..<n { xy += Double(x[i] * y[i]); xx += Double(x[i] * x[i]); yy += Double(y[i] * y[i]) }
        #expect(xy / (xx * yy).squareRoot() > 0.99)
    }

    @Test func stereoIsMixedToTheMeanOfBothChannels() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("stereo.wav")
        let l = tone(500, rate: 8000, freq: 200, amp: 0.4), r = tone(500, rate: 8000, freq: 700, amp: 0.3)
        var inter: [Float] = []
        for i in 0..<500 { inter.append(l[i]); inter.append(r[i]) }
        try AudioWriter.write(url, interleaved: inter, channels: 2, sampleRate: 8000, format: .wavFloat)
        #expect(try AudioLoader.info(url).channels == 2)
        let y = try AudioLoader.loadMono(url)
        #expect(y.count == 500)
        for i in 0..<500 { #expect(abs(y[i] - (l[i] + r[i]) / 2) < 1e-7) }
    }

    @Test func otherRateIsResampledToTheRequestedRate() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("16k.wav")
        let n = 8000  // 0.5 s at 16 kHz
        try AudioWriter.write(url, interleaved: tone(n, rate: 16000, freq: 500), channels: 1, sampleRate: 16000, format: .wavFloat)
        let y = try AudioLoader.loadMono(url, sampleRate: 8000)
        #expect(abs(y.count - 4000) <= 2)
        // Away from the edges the output is the same 500 Hz tone sampled at 8 kHz.
        var maxErr: Float = 0
        for i in 200..<3800 {
            let ref = Float(0.5 * sin(2 * Double.pi * 500 * Double(i) / 8000))
            maxErr = max(maxErr, abs(y[i] - ref))
        }
        #expect(maxErr < 0.01)
    }

    @Test func blocksAreBoundedAndCoverTheWholeFile() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("long.wav")
        let x = tone(10_000, rate: 8000, freq: 100)
        try AudioWriter.write(url, interleaved: x, channels: 1, sampleRate: 8000, format: .wavFloat)
        let reader = try AudioReader(url: url)
        var sizes: [Int] = []
        var all: [Float] = []
        let total = try reader.readMono(blockFrames: 512) { b in sizes.append(b.count); all.append(contentsOf: b) }
        #expect(total == 10_000 && all == x)
        #expect(sizes.max() == 512 && sizes.count == 20)
    }

    // MARK: bad input

    func expectOneLine(_ error: (any Error)?, mentioning path: String) {
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(path))
        #expect(!text.contains("\n"))
    }

    @Test func randomBytesAreNotAudio() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("noise.wav")
        var rng = SystemRandomNumberGenerator()
        try writeBytes((0..<4000).map { _ in UInt8.random(in: 0...255, using: &rng) }, to: url)
        let e = caught { _ = try AudioLoader.loadMono(url) }
        guard case .notAudio? = e as? AudioError else { Issue.record("got \(String(describing: e))"); return }
        expectOneLine(e, mentioning: url.path)
    }

    @Test func wavCutInHalfIsTruncated() throws {
        let dir = try makeTempDir()
        let full = dir.appendingPathComponent("full.wav"), half = dir.appendingPathComponent("half.wav")
        try AudioWriter.write(full, interleaved: tone(4000, rate: 8000, freq: 300), channels: 1, sampleRate: 8000)
        let bytes = try Data(contentsOf: full)
        try bytes.prefix(bytes.count / 2).write(to: half)
        let e = caught { _ = try AudioLoader.loadMono(half) }
        guard case .truncated? = e as? AudioError else { Issue.record("got \(String(describing: e))"); return }
        expectOneLine(e, mentioning: half.path)
    }

    @Test func dataSizeLargerThanTheFileIsAnInconsistentHeader() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("liar.wav")
        let data = int16Bytes([Int16](repeating: 1000, count: 100))
        // RIFF size matches the file; only the data chunk claims 1 MB.
        try writeBytes(wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: data,
                                dataSizeOverride: 1_000_000), to: url)
        let e = caught { _ = try AudioLoader.loadMono(url) }
        guard case .inconsistentHeader? = e as? AudioError else { Issue.record("got \(String(describing: e))"); return }
        expectOneLine(e, mentioning: url.path)
    }

    @Test func zeroFramesIsEmpty() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("empty.wav")
        try writeBytes(wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: []), to: url)
        let e = caught { _ = try AudioLoader.loadMono(url) }
        #expect(e as? AudioError == .empty(path: url.path))
        expectOneLine(e, mentioning: url.path)
    }

    @Test func nanOrInfInAFloatFileIsRejectedWithItsFrame() throws {
        let dir = try makeTempDir()
        for (name, bad) in [("nan", Float.nan), ("inf", Float.infinity)] {
            let url = dir.appendingPathComponent("\(name).wav")
            var x = [Float](repeating: 0.25, count: 50)
            x[37] = bad
            try writeBytes(wavBytes(formatTag: 3, channels: 1, sampleRate: 8000, bitsPerSample: 32,
                                    data: float32Bytes(x)), to: url)
            let e = caught { _ = try AudioLoader.loadMono(url) }
            #expect(e as? AudioError == .nonFiniteSample(path: url.path, frame: 37))
            expectOneLine(e, mentioning: url.path)
        }
    }

    /// Any channel count is averaged to mono: frame i holds channel c = (c + 1) * i * 10 * sign,
    /// so the mean is known in closed form.
    @Test(arguments: [3, 6])
    func manyChannelsAreAveragedToMono(channels: Int) throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("multi\(channels).wav")
        let frames = 40
        var pcm: [Int16] = []
        for i in 0..<frames { for c in 0..<channels { pcm.append(Int16((c + 1) * i * 10 * (c % 2 == 0 ? 1 : -1))) } }
        try writeBytes(wavBytes(channels: UInt16(channels), sampleRate: 8000, bitsPerSample: 16, data: int16Bytes(pcm)), to: url)
        #expect(try AudioLoader.info(url).channels == channels)
        let mono = try AudioLoader.loadMono(url)
        #expect(mono.count == frames)
        for i in 0..<frames {
            let sum = (0..<channels).reduce(0) { $0 + ($1 + 1) * i * 10 * ($1 % 2 == 0 ? 1 : -1) }
            let expected = Double(sum) / Double(channels) / 32768
            #expect(abs(Double(mono[i]) - expected) < 1e-6, "frame \(i): \(mono[i]) vs \(expected)")
        }
    }

    /// A format chunk whose bits per sample disagree with its frame size (6 bits per sample over
    /// 16-bit frames) is refused, naming the file, instead of being decoded as garbage.
    @Test func bitsPerSampleThatContradictTheBlockAlignmentAreRefused() throws {
        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("six-bit.wav")
        var bytes = wavBytes(channels: 1, sampleRate: 8000, bitsPerSample: 16, data: int16Bytes([Int16](repeating: 1000, count: 100)))
        bytes[34] = 6   // bits per sample (offset 12 + 8 + 14), block alignment stays 2
        try writeBytes(bytes, to: url)
        let e = caught { _ = try AudioLoader.loadMono(url) }
        guard case .inconsistentHeader(_, let reason)? = e as? AudioError else { Issue.record("got \(String(describing: e))"); return }
        #expect(reason.contains("6 bits per sample"), "\(reason)")
        expectOneLine(e, mentioning: url.path)
        // Consistent headers with unusual but valid sizes still load: 8-bit and 24-bit PCM.
        for bits: UInt16 in [8, 24] {
            let ok = dir.appendingPathComponent("ok\(bits).wav")
            try writeBytes(wavBytes(channels: 2, sampleRate: 8000, bitsPerSample: bits, data: [UInt8](repeating: 0x40, count: 60 * Int(bits) / 8 * 2)), to: ok)
            #expect(try AudioLoader.loadMono(ok).count == 60)
        }
    }

    @Test func missingFileIsReported() throws {
        let url = URL(fileURLWithPath: "/nonexistent/dir/x.wav")
        let e = caught { _ = try AudioLoader.loadMono(url) }
        #expect(e is AudioError)
        expectOneLine(e, mentioning: url.path)
    }
}
