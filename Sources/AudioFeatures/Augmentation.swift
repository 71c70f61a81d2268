import Foundation
import RecurrentCore

/// On-the-fly augmentation of training audio, drawn anew for every example at every step from a
/// seed (the engine's step seed and the example's place in the batch), so a run — and a resumed
/// run — sees the same perturbations on every machine and with any thread count.
///
/// In order: speed perturbation (resampling by a factor drawn from `speeds`, which changes the
/// duration and the pitch together, as in Ko et al. 2015), a random gain, a random fade (the
/// level falling away towards the end, or rising from the start: a voice trailing off or
/// starting softly, so that a weak word ending or onset is seen in training), white noise at a
/// random signal-to-noise ratio, a low-pass filter at a random cutoff (a narrower channel, such
/// as a microphone or codec that keeps less of the high band); then vocal tract length
/// perturbation (the mel filterbank's band edges warped by a factor drawn from `vtlp`, Jaitly and
/// Hinton 2013, see `MelScale.vtlpWarp`) when the features are computed; then, on the
/// normalised features, a tempo change (the frames resampled in time by a factor drawn from
/// `tempo`: duration changes, the spectrum does not) and SpecAugment-style masks
/// (Park et al. 2019): `timeMasks` spans of up to `timeMaskWidth` frames and `frequencyMasks`
/// bands of up to `frequencyMaskWidth` cepstral coefficients (the same coefficients of the
/// static, Δ and ΔΔ groups) set to 0, the normalised mean.
public struct AugmentationConfig: Codable, Sendable, Equatable {
    /// Speed factors to draw from (e.g. 0.9, 1.0, 1.1); empty = no speed perturbation.
    public var speeds: [Double] = []
    /// Gain range in decibels; nil = none.
    public var gainDecibels: ClosedRange<Double>? = nil
    /// Range of the depth in decibels of a random fade (`applyFade`); nil = none.
    public var fadeDecibels: ClosedRange<Double>? = nil
    /// Signal-to-noise range of added white noise in decibels; nil = none.
    public var noiseSNR: ClosedRange<Double>? = nil
    /// Range of the cutoff in Hz of a random low-pass filter (two cascaded Butterworth biquads,
    /// 24 dB per octave); nil = none. A cutoff at or above 0.95 of the Nyquist frequency leaves
    /// the audio as it is.
    public var lowPass: ClosedRange<Double>? = nil
    /// Range of the filterbank's frequency-warp factor (e.g. 0.9...1.1); nil = none.
    public var vtlp: ClosedRange<Double>? = nil
    /// Range of the tempo factor (e.g. 0.8...1.25): the normalised features resampled in time
    /// to `frames / factor` frames by linear interpolation; nil = none.
    public var tempo: ClosedRange<Double>? = nil
    /// Number of time masks per example and their largest width in frames.
    public var timeMasks = 0, timeMaskWidth = 0
    /// Number of frequency masks per example and their largest width in coefficients.
    public var frequencyMasks = 0, frequencyMaskWidth = 0

    /// No augmentation.
    public init() {}

    /// Whether anything is switched on.
    public var isEnabled: Bool { changesAudio || tempo != nil || timeMasks > 0 || frequencyMasks > 0 }
    /// Whether the number of frames or their timing changes (speed or tempo), which label tracks forbid.
    public var changesTiming: Bool { !speeds.isEmpty || tempo != nil }
    /// Whether the audio or its analysis changes (so features must be recomputed per step).
    public var changesAudio: Bool { !speeds.isEmpty || gainDecibels != nil || fadeDecibels != nil || noiseSNR != nil || lowPass != nil || vtlp != nil }

    /// A one-line reason when a field is out of range, nil when usable.
    public var problem: String? {
        if speeds.contains(where: { !($0 >= 0.5 && $0 <= 2) }) { return "speed factors must be within 0.5...2" }
        if let g = gainDecibels, g.lowerBound < -40 || g.upperBound > 20 { return "gain must be within -40...20 dB" }
        if let f = fadeDecibels, f.lowerBound < 0 || f.upperBound > 60 { return "fade depths must be within 0...60 dB" }
        if let n = noiseSNR, n.lowerBound < -10 || n.upperBound > 100 { return "noise SNR must be within -10...100 dB" }
        if let l = lowPass, !(l.lowerBound >= 100) { return "low-pass cutoffs must be at least 100 Hz" }
        if let v = vtlp, !(v.lowerBound >= 0.7 && v.upperBound <= 1.3) { return "frequency-warp factors must be within 0.7...1.3" }
        if let r = tempo, !(r.lowerBound >= 0.5 && r.upperBound <= 2) { return "tempo factors must be within 0.5...2" }
        if timeMasks < 0 || timeMasks > 20 || timeMaskWidth < 0 || timeMaskWidth > 1000 { return "time masks must be 0...20 of 0...1000 frames" }
        if frequencyMasks < 0 || frequencyMasks > 10 || frequencyMaskWidth < 0 { return "frequency masks must be 0...10" }
        if (timeMasks > 0) != (timeMaskWidth > 0) { return "time masks need both a count and a width" }
        if (frequencyMasks > 0) != (frequencyMaskWidth > 0) { return "frequency masks need both a count and a width" }
        return nil
    }

