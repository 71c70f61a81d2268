import Foundation
import ImageFrames
import Testing
import TestSupport

/// `mpirun -np 2 frame-classify train --threads 1` against one process with `--threads 2`.
@Suite(.serialized, .enabled(if: mpirunPath != nil, "mpirun is not installed (apt-get install openmpi-bin)"),
       .enabled(if: builtExecutable("frame-classify") != nil, "frame-classify is not built next to the test bundle"))
struct FrameDistributedTests {
    let tool = builtExecutable("frame-classify") ?? "frame-classify"

    func arguments(_ data: String, out: String, threads: Int) -> [String] {
        ["train", "--data", data, "--out", out, "--size", "4x4", "--hidden", "8", "--projection", "0", "--batch", "5",
         "--steps", "30", "--eval-every", "10", "--threads", "\(threads)", "--dropout", "0.1", "--shift", "1", "--seed", "2"]
    }

    @Test(arguments: [false, true])
    func twoRanksTrainLikeOneProcessWithTwoThreads(tcp: Bool) throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try FrameGenerator.writeShapes(root: tmp.sub("d"), trainPerClass: 6, testPerClass: 2, seed: 7,
                                       options: ShapesOptions(width: 8, height: 8, frames: 4, antiAlias: .off))
        let one = try runProcess(tool, arguments(tmp.sub("d"), out: tmp.sub("one"), threads: 2))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runMPI(ranks: 2, tool, arguments(tmp.sub("d"), out: tmp.sub("two"), threads: 1), tcp: tcp)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stdout.split(separator: "\n").filter { $0.contains("\"ranks\":2,") }.count == 1, "\(two.stdout)")
        let log = logWithoutTimings(tmp.sub("one/log.csv"))
        #expect(log.count == 4 && log == logWithoutTimings(tmp.sub("two/log.csv")))
        #expect(try Data(contentsOf: URL(fileURLWithPath: tmp.sub("one/last.safetensors")))
                == Data(contentsOf: URL(fileURLWithPath: tmp.sub("two/last.safetensors"))))
    }
}
