import Foundation
import Testing
@testable import RecurrentCore

/// An independent reader of TFRecord event files, written from the format definitions:
/// CRC-32C computed bit by bit (no table), protocol-buffer fields decoded generically.
enum EventFileReader {
    static func crc32c(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0x82F6_3B78 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    static func unmask(_ m: UInt32) -> UInt32 {
        let rotated = m &- 0xA282_EAD8
        return (rotated << 15) | (rotated >> 17)
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * $1) } }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * $1) } }

    /// The payloads of every record, checking both checksums of each.
    static func records(_ data: [UInt8]) throws -> [[UInt8]] {
        struct Bad: Error { let what: String }
        var out: [[UInt8]] = []
        var at = 0
        while at < data.count {
            guard at + 12 <= data.count else { throw Bad(what: "truncated header at \(at)") }
            let length = Int(u64(data, at))
            guard unmask(u32(data, at + 8)) == crc32c(data[at..<(at + 8)]) else { throw Bad(what: "length checksum at \(at)") }
            let start = at + 12
            guard start + length + 4 <= data.count else { throw Bad(what: "truncated record at \(at)") }
            guard unmask(u32(data, start + length)) == crc32c(data[start..<(start + length)]) else {
                throw Bad(what: "payload checksum at \(at)")
            }
            out.append(Array(data[start..<(start + length)]))
            at = start + length + 4
        }
        return out
    }

    enum Field { case varint(UInt64), fixed64(UInt64), bytes([UInt8]), fixed32(UInt32) }

    /// Decodes a message into (field number, value) pairs in file order.
    static func fields(_ b: [UInt8]) -> [(Int, Field)] {
        var out: [(Int, Field)] = []
        var at = 0
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = b[at]; at += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return v }
                shift += 7
            }
        }
        while at < b.count {
            let key = varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: out.append((field, .varint(varint())))
            case 1: out.append((field, .fixed64(u64(b, at)))); at += 8
            case 2:
                let n = Int(varint())
                out.append((field, .bytes(Array(b[at..<(at + n)])))); at += n
            case 5: out.append((field, .fixed32(u32(b, at)))); at += 4
            default: fatalError("unexpected wire type \(key & 7)")
            }
        }
        return out
    }
}

@Suite("TensorBoard event files")
struct TensorBoardEventTests {
    @Test("CRC-32C matches the standard check value and the bitwise reference")
    func checksum() {
        // The check value of CRC-32C for the ASCII digits 1-9.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        var rng = SeededRandom(seed: 9)
        let bytes = (0..<1000).map { _ in UInt8(rng.uniform(0, 255.99)) }
        #expect(CRC32C.checksum(bytes) == EventFileReader.crc32c(bytes[...]))
    }

    @Test("an event file reads back with an independent reader: version record, steps, tags, values")
    func readBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try TensorBoardEventWriter(directory: dir, wallTime: 1_700_000_000.25)
        try writer.write(step: 10, scalars: [("train/loss", 2.5), ("train/lr", 0.002)], wallTime: 1_700_000_001.5)
        try writer.write(step: 300_000, scalars: [("val/val_loss", 1.4375)], wallTime: 1_700_000_002)
        #expect((writer.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))

        let data = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        let records = try EventFileReader.records(data)
        #expect(records.count == 3)

        let first = EventFileReader.fields(records[0])
        guard case .fixed64(let wt)? = first.first(where: { $0.0 == 1 })?.1,
              case .bytes(let version)? = first.first(where: { $0.0 == 3 })?.1 else {
            Issue.record("version record lacks wall_time or file_version"); return
        }
        #expect(Double(bitPattern: wt) == 1_700_000_000.25)
        #expect(String(decoding: version, as: UTF8.self) == "brain.Event:2")

        func scalars(_ record: [UInt8]) -> (step: UInt64, wall: Double, values: [(String, Float)]) {
            var step: UInt64 = 0, wall = 0.0, values: [(String, Float)] = []
            for (field, v) in EventFileReader.fields(record) {
                switch (field, v) {
                case (1, .fixed64(let bits)): wall = Double(bitPattern: bits)
                case (2, .varint(let s)): step = s
                case (5, .bytes(let summary)):
                    for (f, value) in EventFileReader.fields(summary) {
                        guard f == 1, case .bytes(let valueBytes) = value else { continue }
                        var tag = "", x: Float = .nan
                        for (vf, vv) in EventFileReader.fields(valueBytes) {
                            if vf == 1, case .bytes(let t) = vv { tag = String(decoding: t, as: UTF8.self) }
                            if vf == 2, case .fixed32(let bits) = vv { x = Float(bitPattern: bits) }
                        }
                        values.append((tag, x))
                    }
                default: break
                }
            }
            return (step, wall, values)
        }
        let a = scalars(records[1])
        #expect(a.step == 10 && a.wall == 1_700_000_001.5)
        #expect(a.values.map(\.0) == ["train/loss", "train/lr"])
        #expect(a.values.map(\.1) == [2.5, Float(0.002)])
        let b = scalars(records[2])
        #expect(b.step == 300_000)
        #expect(b.values.map(\.0) == ["val/val_loss"] && b.values.map(\.1) == [1.4375])
    }

    @Test("a corrupted payload byte is caught by the reader's checksum (the framing is checked, not assumed)")
    func corruptionDetected() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try TensorBoardEventWriter(directory: dir)
        try writer.write(step: 1, scalars: [("loss", 1)])
        var data = Array(try Data(contentsOf: URL(fileURLWithPath: writer.path)))
        data[data.count - 6] ^= 0x01
        #expect(throws: (any Error).self) { try EventFileReader.records(data) }
    }
}
