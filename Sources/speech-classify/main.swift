import ArgumentParser
import AudioFeatures
import Foundation
import RecurrentCore

/// Writes one line to standard error.
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Prints skipped files: every reason up to `limit`, then a count.
func reportSkipped(_ skipped: [SkippedFile], limit: Int = 20) {
    for s in skipped.prefix(limit) { note("skipped: \(s.reason)") }
    if skipped.count > limit { note("skipped: \(skipped.count - limit) more files") }
}

/// A JSON object as one line with sorted keys.
func jsonLine(_ object: [String: Any]) -> String {
    guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
    return String(decoding: d, as: UTF8.self)
}

/// Rounds to 6 decimals for JSON output.
func r6(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }

/// Shared model and training options.
struct ModelOptions: ParsableArguments {
    @Option(help: "Recurrent cell: lstm, gru, rnn, rnn_relu.")
    var cell: String = "lstm"
    @Option(help: "Recurrent layers.")
    var layers: Int = 1
    @Option(help: "Hidden units per direction.")
    var hidden: Int = 128
    @Flag(inversion: .prefixedNo, help: "Bidirectional recurrent layers (default: on).")
    var bidirectional: Bool = true
    @Option(help: "Utterance pooling: mean or last.")
    var pooling: String = "mean"
    @Option(help: "Width of a learned tanh input projection (0 = none).")
    var projection: Int = 0
    @Option(help: "Dropout between layers and before the classifier.")
    var dropout: Float = 0
    @Option(help: "Passes over the training set.")
    var epochs: Int = 20
    @Option(name: .customLong("time-budget"), help: "Stop training after this many seconds (evaluation excluded).")
    var timeBudget: Double?
    @Option(name: .customLong("batch-size"), help: "Utterances per step.")
    var batchSize: Int = 32
    @Option(name: .customLong("lr"), help: "Peak Adam learning rate (cosine decay to 5 %).")
    var learningRate: Float = 3e-3
    @Option(help: "Random seed.")
    var seed: UInt64 = 1
    @Flag(name: .customLong("utterance-cmn"), help: "Subtract each utterance's mean from its static features (cepstral mean normalisation).")
    var utteranceCMN = false
    @Option(help: "Threads for feature extraction and training (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard CellKind(argument: cell) != nil else { throw ValidationError("--cell: '\(cell)' is not lstm, gru, rnn or rnn_relu") }
        guard SequenceClassifierConfig.Pooling(rawValue: pooling) != nil else { throw ValidationError("--pooling: '\(pooling)' is not mean or last") }
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--lr must be positive") }
        if let t = timeBudget { guard t > 0, t.isFinite else { throw ValidationError("--time-budget must be positive") } }
        if let t = threads { guard t >= 1 else { throw ValidationError("--threads must be at least 1") } }
    }

    var threadCount: Int { threads ?? Threading.defaultThreads }
}

