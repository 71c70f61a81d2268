import RecurrentCore
import Foundation
import Testing
@testable import AudioFeatures

/// A fresh temporary directory for one test.
func makeTempDir(_ name: String = #function) throws -> URL {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("AudioFeaturesTests-\(clean)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Bytes of a canonical RIFF/WAVE file built by hand (independent of libsndfile).
/// `formatTag` 1 = PCM, 3 = IEEE float. `dataSizeOverride`/`riffSizeOverride` write lying sizes.
func wavBytes(formatTag: UInt16 = 1, channels: UInt16, sampleRate: UInt32, bitsPerSample: UInt16,
              data: [UInt8], dataSizeOverride: UInt32? = nil, riffSizeOverride: UInt32? = nil) -> [UInt8] {
    func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
    let blockAlign = channels * bitsPerSample / 8
    var fmt: [UInt8] = le16(formatTag) + le16(channels) + le32(sampleRate)
    fmt += le32(sampleRate * UInt32(blockAlign)) + le16(blockAlign) + le16(bitsPerSample)
    let body: [UInt8] = Array("WAVE".utf8) + Array("fmt ".utf8) + le32(UInt32(fmt.count)) + fmt
        + Array("data".utf8) + le32(dataSizeOverride ?? UInt32(data.count)) + data
    return Array("RIFF".utf8) + le32(riffSizeOverride ?? UInt32(body.count)) + body
}

/// Little-endian int16 bytes.
func int16Bytes(_ v: [Int16]) -> [UInt8] {
    v.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xff), UInt8(UInt16(bitPattern: $0) >> 8)] }
}

/// Little-endian float32 bytes.
func float32Bytes(_ v: [Float]) -> [UInt8] {
    v.flatMap { f -> [UInt8] in let b = f.bitPattern; return (0..<4).map { UInt8((b >> (8 * $0)) & 0xff) } }
}

func writeBytes(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
}

/// Reads a numeric CSV fixture as rows.
func readCSV(_ url: URL) throws -> [[Double]] {
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.split(separator: "\n").map { line in line.split(separator: ",").map { Double($0)! } }
}

/// URL of a file in the test bundle's Fixtures folder.
func fixture(_ name: String) throws -> URL {
    guard let base = Bundle.module.resourceURL else { throw CocoaError(.fileNoSuchFile) }
    return base.appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// Catches the error `body` throws (nil when it does not throw).
func caught(_ body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}

/// Probabilities by file and label from `speech-classify predict --format json` lines.
func predictedProbabilities(_ stdout: String) throws -> [String: [String: Double]] {
    var out: [String: [String: Double]] = [:]
    for line in stdout.split(separator: "\n") {
        let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let top = try #require(o["top"] as? [[String: Any]])
        out[try #require(o["input"] as? String)] = Dictionary(uniqueKeysWithValues: top.map { ($0["label"] as! String, $0["probability"] as! Double) })
    }
    return out
}
