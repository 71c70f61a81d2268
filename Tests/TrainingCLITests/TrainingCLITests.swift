import ArgumentParser
import Foundation
import RecurrentCore
import Testing
@testable import TrainingCLI

/// A command made only of the shared groups, as a tool declares them.
struct SharedOnly: ParsableCommand {
    @OptionGroup var run: RunOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var budget: BudgetOptions
    @OptionGroup var direction: BidirectionalOption
}

@Suite struct TrainingCLITests {
    /// A temporary folder for new run folders, so no test writes into the working folder.
    static let root = FileManager.default.temporaryDirectory.path + "/cli-tests-" + UUID().uuidString

    static func defaults(_ tool: String = "x") -> TrainingDefaults {
        var d = TrainingDefaults(tool: tool)
        d.runsRoot = root
        return d
    }

    func configuration(_ arguments: [String], defaults: TrainingDefaults = TrainingCLITests.defaults()) throws -> TrainingConfiguration {
        let c = try SharedOnly.parse(arguments)
        return try TrainingCLI.configuration(run: c.run, optimization: c.optimization, budget: c.budget, defaults: defaults)
    }

    @Test func optionsReachTheConfiguration() throws {
        let c = try configuration(["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--lr", "0.3", "--lr-schedule", "cosine",
                                   "--lr-floor", "0.02", "--warmup", "7", "--clip", "0", "--steps", "90", "--eval-every", "30",
                                   "--seed", "5", "--threads", "3", "--resume", "o", "--weight-decay", "0.1"])
        #expect(c.optimizer == .sgd && c.momentum == 0.9 && c.nesterov && c.learningRate == 0.3)
        #expect(c.lrSchedule == .cosine && c.lrFloor == 0.02 && c.warmup == 7 && c.clip == 0 && c.weightDecay == 0.1)
        #expect(c.steps == 90 && c.epochs == nil && c.timeBudget == nil && c.evalEvery == 30)
        #expect(c.seed == 5 && c.threads == 3 && c.outDirectory == "o" && c.resume)
    }

    @Test func defaultsFillWhatIsNotGiven() throws {
        var d = Self.defaults("tool")
        d.clip = 1; d.evalEvery = 100; d.epochs = 3; d.lrFloor = 0.05
        let c = try configuration([], defaults: d)
        #expect(c.optimizer == .adam && c.learningRate == 2e-3 && c.clip == 1 && c.evalEvery == 100 && c.lrFloor == 0.05)
        #expect(c.epochs == 3 && c.steps == nil && !c.resume && c.logEvery == 10 && c.patience == nil)
        // Without --out: a new folder runs/<tool>/<YYYYMMDD-HHMMSS>, made empty.
        let name = (c.outDirectory as NSString).lastPathComponent
        #expect((c.outDirectory as NSString).deletingLastPathComponent == Self.root + "/tool")
        #expect(name.count == 15 && name.allSatisfy { $0.isNumber || $0 == "-" } && Array(name)[8] == "-")
        #expect(try FileManager.default.contentsOfDirectory(atPath: c.outDirectory).isEmpty)
        // A budget given replaces the default epochs; SGD's default rate is 1.
        let s = try configuration(["--time-budget", "30", "--optimizer", "sgd"], defaults: d)
        #expect(s.epochs == nil && s.timeBudget == 30 && s.learningRate == 1)
    }

