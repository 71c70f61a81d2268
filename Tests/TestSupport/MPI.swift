import Foundation

/// `mpirun` on the search path, nil when Open MPI's launcher is not installed.
public let mpirunPath: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = String(dir) + "/mpirun"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}()

/// Arguments and environment for `mpirun -np ranks executable arguments…`: oversubscription
/// allowed (test machines may have fewer cores than ranks), root allowed, and with `tcp` the
/// TCP transport forced between ranks (`--mca btl tcp,self`), as between machines.
public func mpirunCommand(ranks: Int, _ executable: String, _ arguments: [String], tcp: Bool = false)
    -> (arguments: [String], environment: [String: String?]) {
    var a = ["-np", "\(ranks)", "--oversubscribe"]
    if tcp { a += ["--mca", "btl", "tcp,self"] }
    return (a + [executable] + arguments, ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
}

/// Runs `executable` on `ranks` MPI ranks to completion.
public func runMPI(ranks: Int, _ executable: String, _ arguments: [String], tcp: Bool = false) throws -> ProcessResult {
    let c = mpirunCommand(ranks: ranks, executable, arguments, tcp: tcp)
    return try runProcess(mpirunPath ?? "mpirun", c.arguments, environment: c.environment)
}

/// `log.csv` without its timing columns (items per second, seconds): step, training loss and
/// the metrics, as written.
public func logWithoutTimings(_ path: String) -> [String] {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).dropLast(2).joined(separator: ",") }
}

/// What a killed rank did to an MPI run.
public struct RankDeath: Sendable {
    /// mpirun's exit status, output and error output.
    public let result: ProcessResult
    /// Seconds from the kill until mpirun and every rank had ended.
    public let secondsToEnd: Double
    /// Whether any process of the job was still alive afterwards.
    public let survivorsLeft: Bool
}

/// Starts `executable` on `ranks` ranks, waits until mpirun's error output contains `marker`,
/// kills rank `victim` with SIGKILL and waits (at most `timeout` seconds, then kills the job)
/// for mpirun and every rank to end.
public func runMPIKillingRank(ranks: Int, victim: Int, _ executable: String, _ arguments: [String],
                              after marker: String, timeout: Double = 30) throws -> RankDeath {
    let c = mpirunCommand(ranks: ranks, executable, arguments)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirunPath ?? "mpirun")
    p.arguments = c.arguments
    var env = ProcessInfo.processInfo.environment
    for (k, v) in c.environment { env[k] = v }
    p.environment = env
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
    let ranksByPid = jobProcesses(of: p.processIdentifier)
    let start = Date()
    if let pid = ranksByPid[victim] { kill(pid, SIGKILL) }
    let collector = Thread {
        _ = out.fileHandleForReading.readDataToEndOfFile()
    }
    collector.start()
    // Until mpirun and every rank have ended (a rank may take a moment to die after mpirun's SIGKILL).
    while (p.isRunning || ranksByPid.values.contains(where: isRunning)) && Date().timeIntervalSince(start) < timeout {
        usleep(20_000)
    }
    let took = Date().timeIntervalSince(start)
    if p.isRunning {
        for pid in ranksByPid.values { kill(pid, SIGKILL) }
        p.terminate()
    }
    p.waitUntilExit()
    errData += err.fileHandleForReading.readDataToEndOfFile()
    let survivors = ranksByPid.values.contains(where: isRunning)
    return RankDeath(result: ProcessResult(status: p.terminationStatus, stdout: "", stderr: String(decoding: errData, as: UTF8.self)),
                     secondsToEnd: took, survivorsLeft: survivors)
}

/// The ranks started by the mpirun with process id `launcher`: rank → process id, read from
/// `/proc` (children whose environment holds `OMPI_COMM_WORLD_RANK`).
func jobProcesses(of launcher: Int32) -> [Int: Int32] {
    var found: [Int: Int32] = [:]
    let children = (try? String(contentsOfFile: "/proc/\(launcher)/task/\(launcher)/children", encoding: .utf8)) ?? ""
    for field in children.split(separator: " ") {
        guard let pid = Int32(field.trimmingCharacters(in: .whitespacesAndNewlines)),
              let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
        for entry in env.split(separator: 0) {
            let s = String(decoding: entry, as: UTF8.self)
            if s.hasPrefix("OMPI_COMM_WORLD_RANK="), let r = Int(s.dropFirst("OMPI_COMM_WORLD_RANK=".count)) { found[r] = pid }
        }
    }
    return found
}

/// Whether process `pid` exists and has not ended (a zombie waiting to be reaped has ended).
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}
