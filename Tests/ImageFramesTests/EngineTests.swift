import Foundation
import RecurrentCore
import TestSupport
import Testing
@testable import ImageFrames

/// Writes a small `shapes` set (6 classes, 8x8 frames) under `root`.
private func writeSmallShapes(_ root: String, perClass: Int = 6, frames: Int = 4) throws {
    let options = ShapesOptions(width: 8, height: 8, frames: frames, antiAlias: .off)
    try FrameGenerator.writeShapes(root: root, trainPerClass: perClass, testPerClass: 2, seed: 7, options: options)
}

@Suite struct ValidationSplitTests {
    /// The validation clips come from the training folder, never from the test folder, and
    /// they do not train.
    @Test func validationIsPartOfTheTrainingFolderOnly() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        var o = FrameTrainingOptions()
        o.dataPath = tmp.sub("d"); o.width = 4; o.height = 4; o.valFraction = 0.25
        var t = TrainingConfiguration()
        t.steps = 1; t.threads = 1; t.outDirectory = tmp.sub("run")
        let run = try FrameTrainingRun(options: o, training: t)
        let train = Set(run.train.map(\.source)), validation = Set(run.validation.map(\.source))
        let test = Set(run.test.examples.map(\.source))
        #expect(validation.count == 9 && train.count == 27 && test.count == 12)
        #expect(train.isDisjoint(with: validation) && test.isDisjoint(with: validation))
        #expect(validation.allSatisfy { $0.hasPrefix(tmp.sub("d/train/")) })

        // The normalisation statistics come from the training folder (validation share
        // included), never from the test folder.
        let raw = try FrameSplit.load(root: tmp.sub("d"), layout: .clips, config: run.features, scope: nil, threads: 1)
        #expect(run.model.info.statistics == (try FeatureStatistics.compute(raw.train.examples)))
    }

    /// A validation share of a one-example training set is refused, naming the option.
    @Test func validationNeedsTwoTrainingExamples() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let options = ShapesOptions(width: 8, height: 8, frames: 2, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("d"), trainPerClass: 1, testPerClass: 1, seed: 1, options: options)
        // One class left, with one training clip.
        let classes = try FileManager.default.contentsOfDirectory(atPath: tmp.sub("d/train")).sorted()
        for name in classes.dropFirst() {
            try FileManager.default.removeItem(atPath: tmp.sub("d/train/" + name))
            try FileManager.default.removeItem(atPath: tmp.sub("d/test/" + name))
        }
        var o = FrameTrainingOptions()
        o.dataPath = tmp.sub("d"); o.width = 4; o.height = 4; o.valFraction = 0.5
        var t = TrainingConfiguration()
        t.steps = 1; t.threads = 1; t.outDirectory = tmp.sub("run")
        #expect(throws: TrainingSetupError.invalid(option: "--val-fraction", reason: "needs at least 2 training examples (got 1)")) {
            _ = try FrameTrainingRun(options: o, training: t)
        }
    }
}

@Suite(.serialized) struct FrameResumeTests {
    func options(_ data: String) -> FrameTrainingOptions {
        var o = FrameTrainingOptions()
        o.dataPath = data; o.width = 4; o.height = 4; o.batch = 5; o.shift = 1; o.valFraction = 0.1
        o.cell = .gru; o.layers = 2; o.hidden = 6; o.projection = 0; o.dropout = 0.25
        return o
    }

    func training(_ out: String, steps: Int, resume: Bool = false) -> TrainingConfiguration {
        var t = TrainingConfiguration()
        t.learningRate = 0.01; t.steps = steps; t.evalEvery = 4; t.seed = 5; t.threads = 2
        // A constant rate after warm-up: a cosine would run over each run's own --steps.
        t.warmup = 2; t.outDirectory = out; t.resume = resume
        return t
    }

    /// 36 training clips: 4 validate, 32 train in 7 batches of 5; 16 steps cross two epoch
    /// boundaries (new shuffles, new shifts) and the resume point (8, an evaluation point, so
    /// both runs choose `best.safetensors` among the same models) is mid-epoch.
    @Test func resumeEqualsUninterruptedRun() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let (full, fullRun) = try quietRun(options(tmp.sub("d")), training(tmp.sub("full"), steps: 16))
        #expect(full.summary.stepLosses.count == 16)
        #expect(fullRun.engine.task.data.batchesPerEpoch == 7)

        let (first, _) = try quietRun(options(tmp.sub("d")), training(tmp.sub("split"), steps: 8))
        #expect(first.summary.stepLosses == Array(full.summary.stepLosses.prefix(8)))
        let (second, _) = try quietRun(options(tmp.sub("d")), training(tmp.sub("split"), steps: 16, resume: true))
        #expect(second.summary.steps == 16)
        #expect(second.summary.stepLosses == Array(full.summary.stepLosses.suffix(8)))
        for name in ["last.safetensors", "best.safetensors"] {
            #expect(try differingTensors(tmp.sub("full/" + name), tmp.sub("split/" + name)) == [], "\(name) differs after resume")
        }
        #expect(second.test == full.test && second.lastTest == full.lastTest)

