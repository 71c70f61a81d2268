import ArgumentParser
import Foundation
import Plotting
import RecurrentCore
import Seq2Seq

/// Prints one line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Runs `body`; any error becomes one line on standard error and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        printError("translate-toy: \(error)")
        throw ExitCode.failure
    }
}

extension ToyTask: ExpressibleByArgument {}
extension AttentionKind: ExpressibleByArgument {}
extension Tokenization: ExpressibleByArgument {}

/// Options shared by the commands that make toy pairs.
struct TaskOptions: ParsableArguments {
    @Option(help: "Shortest string for reverse/sort.") var minLength: Int = 1
    @Option(help: "Longest string for reverse/sort (at most 40).") var maxLength: Int = 10
    @Option(help: "Characters of reverse/sort strings.") var alphabet: String = "abcdefghijklmnopqrstuvwxyz"

    func generate(_ task: ToyTask, count: Int, seed: UInt64) throws -> [SentencePair] {
        var g = try ToyPairGenerator(task: task, options: ToyTaskOptions(alphabet: Array(alphabet), minLength: minLength, maxLength: maxLength), seed: seed)
        return try g.generate(count: count)
    }
}

/// Default tokenisation of each toy task: (source, target).
func defaultLevels(_ task: ToyTask?) -> (Tokenization, Tokenization) {
    switch task {
    case .numberWords: return (.word, .char)
    case .digitsToWords: return (.char, .word)
    default: return (.char, .char)
    }
}

