import RecurrentCore

/// A deterministic split of a training set into the part that trains and the part that picks
/// the best checkpoint (validation), so the test set is only read once, at the end.
public enum ValidationSplit {
    /// Indices `0..<count` split by a seeded shuffle: `round(fraction * count)` of them (at
    /// least 1 when `fraction > 0`, at most `count - 1`) validate, the rest train; both lists
    /// ascending. The same `count`, `fraction` and `seed` always give the same split.
    /// - Throws: `TrainingSetupError` naming `--val-fraction` when `fraction` is outside
    ///   [0, 1) or leaves no example on one side.
    public static func indices(count: Int, fraction: Double, seed: UInt64) throws -> (train: [Int], validation: [Int]) {
        guard fraction >= 0 && fraction < 1 else {
            throw TrainingSetupError.invalid(option: "--val-fraction", reason: "must be at least 0 and below 1 (got \(fraction))")
        }
        guard fraction > 0 else { return (Array(0..<count), []) }
        guard count >= 2 else {
            throw TrainingSetupError.invalid(option: "--val-fraction", reason: "needs at least 2 training examples (got \(count))")
        }
        let k = min(count - 1, max(1, Int((fraction * Double(count)).rounded())))
        var order = Array(0..<count)
        var rng = SeededRandom(seed: seed ^ 0x5641_4C49_4441_5445)
        rng.shuffle(&order)
        return (order[k...].sorted(), order[..<k].sorted())
    }
}
