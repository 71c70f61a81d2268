import Foundation

/// Analysis window applied to each frame before the FFT.
public enum WindowFunction: String, Codable, Sendable, CaseIterable {
    /// Symmetric Hamming window `0.54 - 0.46 cos(2πn/(N-1))` (as `numpy.hamming`).
    case hamming
    /// Symmetric Hann window `0.5 - 0.5 cos(2πn/(N-1))` (as `numpy.hanning`).
    case hann
    /// No window (all ones).
    case rectangular

    /// The window's `[length]` coefficients.
    public func coefficients(length: Int) -> [Float] {
        guard length > 1 else { return [Float](repeating: 1, count: max(length, 0)) }
        let d = Double(length - 1)
        return (0..<length).map { n in
            let c = cos(2 * Double.pi * Double(n) / d)
            switch self {
            case .hamming: return Float(0.54 - 0.46 * c)
            case .hann: return Float(0.5 - 0.5 * c)
            case .rectangular: return 1
            }
        }
    }
}

/// Errors in a feature configuration (statistics errors are `FeatureNormalizerError`).
public enum FeatureError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A configuration value is out of range; `source` names where it came from.
    case invalidConfig(source: String, reason: String)

    /// One line naming the source and what is wrong.
    public var description: String {
        switch self {
        case let .invalidConfig(source, reason): return "\(source): invalid feature configuration: \(reason)"
        }
    }
}

/// MFCC front-end settings. Codable (JSON) so it can travel in checkpoint metadata; keys that
/// are missing when decoding take their defaults.
///
/// Defaults match FSDD and `python_speech_features.mfcc(..., winfunc=numpy.hamming, nfft=256)`
/// followed by `delta(·, 2)` twice: 8000 Hz, pre-emphasis 0.97, 25 ms frames every 10 ms,
/// Hamming window, nfft 256, 26 HTK-mel filters over 0…4000 Hz, log, orthonormal DCT-II → 13
/// cepstra, lifter 22, c0 replaced by log frame energy, Δ and ΔΔ over ±2 frames: 39 features.
public struct FeatureConfig: Codable, Sendable, Equatable {
    /// Rate in Hz the audio is resampled to before analysis.
    public var sampleRate: Int = 8000
    /// Pre-emphasis coefficient `a` in `y[n] = x[n] - a x[n-1]` (0 disables it).
    public var preEmphasis: Float = 0.97
    /// Frame length in seconds (rounded half-up to whole samples).
    public var frameLengthSeconds: Double = 0.025
    /// Frame step in seconds (rounded half-up to whole samples).
    public var frameStepSeconds: Double = 0.010
    /// Analysis window.
    public var window: WindowFunction = .hamming
    /// FFT size; `nil` means the next power of two ≥ the frame length.
    public var fftSize: Int? = nil
    /// Number of triangular mel filters.
    public var melFilterCount: Int = 26
    /// Lower band edge of the filterbank in Hz.
    public var lowFrequency: Double = 0
    /// Upper band edge in Hz; `nil` means `sampleRate / 2`.
    public var highFrequency: Double? = nil
    /// Number of cepstral coefficients kept after the DCT.
    public var cepstralCount: Int = 13
    /// Cepstral lifter `L` (`1 + L/2 sin(πn/L)`); 0 disables it.
    public var lifter: Int = 22
    /// Replace c0 by the log of the frame's total power-spectrum energy.
    public var appendEnergy: Bool = true
    /// Append Δ (regression over ±`deltaWindow` frames).
    public var includeDeltas: Bool = true
    /// Append ΔΔ (Δ of Δ); requires `includeDeltas`.
    public var includeDeltaDeltas: Bool = true
    /// Half-width N of the delta regression window.
    public var deltaWindow: Int = 2
    /// Subtract each utterance's mean from its static coefficients (cepstral mean
    /// normalisation, log energy included) before the deltas: removes fixed channel and
    /// speaker offsets. Off by default (python_speech_features does not do it).
    public var utteranceMeanNormalization: Bool = false
    /// Also divide each static coefficient by its standard deviation over the utterance
    /// (cepstral mean and variance normalisation, CMVN; needs `utteranceMeanNormalization`):
    /// removes per-recording scale differences as well. A coefficient that is constant over the
    /// utterance is left at 0.
    public var utteranceVarianceNormalization: Bool = false
    /// Normalise every feature (static, Δ, ΔΔ) of a speaker's files to zero mean and unit
    /// variance over all the frames of that speaker's files in the set being loaded
    /// (speaker-level CMVN): removes a voice's and a microphone's own offsets and scales while
    /// keeping each word's shape, which per-utterance normalisation of a one-word file does not.
    /// Not the extractor's work (it sees one file): `SpeechCorpus.load` applies it to the files
    /// it loads, grouped by `SpeakerNormalization.group`; the training-set statistics apply
    /// after it.
    public var speakerNormalization: Bool = false
    /// Drop the leading and trailing frames more than this many decibels below the file's
    /// loudest frame (keeping `SilenceTrim.margin` frames on each side; see `SilenceTrim`),
    /// before any normalisation and the deltas; nil keeps every frame. Not for label tracks,
    /// whose labels belong to the untrimmed frames.
    public var trimDecibels: Double? = nil

