import ArgumentParser
import Foundation
import RecurrentCore
import Seq2Seq
import TrainingCLI

/// Prints one line to standard error.
func printError(_ text: String) { TrainingCLI.printError(text) }

extension ToyTask: ExpressibleByArgument {}
extension AttentionKind: ExpressibleByArgument {}
extension TokenLevel: ExpressibleByArgument {}

/// Options shared by the commands that make toy pairs.
struct TaskOptions: ParsableArguments {
    @Option(help: "Shortest string for reverse/sort.") var minLength: Int = 1
    @Option(help: "Longest string for reverse/sort (at most 40).") var maxLength: Int = 10
    @Option(help: "Characters of reverse/sort strings.") var alphabet: String = "abcdefghijklmnopqrstuvwxyz"

    var toyOptions: ToyTaskOptions { ToyTaskOptions(alphabet: Array(alphabet), minLength: minLength, maxLength: maxLength) }

    func generate(_ task: ToyTask, count: Int, seed: UInt64) throws -> [SentencePair] {
        var g = try ToyPairGenerator(task: task, options: toyOptions, seed: seed)
        return try g.generate(count: count)
    }
}

@main
struct TranslateToy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate-toy",
        abstract: "Encoder-decoder translation with attention and beam search on toy tasks and TSV sentence pairs.",
        subcommands: [Demo.self, Generate.self, Train.self, Translate.self, Eval.self],
        defaultSubcommand: Demo.self)

    static func main() { TrainingCLI.main(Self.self, tool: "translate-toy") }
}

/// translate-toy's defaults for the shared training options.
let translateDefaults: TrainingDefaults = {
    var d = TrainingDefaults(tool: "translate-toy")
    d.seed = 1; d.layers = 1; d.hidden = 128; d.batch = 64; d.learningRate = 3e-3
    d.lrSchedule = .cosine; d.lrFloor = 0.05; d.clip = 5; d.evalEvery = 250
    return d
}()

