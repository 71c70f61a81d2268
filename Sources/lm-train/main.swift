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
        discussion: "With no subcommand, runs the demo: about a minute of training on a built-in corpus.",
        subcommands: [Demo.self, Train.self, Sample.self, Predict.self, Score.self],
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
    let engine = try LanguageModelTraining.engine(options: options, training: training)
    engine.plotter = TrainingCLI.writeLossPlot
    engine.handlesSignals = true
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
            guard let data = runOptions.data else { throw ValidationError("--data: give a text file or folder of .txt files") }
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
    static let configuration = CommandConfiguration(abstract: "Train for about a minute on the built-in corpus, printing samples.")
    @Option(name: .customLong("time-budget"), help: "Seconds of training (evaluation not counted).") var timeBudget: Double = 60
    @Option(help: "Run folder (default: a new runs/lm-train/<YYYYMMDD-HHMMSS>).") var out: String?

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            var o = LanguageModelTrainingOptions()
            o.dataPath = nil
            o.layers = 2; o.hidden = 256; o.embedding = 64; o.batch = 32; o.seqLen = 64
            o.sampleEvery = max(10, timeBudget / 4)
            var training = TrainingConfiguration()
            training.timeBudget = timeBudget
            training.evalEvery = 200
            training.outDirectory = try out ?? RunFolder.createNew(root: "runs/lm-train")
            let corpus = DefaultCorpus.load()
            TrainingCLI.printError("lm-train demo: 2x256 LSTM on \(corpus.description) for \(Int(timeBudget)) s")
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

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            guard length >= 0 else { throw ValidationError("--length: must be at least 0") }
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            _ = try LanguageModelGeneration.generate(loaded: loaded, prime: prime, length: length, temperature: temperature,
                                                     topK: topK, seed: seed) { FileHandle.standardOutput.write(Data($0.utf8)) }
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Greedy next-token prediction at every position of TEXT, from a zero state.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Input text.") var text: String

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            let ids = try loaded.vocabulary.encode(text, source: "--text")
            let next = LanguageModelScoring.predictNext(model: loaded.model, ids: ids)
            let tokens = next.map { loaded.vocabulary.token(for: Int($0)) ?? "" }
            print(loaded.vocabulary.level == .word ? tokens.joined(separator: " ") : tokens.joined())
        }
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mean negative log-likelihood of a file read as one token stream.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Text file to score.") var data: String

    func run() throws {
        try TrainingCLI.failing("lm-train") {
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            let text = try TextCorpus.load(path: data)
            let ids = try loaded.vocabulary.encode(text, source: data)
            guard ids.count >= 2 else { throw ValidationError("\(data): needs at least 2 tokens to score") }
            let s = LanguageModelScoring.score(model: loaded.model, ids: ids)
            print(String(format: "nll=%.4f ppl=%.4f bpc=%.4f", s.nll, s.perplexity, s.bitsPerToken))
        }
    }
}

extension TokenLevel: ExpressibleByArgument {}
extension BatchingMode: ExpressibleByArgument {}
