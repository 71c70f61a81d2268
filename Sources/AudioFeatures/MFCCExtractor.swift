import Foundation

/// MFCC (+ Δ, ΔΔ) extractor with a streaming interface.
///
/// Everything that does not depend on the signal (window, FFT plan, filterbank, DCT with the
/// lifter folded in) is prepared once in `init`; per frame nothing is allocated. An extractor is
/// not thread-safe: use one per thread (they are cheap to create).
///
/// Streaming use: `reset()`, any number of `consume(_:)` calls with consecutive blocks of the
/// signal, then `finish()`; or call `features(of:)` / `features(ofFile:)`.
/// Output rows are `[c_0 … c_{K-1}, Δc_0 …, ΔΔc_0 …]` with K = `config.cepstralCount`.
public final class MFCCExtractor {
    /// The configuration this extractor was built for.
    public let config: FeatureConfig

    private let frameLength: Int
    private let frameStep: Int
    private let nfft: Int
    private let bins: Int
    private let filters: Int
    private let ceps: Int
    private let preEmphasis: Float
    private let fft: RealFFT

    private let window: UnsafeMutablePointer<Float>      // [frameLength]
    private let power: UnsafeMutablePointer<Float>       // [bins]
    private let logMel: UnsafeMutablePointer<Float>      // [filters]
    private let dct: UnsafeMutablePointer<Float>         // [ceps, filters], lifter folded in
    private let filterStart: [Int]                       // first bin of each filter
    private let filterWeightOffset: [Int]                // offset into filterWeights
    private let filterWeightCount: [Int]
    private let filterWeights: UnsafeMutablePointer<Float>
    private let filterWeightTotal: Int

    // Streaming state.
    private var pending: UnsafeMutablePointer<Float>     // pre-emphasised samples not yet past
    private let pendingCapacity: Int
    private var pendingFill = 0
    private var nextFrameStart = 0
    private var previousSample: Float = 0
    private var totalSamples = 0
    private var framesEmitted = 0
    private var cepstra: [Float] = []
    /// Each emitted frame's log energy (for `config.trimDecibels`).
    private var logEnergies: [Float] = []

    /// Smallest positive value passed to `log` (numpy's float64 epsilon, as python_speech_features).
    static let logFloor: Float = 2.220446049250313e-16

    /// The filterbank's frequency warp (1 = none; see `MelScale.vtlpWarp`).
    public let frequencyWarp: Double

    /// Builds the extractor; throws `FeatureError.invalidConfig` for an invalid configuration.
    /// `frequencyWarp` ≠ 1 warps the mel filterbank's band edges (vocal tract length
    /// perturbation, a training augmentation; 0.5…2).
    public init(config: FeatureConfig = FeatureConfig(), frequencyWarp: Double = 1) throws {
        try config.validate()
        guard frequencyWarp.isFinite, frequencyWarp >= 0.5, frequencyWarp <= 2 else {
            throw FeatureError.invalidConfig(source: "frequency warp", reason: "factor \(frequencyWarp) outside 0.5…2")
        }
        self.frequencyWarp = frequencyWarp
        self.config = config
        frameLength = config.frameLength
        frameStep = config.frameStep
        nfft = config.resolvedFFTSize
        bins = nfft / 2 + 1
        filters = config.melFilterCount
        ceps = config.cepstralCount
        preEmphasis = config.preEmphasis
        fft = try RealFFT(size: nfft)

        window = .allocate(capacity: frameLength)
        let w = config.window.coefficients(length: frameLength)
        for i in 0..<frameLength { window[i] = w[i] }
        power = .allocate(capacity: bins)
        power.initialize(repeating: 0, count: bins)
        logMel = .allocate(capacity: filters)
        logMel.initialize(repeating: 0, count: filters)

        // Sparse filterbank: each filter's non-zero run.
        let fb = MelScale.filterbank(filters: filters, fftSize: nfft, sampleRate: config.sampleRate,
                                     lowFrequency: config.lowFrequency, highFrequency: config.resolvedHighFrequency,
                                     warp: frequencyWarp)
        let nb = bins
        var starts: [Int] = [], offsets: [Int] = [], counts: [Int] = [], weights: [Float] = []
        for j in 0..<filters {
            let row = fb[(j * nb)..<((j + 1) * nb)]
            let first = row.firstIndex(where: { $0 != 0 }).map { $0 - j * nb } ?? 0
            let last = row.lastIndex(where: { $0 != 0 }).map { $0 - j * nb } ?? -1
            starts.append(first)
            offsets.append(weights.count)
            counts.append(max(0, last - first + 1))
            if last >= first { weights.append(contentsOf: fb[(j * nb + first)...(j * nb + last)]) }
        }
        filterStart = starts; filterWeightOffset = offsets; filterWeightCount = counts
        filterWeightTotal = max(1, weights.count)
        filterWeights = .allocate(capacity: filterWeightTotal)
        filterWeights.initialize(repeating: 0, count: filterWeightTotal)
        for (i, v) in weights.enumerated() { filterWeights[i] = v }

        // Orthonormal DCT-II rows, scaled by the lifter.
        dct = .allocate(capacity: ceps * filters)
        let nf = Double(filters)
        for k in 0..<ceps {
            let scale = k == 0 ? (1 / nf).squareRoot() : (2 / nf).squareRoot()
            let lift = config.lifter > 0 ? 1 + Double(config.lifter) / 2 * sin(Double.pi * Double(k) / Double(config.lifter)) : 1
            for n in 0..<filters {
                dct[k * filters + n] = Float(lift * scale * cos(Double.pi * Double(k) * (2 * Double(n) + 1) / (2 * nf)))
            }
        }

        pendingCapacity = max(4 * frameLength, 8192)
        pending = .allocate(capacity: pendingCapacity)
        pending.initialize(repeating: 0, count: pendingCapacity)
    }