        // Another seed draws other dropout masks, shuffles and shifts: the comparison above can fail.
        var other = training(tmp.sub("other"), steps: 16)
        other.seed = 6
        #expect(try quietRun(options(tmp.sub("d")), other).0.summary.stepLosses != full.summary.stepLosses)
    }

    /// A changed task setting is refused, naming the configuration field; nothing is written.
    @Test func resumeWithChangedSettingIsRefused() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        _ = try quietRun(options(tmp.sub("d")), training(tmp.sub("run"), steps: 3))
        let before = fileContents(under: tmp.sub("run"))
        var o = options(tmp.sub("d"))
        o.shift = 2
        do {
            _ = try quietRun(o, training(tmp.sub("run"), steps: 6, resume: true))
            Issue.record("resume with another --shift was accepted")
        } catch {
            #expect("\(error)" == "\(tmp.sub("run")): cannot --resume: this setting differs from the saved run: --shift (was 1, now 2); "
                    + "leave it out to continue the run, or start a new one (--init-from \(tmp.sub("run"))/best.safetensors to start from its weights)")
        }
        o = options(tmp.sub("d"))
        o.valFraction = 0.2
        do {
            _ = try quietRun(o, training(tmp.sub("run"), steps: 6, resume: true))
            Issue.record("resume with another --val-fraction was accepted")
        } catch {
            #expect("\(error)".contains("--val-fraction (was 0.1, now 0.2)"), "\(error)")
        }
        #expect(fileContents(under: tmp.sub("run")) == before)
    }
}

/// The built `frame-classify` (next to the test bundle after `swift build`/`swift test`).
@Suite(.serialized, .enabled(if: builtExecutable("frame-classify") != nil, "frame-classify is not built next to the test bundle"))
struct FrameCommandLineTests {
    let tool = builtExecutable("frame-classify") ?? "frame-classify"

    func trainArguments(_ data: String, out: String, steps: Int = 400) -> [String] {
        ["train", "--data", data, "--out", out, "--size", "4x4", "--hidden", "8", "--projection", "0", "--batch", "4",
         "--steps", "\(steps)", "--eval-every", "40", "--threads", "2", "--dropout", "0.1", "--shift", "1",
         "--lr-schedule", "cosine", "--warmup", "5", "--seed", "2"]
    }

    /// SIGINT and SIGTERM finish the step, save, print one line saying where and how to resume
    /// and exit 130 / 143; resuming then ends with the weights of an uninterrupted run, bit for bit.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalSavesAndResumeMatchesUninterruptedRun(signal: Int32) throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let full = try runProcess(tool, trainArguments(tmp.sub("d"), out: tmp.sub("full")))
        #expect(full.status == 0, "\(full.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data((full.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
        #expect(summary?["steps"] as? Int == 400 && (summary?["val_metric"] as? [String: Any])?["name"] as? String == "val_accuracy")
        #expect(Set(summary?.keys.map { $0 } ?? []) == Set(TrainingRunSummary.keys))
        #expect((summary?["test_metric"] as? [String: Any])?["name"] as? String == "test_accuracy")
        #expect((summary?["throughput"] as? [String: Any])?["unit"] as? String == "clips/s")
        #expect((summary?["metrics"] as? [String: Any])?["test_accuracy"] != nil)