    /// The perturbed audio of `signal` (mono, at the feature rate `sampleRate` Hz).
    func perturb(_ signal: [Float], sampleRate: Int, rng: inout SeededRandom) throws -> [Float] {
        var x = signal
        if !speeds.isEmpty {
            let speed = speeds[rng.nextInt(below: speeds.count)]
            if speed != 1 { x = try Self.resample(x, ratio: 1 / speed) }
        }
        if let g = gainDecibels { Self.applyGain(&x, decibels: rng.uniform(in: g)) }
        if let f = fadeDecibels {
            let depth = rng.uniform(in: f), point = rng.nextDouble(), out = rng.nextInt(below: 2) == 0
            Self.applyFade(&x, decibels: depth, at: point, out: out)
        }
        if let snr = noiseSNR { Self.addWhiteNoise(&x, snrDecibels: rng.uniform(in: snr), rng: &rng) }
        if let l = lowPass { Self.lowPass(&x, cutoff: rng.uniform(in: l), sampleRate: sampleRate) }
        return x
    }

    /// Filters `x` (at `sampleRate` Hz) in place with two cascaded second-order Butterworth
    /// low-pass sections (Q = 1/√2 each, coefficients by the bilinear transform with the cutoff
    /// pre-warped): 24 dB per octave above `cutoff`. Cutoffs at or above 0.95 of the Nyquist
    /// frequency leave `x` unchanged.
    static func lowPass(_ x: inout [Float], cutoff: Double, sampleRate: Int) {
        let nyquist = Double(sampleRate) / 2
        guard cutoff < 0.95 * nyquist, cutoff > 0 else { return }
        let w0 = 2 * Double.pi * cutoff / Double(sampleRate)
        let alpha = sin(w0) / (2 * (0.5).squareRoot())
        let c = cos(w0), a0 = 1 + alpha
        let b0 = (1 - c) / 2 / a0, b1 = (1 - c) / a0, b2 = b0
        let a1 = -2 * c / a0, a2 = (1 - alpha) / a0
        for _ in 0..<2 {
            var x1 = 0.0, x2 = 0.0, y1 = 0.0, y2 = 0.0
            for i in x.indices {
                let v = Double(x[i])
                let y = b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
                x2 = x1; x1 = v; y2 = y1; y1 = y
                x[i] = Float(y)
            }
        }
    }

    /// `m` `[frames, features]` resampled in time to `max(1, round(frames / factor))` frames:
    /// output frame `u` reads input position `u · (frames − 1) / (frames' − 1)`, interpolated
    /// linearly between its two neighbours (the first and last frames are kept).
    static func stretch(_ m: FeatureMatrix, factor: Double) -> FeatureMatrix {
        let T = m.frames, F = m.features
        let n = max(1, Int((Double(T) / factor).rounded()))
        guard T > 1, n != T else { return m }
        var out = [Float](repeating: 0, count: n * F)
        for u in 0..<n {
            let x = n == 1 ? 0 : Double(u) * Double(T - 1) / Double(n - 1)
            let i = min(Int(x), T - 1), j = min(i + 1, T - 1)
            let w = Float(x - Double(i))
            for f in 0..<F { out[u * F + f] = (1 - w) * m.values[i * F + f] + w * m.values[j * F + f] }
        }
        return FeatureMatrix(frames: n, features: F, values: out)
    }

    /// Masks spans of frames and bands of coefficients of normalised features in place.
    /// `cepstral` is the width of one coefficient group (static, Δ, ΔΔ).
    func mask(_ m: inout FeatureMatrix, cepstral: Int, rng: inout SeededRandom) {
        let F = m.features, T = m.frames
        for _ in 0..<frequencyMasks {
            let w = rng.nextInt(in: 0...min(frequencyMaskWidth, cepstral))
            guard w > 0 else { continue }
            let f0 = rng.nextInt(below: cepstral - w + 1)
            for t in 0..<T {
                for group in stride(from: 0, to: F, by: cepstral) {
                    for f in (group + f0)..<min(group + f0 + w, F) { m.values[t * F + f] = 0 }
                }
            }
        }
        for _ in 0..<timeMasks {
            // A mask never covers more than a fifth of the utterance.
            let w = rng.nextInt(in: 0...min(timeMaskWidth, T / 5))
            guard w > 0 else { continue }
            let t0 = rng.nextInt(below: T - w + 1)
            for t in t0..<(t0 + w) { for f in 0..<F { m.values[t * F + f] = 0 } }
        }
    }

    /// Multiplies `x` by the gain of `decibels`.
    static func applyGain(_ x: inout [Float], decibels: Double) {
        let k = Float(pow(10, decibels / 20))
        for i in x.indices { x[i] *= k }
    }

