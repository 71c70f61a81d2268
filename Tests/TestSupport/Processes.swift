import Foundation

/// Locates a built executable of this package next to the test bundle (`.build/<config>/`).
public func builtExecutable(_ name: String) -> String? {
    var candidates: [URL] = []
    if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
    if let arg0 = CommandLine.arguments.first {
        var url = URL(fileURLWithPath: arg0)
        for _ in 0..<5 {
            url = url.deletingLastPathComponent()
            candidates.append(url)
        }
    }
    for dir in candidates {
        let path = dir.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Exit status and output of a finished process.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs `executable` with `arguments` to completion, capturing both streams. `environment`
/// entries are added to this process's environment (a nil value removes the variable).
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String?] = [:]) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Drain stderr on another thread so a full pipe cannot block the child.
    let errData = LockedData()
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !errData.isSet { usleep(1000) }
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: errData.value, as: UTF8.self))
}

private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return data != nil }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data ?? Data() }
}

/// Starts `executable` with `arguments`, waits until its standard error contains `marker` (a
/// training progress line by default), sends `signal` `count` times back to back, and returns
/// the result once the process has ended.
public func runInterrupted(_ executable: String, _ arguments: [String], signal: Int32, count: Int = 1,
                           after marker: String = " step ") throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    var errData = Data()
    while !String(decoding: errData, as: UTF8.self).contains(marker) {
        let chunk = err.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        errData += chunk
    }
    for _ in 0..<count { kill(p.processIdentifier, signal) }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    errData += err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