    deinit {
        window.deallocate(); power.deallocate()
        logMel.deallocate(); dct.deallocate(); filterWeights.deallocate(); pending.deallocate()
    }

    /// Starts a new signal (drops any unfinished one). `expectedSamples` only reserves output
    /// capacity (bounded), it is not trusted.
    public func reset(expectedSamples: Int = 0) {
        pendingFill = 0
        nextFrameStart = 0
        previousSample = 0
        totalSamples = 0
        framesEmitted = 0
        cepstra = []
        logEnergies = []
        let guess = min(max(expectedSamples, 0), 1 << 24)
        cepstra.reserveCapacity((guess / max(frameStep, 1) + 2) * ceps)
    }

    /// Feeds the next block of the signal `[samples]` (mono, at `config.sampleRate`).
    public func consume(_ block: UnsafeBufferPointer<Float>) {
        guard var src = block.baseAddress else { return }
        var left = block.count
        let a = preEmphasis
        while left > 0 {
            let room = pendingCapacity - pendingFill
            let n = min(room, left)
            let dst = pending + pendingFill
            var prev = previousSample
            if totalSamples == 0 && n > 0 {
                dst[0] = src[0]
                prev = src[0]
                for i in 1..<n { let x = src[i]; dst[i] = x - a * prev; prev = x }
            } else {
                for i in 0..<n { let x = src[i]; dst[i] = x - a * prev; prev = x }
            }
            previousSample = prev
            pendingFill += n
            totalSamples += n
            src += n
            left -= n
            while nextFrameStart + frameLength <= pendingFill {
                analyseFrame(pending + nextFrameStart, available: frameLength)
                nextFrameStart += frameStep
            }
            // Keep only what later frames still need.
            let keepFrom = min(nextFrameStart, pendingFill)
            if keepFrom > 0 {
                let keep = pendingFill - keepFrom
                if keep > 0 { (pending).update(from: pending + keepFrom, count: keep) }
                pendingFill = keep
                nextFrameStart -= keepFrom
            }
        }
    }

    /// Array convenience for `consume(_:)`.
    public func consume(_ block: [Float]) {
        block.withUnsafeBufferPointer { consume($0) }
    }

    /// Ends the signal: emits the remaining (zero-padded) frames and returns the features
    /// `[frames, config.featureCount]`; frames = `config.frameCount(samples:)` of the samples fed,
    /// or, with `config.trimDecibels`, the part `SilenceTrim.keptFrames` keeps of them.
    public func finish() -> FeatureMatrix {
        let target = config.frameCount(samples: totalSamples)
        while framesEmitted < target {
            let avail = max(0, min(frameLength, pendingFill - nextFrameStart))
            analyseFrame(pending + min(nextFrameStart, pendingFill), available: avail)
            nextFrameStart += frameStep
        }
        let result = assemble()
        reset()
        return result
    }

    /// Features `[frames, config.featureCount]` of a whole mono signal `[samples]` at `config.sampleRate`.
    public func features(of signal: [Float]) -> FeatureMatrix {
        reset(expectedSamples: signal.count)
        consume(signal)
        return finish()
    }

