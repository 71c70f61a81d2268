/// A deterministic split of a training set's examples into the part trained on and a
/// validation part that chooses `best.safetensors`, so that a separate test set is only used
/// for the final, held-out figure.
///
/// The examples are shuffled with `SeededRandom(seed:)`; with labels the split is stratified:
/// every label gives `round(fraction × its count)` of its examples to validation (so rare
/// classes are not left out of either part by chance). A positive fraction always gives at
/// least one validation example and leaves at least one training example.
public struct ValidationSplit: Sendable, Equatable {
    /// Indices of the examples to train on, ascending.
    public let train: [Int]
    /// Indices of the validation examples, ascending.
    public let validation: [Int]

    /// Splits examples `0..<count`.
    /// - Parameters:
    ///   - count: number of examples.
    ///   - fraction: share for validation, in `[0, 1)`; 0 = everything trains.
    ///   - seed: shuffling seed (the same seed and data give the same split).
    ///   - labels: optional class of each example `[count]`, for a stratified split.
    public init(count: Int, fraction: Double, seed: UInt64, labels: [Int]? = nil) {
        precondition(labels == nil || labels!.count == count, "labels must have one entry per example")
        guard fraction > 0, count >= 2 else {
            train = Array(0..<max(0, count)); validation = []
            return
        }
        var rng = SeededRandom(seed: seed ^ 0x5641_4c49_4441_5445)
        // Groups in first-appearance order of their label, each shuffled.
        var order: [Int: Int] = [:]
        var groups: [[Int]] = []
        for i in 0..<count {
            let key = labels?[i] ?? 0
            if let g = order[key] { groups[g].append(i) } else { order[key] = groups.count; groups.append([i]) }
        }
        var val: [Int] = []
        var rest: [Int] = []
        for var g in groups {
            rng.shuffle(&g)
            let n = min(g.count, Int((fraction * Double(g.count)).rounded()))
            val += g.prefix(n)
            rest += g.dropFirst(n)
        }
        if val.isEmpty {
            rng.shuffle(&rest)
            val.append(rest.removeLast())
        }
        if rest.isEmpty { rest.append(val.removeLast()) }
        train = rest.sorted()
        validation = val.sorted()
    }
}
