/// A contiguous train / validation split of a token-id array: validation is the tail.
///
/// `train = ids[0 ..< t]`, `validation = ids[t ..< N]` with
/// `t = Int(Double(N) * (1 - validationFraction))` (rounded down, the same as Python's
/// `int(0.9 * len(data))` for the default fraction 0.1).
public struct DataSplit: Sendable, Equatable {
    /// The leading tokens, `[trainCount]`.
    public let train: [Int32]
    /// The trailing tokens, `[N - trainCount]` (empty for a fraction of 0).
    public let validation: [Int32]

    /// Splits `ids` (`[N]`).
    ///
    /// - Parameters:
    ///   - ids: token ids of the whole corpus, `[N]`.
    ///   - validationFraction: share of the tail kept for validation, in `[0, 1)`; default 0.1.
    ///   - source: names the text in an error message.
    /// - Throws: `TextDataError.invalidSetting` for a fraction outside `[0, 1)`,
    ///   `.tooShortToSplit` when no training token would remain.
    public init(ids: [Int32], validationFraction: Double = 0.1, source: String = "text") throws {
        guard validationFraction.isFinite, validationFraction >= 0, validationFraction < 1 else {
            throw TextDataError.invalidSetting(
                flag: "--val-fraction", value: "\(validationFraction)", reason: "must be at least 0 and below 1")
        }
        let trainCount = DataSplit.trainCount(total: ids.count, validationFraction: validationFraction)
        guard trainCount > 0 else {
            throw TextDataError.tooShortToSplit(source: source, tokens: ids.count, validationFraction: validationFraction)
        }
        train = Array(ids[..<trainCount])
        validation = Array(ids[trainCount...])
    }

    /// Number of training tokens for `total` tokens: `Int(Double(total) * (1 - validationFraction))`.
    public static func trainCount(total: Int, validationFraction: Double) -> Int {
        let t = Double(total) * (1 - validationFraction)
        guard t.isFinite, t > 0 else { return 0 }
        return min(total, Int(t.rounded(.down)))
    }
}
