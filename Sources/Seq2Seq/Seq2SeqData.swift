import Foundation
import Plotting
import RecurrentCore

/// Pairs split, tokenised and encoded for training, with the vocabularies built from the
/// training part.
public struct PreparedPairs: Sendable {
    /// Training / validation / test text pairs.
    public var split: PairSplit
    /// Source vocabulary (training sources).
    public var sourceVocabulary: Vocabulary
    /// Target vocabulary (training targets).
    public var targetVocabulary: Vocabulary
    /// Encoded training pairs.
    public var train: [EncodedPair]
    /// Encoded validation pairs (unknown tokens as `<unk>`).
    public var validation: [EncodedPair]
    /// Longest source / target in tokens over all parts.
    public var longestSource: Int, longestTarget: Int
}

/// Turning text pairs into model inputs and model outputs back into text.
public enum Seq2SeqData {
    /// Splits `pairs` (seeded, see `PairSplitter`), builds vocabularies from the training part
    /// and encodes training and validation pairs.
    /// `targetTokenization` defaults to `tokenization` (e.g. word sources with character targets
    /// for number words → digits).
    public static func prepare(_ pairs: [SentencePair], tokenization: TokenLevel, targetTokenization: TokenLevel? = nil,
                               fractions: SplitFractions = .standard, seed: UInt64) throws(PairDataError) -> PreparedPairs {
        let split = try PairSplitter.split(pairs, fractions: fractions, seed: seed)
        return prepare(split: split, tokenization: tokenization, targetTokenization: targetTokenization)
    }

    /// Builds vocabularies from the training part of an existing split and encodes training and
    /// validation pairs (as `prepare(_:tokenization:targetTokenization:fractions:seed:)` after
    /// its split).
    public static func prepare(split: PairSplit, tokenization: TokenLevel, targetTokenization: TokenLevel? = nil) -> PreparedPairs {
        let tt = targetTokenization ?? tokenization
        let src = Vocabulary(texts: split.train.map(\.source), tokenization: tokenization)
        let tgt = Vocabulary(texts: split.train.map(\.target), tokenization: tt)
        let all = split.train + split.validation + split.test
        let longestSource = all.map { tokenization.tokenize($0.source).count }.max() ?? 1
        let longestTarget = all.map { tt.tokenize($0.target).count }.max() ?? 1
        return PreparedPairs(split: split, sourceVocabulary: src, targetVocabulary: tgt,
                             train: encode(split.train, src, tgt), validation: encode(split.validation, src, tgt),
                             longestSource: longestSource, longestTarget: longestTarget)
    }

    /// Encodes an existing split with given vocabularies (a checkpoint's, for `--init-from`),
    /// tokens outside them as `<unk>`.
    /// - Returns: the prepared pairs and how many tokens (source and target) of all three parts
    ///   were read as `<unk>`, and in how many pairs.
    public static func prepare(split: PairSplit, sourceVocabulary src: Vocabulary, targetVocabulary tgt: Vocabulary)
        -> (prepared: PreparedPairs, unknownTokens: Int, unknownPairs: Int) {
        let all = split.train + split.validation + split.test
        var unknownTokens = 0, unknownPairs = 0
        for pair in all {
            var unknown: [String: Int] = [:]
            _ = src.encode(text: pair.source, unknown: &unknown)
            _ = tgt.encode(text: pair.target, unknown: &unknown)
            let n = unknown.values.reduce(0, +)
            unknownTokens += n
            if n > 0 { unknownPairs += 1 }
        }
        let longestSource = all.map { src.tokenization.tokenize($0.source).count }.max() ?? 1
        let longestTarget = all.map { tgt.tokenization.tokenize($0.target).count }.max() ?? 1
        let prepared = PreparedPairs(split: split, sourceVocabulary: src, targetVocabulary: tgt,
                                     train: encode(split.train, src, tgt), validation: encode(split.validation, src, tgt),
                                     longestSource: longestSource, longestTarget: longestTarget)
        return (prepared, unknownTokens, unknownPairs)
    }

    /// Encodes text pairs with the given vocabularies (unknown tokens as `<unk>`).
    public static func encode(_ pairs: [SentencePair], _ source: Vocabulary, _ target: Vocabulary) -> [EncodedPair] {
        pairs.map { EncodedPair(source: source.encode(source.tokenization.tokenize($0.source)),
                                target: target.encode(target.tokenization.tokenize($0.target))) }
    }
}

/// Exact match, token accuracy and BLEU of a model on text pairs.
public struct EvaluationResult: Sendable {
    /// Fraction of outputs equal to the reference (0…1).
    public var exactMatch: Double
    /// Position-wise token accuracy (0…1), see `SequenceMetrics.tokenAccuracy`.
    public var tokenAccuracy: Double
    /// Corpus BLEU-4 with the standard brevity penalty and no smoothing.
    public var bleu: BLEUScore
    /// Decoded outputs as tokens, `[pairs][tokens]`.
    public var hypotheses: [[String]]
    /// Unknown source tokens met (token → count).
    public var unknownTokens: [String: Int]
}

