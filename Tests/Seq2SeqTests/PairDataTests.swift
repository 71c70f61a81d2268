import Foundation
import Testing
@testable import Seq2Seq

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("seq2seq-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writes raw bytes to `name` in `dir` and returns the path.
func writeFile(_ bytes: [UInt8], _ name: String, in dir: URL) throws -> String {
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

@Test func readsTatoebaStyleFile() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // BOM, CRLF line, extra columns (Tatoeba attribution), blank lines, spaces around fields.
    let text = "\u{FEFF}Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\r\n\n  \t \nHi. \t Salut !\n\nRun!\tCours !"
    let path = try writeFile(Array(text.utf8), "fra.txt", in: dir)
    let pairs = try PairTSV.read(path: path)
    #expect(pairs == [SentencePair(source: "Go.", target: "Va !"),
                      SentencePair(source: "Hi.", target: "Salut !"),
                      SentencePair(source: "Run!", target: "Cours !")])
}

/// Old Mac line ends (a lone CR) split lines like LF and CRLF do; line numbers count each once.
@Test func loneCarriageReturnsEndLines() throws {
    let pairs = try PairTSV.parse(Data("a\tb\rc\td\r\ne\tf\n\rg\th".utf8), path: "t.tsv")
    #expect(pairs == [SentencePair(source: "a", target: "b"), SentencePair(source: "c", target: "d"),
                      SentencePair(source: "e", target: "f"), SentencePair(source: "g", target: "h")])
    #expect(throws: PairDataError.missingTab(path: "t.tsv", line: 3)) { try PairTSV.parse(Data("a\tb\r\n\rbad\rc\td".utf8), path: "t.tsv") }
}

@Test func writtenPairsReadBack() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    var g = try ToyPairGenerator(task: .dates, seed: 4)
    let pairs = try g.generate(count: 40) + [SentencePair(source: "Grüße, 世界 😀", target: "héllo")]
    let path = dir.appendingPathComponent("pairs.tsv").path
    try PairTSV.write(pairs, to: path)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.hasPrefix(pairs[0].source + "\t" + pairs[0].target + "\n"))
    #expect(text.split(separator: "\n").count == pairs.count)
    #expect(try PairTSV.read(path: path) == pairs)
}

@Test func writeRefusesFieldsWithTabsAndWritesNothing() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("bad.tsv").path
    let pairs = [SentencePair(source: "a", target: "b"), SentencePair(source: "c\td", target: "e")]
    #expect(throws: PairDataError.unwritablePair(path: path, index: 1, reason: "the source contains a tab or line break")) {
        try PairTSV.write(pairs, to: path)
    }
    #expect(!FileManager.default.fileExists(atPath: path))
    #expect(throws: PairDataError.self) { try PairTSV.write([SentencePair(source: "a", target: "")], to: path) }
}

@Test func malformedLinesNameFileAndLine() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cases: [(String, [UInt8], PairDataError)] = [
        ("notab.tsv", Array("a\tb\n\nno tab here\n".utf8), .missingTab(path: "", line: 3)),
        ("nosrc.tsv", Array("a\tb\n\tc\n".utf8), .emptySource(path: "", line: 2)),
        ("notgt.tsv", Array("a\tb\nc\td\ne\t  \tf\n".utf8), .emptyTarget(path: "", line: 3)),
        ("utf8.tsv", Array("a\tb\n".utf8) + [0x63, 0x09, 0xC3, 0x28, 0x0A] + Array("x\ty\n".utf8), .invalidUTF8(path: "", line: 2)),
        ("empty.tsv", Array("\n \n".utf8), .noPairs(path: "")),
    ]
    for (name, bytes, expected) in cases {
        let path = try writeFile(bytes, name, in: dir)
        do {
            _ = try PairTSV.read(path: path)
            Issue.record("\(name) should fail")
        } catch {
            let withPath: PairDataError
            switch expected {
            case .missingTab(_, let l): withPath = .missingTab(path: path, line: l)
            case .emptySource(_, let l): withPath = .emptySource(path: path, line: l)
            case .emptyTarget(_, let l): withPath = .emptyTarget(path: path, line: l)
            case .invalidUTF8(_, let l): withPath = .invalidUTF8(path: path, line: l)
            default: withPath = .noPairs(path: path)
            }
            #expect(error == withPath)
            #expect(error.description.hasPrefix(path))
            #expect(!error.description.contains("\n"))
        }
    }
    let missing = dir.appendingPathComponent("missing.tsv").path
    #expect(throws: PairDataError.unreadable(path: missing, reason: "no such file or folder")) { _ = try PairTSV.read(path: missing) }
    let big = try writeFile(Array("a\tb\n".utf8), "big.tsv", in: dir)
    #expect(throws: PairDataError.tooLarge(path: big, bytes: 4, limit: 3)) { _ = try PairTSV.read(path: big, maxBytes: 3) }
    #expect(PairDataError.missingTab(path: "x.tsv", line: 3).description == "x.tsv:3: no tab between source and target (expected source<TAB>target)")
}

@Test func splitHasNoOverlapAndIsDeterministic() throws {
    var g = try ToyPairGenerator(task: .numberWords, seed: 2)
    let base = try g.generate(count: 200)
    // Duplicates and a source with two targets (Tatoeba style).
    let pairs = base + base.prefix(30) + [SentencePair(source: base[5].source, target: "other")]
    let split = try PairSplitter.split(pairs, seed: 9)
    let again = try PairSplitter.split(pairs, seed: 9)
    let other = try PairSplitter.split(pairs, seed: 10)
    #expect(split == again)
    #expect(split != other)
    let all = split.train + split.validation + split.test
    #expect(all.count == 201, "200 distinct pairs plus the second target")
    #expect(Set(all).count == all.count)
    let tr = Set(split.train.map(\.source)), va = Set(split.validation.map(\.source)), te = Set(split.test.map(\.source))
    #expect(tr.isDisjoint(with: va) && tr.isDisjoint(with: te) && va.isDisjoint(with: te))
    // 200 source groups: cuts at 160 and 180.
    #expect(tr.count == 160 && va.count == 20 && te.count == 20)
    // Both targets of base[5] landed in the same part.
    let partWith5 = [split.train, split.validation, split.test].first { $0.contains(base[5]) }
    #expect(partWith5?.contains(SentencePair(source: base[5].source, target: "other")) == true)
}

@Test func splitFractionsAreChecked() throws {
    let pairs = (0..<10).map { SentencePair(source: "s\($0)", target: "t") }
    let half = try PairSplitter.split(pairs, fractions: SplitFractions(train: 0.5, validation: 0.2, test: 0.1), seed: 1)
    #expect(half.train.count == 5 && half.validation.count == 2 && half.test.count == 1)
    #expect(throws: PairDataError.self) { _ = try PairSplitter.split(pairs, fractions: SplitFractions(train: 0.9, validation: 0.2, test: 0), seed: 1) }
    #expect(throws: PairDataError.self) { _ = try PairSplitter.split(pairs, fractions: SplitFractions(train: -0.1, validation: 0.2, test: 0), seed: 1) }
    #expect(PairSplitter.deduplicate([pairs[0], pairs[1], pairs[0]]) == [pairs[0], pairs[1]])
}