    /// The default configuration (see the type's documentation).
    public init() {}

    /// The default configuration with the choices a training run offers: per-utterance mean
    /// (and variance) normalisation, the number of mel filters and of cepstra kept. Variance
    /// normalisation implies mean normalisation.
    public init(meanNormalization: Bool, varianceNormalization: Bool, melFilters: Int, cepstra: Int,
                speakerNormalization: Bool = false, trimDecibels: Double? = nil) {
        utteranceMeanNormalization = meanNormalization || varianceNormalization
        utteranceVarianceNormalization = varianceNormalization
        self.speakerNormalization = speakerNormalization
        self.trimDecibels = trimDecibels
        melFilterCount = melFilters
        cepstralCount = cepstra
    }

    /// The configuration with the normalisation choices (per utterance, per speaker) cleared:
    /// two configurations equal here frame a file alike and give rows of the same width, and
    /// differ only in how the extracted features are normalised.
    public var withoutNormalization: FeatureConfig {
        var c = self
        c.utteranceMeanNormalization = false; c.utteranceVarianceNormalization = false; c.speakerNormalization = false
        return c
    }

    /// Why a front end of `melFilters` filters keeping `cepstra` coefficients and trimming at
    /// `trimDecibels` is refused, naming the option (`--mel-filters`, `--cepstra`,
    /// `--trim-silence`); nil when usable. The one check behind `train` and `features`.
    public static func frontEndProblem(melFilters: Int, cepstra: Int, trimDecibels: Double? = nil) -> (option: String, reason: String)? {
        if !(8...128).contains(melFilters) { return ("--mel-filters", "must be 8...128 (got \(melFilters))") }
        if !(1...melFilters).contains(cepstra) { return ("--cepstra", "must be 1...\(melFilters), the mel filters (got \(cepstra))") }
        if let db = trimDecibels, !trimRange.contains(db) {
            return ("--trim-silence", "must be \(Int(trimRange.lowerBound))...\(Int(trimRange.upperBound)) dB (got \(db))")
        }
        return nil
    }

    /// Frame length in samples.
    public var frameLength: Int { Self.roundHalfUp(frameLengthSeconds * Double(sampleRate)) }
    /// Frame step in samples.
    public var frameStep: Int { Self.roundHalfUp(frameStepSeconds * Double(sampleRate)) }
    /// FFT size actually used.
    public var resolvedFFTSize: Int {
        if let n = fftSize { return n }
        var n = 1
        while n < frameLength { n <<= 1 }
        return n
    }
    /// Upper filterbank edge actually used, in Hz.
    public var resolvedHighFrequency: Double { highFrequency ?? Double(sampleRate) / 2 }
    /// Width of one feature row: `cepstralCount × (1 + Δ + ΔΔ)`.
    public var featureCount: Int {
        cepstralCount * (1 + (includeDeltas ? 1 : 0) + (includeDeltas && includeDeltaDeltas ? 1 : 0))
    }

    /// Number of frames produced for `samples` samples (at least one, the last zero-padded),
    /// as in `python_speech_features.sigproc.framesig`.
    public func frameCount(samples: Int) -> Int {
        let l = frameLength, s = frameStep
        if samples <= l { return 1 }
        return 1 + (samples - l + s - 1) / s
    }

