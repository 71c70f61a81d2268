import ArgumentParser
import AudioFeatures

/// `speech-classify train`'s augmentation flags: a tested set (`--augment`), on by default for
/// the utterance and sequence tasks and off for the frame task (whose label tracks speed
/// perturbation would misalign); `--no-augment` switches it off; each part's flag sets (or with
/// `off`, clears) that part on top of either.
struct AugmentationOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Augment training audio: speed 0.9/1.0/1.1, gain -6:6 dB, noise at 10:40 dB SNR, 2 time masks of up to 8 frames, 2 frequency masks of up to 3 coefficients (each part can be changed by its flag). Default: on for the utterance and sequence tasks, off for the frame task.")
    var augment: Bool?

    /// Whether the tested set applies to `task` when neither `--augment` nor `--no-augment` is given.
    static func defaultSet(for task: SpeechTask) -> Bool { task != .frame }
    @Option(name: .customLong("speed-perturb"), help: "Speed factors drawn per example, e.g. 0.9,1.0,1.1 (resampled with libsamplerate), or off.")
    var speedPerturb: String?
    @Option(name: .customLong("gain-db"), help: "Random gain per example, MIN:MAX decibels, or off.")
    var gain: String?
    @Option(name: .customLong("fade-db"), help: "Random fade per example: the level falls linearly in decibels from a random point to -D dB at the end (or rises from -D dB at the start to that point), D drawn from MIN:MAX (e.g. 0:24), or off.")
    var fade: String?
    @Option(name: .customLong("noise-snr"), help: "White noise per example at a random signal-to-noise ratio, MIN:MAX decibels, or off.")
    var noise: String?
    @Option(name: .customLong("lowpass"), help: "Random low-pass filter per example, cutoff MIN:MAX Hz (e.g. 1800:4000; a narrower channel), or off.")
    var lowPass: String?
    @Option(name: .customLong("vtlp"), help: "Vocal tract length perturbation: the mel filterbank's frequencies warped by a factor drawn per example from MIN:MAX (e.g. 0.9:1.1), or off.")
    var vtlp: String?
    @Option(name: .customLong("tempo"), help: "Tempo change per example: the feature frames resampled in time by a factor drawn from MIN:MAX (e.g. 0.8:1.25; above 1 is faster, the spectrum is kept), or off.")
    var tempo: String?
    @Option(name: .customLong("time-masks"), help: "SpecAugment time masks per example, COUNT:MAX_FRAMES, or off.")
    var timeMasks: String?
    @Option(name: .customLong("freq-masks"), help: "SpecAugment frequency masks per example, COUNT:MAX_COEFFICIENTS, or off.")
    var frequencyMasks: String?

    /// The configuration the flags describe for `task`; nil when nothing is switched on.
    /// `savedDefault` replaces the task's default when neither flag is given (a resumed run).
    func config(task: SpeechTask, savedDefault: Bool? = nil) throws -> AugmentationConfig? {
        var a = AugmentationConfig()
        if augment ?? savedDefault ?? Self.defaultSet(for: task) {
            a.speeds = [0.9, 1.0, 1.1]; a.gainDecibels = -6...6; a.noiseSNR = 10...40
            a.timeMasks = 2; a.timeMaskWidth = 8; a.frequencyMasks = 2; a.frequencyMaskWidth = 3
        }
        func range(_ s: String, _ flag: String) throws -> ClosedRange<Double> {
            let p = s.split(separator: ":").map { Double($0) }
            guard p.count == 2, let lo = p[0], let hi = p[1], lo.isFinite, hi.isFinite, lo <= hi else {
                throw ValidationError("\(flag): expected MIN:MAX with MIN <= MAX, or off; got '\(s)'")
            }
            return lo...hi
        }
        func pair(_ s: String, _ flag: String) throws -> (Int, Int) {
            let p = s.split(separator: ":").map { Int($0) }
            guard p.count == 2, let n = p[0], let w = p[1], n >= 1, w >= 1 else {
                throw ValidationError("\(flag): expected COUNT:WIDTH (both at least 1), or off; got '\(s)'")
            }
            return (n, w)
        }
        if let s = speedPerturb {
            if s == "off" { a.speeds = [] } else {
                let f = s.split(separator: ",").map { Double($0) }
                guard !f.isEmpty, f.allSatisfy({ $0 != nil }) else { throw ValidationError("--speed-perturb: expected factors like 0.9,1.0,1.1, or off; got '\(s)'") }
                a.speeds = f.map { $0! }
            }
        }
        if let s = gain { a.gainDecibels = s == "off" ? nil : try range(s, "--gain-db") }
        if let s = fade { a.fadeDecibels = s == "off" ? nil : try range(s, "--fade-db") }
        if let s = noise { a.noiseSNR = s == "off" ? nil : try range(s, "--noise-snr") }
        if let s = lowPass { a.lowPass = s == "off" ? nil : try range(s, "--lowpass") }
        if let s = vtlp { a.vtlp = s == "off" ? nil : try range(s, "--vtlp") }
        if let s = tempo { a.tempo = s == "off" ? nil : try range(s, "--tempo") }
        if let s = timeMasks {
            if s == "off" { a.timeMasks = 0; a.timeMaskWidth = 0 } else { (a.timeMasks, a.timeMaskWidth) = try pair(s, "--time-masks") }
        }
        if let s = frequencyMasks {
            if s == "off" { a.frequencyMasks = 0; a.frequencyMaskWidth = 0 } else { (a.frequencyMasks, a.frequencyMaskWidth) = try pair(s, "--freq-masks") }
        }
        if let problem = a.problem { throw ValidationError("augmentation: \(problem)") }
        return a.isEnabled ? a : nil
    }
}
