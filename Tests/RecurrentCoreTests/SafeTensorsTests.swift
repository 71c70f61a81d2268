import Foundation
import Testing
@testable import RecurrentCore

/// A fresh directory under the system's temporary directory, removed by `cleanup()`.
private struct ScratchDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "/safetensors-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A safetensors file assembled by hand: u64 little-endian length, header text, data bytes.
private func handBuilt(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    let length = lengthOverride ?? UInt64(headerBytes.count)
    var file: [UInt8] = (0..<8).map { UInt8((length >> (8 * UInt64($0))) & 0xFF) }
    file += headerBytes
    file += data
    return file
}

/// The error description produced by reading `bytes`, or `nil` when reading succeeds.
private func readError(_ bytes: [UInt8], source: String = "bad.safetensors") -> String? {
    do {
        _ = try SafeTensors.read(data: bytes, source: source)
        return nil
    } catch let error as CheckpointError {
        return error.description
    } catch {
        return "unexpected error type: \(error)"
    }
}

// MARK: - Writing and reading back

@Test func roundTripKeepsTensorsOrderAndMetadata() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let path = dir.file("model.safetensors")
    let tensors = [
        NamedTensor(name: "lstm.weight_ih_l0", shape: [2, 3], values: [1, -2, 3.5, 0, 1e-30, -7.25]),
        NamedTensor(name: "lstm.bias", shape: [4], values: [.pi, -.infinity, Float.greatestFiniteMagnitude, -0.0]),
        NamedTensor(name: "scalar", shape: [], values: [42]),
        NamedTensor(name: "empty", shape: [0, 5], values: []),
        NamedTensor(name: "Z.ünïcødé ✓", shape: [1, 1, 2], values: [0.5, -0.5]),
    ]
    let metadata = [
        "config": #"{"hidden": 8, "layers": [1, 2], "name": "a \"quoted\" \\ value"}"#,
        "vocab": "héllo wörld — 日本語 🎉",
        "controls": "tab\tnewline\nbell\u{07}",
        "": "empty key",
    ]
    try SafeTensors.write(tensors, metadata: metadata, to: path)
    let archive = try SafeTensors.read(path: path)
    #expect(archive.tensors == tensors)
    #expect(archive.metadata == metadata)
    #expect(archive.tensor("scalar")?.values == [42])
    #expect(archive.tensor("missing") == nil)
    // Only the file itself is left in the directory: no temporary files.
    #expect(try dir.contents() == ["model.safetensors"])
}

@Test func writerOutputMatchesTheFormatByteForByte() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let path = dir.file("small.safetensors")
    try SafeTensors.write(
        [NamedTensor(name: "b", shape: [2], values: [1.0, -2.0]), NamedTensor(name: "a", shape: [1], values: [0.5])],
        metadata: ["k": "v"], to: path)
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    // Keys sorted, data laid out in the given order (b first), header padded to 8 bytes.
    let json = #"{"__metadata__":{"k":"v"},"a":{"data_offsets":[8,12],"dtype":"F32","shape":[1]},"#
        + #""b":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}"#
    var header = Array(json.utf8)
    while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
    #expect(header.count == 136)  // 133 bytes of JSON + 3 spaces
    let expected: [UInt8] = [136, 0, 0, 0, 0, 0, 0, 0] + header
        + [0x00, 0x00, 0x80, 0x3F]  // 1.0
        + [0x00, 0x00, 0x00, 0xC0]  // -2.0
        + [0x00, 0x00, 0x00, 0x3F]  // 0.5
    #expect(bytes == expected)
}

@Test func writingTheSameInputTwiceGivesIdenticalFiles() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let tensors = [NamedTensor(name: "w", shape: [2, 2], values: [1, 2, 3, 4]), NamedTensor(name: "b", shape: [2], values: [5, 6])]
    let metadata = ["z": "1", "a": "2", "m": "3", "é": "4"]
    try SafeTensors.write(tensors, metadata: metadata, to: dir.file("one"))
    try SafeTensors.write(tensors, metadata: metadata, to: dir.file("two"))
    let one = try Data(contentsOf: URL(fileURLWithPath: dir.file("one")))
    let two = try Data(contentsOf: URL(fileURLWithPath: dir.file("two")))
    #expect(one == two)
}

