import Foundation
import Testing
@testable import TextData

@Suite struct CorpusTests {
    @Test func invalidUTF8ReportsTheByteOffset() throws {
        // Offsets from Python: bytes.decode('utf-8') raises UnicodeDecodeError with .start.
        let cases: [([UInt8], Int)] = [
            ([0x61, 0x62, 0x63, 0xFF, 0x64], 3),              // byte never valid
            ([0x61, 0x62, 0xE2, 0x82, 0x41], 2),              // bad continuation
            ([0xC0, 0x80], 0),                                // overlong NUL
            ([0x6F, 0x6B, 0xED, 0xA0, 0x80], 2),              // surrogate U+D800
            ([0x78, 0xF4, 0x90, 0x80, 0x80], 1),              // above U+10FFFF
            ([0x68, 0x69, 0xE2, 0x82], 2),                    // truncated at the end
            ([0xC3, 0xA9, 0x80], 2),                          // stray continuation byte
            ([0xE0, 0x9F, 0x80], 0),                          // overlong 3-byte
            ([0xF0, 0x8F, 0xBF, 0xBF], 0),                    // overlong 4-byte
            ([0x6F, 0x6B, 0x20, 0xF0, 0x9F, 0x91, 0x8D, 0xFE], 7),
        ]
        for (bytes, offset) in cases {
            #expect(throws: TextDataError.invalidUTF8(path: "x.txt", offset: offset, byte: bytes[offset])) {
                _ = try TextCorpus.decodeUTF8(bytes, path: "x.txt")
            }
        }
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let file = try folder.write("bad.txt", bytes: Array("line one\nline two \u{E9}\n".utf8) + [0xFF] + Array("tail".utf8))
        let error = #expect(throws: TextDataError.self) { _ = try TextCorpus.load(path: file) }
        // "line one\n" (9) + "line two " (9) + é (2) + "\n" (1) = 21.
        #expect(error?.description == "\(file): invalid UTF-8 at byte offset 21 (byte 0xFF)")
    }

    @Test func validUTF8IsReadBackExactly() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let text = "Grüße, \u{4E16}\u{754C}! e\u{301} \u{1F44D}\r\nend\n"
        let file = try folder.write("ok.txt", text: text)
        // Byte for byte, except the CRLF, which is read as LF.
        let unix = "Grüße, \u{4E16}\u{754C}! e\u{301} \u{1F44D}\nend\n"
        #expect(try TextCorpus.load(path: file).utf8.elementsEqual(unix.utf8))
        // A leading byte-order mark is dropped.
        let bom = try folder.write("bom.txt", bytes: [0xEF, 0xBB, 0xBF] + Array("abc".utf8))
        #expect(try TextCorpus.load(path: bom) == "abc")
    }

    @Test func emptyMissingAndTooLargeFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let empty = try folder.write("empty.txt", bytes: [])
        #expect(throws: TextDataError.emptyFile(path: empty)) { _ = try TextCorpus.load(path: empty) }
        #expect(TextDataError.emptyFile(path: empty).description == "\(empty): file is empty")
        let missing = folder.path + "/nope.txt"
        #expect(throws: TextDataError.fileNotFound(path: missing)) { _ = try TextCorpus.load(path: missing) }
        let big = try folder.write("big.txt", text: String(repeating: "x", count: 100))
        #expect(throws: TextDataError.fileTooLarge(path: big, bytes: 100, limit: 50)) {
            _ = try TextCorpus.load(path: big, byteLimit: 50)
        }
        #expect(try TextCorpus.load(path: big, byteLimit: 100).count == 100)
    }

    @Test func folderWithoutTextFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try folder.write(".hidden.txt", text: "hidden")
        let binary = try folder.write("image.bin", bytes: [0x89, 0x50, 0x4E, 0x47, 0x00, 0x41])
        let nul = try folder.write("zeros", bytes: [0x41, 0x00, 0x42])
        try FileManager.default.createDirectory(atPath: folder.path + "/.git", withIntermediateDirectories: false)
        try folder.write(".git/config", text: "hidden folder")
        var skipped: [String] = []
        let error = #expect(throws: TextDataError.self) { _ = try TextCorpus.load(path: folder.path) { skipped.append($0) } }
        #expect(error == .noTextFiles(directory: folder.path))
        #expect(error?.description == "\(folder.path): folder holds no UTF-8 text files")
        #expect(skipped == ["\(binary): skipped: not UTF-8 text (byte 0x89 at offset 0)", "\(nul): skipped: binary (holds NUL bytes)"])
    }

    @Test func folderFilesOfAnyNameAndSubFoldersAreSortedByPathAndJoinedWithNewlines() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        try folder.write("b.txt", text: "second")
        try folder.write("a.txt", text: "first\n")
        try folder.write("C.TXT", text: "upper")       // 'C' (0x43) sorts before 'a' (0x61)
        try folder.write("GPL-3", text: "licence")      // no suffix: read all the same
        try FileManager.default.createDirectory(atPath: folder.path + "/sub", withIntermediateDirectories: false)
        try folder.write("sub/inner.md", text: "inner")
        try folder.write(".x.txt", text: "ignored")
        let empty = try folder.write("c.txt", bytes: [])
        var skipped: [String] = []
        #expect(try TextCorpus.load(path: folder.path) { skipped.append($0) } == "upper\nlicence\nfirst\n\nsecond\ninner")
        #expect(skipped == ["\(empty): skipped: empty"])
        #expect(try TextCorpus.textFiles(inFolder: folder.path).map { String($0.dropFirst(folder.path.count + 1)) }
                == ["C.TXT", "GPL-3", "a.txt", "b.txt", "c.txt", "sub/inner.md"])
    }
}