@main
struct TranslateToy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate-toy",
        abstract: "Encoder-decoder translation with attention and beam search on toy tasks and TSV sentence pairs.",
        subcommands: [Demo.self, Generate.self, Train.self, Translate.self, Eval.self],
        defaultSubcommand: Demo.self)
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write toy pairs as TSV source<TAB>target.")
    @Option(help: "Task: \(ToyTask.allCases.map(\.rawValue).joined(separator: ", ")).") var task: ToyTask
    @Option(help: "Number of pairs (distinct sources).") var count: Int = 1000
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Output file (default: standard output).") var out: String?
    @OptionGroup var taskOptions: TaskOptions

    func run() throws {
        try reportingErrors {
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            let pairs = try taskOptions.generate(task, count: count, seed: seed)
            if let out { try PairTSV.write(pairs, to: out) } else { for p in pairs { print(p) } }
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a model; last stdout line is a JSON summary.")
    @Option(help: "Toy task to generate pairs for.") var task: ToyTask?
    @Option(help: "TSV file of source<TAB>target pairs.") var data: String?
    @Option(help: "Pairs generated for --task.") var count: Int = 20000
    @Option(help: "Tokens: char or word (default: per task; char for --data).") var level: Tokenization?
    @Option(help: "Cell: lstm, gru, rnn.") var cell: String = "lstm"
    @Option(help: "Recurrent layers.") var layers: Int = 1
    @Option(help: "Hidden width.") var hidden: Int = 128
    @Option(help: "Embedding width.") var embedding: Int = 32
    @Flag(help: "Bidirectional encoder (directions summed).") var bidirectional = false
    @Option(help: "Attention: none, dot, general, additive.") var attention: AttentionKind = .general
    @Option(help: "Teacher-forcing ratio in 0…1.") var teacherForcing: Float = 1
    @Option(help: "Pairs per batch.") var batch: Int = 64
    @Option(help: "Optimizer steps.") var steps: Int?
    @Option(help: "Epochs.") var epochs: Double?
    @Option(help: "Seconds of training.") var timeBudget: Double?
    @Option(help: "Adam learning rate.") var learningRate: Float = 3e-3
    @Option(help: "Validate every this many steps.") var evalEvery: Int = 250
    @Option(help: "Output directory.") var out: String = "translate-run"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Worker threads (batch shards).") var threads: Int = min(2, Threading.defaultThreads)
    @OptionGroup var taskOptions: TaskOptions

    func validate() throws {
        if (task == nil) == (data == nil) { throw ValidationError("give exactly one of --task and --data") }
        if CellKind(argument: cell) == nil { throw ValidationError("unknown --cell '\(cell)' (lstm, gru, rnn)") }
        if steps == nil && epochs == nil && timeBudget == nil { throw ValidationError("give --steps, --epochs or --time-budget") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let pairs: [SentencePair]
            if let task { pairs = try taskOptions.generate(task, count: count, seed: seed) } else { pairs = try PairTSV.read(path: data ?? "") }
            var (srcLevel, tgtLevel) = defaultLevels(task)
            if let level { srcLevel = level; tgtLevel = level }
            let summary = try trainModel(pairs: pairs, sourceLevel: srcLevel, targetLevel: tgtLevel, taskName: task?.rawValue ?? "data",
                                         settings: self, log: { printError($0) })
            print(summary)
        }
    }
}

/// Trains per `settings`, writes `test.tsv` and checkpoints into `settings.out`, and returns
/// the JSON summary line (validation and test exact match).
func trainModel(pairs: [SentencePair], sourceLevel: Tokenization, targetLevel: Tokenization, taskName: String,
                settings s: Train, log: @escaping (String) -> Void) throws -> String {
    let prepared = try Seq2SeqData.prepare(pairs, tokenization: sourceLevel, targetTokenization: targetLevel, seed: s.seed)
    guard !prepared.train.isEmpty else { throw Seq2SeqError.invalidTraining("no training pairs after the split") }
    let config = Seq2SeqConfig(cell: CellKind(argument: s.cell) ?? .lstm, layers: s.layers, hidden: s.hidden, embedding: s.embedding,
                               bidirectional: s.bidirectional, attention: s.attention,
                               sourceVocabSize: prepared.sourceVocabulary.count, targetVocabSize: prepared.targetVocabulary.count,
                               maxSourceLength: max(prepared.longestSource, 1), maxTargetLength: prepared.longestTarget + 5)
    let model = try Seq2SeqModel(config: config, seed: s.seed, threads: s.threads)
    let bundle = Seq2SeqBundle(model: model, sourceVocabulary: prepared.sourceVocabulary, targetVocabulary: prepared.targetVocabulary)
    var options = TrainingOptions()
    options.batchSize = s.batch; options.steps = s.steps; options.epochs = s.epochs; options.timeBudget = s.timeBudget
    options.learningRate = s.learningRate; options.teacherForcing = s.teacherForcing; options.seed = s.seed
    options.evaluateEvery = max(1, s.evalEvery); options.outputDirectory = s.out
    let trainer = try Seq2SeqTrainer(bundle: bundle, train: prepared.train, validation: prepared.split.validation, options: options)
    trainer.metadata = ["task": taskName]
    try FileManager.default.createDirectory(atPath: s.out, withIntermediateDirectories: true)
    if !prepared.split.test.isEmpty { try PairTSV.write(prepared.split.test, to: s.out + "/test.tsv") }
    log("translate-toy: \(prepared.split.train.count) training, \(prepared.split.validation.count) validation, \(prepared.split.test.count) test pairs; \(model.parameterCount) parameters; vocabularies \(config.sourceVocabSize)/\(config.targetVocabSize)")
    let progress = ProgressReporter(totalSteps: options.steps, timeBudget: options.timeBudget, label: "translate-toy")
    let summary = try trainer.run(progress: progress)
    var json = summary.jsonLine()
    if !prepared.split.test.isEmpty {
        let best = try Seq2SeqCheckpoint.load(path: s.out + "/best.safetensors")
        let test = try best.evaluate(prepared.split.test)
        json.removeLast()
        json += ",\"test_exact_match\":\(test.exactMatch),\"test_pairs\":\(prepared.split.test.count)}"
    }
    return json
}

struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Translate TEXT arguments, or lines from standard input.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1
    @Argument(help: "Texts to translate.") var text: [String] = []

    func run() throws {
        try reportingErrors {
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            let bundle = try Seq2SeqCheckpoint.load(path: checkpoint)
            var inputs = text
            if inputs.isEmpty { while let line = readLine() { inputs.append(line) } }
            var unknown: [String: Int] = [:]
            let out = try bundle.translate(inputs, beam: beam, unknown: &unknown)
            reportUnknown(unknown)
            for o in out { print(o.text) }
        }
    }
}