@Test func handBuiltFileIsReadInOffsetOrder() throws {
    // Header written by hand in an arbitrary key order, with whitespace and padding.
    let header = """
        { "second" : {"shape": [3], "dtype": "F32", "data_offsets": [8, 20]},
          "__metadata__": {"format": "pt", "note": "caf\\u00e9 \\ud83d\\ude00"},
          "first": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]} }\("   ")
        """
    let data: [UInt8] = [
        0x00, 0x00, 0xC0, 0x3F,  // 1.5
        0x00, 0x00, 0x20, 0xC1,  // -10.0
        0x00, 0x00, 0x00, 0x00,  // 0.0
        0x00, 0x00, 0x80, 0x3E,  // 0.25
        0x00, 0x00, 0xC8, 0x42,  // 100.0
    ]
    let archive = try SafeTensors.read(data: handBuilt(header: header, data: data), source: "hand.safetensors")
    #expect(archive.tensors.map(\.name) == ["first", "second"])
    #expect(archive.tensors[0].shape == [1, 2])
    #expect(archive.tensors[0].values == [1.5, -10])
    #expect(archive.tensors[1].shape == [3])
    #expect(archive.tensors[1].values == [0, 0.25, 100])
    #expect(archive.metadata == ["format": "pt", "note": "café 😀"])
}

@Test func halfBFloatAndDoubleConvertToFloat() throws {
    // F16 bit patterns and their values worked out from the binary16 definition.
    let halves: [(UInt16, Float)] = [
        (0x3C00, 1.0), (0xC000, -2.0), (0x3555, 0.333251953125), (0x7BFF, 65504),
        (0x0001, 5.960464477539063e-08), (0x03FF, 6.097555160522461e-05), (0x0400, 6.103515625e-05),
        (0x8000, -0.0), (0x7C00, .infinity), (0xFC00, -.infinity),
    ]
    // BF16: the upper 16 bits of the Float32 pattern.
    let bfloats: [(UInt16, Float)] = [(0x3F80, 1.0), (0xC0A0, -5.0), (0x4049, 3.140625), (0x3E80, 0.25)]
    // F64 bit patterns: 1.5, -100, 0.1 (rounded to the nearest Float).
    let doubles: [(UInt64, Float)] = [(0x3FF8_0000_0000_0000, 1.5), (0xC059_0000_0000_0000, -100), (0x3FB9_9999_9999_999A, 0.1)]

    var data: [UInt8] = []
    for (bits, _) in halves { data += [UInt8(bits & 0xFF), UInt8(bits >> 8)] }
    let halfEnd = data.count
    for (bits, _) in bfloats { data += [UInt8(bits & 0xFF), UInt8(bits >> 8)] }
    let bfEnd = data.count
    for (bits, _) in doubles { data += (0..<8).map { UInt8((bits >> (8 * UInt64($0))) & 0xFF) } }
    let header = """
        {"h":{"dtype":"F16","shape":[\(halves.count)],"data_offsets":[0,\(halfEnd)]},\
        "b":{"dtype":"BF16","shape":[2,2],"data_offsets":[\(halfEnd),\(bfEnd)]},\
        "d":{"dtype":"F64","shape":[3],"data_offsets":[\(bfEnd),\(data.count)]}}
        """
    let archive = try SafeTensors.read(data: handBuilt(header: header, data: data), source: "mixed")
    let h = try #require(archive.tensor("h"))
    #expect(h.values == halves.map(\.1))
    #expect(h.values[7].sign == .minus)
    let b = try #require(archive.tensor("b"))
    #expect(b.shape == [2, 2])
    #expect(b.values == bfloats.map(\.1))
    #expect(try #require(archive.tensor("d")).values == doubles.map(\.1))
    // Half NaN stays NaN.
    #expect(SafeTensors.floatFromHalf(0x7E00).isNaN)
}

