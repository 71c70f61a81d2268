import Foundation
import RecurrentCore

/// Errors reading, writing or splitting sentence-pair files.
public enum PairDataError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or read.
    case unreadable(path: String, reason: String)
    /// The file is larger than the reader's limit.
    case tooLarge(path: String, bytes: Int, limit: Int)
    /// A line is not valid UTF-8.
    case invalidUTF8(path: String, line: Int)
    /// A non-blank line has no tab between source and target.
    case missingTab(path: String, line: Int)
    /// The source column (before the first tab) is empty.
    case emptySource(path: String, line: Int)
    /// The target column (between the first and second tab) is empty.
    case emptyTarget(path: String, line: Int)
    /// The file has no pairs at all.
    case noPairs(path: String)
    /// A pair cannot be written as TSV (a tab or line break inside a field, or an empty field).
    case unwritablePair(path: String, index: Int, reason: String)
    /// The file could not be written.
    case unwritable(path: String, reason: String)
    /// Split fractions that are negative or sum to more than 1.
    case invalidSplitFractions(String)

    /// One line naming the file (and line) and what is wrong.
    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read the file: \(reason)"
        case let .tooLarge(path, bytes, limit): return "\(path): file is \(bytes) bytes, above the limit of \(limit) bytes"
        case let .invalidUTF8(path, line): return "\(path):\(line): line is not valid UTF-8"
        case let .missingTab(path, line): return "\(path):\(line): no tab between source and target (expected source<TAB>target)"
        case let .emptySource(path, line): return "\(path):\(line): the source (first column) is empty"
        case let .emptyTarget(path, line): return "\(path):\(line): the target (second column) is empty"
        case let .noPairs(path): return "\(path): the file holds no source<TAB>target pairs"
        case let .unwritablePair(path, index, reason): return "\(path): pair \(index) cannot be written as TSV: \(reason)"
        case let .unwritable(path, reason): return "\(path): cannot write the file: \(reason)"
        case let .invalidSplitFractions(why): return "split fractions: \(why)"
        }
    }
}

/// Reading and writing `source<TAB>target` files (UTF-8, one pair per line).
///
/// The reader accepts Tatoeba / Anki exports: columns after the second are ignored, blank
/// (empty or whitespace-only) lines are skipped, `\r\n` and lone `\r` line ends and a leading UTF-8 byte
/// order mark are accepted, and spaces around each of the two fields are trimmed. Line numbers
/// in errors are 1-based and count every line, blank ones included.
public enum PairTSV {
    /// Default size limit of `read(path:maxBytes:)`: 1 GiB.
    public static let defaultMaxBytes = 1 << 30

    /// Reads the pairs of the TSV file at `path`.
    ///
    /// Throws `PairDataError` for a missing / unreadable / oversized file, a line that is not
    /// UTF-8 or has no tab, an empty source or target, or a file with no pairs.
    public static func read(path: String, maxBytes: Int = defaultMaxBytes) throws(PairDataError) -> [SentencePair] {
        try readNumbered(path: path, maxBytes: maxBytes).pairs
    }

    /// `read`, with the 1-based line number of each pair in the file (blank lines are skipped,
    /// so pair `i` need not be on line `i + 1`).
    public static func readNumbered(path: String, maxBytes: Int = defaultMaxBytes) throws(PairDataError)
        -> (pairs: [SentencePair], lines: [Int]) {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw .unreadable(path: path, reason: FileSystemErrorText.reason(error) ?? "\(error.localizedDescription)")
        }
        if let type = attributes[.type] as? FileAttributeType, type == .typeDirectory {
            throw .unreadable(path: path, reason: "it is a directory")
        }
        if let size = (attributes[.size] as? NSNumber)?.intValue, size > maxBytes {
            throw .tooLarge(path: path, bytes: size, limit: maxBytes)
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: FileSystemErrorText.reason(error) ?? error.localizedDescription)
        }
        if data.count > maxBytes { throw .tooLarge(path: path, bytes: data.count, limit: maxBytes) }
        let parsed = try parseNumbered(data, path: path)
        if parsed.pairs.isEmpty { throw .noPairs(path: path) }
        return parsed
    }

    /// Parses TSV bytes as `read` does; `path` is only used in error messages. An input without
    /// pairs gives an empty array (no error).
    public static func parse(_ data: Data, path: String) throws(PairDataError) -> [SentencePair] {
        try parseNumbered(data, path: path).pairs
    }

    /// `parse`, with the 1-based line number of each pair.
    static func parseNumbered(_ data: Data, path: String) throws(PairDataError) -> (pairs: [SentencePair], lines: [Int]) {
        var pairs: [SentencePair] = [], lines: [Int] = []
        var failure: PairDataError?
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            let n = bytes.count
            var start = 0
            // Skip a UTF-8 byte order mark.
            if n >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
            var lineNumber = 0
            while start < n {
                lineNumber += 1
                // A line ends at "\n", "\r\n" or a lone "\r".
                var end = start
                while end < n, bytes[end] != 0x0A, bytes[end] != 0x0D { end += 1 }
                let next = end + 1 < n && bytes[end] == 0x0D && bytes[end + 1] == 0x0A ? end + 2 : end + 1
                let stop = end
                let line = UnsafeBufferPointer(rebasing: bytes[start..<stop])
                start = next
                // Blank line?
                var blank = true
                for b in line where b != 0x20 && b != 0x09 && b != 0x0D && b != 0x0B && b != 0x0C {
                    blank = false
                    break
                }
                if blank { continue }
                guard let text = String(validating: line, as: UTF8.self) else {
                    failure = .invalidUTF8(path: path, line: lineNumber)
                    return
                }
                var fields = text.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count >= 2 else {
                    failure = .missingTab(path: path, line: lineNumber)
                    return
                }
                fields = fields.map { $0.trimmingCharacters(in: .whitespaces)[...] }
                if fields[0].isEmpty { failure = .emptySource(path: path, line: lineNumber); return }
                if fields[1].isEmpty { failure = .emptyTarget(path: path, line: lineNumber); return }
                pairs.append(SentencePair(source: String(fields[0]), target: String(fields[1])))
                lines.append(lineNumber)
            }
        }
        if let failure { throw failure }
        return (pairs, lines)
    }

    /// Writes `pairs` as `source<TAB>target\n` lines, atomically (temporary file + rename).
    ///
    /// Throws `PairDataError.unwritablePair` (nothing written) when a field is empty or holds a
    /// tab or line break, and `.unwritable` when the file cannot be written.
    public static func write(_ pairs: [SentencePair], to path: String) throws(PairDataError) {
        var text = ""
        text.reserveCapacity(pairs.count * 32)
        for (index, pair) in pairs.enumerated() {
            for (name, field) in [("source", pair.source), ("target", pair.target)] {
                if field.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw .unwritablePair(path: path, index: index, reason: "the \(name) is empty")
                }
                if field.unicodeScalars.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
                    throw .unwritablePair(path: path, index: index, reason: "the \(name) contains a tab or line break")
                }
            }
            text += pair.source
            text += "\t"
            text += pair.target
            text += "\n"
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .unwritable(path: path, reason: FileSystemErrorText.reason(error) ?? error.localizedDescription)
        }
    }
}
