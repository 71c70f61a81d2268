/// English cardinal number words for 0 … 999 999 in the suite's one canonical wording.
///
/// Canonical wording: lower case, words separated by single spaces, no hyphens and no "and":
/// `0` → `"zero"`, `21` → `"twenty one"`, `312` → `"three hundred twelve"`,
/// `1005` → `"one thousand five"`, `999999` →
/// `"nine hundred ninety nine thousand nine hundred ninety nine"`.
public enum NumberWords {
    /// The largest number that `spell(_:)` accepts.
    public static let maximum = 999_999

    static let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                       "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                       "seventeen", "eighteen", "nineteen"]
    static let tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

    /// The canonical English words for `number`, or `nil` when it is outside 0 … 999 999.
    public static func spell(_ number: Int) -> String? {
        guard number >= 0, number <= maximum else { return nil }
        if number == 0 { return "zero" }
        var words: [String] = []
        let thousands = number / 1000
        let rest = number % 1000
        if thousands > 0 {
            appendBelowThousand(thousands, to: &words)
            words.append("thousand")
        }
        if rest > 0 { appendBelowThousand(rest, to: &words) }
        return words.joined(separator: " ")
    }

    /// Appends the words of `n` in 1 … 999.
    private static func appendBelowThousand(_ n: Int, to words: inout [String]) {
        let hundreds = n / 100
        let rest = n % 100
        if hundreds > 0 {
            words.append(ones[hundreds])
            words.append("hundred")
        }
        if rest >= 20 {
            words.append(tens[rest / 10])
            if rest % 10 > 0 { words.append(ones[rest % 10]) }
        } else if rest > 0 {
            words.append(ones[rest])
        }
    }
}
