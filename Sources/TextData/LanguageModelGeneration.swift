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
    /// - Throws: `TextDataError.unknownCharacters` when `prime` holds tokens not in the vocabulary.
    public static func generate(loaded: LanguageModelCheckpoint.Loaded, prime: String, length: Int, temperature: Float,
                                topK: Int?, seed: UInt64, output: ((String) -> Void)? = nil) throws -> String {
        let vocab = loaded.vocabulary
        var primeIds = try vocab.encode(prime, source: "--prime")
        if primeIds.isEmpty { primeIds = [vocab.endOfLineID ?? 0] }
        let sampler = TokenSampler(model: loaded.model, temperature: temperature, topK: topK, seed: seed)
        var logits = sampler.feed(primeIds)
        var decoder = TokenDecoder(vocabulary: vocab)
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
}
