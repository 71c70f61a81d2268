import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import AudioFeatures

/// Resume and fingerprint behaviour of speech training on the engine (library level).
@Suite(.serialized) struct SpeechResumeTests {
    func options(_ dir: URL) -> SpeechTrainingOptions {
        var o = SpeechTrainingOptions()
        o.dataPath = dir.path; o.split = "random:3:0.25"; o.cell = .lstm; o.hidden = 6; o.bidirectional = true
        o.dropout = 0.25; o.batch = 4; o.valFraction = 0.2
        return o
    }

    func training(out: String, steps: Int, resume: Bool = false) -> TrainingConfiguration {
        var t = TrainingConfiguration()
        // A constant rate after warm-up: the first 7 steps of a 7-step and a 14-step run are the same.
        t.learningRate = 1e-2; t.lrSchedule = .constant; t.warmup = 2; t.steps = steps; t.evalEvery = 3
        t.seed = 5; t.threads = 2; t.outDirectory = out; t.resume = resume
        return t
    }

    func run(_ o: SpeechTrainingOptions, _ data: SpeechTrainingData, _ t: TrainingConfiguration) throws -> (SpeechRunReport, TrainingEngine<SpeechLearner>) {
        let engine = TrainingEngine(configuration: t, task: try SpeechTraining.task(options: o, data: data, training: t))
        engine.progressOutput = { _ in }
        return (try SpeechTraining.run(engine, data: data), engine)
    }

    func expectSameTensors(_ a: String, _ b: String) throws {
        #expect(try differingTensors(a, b) == [], "\(a) vs \(b)")
    }

    /// 18 files: about 11 train in 3 batches per epoch, so 14 steps cross several epoch
    /// boundaries and the resume point (7) is mid-epoch and not an evaluation point.
    @Test func resumeEqualsUninterruptedRun() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 6, seed: 4)
        let o = options(dir)
        let data = try SpeechTraining.prepare(options: o, seed: 5, threads: 2)
        let (a, full) = try run(o, data, training(out: dir.path + "/full", steps: 14))
        #expect(a.summary.stepLosses.count == 14)

        let (b1, _) = try run(o, data, training(out: dir.path + "/split", steps: 7))
        #expect(b1.summary.stepLosses == Array(a.summary.stepLosses.prefix(7)))
        let (b2, second) = try run(o, data, training(out: dir.path + "/split", steps: 14, resume: true))
        #expect(b2.summary.steps == 14)
        #expect(b2.summary.stepLosses == Array(a.summary.stepLosses.suffix(7)))
        try expectSameTensors(full.lastPath, second.lastPath)
        try expectSameTensors(full.bestPath, second.bestPath)
        #expect(b2.test.confusion == a.test.confusion)

        // Another seed draws other dropout masks and batches: the comparison above can fail.
        var other = training(out: dir.path + "/other", steps: 14)
        other.seed = 6
        #expect(try run(o, data, other).0.summary.stepLosses != a.summary.stepLosses)
    }

    @Test func resumeWithAChangedSettingIsRefusedNamingIt() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeToneSet(into: dir, perClass: 4, seed: 2)
        let o = options(dir)
        let data = try SpeechTraining.prepare(options: o, seed: 5, threads: 2)
        let out = dir.path + "/run"
        _ = try run(o, data, training(out: out, steps: 4))
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/last.safetensors"))
        func refusal(_ change: (inout SpeechTrainingOptions) -> Void) -> String {
            var changed = o
            change(&changed)
            do {
                _ = try run(changed, data, training(out: out, steps: 8, resume: true))
                return "no error"
            } catch { return "\(error)" }
        }
        let hidden = refusal { $0.hidden = 7 }
        #expect(hidden == "\(out): cannot --resume: this setting differs from the saved run: --hidden (was 6, now 7); leave it out to "
                + "continue the run, or start a new one (--init-from \(out)/best.safetensors to start from its weights)", "\(hidden)")
        #expect(refusal { $0.valFraction = 0.3 }.contains("--val-fraction (was 0.2, now 0.3)"))
        #expect(refusal { $0.split = "official" }.contains("--split (was random:3:0.25, now official)"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/last.safetensors")) == before)
    }
}

/// The `speech-classify` executable: signals, divergence and the one error path.
@Suite(.serialized, .enabled(if: builtExecutable("speech-classify") != nil, "speech-classify is not built next to the test bundle"))
struct SpeechCommandLineTests {
    let tool = builtExecutable("speech-classify") ?? "speech-classify"

    func trainArguments(_ data: String, out: String, steps: Int = 400) -> [String] {
        ["train", "--data", data, "--out", out, "--split", "random:3:0.25", "--hidden", "6", "--batch", "4",
         "--steps", "\(steps)", "--eval-every", "50", "--threads", "2", "--dropout", "0.1", "--seed", "2", "--bidirectional"]
    }

    /// SIGINT and SIGTERM finish the step, save, print one line with the way to go on and exit
    /// 130 / 143; resuming then ends with the weights of an uninterrupted run, bit for bit.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalSavesAndResumeMatchesUninterruptedRun(signal: Int32) throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeToneSet(into: dir.appendingPathComponent("data"), perClass: 6, seed: 3)
        let data = dir.path + "/data"
        let full = try runProcess(tool, trainArguments(data, out: dir.path + "/full"))
        #expect(full.status == 0, "\(full.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data((full.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        #expect(summary?["steps"] as? Int == 400 && summary?["tool"] as? String == "speech-classify", "\(full.stdout)")
        #expect(Set(summary?.keys.map { $0 } ?? []) == Set(TrainingRunSummary.keys))
        #expect((summary?["test_metric"] as? [String: Any])?["name"] as? String == "test_accuracy")
        #expect((summary?["throughput"] as? [String: Any])?["unit"] as? String == "utterances/s")

