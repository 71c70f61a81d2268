import ArgumentParser
import Foundation
import ImageFrames
import RecurrentCore

/// Image- and video-frame sequence classification from PNG frames.
@main
struct FrameClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frame-classify",
        abstract: "Classify PNG frame sequences (video clips, or images read row by row) with recurrent networks.",
        discussion: "Without arguments: a demo that generates the 'shapes' clips, trains about a minute and prints the accuracy.",
        subcommands: [Demo.self, Generate.self, Train.self, Predict.self, Eval.self, BenchLoad.self],
        defaultSubcommand: Demo.self)
}

/// Prints `error` as one line on standard error and returns the failure exit code.
func fail(_ error: Error) -> ExitCode {
    let text = String(describing: error)
    FileHandle.standardError.write(Data(("frame-classify: " + text + "\n").utf8))
    return ExitCode.failure
}

/// Runs `body`, turning project errors into one line on stderr and a non-zero exit.
func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch let error as ExitCode { throw error } catch let error as ValidationError { throw error } catch {
        throw fail(error)
    }
}

/// Prints `value` as one line of JSON with sorted keys.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    if let data = try? encoder.encode(value), let text = String(data: data, encoding: .utf8) { print(text) }
}

/// Writes a line to standard error.
func stderrLine(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

/// Parses `WxH`.
func parseSize(_ text: String) throws -> (width: Int, height: Int) {
    let parts = text.lowercased().split(separator: "x")
    guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...4096).contains(w), (1...4096).contains(h) else {
        throw ValidationError("--size must be WxH with sides in 1...4096, e.g. 28x28 (got '\(text)')")
    }
    return (w, h)
}

// MARK: - generate

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a PNG data set: shapes, mnist-rows or moving-digits.")
    @Option(help: "shapes | mnist-rows | moving-digits") var kind: String
    @Option(help: "Output folder (train/ and test/ are created in it).") var out: String
    @Option(help: "Training clips per class (shapes: 100, moving-digits: 500); test gets a quarter. Ignored by mnist-rows.") var count: Int?
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Folder with mnist/t10k-*-ubyte.gz (default: $RNN_DATA_DIR).") var dataDir: String?

    func validate() throws {
        guard ["shapes", "mnist-rows", "moving-digits"].contains(kind) else {
            throw ValidationError("--kind must be shapes, mnist-rows or moving-digits (got '\(kind)')")
        }
        if let count, count < 1 || count > 100_000 { throw ValidationError("--count must be in 1...100000") }
    }

    func run() throws {
        try guarded {
            let start = ProgressReporter.monotonicSeconds()
            switch kind {
            case "shapes":
                let n = count ?? 100
                try FrameGenerator.writeShapes(root: out, trainPerClass: n, testPerClass: max(1, n / 4), seed: seed)
            default:
                guard let data = dataDir ?? ProcessInfo.processInfo.environment["RNN_DATA_DIR"] else {
                    throw ValidationError("\(kind) needs the MNIST files: pass --data-dir or set RNN_DATA_DIR")
                }
                if kind == "mnist-rows" {
                    try FrameGenerator.writeMNISTRows(dataDirectory: data, directory: out)
                } else {
                    let n = count ?? 500
                    try FrameGenerator.writeMovingDigits(dataDirectory: data, root: out, trainPerClass: n,
                                                         testPerClass: max(1, n / 4), seed: seed)
                }
            }
            stderrLine("frame-classify: wrote \(kind) to \(out) in \(String(format: "%.1f", ProgressReporter.monotonicSeconds() - start)) s")
        }
    }
}

// MARK: - train

struct TrainOptions: ParsableArguments {
    @Option(help: "Data folder: DIR/<class>/<clip>/<frame>.png, or DIR/<class>/<image>.png with --rows; train/ and test/ sub-folders or a seeded split.")
    var data: String
    @Flag(help: "Read each image as a sequence of rows (sequential MNIST).") var rows = false
    @Option(help: "Feature size WxH (default: rows: the image size; frames: reduced to at most 24 pixels a side).") var size: String?
    @Flag(help: "RGB features (default grey).") var rgb = false
    @Flag(help: "Append frame differences (frame t minus frame t-1) to every step's features; frames only, not --rows.") var deltas = false
    @Option(help: "Cell: lstm, gru, rnn, rnn_relu.") var cell: String = "lstm"
    @Option(help: "Recurrent layers.") var layers: Int = 1
    @Option(help: "Hidden units per direction.") var hidden: Int = 128
    @Flag(help: "Bidirectional layers.") var bidirectional = false
    @Option(help: "Learned projection width before the RNN (0: none; default: 128 for frame steps wider than 128).") var projection: Int?
    @Option(help: "Pooling: last or mean.") var pooling: String = "last"
    @Option(help: "Dropout between layers and before the classifier.") var dropout: Float = 0
    @Flag(help: "Label every frame from the clips' labels.txt (many-to-many).") var perFrame = false
    @Option(help: "Epochs (default 10 unless --time-budget is given).") var epochs: Int?
    @Option(help: "Time budget in seconds.") var timeBudget: Double?
    @Option(help: "Batch size.") var batchSize: Int = 64
    @Option(help: "Peak learning rate (Adam, cosine decay).") var lr: Float = 2e-3
    @Option(help: "Gradient-norm clip (0: none).") var clip: Float = 5
    @Option(help: "Random shift augmentation in pixels (0: none).") var shift: Int = 0
    @Option(help: "Test fraction when the data has no train/ and test/ folders.") var testFraction: Double = 0.2
    @Option(help: "Output folder for checkpoints, log.csv and loss.png.") var out: String = "runs/frame-classify"
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Threads (batch shards and loading); default: all cores.") var threads: Int?

