#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One named tensor of a checkpoint: `Float` values in row-major order.
///
/// `values.count` equals the product of `shape` (1 for the scalar shape `[]`). Names follow
/// PyTorch's `state_dict` keys, e.g. `lstm.weight_ih_l0` with shape `[4 * hidden, input]`.
public struct NamedTensor: Sendable, Equatable {
    /// The tensor's key in the checkpoint, e.g. `decoder.weight`.
    public var name: String
    /// The dimensions, outermost first, e.g. `[rows, columns]`; `[]` for a scalar.
    public var shape: [Int]
    /// The elements in row-major order; `values.count == shape.reduce(1, *)`.
    public var values: [Float]

    /// Creates a tensor; the shape and the element count are checked when it is written.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// The contents of a safetensors file: its tensors (converted to `Float`) and its metadata.
public struct SafeTensorsArchive: Sendable {
    /// The tensors, in the order of their data in the file (by byte offset).
    public var tensors: [NamedTensor]
    /// The string-to-string `__metadata__` of the header (empty when the file has none).
    public var metadata: [String: String]

    /// Creates an archive from tensors and metadata.
    public init(tensors: [NamedTensor], metadata: [String: String]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, or `nil` when the archive has none by that name.
    public func tensor(_ name: String) -> NamedTensor? {
        tensors.first { $0.name == name }
    }
}

/// A checkpoint that cannot be read or written. The description is one line,
/// `<path>: <what is wrong>`.
public enum CheckpointError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or read.
    case cannotRead(path: String, reason: String)
    /// The file is shorter than the 8-byte header length field.
    case fileTooShort(path: String, size: Int)
    /// The header length field exceeds the accepted bound.
    case headerTooLarge(path: String, length: UInt64, limit: Int)
    /// The header length field exceeds the bytes that follow it.
    case headerBeyondFile(path: String, length: UInt64, available: Int)
    /// The header is not valid UTF-8 (the byte offset is within the header).
    case headerNotUTF8(path: String, offset: Int)
    /// The header is not valid JSON.
    case headerNotJSON(path: String, detail: String)
    /// The header is JSON but not an object.
    case headerNotObject(path: String, found: String)
    /// A key appears twice in the header or in its metadata.
    case duplicateName(path: String, name: String)
    /// A tensor entry of the header is not a JSON object.
    case entryNotObject(path: String, tensor: String, found: String)
    /// A tensor entry lacks a required field.
    case missingField(path: String, tensor: String, field: String)
    /// A field of a tensor entry has the wrong JSON type or form.
    case wrongFieldType(path: String, tensor: String, field: String, expected: String)
    /// A tensor's dtype is not one that converts to `Float`.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// A tensor's shape has a negative dimension or a size that overflows.
    case invalidShape(path: String, tensor: String, reason: String)
    /// A tensor's data range reaches past the end of the data buffer.
    case offsetsOutOfBounds(path: String, tensor: String, begin: Int, end: Int, bufferSize: Int)
    /// A tensor's data range ends before it begins.
    case offsetsReversed(path: String, tensor: String, begin: Int, end: Int)
    /// A tensor's data range does not match its shape and dtype.
    case sizeMismatch(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// Two tensors' data ranges overlap.
    case overlappingTensors(path: String, first: String, second: String)
    /// Bytes of the data buffer that belong to no tensor (between tensors or at the end).
    case unusedBytes(path: String, begin: Int, end: Int)
    /// `__metadata__` is not an object of strings.
    case invalidMetadata(path: String, reason: String)
    /// A tensor given to the writer is malformed.
    case invalidTensor(path: String, tensor: String, reason: String)
    /// Writing the file failed; the previous file at the path is unchanged.
    case writeFailed(path: String, reason: String)

    /// One line naming the file and what is wrong with it.
    public var description: String {
        switch self {
        case let .cannotRead(path, reason):
            return "\(path): cannot read checkpoint: \(reason)"
        case let .fileTooShort(path, size):
            return "\(path): file is \(size) bytes, shorter than the 8-byte header length of a safetensors file"
        case let .headerTooLarge(path, length, limit):
            return "\(path): header length \(length) exceeds the limit of \(limit) bytes; not a safetensors file or corrupted"
        case let .headerBeyondFile(path, length, available):
            return "\(path): header length \(length) is larger than the \(available) bytes after it; file truncated or not safetensors"
        case let .headerNotUTF8(path, offset):
            return "\(path): header is not valid UTF-8 (at header byte \(offset))"
        case let .headerNotJSON(path, detail):
            return "\(path): header is not valid JSON: \(detail)"
        case let .headerNotObject(path, found):
            return "\(path): header must be a JSON object, found \(found)"
        case let .duplicateName(path, name):
            return "\(path): duplicate name \"\(name)\" in header"
        case let .entryNotObject(path, tensor, found):
            return "\(path): entry for tensor \"\(tensor)\" must be a JSON object, found \(found)"
        case let .missingField(path, tensor, field):
            return "\(path): tensor \"\(tensor)\" is missing field \"\(field)\""
        case let .wrongFieldType(path, tensor, field, expected):
            return "\(path): field \"\(field)\" of tensor \"\(tensor)\" must be \(expected)"
        case let .unsupportedDType(path, tensor, dtype):
            return "\(path): tensor \"\(tensor)\" has unsupported dtype \"\(dtype)\" (supported: F32, F16, BF16, F64)"
        case let .invalidShape(path, tensor, reason):
            return "\(path): tensor \"\(tensor)\" has an invalid shape: \(reason)"
        case let .offsetsOutOfBounds(path, tensor, begin, end, size):
            return "\(path): data_offsets [\(begin), \(end)] of tensor \"\(tensor)\" reach past the end of the \(size)-byte data buffer"
        case let .offsetsReversed(path, tensor, begin, end):
            return "\(path): data_offsets [\(begin), \(end)] of tensor \"\(tensor)\" end before they begin"
        case let .sizeMismatch(path, tensor, expected, actual):
            return "\(path): tensor \"\(tensor)\" has \(actual) data bytes but its shape and dtype need \(expected)"
        case let .overlappingTensors(path, first, second):
            return "\(path): data of tensors \"\(first)\" and \"\(second)\" overlap"
        case let .unusedBytes(path, begin, end):
            return "\(path): data bytes \(begin)..<\(end) belong to no tensor; file corrupted"
        case let .invalidMetadata(path, reason):
            return "\(path): invalid __metadata__: \(reason)"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): cannot write tensor \"\(tensor)\": \(reason)"
        case let .writeFailed(path, reason):
            return "\(path): cannot write checkpoint: \(reason)"
        }
    }
}

/// Reading and writing the safetensors checkpoint format.
///
/// A file is an 8-byte little-endian `UInt64` header length `N`, then `N` bytes of UTF-8 JSON
/// mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets
/// relative to the first byte after the header) plus an optional `"__metadata__"` object of
/// strings, then the little-endian, row-major tensor data. Files written here load in PyTorch
/// with `safetensors.torch.load_file`.
public enum SafeTensors {
    /// The largest header accepted when reading, in bytes (as in the reference implementation).
    public static let maxHeaderBytes = 100_000_000