        let out = tmp.sub("split")
        let r = try runInterrupted(tool, trainArguments(tmp.sub("d"), out: out), signal: signal)
        #expect(r.status == 128 + signal, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(last.hasPrefix("frame-classify: \(out): stopped by \(name) after step ") && last.hasSuffix("continue with --resume \(out)"),
                "\(last)")
        let stateStep = try SafeTensors.read(path: out + "/last.train.safetensors").metadata["step"]
        #expect(try SafeTensors.read(path: out + "/last.safetensors").metadata["step"] == stateStep)
        #expect(Int(stateStep ?? "") ?? 400 < 400)

        let resumed = try runProcess(tool, trainArguments(tmp.sub("d"), out: out) + ["--resume", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let x = try SafeTensors.read(path: tmp.sub("full/last.safetensors")), y = try SafeTensors.read(path: out + "/last.safetensors")
        #expect(x.tensors == y.tensors)
        #expect(x.metadata["step"] == "400" && y.metadata["step"] == "400")
        // The held-out figures printed at the end agree too.
        func test(_ s: String) -> [String: Double]? {
            let line = s.split(separator: "\n").last.map(String.init) ?? ""
            let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (json?["metrics"] as? [String: Any])?.compactMapValues { $0 as? Double }.filter { $0.key.hasPrefix("test_") }
        }
        let a = test(full.stdout), b = test(resumed.stdout)
        #expect(a?["test_accuracy"] != nil && a?["test_loss"] != nil && a == b, "\(String(describing: a)) vs \(String(describing: b))")
    }

    /// A model that cannot fit in memory is refused in one line before it is allocated.
    @Test func oversizedModelIsRefused() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let r = try runProcess(tool, ["train", "--data", tmp.sub("d"), "--out", tmp.sub("run"), "--size", "4x4", "--hidden", "65536",
                                      "--layers", "4", "--steps", "1"])
        #expect(r.status == 1 && r.stdout.isEmpty, "\(r.stderr)")
        let line = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("frame-classify: the model (") && line.contains(" of memory but "), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("run")))
    }

    /// `--lr 1e30` drives the loss to huge but finite values: the run ends normally with one
    /// warning line.
    @Test func hugeButFiniteLossesGiveAWarning() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let r = try runProcess(tool, ["train", "--data", tmp.sub("d"), "--out", tmp.sub("run"), "--size", "4x4", "--hidden", "8",
                                      "--batch", "4", "--steps", "6", "--eval-every", "1", "--threads", "1", "--lr", "1e30", "--clip", "0"])
        #expect(r.status == 0, "\(r.stderr)")
        let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("frame-classify: warning: ") }
        #expect(warnings.count == 1 && warnings[0].hasSuffix("the learning rate may be too high"), "\(r.stderr)")
        #expect(try SafeTensors.read(path: tmp.sub("run") + "/best.safetensors").metadata["step"] != nil)
    }

    /// Weight decay that multiplies the weights by -9999 a step overflows them within a few
    /// steps: one line, exit 1, and the last checkpoint is the last good one.
    @Test func divergingRunStopsAndKeepsTheLastGoodCheckpoint() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let out = tmp.sub("run")
        let r = try runProcess(tool, ["train", "--data", tmp.sub("d"), "--out", out, "--size", "4x4", "--hidden", "8", "--batch", "4",
                                      "--steps", "60", "--eval-every", "2", "--threads", "1", "--optimizer", "sgd", "--lr", "10",
                                      "--weight-decay", "1000", "--clip", "0"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("frame-classify: training diverged") }
        #expect(errorLines.count == 1, "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").last?.hasPrefix("frame-classify: training diverged: ") == true)
        let diverged = Int(errorLines.first?.split(separator: " ").last(where: { Int($0.dropLast()) != nil })?.dropLast() ?? "") ?? 0
        let last = try FrameModel.load(path: out + "/last.safetensors")   // refuses non-finite weights
        let saved = Int(try SafeTensors.read(path: out + "/last.safetensors").metadata["step"] ?? "") ?? -1
        #expect(saved >= 2 && saved <= diverged && saved % 2 == 0, "saved \(saved), diverged \(diverged)")
        #expect(last.network.stateDict.allSatisfy { $0.values.allSatisfy(\.isFinite) })
    }

    /// `--resume` with another model size is refused with one line naming the setting.
    @Test func resumeWithChangedSettingIsRefused() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let out = tmp.sub("run")
        #expect(try runProcess(tool, trainArguments(tmp.sub("d"), out: out, steps: 6)).status == 0)
        let args = trainArguments(tmp.sub("d"), out: out, steps: 12).map { $0 == "8" ? "9" : $0 } + ["--resume", out]
        let r = try runProcess(tool, args)
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        // After the loading lines, one line says why.
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains("resume") }.count == 1)
        #expect(lines.last.map(String.init)?.hasPrefix("frame-classify: \(out): cannot --resume: ") == true
                && lines.last?.contains("--hidden (was 8, now 9)") == true, "\(r.stderr)")
    }

    /// Bad options and data end with one line `frame-classify: <option or file>: <what>` and exit 1.
    @Test func badInputGivesOneLine() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        try writeSmallShapes(tmp.sub("d"))
        let cases: [([String], String)] = [
            (["train", "--data", tmp.sub("none"), "--steps", "1", "--out", tmp.sub("o")], "frame-classify: " + tmp.sub("none") + ": "),
            (["train", "--data", tmp.sub("d"), "--val-fraction", "1", "--steps", "1", "--out", tmp.sub("o")], "frame-classify: --val-fraction: "),
            (["train", "--data", tmp.sub("d"), "--size", "4y4", "--steps", "1", "--out", tmp.sub("o")], "frame-classify: --size: "),
            (["train", "--data", tmp.sub("d"), "--cell", "tree", "--out", tmp.sub("o")], "frame-classify: "),
            (["train", "--data", tmp.sub("d"), "--steps", "1", "--epochs", "2", "--out", tmp.sub("o")], "frame-classify: --steps: "),
            (["generate", "--kind", "cubes", "--out", tmp.sub("o")], "frame-classify: "),
        ]
        for (args, prefix) in cases {
            let r = try runProcess(tool, args)
            #expect(r.status == 1, "\(args): \(r.status)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && r.stderr.hasPrefix(prefix), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.sub("o")))
    }
}