/// Trains, evaluates, writes outputs; returns the JSON summary.
func trainAndReport(folder: URL, task: SpeechTask, split: DatasetSplit, rule: LabelRule, options m: ModelOptions,
                    outDir: URL, label: String, confusionPNG: URL?) throws -> [String: Any] {
    var features = FeatureConfig()
    features.utteranceMeanNormalization = m.utteranceCMN
    let t0 = ProgressReporter.monotonicSeconds()
    note("\(label): extracting features of \(folder.path) ...")
    let data = try SpeechCorpus.prepare(folder: folder, task: task, split: split, rule: rule, config: features, threads: m.threadCount)
    let featureSeconds = ProgressReporter.monotonicSeconds() - t0
    reportSkipped(data.skipped)
    note("\(label): \(data.train.count) training and \(data.test.count) test files (split: \(data.splitNote)), "
         + "\(data.labels.count) classes, \(features.featureCount) features per frame, extraction \(String(format: "%.1f", featureSeconds)) s")
    let config = SequenceClassifierConfig(
        inputSize: features.featureCount, projection: m.projection, cell: CellKind(argument: m.cell) ?? .lstm,
        layers: m.layers, hidden: m.hidden, bidirectional: m.bidirectional, dropout: m.dropout,
        classes: data.labels.count, mode: task.mode, pooling: SequenceClassifierConfig.Pooling(rawValue: m.pooling) ?? .mean,
        unitForgetBias: true)
    let model = try SpeechClassifier(config: config, seed: m.seed, threads: m.threadCount, source: "command line")
    let checkpoint = SpeechCheckpoint(model: model, features: features, normalizer: data.normalizer, labels: data.labels)
    var options = SpeechTrainingOptions()
    options.epochs = m.epochs
    options.timeBudget = m.timeBudget
    options.batchSize = m.batchSize
    options.learningRate = m.learningRate
    options.seed = m.seed
    options.threads = m.threadCount
    options.outputFolder = outDir
    options.progressLabel = label
    let splitText = data.splitNote
    let result = try SpeechTrainer.train(checkpoint, train: data.train, test: data.test, options: options,
                                         trainingInfo: { rec in
                                             jsonLine(["epoch": rec.epoch, "steps": rec.steps, "test_accuracy": r6(rec.testAccuracy),
                                                       "test_loss": r6(rec.testLoss), "split": splitText, "data": folder.path])
                                         }, log: { _ in })
    let ev = result.final
    print(String(format: "test %@ accuracy: %.2f %% (%d of %d)", task == .utterance ? "utterance" : "frame",
                 100 * ev.accuracy, ev.confusion.correct, ev.confusion.total))
    if let s = ev.segments {
        print(String(format: "segment accuracy: %.2f %% (N=%d, S=%d, D=%d, I=%d), segment correctness %.2f %%, exact utterances %d of %d",
                     100 * s.accuracy, s.reference, s.substitutions, s.deletions, s.insertions, 100 * s.correctness,
                     ev.exactUtterances, ev.utterances))
    }
    print("confusion matrix:")
    print(ev.confusion.text(labels: data.labels.names))
    let png = confusionPNG ?? outDir.appendingPathComponent("confusion.png")
    try ev.confusion.writePNG(labels: data.labels.names, title: "\(label): \(task.rawValue) confusion (test)", to: png.path)
    var summary: [String: Any] = [
        "task": task.rawValue, "split": data.splitNote, "train_files": data.train.count, "test_files": data.test.count,
        "skipped_files": data.skipped.count, "classes": data.labels.count, "epochs": result.history.count,
        "steps": result.steps, "train_seconds": r6(result.trainingSeconds), "feature_seconds": r6(featureSeconds),
        "test_loss": r6(ev.loss), "test_accuracy": r6(ev.accuracy), "best_epoch": result.bestEpoch,
        "checkpoint": outDir.appendingPathComponent("last.safetensors").path, "confusion_png": png.path,
        "model": "\(m.cell)\(m.bidirectional ? "-bi" : "")-\(m.layers)x\(m.hidden)",
    ]
    if let s = ev.segments {
        summary["frame_accuracy"] = r6(ev.accuracy)
        summary["segment_accuracy"] = r6(s.accuracy)
        summary["exact_utterances"] = ev.exactUtterances
    }
    return summary
}

