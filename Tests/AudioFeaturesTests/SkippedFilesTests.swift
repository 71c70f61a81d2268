import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

/// `speech-classify train` names every file it leaves out, one line each, as its help says.
@Suite(.enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SkippedFilesCommandLineTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    @Test func everySkippedFileIsListed() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try writeToneSet(into: data, perClass: 6, seed: 5)
        // 27 broken files of speaker s9 (training side of the split): more than any fixed number
        // of lines printed before a "more" count.
        var broken: Set<String> = []
        for i in 0..<27 {
            let url = data.appendingPathComponent("low_s9_\(100 + i).wav")
            try Data("not audio \(i)".utf8).write(to: url)
            broken.insert(url.path)
        }
        let r = try runProcess(tool, ["train", "--data", data.path, "--out", dir.path + "/run", "--split", "speaker:s1",
                                      "--hidden", "4", "--batch", "4", "--steps", "1", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let skipped = r.stderr.split(separator: "\n").filter { $0.hasPrefix("skipped: ") }.map(String.init)
        let named = Set(broken.filter { path in skipped.contains { $0.hasPrefix("skipped: \(path): ") } })
        #expect(named == broken, "missing: \(broken.subtracting(named).sorted())")
        #expect(skipped.count == 28 && skipped.last == "skipped: 27 files in all", "\(skipped)")
    }
}
