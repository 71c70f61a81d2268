import Foundation
import RecurrentCore

/// Text generation from a loaded language-model checkpoint.
public enum LanguageModelGeneration {
    /// Generates `length` tokens after `prime` and returns the whole text (prime included).
    /// - Parameters:
    ///   - loaded: the checkpoint.
    ///   - prime: text to start from (empty: the end-of-line token, or token 0).
    ///   - temperature: softmax temperature; 0 = greedy.
    ///   - topK: sample only among the K most likely tokens.
    ///   - seed: the sampler's seed.
    ///   - output: receives each piece of text as it is produced (prime first).
    /// - Throws: `TextDataError.unknownCharacters` when `prime` holds tokens not in the vocabulary;
    ///   `TextDataError.invalidSetting` for a temperature that is negative or not finite, a
    ///   `topK` below 1 or a negative length.
    public static func generate(loaded: LanguageModelCheckpoint.Loaded, prime: String, length: Int, temperature: Float,
                                topK: Int?, seed: UInt64, output: ((String) -> Void)? = nil) throws -> String {
        try validate(length: length, temperature: temperature, topK: topK)
        let vocab = loaded.vocabulary
        var primeIds = try vocab.encode(prime, source: "--prime")
        if primeIds.isEmpty { primeIds = [vocab.endOfLineID ?? 0] }
        let sampler = TokenSampler(model: loaded.model, temperature: temperature, topK: topK, seed: seed)
        var logits = sampler.feed(primeIds)
        var decoder = TokenDecoder(vocabulary: vocab)
        // The decoder reads the prime's tokens too, so that the first generated word is
        // separated from the prime's last word.
        if !prime.isEmpty { for id in primeIds { _ = try decoder.append(id) } }
        var text = prime
        output?(prime)
        for _ in 0..<max(0, length) {
            let token = sampler.draw(logits)
            let piece = try decoder.append(token)
            text += piece
            output?(piece)
            logits = loaded.model.nextLogits([token])
        }
        return text
    }

    /// Checks sampling settings before anything is generated.
    /// - Throws: `TextDataError.invalidSetting` naming the option (`--temperature`, `--top-k`,
    ///   `--length`).
    public static func validate(length: Int, temperature: Float, topK: Int?) throws {
        if !(temperature >= 0 && temperature.isFinite) {
            throw TextDataError.invalidSetting(flag: "--temperature", value: "\(temperature)",
                                               reason: "must be a finite number at least 0 (0 = greedy)")
        }
        if let k = topK, k < 1 {
            throw TextDataError.invalidSetting(flag: "--top-k", value: "\(k)", reason: "must be at least 1")
        }
        if length < 0 { throw TextDataError.invalidSetting(flag: "--length", value: "\(length)", reason: "must be at least 0") }
    }
}
