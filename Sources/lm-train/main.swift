import ArgumentParser
import Foundation
import RecurrentCore
import TextData
import TrainingCLI

@main
struct LMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm-train",
        abstract: "Character- and word-level recurrent language models: train, sample, predict, score.",
        discussion: "With no subcommand, runs the demo: 750 steps of training on a built-in corpus (about a minute on 2 cores).",
        subcommands: [Demo.self, Train.self, Sample.self, Predict.self, Score.self, Eval.self],
        defaultSubcommand: Demo.self)

    static func main() { TrainingCLI.main(Self.self, tool: "lm-train") }
}

/// lm-train's defaults for the shared training options.
let lmDefaults: TrainingDefaults = {
    var d = TrainingDefaults(tool: "lm-train")
    d.layers = 2; d.hidden = 256; d.batch = 32; d.clip = 5; d.lrFloor = 0.1; d.evalEvery = 250
    return d
}()

/// Runs the engine with lm-train's progress label, plot and signal handling; prints the summary.
func train(_ options: LanguageModelTrainingOptions, _ training: TrainingConfiguration) throws -> TrainingRunSummary {
    let engine = try LanguageModelTraining.engine(options: options, training: training) { TrainingCLI.printError("lm-train: " + $0) }
    engine.plotter = TrainingCLI.writeLossPlot
    engine.handlesSignals = true
    engine.endsOtherRanksAfterRun = true
    return try engine.run()
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a language model on UTF-8 text.",
        discussion: "Defaults: --cell lstm --layers 2 --hidden 256 --dropout 0 --optimizer adam --lr 2e-3 (sgd 1.0) "
            + "--lr-schedule constant --lr-floor 0.1 --clip 5 --batch 32 --epochs 1 --eval-every 250 --val-fraction 0.1 "
            + "--seed 0 --log-every 10; a new run folder runs/lm-train/<YYYYMMDD-HHMMSS> unless --out or --resume is given.")
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var budget: BudgetOptions
    @Option(help: "Token level.") var level: TokenLevel = .character
    @Option(name: .customLong("min-count"), help: "Word level: words rarer than this become <unk>.") var minCount: Int = 1
    @Option(help: "Embedding size; 0 = one-hot input.") var embedding: Int = 64
    @Flag(name: .customLong("tie-weights"), help: "Tie decoder and embedding weights (needs --embedding = --hidden).") var tieWeights = false
    @Option(help: "Batching: streams (truncated BPTT, state carried) or windows (every window, zero state; --batch 0 = all in one batch).")
    var batching: BatchingMode = .streams
    @Option(name: .customLong("seq-len"), help: "Sequence length.") var seqLen: Int = 64
    @Option(name: .customLong("sample-every"), help: "Print a sample every N seconds.") var sampleEvery: Double?

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            guard let data = runOptions.data else { throw ValidationError("--data: give a text file or a folder of text files") }
            let training = try TrainingCLI.configuration(run: runOptions, optimization: optimization, budget: budget, defaults: lmDefaults)
            TrainingCLI.printSystemInfo(tool: "lm-train", verbose: runOptions.verbose, threads: training.threads)
            var o = LanguageModelTrainingOptions()
            o.dataPath = data
            o.level = level; o.minCount = minCount
            o.cell = model.cell ?? lmDefaults.cell
            o.layers = model.layers ?? lmDefaults.layers
            o.hidden = model.hidden ?? lmDefaults.hidden
            o.dropout = model.dropout ?? lmDefaults.dropout
            o.embedding = embedding; o.tieWeights = tieWeights
            o.batching = batching; o.batch = budget.batch ?? lmDefaults.batch; o.seqLen = seqLen
            o.valFraction = runOptions.valFraction ?? lmDefaults.valFraction
            o.sampleEvery = sampleEvery
            print(try train(o, training).json)
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a fixed number of steps on the built-in corpus, printing samples.",
        discussion: "Fixed steps, seed and batch shards: every machine with the same kernels prints the same samples and "
            + "figures; a slower machine only takes longer (about a minute on 2 cores).")
    @Option(help: "Training steps.") var steps: Int = 750
    @Option(help: "Run folder (default: a new runs/lm-train/<YYYYMMDD-HHMMSS>).") var out: String?

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps: must be at least 1 (got \(steps))") }
    }

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            var o = LanguageModelTrainingOptions()
            o.dataPath = nil
            o.layers = 2; o.hidden = 256; o.embedding = 64; o.batch = 32; o.seqLen = 64
            o.sampleEverySteps = max(1, steps / 4)
            var training = TrainingConfiguration()
            training.steps = steps; training.epochs = nil
            training.evalEvery = 250
            training.threads = 2
            training.outDirectory = try out ?? RunFolder.createNew(root: "runs/lm-train")
            let corpus = DefaultCorpus.load()
            TrainingCLI.printError("lm-train demo: 2x256 LSTM on \(corpus.description) for \(steps) steps")
            let summary = try train(o, training)
            let loaded = try LanguageModelCheckpoint.load(path: summary.checkpoint)
            print("--- final sample (temperature 0.8) ---")
            print(try LanguageModelGeneration.generate(loaded: loaded, prime: "The ", length: 400, temperature: 0.8, topK: nil, seed: 1))
            print("---")
            print("checkpoint: \(summary.checkpoint)  (try: lm-train sample --checkpoint \(summary.checkpoint))")
            print(summary.json)
        }
    }
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stream generated text from a checkpoint to stdout.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Text to start from.") var prime: String = ""
    @Option(help: "Tokens to generate.") var length: Int = 500
    @Option(help: "Softmax temperature; 0 = greedy.") var temperature: Float = 1
    @Option(name: .customLong("top-k"), help: "Sample only from the K most likely tokens.") var topK: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @OptionGroup var precision: PrecisionOption

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            guard length >= 0 else { throw ValidationError("--length: must be at least 0") }
            let precision = precision.announced(tool: "lm-train")
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            loaded.model.precision = precision
            warnUnknownWords(loaded.vocabulary, prime, source: "--prime")
            _ = try LanguageModelGeneration.generate(loaded: loaded, prime: prime, length: length, temperature: temperature,
                                                     topK: topK, seed: seed) { FileHandle.standardOutput.write(Data($0.utf8)) }
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
    }
}