    /// Writes `tensors` as `F32` in the given order, with `metadata` as the header's
    /// `__metadata__` (omitted when empty), atomically: a temporary file in the same directory
    /// is written, flushed to disk, renamed over `path`, and the directory is flushed.
    ///
    /// The header's keys are sorted (by UTF-8 bytes), so equal inputs give equal files; it is
    /// padded with spaces to a multiple of 8 bytes so the data starts 8-byte aligned.
    /// - Throws: `CheckpointError.invalidTensor` for an empty, reserved or repeated name, a
    ///   negative dimension, or a shape whose product differs from `values.count` (nothing is
    ///   written then); `CheckpointError.writeFailed` when the file cannot be written (the old
    ///   file at `path`, if any, is unchanged).
    public static func write(_ tensors: [NamedTensor], metadata: [String: String], to path: String) throws {
        let bytes = try encode(tensors, metadata: metadata, path: path)
        do {
            try AtomicFile.write(bytes, to: path)
        } catch let error as AtomicFileError {
            throw CheckpointError.writeFailed(path: path, reason: error.reason)
        }
    }

    /// The complete file contents for `tensors` and `metadata` (see `write`); `path` only
    /// names the destination in error messages.
    static func encode(_ tensors: [NamedTensor], metadata: [String: String], path: String) throws -> [UInt8] {
        var seen = Set<String>()
        var entries: [(key: String, json: String)] = []
        entries.reserveCapacity(tensors.count + 1)
        var offset = 0
        for tensor in tensors {
            guard !tensor.name.isEmpty else {
                throw CheckpointError.invalidTensor(path: path, tensor: tensor.name, reason: "empty name")
            }
            guard tensor.name != "__metadata__" else {
                throw CheckpointError.invalidTensor(path: path, tensor: tensor.name, reason: "the name is reserved for metadata")
            }
            guard seen.insert(tensor.name).inserted else {
                throw CheckpointError.invalidTensor(path: path, tensor: tensor.name, reason: "name given twice")
            }
            var count = 1
            for dim in tensor.shape {
                guard dim >= 0 else {
                    throw CheckpointError.invalidTensor(path: path, tensor: tensor.name, reason: "negative dimension in shape \(tensor.shape)")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow else {
                    throw CheckpointError.invalidTensor(path: path, tensor: tensor.name, reason: "shape \(tensor.shape) overflows")
                }
                count = product
            }
            guard count == tensor.values.count else {
                throw CheckpointError.invalidTensor(
                    path: path, tensor: tensor.name,
                    reason: "shape \(tensor.shape) holds \(count) values but \(tensor.values.count) were given")
            }
            let end = offset + 4 * count
            let shapeText = tensor.shape.map(String.init).joined(separator: ",")
            entries.append((tensor.name, "{\"data_offsets\":[\(offset),\(end)],\"dtype\":\"F32\",\"shape\":[\(shapeText)]}"))
            offset = end
        }
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            let body = pairs.map { jsonString($0.key) + ":" + jsonString($0.value) }.joined(separator: ",")
            entries.append(("__metadata__", "{" + body + "}"))
        }
        entries.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var header = Array(("{" + entries.map { jsonString($0.key) + ":" + $0.json }.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }

        var bytes = [UInt8]()
        bytes.reserveCapacity(8 + header.count + offset)
        let length = UInt64(header.count)
        for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(k)))) }
        bytes.append(contentsOf: header)
        for tensor in tensors {
            tensor.values.withUnsafeBufferPointer { values in
                #if _endian(little)
                bytes.append(contentsOf: UnsafeRawBufferPointer(values))
                #else
                for v in values {
                    let bits = v.bitPattern.littleEndian
                    withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
                }
                #endif
            }
        }
        return bytes
    }

    /// Reads and validates the safetensors file at `path`, converting every tensor to `Float`.
    /// - Throws: `CheckpointError` naming `path` and the first problem found.
    public static func read(path: String) throws -> SafeTensorsArchive {
        let bytes = try readFile(path)
        return try read(data: bytes, source: path)
    }

    /// Reads and validates safetensors bytes; `source` names them in error messages.
    ///
    /// Everything is checked before any tensor storage is allocated: header length against
    /// the data and `maxHeaderBytes`, UTF-8, JSON syntax, every entry's fields, dtypes
    /// (`F32`, and `F16`, `BF16`, `F64` converted to `Float`), shapes, and that the tensors'
    /// byte ranges match their shapes and tile the data buffer exactly, without overlap.
    /// - Throws: `CheckpointError` naming `source` and the first problem found.
    public static func read(data: [UInt8], source: String) throws -> SafeTensorsArchive {
        try data.withUnsafeBufferPointer { try decode($0, source: source) }
    }

    // MARK: - Decoding

    private enum DType: String {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
        var size: Int {
            switch self {
            case .f32: return 4
            case .f16, .bf16: return 2
            case .f64: return 8
            }
        }
    }

    private struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var count: Int
        var begin: Int
        var end: Int
    }

    private static func decode(_ file: UnsafeBufferPointer<UInt8>, source: String) throws -> SafeTensorsArchive {
        guard file.count >= 8 else { throw CheckpointError.fileTooShort(path: source, size: file.count) }
        var length: UInt64 = 0
        for k in 0..<8 { length |= UInt64(file[k]) << (8 * UInt64(k)) }
        guard length <= UInt64(maxHeaderBytes) else {
            throw CheckpointError.headerTooLarge(path: source, length: length, limit: maxHeaderBytes)
        }
        guard length <= UInt64(file.count - 8) else {
            throw CheckpointError.headerBeyondFile(path: source, length: length, available: file.count - 8)
        }
        let headerEnd = 8 + Int(length)
        let header = UnsafeBufferPointer(rebasing: file[8..<headerEnd])
        if let bad = firstInvalidUTF8(header) {
            throw CheckpointError.headerNotUTF8(path: source, offset: bad)
        }
        var parser = JSONParser(bytes: header)
        let root: JSONValue
        do {
            root = try parser.parseDocument()
        } catch let error as JSONParser.Failure {
            throw CheckpointError.headerNotJSON(path: source, detail: error.message)
        }
        guard case .object(let members) = root else {
            throw CheckpointError.headerNotObject(path: source, found: root.kind)
        }
        let bufferSize = file.count - headerEnd

        var names = Set<String>()
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            guard names.insert(name).inserted else { throw CheckpointError.duplicateName(path: source, name: name) }
            if name == "__metadata__" {
                metadata = try decodeMetadata(value, source: source)
            } else {
                entries.append(try decodeEntry(name: name, value: value, bufferSize: bufferSize, source: source))
            }
        }

        // The byte ranges must tile the data buffer: sorted by offset, each starts where the
        // previous one ended, and the last ends at the end of the file.
        entries.sort { a, b in
            if a.begin != b.begin { return a.begin < b.begin }
            if a.end != b.end { return a.end < b.end }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var position = 0
        var previous: String?
        for entry in entries {
            if entry.begin < position, let previous {
                throw CheckpointError.overlappingTensors(path: source, first: previous, second: entry.name)
            }
            if entry.begin > position {
                throw CheckpointError.unusedBytes(path: source, begin: position, end: entry.begin)
            }
            position = entry.end
            previous = entry.name
        }
        if position != bufferSize {
            throw CheckpointError.unusedBytes(path: source, begin: position, end: bufferSize)
        }

        let data = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(file)[headerEnd...])
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(entries.count)
        for entry in entries {
            let raw = UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end])
            let values = [Float](unsafeUninitializedCapacity: entry.count) { out, initialized in
                convert(raw, dtype: entry.dtype, into: out)
                initialized = entry.count
            }
            tensors.append(NamedTensor(name: entry.name, shape: entry.shape, values: values))
        }
        return SafeTensorsArchive(tensors: tensors, metadata: metadata)
    }

    private static func decodeMetadata(_ value: JSONValue, source: String) throws -> [String: String] {
        guard case .object(let pairs) = value else {
            throw CheckpointError.invalidMetadata(path: source, reason: "must be an object of strings, found \(value.kind)")
        }
        var metadata: [String: String] = [:]
        metadata.reserveCapacity(pairs.count)
        for (key, item) in pairs {
            guard case .string(let text) = item else {
                throw CheckpointError.invalidMetadata(path: source, reason: "value of \"\(key)\" must be a string, found \(item.kind)")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw CheckpointError.duplicateName(path: source, name: "__metadata__.\(key)")
            }
        }
        return metadata
    }

    private static func decodeEntry(name: String, value: JSONValue, bufferSize: Int, source: String) throws -> Entry {
        guard case .object(let fields) = value else {
            throw CheckpointError.entryNotObject(path: source, tensor: name, found: value.kind)
        }
        var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
        var fieldNames = Set<String>()
        for (key, item) in fields {
            guard fieldNames.insert(key).inserted else {
                throw CheckpointError.duplicateName(path: source, name: "\(name).\(key)")
            }
            switch key {
            case "dtype": dtypeValue = item
            case "shape": shapeValue = item
            case "data_offsets": offsetsValue = item
            default: break  // Unknown fields are ignored, as by the reference reader.
            }
        }
        guard let dtypeValue else { throw CheckpointError.missingField(path: source, tensor: name, field: "dtype") }
        guard let shapeValue else { throw CheckpointError.missingField(path: source, tensor: name, field: "shape") }
        guard let offsetsValue else { throw CheckpointError.missingField(path: source, tensor: name, field: "data_offsets") }

        guard case .string(let dtypeName) = dtypeValue else {
            throw CheckpointError.wrongFieldType(path: source, tensor: name, field: "dtype", expected: "a string")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw CheckpointError.unsupportedDType(path: source, tensor: name, dtype: dtypeName)
        }

        guard case .array(let dims) = shapeValue else {
            throw CheckpointError.wrongFieldType(path: source, tensor: name, field: "shape", expected: "an array of integers")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        var count = 1
        for dim in dims {
            guard case .number(let text) = dim, let n = integer(text) else {
                throw CheckpointError.wrongFieldType(path: source, tensor: name, field: "shape", expected: "an array of integers")
            }
            guard n >= 0 else {
                throw CheckpointError.invalidShape(path: source, tensor: name, reason: "negative dimension \(n)")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: n)
            guard !overflow else {
                throw CheckpointError.invalidShape(path: source, tensor: name, reason: "element count overflows")
            }
            count = product
            shape.append(n)
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else {
            throw CheckpointError.invalidShape(path: source, tensor: name, reason: "byte size overflows")
        }

        let offsetsExpected = "an array of two non-negative integers [begin, end]"
        guard case .array(let offsets) = offsetsValue, offsets.count == 2,
              case .number(let beginText) = offsets[0], let begin = integer(beginText), begin >= 0,
              case .number(let endText) = offsets[1], let end = integer(endText), end >= 0
        else {
            throw CheckpointError.wrongFieldType(path: source, tensor: name, field: "data_offsets", expected: offsetsExpected)
        }
        guard end >= begin else {
            throw CheckpointError.offsetsReversed(path: source, tensor: name, begin: begin, end: end)
        }
        guard end <= bufferSize else {
            throw CheckpointError.offsetsOutOfBounds(path: source, tensor: name, begin: begin, end: end, bufferSize: bufferSize)
        }
        guard end - begin == byteCount else {
            throw CheckpointError.sizeMismatch(path: source, tensor: name, expectedBytes: byteCount, actualBytes: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    /// A JSON number's text as an `Int`, or `nil` for fractions, exponents and overflow.
    private static func integer(_ text: String) -> Int? { Int(text) }

    /// Converts little-endian `dtype` elements to `Float`; `out.count` elements are written.
    private static func convert(_ raw: UnsafeRawBufferPointer, dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        guard n > 0, let dst = out.baseAddress, let src = raw.baseAddress else { return }
        switch dtype {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * n)
            #else
            for i in 0..<n {
                dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
            #endif
        case .f16:
            for i in 0..<n {
                dst[i] = floatFromHalf(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            for i in 0..<n {
                let bits = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                dst[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .f64:
            for i in 0..<n {
                dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
            }
        }
    }

    /// IEEE 754 binary16 bits to `Float` (exact: every half value is representable).
    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))  // Inf or NaN
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// The offset of the first byte that does not start or continue a valid UTF-8 sequence.
    private static func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// A JSON string literal for `text` (quotes, backslashes and control characters escaped;
    /// other characters kept as UTF-8).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
        return out
    }

    /// Reads a whole regular file.
    private static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw CheckpointError.cannotRead(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError.cannotRead(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        var readError: String?
        var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            while initialized < size, let base = buffer.baseAddress {
                let n = posixRead(fd, base + initialized, size - initialized)
                if n > 0 {
                    initialized += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    if n < 0 { readError = String(cString: strerror(errno)) }
                    break
                }
            }
        }
        if let readError { throw CheckpointError.cannotRead(path: path, reason: readError) }
        if bytes.count < size { bytes.removeAll() }  // The file shrank while being read.
        guard bytes.count == size else {
            throw CheckpointError.cannotRead(path: path, reason: "file changed while being read")
        }
        return bytes
    }
}

/// `read(2)` under a name that does not collide with `SafeTensors.read`.
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(fd, buffer, count)
    #else
    return Darwin.read(fd, buffer, count)
    #endif
}

// MARK: - JSON

/// A parsed JSON value; object members keep their order and duplicates, numbers their text.
enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// The JSON type's name, for messages.
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes (which must already be valid UTF-8).
/// Trailing whitespace is allowed (safetensors pads its header with spaces); nesting is
/// limited so hostile input cannot exhaust the stack.
struct JSONParser {
    /// A syntax error with the byte offset where it was found.
    struct Failure: Error {
        var message: String
    }

    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    static let maxDepth = 64

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Parses one value followed only by whitespace.
    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw fail("empty header") }
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    private func fail(_ message: String) -> Failure {
        Failure(message: "\(message) at header byte \(index)")
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("unexpected character")
        }
    }

    private mutating func expectWord(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard bytes.count - index >= n else { throw fail("unexpected end") }
        for k in 0..<n where bytes[index + k] != word.utf8Start[k] {
            throw fail("invalid literal")
        }
        index += n
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= JSONParser.maxDepth else { throw fail("nesting deeper than \(JSONParser.maxDepth) levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        index += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return .object(members)
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw fail("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return .array(items)
    }

    private mutating func parseString() throws -> String {
        index += 1  // opening quote
        var out: [UInt8] = []
        while true {
            // Copy the run of plain bytes up to the next quote, backslash or control character.
            let start = index
            while index < bytes.count {
                let b = bytes[index]
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
                index += 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            guard index < bytes.count else { throw fail("unterminated string") }
            let b = bytes[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw fail("unescaped control character in string") }
            // Escape sequence.
            index += 1
            guard index < bytes.count else { throw fail("unterminated string") }
            let e = bytes[index]
            index += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate escape") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    throw fail("unpaired surrogate escape")
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: UTF8.encode(scalar).map { Array($0) } ?? [])
            default:
                throw fail("invalid escape sequence")
            }
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws -> String {
        let start = index
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw fail("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw fail("invalid number") }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw fail("invalid number") }
            while isDigit(index) { index += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }
}