    @Test func enumeratedOptionsAndBadValues() throws {
        let parsed = try SharedOnly.parse(["--cell", "rnn", "--bidirectional"])
        #expect(parsed.model.cell == .rnnTanh && parsed.direction.bidirectional)
        #expect(throws: (any Error).self) { _ = try SharedOnly.parse(["--optimizer", "adagrad"]) }
        #expect(throws: (any Error).self) { _ = try SharedOnly.parse(["--lr-schedule", "linear"]) }
        #expect(throws: TrainingSetupError.invalid(option: "--steps", reason: "give only one of --steps, --epochs, --time-budget")) {
            _ = try configuration(["--steps", "3", "--epochs", "1"])
        }
        #expect(throws: TrainingSetupError.invalid(option: "--lr-floor", reason: "must be in [0, 1] (got 2.0)")) {
            _ = try configuration(["--lr-floor", "2"])
        }
        #expect(throws: TrainingSetupError.invalid(option: "--nesterov", reason: "needs --optimizer sgd and a --momentum above 0")) {
            _ = try configuration(["--nesterov"])
        }
    }

    /// `--precision` is part of the shared run options: it reaches the configuration (and its
    /// fingerprint, bf16 only), defaults to fp32, and takes only fp32 or bf16 (emulated where
    /// the processor has no AVX512_BF16).
    @Test func precisionOption() throws {
        #expect(try configuration(["--steps", "1"]).precision == .fp32)
        #expect(throws: (any Error).self) { _ = try SharedOnly.parse(["--precision", "fp16"]) }
        let out = NSTemporaryDirectory() + "cli-precision-" + UUID().uuidString
        let parsed = try SharedOnly.parse(["--precision", "bf16", "--steps", "1", "--out", out])
        #expect(parsed.run.precision.precision == .bf16)
        // Natively or emulated, bf16 runs everywhere.
        let c = try TrainingCLI.configuration(run: parsed.run, optimization: parsed.optimization, budget: parsed.budget,
                                              defaults: TrainingDefaults(tool: "test"))
        #expect(c.precision == .bf16 && c.fingerprint["precision"] == "bf16")
    }

    @Test func helpListsEnumeratedValues() {
        let help = SharedOnly.helpMessage(columns: 400)
        #expect(help.contains("values: sgd, adam, adamw, rmsprop"))
        #expect(help.contains("values: constant, cosine, step"))
        #expect(help.contains("values: rnn_tanh, rnn_relu, lstm, gru"))
        #expect(help.contains("values: fp32, bf16"))
    }

    /// Each run without --out gets its own folder, also within the same second: `-1`, `-2`.
    @Test func newRunFoldersNeverCollide() throws {
        let root = Self.root + "/collide"
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        let a = try RunFolder.createNew(root: root, date: date)
        let b = try RunFolder.createNew(root: root, date: date)
        let c = try RunFolder.createNew(root: root, date: date)
        #expect(b == a + "-1" && c == a + "-2")
        #expect(RunFolder.timestamp(date) == { let f = DateFormatter(); f.locale = Locale(identifier: "en_US_POSIX")
                                                f.dateFormat = "yyyyMMdd-HHmmss"; return f.string(from: date) }())
    }

    /// An --out that holds a run is refused (before anything is made) unless --resume or --overwrite.
    @Test func anOutFolderHoldingARunIsRefused() throws {
        let out = Self.root + "/held"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // An empty folder, or one with other files, is free.
        try Data("x".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
        #expect(try configuration(["--out", out, "--steps", "1"]).outDirectory == out)
        try Data("{}".utf8).write(to: URL(fileURLWithPath: out + "/log.csv"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: out + "/best.safetensors"))
        #expect(throws: RunFolderError.holdsRun(path: out, files: ["best.safetensors", "log.csv"])) {
            _ = try configuration(["--out", out, "--steps", "1"])
        }
        #expect(RunFolderError.holdsRun(path: out, files: ["best.safetensors", "log.csv"]).description
                == "\(out): holds a run (best.safetensors, log.csv); use --resume \(out) to continue it, --overwrite to replace it, or another --out")
        let o = try configuration(["--out", out, "--steps", "1", "--overwrite"])
        #expect(o.overwrite && o.outDirectory == out)
        let r = try configuration(["--resume", out, "--steps", "1"])
        #expect(r.resume && r.outDirectory == out)
        #expect(throws: RunFolderError.outDiffers(resume: out, out: "elsewhere")) { _ = try configuration(["--resume", out, "--out", "elsewhere"]) }
        #expect(throws: TrainingSetupError.invalid(option: "--overwrite", reason: "cannot be combined with --resume")) {
            _ = try configuration(["--resume", out, "--overwrite"])
        }
        // RunFolder.clear removes the run's files only.
        try RunFolder.clear(out)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out) == ["notes.txt"])
    }

    /// The recorded command line leaves out the subcommand, the folder and the budget options;
    /// --resume DIR puts the saved one before the arguments given now.
    @Test func resumeReadsTheRecordedCommandLine() throws {
        #expect(TrainingCLI.recordable(["train", "--data", "d.txt", "--out", "o", "--steps", "5", "--hidden=8", "--time-budget=3",
                                        "--overwrite", "--init-from", "c.safetensors", "--epochs", "2", "--bidirectional"])
                == ["--data", "d.txt", "--hidden=8", "--bidirectional"])
        let dir = Self.root + "/recorded"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var t = TrainingConfiguration()
        t.steps = 40; t.threads = 3; t.commandLine = ["--data", "d.txt", "--hidden", "8"]
        try RunConfiguration(tool: "lm-train", training: t, task: [:], fingerprint: [:]).write(to: dir + "/config.json")
        #expect(try TrainingCLI.expandResume(["train", "--resume", dir, "--hidden", "9"], tool: "lm-train")
                == ["train", "--data", "d.txt", "--hidden", "8", "--resume", dir, "--hidden", "9"])
        #expect(try TrainingCLI.expandResume(["train", "--data", "x"], tool: "lm-train") == ["train", "--data", "x"])
        #expect(throws: (any Error).self) { _ = try TrainingCLI.expandResume(["train", "--resume", dir], tool: "frame-classify") }
        // A later value of an option wins over the recorded one.
        let parsed = try SharedOnly.parse(["--hidden", "8", "--hidden", "9", "--bidirectional", "--bidirectional"])
        #expect(parsed.model.hidden == 9 && parsed.direction.bidirectional)
        // No budget given: the saved one (and the saved threads); --time-budget adds, --steps counts all.
        let same = try configuration(["--resume", dir])
        #expect(same.steps == 40 && same.threads == 3 && !same.timeBudgetAdds)
        let more = try configuration(["--resume", dir, "--time-budget", "60"])
        #expect(more.steps == nil && more.timeBudget == 60 && more.timeBudgetAdds)
        let total = try configuration(["--resume", dir, "--steps", "90"])
        #expect(total.steps == 90 && !total.timeBudgetAdds)
    }
}
