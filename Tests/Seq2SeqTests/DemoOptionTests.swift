import Foundation
import TestSupport
import Testing

/// A non-finite demo budget is refused in one line before anything runs (it used to trap).
@Test(.enabled(if: builtExecutable("translate-toy") != nil, "translate-toy is not built next to the test bundle"))
func translateDemoRefusesANonFiniteBudget() throws {
    let r = try runProcess(builtExecutable("translate-toy") ?? "translate-toy", ["demo", "--time-budget", "nan", "--out", "/nonexistent/never"])
    #expect(r.status == 1 && r.stdout.isEmpty, "\(r.stdout)")
    #expect(r.stderr == "translate-toy: --time-budget: must be a positive number of seconds (got nan)\n", "\(r.stderr)")
}
