import RecurrentCore

/// Fractions of the pairs that go to the training, validation and test parts.
public struct SplitFractions: Sendable, Equatable {
    /// Fraction for training.
    public var train: Double
    /// Fraction for validation.
    public var validation: Double
    /// Fraction for testing.
    public var test: Double

    /// 0.8 / 0.1 / 0.1.
    public static let standard = SplitFractions(train: 0.8, validation: 0.1, test: 0.1)

    /// Creates fractions; `validate()` checks them.
    public init(train: Double, validation: Double, test: Double) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    /// Throws `PairDataError.invalidSplitFractions` when a fraction is negative or not finite,
    /// or when they sum to more than 1 (a sum below 1 leaves the rest of the pairs unused).
    public func validate() throws(PairDataError) {
        for (name, value) in [("train", train), ("validation", validation), ("test", test)] {
            if !value.isFinite || value < 0 || value > 1 {
                throw .invalidSplitFractions("\(name) fraction \(value) is not in 0 … 1")
            }
        }
        let sum = train + validation + test
        if sum > 1 + 1e-9 { throw .invalidSplitFractions("train + validation + test = \(sum) exceeds 1") }
    }
}

/// Pairs divided into training, validation and test parts.
public struct PairSplit: Sendable, Equatable {
    /// Training pairs.
    public var train: [SentencePair]
    /// Validation pairs.
    public var validation: [SentencePair]
    /// Test pairs.
    public var test: [SentencePair]
}

/// Splits sentence pairs into train / validation / test without overlap.
///
/// Exact duplicate pairs are removed first (first occurrence kept). Pairs are then grouped by
/// source text and whole groups are assigned to one part, so no source (and hence no pair)
/// appears in two parts even when a source has several targets (as in Tatoeba). The groups are
/// shuffled with the seed; the cut points are `round(G * train)` and
/// `round(G * (train + validation))` and `round(G * (train + validation + test))` over the
/// `G` groups.
public enum PairSplitter {
    /// Removes exact duplicate pairs, keeping the first occurrence and the order.
    public static func deduplicate(_ pairs: [SentencePair]) -> [SentencePair] {
        var seen = Set<SentencePair>(minimumCapacity: pairs.count)
        return pairs.filter { seen.insert($0).inserted }
    }

    /// Splits `pairs` by `fractions`, deterministically per `seed`.
    public static func split(_ pairs: [SentencePair], fractions: SplitFractions = .standard, seed: UInt64) throws(PairDataError) -> PairSplit {
        try fractions.validate()
        let unique = deduplicate(pairs)
        var groupIndex: [String: Int] = [:]
        var groups: [[SentencePair]] = []
        for pair in unique {
            if let g = groupIndex[pair.source] {
                groups[g].append(pair)
            } else {
                groupIndex[pair.source] = groups.count
                groups.append([pair])
            }
        }
        var rng = SeededRandom(seed: seed)
        rng.shuffle(&groups)
        let g = Double(groups.count)
        let trainEnd = min(groups.count, Int((g * fractions.train).rounded()))
        let validationEnd = min(groups.count, max(trainEnd, Int((g * (fractions.train + fractions.validation)).rounded())))
        let testEnd = min(groups.count, max(validationEnd, Int((g * (fractions.train + fractions.validation + fractions.test)).rounded())))
        return PairSplit(train: Array(groups[0..<trainEnd].joined()),
                         validation: Array(groups[trainEnd..<validationEnd].joined()),
                         test: Array(groups[validationEnd..<testEnd].joined()))
    }
}
