import Foundation
import TestSupport
import Testing

/// A demo step count below 1 is refused in one line before anything runs.
@Test(.enabled(if: builtExecutable("translate-toy") != nil, "translate-toy is not built next to the test bundle"))
func translateDemoRefusesZeroSteps() throws {
    let r = try runProcess(builtExecutable("translate-toy") ?? "translate-toy", ["demo", "--steps", "0", "--out", "/nonexistent/never"])
    #expect(r.status != 0 && r.stdout.isEmpty, "\(r.stdout)")
    #expect(r.stderr == "translate-toy: --steps: must be at least 1 (got 0)\n", "\(r.stderr)")
}