func reportUnknown(_ unknown: [String: Int]) {
    guard !unknown.isEmpty else { return }
    let list = unknown.keys.sorted().prefix(10).map { "\"\($0)\"" }.joined(separator: ", ")
    printError("translate-toy: warning: \(unknown.values.reduce(0, +)) token(s) unknown to the model were read as <unk>: \(list)\(unknown.count > 10 ? ", …" : "")")
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Exact match, token accuracy and corpus BLEU-4 on a TSV file.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "TSV file of source<TAB>target pairs.") var data: String
    @Option(help: "Beam width (1 = greedy).") var beam: Int = 1
    @Option(help: "Write the attention heatmap of the first pair to this PNG.") var attentionPng: String?

    func run() throws {
        try reportingErrors {
            guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
            let bundle = try Seq2SeqCheckpoint.load(path: checkpoint)
            let pairs = try PairTSV.read(path: data)
            let r = try bundle.evaluate(pairs, beam: beam)
            reportUnknown(r.unknownTokens)
            print("pairs: \(pairs.count)")
            print(String(format: "exact match: %.2f %%", 100 * r.exactMatch))
            print(String(format: "token accuracy: %.2f %%", 100 * r.tokenAccuracy))
            print(String(format: "BLEU-4: %.2f (corpus, brevity penalty %.4f, no smoothing)", 100 * r.bleu.score, r.bleu.brevityPenalty))
            if let png = attentionPng { try writeAttention(bundle, source: pairs[0].source, beam: beam, to: png) }
        }
    }
}

/// Draws the attention of `source`'s translation: rows = output tokens (`</s>` included when
/// produced), columns = source tokens.
func writeAttention(_ bundle: Seq2SeqBundle, source: String, beam: Int, to path: String) throws {
    guard bundle.model.config.attention != .none else {
        throw Seq2SeqError.invalidTraining("the model has no attention to draw (--attention none)")
    }
    var unknown: [String: Int] = [:]
    guard let first = try bundle.translate([source], beam: beam, unknown: &unknown).first else { return }
    let srcTokens = bundle.sourceVocabulary.tokenization.tokenize(source)
    var rows = bundle.targetVocabulary.decodeTokens(first.decoded.tokens)
    if first.decoded.finished { rows.append("</s>") }
    let values = first.decoded.trace.prefix(rows.count).map { $0.attention.map(Double.init) }
    func label(_ t: String) -> String { t == " " ? "_" : t }
    try Plot.heatmap(values: values, rowLabels: rows.map(label), columnLabels: srcTokens.map(label),
                     title: "attention: \(source) -> \(first.text)", to: path)
    print("attention heatmap: \(path)")
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Demo: about a minute of training on the dates task, then translations.")
    @Option(help: "Seconds of training.") var timeBudget: Double = 60
    @Option(help: "Output directory.") var out: String = "translate-demo"

    func run() throws {
        try reportingErrors {
            print("translate-toy demo: learning to turn dates written in many formats into ISO 8601 (\(Int(timeBudget)) s of training)")
            var g = try ToyPairGenerator(task: .dates, seed: 7)
            let pairs = try g.generate(count: 30000)
            var settings = try Train.parse(["--task", "dates", "--time-budget", String(timeBudget), "--out", out, "--seed", "7", "--eval-every", "500"])
            settings.hidden = 128
            let json = try trainModel(pairs: pairs, sourceLevel: .char, targetLevel: .char, taskName: "dates", settings: settings,
                                      log: { printError($0) })
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
