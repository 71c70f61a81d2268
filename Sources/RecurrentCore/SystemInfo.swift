/// A description of the machine a run uses, for `--verbose`.
public enum SystemInfo {
    /// One line about the machine, e.g. `threads: 2`.
    public static func summaryLine() -> String {
        "threads: \(Threading.defaultThreads)"
    }
}
