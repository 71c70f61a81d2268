import ArgumentParser
import AudioFeatures
import Foundation
import RecurrentCore
import TrainingCLI

@main
struct SpeechClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speech-classify",
        abstract: "Speech utterance and frame classification with recurrent networks on MFCC features.",
        discussion: """
        Bad input files (not audio, truncated, lying or self-contradicting headers, empty, NaN/Inf \
        samples, broken label tracks) are reported as one line each ("skipped: ...") and left out \
        of training and evaluation; a run stops with an error only when no usable training or test \
        file remains. `features` and `predict` stop at the first bad file.
        """,
        subcommands: [Demo.self, Features.self, Train.self, Predict.self, Eval.self, MakeSequences.self, BenchFeatures.self],
        defaultSubcommand: Demo.self)

    static func main() { TrainingCLI.main(Self.self, tool: "speech-classify") }
}

/// Writes one line to standard error.
func note(_ s: String) { TrainingCLI.printError(s) }

/// Prints every skipped file, one line each, and a count when there are several.
func reportSkipped(_ skipped: [SkippedFile]) {
    for s in skipped { note("skipped: \(s.reason)") }
    if skipped.count > 1 { note("skipped: \(skipped.count) files in all") }
}

/// A JSON object as one line with sorted keys.
func jsonLine(_ object: [String: Any]) -> String {
    guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
    return String(decoding: d, as: UTF8.self)
}

/// Rounds to 6 decimals for JSON output.
func r6(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }

/// speech-classify's defaults for the shared training options.
let speechDefaults: TrainingDefaults = {
    var d = TrainingDefaults(tool: "speech-classify")
    d.seed = 1; d.layers = 1; d.hidden = 128; d.learningRate = 3e-3; d.lrSchedule = .cosine; d.lrFloor = 0.05
    d.clip = 5; d.batch = 32; d.epochs = 20; d.evalEvery = 0
    return d
}()