    func validate() throws {
        guard CellKind(argument: cell) != nil else { throw ValidationError("unknown --cell '\(cell)' (lstm, gru, rnn, rnn_relu)") }
        guard SequenceClassifierConfig.Pooling(rawValue: pooling) != nil else { throw ValidationError("--pooling must be last or mean") }
        if let size { _ = try parseSize(size) }
        guard layers >= 1, hidden >= 1, batchSize >= 1 else { throw ValidationError("--layers, --hidden and --batch-size must be positive") }
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be positive") }
        if let timeBudget, !(timeBudget > 0) { throw ValidationError("--time-budget must be positive") }
        guard dropout >= 0 && dropout < 1 else { throw ValidationError("--dropout must be in [0, 1)") }
        guard shift >= 0 && shift <= 16 else { throw ValidationError("--shift must be in 0...16") }
        guard testFraction >= 0 && testFraction < 1 else { throw ValidationError("--test-fraction must be in [0, 1)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be positive") }
        if deltas && rows { throw ValidationError("--deltas needs frame steps; it cannot be combined with --rows") }
    }

    var network: FrameNetworkOptions {
        FrameNetworkOptions(cell: CellKind(argument: cell) ?? .lstm, layers: layers, hidden: hidden, bidirectional: bidirectional,
                            projection: projection, pooling: SequenceClassifierConfig.Pooling(rawValue: pooling) ?? .last,
                            dropout: dropout, perFrame: perFrame)
    }

    var training: FrameTrainingOptions {
        FrameTrainingOptions(epochs: epochs ?? (timeBudget == nil ? 10 : nil), timeBudget: timeBudget, batchSize: batchSize,
                             learningRate: lr, clipNorm: clip, seed: seed, shift: shift, outDirectory: out)
    }
}

/// The JSON summary line of a training run.
struct TrainReport: Encodable {
    var data: String
    var features: FeatureConfig
    var model: SequenceClassifierConfig
    var loadFrames: Int
    var loadSeconds: Double
    var loadFramesPerSecond: Double
    var result: FrameTrainingSummary
    var checkpoint: String

    enum CodingKeys: String, CodingKey {
        case data, features, model, result, checkpoint
        case loadFrames = "load_frames", loadSeconds = "load_seconds", loadFramesPerSecond = "load_frames_per_second"
    }
}

/// Loads the data, builds the model and trains it per `o`.
func train(_ o: TrainOptions) throws -> TrainReport {
    let threads = o.threads ?? Threading.defaultThreads
    let size = try o.size.map(parseSize)
    let features = try FrameClassification.featureConfig(root: o.data, rows: o.rows, size: size, rgb: o.rgb,
                                                         deltas: o.deltas, testFraction: o.testFraction, seed: o.seed)
    let (split, load) = try FrameClassification.loadSplit(root: o.data, rows: o.rows, features: features,
                                                          testFraction: o.testFraction, seed: o.seed, threads: threads)
    stderrLine("frame-classify: loaded \(split.train.examples.count) train / \(split.test.examples.count) test examples, \(load.frames) frames in \(String(format: "%.2f", load.seconds)) s (\(Int(load.framesPerSecond)) frames/s), features \(features.width)x\(features.height) \(features.colour.rawValue) \(features.mode.rawValue)\(features.deltas ? " + deltas" : ""), \(features.featuresPerStep) per step")
    let model = try FrameClassification.makeModel(split: split, network: o.network, seed: o.seed, threads: threads)
    stderrLine("frame-classify: model \(model.info.model.jsonString()), \(model.network.parameterCount) parameters, \(threads) threads")
    let trainer = try FrameTrainer(model: model, train: split.train.examples, test: split.test.examples, options: o.training)
    let stepsPerEpoch = (split.train.examples.count + o.batchSize - 1) / o.batchSize
    let progress = ProgressReporter(totalSteps: o.training.epochs.map { $0 * stepsPerEpoch }, timeBudget: o.timeBudget,
                                    label: "frame-classify")
    let summary = try trainer.run(progress: progress, message: { progress.message($0) })
    return TrainReport(data: o.data, features: features, model: model.info.model, loadFrames: load.frames,
                       loadSeconds: (load.seconds * 1000).rounded() / 1000, loadFramesPerSecond: load.framesPerSecond.rounded(),
                       result: summary, checkpoint: o.out + "/best.safetensors")
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a classifier; prints a JSON summary as the last line.")
    @OptionGroup var options: TrainOptions

    func run() throws {
        try guarded { printJSON(try train(options)) }
    }
}