    /// Features `[frames, config.featureCount]` of an audio file, decoded block by block (mixed to
    /// mono, resampled to `config.sampleRate`) straight into the extractor.
    /// - Throws: `AudioError` for unreadable or invalid audio.
    public func features(ofFile url: URL) throws -> FeatureMatrix {
        let reader = try AudioReader(url: url)
        let expected = Int(Double(reader.info.frames) * Double(config.sampleRate) / Double(reader.info.sampleRate))
        reset(expectedSamples: expected)
        do {
            try reader.readMono(targetRate: config.sampleRate) { consume($0) }
        } catch {
            reset()
            throw error
        }
        return finish()
    }

    // MARK: - Per-frame work

    /// Windows `available` samples at `frame` (rest zero), FFT, power, mel, log, DCT; appends
    /// `ceps` values to `cepstra`.
    private func analyseFrame(_ frame: UnsafePointer<Float>, available: Int) {
        let pw = power
        let energy = fft.powerSpectrum(frame, count: available, window: window, into: pw)
        logEnergies.append(logf(max(energy, Self.logFloor)))
        for j in 0..<filters {
            let start = filterStart[j], count = filterWeightCount[j]
            let w = filterWeights + filterWeightOffset[j]
            var s: Float = 0
            for i in 0..<count { s += w[i] * pw[start + i] }
            logMel[j] = logf(max(s, Self.logFloor))
        }
        let base = cepstra.count
        cepstra.append(contentsOf: repeatElement(0, count: ceps))
        let nf = filters
        cepstra.withUnsafeMutableBufferPointer { buf in
            let dst = buf.baseAddress! + base
            for k in 0..<ceps {
                let row = dct + k * nf
                var s: Float = 0
                for m in 0..<nf { s += row[m] * logMel[m] }
                dst[k] = s
            }
            if config.appendEnergy { dst[0] = logf(max(energy, Self.logFloor)) }
        }
        framesEmitted += 1
    }

    /// Trims silence (`config.trimDecibels`), normalises the utterance if asked, and lays out
    /// `[c, Δc, ΔΔc]` per frame.
    private func assemble() -> FeatureMatrix {
        if let db = config.trimDecibels {
            let kept = SilenceTrim.keptFrames(logEnergies: logEnergies, decibels: db)
            if kept.count < framesEmitted {
                cepstra = Array(cepstra[(kept.lowerBound * ceps)..<(kept.upperBound * ceps)])
                framesEmitted = kept.count
            }
        }
        let t = framesEmitted
        let width = config.featureCount
        if config.utteranceMeanNormalization && t > 0 {
            let k = ceps
            cepstra.withUnsafeMutableBufferPointer { c in
                guard let cb = c.baseAddress else { return }
                var mean = [Double](repeating: 0, count: k)
                for f in 0..<t { for j in 0..<k { mean[j] += Double(cb[f * k + j]) } }
                for j in 0..<k { mean[j] /= Double(t) }
                for f in 0..<t { for j in 0..<k { cb[f * k + j] -= Float(mean[j]) } }
                guard config.utteranceVarianceNormalization else { return }
                var scale = [Double](repeating: 0, count: k)
                for f in 0..<t { for j in 0..<k { let v = Double(cb[f * k + j]); scale[j] += v * v } }
                for j in 0..<k {
                    let sd = (scale[j] / Double(t)).squareRoot()
                    scale[j] = sd > 1e-6 ? 1 / sd : 0
                }
                for f in 0..<t { for j in 0..<k { cb[f * k + j] = Float(Double(cb[f * k + j]) * scale[j]) } }
            }
        }
        if width == ceps { return FeatureMatrix(frames: t, features: ceps, values: cepstra) }
        var out = [Float](repeating: 0, count: t * width)
        let win = config.deltaWindow
        cepstra.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { o in
                guard let cb = c.baseAddress, let ob = o.baseAddress else { return }
                for f in 0..<t { (ob + f * width).update(from: cb + f * ceps, count: ceps) }
                Deltas.compute(input: cb, inputStride: ceps, output: ob + ceps, outputStride: width,
                               frames: t, width: ceps, window: win)
                if config.includeDeltaDeltas {
                    Deltas.compute(input: ob + ceps, inputStride: width, output: ob + 2 * ceps, outputStride: width,
                                   frames: t, width: ceps, window: win)
                }
            }
        }
        return FeatureMatrix(frames: t, features: width, values: out)
    }
}