        let out = dir.path + "/split"
        let r = try runInterrupted(tool, trainArguments(data, out: out), signal: signal)
        #expect(r.status == 128 + signal, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(last.hasPrefix("speech-classify: \(out): stopped by \(name) after step ") && last.hasSuffix("continue with --resume \(out)"), "\(last)")
        let stateStep = try SafeTensors.read(path: out + "/last.train.safetensors").metadata["step"]
        #expect(try SafeTensors.read(path: out + "/last.safetensors").metadata["step"] == stateStep)
        #expect(Int(stateStep ?? "") ?? 400 < 400)

        let resumed = try runProcess(tool, trainArguments(data, out: out) + ["--resume", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let x = try SafeTensors.read(path: dir.path + "/full/last.safetensors")
        let y = try SafeTensors.read(path: out + "/last.safetensors")
        #expect(x.tensors == y.tensors)
        #expect(x.metadata["step"] == "400" && y.metadata["step"] == "400")
        // The held-out report of both runs is the same.
        #expect(full.stdout.split(separator: "\n").first == resumed.stdout.split(separator: "\n").first)
    }

    /// A model that cannot fit in memory is refused in one line before it is allocated.
    @Test func oversizedModelIsRefused() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeToneSet(into: dir.appendingPathComponent("data"), perClass: 4, seed: 3)
        let r = try runProcess(tool, ["train", "--data", dir.path + "/data", "--out", dir.path + "/run", "--split", "random:3:0.25",
                                      "--hidden", "1000000", "--steps", "1"])
        #expect(r.status == 1 && r.stdout.isEmpty, "\(r.stderr)")
        let line = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("speech-classify: the model (") && line.contains(" of memory but "), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/run"))
    }

    /// `--lr 1e30` drives the loss to huge but finite values: the run ends normally with one
    /// warning line, and `best.safetensors` is written.
    @Test func hugeButFiniteLossesGiveAWarning() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeToneSet(into: dir.appendingPathComponent("data"), perClass: 4, seed: 3)
        let out = dir.path + "/run"
        let r = try runProcess(tool, ["train", "--data", dir.path + "/data", "--out", out, "--split", "random:3:0.25", "--hidden", "6",
                                      "--batch", "4", "--steps", "6", "--eval-every", "1", "--threads", "1", "--lr", "1e30", "--clip", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("speech-classify: warning: ") }
        #expect(warnings.count == 1 && warnings[0].hasSuffix("the learning rate may be too high"), "\(r.stderr)")
        #expect(try SafeTensors.read(path: out + "/best.safetensors").metadata["step"] != nil)
    }

    /// Weight decay that multiplies the weights by -9999 a step overflows them within a few
    /// steps: one line, exit 1, and the last checkpoint is the last good one (finite weights,
    /// an evaluation step before the divergence).
    @Test func divergingRunStopsAndKeepsTheLastGoodCheckpoint() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
        try writeToneSet(into: dir.appendingPathComponent("data"), perClass: 4, seed: 3)
        let out = dir.path + "/run"
        let r = try runProcess(tool, ["train", "--data", dir.path + "/data", "--out", out, "--split", "random:3:0.25", "--hidden", "6",
                                      "--batch", "4", "--steps", "40", "--eval-every", "1", "--threads", "1", "--optimizer", "sgd",
                                      "--lr", "10", "--weight-decay", "1000", "--clip", "0", "--lr-schedule", "constant"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let errorLines = r.stderr.split(separator: "\n").filter {
            $0.hasPrefix("speech-classify: ") && !$0.contains("extracting") && !$0.contains(" files (split")
                && !$0.hasPrefix("speech-classify: warning: ") && !$0.hasPrefix("speech-classify: run folder ") && !$0.contains(" parameters; ")
        }
        #expect(errorLines.count == 1 && errorLines[0].hasPrefix("speech-classify: training diverged"), "\(r.stderr)")
        let last = try SafeTensors.read(path: out + "/last.safetensors")
        #expect(last.tensors.allSatisfy { $0.values.allSatisfy(\.isFinite) })
        let saved = Int(last.metadata["step"] ?? "") ?? -1
        let diverged = Int(errorLines.first?.split(separator: " ").last(where: { Int($0.dropLast()) != nil })?.dropLast() ?? "") ?? 0
        #expect(saved >= 1 && saved < diverged, "saved \(saved), diverged \(diverged)")
        _ = try SpeechCheckpoint.read(path: out + "/last.safetensors")
    }

    @Test func errorsAreOneLineNamingTheFileOrOption() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([String], String)] = [
            (["train", "--data", dir.path + "/none", "--out", dir.path + "/run", "--steps", "1"], "speech-classify: \(dir.path)/none"),
            (["train", "--data", dir.path, "--split", "nonsense", "--steps", "1"], "speech-classify: "),
            (["train", "--data", dir.path, "--val-fraction", "1.5", "--steps", "1"], "speech-classify: --val-fraction"),
            (["train", "--data", dir.path, "--cell", "bogus"], "speech-classify: "),
            (["predict", "--checkpoint", dir.path + "/missing.safetensors", "x.wav"], "speech-classify: \(dir.path)/missing.safetensors"),
        ]
        for (args, prefix) in cases {
            let r = try runProcess(tool, args)
            #expect(r.status == 1, "\(args): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n").filter { !$0.contains("extracting features") }
            #expect(lines.count == 1 && lines[0].hasPrefix(prefix) && !r.stderr.contains("Error:"), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/run"))
    }
}
