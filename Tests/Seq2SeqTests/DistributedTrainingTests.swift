import Foundation
import Testing
import TestSupport

/// `mpirun -np 2 translate-toy train --threads 1` against one process with `--threads 2`.
@Suite(.serialized, .enabled(if: mpirunPath != nil, "mpirun is not installed (apt-get install openmpi-bin)"),
       .enabled(if: builtExecutable("translate-toy") != nil, "translate-toy is not built next to the test bundle"))
struct TranslateToyDistributedTests {
    let tool = builtExecutable("translate-toy") ?? "translate-toy"

    func arguments(out: String, threads: Int) -> [String] {
        // 1,400 pairs: 140 validation pairs, three decoding chunks of 64, split over the ranks.
        ["train", "--task", "reverse", "--count", "1400", "--alphabet", "abcd", "--min-length", "3", "--max-length", "6",
         "--cell", "lstm", "--layers", "2", "--hidden", "8", "--embedding", "4", "--dropout", "0.1", "--teacher-forcing", "0.8",
         "--batch", "7", "--steps", "30", "--eval-every", "10", "--threads", "\(threads)", "--lr", "0.005",
         "--seed", "2", "--out", out]
    }

    @Test(arguments: [false, true])
    func twoRanksTrainLikeOneProcessWithTwoThreads(tcp: Bool) throws {
        let dir = temporaryDirectory("mpi\(tcp)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let one = try runProcess(tool, arguments(out: dir + "/one", threads: 2))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runMPI(ranks: 2, tool, arguments(out: dir + "/two", threads: 1), tcp: tcp)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.split(separator: "\n").filter { $0.contains("\"ranks\":2,") }.count == 1, "\(two.stdout)")
        let log = logWithoutTimings(dir + "/one/log.csv")
        #expect(log.count == 4 && log == logWithoutTimings(dir + "/two/log.csv"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/one/last.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: dir + "/two/last.safetensors")))
    }
}