// MARK: - Malformed files

@Test func shortAndOversizedHeadersAreRejected() throws {
    #expect(readError([1, 2, 3, 4, 5])?.contains("bad.safetensors: file is 5 bytes, shorter than the 8-byte") == true)
    #expect(readError(handBuilt(header: "{}", data: [], lengthOverride: 200_000_000))?.contains("exceeds the limit of 100000000") == true)
    #expect(readError(handBuilt(header: "{}", data: [], lengthOverride: UInt64.max))?.contains("exceeds the limit") == true)
    #expect(readError(handBuilt(header: "{}", data: [], lengthOverride: 3))?.contains("header length 3 is larger than the 2 bytes") == true)
    // An empty but valid file.
    let empty = try SafeTensors.read(data: handBuilt(header: "{}", data: []), source: "empty")
    #expect(empty.tensors.isEmpty && empty.metadata.isEmpty)
}

@Test func headersThatAreNotUTF8JSONObjectsAreRejected() {
    var invalidUTF8 = handBuilt(header: "{\"a\":\"xx\"}", data: [])
    invalidUTF8[8 + 6] = 0xFF
    #expect(readError(invalidUTF8)?.contains("header is not valid UTF-8 (at header byte 6)") == true)
    var overlong = handBuilt(header: "{\"a\":\"xx\"}", data: [])
    overlong[8 + 6] = 0xC0; overlong[8 + 7] = 0xAF  // overlong encoding of "/"
    #expect(readError(overlong)?.contains("not valid UTF-8") == true)
    for text in ["", "   ", "{\"a\":", "{\"a\" 1}", "{} x", "{'a': 1}", "{\"a\":01}", "{\"a\":tru}", "{\"a\":\"\\x\"}",
                 "{\"a\":\"\\ud800\"}", "{\"a\":\"line\nbreak\"}", "{\"a\":1,}", "[1,]"] {
        #expect(readError(handBuilt(header: text, data: []))?.contains("bad.safetensors: header is not valid JSON") == true, "\(text)")
    }
    let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    #expect(readError(handBuilt(header: deep, data: []))?.contains("nesting deeper than") == true)
    #expect(readError(handBuilt(header: "[1, 2]", data: []))?.contains("header must be a JSON object, found an array") == true)
    #expect(readError(handBuilt(header: "\"text\"", data: []))?.contains("found a string") == true)
}

