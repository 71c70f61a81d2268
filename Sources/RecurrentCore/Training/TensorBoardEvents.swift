import Foundation

/// Writes TensorBoard scalar event files (`events.out.tfevents.*`), so `tensorboard --logdir
/// runs` draws every run's curves side by side.
///
/// Format: a TFRecord file (each record: the payload length as a little-endian UInt64, the
/// masked CRC-32C of those 8 bytes, the payload, the masked CRC-32C of the payload) whose
/// payloads are `tensorflow.Event` protocol-buffer messages. The first event carries
/// `file_version = "brain.Event:2"`; every later one a `wall_time`, a `step` and a `Summary`
/// of `simple_value` scalars. The few message fields are encoded here by hand:
///
/// - `Event`: 1 `wall_time` (double), 2 `step` (int64), 3 `file_version` (string), 5 `summary`;
/// - `Summary`: 1 `value` (repeated); `Summary.Value`: 1 `tag` (string), 2 `simple_value` (float).
///
/// Each record is appended and flushed as it is written, so a run killed at any moment leaves
/// a readable file whose last record at worst is cut short (TensorBoard skips it).
public final class TensorBoardEventWriter {
    /// The event file.
    public let path: String
    private let handle: FileHandle

    /// Creates `directory/events.out.tfevents.<seconds>.<host>.<pid>` (with `.1`, `.2`, … added
    /// when a writer of the same process and second made that name already) and writes the
    /// version record. A new file per writer: TensorBoard reads every event file of a folder.
    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
        let base = directory + "/events.out.tfevents.\(Int(wallTime)).\(host).\(getpid())"
        var name = base, n = 0
        while FileManager.default.fileExists(atPath: name) { n += 1; name = "\(base).\(n)" }
        path = name
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        var event = ProtoWriter()
        event.double(field: 1, wallTime)
        event.string(field: 3, "brain.Event:2")
        try append(record: event.bytes)
    }

    deinit { try? handle.close() }

    /// Appends one event holding `scalars` (tag → value) at `step`; non-finite values are
    /// written as they are (TensorBoard shows them as gaps).
    public func write(step: Int, scalars: [(tag: String, value: Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        var summary = ProtoWriter()
        for s in scalars {
            var value = ProtoWriter()
            value.string(field: 1, s.tag)
            value.float(field: 2, Float(s.value))
            summary.message(field: 1, value.bytes)
        }
        var event = ProtoWriter()
        event.double(field: 1, wallTime)
        event.varint(field: 2, UInt64(bitPattern: Int64(step)))
        event.message(field: 5, summary.bytes)
        try append(record: event.bytes)
    }

    /// Appends a `SessionLog` START event at `step` (Event field 7, status 1): a resumed run
    /// starts again there, and TensorBoard drops the points after `step` that an interrupted
    /// process wrote but never saved.
    public func writeSessionStart(step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        var session = ProtoWriter()
        session.varint(field: 1, 1)
        var event = ProtoWriter()
        event.double(field: 1, wallTime)
        event.varint(field: 2, UInt64(bitPattern: Int64(step)))
        event.message(field: 7, session.bytes)
        try append(record: event.bytes)
    }

    private func append(record payload: [UInt8]) throws {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 16)
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
        out += lengthBytes
        appendLittleEndian(&out, CRC32C.masked(lengthBytes))
        out += payload
        appendLittleEndian(&out, CRC32C.masked(payload))
        try handle.write(contentsOf: out)
        try handle.synchronize()
    }

    private func appendLittleEndian(_ out: inout [UInt8], _ v: UInt32) {
        for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, and the masking
/// TFRecord applies to stored checksums.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The CRC-32C of `bytes` (initial value and final xor 0xFFFFFFFF).
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form: rotate right by 15 bits, add 0xa282ead8.
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// The protocol-buffer wire format, for the few fields of the event messages.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(field: Int, _ v: UInt64) { key(field, wireType: 0); rawVarint(v) }

    mutating func double(field: Int, _ v: Double) {
        key(field, wireType: 1)
        for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt64(k)))) }
    }

    mutating func float(field: Int, _ v: Float) {
        key(field, wireType: 5)
        for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt32(k)))) }
    }

    mutating func message(field: Int, _ payload: [UInt8]) {
        key(field, wireType: 2)
        rawVarint(UInt64(payload.count))
        bytes += payload
    }

    mutating func string(field: Int, _ s: String) { message(field: field, Array(s.utf8)) }
}
