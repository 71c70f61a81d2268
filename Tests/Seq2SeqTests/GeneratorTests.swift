import Foundation
import Testing
@testable import Seq2Seq

// MARK: - Determinism

@Test(arguments: ToyTask.allCases)
func sameSeedGivesSamePairsAndOtherSeedDiffers(task: ToyTask) throws {
    var a = try ToyPairGenerator(task: task, seed: 7)
    var b = try ToyPairGenerator(task: task, seed: 7)
    var c = try ToyPairGenerator(task: task, seed: 8)
    let pa = try a.generate(count: 50)
    let pb = try b.generate(count: 50)
    let pc = try c.generate(count: 50)
    #expect(pa == pb)
    #expect(pa != pc)
    #expect(pa.count == 50)
    #expect(Set(pa.map(\.source)).count == 50, "sources must be distinct")
}

@Test func notEnoughDistinctSourcesIsAnError() throws {
    // Lengths 1 … 1 over "ab": only 2 distinct sources exist.
    var g = try ToyPairGenerator(task: .reverse, options: ToyTaskOptions(alphabet: ["a", "b"], minLength: 1, maxLength: 1), seed: 1)
    #expect(throws: ToyTaskError.notEnoughDistinctPairs(task: .reverse, requested: 3, found: 2)) {
        _ = try g.generate(count: 3)
    }
    #expect(try g.generate(count: 2).map(\.source).sorted() == ["a", "b"])
}

@Test func invalidOptionsAreRejected() {
    let bad: [ToyTaskOptions] = [
        ToyTaskOptions(alphabet: [], minLength: 1, maxLength: 3),
        ToyTaskOptions(alphabet: ["a", "a"], minLength: 1, maxLength: 3),
        ToyTaskOptions(alphabet: ["a", " "], minLength: 1, maxLength: 3),
        ToyTaskOptions(minLength: 0, maxLength: 3),
        ToyTaskOptions(minLength: 5, maxLength: 3),
        ToyTaskOptions(minLength: 1, maxLength: 41),
    ]
    for options in bad {
        #expect(throws: ToyTaskError.self) { _ = try ToyPairGenerator(task: .sort, options: options, seed: 1) }
    }
    let err = ToyTaskError.invalidOptions("x")
    #expect(!err.description.contains("\n"))
}

// MARK: - Task correctness

@Test func digitsToLettersMapsEachPosition() throws {
    let table: [Character: Character] = ["0": "a", "1": "b", "2": "c", "3": "d", "4": "e",
                                         "5": "f", "6": "g", "7": "h", "8": "i", "9": "j"]
    var g = try ToyPairGenerator(task: .digitsToLetters, seed: 3)
    for pair in try g.generate(count: 300) {
        #expect(pair.source.count == 7)
        #expect(String(pair.source.compactMap { table[$0] }) == pair.target)
        #expect(pair.target.count == 7)
    }
}

