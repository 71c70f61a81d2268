import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Removing a generated data folder quickly: one `unlink` per file through POSIX calls
/// (Foundation's recursive removal checks every file several times, which for tens of thousands
/// of frame PNGs takes minutes on a busy machine).
public enum FileTree {
    /// Removes `path` and everything below it; symbolic links are removed, never followed.
    /// A missing path is no error.
    /// - Throws: `FrameError.outputFailed` naming the entry that could not be removed.
    public static func remove(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw FrameError.outputFailed(path: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            guard let dir = opendir(path) else { throw FrameError.outputFailed(path: path, reason: String(cString: strerror(errno))) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
                }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { try remove(path + "/" + name) }
            guard rmdir(path) == 0 else { throw FrameError.outputFailed(path: path, reason: String(cString: strerror(errno))) }
        } else {
            guard unlink(path) == 0 else { throw FrameError.outputFailed(path: path, reason: String(cString: strerror(errno))) }
        }
    }
}
