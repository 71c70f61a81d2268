import Foundation
import RecurrentCore

/// Loads UTF-8 text corpora from a file or from a folder of text files.
///
/// The bytes are validated here, not by a decoder that silently replaces bad sequences: invalid
/// UTF-8 is an error that names the file and the byte offset. A UTF-8 byte-order mark at the start
/// of a file is dropped. Line endings are normalised: `"\r\n"` and a lone `"\r"` become `"\n"`, so
/// a text with Windows or old Mac line endings gives the same tokens as the same text with Unix
/// ones (a character vocabulary never holds U+000D).
public enum TextCorpus {
    /// Largest corpus, in bytes, that `load` accepts unless told otherwise (1 GiB).
    public static let defaultByteLimit = 1 << 30

    /// Reads a corpus: a single UTF-8 file, or every UTF-8 text file of a folder and its
    /// sub-folders (whatever their names; hidden files and folders left out) sorted by path
    /// (byte order) and joined with `"\n"` between files. In a folder, files that are not text
    /// (invalid UTF-8, NUL bytes) or are empty are skipped, each reported through `skipped`.
    ///
    /// - Parameters:
    ///   - path: a file or folder.
    ///   - byteLimit: the most bytes read in all; a larger corpus is an error, never a huge
    ///     allocation.
    ///   - skipped: receives one line per file of a folder left out (`<file>: skipped: <why>`).
    /// - Throws: `TextDataError` for a missing path, an empty file, a folder with no text file,
    ///   invalid UTF-8 in a single file (with the byte offset), or a corpus over `byteLimit`.
    public static func load(path: String, byteLimit: Int = defaultByteLimit, skipped: (String) -> Void = { _ in }) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TextDataError.fileNotFound(path: path)
        }
        if !isDirectory.boolValue {
            return try loadFile(path: path, byteLimit: byteLimit)
        }
        let files = try textFiles(inFolder: path)
        var text = ""
        var remaining = byteLimit
        var used = 0
        for file in files {
            let part: String
            do {
                part = try loadFile(path: file, byteLimit: remaining)
            } catch TextDataError.fileTooLarge(_, let bytes, _) {
                throw TextDataError.fileTooLarge(path: path, bytes: byteLimit - remaining + bytes, limit: byteLimit)
            } catch TextDataError.invalidUTF8(_, let offset, let byte) {
                skipped("\(file): skipped: not UTF-8 text (byte 0x\(String(format: "%02X", Int(byte))) at offset \(offset))")
                continue
            } catch TextDataError.emptyFile {
                skipped("\(file): skipped: empty")
                continue
            }
            if part.utf8.contains(0) {
                skipped("\(file): skipped: binary (holds NUL bytes)")
                continue
            }
            if used > 0 { text.append("\n") }
            text.append(part)
            used += 1
            remaining -= part.utf8.count + 1
        }
        guard used > 0 else { throw TextDataError.noTextFiles(directory: path) }
        return text
    }

    /// The regular files inside a folder and its sub-folders, hidden files and folders left
    /// out, as full paths sorted by their path below the folder in byte order.
    ///
    /// - Throws: `TextDataError.noTextFiles` when there is none, `.unreadable` when the folder
    ///   cannot be listed.
    public static func textFiles(inFolder folder: String) throws -> [String] {
        let root = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        var selected: [String] = []
        var pending = [""]
        var visited = Set<String>()
        while let relative = pending.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            // A folder reached again through a link is listed once.
            let real = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
            guard visited.insert(real).inserted else { continue }
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: directory)
            } catch {
                throw TextDataError.unreadable(path: directory, reason: "cannot list the folder")
            }
            for name in names where !name.hasPrefix(".") {
                let path = relative.isEmpty ? name : relative + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue { pending.append(path) } else { selected.append(path) }
            }
        }
        guard !selected.isEmpty else { throw TextDataError.noTextFiles(directory: folder) }
        return selected.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { root + "/" + $0 }
    }

    /// Reads one file, validates it as UTF-8 and returns its text (a leading byte-order mark
    /// dropped).
    ///
    /// - Throws: `TextDataError` for a missing, unreadable, empty or too large file, or for
    ///   invalid UTF-8.
    public static func loadFile(path: String, byteLimit: Int = defaultByteLimit) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw TextDataError.unreadable(path: path, reason: "permission denied or not a regular file")
            }
            throw TextDataError.fileNotFound(path: path)
        }
        defer { try? handle.close() }
        let data: Data
        do {
            // Never read more than one byte past the limit, whatever the file claims to hold.
            data = try handle.read(upToCount: max(byteLimit, 0) + 1) ?? Data()
        } catch {
            throw TextDataError.unreadable(path: path, reason: FileSystemErrorText.reason(error) ?? error.localizedDescription)
        }
        if data.count > byteLimit {
            throw TextDataError.fileTooLarge(path: path, bytes: fileSize(path) ?? data.count, limit: byteLimit)
        }
        if data.isEmpty { throw TextDataError.emptyFile(path: path) }
        return try data.withUnsafeBytes { raw in
            try decodeUTF8(UnsafeBufferPointer(start: raw.bindMemory(to: UInt8.self).baseAddress, count: raw.count),
                           path: path)
        }
    }

    /// Validates bytes as UTF-8 and returns the text, a leading byte-order mark dropped and line
    /// endings normalised to `"\n"` (`"\r\n"` and a lone `"\r"` each become one `"\n"`).
    ///
    /// - Parameters:
    ///   - bytes: the raw file contents.
    ///   - path: the file name used in an error message.
    /// - Throws: `TextDataError.invalidUTF8` with the offset where the first invalid sequence
    ///   starts (the same offset Python's `UnicodeDecodeError.start` reports).
    public static func decodeUTF8(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws -> String {
        if let offset = firstInvalidUTF8Offset(bytes) {
            throw TextDataError.invalidUTF8(path: path, offset: offset, byte: bytes[offset])
        }
        var body = bytes
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            body = UnsafeBufferPointer(rebasing: bytes[3...])
        }
        // Validated above, so no replacement character can appear.
        guard body.contains(0x0D) else { return String(decoding: body, as: UTF8.self) }
        var unixLines: [UInt8] = []
        unixLines.reserveCapacity(body.count)
        var i = 0
        while i < body.count {
            let b = body[i]
            i += 1
            if b == 0x0D {
                unixLines.append(0x0A)
                if i < body.count, body[i] == 0x0A { i += 1 }
            } else {
                unixLines.append(b)
            }
        }
        return String(decoding: unixLines, as: UTF8.self)
    }

    /// Array convenience for `decodeUTF8(_:path:)`.
    public static func decodeUTF8(_ bytes: [UInt8], path: String) throws -> String {
        try bytes.withUnsafeBufferPointer { try decodeUTF8($0, path: path) }
    }

    /// The byte offset where the first ill-formed UTF-8 sequence starts, or nil when all of
    /// `bytes` is well-formed UTF-8 (Unicode table 3-7: no overlong forms, no surrogates,
    /// nothing above U+10FFFF, no truncated sequence).
    public static func firstInvalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let n = bytes.count
        var i = 0
        while i < n {
            let b0 = base[i]
            if b0 < 0x80 { i += 1; continue }
            var length = 0
            var low: UInt8 = 0x80, high: UInt8 = 0xBF   // allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            if i + 1 >= n { return i }
            let b1 = base[i + 1]
            if b1 < low || b1 > high { return i }
            var k = 2
            while k < length {
                if i + k >= n { return i }
                let b = base[i + k]
                if b < 0x80 || b > 0xBF { return i }
                k += 1
            }
            i += length
        }
        return nil
    }

    /// The size the file system reports for a file, if any.
    static func fileSize(_ path: String) -> Int? {
        guard let value = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] else { return nil }
        if let n = value as? NSNumber { return n.intValue }
        if let n = value as? Int { return n }
        if let n = value as? UInt64 { return Int(clamping: n) }
        return nil
    }
}
