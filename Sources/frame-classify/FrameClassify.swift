import ArgumentParser
import Foundation
import ImageFrames
import RecurrentCore
import TrainingCLI

/// Image- and video-frame sequence classification from PNG frames.
@main
struct FrameClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frame-classify",
        abstract: "Classify PNG frame sequences (video clips, or images read row by row) with recurrent networks.",
        discussion: "Without arguments: a demo that generates the 'shapes' clips, trains about a minute and prints the accuracy.",
        subcommands: [Demo.self, Generate.self, Train.self, Predict.self, Eval.self, BenchLoad.self],
        defaultSubcommand: Demo.self)

    static func main() { TrainingCLI.main(Self.self, tool: "frame-classify") }
}

/// Runs `body` on the one error path: `frame-classify: <file or option>: <what is wrong>`, exit 1.
func guarded(_ body: () throws -> Void) throws {
    try TrainingCLI.failing("frame-classify", body)
}

/// Prints `value` as one line of JSON with sorted keys.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    if let data = try? encoder.encode(value), let text = String(data: data, encoding: .utf8) { print(text) }
}

/// Writes a line to standard error.
func stderrLine(_ text: String) { TrainingCLI.printError(text) }

/// Parses `WxH`.
func parseSize(_ text: String) throws -> (width: Int, height: Int) {
    let parts = text.lowercased().split(separator: "x")
    guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]), (1...4096).contains(w), (1...4096).contains(h) else {
        throw ValidationError("--size: must be WxH with sides in 1...4096, e.g. 28x28 (got '\(text)')")
    }
    return (w, h)
}

// MARK: - generate

/// `--kind shapes|mnist-rows|moving-digits`.
enum GeneratedKind: String, ExpressibleByArgument, CaseIterable {
    case shapes, mnistRows = "mnist-rows", movingDigits = "moving-digits"
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a PNG data set: shapes, mnist-rows or moving-digits.")
    @Option(help: "Data set to write.") var kind: GeneratedKind
    @Option(help: "Output folder (train/ and test/ are created in it).") var out: String
    @Option(help: "Training clips per class (shapes: 100, moving-digits: 500); test gets a quarter. Ignored by mnist-rows.") var count: Int?
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Folder with mnist/t10k-*-ubyte.gz (default: $RNN_DATA_DIR).") var dataDir: String?

    func validate() throws {
        if let count, count < 1 || count > 100_000 { throw ValidationError("--count: must be in 1...100000 (got \(count))") }
    }

    func run() throws {
        try guarded {
            let start = ProgressReporter.monotonicSeconds()
            switch kind {
            case .shapes:
                let n = count ?? 100
                try FrameGenerator.writeShapes(root: out, trainPerClass: n, testPerClass: max(1, n / 4), seed: seed)
            default:
                guard let data = dataDir ?? ProcessInfo.processInfo.environment["RNN_DATA_DIR"] else {
                    throw ValidationError("--data-dir: \(kind.rawValue) needs the MNIST files: pass --data-dir or set RNN_DATA_DIR")
                }
                if kind == .mnistRows {
                    try FrameGenerator.writeMNISTRows(dataDirectory: data, directory: out)
                } else {
                    let n = count ?? 500
                    try FrameGenerator.writeMovingDigits(dataDirectory: data, root: out, trainPerClass: n,
                                                         testPerClass: max(1, n / 4), seed: seed)
                }
            }
            stderrLine("frame-classify: wrote \(kind.rawValue) to \(out) in \(String(format: "%.1f", ProgressReporter.monotonicSeconds() - start)) s")
        }
    }
}

// MARK: - train

