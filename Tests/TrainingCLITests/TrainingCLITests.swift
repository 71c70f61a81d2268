import ArgumentParser
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
    func configuration(_ arguments: [String], defaults: TrainingDefaults = TrainingDefaults(out: "runs/x")) throws -> TrainingConfiguration {
        let c = try SharedOnly.parse(arguments)
        return try TrainingCLI.configuration(run: c.run, optimization: c.optimization, budget: c.budget, defaults: defaults)
    }

    @Test func optionsReachTheConfiguration() throws {
        let c = try configuration(["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--lr", "0.3", "--lr-schedule", "cosine",
                                   "--lr-floor", "0.02", "--warmup", "7", "--clip", "0", "--steps", "90", "--eval-every", "30",
                                   "--seed", "5", "--threads", "3", "--out", "o", "--resume", "--weight-decay", "0.1"])
        #expect(c.optimizer == .sgd && c.momentum == 0.9 && c.nesterov && c.learningRate == 0.3)
        #expect(c.lrSchedule == .cosine && c.lrFloor == 0.02 && c.warmup == 7 && c.clip == 0 && c.weightDecay == 0.1)
        #expect(c.steps == 90 && c.epochs == nil && c.timeBudget == nil && c.evalEvery == 30)
        #expect(c.seed == 5 && c.threads == 3 && c.outDirectory == "o" && c.resume)
    }

    @Test func defaultsFillWhatIsNotGiven() throws {
        var d = TrainingDefaults(out: "runs/tool")
        d.clip = 1; d.evalEvery = 100; d.epochs = 3; d.lrFloor = 0.05
        let c = try configuration([], defaults: d)
        #expect(c.optimizer == .adam && c.learningRate == 2e-3 && c.clip == 1 && c.evalEvery == 100 && c.lrFloor == 0.05)
        #expect(c.epochs == 3 && c.steps == nil && c.outDirectory == "runs/tool" && !c.resume)
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
    /// fingerprint, bf16 only), defaults to fp32, and takes only fp32 or bf16.
    @Test func precisionOption() throws {
        #expect(try configuration(["--steps", "1"]).precision == .fp32)
        #expect(throws: (any Error).self) { _ = try SharedOnly.parse(["--precision", "fp16"]) }
        let parsed = try SharedOnly.parse(["--precision", "bf16", "--steps", "1"])
        #expect(parsed.run.precision.precision == .bf16)
        if Precision.bf16Available {
            let c = try TrainingCLI.configuration(run: parsed.run, optimization: parsed.optimization, budget: parsed.budget,
                                                  defaults: TrainingDefaults(out: "runs/x"))
            #expect(c.precision == .bf16 && c.fingerprint["precision"] == "bf16")
        } else {
            #expect(throws: TrainingSetupError.self) {
                _ = try TrainingCLI.configuration(run: parsed.run, optimization: parsed.optimization, budget: parsed.budget,
                                                  defaults: TrainingDefaults(out: "runs/x"))
            }
        }
    }

    @Test func helpListsEnumeratedValues() {
        let help = SharedOnly.helpMessage(columns: 400)
        #expect(help.contains("values: sgd, adam, adamw, rmsprop"))
        #expect(help.contains("values: constant, cosine, step"))
        #expect(help.contains("values: rnn_tanh, rnn_relu, lstm, gru"))
        #expect(help.contains("values: fp32, bf16"))
    }
}