/// Warns on standard error when `text` has words the word-level vocabulary lacks (they are read as `<unk>`).
func warnUnknownWords(_ vocabulary: Vocabulary, _ text: String, source: String) {
    let unknown = vocabulary.unknownWords(in: text)
    guard !unknown.isEmpty else { return }
    let list = unknown.prefix(10).map { "\"\($0)\"" }.joined(separator: ", ")
    TrainingCLI.printError("lm-train: warning: \(source): \(unknown.count) word(s) unknown to the model were read as <unk>: \(list)\(unknown.count > 10 ? ", …" : "")")
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The most probable next tokens after each input, with their probabilities (from a zero state).",
        discussion: "Inputs: each --text, each FILE (its whole text), or without either each line of standard input.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "An input text (repeatable).") var text: [String] = []
    @OptionGroup var output: PredictOptions
    @OptionGroup var precision: PrecisionOption
    @Argument(help: "Text files, each one input.") var files: [String] = []

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            let precision = precision.announced(tool: "lm-train")
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            loaded.model.precision = precision
            var inputs: [(name: String, text: String, source: String)] = text.enumerated().map { ($1, $1, "--text \($0 + 1)") }
            for f in files { inputs.append((f, try TextCorpus.loadFile(path: f), f)) }
            if text.isEmpty && files.isEmpty {
                var n = 0
                while let line = readLine() { n += 1; inputs.append((line, line, "standard input line \(n)")) }
            }
            let labels = (0..<loaded.vocabulary.count).map { id -> String in
                let t = loaded.vocabulary.token(for: id) ?? ""
                return t == "\n" ? "\\n" : t
            }
            for input in inputs {
                let ids = try loaded.vocabulary.encode(input.text, source: input.source)
                warnUnknownWords(loaded.vocabulary, input.text, source: input.source)
                guard !ids.isEmpty else { throw ValidationError("\(input.source): no tokens to predict from") }
                let p = LanguageModelScoring.nextTokenProbabilities(model: loaded.model, ids: ids)
                let ranked = PredictionOutput.topK(p, labels: labels, k: output.topK)
                print(PredictionOutput.line(PredictionLine(input: input.name, ranked: ranked), format: output.format))
            }
        }
    }
}

