import RecurrentCore
import Foundation
import Testing
@testable import AudioFeatures

@Suite struct MFCCTests {
    /// Compares a feature block against a float64 reference.
    ///
    /// Tolerance |a - b| ≤ 2e-3 + 1e-4·|b|: the Swift path runs in float32 (relative rounding
    /// ≈ 6e-8 per operation). The FFT (8 stages), the 26-term filterbank and DCT sums and the
    /// lifter (gain up to 12 on c_11) turn that into absolute errors of order 1e-5 on values up
    /// to ~60, and the log amplifies relative errors of the weakest mel bands (near the FFT's
    /// float32 noise floor in the zero-padded last frame). ΔΔ sums 25 frames with weights up to
    /// 0.04 each, adding no more than the inputs' error. Measured worst case is printed.
    func compare(_ m: FeatureMatrix, column offset: Int, with ref: [[Double]], name: String) {
        #expect(m.frames == ref.count, "\(name): frame count")
        guard m.frames == ref.count else { return }
        var worst = 0.0
        for t in 0..<m.frames {
            #expect(ref[t].count == 13)
            for k in 0..<13 {
                let a = Double(m[t, offset + k]), b = ref[t][k]
                let err = abs(a - b)
                worst = max(worst, err / (2e-3 + 1e-4 * abs(b)))
                if err > 2e-3 + 1e-4 * abs(b) { Issue.record("\(name)[\(t), \(k)] = \(a), reference \(b)") }
            }
        }
        print("\(name): worst error / tolerance = \(worst)")
    }

    @Test func matchesPythonSpeechFeaturesReference() throws {
        let ex = try MFCCExtractor()
        let m = try ex.features(ofFile: fixture("mfcc-signal.wav"))
        #expect(m.frames == 99 && m.features == 39)
        compare(m, column: 0, with: try readCSV(fixture("mfcc.csv")), name: "mfcc")
        compare(m, column: 13, with: try readCSV(fixture("delta.csv")), name: "delta")
        compare(m, column: 26, with: try readCSV(fixture("delta_delta.csv")), name: "delta-delta")

        var cfg = FeatureConfig()
        cfg.appendEnergy = false
        cfg.includeDeltas = false
        cfg.includeDeltaDeltas = false
        let m0 = try MFCCExtractor(config: cfg).features(ofFile: fixture("mfcc-signal.wav"))
        #expect(m0.features == 13)
        compare(m0, column: 0, with: try readCSV(fixture("mfcc_no_energy.csv")), name: "mfcc-no-energy")
    }

    @Test func realFFTPowerMatchesNaiveDFT() throws {
        let n = 64
        let fft = try RealFFT(size: n)
        var x = [Float](repeating: 0, count: 50)  // zero-padded to 64
        for i in 0..<50 { x[i] = Float(sin(0.37 * Double(i)) + 0.5 * cos(1.9 * Double(i) + 0.2) + 0.01 * Double(i % 7)) }
        let p = fft.powerSpectrum(x)
        #expect(p.count == n / 2 + 1)
        for k in 0...(n / 2) {
            var re = 0.0, im = 0.0
            for t in 0..<50 {
                let a = -2 * Double.pi * Double(k * t) / Double(n)
                re += Double(x[t]) * cos(a)
                im += Double(x[t]) * sin(a)
            }
            let ref = (re * re + im * im) / Double(n)
            #expect(abs(Double(p[k]) - ref) <= 1e-4 * max(1, ref), "bin \(k)")
        }
    }

    @Test func melScaleFollowsTheHTKFormula() {
        for f in [0.0, 100, 700, 1000, 4000, 8000] {
            #expect(abs(MelScale.mel(fromHz: f) - 2595 * log10(1 + f / 700)) < 1e-9)
            #expect(abs(MelScale.hz(fromMel: MelScale.mel(fromHz: f)) - f) < 1e-6)
        }
        // 1000 Hz ≈ 1000 mel is the scale's anchor.
        #expect(abs(MelScale.mel(fromHz: 1000) - 1000) < 0.1)
    }

