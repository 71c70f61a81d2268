import Foundation
import Testing
import TestSupport

/// `mpirun -np 2 speech-classify train --threads 1` against one process with `--threads 2`.
@Suite(.serialized, .enabled(if: mpirunPath != nil, "mpirun is not installed (apt-get install openmpi-bin)"),
       .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SpeechDistributedTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    func arguments(_ data: String, out: String, threads: Int) -> [String] {
        ["train", "--data", data, "--out", out, "--split", "random:3:0.25", "--hidden", "6", "--batch", "5",
         "--steps", "30", "--eval-every", "10", "--threads", "\(threads)", "--dropout", "0.1", "--seed", "2", "--bidirectional"]
    }

    @Test(arguments: [false, true])
    func twoRanksTrainLikeOneProcessWithTwoThreads(tcp: Bool) throws {
        let dir = try makeTempDir("mpi\(tcp)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeToneSet(into: dir.appendingPathComponent("data"), perClass: 6, seed: 3)
        let data = dir.path + "/data"
        let one = try runProcess(tool, arguments(data, out: dir.path + "/one", threads: 2))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runMPI(ranks: 2, tool, arguments(data, out: dir.path + "/two", threads: 1), tcp: tcp)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.split(separator: "\n").filter { $0.contains("\"ranks\":2,") }.count == 1, "\(two.stdout)")
        let log = logWithoutTimings(dir.path + "/one/log.csv")
        #expect(log.count == 4 && log == logWithoutTimings(dir.path + "/two/log.csv"))
        #expect(try Data(contentsOf: dir.appendingPathComponent("one/last.safetensors"))
                == Data(contentsOf: dir.appendingPathComponent("two/last.safetensors")))
    }
}
