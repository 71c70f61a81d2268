import RecurrentCore

/// The toy translation tasks whose (source, target) pairs `ToyPairGenerator` makes.
public enum ToyTask: String, CaseIterable, Sendable, Codable {
    /// 7 random digits → the letters a … j at the same positions (0 → a … 9 → j):
    /// "4071993" → "eahbjjd".
    case digitsToLetters = "digits-to-letters"
    /// A random string → the same string reversed: "abcz" → "zcba".
    case reverse
    /// A random string → its characters sorted in alphabet order: "dbca" → "abcd".
    case sort
    /// English number words → digits: "three hundred twelve" → "312" (0 … 999 999,
    /// wording as in `NumberWords`).
    case numberWords = "number-words"
    /// Digits → English number words: "312" → "three hundred twelve".
    case digitsToWords = "digits-to-words"
    /// A date in one of the `DateStyle` formats → ISO 8601: "Tuesday, March 3 1987" →
    /// "1987-03-03", dates uniform over 1950-01-01 … 2049-12-31.
    case dates
}

/// Settings of the `reverse` and `sort` tasks (the other tasks ignore them).
public struct ToyTaskOptions: Sendable, Equatable {
    /// The longest string length the generator accepts.
    public static let lengthLimit = 40

    /// Characters the random strings are drawn from, uniformly; `sort` sorts by position in
    /// this list. Must be non-empty and without repeats.
    public var alphabet: [Character]
    /// Shortest string length (≥ 1).
    public var minLength: Int
    /// Longest string length (≤ `lengthLimit`); lengths are uniform in `minLength…maxLength`.
    public var maxLength: Int

    /// Creates options; defaults: alphabet a … z, lengths 1 … 10.
    public init(alphabet: [Character] = Array("abcdefghijklmnopqrstuvwxyz"), minLength: Int = 1, maxLength: Int = 10) {
        self.alphabet = alphabet
        self.minLength = minLength
        self.maxLength = maxLength
    }

    /// Checks the settings; throws `ToyTaskError.invalidOptions` naming the problem.
    public func validate() throws(ToyTaskError) {
        if alphabet.isEmpty { throw .invalidOptions("the alphabet is empty") }
        if Set(alphabet).count != alphabet.count { throw .invalidOptions("the alphabet repeats a character") }
        if let bad = alphabet.first(where: { $0.isWhitespace }) {
            throw .invalidOptions("the alphabet contains the whitespace character \(bad.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true) }.joined())")
        }
        if minLength < 1 { throw .invalidOptions("minimum length \(minLength) is below 1") }
        if maxLength > ToyTaskOptions.lengthLimit {
            throw .invalidOptions("maximum length \(maxLength) is above \(ToyTaskOptions.lengthLimit)")
        }
        if minLength > maxLength { throw .invalidOptions("minimum length \(minLength) exceeds maximum length \(maxLength)") }
    }
}

/// Errors of the toy-task generators.
public enum ToyTaskError: Error, CustomStringConvertible, Equatable {
    /// A `ToyTaskOptions` value that cannot be used.
    case invalidOptions(String)
    /// Fewer distinct sources exist (or were found) than the number of pairs asked for.
    case notEnoughDistinctPairs(task: ToyTask, requested: Int, found: Int)

    /// One line saying what is wrong.
    public var description: String {
        switch self {
        case .invalidOptions(let why):
            return "toy task options: \(why)"
        case let .notEnoughDistinctPairs(task, requested, found):
            return "toy task \(task.rawValue): asked for \(requested) distinct pairs but found only \(found); lower the count or widen the lengths / alphabet"
        }
    }
}

/// Makes (source, target) pairs for a `ToyTask`, deterministically from a seed.
///
/// The same task, options and seed give the same pairs in the same order on every platform.
public struct ToyPairGenerator: Sendable {
    /// The task this generator makes pairs for.
    public let task: ToyTask
    /// The string settings (`reverse` and `sort`).
    public let options: ToyTaskOptions
    private var rng: SeededRandom

