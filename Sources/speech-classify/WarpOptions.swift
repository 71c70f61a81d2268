import ArgumentParser
import AudioFeatures
import Foundation

/// `eval` and `predict`: the mel filterbank warped at test time, by a given factor or by the
/// factor each speaker's predictions are most confident under (`WarpAdaptation`).
struct WarpOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Compute the features with the mel filterbank's band edges warped by this factor, as VTLP does in "
            + "training (0.7...1.3; 1 = none).", valueName: "FACTOR"))
    var warp: Double?
    @Flag(name: .customLong("adapt-warp"), help: ArgumentHelp(
        "For each speaker ({label}_{speaker}_{index} names; a file without one on its own) compute the features under "
            + "every warp of 0.88...1.16 (steps of 0.04) and keep the one whose predictions are the most certain (lowest mean "
            + "entropy per file, or per frame for frame models; for sequence models the lowest -log probability per label of the "
            + "decoded sequence; no label read) if it is 1 or significantly better than 1 (one-sided paired t-test over the "
            + "speaker's files at 5 %, Bonferroni-corrected for the 7 other factors), else 1 (so a lone file keeps 1); the "
            + "choices are printed on standard error."))
    var adapt = false

    /// What the features were computed with, for `eval`'s data line: empty without a warp.
    var dataNote: String {
        if adapt { return ", filterbank warp adapted per speaker" }
        return warp.map { ", filterbank warped by \(String(format: "%.2f", $0))" } ?? ""
    }

    /// Refuses a factor out of range or both options together.
    func check() throws {
        if warp != nil && adapt { throw ValidationError("--warp and --adapt-warp exclude each other") }
        if let w = warp { try Self.checkFactor(w) }
    }

    /// Refuses a `--warp` factor outside 0.7...1.3 (also `features --warp`).
    static func checkFactor(_ w: Double) throws {
        if !(0.7...1.3).contains(w) { throw ValidationError("--warp \(w) is outside 0.7...1.3") }
    }

    /// The examples to score: `make(factor, report)` at `--warp` (1 without it), or with
    /// `--adapt-warp` each file's at the factor chosen for its speaker (`make` called once per
    /// factor of the grid, `report` true for the unwarped one only), the choices printed.
    func examples(_ scorer: some SpeechScorer, tool: String,
                  _ make: (_ warp: Double, _ report: Bool) throws -> [SpeechExample]) throws -> [SpeechExample] {
        guard adapt else { return try make(warp ?? 1, true) }
        let grid = WarpAdaptation.grid
        let r = WarpAdaptation.adapt(scorer, warps: grid, candidates: try grid.map { try make($0, $0 == 1) })
        let measure = scorer.task == .sequence ? "mean -log p per label" : "mean entropy"
        func f(_ v: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", v) }
        for c in r.choices {
            var line = "\(tool): --adapt-warp: \(c.group) warped by \(f(c.warp, 2)) (\(measure) \(f(c.uncertainty))"
            if c.warp != c.lowestWarp {
                // Kept unwarped: the lowest mean was not significantly lower.
                line += "; lowest \(f(c.lowestUncertainty)) at \(f(c.lowestWarp, 2)), "
                line += c.t.map { "paired t \(f($0, 2)) below \(f(c.critical ?? 0, 2))" } ?? "one file, no test"
            } else {
                line += "; unwarped " + (c.unwarpedUncertainty.map { f($0) } ?? "-")
                if let t = c.t { line += ", paired t \(f(t, 2)) >= \(f(c.critical ?? 0, 2))" }
            }
            note(line + ")")
        }
        return r.examples
    }
}
