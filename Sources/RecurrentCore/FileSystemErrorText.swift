#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Foundation's file-system errors as one line `<path>: <reason>`.
///
/// `FileManager`, `Data(contentsOf:)`, `String(contentsOfFile:)` and friends throw `NSError`s
/// of the Cocoa domain whose default text is `Error Domain=NSCocoaErrorDomain Code=512 "(null)"
/// UserInfo={...}`. The reason is taken from the underlying POSIX error when there is one (it
/// says what really happened: "not a folder", "no space left on device"), else from the Cocoa
/// code; the path from the error's `NSFilePath` or `NSURL`.
public enum FileSystemErrorText {
    /// `"<path>: <reason>"` for a Foundation file-system error; `nil` for any other error.
    /// - Parameter path: the path to name when the error carries none.
    public static func line(_ error: any Error, path: String? = nil) -> String? {
        guard let reason = reason(error) else { return nil }
        guard let p = self.path(error) ?? path else { return reason }
        return "\(p): \(reasonInContext(error, path: p) ?? reason)"
    }

    /// The reason alone (`"permission denied"`, `"not a folder"`, ...) for a Foundation
    /// file-system error; `nil` for any other error.
    public static func reason(_ error: any Error) -> String? {
        if let code = posixCode(error) { return posixReason(code) }
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain else { return nil }
        if let code = posixCode(ns.userInfo[NSUnderlyingErrorKey]) { return posixReason(code) }
        switch ns.code {
        case CocoaError.fileNoSuchFile.rawValue, CocoaError.fileReadNoSuchFile.rawValue: return "no such file or folder"
        case CocoaError.fileReadNoPermission.rawValue, CocoaError.fileWriteNoPermission.rawValue: return "permission denied"
        case CocoaError.fileWriteFileExists.rawValue: return "already exists"
        case CocoaError.fileWriteOutOfSpace.rawValue: return "no space left on device"
        case CocoaError.fileWriteVolumeReadOnly.rawValue: return "read-only file system"
        case CocoaError.fileWriteInvalidFileName.rawValue: return "invalid file name"
        case CocoaError.fileReadTooLarge.rawValue: return "file too large"
        case CocoaError.fileReadCorruptFile.rawValue, CocoaError.fileReadInapplicableStringEncoding.rawValue,
             CocoaError.fileReadUnknownStringEncoding.rawValue:
            return "not valid text"
        case CocoaError.fileLocking.rawValue: return "file is locked"
        case 256...511: return "cannot be read"
        case 512...767: return "cannot be written"
        default: return nil
        }
    }

    /// The POSIX error number of `value` when it is a POSIX error (a Swift `POSIXError` or an
    /// `NSError` of that domain; Linux does not bridge the two with `as?`).
    private static func posixCode(_ value: Any?) -> Int32? {
        guard let error = value as? any Error else { return nil }
        if let posix = error as? POSIXError { return posix.code.rawValue }
        let ns = error as NSError
        return ns.domain == NSPOSIXErrorDomain ? Int32(ns.code) : nil
    }

    /// The path an error names (`NSFilePath`, else `NSURL`), if any.
    public static func path(_ error: any Error) -> String? {
        let info = (error as NSError).userInfo
        if let p = info[NSFilePathErrorKey] as? String, !p.isEmpty { return p }
        if let u = info[NSURLErrorKey] as? URL, u.isFileURL { return u.path }
        return nil
    }

    /// The text of a POSIX error number as a lower-case phrase.
    public static func posixReason(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file or folder"
        case EACCES, EPERM: return "permission denied"
        case ENOTDIR: return "not a folder (or a part of the path is not)"
        case EISDIR: return "is a folder"
        case EEXIST: return "already exists"
        case ENOSPC: return "no space left on device"
        case EDQUOT: return "disk quota exceeded"
        case EROFS: return "read-only file system"
        case ENAMETOOLONG: return "file name too long"
        case EMFILE, ENFILE: return "too many open files"
        case EIO: return "input/output error"
        case ELOOP: return "too many levels of symbolic links"
        default:
            let text = String(cString: strerror(code))
            return text.prefix(1).lowercased() + text.dropFirst()
        }
    }

    /// A sharper reason where the file system tells more: an output folder that already exists
    /// as a file.
    private static func reasonInContext(_ error: any Error, path: String) -> String? {
        let ns = error as NSError
        let code = posixCode(error) ?? posixCode(ns.userInfo[NSUnderlyingErrorKey])
        guard code == EEXIST || (ns.domain == NSCocoaErrorDomain && ns.code == CocoaError.fileWriteFileExists.rawValue) else { return nil }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return "exists and is not a folder"
        }
        return nil
    }
}