    /// Fades `x` linearly in decibels. With `out`, samples before the point at fraction `at`
    /// of the length keep their level and from there the gain falls to `-decibels` at the last
    /// sample; otherwise the gain rises from `-decibels` at the first sample to 0 dB at that
    /// point and stays there.
    static func applyFade(_ x: inout [Float], decibels: Double, at: Double, out: Bool) {
        let n = x.count
        guard n > 1, decibels > 0 else { return }
        let p = min(n - 1, max(0, Int((at * Double(n)).rounded(.down))))
        let range = out ? p..<n : 0..<(p + 1)
        // The gain changes by the same factor from sample to sample (linear in decibels).
        let step = pow(10, -decibels / (20 * Double(max(1, range.count - 1))))
        var gain = out ? 1 : pow(10, -decibels / 20)
        for i in range {
            x[i] *= Float(gain)
            gain = out ? gain * step : gain / step
        }
    }

    /// Adds white Gaussian noise at `snrDecibels` below the mean power of `x`.
    static func addWhiteNoise(_ x: inout [Float], snrDecibels: Double, rng: inout SeededRandom) {
        guard !x.isEmpty else { return }
        let power = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        let sigma = Float((power / pow(10, snrDecibels / 10)).squareRoot())
        for i in x.indices { x[i] += sigma * rng.normal() }
    }

    /// `signal` resampled by `ratio` (output rate / input rate) with libsamplerate.
    static func resample(_ signal: [Float], ratio: Double) throws -> [Float] {
        let converter = try Resampler(path: "speed perturbation", ratio: ratio, maxInput: max(signal.count, 1))
        var out: [Float] = []
        out.reserveCapacity(Int(Double(signal.count) * ratio) + 64)
        try signal.withUnsafeBufferPointer { try converter.process($0, endOfInput: true) { out.append(contentsOf: $0) } }
        return out
    }
}

/// Features of augmented training examples, one MFCC extractor per thread.
public final class SpeechAugmenter: @unchecked Sendable {
    /// What to apply.
    public let config: AugmentationConfig
    /// Feature settings of the model.
    public let features: FeatureConfig
    /// The training statistics the features are normalised with.
    public let normalizer: FeatureNormalizer
    /// With `features.speakerNormalization`: each speaker's statistics of the clean features,
    /// applied to that speaker's augmented features before `normalizer` (keyed by
    /// `SpeakerNormalization.group`).
    public let speakerStatistics: [String: FeatureNormalizer]
    /// Threads used to recompute features.
    public let threads: Int

    /// An augmenter; `config.problem` must be nil, and with speaker normalisation
    /// `speakerStatistics` must hold the group of every example it will see.
    public init(config: AugmentationConfig, features: FeatureConfig, normalizer: FeatureNormalizer,
                speakerStatistics: [String: FeatureNormalizer] = [:], threads: Int) {
        precondition(config.problem == nil, config.problem ?? "")
        self.config = config; self.features = features; self.normalizer = normalizer
        self.speakerStatistics = speakerStatistics; self.threads = max(1, threads)
    }

    /// The examples with augmented features (labels unchanged). Example `k` draws from
    /// `seed` and `k` alone. Examples without audio keep their features (masks still apply).
    public func augment(_ examples: [SpeechExample], seed: UInt64) -> [SpeechExample] {
        let results = Threading.parallelMap(count: examples.count, threads: threads,
                                            makeWorker: { try MFCCExtractor(config: self.features) }) { extractor, k -> SpeechExample in
            var rng = SeededRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(k) &+ 0xA5)
            var e = examples[k]
            if self.config.changesAudio, let audio = e.audio {
                let signal = try self.config.perturb(audio, sampleRate: self.features.sampleRate, rng: &rng)
                var f: FeatureMatrix
                if let range = self.config.vtlp {
                    f = try MFCCExtractor(config: self.features, frequencyWarp: rng.uniform(in: range)).features(of: signal)
                } else {
                    f = extractor.features(of: signal)
                }
                if f.frames == 0 { return e }
                if self.features.speakerNormalization {
                    let group = SpeakerNormalization.group(speaker: e.speaker, path: e.path)
                    guard let s = self.speakerStatistics[group] else { preconditionFailure("no speaker statistics for \(group)") }
                    try s.apply(to: &f, source: e.path)
                }
                try self.normalizer.apply(to: &f, source: e.path)
                e.features = f
            }
            if let r = self.config.tempo { e.features = AugmentationConfig.stretch(e.features, factor: rng.uniform(in: r)) }
            self.config.mask(&e.features, cepstral: self.features.cepstralCount, rng: &rng)
            return e
        }
        // A failure (which the checks above make unlikely) keeps the clean example.
        return results.enumerated().map { k, r in (try? r.get()) ?? examples[k] }
    }
}

extension SeededRandom {
    /// A uniform draw from `range`.
    mutating func uniform(in range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextDouble()
    }
}