// MARK: - predict / eval

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Classify clip folders or image files with a checkpoint (one line each: path, class, probability).")
    @Option(help: "Checkpoint (best.safetensors or last.safetensors).") var checkpoint: String
    @Argument(help: "Clip folders or PNG images.") var paths: [String] = []

    func validate() throws { guard !paths.isEmpty else { throw ValidationError("give at least one clip folder or image") } }

    func run() throws {
        try guarded {
            let model = try FrameModel.load(path: checkpoint)
            for p in try model.predict(paths: paths) {
                if model.info.perFrame {
                    print("\(p.source)\t\(p.labels.joined(separator: " "))")
                } else {
                    print("\(p.source)\t\(p.labels[0])\t\(String(format: "%.4f", p.probabilities[0].max() ?? 0))")
                }
            }
        }
    }
}

/// The JSON line of `eval`.
struct EvalReport: Encodable {
    var data: String
    var accuracy: Double
    var correct: Int
    var count: Int
    var loss: Double
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accuracy of a checkpoint on DIR/test (or all of DIR); optional confusion-matrix PNG.")
    @Option(help: "Checkpoint.") var checkpoint: String
    @Option(help: "Data folder (same layout as for training).") var data: String
    @Option(help: "Write the confusion matrix as a PNG heatmap here.") var confusion: String?
    @Option(help: "Threads; default: all cores.") var threads: Int?

    func run() throws {
        try guarded {
            let t = threads ?? Threading.defaultThreads
            let model = try FrameModel.load(path: checkpoint, threads: t)
            let set = try FrameClassification.evaluationSet(root: data, model: model, threads: t)
            let e = try model.evaluate(set)
            stderrLine("frame-classify: \(e.correct)/\(e.count) correct = \(String(format: "%.2f", 100 * e.accuracy)) % on \(set.examples.count) examples")
            if let confusion { try e.writeConfusion(classNames: model.info.classNames, to: confusion) }
            printJSON(EvalReport(data: data, accuracy: e.accuracy, correct: e.correct, count: e.count, loss: e.loss))
        }
    }
}

// MARK: - bench-load

struct BenchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-load", abstract: "Measure PNG decoding + feature extraction speed (frames/s).")
    @Option(help: "Data folder.") var data: String
    @Flag(help: "Images as rows.") var rows = false
    @Option(help: "Feature size WxH (default as in train).") var size: String?
    @Option(help: "Threads.") var threads: Int = 1

    func run() throws {
        try guarded {
            let features = try FrameClassification.featureConfig(root: data, rows: rows, size: try size.map(parseSize), rgb: false)
            let (_, load) = try FrameClassification.loadSplit(root: data, rows: rows, features: features, threads: threads)
            print("{\"frames\":\(load.frames),\"seconds\":\(String(format: "%.3f", load.seconds)),\"frames_per_second\":\(Int(load.framesPerSecond)),\"threads\":\(threads)}")
        }
    }
}

// MARK: - demo

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate 'shapes', train about a minute, print the test accuracy.")
    @Option(help: "Working folder (default: a fresh temporary folder).") var dir: String?
    @Option(help: "Training time limit in seconds.") var seconds: Double = 60

    func run() throws {
        try guarded {
            let root = dir ?? (NSTemporaryDirectory() + "frame-classify-demo-" + String(UInt32.random(in: 0...UInt32.max), radix: 16))
            stderrLine("frame-classify demo: generating 'shapes' clips in \(root)/data")
            try FrameGenerator.writeShapes(root: root + "/data", trainPerClass: 500, testPerClass: 125, seed: 1)
            // Frame differences make the rotation direction of the squares learnable (without
            // them the two square classes stay at chance); 16x16 features keep epochs short.
            let o = try TrainOptions.parse(["--data", root + "/data", "--out", root + "/run", "--size", "16x16", "--shift", "1",
                                            "--deltas", "--time-budget", String(seconds), "--epochs", "1000"])
            let report = try train(o)
            print("demo: shapes test accuracy \(String(format: "%.2f", 100 * report.result.testAccuracy)) % (\(report.result.testCount) clips, 6 classes) after \(report.result.epochs) epochs in \(String(format: "%.1f", report.result.seconds)) s; checkpoint \(report.checkpoint)")
            printJSON(report)
        }
    }
}
