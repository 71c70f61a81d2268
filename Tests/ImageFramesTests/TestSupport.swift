import Foundation
@testable import ImageFrames
import RecurrentCore
import TrainingCLI

/// A fresh temporary folder, removed by `cleanup()`.
struct TempFolder {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.path + "/imageframes-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// Writes a grey 8-bit PNG whose pixel (x, y) is `value(x, y)`.
func writeGrey(_ path: String, width: Int, height: Int, _ value: (Int, Int) -> UInt8 = { x, y in UInt8((x * 7 + y * 13) % 256) }) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    var pixels: [UInt8] = []
    for y in 0..<height { for x in 0..<width { pixels.append(value(x, y)) } }
    try PNGImage.write8(path: path, width: width, height: height, channels: 1, samples: pixels)
}

/// Every regular file under `root` (relative path -> contents).
func fileContents(under root: String) -> [String: Data] {
    var out: [String: Data] = [:]
    guard let walker = FileManager.default.enumerator(atPath: root) else { return out }
    for case let rel as String in walker {
        var isDir: ObjCBool = false
        let full = root + "/" + rel
        if FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = FileManager.default.contents(atPath: full)
        }
    }
    return out
}

/// The error thrown by `body`, or nil.
func thrownFrameError(_ body: () throws -> Void) -> FrameError? {
    do { try body() } catch let error as FrameError { return error } catch { return nil }
    return nil
}

/// Runs a prepared frame-classify training quietly (no progress output, loss.png drawn);
/// returns the report and the run (for its data and paths).
func quietRun(_ o: FrameTrainingOptions, _ t: TrainingConfiguration, evalEveryEpoch: Bool = false) throws
    -> (FrameTrainingReport, FrameTrainingRun) {
    let run = try FrameTrainingRun(options: o, training: t, evalEveryEpoch: evalEveryEpoch)
    run.engine.progressOutput = { _ in }
    run.engine.plotter = TrainingCLI.writeLossPlot
    return (try run.run(), run)
}