/// Prepares the data, trains (evaluating on validation once per epoch unless `--eval-every`
/// says otherwise), evaluates `best.safetensors` on the test split, prints the report and
/// writes `confusion.png`; returns the summary line.
func trainAndReport(_ o: SpeechTrainingOptions, _ training: TrainingConfiguration, evalEveryGiven: Bool, label: String) throws -> String {
    note("\(label): extracting features of \(o.dataPath) ...")
    let data = try SpeechTraining.prepare(options: o, seed: training.seed, threads: training.threads)
    reportSkipped(data.skipped)
    note("\(label): " + SpeechTraining.describe(data))
    var t = training
    if !evalEveryGiven { t.evalEvery = SpeechBatchSource.batchesPerEpoch(count: data.train.count, batchSize: o.batch) }
    let engine = TrainingEngine(configuration: t, task: try SpeechTraining.task(options: o, data: data, training: t))
    engine.plotter = TrainingCLI.writeLossPlot
    engine.handlesSignals = true
    engine.endsOtherRanksAfterRun = true
    let report = try SpeechTraining.run(engine, data: data)
    for line in report.lines { print(line) }
    if o.task != .sequence {
        try TrainingCLI.writeConfusionPlot(report.test.confusion, labels: data.labels.names,
                                           title: "\(label): \(o.task.rawValue) confusion (test)", path: t.outDirectory + "/confusion.png")
    }
    return report.summary.json
}

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the feature matrix [frames, 39] (13 MFCC with log energy as c0, Δ, ΔΔ) of an audio file.",
        discussion: "The feature options are train's: the same flags give the features a model trained with them sees, before the "
            + "training set's normalisation.")
    @Argument(help: "Audio file (anything libsndfile reads).")
    var file: String
    @OptionGroup var featureOptions: FeatureOptions
    @Option(help: "csv (text, one frame per line) or npy (NumPy binary).")
    var format: FeatureFileFormat = .csv
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
    var output: String?
    @Option(help: ArgumentHelp("Warp the mel filterbank's band edges by this factor, as eval and predict --warp do (0.7...1.3; 1 = none).",
                               valueName: "FACTOR"))
    var warp: Double = 1

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            try WarpOptions.checkFactor(warp)
            let extractor = try MFCCExtractor(config: try featureOptions.config(), frequencyWarp: warp)
            let m = try extractor.features(ofFile: URL(fileURLWithPath: file))
            let data = format == .csv ? Data(m.csvText().utf8) : m.npyData()
            if let output { try AtomicFile.write(data, to: output) } else { FileHandle.standardOutput.write(data) }
            note("\(file): \(m.frames) frames x \(m.features) features")
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier; prints progress on standard error and a JSON summary as the last line.",
        discussion: "Defaults: --cell lstm --layers 1 --hidden 128 --dropout 0 --optimizer adam --lr 3e-3 --lr-schedule cosine "
            + "--lr-floor 0.05 --clip 5 --batch 32 --epochs 20 --val-fraction 0.1 --seed 1 --log-every 10; --augment for the utterance and sequence tasks (--no-augment to train on the clean audio); a new run folder runs/speech-classify/<YYYYMMDD-HHMMSS> unless --out or --resume is given; "
            + "validation once per epoch unless --eval-every is given.")
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var model: ModelOptions
    @OptionGroup var direction: BidirectionalOption
    @OptionGroup var optimization: OptimizationOptions
    @OptionGroup var budget: BudgetOptions
    @Option(help: "utterance (one label per file), frame (label tracks) or sequence (a label sequence per file, CTC; labels from the name's first field or a manifest: characters, or words when it has spaces).")
    var task: SpeechTask = .utterance
    @Option(help: ArgumentHelp("Test split: official (take 0-4 test; the default), speaker:NAME, speakers:A,B,..., random[:SEED[:FRACTION]] "
                               + "(--test-fraction F alone means random:SEED:F with --seed); a folder with train/ and test/ uses them."))
    var split: String?
    @OptionGroup var testSplit: TestFractionOption
    @Option(name: .customLong("label-pattern"), help: "Utterance labels: field:N[:SEP], regex:PATTERN, folder, manifest:PATH.")
    var labelPattern: String = "field:0:_"
    @Option(help: "Utterance pooling.") var pooling: SequenceClassifierConfig.Pooling = .mean
    @Option(help: "Width of a learned tanh input projection (0 = none).") var projection: Int = 0
    @OptionGroup var featureOptions: FeatureOptions
    @Flag(name: .customLong("speaker-cmvn"), help: ArgumentHelp(
        "Normalise each speaker's features to zero mean and unit variance over all of that speaker's files (names "
            + "{label}_{speaker}_{index}); eval and predict do the same per speaker over the files they are given."))
    var speakerCMVN = false
    @OptionGroup var augmentation: AugmentationOptions

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            guard let data = runOptions.data else { throw ValidationError("--data: give a folder of audio files") }
            let training = try TrainingCLI.configuration(run: runOptions, optimization: optimization, budget: budget, defaults: speechDefaults)
            TrainingCLI.printSystemInfo(tool: "speech-classify", verbose: runOptions.verbose, threads: training.threads)
            var o = SpeechTrainingOptions()
            o.dataPath = data; o.task = task; o.split = try DatasetSplit.trainingText(split: split, testFraction: testSplit.testFraction, seed: training.seed); o.labelPattern = labelPattern; o.utteranceCMN = featureOptions.utteranceCMN
            o.utteranceCMVN = featureOptions.utteranceCMVN; o.speakerCMVN = speakerCMVN
            o.melFilters = featureOptions.melFilters; o.cepstra = featureOptions.cepstra
            o.trimDecibels = featureOptions.trimSilence
            o.cell = model.cell ?? speechDefaults.cell
            o.layers = model.layers ?? speechDefaults.layers
            o.hidden = model.hidden ?? speechDefaults.hidden
            o.dropout = model.dropout ?? speechDefaults.dropout
            o.bidirectional = direction.bidirectional
            o.pooling = pooling; o.projection = projection
            o.batch = budget.batch ?? speechDefaults.batch
            o.valFraction = runOptions.valFraction ?? speechDefaults.valFraction
            // A run saved before augmentation became the default recorded none and no flag:
            // resumed without either flag, it goes on unaugmented, as it started.
            var savedDefault: Bool?
            if let dir = runOptions.resume, let saved = try? RunConfiguration.read(path: dir + "/config.json"),
               saved.fingerprint["augmentation"] == nil {
                savedDefault = false
            }
            o.augmentation = try augmentation.config(task: task, savedDefault: savedDefault)
            print(try trainAndReport(o, training, evalEveryGiven: budget.evalEvery != nil, label: "train"))
        }
    }
}