/// Trains with translate-toy's progress label, plot and signal handling; returns the JSON summary.
func train(_ options: Seq2SeqTrainingOptions, _ training: TrainingConfiguration) throws -> String {
    try Seq2SeqTraining.train(options: options, training: training, log: { printError($0) }, configure: { engine in
        engine.plotter = TrainingCLI.writeLossPlot
        engine.handlesSignals = true
        engine.endsOtherRanksAfterRun = true
    }).json
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write toy pairs as TSV source<TAB>target.")
    @Option(help: "Task: \(ToyTask.allCases.map(\.rawValue).joined(separator: ", ")).") var task: ToyTask
    @Option(help: "Number of pairs (distinct sources).") var count: Int = 1000
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Output file (default: standard output).") var out: String?
    @OptionGroup var taskOptions: TaskOptions

    func run() throws {
        try TrainingCLI.failing("translate-toy") {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            let pairs = try taskOptions.generate(task, count: count, seed: seed)
            if let out { try PairTSV.write(pairs, to: out) } else { for p in pairs { print(p) } }
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; last stdout line is a JSON summary.",
        discussion: "Give --task or --data (a TSV file of source<TAB>target pairs). --dropout acts between the stacked recurrent "
            + "layers of encoder and decoder (needs --layers 2 or more); --bidirectional makes the encoder bidirectional. "
            + "best.safetensors has the best validation exact match; test.tsv holds the held-out test pairs. "
            + "--init-from CHECKPOINT reads the pairs with the checkpoint's source and target vocabularies (and their "
            + "tokenization, whatever --level says): tokens outside them become <unk>, counted in one warning line. "
            + "--data is split by --val-fraction and --test-fraction (seeded by --seed; the split is printed); --valid and "
            + "--test give those parts as files instead. Learning rate: --warmup steps rising linearly to --lr, then constant, "
            + "cosine (default: from --lr down to --lr × --lr-floor at the end of the --steps/--epochs/--time-budget budget) or "
            + "step (× --lr-decay-factor every --lr-decay-every steps). "
            + "Defaults: --cell lstm --layers 1 --hidden 128 "
            + "--dropout 0 --optimizer adam --lr 3e-3 --lr-schedule cosine --lr-floor 0.05 --clip 5 --batch 64 --epochs 1 "
            + "--eval-every 250 --val-fraction 0.1 --test-fraction 0.1 --seed 1 --threads 2 --log-every 10; a new run folder runs/translate-toy/<YYYYMMDD-HHMMSS> unless --out or --resume is given.")
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var bidirectional: BidirectionalOption
    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var budget: BudgetOptions
    @Option(help: "Toy task to generate pairs for.") var task: ToyTask?
    @Option(help: "Pairs generated for --task.") var count: Int = 20000
    @Option(help: "Tokens of source and target: char or word (default: per task; char for --data).") var level: TokenLevel?
    @Option(help: "Embedding width.") var embedding: Int = 32
    @Option(help: "Attention: none, dot, general, additive.") var attention: AttentionKind = .general
    @Option(name: .customLong("teacher-forcing"), help: "Teacher-forcing ratio in 0…1.") var teacherForcing: Float = 1
    @OptionGroup var testSplit: TestFractionOption
    @Option(help: "TSV file of validation pairs (instead of --val-fraction of --data).") var valid: String?
    @Option(help: "TSV file of test pairs (instead of --test-fraction of --data).") var test: String?
    @OptionGroup var taskOptions: TaskOptions

    func run() throws {
        try TrainingCLI.failing("translate-toy") {
            var run = runOptions
            if run.threads == nil { run.threads = min(2, Threading.defaultThreads) }
            let training = try TrainingCLI.configuration(run: run, optimization: optimization, budget: budget, defaults: translateDefaults)
            TrainingCLI.printSystemInfo(tool: "translate-toy", verbose: runOptions.verbose, threads: training.threads)
            var o = Seq2SeqTrainingOptions()
            o.task = task; o.dataPath = runOptions.data; o.count = count
            o.toyOptions = taskOptions.toyOptions
            o.sourceLevel = level; o.targetLevel = level
            o.cell = model.cell ?? translateDefaults.cell
            o.layers = model.layers ?? translateDefaults.layers
            o.hidden = model.hidden ?? translateDefaults.hidden
            o.dropout = model.dropout ?? translateDefaults.dropout
            o.embedding = embedding; o.bidirectional = bidirectional.bidirectional; o.attention = attention
            o.teacherForcing = teacherForcing
            o.batch = budget.batch ?? translateDefaults.batch
            o.valFraction = runOptions.valFraction ?? translateDefaults.valFraction
            o.testFraction = testSplit.value(translateDefaults); o.validPath = valid; o.testPath = test
            print(try train(o, training))
        }
    }
}

struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Translate TEXT arguments, or lines from standard input.",
        discussion: "Text format prints the translations alone; json and tsv print each input with its translation and the "
            + "translation's probability under the model. --top-k K (K > 1) prints the K best finished hypotheses of the beam "
            + "search (an n-best list; text format then prints the input first, like json and tsv), each with its probability "
            + "exp(sum of its token log-probabilities, </s> included); they are ranked by the beam's own score, that "
            + "log-probability divided by the output length in tokens (</s> included), so the probabilities need not fall "
            + "monotonically. A --beam narrower than K is widened to K; the search then runs until K hypotheses have ended "
            + "(hypotheses cut off at the maximum length fill the list only when fewer end).")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Beam width (1 = greedy; widened to --top-k when narrower).") var beam: Int = 1
    @Option(name: .customLong("top-k"), help: "Translations per input (n-best list of the beam search), best first.") var topK: Int = 1
    @Option(help: "Output: text (the translation), json or tsv (input, translation, probability).") var format: OutputFormat = .text
    @Option(name: .customLong("attention-png"), help: "Draw the attention heatmap of one input (see --attention-input) to this PNG.")
    var attentionPng: String?
    @Option(name: .customLong("attention-input"), help: "Which input --attention-png draws (1 = the first).") var attentionInput: Int = 1
    @Argument(help: "Texts to translate.") var text: [String] = []

    func run() throws {
        try TrainingCLI.failing("translate-toy") {
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            guard topK >= 1 else { throw ValidationError("--top-k: must be at least 1 (got \(topK))") }
            let bundle = try Seq2SeqCheckpoint.load(path: checkpoint)
            var inputs = text
            var places = text.indices.map { "argument \($0 + 1)" }
            if inputs.isEmpty {
                while let line = readLine() { inputs.append(line) }
                places = inputs.indices.map { "standard input line \($0 + 1)" }
            }
            if attentionPng != nil && !inputs.indices.contains(attentionInput - 1) {
                throw ValidationError("--attention-input: \(attentionInput) is not one of the \(inputs.count) input(s)")
            }
            var unknown: [String: Int] = [:]
            if topK > 1 {
                let lists = try bundle.translateNBest(inputs, places: places, beam: beam, count: topK, unknown: &unknown)
                reportUnknown(unknown)
                for (input, list) in zip(inputs, lists) {
                    let ranked = list.map { RankedLabel(label: $0.text, probability: Foundation.exp($0.decoded.logProb)) }
                    print(PredictionOutput.line(PredictionLine(input: input, ranked: ranked), format: format))
                }
                if let png = attentionPng {
                    try bundle.writeAttentionHeatmap(source: inputs[attentionInput - 1], beam: max(beam, topK), to: png)
                    printError("translate-toy: attention heatmap of input \(attentionInput) written to \(png)")
                }
                return
            }
            let out = try bundle.translate(inputs, places: places, beam: beam, unknown: &unknown)
            reportUnknown(unknown)
            for (input, o) in zip(inputs, out) {
                if format == .text {
                    print(o.text)
                } else {
                    let line = PredictionLine(input: input, ranked: [RankedLabel(label: o.text, probability: Foundation.exp(o.decoded.logProb))])
                    print(PredictionOutput.line(line, format: format))
                }
            }
            if let png = attentionPng {
                try bundle.writeAttentionHeatmap(source: inputs[attentionInput - 1], beam: beam, to: png)
                printError("translate-toy: attention heatmap of input \(attentionInput) written to \(png)")
            }
        }
    }
}

