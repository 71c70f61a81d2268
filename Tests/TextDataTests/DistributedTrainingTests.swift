import Foundation
import RecurrentCore
import Testing
import TestSupport
@testable import TextData

/// `mpirun -np 2 lm-train train --threads 1` against one process with `--threads 2`: the same
/// batch shards, the same sums, so the same run bit for bit; resuming with the other number of
/// ranks; a rank killed mid-run.
@Suite(.serialized, .enabled(if: mpirunPath != nil, "mpirun is not installed (apt-get install openmpi-bin)"),
       .enabled(if: builtExecutable("lm-train") != nil, "lm-train is not built next to the test bundle"))
struct LanguageModelDistributedTests {
    let tool = builtExecutable("lm-train") ?? "lm-train"

    func arguments(_ data: String, out: String, steps: Int, threads: Int, evalEvery: Int = 10) -> [String] {
        ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "5",
         "--seq-len", "8", "--steps", "\(steps)", "--eval-every", "\(evalEvery)", "--threads", "\(threads)", "--dropout", "0.1",
         "--warmup", "3", "--seed", "2"]
    }

    /// The validation text (about 2,200 characters, 3 evaluation batches of 128 chunks) is split
    /// across the ranks too.
    @Test(arguments: [false, true])
    func twoRanksTrainLikeOneProcessWithTwoThreads(tcp: Bool) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 1000, seed: 4))
        let one = try runProcess(tool, arguments(data, out: folder.path + "/one", steps: 30, threads: 2))
        #expect(one.status == 0, "\(one.stderr)")
        let two = try runMPI(ranks: 2, tool, arguments(data, out: folder.path + "/two", steps: 30, threads: 1), tcp: tcp)
        #expect(two.status == 0, "\(two.stderr)")
        // Rank 0 alone prints the summary and writes the files.
        let summaries = two.stdout.split(separator: "\n").filter { $0.hasPrefix("{\"tool\":\"lm-train\"") && $0.contains("\"steps\":30,") }
        #expect(summaries.count == 1 && summaries[0].contains("\"ranks\":2,"), "\(two.stdout)")
        #expect(one.stdout.contains("\"ranks\":1,"))
        #expect(two.stderr.contains("lm-train: 2 ranks share each batch of every step"))
        let log = logWithoutTimings(folder.path + "/one/log.csv")
        #expect(log.count == 4 && log == logWithoutTimings(folder.path + "/two/log.csv"))
        let a = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/one/last.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/two/last.safetensors"))
        #expect(a == b)
        // The carried state of every stream (gathered from both ranks) is saved alike.
        let s1 = try SafeTensors.read(path: folder.path + "/one/last.train.safetensors").tensors
        let s2 = try SafeTensors.read(path: folder.path + "/two/last.train.safetensors").tensors
        #expect(s1 == s2 && s1.contains { $0.name == "state.h" && $0.values.count == 5 * 8 })
    }

    /// Three ranks sum the gradients in rank order down a chain: the same sums as one process
    /// adding three shards in shard order.
    @Test func threeRanksTrainLikeOneProcessWithThreeThreads() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 120, seed: 4))
        let one = try runProcess(tool, arguments(data, out: folder.path + "/one", steps: 20, threads: 3))
        #expect(one.status == 0, "\(one.stderr)")
        let three = try runMPI(ranks: 3, tool, arguments(data, out: folder.path + "/three", steps: 20, threads: 1))
        #expect(three.status == 0, "\(three.stderr)")
        #expect(three.stdout.contains("\"ranks\":3,"))
        #expect(logWithoutTimings(folder.path + "/one/log.csv") == logWithoutTimings(folder.path + "/three/log.csv"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder.path + "/one/last.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: folder.path + "/three/last.safetensors")))
    }

    /// 2 ranks → 1 process and 1 process → 2 ranks continue an interrupted run exactly.
    @Test(arguments: [(2, 1), (1, 2)])
    func resumeWithAnotherNumberOfRanks(first: Int, then: Int) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 120, seed: 4))
        let full = try runProcess(tool, arguments(data, out: folder.path + "/full", steps: 40, threads: 2))
        #expect(full.status == 0, "\(full.stderr)")
        func run(ranks: Int, steps: Int, resume: Bool) throws -> ProcessResult {
            let args = arguments(data, out: folder.path + "/split", steps: steps, threads: 2 / ranks) + (resume ? ["--resume", folder.path + "/split"] : [])
            return ranks == 1 ? try runProcess(tool, args) : try runMPI(ranks: ranks, tool, args)
        }
        let a = try run(ranks: first, steps: 20, resume: false)
        #expect(a.status == 0, "\(a.stderr)")
        let b = try run(ranks: then, steps: 40, resume: true)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("resuming from \(folder.path)/split/last.train.safetensors at step 20"))
        let x = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/full/last.safetensors"))
        let y = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/split/last.safetensors"))
        #expect(x == y)
        #expect(logWithoutTimings(folder.path + "/full/log.csv") == logWithoutTimings(folder.path + "/split/log.csv"))
    }

    /// Without --out each process would name its own run folder by its clock: under mpirun the
    /// run stops in one line before training.
    @Test func runWithoutOutIsRefusedUnderMPI() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 60, seed: 4))
        var args = arguments(data, out: "unused", steps: 2, threads: 1)
        let at = args.firstIndex(of: "--out")!
        args.removeSubrange(at...(at + 1))
        let r = try runMPI(ranks: 2, tool, args)
        #expect(r.status != 0)
        #expect(r.stderr.contains("lm-train: --out: under mpirun give the run folder (every rank must use the same one)"), "\(r.stderr)")
    }

    /// A time budget under mpirun follows rank 0's clock: the ranks stop after the same step
    /// (a rank stopping alone would leave the other waiting in the gradient exchange).
    @Test func timeBudgetEndsEveryRankAfterTheSameStep() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 120, seed: 4))
        var args = arguments(data, out: folder.path + "/run", steps: 1, threads: 1, evalEvery: 0)
        let i = try #require(args.firstIndex(of: "--steps"))
        args.replaceSubrange(i...(i + 1), with: ["--time-budget", "1.5", "--lr-schedule", "cosine"])
        let r = try runMPI(ranks: 2, tool, args)
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(r.stdout.split(separator: "\n").last.map(String.init))
        let json = try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any]
        let steps = try #require(json?["steps"] as? Int)
        #expect(steps > 1 && json?["ranks"] as? Int == 2)
        #expect(try SafeTensors.read(path: folder.path + "/run/last.train.safetensors").metadata["step"] == "\(steps)")
    }

    /// Bad input under mpirun: rank 0 says so as usual, rank 1 with its rank named, and the job
    /// ends with a non-zero status instead of waiting; nothing is written.
    @Test func badInputEndsTheJobWithOneLinePerRank() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let missing = folder.path + "/none.txt"
        let r = try runMPI(ranks: 2, tool, ["train", "--data", missing, "--out", folder.path + "/run", "--steps", "1"])
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("lm-train: \(missing): ") }.count == 1, "\(r.stderr)")
        #expect(lines.filter { $0.hasPrefix("lm-train (rank 1): \(missing): ") }.count == 1, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/run"))
    }

    /// Killing rank 1 ends rank 0 within seconds, with one line of its own; the checkpoint on
    /// disk stays loadable and resumable.
    @Test func rankKilledEndsTheJobAndKeepsTheCheckpoint() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 120, seed: 4))
        let out = folder.path + "/run"
        let death = try runMPIKillingRank(ranks: 2, victim: 1, tool, arguments(data, out: out, steps: 1_000_000, threads: 1, evalEvery: 200),
                                          after: "step 200: val_loss")
        #expect(death.secondsToEnd < 10, "\(death.secondsToEnd) s")
        #expect(!death.survivorsLeft)
        #expect(death.result.status != 0)
        let ours = death.result.stderr.split(separator: "\n").filter { $0.hasPrefix("lm-train: stop signal from mpirun") }
        #expect(ours.count == 1, "\(death.result.stderr)")
        let loaded = try LanguageModelCheckpoint.load(path: out + "/last.safetensors")
        let step = Int(loaded.metadata["step"] ?? "") ?? 0
        #expect(step >= 200 && step % 200 == 0)
        let state = try SafeTensors.read(path: out + "/last.train.safetensors")
        #expect(state.metadata["step"] == "\(step)")
        let resumed = try runProcess(tool, arguments(data, out: out, steps: step + 5, threads: 2, evalEvery: 200) + ["--resume", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }
}