    @Test func filterbankRowsAreTrianglesOnMelSpacedBins() {
        let nfft = 256, rate = 8000, filters = 26
        let fb = MelScale.filterbank(filters: filters, fftSize: nfft, sampleRate: rate, lowFrequency: 0, highFrequency: 4000)
        let bins = nfft / 2 + 1
        #expect(fb.count == filters * bins)
        // Edges from the formula: mel points equally spaced over [0, mel(4000)], mapped to bins.
        let top = 2595 * log10(1 + 4000.0 / 700)
        let edges = (0...(filters + 1)).map { i -> Int in
            let m = top * Double(i) / Double(filters + 1)
            let hz = 700 * (pow(10, m / 2595) - 1)
            return Int(floor(Double(nfft + 1) * hz / Double(rate)))
        }
        for j in 0..<filters {
            let (a, b, c) = (edges[j], edges[j + 1], edges[j + 2])
            for i in 0..<bins {
                var expected: Float = 0
                if i >= a && i < b { expected = Float(i - a) / Float(b - a) }
                else if i >= b && i < c { expected = Float(c - i) / Float(c - b) }
                #expect(abs(fb[j * bins + i] - expected) < 1e-6, "filter \(j) bin \(i)")
            }
            if b < c { #expect(fb[j * bins + b] == 1) }  // the peak sits on the centre bin
        }
    }

    @Test func framingMatchesFramesigCount() {
        let cfg = FeatureConfig()
        #expect(cfg.frameLength == 200 && cfg.frameStep == 80 && cfg.resolvedFFTSize == 256 && cfg.featureCount == 39)
        // 1 + ceil((N - 200) / 80), at least one frame.
        for (n, frames) in [(0, 1), (1, 1), (200, 1), (201, 2), (280, 2), (281, 3), (8000, 99)] {
            #expect(cfg.frameCount(samples: n) == frames, "N = \(n)")
        }
    }

    @Test func streamingInUnevenBlocksEqualsWholeSignal() throws {
        let ex = try MFCCExtractor()
        let x = try AudioLoader.loadMono(fixture("mfcc-signal.wav"))
        let whole = ex.features(of: x)
        ex.reset()
        var i = 0, size = 1
        while i < x.count {
            let n = min(size, x.count - i)
            ex.consume(Array(x[i..<(i + n)]))
            i += n
            size = (size * 7 + 3) % 3001 + 1  // 1 … 3001 samples, crossing every buffer boundary
        }
        #expect(ex.finish() == whole)
        // The file path streams blocks straight from the decoder; the result is the same.
        #expect(try ex.features(ofFile: fixture("mfcc-signal.wav")) == whole)
    }

    @Test func deltaOfAParabolaByHand() {
        // c_t = t², N = 2, edge padding, denominator 2(1 + 4) = 10.
        let m = FeatureMatrix(frames: 5, features: 1, values: [0, 1, 4, 9, 16])
        let d = Deltas.delta(m, window: 2)
        // t=0: (1(1-0) + 2(4-0))/10   t=1: (1(4-0) + 2(9-0))/10    t=2: (1(9-1) + 2(16-0))/10
        // t=3: (1(16-4) + 2(16-1))/10 t=4: (1(16-9) + 2(16-4))/10
        let expected: [Float] = [0.9, 2.2, 4.0, 4.2, 3.1]
        for t in 0..<5 { #expect(abs(d.values[t] - expected[t]) < 1e-6) }
    }

    @Test func configRoundTripsThroughJSONAndFillsMissingKeys() throws {
        var cfg = FeatureConfig()
        cfg.sampleRate = 16000
        cfg.window = .hann
        cfg.fftSize = 1024
        cfg.highFrequency = 7000
        cfg.includeDeltaDeltas = false
        let back = try FeatureConfig.decode(jsonData: cfg.jsonData())
        #expect(back == cfg)
        let partial = try FeatureConfig.decode(jsonData: Data(#"{"sampleRate": 16000}"#.utf8))
        var expected = FeatureConfig()
        expected.sampleRate = 16000
        #expect(partial == expected && partial.frameLength == 400 && partial.resolvedFFTSize == 512)
    }

    @Test func invalidConfigurationsAreRejected() {
        var c = FeatureConfig(); c.fftSize = 128  // shorter than the 200-sample frame
        #expect(throws: FeatureError.self) { _ = try MFCCExtractor(config: c) }
        c = FeatureConfig(); c.cepstralCount = 30
        #expect(throws: FeatureError.self) { try c.validate() }
        c = FeatureConfig(); c.highFrequency = 5000
        #expect(throws: FeatureError.self) { try c.validate() }
        #expect(throws: FeatureError.self) { _ = try FeatureConfig.decode(jsonData: Data("[1,2]".utf8), source: "ckpt.safetensors") }
        let e = caught { _ = try FeatureConfig.decode(jsonData: Data(#"{"melFilterCount": 0}"#.utf8), source: "ckpt.safetensors") }
        #expect("\(e!)".hasPrefix("ckpt.safetensors: "))
    }

    @Test func normaliserStatisticsAndJSON() throws {
        var norm = FeatureNormalizer(featureCount: 2)
        try norm.accumulate(FeatureMatrix(frames: 2, features: 2, values: [1, 10, 3, 10]))
        try norm.accumulate(FeatureMatrix(frames: 2, features: 2, values: [5, 10, 7, 10]))
        // Column 0: 1,3,5,7 → mean 4, population variance (9+1+1+9)/4 = 5. Column 1 constant.
        #expect(norm.count == 4)
        #expect(abs(norm.mean[0] - 4) < 1e-12 && abs(norm.mean[1] - 10) < 1e-12)
        #expect(abs(norm.standardDeviation[0] - 5.0.squareRoot()) < 1e-12 && norm.standardDeviation[1] == 0)
        let fitted = try FeatureNormalizer.fitted(to: [FeatureMatrix(frames: 4, features: 2, values: [1, 10, 3, 10, 5, 10, 7, 10])],
                                                  featureCount: 2)
        #expect(fitted == norm)
        var m = FeatureMatrix(frames: 2, features: 2, values: [4 + 5.0.squareRoot(), 10, 4, 11].map { Float($0) })
        try norm.apply(to: &m)
        #expect(abs(m[0, 0] - 1) < 1e-6 && m[1, 0] == 0 && m[0, 1] == 0)
        #expect(abs(m[1, 1] - 1e5) < 1)  // constant column: centred, divided by minimumStd

        let dir = try makeTempDir()
        let url = dir.appendingPathComponent("stats.json")
        try norm.write(to: url)
        #expect(try FeatureNormalizer.load(url) == norm)
        #expect(throws: FeatureNormalizerError.widthMismatch(source: "features", expected: 2, got: 3)) {
            try norm.accumulate(FeatureMatrix(frames: 1, features: 3, values: [1, 2, 3]))
        }
        try Data(#"{"featureCount":2,"count":4,"sum":[1],"sumSquares":[1,2],"minimumStd":1e-5}"#.utf8).write(to: url)
        let e = caught { _ = try FeatureNormalizer.load(url) }
        #expect(e is FeatureNormalizerError && "\(e!)".contains(url.path))
    }
}