func reportUnknown(_ unknown: [String: Int]) {
    guard !unknown.isEmpty else { return }
    let list = unknown.keys.sorted().prefix(10).map { "\"\($0)\"" }.joined(separator: ", ")
    printError("translate-toy: warning: \(unknown.values.reduce(0, +)) token(s) unknown to the model were read as <unk>: \(list)\(unknown.count > 10 ? ", …" : "")")
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exact match, token accuracy and corpus BLEU-4 on a TSV file.",
        discussion: "Without --data: the run's held-out test pairs, test.tsv beside the checkpoint (never its training pairs).")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "TSV file of source<TAB>target pairs (default: test.tsv beside the checkpoint).") var data: String?
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1
    @Option(help: "Metrics as text, json (one object) or tsv (name, value).") var format: OutputFormat = .text
    @Option(help: "Write the mistranslated pairs here (TSV: input, reference, prediction).") var errors: String?
    @Option(help: "Write the attention heatmap of the first pair to this PNG.") var attentionPng: String?

    func run() throws {
        try TrainingCLI.failing("translate-toy") {
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            let bundle = try Seq2SeqCheckpoint.load(path: checkpoint)
            let path: String, what: String
            if let data {
                path = data; what = data
            } else {
                path = URL(fileURLWithPath: checkpoint).deletingLastPathComponent().appendingPathComponent("test.tsv").path
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ValidationError("\(path): no test split beside the checkpoint; give --data")
                }
                what = "the run's test split \(path)"
            }
            let (pairs, lines) = try PairTSV.readNumbered(path: path)
            let r = try bundle.evaluate(pairs, places: lines.map { "\(path):\($0)" }, beam: beam)
            reportUnknown(r.unknownTokens)
            let entries: [(name: String, value: MetricValue)] = [
                ("data", .text(what)), ("pairs", .count(pairs.count)), ("exact match", .fraction(r.exactMatch)),
                ("token accuracy", .fraction(r.tokenAccuracy)), ("BLEU-4", .number(100 * r.bleu.score, digits: 2)),
                ("brevity penalty", .number(r.bleu.brevityPenalty, digits: 4))]
            for line in PredictionOutput.metrics(entries, format: format) { print(line) }
            if let errors {
                let tokenization = bundle.targetVocabulary.tokenization
                var wrong: [(input: String, reference: String, prediction: String)] = []
                for (pair, hypothesis) in zip(pairs, r.hypotheses) where hypothesis != tokenization.tokenize(pair.target) {
                    wrong.append((pair.source, pair.target, tokenization.join(hypothesis)))
                }
                try PredictionOutput.writeErrors(wrong, to: errors)
                printError("translate-toy: eval: \(wrong.count) mistranslated pair(s) written to \(errors)")
            }
            if let png = attentionPng, let first = pairs.first {
                try bundle.writeAttentionHeatmap(source: first.source, beam: beam, to: png)
                printError("translate-toy: attention heatmap: \(png)")
            }
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Demo: a fixed number of training steps on the dates task, then translations.",
        discussion: "Fixed steps, seed and batch shards: every machine with the same kernels prints the same figures; "
            + "a slower machine only takes longer.")
    @Option(help: "Training steps (batches of 64 pairs).") var steps: Int = 1500
    @Option(help: "Run folder (default: a new runs/translate-toy/<YYYYMMDD-HHMMSS>).") var out: String?

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps: must be at least 1 (got \(steps))") }
    }

    func run() throws {
        try TrainingCLI.failing("translate-toy") {
            print("translate-toy demo: learning to turn dates written in many formats into ISO 8601 (\(steps) steps of training)")
            var o = Seq2SeqTrainingOptions()
            o.task = .dates; o.count = 30000
            var training = TrainingConfiguration()
            training.learningRate = 3e-3; training.lrSchedule = .cosine; training.lrFloor = 0.05; training.clip = 5
            training.steps = steps; training.epochs = nil; training.evalEvery = 500; training.seed = 7
            training.threads = 2
            let out = try out ?? RunFolder.createNew(root: "runs/translate-toy")
            training.outDirectory = out
            let json = try train(o, training)
            let bundle = try Seq2SeqCheckpoint.load(path: out + "/best.safetensors")
            let examples = ["Tuesday, March 3 1987", "03/04/21", "the 1st of December, 1999", "JUL 14, 2049", "9.11.2001"]
            var unknown: [String: Int] = [:]
            let results = try bundle.translate(examples, beam: 5, unknown: &unknown)
            reportUnknown(unknown)
            for (e, r) in zip(examples, results) { print("  \(e)  ->  \(r.text)") }
            let test = try PairTSV.read(path: out + "/test.tsv")
            let r = try bundle.evaluate(test)
            print(String(format: "held-out exact match: %.2f %% of %d test pairs", 100 * r.exactMatch, test.count))
            print(json)
        }
    }
}
