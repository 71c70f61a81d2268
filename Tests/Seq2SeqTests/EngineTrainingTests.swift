import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import Seq2Seq
import TrainingCLI

/// A tiny task: `reverse` over a…d, lengths 3–5, 240 pairs (192 training: 12 batches of 16 per
/// epoch), a 2-layer GRU with dropout between the layers and teacher forcing 0.5, so every
/// source of randomness (dropout masks, teacher-forcing draws, epoch shuffles) is exercised.
func tinyOptions() -> Seq2SeqTrainingOptions {
    var o = Seq2SeqTrainingOptions()
    o.task = .reverse; o.count = 240
    o.toyOptions = ToyTaskOptions(alphabet: Array("abcd"), minLength: 3, maxLength: 5)
    o.cell = .gru; o.layers = 2; o.hidden = 8; o.embedding = 4; o.dropout = 0.2; o.teacherForcing = 0.5
    o.attention = .general; o.batch = 16
    return o
}

func tinyTraining(out: String, steps: Int, resume: Bool = false) -> TrainingConfiguration {
    var t = TrainingConfiguration()
    // A constant rate after warm-up: a shorter first part of a split run has the same schedule.
    t.learningRate = 0.01; t.warmup = 2
    t.steps = steps; t.evalEvery = 5; t.seed = 3; t.threads = 2; t.outDirectory = out; t.resume = resume
    return t
}

/// Trains quietly; returns the outcome and the output folder's paths.
func trainQuietly(_ o: Seq2SeqTrainingOptions, _ t: TrainingConfiguration) throws -> Seq2SeqTraining.Outcome {
    try Seq2SeqTraining.train(options: o, training: t, configure: { $0.progressOutput = { _ in } })
}

func expectSameTensors(_ a: String, _ b: String) throws {
    #expect(try differingTensors(a, b) == [], "\(a) vs \(b)")
}

@Suite(.serialized) struct Seq2SeqResumeTests {
    /// 16 steps straight == 7 steps, then `--resume` to 16: step losses and weights bit for bit
    /// (the resume point is mid-epoch and not an evaluation point; 16 steps cross an epoch).
    @Test func resumeEqualsUninterruptedRun() throws {
        let dir = temporaryDirectory("resume")
        let a = try trainQuietly(tinyOptions(), tinyTraining(out: dir + "/full", steps: 16))
        #expect(a.summary.stepLosses.count == 16)
        let b1 = try trainQuietly(tinyOptions(), tinyTraining(out: dir + "/split", steps: 7))
        #expect(b1.summary.stepLosses == Array(a.summary.stepLosses.prefix(7)))
        let b2 = try trainQuietly(tinyOptions(), tinyTraining(out: dir + "/split", steps: 16, resume: true))
        #expect(b2.summary.steps == 16)
        #expect(b2.summary.stepLosses == Array(a.summary.stepLosses.suffix(9)))
        try expectSameTensors(dir + "/full/last.safetensors", dir + "/split/last.safetensors")
        try expectSameTensors(dir + "/full/best.safetensors", dir + "/split/best.safetensors")
        #expect(b2.testExactMatch == a.testExactMatch)

        // Another seed draws other masks and forcing decisions: the comparison above can fail.
        var other = tinyTraining(out: dir + "/other", steps: 16)
        other.seed = 4
        #expect(try trainQuietly(tinyOptions(), other).summary.stepLosses != a.summary.stepLosses)
        // Dropout changes the losses too (it is really applied in training).
        var noDropout = tinyOptions()
        noDropout.dropout = 0
        #expect(try trainQuietly(noDropout, tinyTraining(out: dir + "/nodrop", steps: 16)).summary.stepLosses != a.summary.stepLosses)
    }

    /// A resume with a changed task setting is refused with one line naming the setting; the
    /// saved run is left as it was.
    @Test func resumeWithChangedSettingIsRefused() throws {
        let dir = temporaryDirectory("refuse")
        _ = try trainQuietly(tinyOptions(), tinyTraining(out: dir, steps: 4))
        let before = try SafeTensors.read(path: dir + "/last.safetensors")
        var changed = tinyOptions()
        changed.teacherForcing = 0.75
        do {
            _ = try trainQuietly(changed, tinyTraining(out: dir, steps: 8, resume: true))
            Issue.record("a resume with another teacher-forcing ratio was accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("--teacher-forcing (was 0.5, now 0.75)"), "\(text)")
            #expect(!text.contains("\n"))
        }
        var wider = tinyOptions()
        wider.hidden = 9
        #expect(throws: (any Error).self) { _ = try trainQuietly(wider, tinyTraining(out: dir, steps: 8, resume: true)) }
        let after = try SafeTensors.read(path: dir + "/last.safetensors")
        #expect(after.tensors == before.tensors && after.metadata["step"] == "4")
    }

    @Test func batchSourceSeeksToTheSameBatches() throws {
        let pairs = (0..<50).map { i in EncodedPair(source: Array(repeating: 4 + i % 3, count: 1 + i % 4), target: [4, 5 + i % 2]) }
        var a = try Seq2SeqBatchSource(pairs: pairs, batchSize: 8, maxSourceLength: 10, maxTargetLength: 10, seed: 5)
        #expect(a.batchesPerEpoch == 7)
        var seen: [Seq2SeqBatch] = []
        for _ in 0..<17 { seen.append(a.next()) }
        #expect(a.position == BatchPosition(epoch: 2, batch: 3))
        // Every epoch holds every pair once; the epochs are shuffled differently.
        let epoch0 = seen[0..<7].flatMap(\.pairIndices), epoch1 = seen[7..<14].flatMap(\.pairIndices)
        #expect(epoch0.sorted() == Array(0..<50) && epoch1.sorted() == Array(0..<50) && epoch0 != epoch1)
        var b = try Seq2SeqBatchSource(pairs: pairs, batchSize: 8, maxSourceLength: 10, maxTargetLength: 10, seed: 5)
        try b.seek(to: BatchPosition(epoch: 1, batch: 5))
        #expect(b.next() == seen[12])
        #expect(throws: (any Error).self) { try b.seek(to: BatchPosition(epoch: 0, batch: 7)) }
    }
}

@Suite(.serialized, .enabled(if: builtExecutable("translate-toy") != nil, "translate-toy is not built next to the test bundle"))
struct TranslateToyCommandLineTests {
    let tool = builtExecutable("translate-toy") ?? "translate-toy"

