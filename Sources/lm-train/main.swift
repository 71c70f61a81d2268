import ArgumentParser
import Foundation
import RecurrentCore
import TextData

/// Prints one clear line for any error and exits non-zero.
func failing<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write(Data("lm-train: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

@main
struct LMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm-train",
        abstract: "Character- and word-level recurrent language models: train, sample, predict, score.",
        discussion: "With no subcommand, runs the demo: about a minute of training on a built-in corpus.",
        subcommands: [Demo.self, Train.self, Sample.self, Predict.self, Score.self],
        defaultSubcommand: Demo.self)
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a language model on UTF-8 text.")
    @Option(help: "Text file or folder of .txt files.") var data: String
    @Option(help: "Token level: char or word.") var level: String = "char"
    @Option(name: .customLong("min-count"), help: "Word level: words rarer than this become <unk>.") var minCount: Int = 1
    @Option(help: "Cell: lstm, gru, rnn (tanh), rnn_relu.") var cell: String = "lstm"
    @Option(help: "Recurrent layers.") var layers: Int = 2
    @Option(help: "Hidden size.") var hidden: Int = 256
    @Option(help: "Embedding size; 0 = one-hot input.") var embedding: Int = 64
    @Option(help: "Dropout between layers and before the decoder.") var dropout: Float = 0
    @Flag(name: .customLong("tie-weights"), help: "Tie decoder and embedding weights (needs --embedding = --hidden).") var tieWeights = false
    @Option(help: "Batching: streams (truncated BPTT, state carried) or windows (every window, zero state).") var batching: String = "streams"
    @Option(help: "Batch size (windows: 0 = all windows in one batch).") var batch: Int = 32
    @Option(name: .customLong("seq-len"), help: "Sequence length.") var seqLen: Int = 64
    @Option(help: "Optimizer: adam, sgd, rmsprop.") var optimizer: String = "adam"
    @Option(help: "Learning rate (default 2e-3; sgd 1.0).") var lr: Float?
    @Option(name: .customLong("lr-schedule"), help: "constant, or cosine (decays to 10 % over --steps/--epochs or the time budget).") var lrSchedule: String = "constant"
    @Option(help: "Linear learning-rate warm-up steps.") var warmup: Int = 0
    @Option(help: "Gradient clipping by global norm; 0 = off.") var clip: Float = 5
    @Option(help: "Training steps.") var steps: Int?
    @Option(help: "Training epochs.") var epochs: Int?
    @Option(name: .customLong("time-budget"), help: "Seconds of training.") var timeBudget: Double?
    @Option(name: .customLong("eval-every"), help: "Validate and checkpoint every N steps (and at the end).") var evalEvery: Int = 250
    @Option(name: .customLong("val-fraction"), help: "Tail fraction of the text held out for validation.") var valFraction: Double = 0.1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output folder.") var out: String = "runs/lm"
    @Flag(help: "Continue from OUT/last.safetensors with optimizer state and data position.") var resume = false
    @Option(help: "Threads (batch shards); default all cores.") var threads: Int?
    @Option(name: .customLong("sample-every"), help: "Print a sample every N seconds.") var sampleEvery: Double?

    func validate() throws {
        if [steps != nil, epochs != nil, timeBudget != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give only one of --steps, --epochs, --time-budget")
        }
    }

    func run() throws {
        try failing {
            var o = LanguageModelTrainingOptions()
            o.dataPath = data
            guard let lv = TokenLevel(rawValue: level) else { throw ValidationError("--level must be char or word") }
            o.level = lv
            o.minCount = minCount
            guard let c = CellKind(argument: cell) else { throw ValidationError("--cell must be lstm, gru, rnn or rnn_relu") }
            o.cell = c
            o.layers = layers; o.hidden = hidden; o.embedding = embedding; o.dropout = dropout; o.tieWeights = tieWeights
            guard let bm = BatchingMode(rawValue: batching) else { throw ValidationError("--batching must be streams or windows") }
            o.batching = bm
            o.batch = batch; o.seqLen = seqLen; o.optimizer = optimizer; o.learningRate = lr; o.clip = clip
            o.lrSchedule = lrSchedule; o.warmup = max(0, warmup)
            o.steps = steps; o.epochs = epochs; o.timeBudget = timeBudget
            if steps == nil && epochs == nil && timeBudget == nil { o.epochs = 1 }
            o.evalEvery = evalEvery; o.valFraction = valFraction; o.seed = seed; o.outDir = out; o.resume = resume
            o.threads = threads ?? Threading.defaultThreads
            o.sampleEvery = sampleEvery
            let summary = try LanguageModelTrainer(options: o).run()
            print(summary.json)
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train for about a minute on the built-in corpus, printing samples.")
    @Option(name: .customLong("time-budget"), help: "Seconds of training.") var timeBudget: Double = 60
    @Option(help: "Output folder.") var out: String = "runs/lm-demo"

    func run() throws {
        try failing {
            var o = LanguageModelTrainingOptions()
            o.dataPath = nil
            o.layers = 2; o.hidden = 256; o.embedding = 64; o.batch = 32; o.seqLen = 64
            o.timeBudget = timeBudget
            o.evalEvery = 200
            o.sampleEvery = max(10, timeBudget / 4)
            o.outDir = out
            let corpus = DefaultCorpus.load()
            FileHandle.standardError.write(Data("lm-train demo: 2x256 LSTM on \(corpus.description) for \(Int(timeBudget)) s\n".utf8))
            let summary = try LanguageModelTrainer(options: o).run()
            let loaded = try LanguageModelCheckpoint.load(path: summary.checkpoint)
            print("--- final sample (temperature 0.8) ---")
            print(try generate(loaded: loaded, prime: "The ", length: 400, temperature: 0.8, topK: nil, seed: 1))
            print("---")
            print("checkpoint: \(summary.checkpoint)  (try: lm-train sample --checkpoint \(summary.checkpoint))")
            print(summary.json)
        }
    }
}

/// Generates text after `prime` (streams it to stdout when `stream`), returns it.
func generate(loaded: LanguageModelCheckpoint.Loaded, prime: String, length: Int, temperature: Float, topK: Int?, seed: UInt64,
              stream: Bool = false) throws -> String {
    let vocab = loaded.vocabulary
    var primeIds = try vocab.encode(prime, source: "--prime")
    if primeIds.isEmpty { primeIds = [vocab.endOfLineID ?? 0] }
    let sampler = TokenSampler(model: loaded.model, temperature: temperature, topK: topK, seed: seed)
    var logits = sampler.feed(primeIds)
    var decoder = TokenDecoder(vocabulary: vocab)
    var text = prime
    if stream { FileHandle.standardOutput.write(Data(prime.utf8)) }
    for _ in 0..<length {
        let token = sampler.draw(logits)
        let piece = try decoder.append(token)
        text += piece
        if stream { FileHandle.standardOutput.write(Data(piece.utf8)) }
        logits = loaded.model.nextLogits([token])
    }
    if stream { FileHandle.standardOutput.write(Data("\n".utf8)) }
    return text
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
        try failing {
            guard length >= 0 else { throw ValidationError("--length must be at least 0") }
            Threading.useSingleThreadedBLAS()
            let loaded = try LanguageModelCheckpoint.load(path: checkpoint)
            _ = try generate(loaded: loaded, prime: prime, length: length, temperature: temperature, topK: topK, seed: seed, stream: true)
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Greedy next-token prediction at every position of TEXT, from a zero state.")
    @Option(help: "Checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Input text.") var text: String

    func run() throws {
        try failing {
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
        try failing {
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
