#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A failure while writing a file atomically; the previous contents of the path are untouched.
public struct AtomicFileError: Error, CustomStringConvertible, Sendable {
    /// The destination path that was being written.
    public var path: String
    /// What went wrong, e.g. `cannot create temporary file: No space left on device`.
    public var reason: String

    /// Creates an error for `path` with a one-line `reason`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// One line: `<path>: <reason>`.
    public var description: String { "\(path): \(reason)" }
}

/// Writes whole files so that readers see either the old contents or the new ones, never a
/// mixture or a truncated file, even if the process dies or the machine loses power half-way.
///
/// The bytes go to a temporary file in the destination's directory, which is flushed to disk
/// (`fsync`), then renamed over the destination; finally the directory itself is flushed so the
/// rename survives a crash. On any failure the temporary file is removed and the destination is
/// left as it was.
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically, replacing any existing file.
    /// - Throws: `AtomicFileError` naming the path and the failing step.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try write(buffer: $0, to: path, beforeRename: nil) }
    }

    /// Writes `data` to `path` atomically, replacing any existing file.
    /// - Throws: `AtomicFileError` naming the path and the failing step.
    public static func write(_ data: Data, to path: String) throws {
        try data.withUnsafeBytes { try write(buffer: $0, to: path, beforeRename: nil) }
    }

    /// Writes `text` encoded as UTF-8 to `path` atomically, replacing any existing file.
    /// - Throws: `AtomicFileError` naming the path and the failing step.
    public static func write(text: String, to path: String) throws {
        try write(Array(text.utf8), to: path)
    }

    /// The implementation; `beforeRename` runs after the temporary file is complete and synced,
    /// just before it replaces the destination (tests use it to simulate a failure there).
    static func write(
        buffer: UnsafeRawBufferPointer, to path: String, beforeRename: (() throws -> Void)?
    ) throws {
        guard !path.isEmpty else { throw AtomicFileError(path: path, reason: "empty output path") }
        let directory = parentDirectory(of: path)
        let nameStart = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let base = String(path[nameStart...])
        guard !base.isEmpty else {
            throw AtomicFileError(path: path, reason: "output path names a directory, not a file")
        }
        var temporary = ""
        var fd: Int32 = -1
        // A few attempts with different random suffixes in case of a name collision.
        for _ in 0..<8 {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            temporary = String(path[..<nameStart]) + ".\(base).tmp-\(getpid())-\(suffix)"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw AtomicFileError(path: path, reason: "cannot create temporary file in \(directory): \(errnoText())")
        }
        var failure: AtomicFileError?
        var offset = 0
        while offset < buffer.count, failure == nil, let start = buffer.baseAddress {
            let n = posixWrite(fd, start + offset, min(buffer.count - offset, 1 << 30))
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                failure = AtomicFileError(path: path, reason: "cannot write temporary file: \(n < 0 ? errnoText() : "no progress")")
            }
        }
        if failure == nil { FaultInjection.point(path, "written") }
        if failure == nil, fsync(fd) != 0 {
            failure = AtomicFileError(path: path, reason: "cannot flush temporary file to disk: \(errnoText())")
        }
        if close(fd) != 0, failure == nil {
            failure = AtomicFileError(path: path, reason: "cannot close temporary file: \(errnoText())")
        }
        if failure == nil { FaultInjection.point(path, "synced") }
        if failure == nil, let beforeRename {
            do {
                try beforeRename()
            } catch let error as AtomicFileError {
                failure = error
            } catch {
                failure = AtomicFileError(path: path, reason: "\(error)")
            }
        }
        if failure == nil, rename(temporary, path) != 0 {
            failure = AtomicFileError(path: path, reason: "cannot replace the file: \(errnoText())")
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        FaultInjection.point(path, "renamed")
        // Make the rename itself durable. Some file systems cannot sync a directory (EINVAL);
        // the data is in place either way, so only real I/O errors are reported.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            let result = fsync(dirFD)
            let code = errno
            close(dirFD)
            if result != 0 && code != EINVAL && code != ENOTSUP && code != EBADF {
                throw AtomicFileError(path: path, reason: "cannot flush directory \(directory) to disk: \(String(cString: strerror(code)))")
            }
        }
        FaultInjection.point(path, "directory-synced")
    }

    /// Removes the temporary files that writes by processes no longer running left in
    /// `directory` (a process killed half-way through `write` leaves its `.<name>.tmp-<pid>-<suffix>`).
    /// Files of a live process, and names of any other form, are kept.
    /// - Returns: the names removed.
    @discardableResult
    public static func removeStaleTemporaries(in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let pid = temporaryOwner(name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            if unlink(directory + "/" + name) == 0 { removed.append(name) }
        }
        return removed.sorted()
    }

    /// The process id in a temporary name `.<name>.tmp-<pid>-<suffix>` that `write` makes, or nil.
    static func temporaryOwner(_ name: String) -> pid_t? {
        guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
              marker.lowerBound > name.index(after: name.startIndex) else { return nil }
        let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let pid = pid_t(parts[0]), pid > 0, !parts[1].isEmpty,
              parts[1].allSatisfy({ $0.isASCII && ($0.isNumber || $0.isLowercase) }) else { return nil }
        return pid
    }

    /// The directory containing `path` (`.` for a bare file name, `/` for a file in the root).
    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// `write(2)` under a name that does not collide with `AtomicFile.write`.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}
