import Foundation
import RecurrentCore
import Testing
@testable import TrainingCLI

/// Foundation's file-system errors become `<path>: <reason>`, whatever call threw them.
@Suite struct FileSystemErrorTests {
    func thrown(_ body: () throws -> Void) -> (any Error)? {
        do { try body(); return nil } catch { return error }
    }

    @Test func foundationErrorsBecomePathAndReason() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/fs-errors-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/plain"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let cases: [(() throws -> Void, String)] = [
            ({ try FileManager.default.createDirectory(atPath: file + "/sub", withIntermediateDirectories: true) },
             "\(file)/sub: not a folder (or a part of the path is not)"),
            ({ try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: false) },
             "\(file): exists and is not a folder"),
            ({ _ = try Data(contentsOf: URL(fileURLWithPath: dir + "/missing")) }, "\(dir)/missing: no such file or folder"),
            ({ _ = try Data(contentsOf: URL(fileURLWithPath: dir)) }, "\(dir): is a folder"),
            ({ _ = try FileManager.default.contentsOfDirectory(atPath: file) }, "\(file): not a folder (or a part of the path is not)"),
            ({ try Data([1, 2, 3]).write(to: URL(fileURLWithPath: "/dev/full")) }, "/dev/full: no space left on device"),
        ]
        for (body, expected) in cases {
            guard let e = thrown(body) else { Issue.record("no error for \(expected)"); continue }
            #expect(TrainingCLI.describe(e) == expected)
            #expect(!TrainingCLI.describe(e).contains("NSCocoaErrorDomain"))
        }
        // The Cocoa code alone, without an underlying POSIX error, still gives a reason.
        let bare = NSError(domain: NSCocoaErrorDomain, code: CocoaError.fileWriteVolumeReadOnly.rawValue,
                           userInfo: [NSFilePathErrorKey: "/mnt/x"])
        #expect(TrainingCLI.describe(bare) == "/mnt/x: read-only file system")
        // Any other error describes itself.
        #expect(TrainingCLI.describe(AtomicFileError(path: "a", reason: "b")) == "a: b")
    }
}
