#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Draws tokens one at a time from a `RecurrentLanguageModel` (batch 1), carrying the state.
///
/// Temperature scales the logits (`softmax(z / T)`), `topK` keeps only the K most likely
/// tokens; temperature 0 means greedy (argmax). Deterministic for a given seed.
public final class TokenSampler {
    public let model: RecurrentLanguageModel
    public let temperature: Float
    public let topK: Int?
    private var rng: SeededRandom
    private var probs: [Float]

    public init(model: RecurrentLanguageModel, temperature: Float, topK: Int?, seed: UInt64) {
        self.model = model
        self.temperature = temperature
        self.topK = topK
        rng = SeededRandom(seed: seed)
        probs = [Float](repeating: 0, count: model.config.vocabSize)
        model.resetEvaluationState()
    }

    /// Feeds tokens without sampling (priming); returns the logits after the last one.
    @discardableResult
    public func feed(_ tokens: [Int32]) -> [Float] {
        var logits: [Float] = []
        for t in tokens { logits = model.nextLogits([t]) }
        return logits
    }

    /// Feeds `token` and draws the next one.
    public func next(after token: Int32) -> Int32 {
        draw(model.nextLogits([token]))
    }

    /// Draws a token from logits `[vocab]`.
    public func draw(_ logits: [Float]) -> Int32 {
        let V = logits.count
        if temperature <= 0 {
            var best = 0
            for j in 1..<V where logits[j] > logits[best] { best = j }
            return Int32(best)
        }
        var cutoff = -Float.infinity
        if let k = topK, k > 0, k < V { cutoff = logits.sorted(by: >)[k - 1] }
        var m = -Float.infinity
        for j in 0..<V where logits[j] >= cutoff { m = max(m, logits[j]) }
        var sum: Float = 0
        for j in 0..<V {
            probs[j] = logits[j] >= cutoff ? expf((logits[j] - m) / temperature) : 0
            sum += probs[j]
        }
        var u = rng.nextFloat() * sum
        for j in 0..<V {
            u -= probs[j]
            if u < 0 && probs[j] > 0 { return Int32(j) }
        }
        for j in stride(from: V - 1, through: 0, by: -1) where probs[j] > 0 { return Int32(j) }
        return 0
    }
}