    /// First and last day (days since 1970-01-01) of the `dates` task's range.
    static let firstDay = CalendarDate(year: 1950, month: 1, day: 1)!.daysSinceEpoch
    static let lastDay = CalendarDate(year: 2049, month: 12, day: 31)!.daysSinceEpoch

    /// Creates a generator; throws `ToyTaskError.invalidOptions` for unusable options.
    public init(task: ToyTask, options: ToyTaskOptions = ToyTaskOptions(), seed: UInt64) throws(ToyTaskError) {
        try options.validate()
        self.task = task
        self.options = options
        self.rng = SeededRandom(seed: seed)
    }

    /// The next random pair (may repeat an earlier one; `generate(count:)` removes repeats).
    public mutating func next() -> SentencePair {
        switch task {
        case .digitsToLetters:
            var source = "", target = ""
            for _ in 0..<7 {
                let d = rng.nextInt(below: 10)
                source.unicodeScalars.append(Unicode.Scalar(UInt8(48 + d)))
                target.unicodeScalars.append(Unicode.Scalar(UInt8(97 + d)))
            }
            return SentencePair(source: source, target: target)
        case .reverse:
            let s = randomString()
            return SentencePair(source: String(s), target: String(s.reversed()))
        case .sort:
            let s = randomString()
            var rank: [Character: Int] = [:]
            for (i, c) in options.alphabet.enumerated() { rank[c] = i }
            let sorted = s.sorted { (rank[$0] ?? 0) < (rank[$1] ?? 0) }
            return SentencePair(source: String(s), target: String(sorted))
        case .numberWords, .digitsToWords:
            let n = randomNumber()
            let words = NumberWords.spell(n) ?? ""
            return task == .numberWords ? SentencePair(source: words, target: String(n))
                                        : SentencePair(source: String(n), target: words)
        case .dates:
            let day = rng.nextInt(in: ToyPairGenerator.firstDay...ToyPairGenerator.lastDay)
            let date = CalendarDate(daysSinceEpoch: day)
            let style = DateStyle.allCases[rng.nextInt(below: DateStyle.allCases.count)]
            return SentencePair(source: style.render(date), target: date.iso8601)
        }
    }

    /// `count` pairs with distinct sources (first occurrence kept, generation order).
    ///
    /// Draws at most `20 * count + 1000` pairs; throws `ToyTaskError.notEnoughDistinctPairs`
    /// when that many draws did not give `count` distinct sources (e.g. `reverse` with lengths
    /// 1 … 2 over a … z has only 702 distinct sources).
    public mutating func generate(count: Int) throws(ToyTaskError) -> [SentencePair] {
        guard count > 0 else { return [] }
        var seen = Set<String>(minimumCapacity: count)
        var pairs: [SentencePair] = []
        pairs.reserveCapacity(count)
        let maxDraws = 20 * count + 1000
        var draws = 0
        while pairs.count < count, draws < maxDraws {
            draws += 1
            let pair = next()
            if seen.insert(pair.source).inserted { pairs.append(pair) }
        }
        if pairs.count < count {
            throw .notEnoughDistinctPairs(task: task, requested: count, found: pairs.count)
        }
        return pairs
    }

    /// A string of uniform length in `minLength…maxLength` over the alphabet.
    private mutating func randomString() -> [Character] {
        let length = rng.nextInt(in: options.minLength...options.maxLength)
        var s: [Character] = []
        s.reserveCapacity(length)
        for _ in 0..<length { s.append(options.alphabet[rng.nextInt(below: options.alphabet.count)]) }
        return s
    }

    /// A number in 0 … 999 999 whose digit count is uniform in 1 … 6 (so short numbers are
    /// as common as long ones), uniform within that digit count.
    private mutating func randomNumber() -> Int {
        let digits = rng.nextInt(in: 1...6)
        let low = digits == 1 ? 0 : Int(pow10(digits - 1))
        let high = Int(pow10(digits)) - 1
        return rng.nextInt(in: low...high)
    }

    private func pow10(_ k: Int) -> Int {
        var p = 1
        for _ in 0..<k { p *= 10 }
        return p
    }
}
