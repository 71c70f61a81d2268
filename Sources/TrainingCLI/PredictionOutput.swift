import ArgumentParser
import Foundation
import RecurrentCore

/// How `predict` and `eval` print: `text` for people, `json` (one object per line), `tsv`.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json, tsv
}

/// `--top-k --format`, the options of every tool's `predict`.
public struct PredictOptions: ParsableArguments {
    @Option(name: .customLong("top-k"), help: "Labels per input, most probable first.")
    public var topK: Int = 1
    @Option(help: "Output: text, json (one object per line) or tsv (input, then label and probability pairs).")
    public var format: OutputFormat = .text

    public init() {}

    public func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k: must be at least 1 (got \(topK))") }
    }
}

/// A label with its probability.
public struct RankedLabel: Equatable, Sendable {
    public var label: String
    public var probability: Double

    public init(label: String, probability: Double) {
        self.label = label
        self.probability = probability
    }
}

/// One line of `predict`: the input and its most probable labels, best first.
public struct PredictionLine: Sendable {
    /// The file, argument or text the prediction is for.
    public var input: String
    /// Labels, most probable first (a sequence model's output: one entry, the decoded sequence).
    public var ranked: [RankedLabel]

    public init(input: String, ranked: [RankedLabel]) {
        self.input = input
        self.ranked = ranked
    }
}

/// Top-k selection and the three output formats, shared by every tool's `predict` and `eval`.
public enum PredictionOutput {
    /// Softmax of `logits` in Float64 (shifted by the maximum).
    public static func softmax(_ logits: [Double]) -> [Double] {
        guard let m = logits.max(), m.isFinite else { return logits.map { _ in .nan } }
        let e = logits.map { Foundation.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// The `k` most probable of `probabilities` (one per label, `labels` in the same order),
    /// best first; ties keep the lower index first. `k` larger than the label count gives all.
    public static func topK(_ probabilities: [Double], labels: [String], k: Int) -> [RankedLabel] {
        precondition(probabilities.count == labels.count, "one probability per label")
        let order = probabilities.indices.sorted { a, b in
            probabilities[a] != probabilities[b] ? probabilities[a] > probabilities[b] : a < b
        }
        return order.prefix(max(0, k)).map { RankedLabel(label: labels[$0], probability: probabilities[$0]) }
    }

    /// Float probabilities: `topK` on their Float64 values.
    public static func topK(_ probabilities: [Float], labels: [String], k: Int) -> [RankedLabel] {
        topK(probabilities.map(Double.init), labels: labels, k: k)
    }

    /// One line in `format`:
    /// - text: `INPUT  LABEL (0.9731)  LABEL (0.0112)`
    /// - tsv: `INPUT<TAB>LABEL<TAB>0.973100<TAB>LABEL<TAB>0.011200` (tabs and newlines inside
    ///   fields become spaces)
    /// - json: `{"input":"INPUT","top":[{"label":"LABEL","probability":0.9731},…]}`
    public static func line(_ p: PredictionLine, format: OutputFormat) -> String {
        switch format {
        case .text:
            return ([p.input] + p.ranked.map { "\($0.label) (\(String(format: "%.4f", $0.probability)))" }).joined(separator: "  ")
        case .tsv:
            return ([tsvField(p.input)] + p.ranked.flatMap { [tsvField($0.label), String(format: "%.6f", $0.probability)] })
                .joined(separator: "\t")
        case .json:
            let top: [[String: Any]] = p.ranked.map { ["label": $0.label, "probability": rounded($0.probability, 6)] }
            return jsonLine(["input": p.input, "top": top])
        }
    }

    /// `line` for every prediction, in order.
    public static func lines(_ predictions: [PredictionLine], format: OutputFormat) -> [String] {
        predictions.map { line($0, format: format) }
    }

    /// Metrics in `format`: text `name: value` lines (in the given order), one JSON object (keys
    /// per `jsonKey`), or `name<TAB>value` lines. Values are printed as given (text) or as numbers where they are.
    public static func metrics(_ entries: [(name: String, value: MetricValue)], format: OutputFormat) -> [String] {
        switch format {
        case .text:
            return entries.map { "\($0.name): \($0.value.text)" }
        case .tsv:
            return entries.map { "\($0.name)\t\($0.value.plain)" }
        case .json:
            var object: [String: Any] = [:]
            for e in entries { object[jsonKey(e.name)] = e.value.json }
            return [jsonLine(object)]
        }
    }

    /// A metric name as a JSON key: lower case, every run of other characters than letters and
    /// digits one `_` (`BLEU-4` → `bleu_4`, `exact match` → `exact_match`).
    public static func jsonKey(_ name: String) -> String {
        var key = ""
        for c in name.lowercased() {
            if c.isLetter || c.isNumber { key.append(c) } else if !key.hasSuffix("_") { key.append("_") }
        }
        return key
    }

    /// A JSON object as one line, keys sorted, slashes unescaped.
    public static func jsonLine(_ object: [String: Any]) -> String {
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: d, as: UTF8.self)
    }

    /// `x` rounded to `digits` decimals (what the JSON outputs print).
    public static func rounded(_ x: Double, _ digits: Int) -> Double {
        guard x.isFinite else { return x }
        let f = Foundation.pow(10, Double(digits))
        return (x * f).rounded() / f
    }

    /// A TSV field: tabs and line breaks become spaces.
    static func tsvField(_ s: String) -> String {
        String(s.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }

    /// Writes `--errors FILE`: a header `input<TAB>reference<TAB>prediction` and one line per
    /// mispredicted input, atomically.
    public static func writeErrors(_ errors: [(input: String, reference: String, prediction: String)], to path: String) throws {
        var text = "input\treference\tprediction\n"
        for e in errors { text += "\(tsvField(e.input))\t\(tsvField(e.reference))\t\(tsvField(e.prediction))\n" }
        try AtomicFile.write(text: text, to: path)
    }
}

/// A metric's value for `PredictionOutput.metrics`.
public enum MetricValue: Sendable {
    /// A share in 0...1: text prints a percentage, JSON and TSV the fraction (6 decimals).
    case fraction(Double)
    /// A real number printed with `digits` decimals.
    case number(Double, digits: Int)
    /// A count.
    case count(Int)
    /// Free text.
    case text(String)

    var text: String {
        switch self {
        case .fraction(let x): return String(format: "%.2f %%", 100 * x)
        case .number(let x, let d): return String(format: "%.\(d)f", x)
        case .count(let n): return String(n)
        case .text(let s): return s
        }
    }

    var plain: String {
        switch self {
        case .fraction(let x): return String(format: "%.6f", x)
        case .number(let x, let d): return String(format: "%.\(d)f", x)
        case .count(let n): return String(n)
        case .text(let s): return PredictionOutput.tsvField(s)
        }
    }

    var json: Any {
        switch self {
        case .fraction(let x): return PredictionOutput.rounded(x, 6)
        case .number(let x, let d): return PredictionOutput.rounded(x, d)
        case .count(let n): return n
        case .text(let s): return s
        }
    }
}