/// frame-classify's defaults for the shared training options.
let frameDefaults: TrainingDefaults = {
    var d = TrainingDefaults(tool: "frame-classify")
    d.seed = 1; d.layers = 1; d.hidden = 128; d.batch = 64; d.clip = 5
    d.lrSchedule = .cosine; d.lrFloor = 0.02; d.epochs = 10
    return d
}()

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier; prints a JSON summary as the last line.",
        discussion: "Defaults: --cell lstm --layers 1 --hidden 128 --dropout 0 --optimizer adam --lr 2e-3 --lr-schedule cosine "
            + "--lr-floor 0.02 --clip 5 --batch 64 --epochs 10 --eval-every (one epoch) --val-fraction 0.1 --test-fraction 0.2 "
            + "--seed 1 --log-every 10; a new run folder runs/frame-classify/<YYYYMMDD-HHMMSS> unless --out or --resume is given. best.safetensors is chosen on the validation share of the training data; "
            + "the test set is evaluated once, at the end.")
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var direction: BidirectionalOption
    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var budget: BudgetOptions
    @Flag(help: "Read each image as a sequence of rows (sequential MNIST).") var rows = false
    @Option(help: "Feature size WxH (default: rows: the image size; frames: reduced to at most 24 pixels a side).") var size: String?
    @Flag(help: "RGB features (default grey).") var rgb = false
    @Flag(help: "Append frame differences (frame t minus frame t-1) to every step's features; frames only, not --rows.") var deltas = false
    @Option(help: "Learned projection width before the RNN (0: none; default: 128 for frame steps wider than 128).") var projection: Int?
    @Option(help: "Pooling of many-to-one models.") var pooling: SequenceClassifierConfig.Pooling = .last
    @Flag(help: "Label every frame from the clips' labels.txt (many-to-many).") var perFrame = false
    @Option(help: "Random shift augmentation in pixels (0: none).") var shift: Int = 0
    @Option(help: "Test fraction when the data has no train/ and test/ folders.") var testFraction: Double = 0.2

    func run() throws {
        try guarded {
            guard let data = runOptions.data else { throw ValidationError("--data: give a data folder") }
            let training = try TrainingCLI.configuration(run: runOptions, optimization: optimization, budget: budget,
                                                         defaults: frameDefaults)
            TrainingCLI.printSystemInfo(tool: "frame-classify", verbose: runOptions.verbose, threads: training.threads)
            var o = FrameTrainingOptions()
            o.dataPath = data
            o.rows = rows; o.rgb = rgb; o.deltas = deltas
            if let size { (o.width, o.height) = try parseSize(size) }
            o.cell = model.cell ?? frameDefaults.cell; o.layers = model.layers ?? frameDefaults.layers
            o.hidden = model.hidden ?? frameDefaults.hidden; o.dropout = model.dropout ?? frameDefaults.dropout
            o.bidirectional = direction.bidirectional; o.projection = projection; o.pooling = pooling; o.perFrame = perFrame
            o.batch = budget.batch ?? frameDefaults.batch
            o.shift = shift; o.testFraction = testFraction
            o.valFraction = runOptions.valFraction ?? frameDefaults.valFraction
            print(try train(o, training, evalEveryEpoch: budget.evalEvery == nil).summary.json)
        }
    }
}

/// Loads, trains with the engine (plot, signals, progress) and evaluates on the test set;
/// prints the loading, model and test lines on stderr.
func train(_ o: FrameTrainingOptions, _ training: TrainingConfiguration, evalEveryEpoch: Bool) throws -> FrameTrainingReport {
    let run = try FrameTrainingRun(options: o, training: training, evalEveryEpoch: evalEveryEpoch) { stderrLine("frame-classify: " + $0) }
    run.engine.plotter = TrainingCLI.writeLossPlot
    run.engine.handlesSignals = true
    let report = try run.run()
    let t = report.test, l = report.lastTest
    stderrLine("frame-classify: test (held out): best.safetensors \(t.correct)/\(t.count) = \(String(format: "%.2f", 100 * t.accuracy)) %, "
               + "last.safetensors \(l.correct)/\(l.count) = \(String(format: "%.2f", 100 * l.accuracy)) %")
    return report
}

// MARK: - predict / eval

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Classify clip folders or image files with a checkpoint (one line each: path, class, probability).")
    @Option(help: "Checkpoint (best.safetensors or last.safetensors).") var checkpoint: String
    @Argument(help: "Clip folders or PNG images.") var paths: [String] = []

    func validate() throws { guard !paths.isEmpty else { throw ValidationError("<paths>: give at least one clip folder or image") } }

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
            if let confusion {
                try TrainingCLI.writeConfusionPlot(e.confusion, labels: model.info.classNames,
                                                   title: "confusion (rows true, columns predicted), accuracy \(String(format: "%.2f", 100 * e.accuracy)) %",
                                                   path: confusion)
            }
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
            var o = FrameTrainingOptions()
            o.dataPath = root + "/data"; o.width = 16; o.height = 16; o.shift = 1; o.deltas = true
            var training = TrainingConfiguration()
            training.timeBudget = seconds; training.seed = 1; training.lrSchedule = .cosine; training.lrFloor = 0.02
            training.outDirectory = root + "/run"
            let report = try train(o, training, evalEveryEpoch: true)
            let s = report.summary
            print("demo: shapes test accuracy \(String(format: "%.2f", 100 * report.test.accuracy)) % (\(report.test.count) clips, 6 classes) "
                  + "after \(String(format: "%.1f", s.epochs)) epochs in \(String(format: "%.1f", s.seconds)) s; checkpoint \(s.checkpoint)")
            print(s.json)
        }
    }
}
