import Foundation

/// Energy-based trimming of leading and trailing silence (`FeatureConfig.trimDecibels`).
///
/// Recordings of one word differ in how much near-silence surrounds it (a speaker's habit, a
/// microphone's noise floor); a model pooling over all frames sees that padding as part of the
/// word. Trimming keeps the frames from the first to the last whose energy lies within `decibels`
/// of the file's loudest frame, widened by `margin` frames on each side (the onset and the fading
/// end of the word are quieter than its loudest part). The threshold is relative, so a file
/// played louder or quieter keeps the same frames.
public enum SilenceTrim {
    /// Frames kept on each side of the loud part: 30 ms at the default 10 ms step.
    public static let margin = 3

    /// The frames kept of `[frames]` natural-log frame energies (as `MFCCExtractor` computes
    /// them: the log of the windowed frame's power-spectrum total): the first to the last
    /// frame within `decibels` of the largest, widened by `margin` on each side and clipped to
    /// the file. All frames when there are none or all are equally loud.
    public static func keptFrames(logEnergies e: [Float], decibels: Double, margin: Int = SilenceTrim.margin) -> Range<Int> {
        guard let peak = e.max() else { return 0..<0 }
        // dB = 10 log10(E1/E2) = (10 / ln 10)(ln E1 - ln E2)
        let threshold = peak - Float(decibels / 10 * log(10.0))
        let first = e.firstIndex { $0 >= threshold }!, last = e.lastIndex { $0 >= threshold }!
        return max(0, first - margin)..<min(e.count, last + margin + 1)
    }
}
