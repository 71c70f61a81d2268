/// Errors raised by the text data library: bad corpus files, vocabularies that do not fit, and
/// batching settings the corpus cannot satisfy.
///
/// Every `description` is one line that names the file (or the text it came from) and what is
/// wrong, ready to print to a user.
public enum TextDataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path names no file or folder.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// The file holds no bytes.
    case emptyFile(path: String)
    /// The file is larger than the size the loader accepts.
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    /// The folder holds no `.txt` file.
    case noTextFiles(directory: String)
    /// The bytes are not valid UTF-8; `offset` is the zero-based byte offset where the first
    /// invalid sequence starts and `byte` the value found there.
    case invalidUTF8(path: String, offset: Int, byte: UInt8)
    /// Text to encode with a character vocabulary holds characters it lacks (listed once each,
    /// in order of first appearance).
    case unknownCharacters(source: String, characters: [String])
    /// A token list cannot form a vocabulary (duplicates, missing special tokens, …).
    case invalidVocabulary(source: String, reason: String)
    /// A token id lies outside `0..<count` of the vocabulary.
    case idOutOfRange(id: Int, count: Int)
    /// A setting given to a splitter or batcher is out of range (`flag` names the option).
    case invalidSetting(flag: String, value: String, reason: String)
    /// The tokens cannot fill a single `[batch, seqLen]` batch of parallel streams.
    case corpusTooShort(source: String, tokens: Int, batch: Int, seqLen: Int, needed: Int)
    /// The tokens cannot fill a single window of `seqLen` inputs plus one target.
    case tooShortForWindow(source: String, tokens: Int, seqLen: Int)
    /// All windows in one batch (`--batch 0`) would need more memory than the batcher allows.
    case tooManyWindowsForOneBatch(source: String, windows: Int, seqLen: Int, limit: Int)
    /// The text is too short to leave any training tokens after the validation split.
    case tooShortToSplit(source: String, tokens: Int, validationFraction: Double)
    /// A saved batch position does not fit the current batcher.
    case positionOutOfRange(source: String, epoch: Int, batch: Int, batchesPerEpoch: Int)

    /// One line naming the file or text and what is wrong.
    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file or folder"
        case .unreadable(let path, let reason):
            return "\(path): cannot be read (\(reason))"
        case .emptyFile(let path):
            return "\(path): file is empty"
        case .fileTooLarge(let path, let bytes, let limit):
            return "\(path): file has \(grouped(bytes)) bytes, more than the \(grouped(limit))-byte limit for a corpus"
        case .noTextFiles(let directory):
            return "\(directory): folder holds no UTF-8 text files"
        case .invalidUTF8(let path, let offset, let byte):
            return "\(path): invalid UTF-8 at byte offset \(offset) (byte 0x\(hex2(byte)))"
        case .unknownCharacters(let source, let characters):
            let shown = characters.prefix(20).map(describeCharacter).joined(separator: ", ")
            let more = characters.count > 20 ? " and \(characters.count - 20) more" : ""
            return "\(source) has characters not in the vocabulary: \(shown)\(more)"
        case .invalidVocabulary(let source, let reason):
            return "\(source): invalid vocabulary: \(reason)"
        case .idOutOfRange(let id, let count):
            return "token id \(id) is outside the vocabulary of \(count) tokens"
        case .invalidSetting(let flag, let value, let reason):
            return "\(flag) \(value): \(reason)"
        case .corpusTooShort(let source, let tokens, let batch, let seqLen, let needed):
            return "\(source): \(grouped(tokens)) tokens are too few for one batch of --batch \(batch) x --seq-len \(seqLen) "
                + "(needs at least \(grouped(needed)) tokens); lower --batch or --seq-len"
        case .tooShortForWindow(let source, let tokens, let seqLen):
            return "\(source): \(grouped(tokens)) tokens are too few for one window of --seq-len \(seqLen) "
                + "(needs at least \(grouped(seqLen + 1)) tokens); lower --seq-len"
        case .tooManyWindowsForOneBatch(let source, let windows, let seqLen, let limit):
            return "\(source): --batch 0 would put \(grouped(windows)) windows x --seq-len \(seqLen) tokens in one batch, "
                + "more than the \(grouped(limit))-token limit; give --batch a positive size"
        case .tooShortToSplit(let source, let tokens, let fraction):
            return "\(source): \(grouped(tokens)) tokens leave no training tokens after a validation fraction of \(fraction)"
        case .positionOutOfRange(let source, let epoch, let batch, let batchesPerEpoch):
            return "\(source): saved batch position (epoch \(epoch), batch \(batch)) does not fit "
                + "\(batchesPerEpoch) batches per epoch; was the checkpoint made with other --batch or --seq-len settings?"
        }
    }
}

/// `1234567` → `"1,234,567"`.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// Two upper-case hex digits.
func hex2(_ b: UInt8) -> String {
    let s = String(b, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}

/// A character token shown for an error message: printable ones quoted, every one with its
/// code point, e.g. `'é' (U+00E9)` or `U+000A`.
func describeCharacter(_ token: String) -> String {
    let codes = token.unicodeScalars.map { scalar -> String in
        var hex = String(scalar.value, radix: 16, uppercase: true)
        while hex.count < 4 { hex = "0" + hex }
        return "U+" + hex
    }.joined(separator: " ")
    let printable = token.unicodeScalars.allSatisfy { scalar in
        let v = scalar.value
        return v >= 0x20 && v != 0x7F && !(0x80...0x9F).contains(v) && v != 0x2028 && v != 0x2029
    }
    return printable ? "'\(token)' (\(codes))" : codes
}
