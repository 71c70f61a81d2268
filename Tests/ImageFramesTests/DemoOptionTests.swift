import Foundation
import TestSupport
import Testing

/// A demo step count below 1 is refused in one line before any data is generated.
@Test(.enabled(if: builtExecutable("frame-classify") != nil, "frame-classify is not built next to the test bundle"))
func frameDemoRefusesZeroSteps() throws {
    let dir = FileManager.default.temporaryDirectory.path + "/frame-demo-" + UUID().uuidString
    let r = try runProcess(builtExecutable("frame-classify") ?? "frame-classify", ["demo", "--steps", "0", "--dir", dir])
    #expect(r.status != 0)
    #expect(r.stderr == "frame-classify: --steps: must be at least 1 (got 0)\n", "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir))
}