/// Encodes a text to score: refuses characters outside the vocabulary, or with `skipUnknown`
/// leaves them out and says how many on standard error.
func scoringIDs(_ loaded: LanguageModelCheckpoint.Loaded, text: String, source: String, skipUnknown: Bool) throws -> [Int32] {
    guard skipUnknown else { return try loaded.vocabulary.encode(text, source: source) }
    let r = loaded.vocabulary.encodeSkippingUnknown(text)
    if r.skipped > 0 {
        let shown = r.characters.prefix(10).map { "'\($0)'" }.joined(separator: ", ")
        TrainingCLI.printError("lm-train: \(source): skipped \(r.skipped) character(s) not in the vocabulary (\(shown)\(r.characters.count > 10 ? ", …" : "")); scored the other \(r.ids.count)")
    }
    return r.ids
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mean negative log-likelihood of a file read as one token stream.",
        discussion: "Prints nll (nats per token), ppl and bits per character (bpc) or, for a word model, bits per word (bpw).")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Text file to score.") var data: String
    @OptionGroup var precision: PrecisionOption
    @Flag(name: .customLong("skip-unknown"), help: "Leave out characters the model does not know (and say how many) instead of refusing the file.")
    var skipUnknown = false

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            let precision = precision.announced(tool: "lm-train")
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            loaded.model.precision = precision
            let text = try TextCorpus.load(path: data)
            let ids = try scoringIDs(loaded, text: text, source: data, skipUnknown: skipUnknown)
            warnUnknownWords(loaded.vocabulary, text, source: data)
            guard ids.count >= 2 else { throw ValidationError("\(data): needs at least 2 tokens to score") }
            let s = LanguageModelScoring.score(model: loaded.model, ids: ids)
            let bits = loaded.vocabulary.level == .word ? "bpw" : "bpc"
            print(String(format: "nll=%.4f ppl=%.4f %@=%.4f", s.nll, s.perplexity, bits, s.bitsPerToken))
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss, perplexity and bits per token of a checkpoint on held-out text.",
        discussion: "Without --data: the run's held-out validation tail, as recorded in the checkpoint (never its training "
            + "text); chunks of the run's --seq-len, each from a zero state, as validation measured it. With --data: that "
            + "file or folder read as one stream.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Text file or folder to evaluate (default: the run's held-out text).") var data: String?
    @Flag(name: .customLong("skip-unknown"), help: "Leave out characters the model does not know (and say how many) instead of refusing the file.")
    var skipUnknown = false
    @Option(help: "Metrics as text, json (one object) or tsv (name, value).") var format: OutputFormat = .text
    @Option(help: "Write the mispredicted tokens here (TSV: context before the token, reference, greedy prediction).")
    var errors: String?

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            let vocab = loaded.vocabulary
            let ids: [Int32], what: String, loss: Double
            if let data {
                let text = try TextCorpus.load(path: data)
                ids = try scoringIDs(loaded, text: text, source: data, skipUnknown: skipUnknown)
                warnUnknownWords(vocab, text, source: data)
                what = data
                guard ids.count >= 2 else { throw ValidationError("\(data): needs at least 2 tokens to evaluate") }
                loss = LanguageModelScoring.score(model: loaded.model, ids: ids).nll
            } else {
                guard let heldOut = LanguageModelHeldOut(metadata: loaded.metadata) else {
                    throw ValidationError("\(checkpoint): records no held-out text (trained without validation, or by an older version); give --data")
                }
                ids = try heldOut.tokens(vocabulary: vocab)
                what = heldOut.description
                guard ids.count >= 2 else { throw ValidationError("\(checkpoint): the held-out text has fewer than 2 tokens") }
                loss = LanguageModelScoring.chunkedLoss(model: loaded.model, ids: ids, seqLen: heldOut.seqLen)
            }
            let next = LanguageModelScoring.predictNext(model: loaded.model, ids: Array(ids.dropLast()))
            let correct = zip(next, ids.dropFirst()).filter { $0 == $1 }.count
            let unit = vocab.level == .word ? "word" : "character"
            let entries: [(name: String, value: MetricValue)] = [
                ("data", .text(what)), ("tokens", .count(ids.count)), ("loss", .number(loss, digits: 4)),
                ("perplexity", .number(Foundation.exp(loss), digits: 4)),
                ("bits per \(unit)", .number(loss / Foundation.log(2.0), digits: 4)),
                ("next token accuracy", .fraction(Double(correct) / Double(ids.count - 1)))]
            for line in PredictionOutput.metrics(entries, format: format) { print(line) }
            if let errors {
                func token(_ id: Int32) -> String { vocab.token(for: Int(id)).map { $0 == "\n" ? "\\n" : $0 } ?? "" }
                var wrong: [(input: String, reference: String, prediction: String)] = []
                for (i, (p, t)) in zip(next, ids.dropFirst()).enumerated() where p != t {
                    let context = ids[max(0, i - 19)...i].map(token).joined(separator: vocab.level == .word ? " " : "")
                    wrong.append((context, token(t), token(p)))
                }
                try PredictionOutput.writeErrors(wrong, to: errors)
                TrainingCLI.printError("lm-train: eval: \(wrong.count) mispredicted token(s) written to \(errors)")
            }
        }
    }
}

extension TokenLevel: ExpressibleByArgument {}
extension BatchingMode: ExpressibleByArgument {}