    /// Checks every value; `source` names the configuration's origin in the error.
    public func validate(source: String = "feature configuration") throws {
        func bad(_ r: String) -> FeatureError { .invalidConfig(source: source, reason: r) }
        guard sampleRate >= 1000, sampleRate <= 384_000 else { throw bad("sampleRate \(sampleRate) outside 1000…384000") }
        guard preEmphasis.isFinite, preEmphasis >= 0, preEmphasis < 1 else { throw bad("preEmphasis \(preEmphasis) outside [0, 1)") }
        guard frameLengthSeconds.isFinite, frameStepSeconds.isFinite,
              frameLength >= 16, frameLength <= 65536 else { throw bad("frame length \(frameLength) samples outside 16…65536") }
        guard frameStep >= 1, frameStep <= frameLength * 4 else { throw bad("frame step \(frameStep) samples") }
        let n = resolvedFFTSize
        guard n >= frameLength, n % 2 == 0, n <= 1 << 17 else { throw bad("fftSize \(n) must be even, ≥ frame length \(frameLength) and ≤ 131072") }
        guard melFilterCount >= 1, melFilterCount <= 512 else { throw bad("melFilterCount \(melFilterCount) outside 1…512") }
        let hi = resolvedHighFrequency
        guard lowFrequency.isFinite, hi.isFinite, lowFrequency >= 0, lowFrequency < hi, hi <= Double(sampleRate) / 2 else {
            throw bad("filterbank band \(lowFrequency)…\(hi) Hz not inside 0…\(sampleRate / 2) Hz")
        }
        guard cepstralCount >= 1, cepstralCount <= melFilterCount else { throw bad("cepstralCount \(cepstralCount) outside 1…\(melFilterCount)") }
        guard lifter >= 0, lifter <= 1000 else { throw bad("lifter \(lifter) outside 0…1000") }
        guard deltaWindow >= 1, deltaWindow <= 50 else { throw bad("deltaWindow \(deltaWindow) outside 1…50") }
        guard includeDeltas || !includeDeltaDeltas else { throw bad("includeDeltaDeltas needs includeDeltas") }
        guard utteranceMeanNormalization || !utteranceVarianceNormalization else {
            throw bad("utteranceVarianceNormalization needs utteranceMeanNormalization")
        }
        if let db = trimDecibels, !Self.trimRange.contains(db) {
            throw bad("trimDecibels \(db) outside \(Int(Self.trimRange.lowerBound))…\(Int(Self.trimRange.upperBound))")
        }
    }

    /// The accepted `trimDecibels`, in dB below the loudest frame.
    public static let trimRange: ClosedRange<Double> = 10...100

    /// JSON encoding (sorted keys, so equal configurations give equal bytes).
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(self)
    }

    /// Decodes and validates a configuration from JSON; `source` names it in errors.
    public static func decode(jsonData: Data, source: String = "feature configuration") throws -> FeatureConfig {
        let cfg: FeatureConfig
        do { cfg = try JSONDecoder().decode(FeatureConfig.self, from: jsonData) } catch {
            throw FeatureError.invalidConfig(source: source, reason: "not a valid JSON feature configuration")
        }
        try cfg.validate(source: source)
        return cfg
    }

    private enum CodingKeys: String, CodingKey {
        case sampleRate, preEmphasis, frameLengthSeconds, frameStepSeconds, window, fftSize, melFilterCount,
             lowFrequency, highFrequency, cepstralCount, lifter, appendEnergy, includeDeltas, includeDeltaDeltas,
             deltaWindow, utteranceMeanNormalization, utteranceVarianceNormalization, speakerNormalization, trimDecibels
    }

    /// Encodes every field; `speakerNormalization` and `trimDecibels` only when set, so
    /// configurations without them keep the bytes they had before they existed.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampleRate, forKey: .sampleRate); try c.encode(preEmphasis, forKey: .preEmphasis)
        try c.encode(frameLengthSeconds, forKey: .frameLengthSeconds); try c.encode(frameStepSeconds, forKey: .frameStepSeconds)
        try c.encode(window, forKey: .window); try c.encodeIfPresent(fftSize, forKey: .fftSize)
        try c.encode(melFilterCount, forKey: .melFilterCount); try c.encode(lowFrequency, forKey: .lowFrequency)
        try c.encodeIfPresent(highFrequency, forKey: .highFrequency); try c.encode(cepstralCount, forKey: .cepstralCount)
        try c.encode(lifter, forKey: .lifter); try c.encode(appendEnergy, forKey: .appendEnergy)
        try c.encode(includeDeltas, forKey: .includeDeltas); try c.encode(includeDeltaDeltas, forKey: .includeDeltaDeltas)
        try c.encode(deltaWindow, forKey: .deltaWindow); try c.encode(utteranceMeanNormalization, forKey: .utteranceMeanNormalization)
        try c.encode(utteranceVarianceNormalization, forKey: .utteranceVarianceNormalization)
        if speakerNormalization { try c.encode(true, forKey: .speakerNormalization) }
        try c.encodeIfPresent(trimDecibels, forKey: .trimDecibels)
    }

    /// Decodes, taking defaults for missing keys.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = FeatureConfig()
        sampleRate = try c.decodeIfPresent(Int.self, forKey: .sampleRate) ?? d.sampleRate
        preEmphasis = try c.decodeIfPresent(Float.self, forKey: .preEmphasis) ?? d.preEmphasis
        frameLengthSeconds = try c.decodeIfPresent(Double.self, forKey: .frameLengthSeconds) ?? d.frameLengthSeconds
        frameStepSeconds = try c.decodeIfPresent(Double.self, forKey: .frameStepSeconds) ?? d.frameStepSeconds
        window = try c.decodeIfPresent(WindowFunction.self, forKey: .window) ?? d.window
        fftSize = try c.decodeIfPresent(Int.self, forKey: .fftSize)
        melFilterCount = try c.decodeIfPresent(Int.self, forKey: .melFilterCount) ?? d.melFilterCount
        lowFrequency = try c.decodeIfPresent(Double.self, forKey: .lowFrequency) ?? d.lowFrequency
        highFrequency = try c.decodeIfPresent(Double.self, forKey: .highFrequency)
        cepstralCount = try c.decodeIfPresent(Int.self, forKey: .cepstralCount) ?? d.cepstralCount
        lifter = try c.decodeIfPresent(Int.self, forKey: .lifter) ?? d.lifter
        appendEnergy = try c.decodeIfPresent(Bool.self, forKey: .appendEnergy) ?? d.appendEnergy
        includeDeltas = try c.decodeIfPresent(Bool.self, forKey: .includeDeltas) ?? d.includeDeltas
        includeDeltaDeltas = try c.decodeIfPresent(Bool.self, forKey: .includeDeltaDeltas) ?? d.includeDeltaDeltas
        deltaWindow = try c.decodeIfPresent(Int.self, forKey: .deltaWindow) ?? d.deltaWindow
        utteranceMeanNormalization = try c.decodeIfPresent(Bool.self, forKey: .utteranceMeanNormalization) ?? d.utteranceMeanNormalization
        utteranceVarianceNormalization = try c.decodeIfPresent(Bool.self, forKey: .utteranceVarianceNormalization)
            ?? d.utteranceVarianceNormalization
        speakerNormalization = try c.decodeIfPresent(Bool.self, forKey: .speakerNormalization) ?? d.speakerNormalization
        trimDecibels = try c.decodeIfPresent(Double.self, forKey: .trimDecibels)
    }

    static func roundHalfUp(_ x: Double) -> Int {
        guard x.isFinite, abs(x) < 1e12 else { return 0 }
        return Int((x + 0.5).rounded(.down))
    }
}