struct SpeechClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speech-classify",
        abstract: "Speech utterance and frame classification with recurrent networks on MFCC features.",
        discussion: """
        Bad input files (not audio, truncated, lying headers, empty, NaN/Inf samples, more than two \
        channels, broken label tracks) are reported as one line each ("skipped: ...") and left out \
        of training and evaluation; a run stops with an error only when no usable training or test \
        file remains. `features` and `predict` stop at the first bad file.
        """,
        subcommands: [Demo.self, Features.self, Train.self, Predict.self, Eval.self, BenchFeatures.self],
        defaultSubcommand: Demo.self)
}

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the feature matrix [frames, 39] (13 MFCC with log energy as c0, Δ, ΔΔ) of an audio file.")
    @Argument(help: "Audio file (anything libsndfile reads).")
    var file: String
    @Option(help: "csv (text, one frame per line) or npy (NumPy binary).")
    var format: String = "csv"
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
    var output: String?

    func validate() throws {
        guard format == "csv" || format == "npy" else { throw ValidationError("--format: '\(format)' is not csv or npy") }
    }

    func run() throws {
        let extractor = try MFCCExtractor(config: FeatureConfig())
        let m = try extractor.features(ofFile: URL(fileURLWithPath: file))
        let data = format == "csv" ? Data(m.csvText().utf8) : m.npyData()
        if let output { try AtomicFile.write(data, to: output) } else { FileHandle.standardOutput.write(data) }
        note("\(file): \(m.frames) frames x \(m.features) features")
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier; prints progress on standard error and a JSON summary as the last line.")
    @Option(help: "Data folder: audio files (utterance task) or audio + label tracks NAME.txt (frame task); a folder with train/ and test/ subfolders uses them as the split.")
    var data: String
    @Option(help: "utterance or frame.")
    var task: String = "utterance"
    @Option(help: "official (take 0-4 test), speaker:NAME, random[:SEED[:FRACTION]].")
    var split: String = "official"
    @Option(name: .customLong("label-pattern"), help: "Utterance labels: field:N[:SEP], regex:PATTERN, folder, manifest:PATH.")
    var labelPattern: String = "field:0:_"
    @OptionGroup var model: ModelOptions
    @Option(help: "Output folder (checkpoints, log.csv, loss.png, confusion.png).")
    var out: String = "speech-run"

    func run() throws {
        guard let task = SpeechTask(rawValue: task) else { throw ValidationError("--task: '\(task)' is not utterance or frame") }
        let summary = try trainAndReport(folder: URL(fileURLWithPath: data), task: task, split: try DatasetSplit(parsing: split),
                                         rule: try LabelRule(parsing: labelPattern), options: model,
                                         outDir: URL(fileURLWithPath: out), label: "train", confusionPNG: nil)
        print(jsonLine(summary))
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label audio files: label and probability per file, or a label track per file (frame task).")
    @Option(help: "Checkpoint written by train.")
    var checkpoint: String
    @Argument(help: "Audio files.")
    var files: [String]

    func run() throws {
        let ck = try SpeechCheckpoint.read(path: checkpoint)
        let extractor = try MFCCExtractor(config: ck.features)
        for file in files {
            var f = try extractor.features(ofFile: URL(fileURLWithPath: file))
            guard f.frames > 0 else { throw AudioError.empty(path: file) }
            try ck.normalizer.apply(to: &f, source: file)
            let p = SpeechInference.predict(ck.model, examples: [SpeechExample(path: file, features: f)], labels: ck.labels, features: ck.features)[0]
            if ck.model.task == .utterance {
                print("\(file)\t\(p.label)\t\(String(format: "%.4f", p.probability))")
            } else {
                print("# \(file): \(p.label.isEmpty ? "(nothing)" : p.label)  (mean frame probability \(String(format: "%.4f", p.probability)))")
                for s in p.segments { print(String(format: "%.3f\t%.3f\t%@", s.start, s.end, s.label)) }
            }
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a folder: accuracy and confusion matrix (printed and drawn).")
    @Option(help: "Checkpoint written by train.")
    var checkpoint: String
    @Option(help: "Data folder (all its files are evaluated unless --split is given).")
    var data: String
    @Option(help: "Evaluate only the test part of this split (official, speaker:NAME, random...).")
    var split: String?
    @Option(name: .customLong("label-pattern"), help: "Utterance labels: field:N[:SEP], regex:PATTERN, folder, manifest:PATH.")
    var labelPattern: String = "field:0:_"
    @Option(help: "Write the confusion matrix as a PNG here.")
    var confusion: String?
    @Option(help: "Threads.")
    var threads: Int?

    func run() throws {
        let threads = max(1, threads ?? Threading.defaultThreads)
        let ck = try SpeechCheckpoint.read(path: checkpoint, threads: threads)
        let task = ck.model.task
        let folder = URL(fileURLWithPath: data)
        let rule = try LabelRule(parsing: labelPattern)
        let files = try split.map { try SpeechCorpus.trainTest(folder: folder, task: task, split: try DatasetSplit(parsing: $0), rule: rule).test }
            ?? SpeechCorpus.list(folder: folder, task: task, rule: rule)
        let loaded = try SpeechCorpus.load(files, task: task, config: ck.features, threads: threads)
        let enc = try SpeechCorpus.encode(loaded.loaded, task: task, labels: ck.labels, normalizer: ck.normalizer)
        reportSkipped(loaded.skipped + enc.skipped)
        guard !enc.examples.isEmpty else {
            throw SpeechDataError.noUsableFiles(path: folder.path, part: "evaluation", skipped: loaded.skipped.count + enc.skipped.count)
        }
        let ev = SpeechInference.evaluate(ck.model, examples: enc.examples, silence: ck.labels.index(of: LabelTrack.silence))
        print(String(format: "%@ accuracy: %.2f %% (%d of %d) on %d files, loss %.4f", task == .utterance ? "utterance" : "frame",
                     100 * ev.accuracy, ev.confusion.correct, ev.confusion.total, enc.examples.count, ev.loss))
        if let s = ev.segments {
            print(String(format: "segment accuracy: %.2f %% (N=%d, S=%d, D=%d, I=%d), exact utterances %d of %d",
                         100 * s.accuracy, s.reference, s.substitutions, s.deletions, s.insertions, ev.exactUtterances, ev.utterances))
        }
        print("confusion matrix:")
        print(ev.confusion.text(labels: ck.labels.names))
        if let confusion {
            try ev.confusion.writePNG(labels: ck.labels.names, title: "\(task.rawValue) confusion", to: confusion)
            note("wrote \(confusion)")
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Short training run: FSDD from $RNN_DATA_DIR/fsdd/recordings when present, else a small espeak-ng digit set.")
    @Option(help: "Output folder.")
    var out: String = "speech-demo"
    @Option(name: .customLong("time-budget"), help: "Training seconds.")
    var timeBudget: Double = 60

    func run() throws {
        var m = try ModelOptions.parse(["--hidden", "64", "--epochs", "100", "--time-budget", "\(timeBudget)"])
        let outDir = URL(fileURLWithPath: out)
        let folder: URL, split: DatasetSplit
        if let dir = ProcessInfo.processInfo.environment["RNN_DATA_DIR"],
           FileManager.default.fileExists(atPath: dir + "/fsdd/recordings") {
            folder = URL(fileURLWithPath: dir + "/fsdd/recordings")
            split = .official
            note("demo: Free Spoken Digit Dataset at \(folder.path), official split, \(Int(timeBudget)) s of training")
        } else {
            folder = outDir.appendingPathComponent("espeak-digits")
            note("demo: RNN_DATA_DIR/fsdd not found; synthesising spoken digits with espeak-ng into \(folder.path)")
            let voices = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-029+f4", "en-gb-scotland+m1"]
            let files = try SpokenDigitSynthesizer.generate(into: folder, voices: voices, speeds: [130, 170, 210], pitches: [30, 50, 70])
            note("demo: wrote \(files.count) files; held-out voice: en-029+f4")
            split = .speaker("en-029+f4")
            m.hidden = 48
        }
        let summary = try trainAndReport(folder: folder, task: .utterance, split: split, rule: .fsdd, options: m,
                                         outDir: outDir, label: "demo", confusionPNG: nil)
        print(jsonLine(summary))
    }
}

struct BenchFeatures: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-features",
        abstract: "Feature extraction speed: decode + MFCC + deltas of every audio file in a folder, as a multiple of real time.")
    @Option(help: "Folder of audio files.")
    var data: String
    @Option(help: "Threads (1 = the single-core figure).")
    var threads: Int = 1
    @Option(help: "Repetitions (the fastest is reported).")
    var repeats: Int = 3

    func run() throws {
        let files = try UtteranceDataset.list(folder: URL(fileURLWithPath: data), rule: .filenamePattern("^(.*)$")).map(\.url)
        var audioSeconds = 0.0
        for f in files { audioSeconds += (try? AudioLoader.info(f).duration) ?? 0 }
        var best = Double.infinity, frames = 0
        for _ in 0..<max(1, repeats) {
            let t0 = ProgressReporter.monotonicSeconds()
            let m = try UtteranceDataset.extractFeatures(files, config: FeatureConfig(), threads: max(1, threads))
            best = min(best, ProgressReporter.monotonicSeconds() - t0)
            frames = m.reduce(0) { $0 + $1.frames }
        }
        print(String(format: "%d files, %.1f s of audio, %d frames: %.3f s on %d thread(s) = %.0fx real time",
                     files.count, audioSeconds, frames, best, threads, audioSeconds / best))
        print(jsonLine(["files": files.count, "audio_seconds": r6(audioSeconds), "seconds": r6(best), "threads": threads,
                        "times_real_time": r6(audioSeconds / best)]))
    }
}

SpeechClassify.main()
