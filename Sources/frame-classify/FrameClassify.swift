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
        discussion: "Without arguments: a demo that generates the 'shapes' clips, trains 1500 steps, prints the accuracy and removes the clips.",
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
    d.testFraction = 0.2 // used when the data has no train/ and test/ folders
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
    @OptionGroup var testSplit: TestFractionOption

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
            o.shift = shift; o.testFraction = testSplit.value(frameDefaults)
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
    run.engine.endsOtherRanksAfterRun = true
    let report = try run.run()
    let t = report.test, l = report.lastTest
    stderrLine("frame-classify: test (held out): best.safetensors \(t.correct)/\(t.count) = \(String(format: "%.2f", 100 * t.accuracy)) %, "
               + "last.safetensors \(l.correct)/\(l.count) = \(String(format: "%.2f", 100 * l.accuracy)) %")
    return report
}

// MARK: - predict / eval

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify clip folders or image files with a checkpoint, one line each: the top-k classes with probabilities "
            + "(per-frame models: the label of every frame with its probability).")
    @Option(help: "Checkpoint (best.safetensors or last.safetensors).") var checkpoint: String
    @OptionGroup var output: PredictOptions
    @Argument(help: "Clip folders, or PNG images for a --rows model.") var paths: [String] = []

    func validate() throws { guard !paths.isEmpty else { throw ValidationError("<paths>: give at least one clip folder or image") } }

    func run() throws {
        try guarded {
            let model = try FrameModel.load(path: checkpoint)
            for p in try model.predict(paths: paths) {
                let ranked: [RankedLabel]
                if model.info.perFrame {
                    let best = p.probabilities.map { PredictionOutput.topK($0, labels: model.info.classNames, k: 1)[0] }
                    let mean = best.isEmpty ? 0 : best.map(\.probability).reduce(0, +) / Double(best.count)
                    ranked = [RankedLabel(label: best.map(\.label).joined(separator: " "), probability: mean)]
                } else {
                    ranked = PredictionOutput.topK(p.probabilities[0], labels: model.info.classNames, k: output.topK)
                }
                print(PredictionOutput.line(PredictionLine(input: p.source, ranked: ranked), format: output.format))
            }
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy of a checkpoint; optional confusion-matrix PNG and list of mispredicted examples.",
        discussion: "Without --data: the held-out test split of the run, as recorded in the checkpoint (never its training "
            + "examples). With --data: DIR/test when DIR has train/ and test/, otherwise every example of DIR.")
    @Option(help: "Checkpoint.") var checkpoint: String
    @Option(help: "Data folder (same layout as for training); default: the run's test split.") var data: String?
    @Option(help: "Write the confusion matrix as a PNG heatmap here.") var confusion: String?
    @Option(help: "Threads; default: all cores.") var threads: Int?
    @Option(help: "Metrics as text, json (one object) or tsv (name, value).") var format: OutputFormat = .text
    @Option(help: "Write the mispredicted examples here (TSV: input, reference, prediction).") var errors: String?

    func run() throws {
        try guarded {
            let t = threads ?? Threading.defaultThreads
            let model = try FrameModel.load(path: checkpoint, threads: t)
            let set: FrameDataset, what: String
            if let data {
                set = try FrameClassification.evaluationSet(root: data, model: model, threads: t)
                let hasSplit = FileManager.default.fileExists(atPath: data + "/train") && FileManager.default.fileExists(atPath: data + "/test")
                what = hasSplit ? "\(data)/test" : "all examples of \(data)"
            } else {
                guard let split = model.testSplit else {
                    throw ValidationError("\(checkpoint): records no test split (written by an older version); give --data")
                }
                set = try split.testSet(model: model, threads: t)
                what = "the run's test split of \(split.data)"
            }
            let e = try model.evaluate(set)
            let entries: [(name: String, value: MetricValue)] = [
                ("data", .text(what)), ("examples", .count(set.examples.count)),
                ("accuracy", .fraction(e.accuracy)), ("correct", .count(e.correct)), ("count", .count(e.count)),
                ("loss", .number(e.loss, digits: 4))]
            for line in PredictionOutput.metrics(entries, format: format) { print(line) }
            if let errors {
                let names = model.info.classNames
                var wrong: [(input: String, reference: String, prediction: String)] = []
                for (example, predicted) in zip(set.examples, e.predictions) {
                    let truth = model.info.perFrame ? (example.stepLabels ?? []) : [example.label]
                    if truth != predicted {
                        wrong.append((example.source, truth.map { names[$0] }.joined(separator: " "), predicted.map { names[$0] }.joined(separator: " ")))
                    }
                }
                try PredictionOutput.writeErrors(wrong, to: errors)
                stderrLine("frame-classify: eval: \(wrong.count) mispredicted example(s) written to \(errors)")
            }
            if let confusion {
                try TrainingCLI.writeConfusionPlot(e.confusion, labels: model.info.classNames,
                                                   title: "confusion, accuracy \(String(format: "%.2f", 100 * e.accuracy)) %",
                                                   path: confusion)
            }
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
    static let configuration = CommandConfiguration(
        abstract: "Generate 'shapes', train a fixed number of steps, print the test accuracy.",
        discussion: "The clips are generated into DIR/data and removed at the end (unless --keep-data); the run (checkpoints, "
            + "log.csv, loss.png) stays in DIR/run. Fixed steps and seed: every machine prints the same figures.")
    @Option(help: "Working folder.") var dir: String = "runs/frame-classify-demo"
    @Option(help: "Training steps (batches of 64 clips).") var steps: Int = 1500
    @Flag(name: .customLong("keep-data"), help: "Keep the generated clips in DIR/data.") var keepData = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps: must be at least 1 (got \(steps))") }
    }

    func run() throws {
        try guarded {
            let data = dir + "/data"
            stderrLine("frame-classify demo: generating 'shapes' clips in \(data)")
            try FrameGenerator.writeShapes(root: data, trainPerClass: 200, testPerClass: 50, seed: 1)
            defer {
                if !keepData {
                    do {
                        try FileTree.remove(data)
                        stderrLine("frame-classify demo: removed \(data) (--keep-data keeps it)")
                    } catch {
                        stderrLine("frame-classify demo: \(error)")
                    }
                }
            }
            // Frame differences make the rotation direction of the squares learnable (without
            // them the two square classes stay at chance); 16x16 features keep steps short.
            var o = FrameTrainingOptions()
            o.dataPath = data; o.width = 16; o.height = 16; o.shift = 1; o.deltas = true
            var training = TrainingConfiguration()
            training.steps = steps; training.epochs = nil; training.seed = 1; training.lrSchedule = .cosine; training.lrFloor = 0.02
            training.evalEvery = 250; training.threads = 2
            training.outDirectory = dir + "/run"
            let report = try train(o, training, evalEveryEpoch: false)
            let s = report.summary
            print("demo: shapes test accuracy \(String(format: "%.2f", 100 * report.test.accuracy)) % (\(report.test.count) clips, 6 classes) "
                  + "after \(s.steps) steps (\(String(format: "%.1f", s.epochs)) epochs); checkpoint \(s.checkpoint)")
            print(s.json)
        }
    }
}