@Test func reverseReversesWithinLengthBounds() throws {
    let options = ToyTaskOptions(alphabet: Array("xyz01"), minLength: 3, maxLength: 40)
    var g = try ToyPairGenerator(task: .reverse, options: options, seed: 11)
    var lengths = Set<Int>()
    for pair in try g.generate(count: 400) {
        let s = Array(pair.source), t = Array(pair.target)
        #expect(s.count == t.count)
        #expect((3...40).contains(s.count))
        for i in 0..<s.count { #expect(s[i] == t[s.count - 1 - i]) }
        #expect(s.allSatisfy { "xyz01".contains($0) })
        lengths.insert(s.count)
    }
    #expect(lengths.contains(3) && lengths.contains(40), "both length bounds should occur in 400 draws")
}

@Test func sortUsesAlphabetOrder() throws {
    // Custom alphabet order: z before y before x.
    let options = ToyTaskOptions(alphabet: ["z", "y", "x"], minLength: 2, maxLength: 12)
    var g = try ToyPairGenerator(task: .sort, options: options, seed: 5)
    for pair in try g.generate(count: 200) {
        // Independent check by counting: all z's, then y's, then x's.
        let counts = ["z", "y", "x"].map { c in pair.source.filter { String($0) == c }.count }
        let expected = String(repeating: "z", count: counts[0]) + String(repeating: "y", count: counts[1])
            + String(repeating: "x", count: counts[2])
        #expect(pair.target == expected)
    }
    var h = try ToyPairGenerator(task: .sort, seed: 6)
    for pair in try h.generate(count: 100) {
        #expect(pair.target == String(pair.source.sorted()))
    }
}

/// Independent parser of the canonical number words (no "and", no hyphens).
func parseNumberWords(_ text: String) -> Int? {
    let small = ["zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
                 "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
                 "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
                 "seventy": 70, "eighty": 80, "ninety": 90]
    var total = 0, current = 0
    let words = text.split(separator: " ", omittingEmptySubsequences: false)
    guard !words.isEmpty else { return nil }
    for w in words {
        if let v = small[String(w)] {
            current += v
        } else if w == "hundred" {
            current *= 100
        } else if w == "thousand" {
            total += current * 1000
            current = 0
        } else {
            return nil
        }
    }
    return total + current
}

@Test func numberWordsHandExamples() {
    #expect(NumberWords.spell(0) == "zero")
    #expect(NumberWords.spell(15) == "fifteen")
    #expect(NumberWords.spell(40) == "forty")
    #expect(NumberWords.spell(312) == "three hundred twelve")
    #expect(NumberWords.spell(1005) == "one thousand five")
    #expect(NumberWords.spell(100_000) == "one hundred thousand")
    #expect(NumberWords.spell(120_019) == "one hundred twenty thousand nineteen")
    #expect(NumberWords.spell(999_999) == "nine hundred ninety nine thousand nine hundred ninety nine")
    #expect(NumberWords.spell(1_000_000) == nil)
    #expect(NumberWords.spell(-1) == nil)
}

@Test func numberWordsParseBackToTheirDigits() throws {
    // Every number 0 … 9999 and a stride through the rest.
    for n in Array(0...9999) + Array(stride(from: 10_000, through: 999_999, by: 997)) + [999_999] {
        let words = try #require(NumberWords.spell(n))
        #expect(parseNumberWords(words) == n, "\(n) → \(words)")
        #expect(!words.contains("-") && !words.contains(" and ") && !words.contains("  "))
        if n != 0 { #expect(!words.contains("zero")) }
    }
}

@Test func numberWordTasksAreInverse() throws {
    var words = try ToyPairGenerator(task: .numberWords, seed: 21)
    var lengths = Set<Int>()
    for pair in try words.generate(count: 500) {
        let n = try #require(Int(pair.target))
        #expect((0...999_999).contains(n))
        #expect(String(n) == pair.target, "no leading zeros")
        #expect(parseNumberWords(pair.source) == n)
        lengths.insert(pair.target.count)
    }
    #expect(lengths == Set(1...6), "every digit count should occur")
    var digits = try ToyPairGenerator(task: .digitsToWords, seed: 21)
    for pair in try digits.generate(count: 200) {
        #expect(parseNumberWords(pair.target) == Int(pair.source))
    }
}

// MARK: - Dates

let utc = TimeZone(identifier: "UTC")!

/// Foundation's formatter for a Unicode date pattern, English, UTC.
func formatter(_ pattern: String) -> DateFormatter {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = utc
    f.dateFormat = pattern
    return f
}

/// The date written in every style, by Foundation (and by hand for the ordinal style).
func foundationRenderings(_ date: Date, _ formatters: [DateStyle: DateFormatter]) -> [DateStyle: String] {
    var out: [DateStyle: String] = [:]
    for (style, f) in formatters { out[style] = f.string(from: date) }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = utc
    let c = calendar.dateComponents([.year, .month, .day], from: date)
    let suffixes = [1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"]
    out[.ordinalDayOfMonthYear] = "the \(c.day!)\(suffixes[c.day!] ?? "th") of \(formatters[.dayMonthNameYear]!.monthSymbols[c.month! - 1]), \(c.year!)"
    // The two case variants.
    out[.lowerDayShortMonthShortYear] = out[.lowerDayShortMonthShortYear]?.lowercased()
    out[.upperShortMonthDayCommaYear] = out[.upperShortMonthDayCommaYear]?.uppercased()
    return out
}

let stylePatterns: [DateStyle: String] = [
    .dayMonthNameYear: "d MMMM yyyy",
    .monthNameDayCommaYear: "MMMM d, yyyy",
    .usSlashShortYear: "MM/dd/yy",
    .yearDotMonthDotDay: "yyyy.MM.dd",
    .weekdayMonthNameDayYear: "EEEE, MMMM d yyyy",
    .lowerDayShortMonthShortYear: "d MMM yy",
    .upperShortMonthDayCommaYear: "MMM d, yyyy",
    .dayDashMonthDashYear: "dd-MM-yyyy",
    .shortWeekdayDayShortMonthYear: "EEE d MMM yyyy",
    .dayDotMonthDotYearUnpadded: "d.M.yyyy",
    .compact: "yyyyMMdd",
]

@Test func everyDateStyleMatchesFoundation() throws {
    #expect(DateStyle.allCases.count >= 8)
    let formatters = stylePatterns.mapValues(formatter)
    let iso = formatter("yyyy-MM-dd")
    var days = Array(stride(from: ToyPairGenerator.firstDay, through: ToyPairGenerator.lastDay, by: 131))
    // Leap days, year ends and the range ends.
    for (y, m, d) in [(1952, 2, 29), (2000, 2, 29), (2048, 2, 29), (1950, 1, 1), (2049, 12, 31), (1999, 12, 31), (2000, 1, 1)] {
        days.append(try #require(CalendarDate(year: y, month: m, day: d)).daysSinceEpoch)
    }
    for day in days {
        let date = CalendarDate(daysSinceEpoch: day)
        let foundationDate = Date(timeIntervalSince1970: Double(day) * 86_400)
        #expect(date.iso8601 == iso.string(from: foundationDate))
        let expected = foundationRenderings(foundationDate, formatters)
        for style in DateStyle.allCases {
            #expect(style.render(date) == expected[style], "\(style) for \(date.iso8601)")
        }
    }
}

@Test func calendarDateAgreesWithFoundationCalendar() throws {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = utc
    for day in stride(from: ToyPairGenerator.firstDay - 400, through: ToyPairGenerator.lastDay + 400, by: 53) {
        let date = CalendarDate(daysSinceEpoch: day)
        let c = calendar.dateComponents([.year, .month, .day, .weekday], from: Date(timeIntervalSince1970: Double(day) * 86_400))
        #expect(date.year == c.year && date.month == c.month && date.day == c.day)
        #expect(date.weekday + 1 == c.weekday) // Foundation: 1 = Sunday
        #expect(date.daysSinceEpoch == day)
    }
    #expect(CalendarDate(year: 1987, month: 3, day: 3)?.weekday == 2) // a Tuesday
    #expect(CalendarDate(year: 1900, month: 2, day: 29) == nil)
    #expect(CalendarDate(year: 2000, month: 2, day: 29) != nil)
    #expect(CalendarDate(year: 1987, month: 13, day: 1) == nil)
}

@Test func datePairsHaveCorrectISOTargets() throws {
    let formatters = stylePatterns.mapValues(formatter)
    let iso = formatter("yyyy-MM-dd")
    var g = try ToyPairGenerator(task: .dates, seed: 99)
    var stylesSeen = Set<DateStyle>()
    for pair in try g.generate(count: 300) {
        let date = try #require(iso.date(from: pair.target), "target \(pair.target) is not ISO 8601")
        #expect(iso.string(from: date) == pair.target)
        let year = try #require(Int(pair.target.prefix(4)))
        #expect((1950...2049).contains(year))
        let renderings = foundationRenderings(date, formatters)
        let matching = renderings.filter { $0.value == pair.source }.map(\.key)
        #expect(!matching.isEmpty, "source \(pair.source) is no rendering of \(pair.target)")
        stylesSeen.formUnion(matching)
    }
    #expect(stylesSeen.count == DateStyle.allCases.count)
}