/// Help of `--checkpoint` in predict and eval.
let ensembleHelp = ArgumentHelp(
    "Checkpoint written by train. Repeat it for an ensemble of models with the same task, classes and front end "
        + "(e.g. one configuration trained with different --seed values; members may normalise differently, --utterance-cmn, "
        + "--speaker-cmvn, each fed its own features): utterance and frame tasks average the probabilities; "
        + "the sequence task takes the label sequence most probable under the models' mixture among each model's best max(--beam, 4).")

/// The `--checkpoint` values, at least one.
func checkpointList(_ paths: [String]) throws -> [String] {
    guard !paths.isEmpty else { throw ValidationError("--checkpoint: give at least one checkpoint") }
    return paths
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label audio files, one line each: the top-k labels with probabilities (utterance task), the spoken labels "
            + "with their mean frame probability (frame task) or the decoded label sequence with its probability (sequence task).",
        discussion: "A model trained with --speaker-cmvn normalises each speaker's files (speaker from {label}_{speaker}_{index} "
            + "names) with statistics over the files given together: give a speaker's files in one call; a file alone, or one "
            + "whose name gives no speaker, is normalised with its own statistics.")
    @Option(help: ensembleHelp)
    var checkpoint: [String] = []
    @Option(help: "Sequence task: prefix beam search width (1 = greedy best path).")
    var beam: Int = 1
    @OptionGroup var output: PredictOptions
    @Flag(help: "Frame task, text format: also print each file's label track (start, end, label per line).")
    var segments = false
    @OptionGroup var warping: WarpOptions
    @Option(help: rescoreHelp)
    var rescore: [String] = []
    @Argument(help: "Audio files.")
    var files: [String]

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            guard beam >= 1, beam <= 1000 else { throw ValidationError("--beam must be within 1...1000") }
            let paths = try checkpointList(checkpoint)
            let ck = try SpeechEnsemble(paths: paths)
            try warping.check()
            // Read once, whatever number of configurations and warps the features are computed under.
            let urls = files.map { URL(fileURLWithPath: $0) }
            let durations = try urls.map { try AudioLoader.info($0).duration }
            let speakers = urls.map { Utterance.fsddFields(of: $0)?.speaker }
            /// The files' features under `config` with the filterbank warped by `warp`, normalised per speaker when it says so.
            func extract(_ config: FeatureConfig, warp: Double) throws -> [FeatureMatrix] {
                let extractor = try MFCCExtractor(config: config, frequencyWarp: warp)
                var features: [FeatureMatrix] = []
                for (k, file) in files.enumerated() {
                    if durations[k] < config.frameLengthSeconds {
                        throw AudioError.shorterThanOneFrame(path: file, seconds: durations[k], frameSeconds: config.frameLengthSeconds)
                    }
                    let f = try extractor.features(ofFile: urls[k])
                    guard f.frames > 0 else { throw AudioError.empty(path: file) }
                    features.append(f)
                }
                if config.speakerNormalization {
                    _ = try SpeakerNormalization.normalize(&features, speakers: speakers, paths: files)
                }
                return features
            }
            let examples = try warping.examples(ck.scorer, tool: "predict") { warp, _ in
                var examples = try zip(files, extract(ck.features, warp: warp)).enumerated().map { k, pair in
                    var normalized = pair.1
                    try ck.inputNormalizer.apply(to: &normalized, source: pair.0)
                    var e = SpeechExample(path: pair.0, features: normalized)
                    e.speaker = speakers[k]
                    return e
                }
                try ck.attachVariants(&examples) { config in
                    Dictionary(zip(files, try extract(config, warp: warp)).map { ($0, $1) }, uniquingKeysWith: { a, _ in a })
                }
                return examples
            }
            if !rescore.isEmpty {
                // All files at once: a speaker's pieces are normalised together.
                let scorer = try rescoring(ck, paths: paths, words: rescore, warping: warping, threads: Threading.defaultThreads)
                for (file, d) in zip(files, scorer.decodeSequences(examples, beamWidth: beam).decoded) {
                    let ranked = [RankedLabel(label: SpeechTask.text(of: d.labels.map { ck.labels.names[$0] }), probability: d.probability)]
                    print(PredictionOutput.line(PredictionLine(input: file, ranked: ranked), format: output.format))
                }
                return
            }
            for (file, example) in zip(files, examples) {
                let p = SpeechInference.predict(ck.scorer, examples: [example], labels: ck.labels,
                                                features: ck.features, beamWidth: beam)[0]
                let ranked = ck.task == .utterance
                    ? PredictionOutput.topK(p.classProbabilities, labels: ck.labels.names, k: output.topK)
                    : [RankedLabel(label: p.label, probability: p.probability)]
                print(PredictionOutput.line(PredictionLine(input: file, ranked: ranked), format: output.format))
                if segments, ck.task == .frame, output.format == .text {
                    for s in p.segments { print(String(format: "  %.3f\t%.3f\t%@", s.start, s.end, s.label)) }
                }
            }
        }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint: accuracy and confusion matrix (utterance and frame tasks) or label error rate "
            + "and sequence accuracy (sequence task).",
        discussion: "Without --data: the held-out test split of the run, as recorded in the checkpoint (never its training "
            + "files). With --data: all its files, or the test part of --split.")
    @Option(help: ensembleHelp)
    var checkpoint: [String] = []
    @Option(help: "Data folder (all its files are evaluated unless --split is given); default: the run's test split.")
    var data: String?
    @Option(help: "Evaluate only the test part of this split (official, speaker:NAME, speakers:A,B,..., random...).")
    var split: String?
    @Option(name: .customLong("label-pattern"), help: "Utterance labels: field:N[:SEP], regex:PATTERN, folder, manifest:PATH.")
    var labelPattern: String?
    @Option(help: "Write the confusion matrix as a PNG here.")
    var confusion: String?
    @Option(help: "Threads.")
    var threads: Int?
    @Option(help: "Sequence task: prefix beam search width (1 = greedy best path).")
    var beam: Int = 1
    @Option(help: "Metrics as text, json (one object) or tsv (name, value).")
    var format: OutputFormat = .text
    @Option(help: "Write the mispredicted files here (TSV: input, reference, prediction).")
    var errors: String?
    @OptionGroup var warping: WarpOptions
    @Option(help: rescoreHelp)
    var rescore: [String] = []

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            guard beam >= 1, beam <= 1000 else { throw ValidationError("--beam must be within 1...1000") }
            let threads = max(1, threads ?? Threading.defaultThreads)
            let paths = try checkpointList(checkpoint)
            let ck = try SpeechEnsemble(paths: paths, threads: threads)
            let task = ck.task
            let scorer: any SpeechScorer = rescore.isEmpty ? ck.scorer
                : try rescoring(ck, paths: paths, words: rescore, warping: warping, threads: threads)
            let folderPath: String, splitText: String?, pattern: String
            if let data {
                folderPath = data; splitText = split; pattern = labelPattern ?? "field:0:_"
            } else {
                guard let recorded = SpeechEvaluationSource.recorded(in: ck.members[0]) else {
                    throw ValidationError("\(paths[0]): records no test split (written by an older version); give --data")
                }
                folderPath = recorded.data; splitText = split ?? recorded.split; pattern = labelPattern ?? recorded.labelPattern
            }
            let folder = URL(fileURLWithPath: folderPath)
            let rule = try LabelRule(parsing: pattern)
            let files: [Utterance], what: String
            if let splitText {
                // A folder with train/ and test/ uses them whatever the split says: `note` names what was used.
                let parts = try SpeechCorpus.trainTest(folder: folder, task: task, split: try DatasetSplit(parsing: splitText), rule: rule)
                files = parts.test
                what = data == nil ? "the run's test split (\(parts.note)) of \(folderPath)" : "the test part of split \(parts.note) of \(folderPath)"
            } else {
                files = try SpeechCorpus.list(folder: folder, task: task, rule: rule)
                what = "all files of \(folderPath)"
            }
            try warping.check()
            /// The usable files' examples with the filterbank warped by `warp`, every configuration attached.
            func examples(warp: Double, report: Bool) throws -> [SpeechExample] {
                let loaded = try SpeechCorpus.load(files, task: task, config: ck.features, frequencyWarp: warp, threads: threads)
                let enc = try SpeechCorpus.encode(loaded.loaded, task: task, labels: ck.labels, normalizer: ck.inputNormalizer)
                if report { reportSkipped(loaded.skipped + enc.skipped) }
                guard !enc.examples.isEmpty else {
                    throw SpeechDataError.noUsableFiles(path: folder.path, part: "evaluation", skipped: loaded.skipped.count + enc.skipped.count)
                }
                var examples = enc.examples
                try ck.attachVariants(&examples) { config in
                    let other = try SpeechCorpus.load(files, task: task, config: config, frequencyWarp: warp, threads: threads)
                    return Dictionary(other.loaded.map { ($0.url.path, $0.features) }, uniquingKeysWith: { a, _ in a })
                }
                return examples
            }
            let examples = try warping.examples(ck.scorer, tool: "eval", examples)
            // Rescoring normalises each speaker over all of that speaker's pieces: one batch.
            let ev = SpeechInference.evaluate(scorer, examples: examples, silence: ck.labels.index(of: LabelTrack.silence),
                                              batchSize: rescore.isEmpty ? 64 : max(examples.count, 1), beamWidth: beam)
            var entries: [(name: String, value: MetricValue)] = [("data", .text(what + warping.dataNote)), ("files", .count(examples.count))]
            if paths.count > 1 { entries.append(("checkpoints averaged", .count(paths.count))) }
            if !rescore.isEmpty { entries.append(("words named by", .text(rescore.count == 1 ? rescore[0] : "\(rescore.count) utterance checkpoints"))) }
            switch task {
            case .sequence:
                let s = ev.segments ?? SegmentCounts()
                entries += [("label error rate", .fraction(ev.labelErrorRate ?? 0)), ("sequence accuracy", .fraction(ev.accuracy)),
                            ("exact", .count(ev.exactUtterances)), ("reference labels", .count(s.reference)),
                            ("substitutions", .count(s.substitutions)), ("deletions", .count(s.deletions)),
                            ("insertions", .count(s.insertions))]
            case .utterance, .frame:
                entries += [("\(task == .utterance ? "utterance" : "frame") accuracy", .fraction(ev.accuracy)),
                            ("correct", .count(ev.confusion.correct)), ("total", .count(ev.confusion.total))]
                if let s = ev.segments {
                    entries += [("segment accuracy", .fraction(s.accuracy)), ("exact utterances", .count(ev.exactUtterances))]
                }
            }
            entries.append(("loss", .number(ev.loss, digits: 4)))
            for line in PredictionOutput.metrics(entries, format: format) { print(line) }
            if task != .sequence && format == .text {
                print("confusion matrix:")
                print(ev.confusion.text(labels: ck.labels.names))
            }
            if let errors {
                // Rescored files are decoded together, as evaluate did (one speaker normalisation).
                let labelsOut = rescore.isEmpty
                    ? SpeechInference.predict(scorer, examples: examples, labels: ck.labels, features: ck.features, beamWidth: beam).map(\.label)
                    : scorer.decodeSequences(examples, beamWidth: beam).decoded.map { SpeechTask.text(of: $0.labels.map { ck.labels.names[$0] }) }
                var wrong: [(input: String, reference: String, prediction: String)] = []
                for (e, label) in zip(examples, labelsOut) {
                    let reference = SpeechInference.reference(of: e, task: task, labels: ck.labels)
                    if reference != label { wrong.append((e.path, reference, label)) }
                }
                try PredictionOutput.writeErrors(wrong, to: errors)
                note("eval: \(wrong.count) mispredicted file(s) written to \(errors)")
            }
            if let confusion, task != .sequence {
                try TrainingCLI.writeConfusionPlot(ev.confusion, labels: ck.labels.names, title: "\(task.rawValue) confusion", path: confusion)
                note("wrote \(confusion)")
            }
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Short training run: FSDD from $RNN_DATA_DIR/fsdd/recordings when present, else a small espeak-ng digit set.",
        discussion: "Fixed steps, seed and batch shards: the same data gives the same figures on every machine with the same "
            + "kernels; a slower machine only takes longer.")
    @Option(help: "Run folder (default: a new runs/speech-classify/<YYYYMMDD-HHMMSS>).")
    var out: String?
    @Option(help: "Training steps (batches of 32 files).")
    var steps: Int = 1500

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps: must be at least 1 (got \(steps))") }
    }

    func run() throws {
        try TrainingCLI.failing("speech-classify") {
            let out = try out ?? RunFolder.createNew(root: "runs/speech-classify")
            var o = SpeechTrainingOptions()
            o.hidden = 64; o.bidirectional = true
            if let dir = ProcessInfo.processInfo.environment["RNN_DATA_DIR"],
               FileManager.default.fileExists(atPath: dir + "/fsdd/recordings") {
                o.dataPath = dir + "/fsdd/recordings"
                o.split = "official"
                note("demo: Free Spoken Digit Dataset at \(o.dataPath), official split, \(steps) steps of training")
            } else {
                let folder = URL(fileURLWithPath: out).appendingPathComponent("espeak-digits")
                note("demo: RNN_DATA_DIR/fsdd not found; synthesising spoken digits with espeak-ng into \(folder.path)")
                let voices = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-029+f4", "en-gb-scotland+m1"]
                let files = try SpokenDigitSynthesizer.generate(into: folder, voices: voices, speeds: [130, 170, 210], pitches: [30, 50, 70])
                note("demo: wrote \(files.count) files; held-out voice: en-029+f4")
                o.dataPath = folder.path
                o.split = "speaker:en-029+f4"
                o.hidden = 48
            }
            var t = TrainingConfiguration()
            t.seed = 1; t.learningRate = 3e-3; t.lrSchedule = .cosine; t.lrFloor = 0.05; t.clip = 5
            t.steps = steps; t.epochs = nil; t.threads = 2
            t.outDirectory = out
            print(try trainAndReport(o, t, evalEveryGiven: false, label: "demo"))
        }
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
        try TrainingCLI.failing("speech-classify") {
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
}

extension SpeechTask: ExpressibleByArgument {}

/// `features --format`.
enum FeatureFileFormat: String, ExpressibleByArgument, CaseIterable { case csv, npy }

/// `--rescore`'s help, the same for predict and eval.
private let rescoreHelp = ArgumentHelp(
    "Sequence task: name each decoded word again with this utterance-task checkpoint (repeat it for an ensemble), trained on "
        + "isolated words with the same label names: the audio is cut between neighbouring words around the quietest stretch "
        + "between where the first pass's best alignment puts them, and each piece is classified; the word count stays the "
        + "first pass's. The sequence checkpoints must not trim silence. Give a speaker's files together (--speaker-cmvn "
        + "utterance models normalise a speaker over all of that speaker's pieces).", valueName: "CHECKPOINT")

/// The two-pass scorer of `--rescore`: the sequence ensemble `ck` (read from `paths`) and the
/// utterance checkpoints `words`; refused with `--warp` and `--adapt-warp`.
private func rescoring(_ ck: SpeechEnsemble, paths: [String], words: [String], warping: WarpOptions, threads: Int) throws -> RescoredSequenceScorer {
    guard warping.warp == nil && !warping.adapt else { throw ValidationError("--rescore: cannot be combined with --warp or --adapt-warp") }
    let wordPaths = try checkpointList(words)
    return try RescoredSequenceScorer(sequence: ck, sequencePath: paths[0], words: try SpeechEnsemble(paths: wordPaths, threads: threads),
                                      wordsPath: wordPaths[0], threads: threads)
}