@Test func malformedEntriesAreRejectedWithTheirOwnMessages() {
    let four: [UInt8] = [0, 0, 0x80, 0x3F]
    let cases: [(String, [UInt8], String)] = [
        (#"{"w": 5}"#, four, #"entry for tensor "w" must be a JSON object, found a number"#),
        (#"{"w": {"shape":[1],"data_offsets":[0,4]}}"#, four, #"tensor "w" is missing field "dtype""#),
        (#"{"w": {"dtype":"F32","data_offsets":[0,4]}}"#, four, #"tensor "w" is missing field "shape""#),
        (#"{"w": {"dtype":"F32","shape":[1]}}"#, four, #"tensor "w" is missing field "data_offsets""#),
        (#"{"w": {"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, four, #"field "dtype" of tensor "w" must be a string"#),
        (#"{"w": {"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, four, #"field "shape" of tensor "w" must be an array of integers"#),
        (#"{"w": {"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, four, #"field "shape" of tensor "w""#),
        (#"{"w": {"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#, four, #"field "shape" of tensor "w""#),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, four, #"field "data_offsets" of tensor "w" must be an array of two"#),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#, four, #"field "data_offsets""#),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}"#, four, #"field "data_offsets""#),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, four, #"field "data_offsets""#),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999999]}}"#, four, #"field "data_offsets""#),
        (#"{"w": {"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, four + four, #"tensor "w" has unsupported dtype "I64""#),
        (#"{"w": {"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, four, #"unsupported dtype "f32""#),
        (#"{"w": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, four, #"tensor "w" has an invalid shape: negative dimension -1"#),
        (#"{"w": {"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, four, "element count overflows"),
        (#"{"w": {"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}"#, four, "byte size overflows"),
        (#"{"w": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, four, "data_offsets [0, 8] of tensor \"w\" reach past the end of the 4-byte data buffer"),
        (#"{"w": {"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, four, "data_offsets [4, 0] of tensor \"w\" end before they begin"),
        (#"{"w": {"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, four, #"tensor "w" has 4 data bytes but its shape and dtype need 8"#),
        (#"{"w": {"dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, four, "has 4 data bytes but its shape and dtype need 2"),
        (#"{"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}, "b": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
         four + four, #"data of tensors "a" and "b" overlap"#),
        (#"{"a": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, four + four, "data bytes 0..<4 belong to no tensor"),
        (#"{"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, four + four, "data bytes 4..<8 belong to no tensor"),
        (#"{"a": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a": {"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
         four + four, #"duplicate name "a" in header"#),
        (#"{"a": {"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}"#, four, #"duplicate name "a.dtype""#),
        (#"{"__metadata__": {"k": 1}}"#, [], #"invalid __metadata__: value of "k" must be a string, found a number"#),
        (#"{"__metadata__": {"k": null}}"#, [], #"value of "k" must be a string, found null"#),
        (#"{"__metadata__": ["a"]}"#, [], "invalid __metadata__: must be an object of strings, found an array"),
        (#"{"__metadata__": {"k": "1", "k": "2"}}"#, [], #"duplicate name "__metadata__.k""#),
    ]
    for (header, data, message) in cases {
        let description = readError(handBuilt(header: header, data: data))
        #expect(description?.hasPrefix("bad.safetensors: ") == true, "\(header)")
        #expect(description?.contains(message) == true, "\(header) -> \(description ?? "no error")")
        #expect(description?.contains("\n") == false)
    }
}

@Test func missingAndTruncatedFilesAreReportedWithTheirPath() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let missing = dir.file("nope.safetensors")
    #expect(throws: CheckpointError.self) { try SafeTensors.read(path: missing) }
    do {
        _ = try SafeTensors.read(path: missing)
    } catch {
        #expect("\(error)".hasPrefix("\(missing): cannot read checkpoint: No such file"))
    }
    // A valid file cut short loses the end of its data.
    let path = dir.file("cut.safetensors")
    try SafeTensors.write([NamedTensor(name: "w", shape: [4], values: [1, 2, 3, 4])], metadata: [:], to: path)
    var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    bytes.removeLast(3)
    try AtomicFile.write(bytes, to: path)
    do {
        _ = try SafeTensors.read(path: path)
        Issue.record("truncated file was accepted")
    } catch {
        #expect("\(error)" == "\(path): data_offsets [0, 16] of tensor \"w\" reach past the end of the 13-byte data buffer")
    }
    // A directory is not a checkpoint.
    #expect(throws: CheckpointError.self) { try SafeTensors.read(path: dir.path) }
}

// MARK: - Writer validation and atomicity

@Test func invalidTensorsAreRejectedBeforeAnythingIsWritten() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let path = dir.file("out.safetensors")
    let cases: [([NamedTensor], String)] = [
        ([NamedTensor(name: "w", shape: [2, 3], values: [1, 2, 3, 4, 5])], "shape [2, 3] holds 6 values but 5 were given"),
        ([NamedTensor(name: "w", shape: [-1], values: [])], "negative dimension"),
        ([NamedTensor(name: "", shape: [1], values: [1])], "empty name"),
        ([NamedTensor(name: "__metadata__", shape: [1], values: [1])], "reserved"),
        ([NamedTensor(name: "w", shape: [1], values: [1]), NamedTensor(name: "w", shape: [1], values: [2])], "name given twice"),
    ]
    for (tensors, message) in cases {
        do {
            try SafeTensors.write(tensors, metadata: [:], to: path)
            Issue.record("accepted: \(message)")
        } catch {
            #expect("\(error)".hasPrefix("\(path): cannot write tensor"))
            #expect("\(error)".contains(message))
        }
    }
    #expect(try dir.contents().isEmpty)
}

@Test func failedWritesLeaveTheOldFileIntact() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let path = dir.file("model.safetensors")
    let original = [NamedTensor(name: "w", shape: [2], values: [1, 2])]
    try SafeTensors.write(original, metadata: ["version": "1"], to: path)
    let before = try Data(contentsOf: URL(fileURLWithPath: path))

    // 1. Invalid input: nothing is touched.
    #expect(throws: CheckpointError.self) {
        try SafeTensors.write([NamedTensor(name: "w", shape: [3], values: [1])], metadata: [:], to: path)
    }
    // 2. A failure after the temporary file is complete, just before it would replace the
    //    old one (as when the process is killed there): the old file survives, and the
    //    temporary file is removed.
    let replacement = [UInt8](repeating: 0xAB, count: 1000)
    do {
        try replacement.withUnsafeBytes { buffer in
            try AtomicFile.write(buffer: buffer, to: path, beforeRename: {
                // The temporary file exists next to the destination at this point.
                let names = try dir.contents()
                #expect(names.count == 2)
                #expect(names.contains { $0.hasPrefix(".model.safetensors.tmp-") })
                throw AtomicFileError(path: path, reason: "simulated failure")
            })
        }
        Issue.record("simulated failure was not reported")
    } catch {
        #expect("\(error)" == "\(path): simulated failure")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    #expect(try dir.contents() == ["model.safetensors"])
    #expect(try SafeTensors.read(path: path).tensors == original)

    // 3. The destination's directory has disappeared: the write fails cleanly.
    let gone = dir.file("removed/model.safetensors")
    do {
        try SafeTensors.write(original, metadata: [:], to: gone)
        Issue.record("write into a missing directory succeeded")
    } catch {
        #expect("\(error)".hasPrefix("\(gone): cannot write checkpoint: cannot create temporary file in \(dir.path)/removed"))
    }

    // 4. The destination is a directory: the rename fails, the directory is untouched and
    //    no temporary file is left behind.
    let occupied = dir.file("occupied")
    try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: false)
    try AtomicFile.write(text: "keep", to: occupied + "/inside.txt")
    do {
        try SafeTensors.write(original, metadata: [:], to: occupied)
        Issue.record("replacing a directory succeeded")
    } catch {
        #expect("\(error)".hasPrefix("\(occupied): cannot write checkpoint: cannot replace the file"))
    }
    #expect(try String(contentsOfFile: occupied + "/inside.txt", encoding: .utf8) == "keep")
    #expect(try dir.contents() == ["model.safetensors", "occupied"])
}

@Test func atomicFileReplacesContentsCompletely() throws {
    let dir = try ScratchDirectory()
    defer { dir.cleanup() }
    let path = dir.file("log.csv")
    try AtomicFile.write(text: "step,loss\n1,2.5\n2,2.25\n", to: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "step,loss\n1,2.5\n2,2.25\n")
    // A shorter replacement leaves no tail of the old contents.
    try AtomicFile.write(Data("x\n".utf8), to: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8) == "x\n")
    try AtomicFile.write([UInt8](), to: path)
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
    // A relative path in the current directory resolves next to it.
    #expect(AtomicFile.parentDirectory(of: "log.csv") == ".")
    #expect(AtomicFile.parentDirectory(of: "/log.csv") == "/")
    #expect(AtomicFile.parentDirectory(of: "a/b/log.csv") == "a/b")
    #expect(try dir.contents() == ["log.csv"])
}
