import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The folder of one training run: `config.json`, `log.csv`, `loss.png`, the TensorBoard event
/// files, `last.safetensors`, `best.safetensors` and the resume file. Every tool uses the same
/// layout; without `--out` a run gets a new folder `runs/<tool>/<YYYYMMDD-HHMMSS>[-N]`.
public enum RunFolder {
    /// Files a run writes (besides `events.out.tfevents.*`); any of them marks a folder as
    /// holding a run.
    public static let runFiles = ["config.json", "log.csv", "loss.png", "last.safetensors", "best.safetensors", "last.train.safetensors"]
    /// The prefix of TensorBoard event files.
    public static let eventFilePrefix = "events.out.tfevents."

    /// The run files present in `path`, in name order (empty when the folder is missing or
    /// holds no run).
    public static func runFilesPresent(in path: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { runFiles.contains($0) || $0.hasPrefix(eventFilePrefix) }.sorted()
    }

    /// Refuses a new run in a folder that holds one (unless `overwrite`).
    /// - Throws: `RunFolderError.holdsRun` naming the folder and its run files.
    public static func requireFree(_ path: String, overwrite: Bool) throws {
        let present = runFilesPresent(in: path)
        if !present.isEmpty && !overwrite { throw RunFolderError.holdsRun(path: path, files: present) }
    }

    /// Removes the run files of `path` (for `--overwrite`); other files stay.
    public static func clear(_ path: String) throws {
        for name in runFilesPresent(in: path) { try FileManager.default.removeItem(atPath: path + "/" + name) }
    }

    /// `YYYYMMDD-HHMMSS` of `date` in local time.
    public static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: date)
    }

    /// Creates and returns a new, empty run folder `root/<timestamp>`, or `root/<timestamp>-N`
    /// (N = 1, 2, …) when that name is taken; the folder is claimed with one `mkdir`, so two runs
    /// started in the same second get different folders.
    /// - Throws: a file-system error naming `root` when it cannot be created.
    public static func createNew(root: String, date: Date = Date()) throws -> String {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let base = root + "/" + timestamp(date)
        for n in 0..<10_000 {
            let path = n == 0 ? base : "\(base)-\(n)"
            if mkdir(path, 0o755) == 0 { return path }
            if errno != EEXIST {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
            }
        }
        throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: base])
    }
}

/// A run folder that cannot be used as asked.
public enum RunFolderError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A new run was asked for in a folder that holds one.
    case holdsRun(path: String, files: [String])
    /// `--resume DIR` with an `--out` naming another folder.
    case outDiffers(resume: String, out: String)

    /// One line naming the folder and how to go on.
    public var description: String {
        switch self {
        case let .holdsRun(p, files):
            let list = files.prefix(4).joined(separator: ", ") + (files.count > 4 ? ", …" : "")
            return "\(p): holds a run (\(list)); use --resume \(p) to continue it, --overwrite to replace it, or another --out"
        case let .outDiffers(r, o):
            return "--out: a resumed run writes into its own folder \(r), not \(o); leave --out out"
        }
    }
}