extension Seq2SeqBundle {
    /// Encodes source texts, checking them: throws `Seq2SeqError.emptyInput` or
    /// `.inputTooLong` naming where the text was read (`places[i]`, default `input <i + 1>`);
    /// unknown tokens are counted into `unknown` and read as `<unk>`.
    public func encodeSources(_ texts: [String], places: [String]? = nil, unknown: inout [String: Int]) throws(Seq2SeqError) -> [[Int]] {
        var out: [[Int]] = []
        out.reserveCapacity(texts.count)
        for (i, text) in texts.enumerated() {
            let ids = sourceVocabulary.encode(text: text, unknown: &unknown)
            let place = places.flatMap { i < $0.count ? $0[i] : nil } ?? "input \(i + 1)"
            if ids.isEmpty { throw .emptyInput(place: place) }
            if ids.count > model.config.maxSourceLength {
                throw .inputTooLong(place: place, text: text, length: ids.count, maximum: model.config.maxSourceLength)
            }
            out.append(ids)
        }
        return out
    }

    /// Translates texts (greedy for `beam` ≤ 1, else beam search of that width).
    /// - Returns: the output texts and the decoded sequences (with attention traces).
    /// - Parameter places: where each text was read, for errors (see `encodeSources`).
    public func translate(_ texts: [String], places: [String]? = nil, beam: Int = 1, unknown: inout [String: Int]) throws(Seq2SeqError)
        -> [(text: String, decoded: DecodedSequence<Seq2SeqModel.HypothesisState>)] {
        let sources = try encodeSources(texts, places: places, unknown: &unknown)
        let decoded = model.decode(sources, beam: beam)
        return decoded.map { (targetVocabulary.decode($0.tokens), $0) }
    }

    /// The `count` best translations of each text (beam search of width `max(beam, count)`,
    /// see `Seq2SeqModel.nBest`), best first.
    public func translateNBest(_ texts: [String], places: [String]? = nil, beam: Int, count: Int, unknown: inout [String: Int])
        throws(Seq2SeqError) -> [[(text: String, decoded: DecodedSequence<Seq2SeqModel.HypothesisState>)]] {
        let sources = try encodeSources(texts, places: places, unknown: &unknown)
        return sources.map { source in
            model.nBest(source, width: beam, count: count).map { (targetVocabulary.decode($0.tokens), $0) }
        }
    }

    /// Decodes the sources of `pairs` and scores the outputs against their targets.
    /// - Parameter places: where each pair was read, for errors (see `encodeSources`).
    public func evaluate(_ pairs: [SentencePair], places: [String]? = nil, beam: Int = 1) throws(Seq2SeqError) -> EvaluationResult {
        var unknown: [String: Int] = [:]
        let sources = try encodeSources(pairs.map(\.source), places: places, unknown: &unknown)
        let decoded = model.decode(sources, beam: beam)
        let hyps = decoded.map { targetVocabulary.decodeTokens($0.tokens) }
        let refs = pairs.map { targetVocabulary.tokenization.tokenize($0.target) }
        return EvaluationResult(exactMatch: SequenceMetrics.exactMatch(hypotheses: hyps, references: refs),
                                tokenAccuracy: SequenceMetrics.tokenAccuracy(hypotheses: hyps, references: refs),
                                bleu: BLEU.corpus(hypotheses: hyps, references: refs, maxOrder: 4, smoothing: .none),
                                hypotheses: hyps, unknownTokens: unknown)
    }
}

extension Seq2SeqBundle {
    /// Draws the attention of `source`'s translation as a PNG heatmap: rows = output tokens
    /// (`</s>` included when produced), columns = source tokens.
    /// - Throws: `Seq2SeqError.invalidTraining` for a model without attention, input and file errors.
    public func writeAttentionHeatmap(source: String, beam: Int = 1, to path: String) throws {
        guard model.config.attention != .none else {
            throw Seq2SeqError.invalidTraining("the model has no attention to draw (--attention none)")
        }
        var unknown: [String: Int] = [:]
        guard let first = try translate([source], beam: beam, unknown: &unknown).first else { return }
        let srcTokens = sourceVocabulary.tokenization.tokenize(source)
        var rows = targetVocabulary.decodeTokens(first.decoded.tokens)
        if first.decoded.finished { rows.append("</s>") }
        let values = first.decoded.trace.prefix(rows.count).map { $0.attention.map(Double.init) }
        func label(_ t: String) -> String { t == " " ? "_" : t }
        try Plot.heatmap(values: values, rowLabels: rows.map(label), columnLabels: srcTokens.map(label),
                         title: "attention: \(source) -> \(first.text)", rowAxis: "output", columnAxis: "source", to: path)
    }
}