/// Mel scale used by the filterbank (HTK formula).
public enum MelScale {
    /// `2595 log10(1 + f/700)`.
    public static func mel(fromHz f: Double) -> Double { 2595 * log10(1 + f / 700) }
    /// `700 (10^(m/2595) - 1)`.
    public static func hz(fromMel m: Double) -> Double { 700 * (pow(10, m / 2595) - 1) }

    /// The piecewise-linear frequency map of vocal tract length perturbation (Jaitly and Hinton
    /// 2013): `f ↦ factor·f` up to the boundary `f₀ = 0.8·nyquist·min(factor, 1)/factor`, then the
    /// straight line from `(f₀, factor·f₀)` to `(nyquist, nyquist)`. 0 and the Nyquist frequency
    /// stay where they are and the map is increasing for any factor > 0, so the filters keep their
    /// order; a factor above 1 moves the bands up (formants of a shorter vocal tract).
    public static func vtlpWarp(_ f: Double, factor: Double, nyquist: Double) -> Double {
        let f0 = 0.8 * nyquist * min(factor, 1) / factor
        if f <= f0 { return factor * f }
        let y0 = factor * f0
        return y0 + (nyquist - y0) * (f - f0) / (nyquist - f0)
    }

    /// Triangular filterbank `[filters, nfft/2 + 1]` (row-major) with edges on FFT bins
    /// `floor((nfft + 1) f / rate)` of mel-equally-spaced frequencies, peak 1, as
    /// `python_speech_features.get_filterbanks`.
    ///
    /// `warp` ≠ 1 moves every band edge `f` to `vtlpWarp(f, factor: warp, nyquist:)` before it is
    /// put on a bin (vocal tract length perturbation); `warp` = 1 is the unwarped bank.
    public static func filterbank(filters: Int, fftSize nfft: Int, sampleRate: Int,
                                  lowFrequency: Double, highFrequency: Double, warp: Double = 1) -> [Float] {
        let bins = nfft / 2 + 1
        let lo = mel(fromHz: lowFrequency), hi = mel(fromHz: highFrequency)
        let nyquist = Double(sampleRate) / 2
        var edge = [Int](repeating: 0, count: filters + 2)
        for i in 0..<(filters + 2) {
            let m = lo + (hi - lo) * Double(i) / Double(filters + 1)
            var f = hz(fromMel: m)
            if warp != 1 { f = vtlpWarp(f, factor: warp, nyquist: nyquist) }
            edge[i] = Int((Double(nfft + 1) * f / Double(sampleRate)).rounded(.down))
        }
        var fb = [Float](repeating: 0, count: filters * bins)
        for j in 0..<filters {
            let a = edge[j], b = edge[j + 1], c = edge[j + 2]
            if a < b { for i in a..<b where i >= 0 && i < bins { fb[j * bins + i] = Float(Double(i - a) / Double(b - a)) } }
            if b < c { for i in b..<c where i >= 0 && i < bins { fb[j * bins + i] = Float(Double(c - i) / Double(c - b)) } }
        }
        return fb
    }
}