    func trainArguments(out: String, steps: Int = 400) -> [String] {
        ["train", "--task", "reverse", "--count", "400", "--alphabet", "abcd", "--min-length", "3", "--max-length", "6",
         "--cell", "lstm", "--layers", "2", "--hidden", "12", "--embedding", "6", "--dropout", "0.1", "--teacher-forcing", "0.8",
         "--batch", "8", "--steps", "\(steps)", "--eval-every", "100", "--threads", "2", "--lr", "0.005",
         "--lr-schedule", "cosine", "--warmup", "5", "--seed", "2", "--out", out]
    }

    /// SIGINT and SIGTERM finish the step, save, print one line with the way to go on and exit
    /// 130 / 143; resuming then ends with the weights of an uninterrupted run, bit for bit.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalSavesAndResumeMatchesUninterruptedRun(signal: Int32) throws {
        let dir = temporaryDirectory("signal\(signal)")
        let full = try runProcess(tool, trainArguments(out: dir + "/full"))
        #expect(full.status == 0, "\(full.stderr)")

        let out = dir + "/split"
        let r = try runInterrupted(tool, trainArguments(out: out), signal: signal)
        #expect(r.status == 128 + signal, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(last.hasPrefix("translate-toy: \(out): stopped by \(name) after step ") && last.hasSuffix("continue with --resume \(out)"),
                "\(last)")
        let stateStep = try SafeTensors.read(path: out + "/last.train.safetensors").metadata["step"]
        #expect(try Seq2SeqCheckpoint.load(path: out + "/last.safetensors").metadata["step"] == stateStep)
        #expect((Int(stateStep ?? "") ?? 400) < 400)

