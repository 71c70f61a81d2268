import Foundation
import TestSupport
import Testing

/// A non-finite demo budget is refused in one line before any data is generated.
@Test(.enabled(if: builtExecutable("frame-classify") != nil, "frame-classify is not built next to the test bundle"))
func frameDemoRefusesANonFiniteBudget() throws {
    let dir = FileManager.default.temporaryDirectory.path + "/frame-demo-" + UUID().uuidString
    let r = try runProcess(builtExecutable("frame-classify") ?? "frame-classify", ["demo", "--seconds", "nan", "--dir", dir])
    #expect(r.status == 1)
    #expect(r.stderr == "frame-classify: --seconds: must be a positive number of seconds (got nan)\n", "\(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir))
}