        let resumed = try runProcess(tool, trainArguments(out: out) + ["--resume", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let x = try SafeTensors.read(path: dir + "/full/last.safetensors")
        let y = try SafeTensors.read(path: out + "/last.safetensors")
        #expect(x.tensors == y.tensors)
        #expect(x.metadata["step"] == "400" && y.metadata["step"] == "400")
        // Both runs end with the same JSON test score.
        func test(_ s: String) -> Double? {
            let line = s.split(separator: "\n").last.map(String.init) ?? ""
            let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (json?["metrics"] as? [String: Any])?["test_exact_match"] as? Double
        }
        #expect(test(full.stdout) != nil && test(full.stdout) == test(resumed.stdout))
        let summary = try JSONSerialization.jsonObject(with: Data((full.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        #expect(Set(summary?.keys.map { $0 } ?? []) == Set(TrainingRunSummary.keys) && summary?["tool"] as? String == "translate-toy")
        #expect((summary?["test_metric"] as? [String: Any])?["name"] as? String == "test_exact_match")
        #expect((summary?["throughput"] as? [String: Any])?["unit"] as? String == "tokens/s")
    }

    /// Weight decay that multiplies the weights by -9999 a step (`--optimizer sgd --lr 10
    /// --weight-decay 1000 --clip 0`) overflows them within a few steps (a plain `--lr 1e30`
    /// leaves this model's loss huge but finite): one line, exit 1, and the last checkpoint is
    /// the last good one (finite, from an evaluation point before the divergence).
    @Test func divergingRunStopsAndKeepsTheLastGoodCheckpoint() throws {
        let dir = temporaryDirectory("nan")
        let out = dir + "/run"
        let r = try runProcess(tool, ["train", "--task", "reverse", "--count", "200", "--alphabet", "abcd", "--max-length", "5",
                                      "--hidden", "8", "--embedding", "4", "--batch", "8", "--steps", "60", "--eval-every", "1",
                                      "--threads", "1", "--optimizer", "sgd", "--lr", "10", "--weight-decay", "1000",
                                      "--clip", "0", "--out", out])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        let errorLines = r.stderr.split(separator: "\n").filter {
            $0.hasPrefix("translate-toy: ") && !$0.contains(" pairs; ") && !$0.hasPrefix("translate-toy: warning: ")
                && !$0.hasPrefix("translate-toy: run folder ") && !$0.contains(" parameters; ")
        }
        #expect(errorLines.count == 1 && errorLines.first?.hasPrefix("translate-toy: training diverged: ") == true, "\(r.stderr)")
        let line = errorLines.first.map(String.init) ?? ""
        let diverged = line.range(of: #"step [0-9]+"#, options: .regularExpression).flatMap { Int(line[$0].dropFirst(5)) } ?? 0
        #expect(diverged > 1, "\(r.stderr)")
        let last = try Seq2SeqCheckpoint.load(path: out + "/last.safetensors")
        let saved = Int(last.metadata["step"] ?? "") ?? -1
        #expect(saved >= 1 && saved < diverged, "saved step \(saved), diverged at \(diverged)")
        #expect(last.model.stateDict.allSatisfy { $0.values.allSatisfy(\.isFinite) })
    }

    /// A NaN-poisoned checkpoint is refused by translate and eval naming the file and tensor;
    /// an input longer than the model's maximum names its file and line (or argument).
    @Test func poisonedCheckpointsAndOverlongInputsNameTheirPlace() throws {
        let dir = temporaryDirectory("poison")
        let out = dir + "/run"
        let r = try runProcess(tool, ["train", "--task", "reverse", "--count", "100", "--alphabet", "abcd", "--max-length", "5",
                                      "--hidden", "6", "--embedding", "4", "--batch", "8", "--steps", "2", "--threads", "1", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let good = out + "/last.safetensors"
        let archive = try SafeTensors.read(path: good)
        var tensors = archive.tensors
        let victim = tensors.indices.first { tensors[$0].name.hasPrefix("decoder.") } ?? 0
        tensors[victim].values[3] = .nan
        let bad = dir + "/bad.safetensors"
        try SafeTensors.write(tensors, metadata: archive.metadata, to: bad)
        let tsv = dir + "/pairs.tsv"
        try "abc\tcba\n\nabcabcabcabcabcabc\tx\n".write(toFile: tsv, atomically: true, encoding: .utf8)
        let poisoned = "translate-toy: \(bad): tensor '\(tensors[victim].name)' holds nan at element 3; a checkpoint must hold finite numbers\n"
        for args in [["translate", "--checkpoint", bad, "abc"], ["eval", "--checkpoint", bad, "--data", tsv]] {
            let p = try runProcess(tool, args)
            #expect(p.status == 1 && p.stdout.isEmpty && p.stderr == poisoned, "\(args): \(p.stderr)")
        }
        let long = try runProcess(tool, ["eval", "--checkpoint", good, "--data", tsv])
        #expect(long.status == 1 && long.stderr.hasPrefix("translate-toy: \(tsv):3: input \"abcabcabcabcabcabc\" has 18 tokens, more than the model's maximum of "),
                "\(long.stderr)")
        #expect(long.stderr.split(separator: "\n").count == 1)
        let argument = try runProcess(tool, ["translate", "--checkpoint", good, "ab", "abcabcabcabcabcabc"])
        #expect(argument.status == 1 && argument.stderr.hasPrefix("translate-toy: argument 2: input \"abcabcabcabcabcabc\" has 18 tokens"),
                "\(argument.stderr)")
    }

    /// A model that cannot fit under the process's memory limit is refused in one line.
    @Test func oversizedModelIsRefusedUnderAMemoryLimit() throws {
        let dir = temporaryDirectory("memory")
        let r = try runProcess("/bin/sh", ["-c", "ulimit -v 1500000 && exec \"$0\" \"$@\"", tool, "train", "--task", "reverse",
                                           "--hidden", "4096", "--layers", "8", "--steps", "1", "--out", dir + "/run"])
        #expect(r.status == 1, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n").filter { !$0.contains(" pairs; ") }
        #expect(lines.count == 1 && lines[0].hasPrefix("translate-toy: the model (") && lines[0].contains("process limit RLIMIT_AS"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run"))
    }

    /// Shared option names: the old spellings are gone, errors are one line naming the option.
    @Test func oldOptionNamesAndBadValuesGiveOneLine() throws {
        let dir = temporaryDirectory("options")
        let cases: [([String], String)] = [
            (["train", "--task", "reverse", "--learning-rate", "0.1", "--steps", "1", "--out", dir], "--learning-rate"),
            (["train", "--task", "reverse", "--steps", "1", "--dropout", "0.3", "--out", dir], "--dropout"),
            (["train", "--steps", "1", "--out", dir], "--task"),
            (["train", "--task", "reverse", "--steps", "1", "--epochs", "1", "--out", dir], "--steps"),
            (["train", "--task", "reverse", "--steps", "1", "--lr", "0", "--out", dir], "--lr"),
        ]
        for (args, option) in cases {
            let r = try runProcess(tool, args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("translate-toy: ") && r.stderr.contains(option),
                    "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/last.safetensors"))
    }
}
