import TestSupport
import Foundation
import RecurrentCore
import Testing
@testable import TextData
import TrainingCLI

// MARK: - Scoring against an independent reference

@Suite struct LanguageModelScoringTests {
    /// A text over the four-letter vocabulary, long enough (300 tokens) that `score` crosses
    /// its 256-token chunk boundary and must carry the state across it.
    static let text: String = {
        var s = ""
        var x = 7
        for _ in 0..<300 {
            x = (x * 37 + 11) % 101
            s += ["a", "b", "c", "d"][x % 4]
        }
        return s
    }()

    @Test(arguments: [("lstm", 1, 3, 3), ("lstm", 2, 3, 0), ("rnn_tanh", 1, 2, 0), ("gru", 2, 3, 2)])
    func scoreMatchesFloat64Reference(cell: String, layers: Int, hidden: Int, embedding: Int) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: cell, layers: layers, hidden: hidden, embedding: embedding,
                                         vocab: ["a", "b", "c", "d"], seed: Double(layers * 10 + hidden))
        let path = folder.path + "/tiny.safetensors"
        try ref.write(to: path)

        let loaded = try LanguageModelCheckpoint.load(path: path)
        #expect(loaded.vocabulary.tokens == ["a", "b", "c", "d"])
        let ids = try loaded.vocabulary.encode(Self.text, source: "text")
        let score = LanguageModelScoring.score(model: loaded.model, ids: ids)
        let expected = ref.meanNLL(ids.map(Int.init))
        #expect(score.predictions == 299)
        #expect(abs(score.nll - expected) < 1e-5 * max(1, expected), "score \(score.nll) vs reference \(expected)")
        #expect(abs(score.perplexity - Foundation.exp(expected)) < 1e-4 * Foundation.exp(expected))
        #expect(abs(score.bitsPerToken - expected / Foundation.log(2.0)) < 1e-4)
        // The weights are far from uniform: the reference NLL is not ln 4 by accident.
        #expect(abs(expected - Foundation.log(4.0)) > 0.01)

        // Greedy prediction from a zero state equals the reference argmax at every position.
        let prefix = Array(ids.prefix(40))
        let predicted = LanguageModelScoring.predictNext(model: loaded.model, ids: prefix)
        let refLogits = ref.logits(prefix.map(Int.init))
        for (t, z) in refLogits.enumerated() {
            let sorted = z.sorted(by: >)
            guard sorted[0] - sorted[1] > 1e-4 else { continue }   // skip near-ties
            #expect(Int(predicted[t]) == z.firstIndex(of: sorted[0])!, "position \(t)")
        }
    }

    @Test func sampleAtTemperatureZeroIsReferenceArgmax() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c", "d"],
                                         seed: 3, scale: 2.0)
        let path = folder.path + "/tiny.safetensors"
        try ref.write(to: path)
        let loaded = try LanguageModelCheckpoint.load(path: path)
        let sampler = TokenSampler(model: loaded.model, temperature: 0, topK: nil, seed: 99)
        var token: Int32 = 0
        var generated: [Int] = [0]
        for _ in 0..<30 {
            token = sampler.next(after: token)
            generated.append(Int(token))
        }
        // Reference: at each step the argmax of the logits after the sequence so far.
        let z = ref.logits(Array(generated.dropLast()))
        for t in 0..<30 {
            let best = z[t].indices.max { z[t][$0] < z[t][$1] }!
            #expect(generated[t + 1] == best, "step \(t)")
        }
        // top-k 1 at temperature 1 is greedy too.
        let topOne = TokenSampler(model: loaded.model, temperature: 1, topK: 1, seed: 5)
        var t1: Int32 = 0
        var g1: [Int] = [0]
        for _ in 0..<30 { t1 = topOne.next(after: t1); g1.append(Int(t1)) }
        #expect(g1 == generated)
    }
}

// MARK: - Sampling determinism

@Suite struct LanguageModelSamplingTests {
    static func draw(_ model: RecurrentLanguageModel, seed: UInt64, temperature: Float = 1, topK: Int? = nil, count: Int = 200) -> [Int32] {
        let sampler = TokenSampler(model: model, temperature: temperature, topK: topK, seed: seed)
        var token: Int32 = 0
        return (0..<count).map { _ in token = sampler.next(after: token); return token }
    }

    @Test func sameSeedSameTextDifferentSeedDifferentText() {
        let config = LanguageModelConfig(cell: .lstm, layers: 1, hidden: 8, embedding: 4, vocabSize: 6)
        let model = RecurrentLanguageModel(config: config, seed: 1)
        let a = Self.draw(model, seed: 11), b = Self.draw(model, seed: 11), c = Self.draw(model, seed: 12)
        #expect(a == b)
        #expect(a != c)
        // A freshly built model from the same seed samples the same text too.
        let again = RecurrentLanguageModel(config: config, seed: 1)
        #expect(Self.draw(again, seed: 11) == a)
        // Sampling uses the whole vocabulary at temperature 1 on an untrained model.
        #expect(Set(a).count >= 4)
        // top-k 2 only ever draws one of the two most likely tokens of each step.
        let sampler = TokenSampler(model: model, temperature: 1, topK: 2, seed: 3)
        var token: Int32 = 0
        for _ in 0..<100 {
            let logits = model.nextLogits([token])
            let ranked = logits.indices.sorted { logits[$0] > logits[$1] }
            token = sampler.draw(logits)
            #expect(ranked.prefix(2).contains(Int(token)))
        }
    }

    @Test func temperatureZeroEqualsArgmaxOfLogits() {
        let config = LanguageModelConfig(cell: .gru, layers: 2, hidden: 6, embedding: 0, vocabSize: 5)
        let model = RecurrentLanguageModel(config: config, seed: 4)
        let greedy = Self.draw(model, seed: 1, temperature: 0, count: 50)
        // Same with another seed: no randomness at temperature 0.
        #expect(Self.draw(model, seed: 2, temperature: 0, count: 50) == greedy)
        // Replay: feeding the generated tokens, the argmax after each one is the next token.
        let replay = LanguageModelScoring.predictNext(model: model, ids: [0] + greedy.dropLast())
        #expect(replay == greedy)
    }
}

// MARK: - The lecture's "hihello"

@Suite struct LanguageModelHiHelloTests {
    /// For seeds 0–49: one-hot input, 1-layer LSTM hidden 5, seq-len 6, batch 1, Adam 0.1,
    /// clipping 5 (the trainer's default), the batch the trainer builds from `hihello`. Records
    /// the first step after which greedy prediction of "hihell" is "ihello".
    @Test func everySeedLearnsHiHelloWithinTwentySteps() throws {
        let text = "hihello"
        let vocab = Vocabulary.build(from: text, level: .character)
        let ids = try vocab.encode(text)
        var batcher = try StreamBatcher(tokens: ids, batchSize: 1, seqLen: 6)
        let batch = batcher.next()
        #expect(try vocab.decode(batch.inputs) == "hihell")
        #expect(try vocab.decode(batch.targets) == "ihello")
        let config = LanguageModelConfig(cell: .lstm, layers: 1, hidden: 5, embedding: 0, vocabSize: vocab.count)
        var firstSteps: [Int] = []
        for seed in 0..<50 {
            let model = RecurrentLanguageModel(config: config, seed: UInt64(seed), threads: 1)
            let adam = Adam(parameters: model.parameters, learningRate: 0.1)
            // Trains on past 20 steps (up to 60) so a failure reports how far off a seed is.
            var reached = 61
            for step in 1...60 {
                _ = model.trainStep(inputs: batch.inputs, targets: batch.targets, batch: 1, steps: 6, carryState: false,
                                    seed: UInt64(seed) &* 7_919 &+ UInt64(step - 1))
                clipGradientNorm(model.parameters, maxNorm: 5)
                adam.step()
                if try vocab.decode(LanguageModelScoring.predictNext(model: model, ids: batch.inputs)) == "ihello" {
                    reached = step
                    break
                }
            }
            firstSteps.append(reached)
        }
        let sorted = firstSteps.sorted()
        let median = Double(sorted[24] + sorted[25]) / 2
        print("hihello first step per seed 0-49 (61 = not within 60): \(firstSteps); median \(median), worst \(sorted.last!)")
        let late = firstSteps.enumerated().filter { $0.element > 20 }.map { "seed \($0.offset): step \($0.element)" }
        // Measured: median 10.5 (PyTorch with the same model: 10.5), 49 of 50 seeds within 20
        // steps, seed 48 at step 21 (PyTorch's worst: 17). The bounds below hold that result.
        #expect(late.count <= 1, "seeds that needed more than 20 steps: \(late)")
        #expect(sorted.last! <= 21, "worst seed: \(late)")
        #expect(median <= 12, "median \(median)")
    }

    /// The same run through the training engine (file, options, checkpoint), then prediction
    /// from the written checkpoint.
    @Test func trainerOnHiHelloFilePredictsIHello() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("hihello.txt", text: "hihello")
        var o = LanguageModelTrainingOptions()
        o.dataPath = data; o.cell = .lstm; o.layers = 1; o.hidden = 5; o.embedding = 0
        o.batch = 1; o.seqLen = 6; o.valFraction = 0
        var t = TrainingConfiguration()
        t.learningRate = 0.1; t.steps = 20; t.evalEvery = 0; t.seed = 0; t.threads = 1; t.outDirectory = folder.path + "/run"
        let (summary, trainer) = try trainLanguageModel(o, t)
        #expect(summary.steps == 20)
        let loaded = try LanguageModelCheckpoint.load(path: trainer.lastPath)
        #expect(loaded.model.config.embedding == 0)
        let next = LanguageModelScoring.predictNext(model: loaded.model, ids: try loaded.vocabulary.encode("hihell"))
        #expect(try loaded.vocabulary.decode(next) == "ihello")
        // The losses fell along the way.
        #expect(summary.stepLosses.last! < summary.stepLosses.first! * 0.5)
    }
}

// The lab's windows example (`--batching windows --seq-len 10 --batch 0`, 2-layer LSTM, 500
// steps) takes minutes in a debug build; it is the benchmark script `tools/lm-windows-example`.

// MARK: - Resume and end-to-end training

/// A corpus from a small grammar: sentences "the <noun> <verb> <adverb>." chosen by a seeded
/// generator. Its entropy per character is low but not zero.
func grammarCorpus(sentences: Int, seed: UInt64) -> String {
    var rng = SeededRandom(seed: seed)
    let nouns = ["cat", "dog", "bird", "fish"], verbs = ["runs", "sits", "sings"], adverbs = ["fast", "slowly"]
    var s = ""
    for i in 0..<sentences {
        s += "the \(nouns[rng.nextInt(below: nouns.count)]) \(verbs[rng.nextInt(below: verbs.count)]) "
            + "\(adverbs[rng.nextInt(below: adverbs.count)])."
        s += i % 4 == 3 ? "\n" : " "
    }
    return s
}

/// Runs the training engine on a language-model task quietly (plain progress to nowhere, loss.png
/// drawn); returns the summary and the engine (for its paths).
func trainLanguageModel(_ o: LanguageModelTrainingOptions, _ t: TrainingConfiguration) throws
    -> (TrainingRunSummary, TrainingEngine<LanguageModelLearner>) {
    let engine = try LanguageModelTraining.engine(options: o, training: t)
    engine.progressOutput = { _ in }
    engine.plotter = TrainingCLI.writeLossPlot
    return (try engine.run(), engine)
}

@Suite(.serialized) struct LanguageModelResumeTests {
    func options(data: String, batching: BatchingMode = .streams, batch: Int = 4) -> LanguageModelTrainingOptions {
        var o = LanguageModelTrainingOptions()
        o.dataPath = data; o.cell = .lstm; o.layers = 2; o.hidden = 12; o.embedding = 6; o.dropout = 0.25
        o.batching = batching; o.batch = batch; o.seqLen = 8; o.valFraction = 0.1
        return o
    }

    func training(out: String, steps: Int, resume: Bool = false) -> TrainingConfiguration {
        var t = TrainingConfiguration()
        t.learningRate = 0.01; t.steps = steps; t.evalEvery = 5; t.seed = 3; t.threads = 2; t.outDirectory = out
        t.resume = resume
        return t
    }

    func expectSameTensors(_ a: String, _ b: String) throws {
        #expect(try differingTensors(a, b) == [], "\(a) vs \(b)")
    }

    /// 400 characters: 360 for training, 4 streams of 89, 11 batches per epoch; 16 steps cross
    /// an epoch boundary, and the resume point (8) is mid-epoch with carried state.
    func corpus(_ folder: TemporaryFolder) throws -> String {
        try folder.write("corpus.txt", text: String(grammarCorpus(sentences: 40, seed: 9).prefix(400)))
    }

    /// Streams carry state across batches; window batches carry the state of their last batch
    /// too, whose rows are not `--batch` when it is 0 (all windows in one batch) or when an
    /// epoch ends on a short batch (5 rows a batch).
    @Test(arguments: [(BatchingMode.streams, 4), (.windows, 0), (.windows, 5)])
    func resumeEqualsUninterruptedRun(batching: BatchingMode, batch: Int) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try corpus(folder)
        func options(data: String) -> LanguageModelTrainingOptions { self.options(data: data, batching: batching, batch: batch) }
        let (a, full) = try trainLanguageModel(options(data: data), training(out: folder.path + "/full", steps: 16))
        #expect(a.stepLosses.count == 16)

        let (b1, _) = try trainLanguageModel(options(data: data), training(out: folder.path + "/split", steps: 8))
        #expect(b1.stepLosses == Array(a.stepLosses.prefix(8)))
        let (b2, second) = try trainLanguageModel(options(data: data), training(out: folder.path + "/split", steps: 16, resume: true))
        #expect(b2.steps == 16)
        #expect(b2.stepLosses == Array(a.stepLosses.suffix(8)), "resumed \(b2.stepLosses) vs uninterrupted \(Array(a.stepLosses.suffix(8)))")
        try expectSameTensors(full.lastPath, second.lastPath)
        try expectSameTensors(full.bestPath, second.bestPath)

        // Different dropout masks (another seed) would change the losses: the check above can fail.
        var other = training(out: folder.path + "/other", steps: 16)
        other.seed = 4
        #expect(try trainLanguageModel(options(data: data), other).0.stepLosses != a.stepLosses)
        #expect(try !differingTensors(full.lastPath, folder.path + "/other/last.safetensors").isEmpty)
    }

    /// A cosine schedule with warm-up over 16 steps, interrupted by SIGINT after step 7 or so (not
    /// an evaluation point) and resumed: the schedule, optimizer moments, data position and
    /// carried state continue as if nothing happened.
    @Test func interruptedScheduledRunResumesBitIdentically() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try corpus(folder)
        var t = training(out: folder.path + "/full", steps: 16)
        t.lrSchedule = .cosine; t.warmup = 3; t.lrFloor = 0.05; t.optimizer = .adamw
        let (a, full) = try trainLanguageModel(options(data: data), t)

        t.outDirectory = folder.path + "/split"
        var task = try LanguageModelTraining.task(options: options(data: data), training: t)
        task.afterStep = { step in
            // Process-directed, as from a terminal; give it time to arrive on some thread.
            if step == 7 { kill(getpid(), SIGINT); usleep(100_000) }
            return nil
        }
        let engine = TrainingEngine(configuration: t, task: task)
        engine.progressOutput = { _ in }
        engine.handlesSignals = true
        var interrupted: TrainingInterrupted?
        do { _ = try engine.run() } catch let e as TrainingInterrupted { interrupted = e }
        let stoppedAt = try #require(interrupted?.step)
        #expect(stoppedAt >= 7 && stoppedAt < 16 && interrupted?.exitStatus == 130)
        #expect(interrupted?.description.contains("--resume") == true)

        t.resume = true
        let (b, second) = try trainLanguageModel(options(data: data), t)
        #expect(b.stepLosses == Array(a.stepLosses.suffix(16 - stoppedAt)))
        try expectSameTensors(full.lastPath, second.lastPath)
    }

    @Test func endToEndOnGrammarCorpusLearns() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let text = grammarCorpus(sentences: 300, seed: 1)
        let data = try folder.write("grammar.txt", text: text)
        var o = LanguageModelTrainingOptions()
        o.dataPath = data; o.cell = .lstm; o.layers = 1; o.hidden = 24; o.embedding = 8
        o.batch = 8; o.seqLen = 16; o.valFraction = 0.1
        var t = TrainingConfiguration()
        t.learningRate = 0.03; t.steps = 120; t.evalEvery = 40; t.logEvery = 40; t.seed = 0; t.threads = 2; t.outDirectory = folder.path + "/run"
        let start = Date()
        let (s, trainer) = try trainLanguageModel(o, t)
        let seconds = Date().timeIntervalSince(start)
        // Per sentence the grammar draws one of 4 × 3 × 2 choices: about ln 24 / 25 ≈ 0.13 nats per
        // character at best; uniform over the 25 characters would be ln 25 ≈ 3.2.
        print("grammar corpus: validation loss \(s.validation) after \(s.steps) steps in \(String(format: "%.1f", seconds)) s")
        #expect(s.validationMetric == "val_loss")
        #expect(s.validation < 0.6)
        #expect(s.bestValidation <= s.validation)

        // Files written and readable.
        let log = try String(contentsOfFile: trainer.logPath, encoding: .utf8).split(separator: "\n")
        #expect(log.first == "step,train_loss,lr,grad_norm,val_loss,tokens_per_s,seconds")
        #expect(log.dropFirst().map { $0.split(separator: ",").first.map(String.init) } == ["40", "80", "120"])
        let png = try Data(contentsOf: URL(fileURLWithPath: trainer.plotPath))
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let best = try LanguageModelCheckpoint.load(path: trainer.bestPath)
        #expect(best.vocabulary == Vocabulary.build(from: text, level: .character))
        // Independent check of the reported validation loss: chunked loss of the best checkpoint
        // on the tail 10 % of the text equals the best validation loss.
        let ids = try best.vocabulary.encode(text)
        let tail = Array(ids[DataSplit.trainCount(total: ids.count, validationFraction: 0.1)...])
        let val = LanguageModelScoring.chunkedLoss(model: best.model, ids: tail, seqLen: 16)
        #expect(abs(val - s.bestValidation) < 1e-4)
        // best.safetensors holds the model of the best logged validation loss.
        let logged = log.dropFirst().map { Double($0.split(separator: ",")[4])! }
        #expect(abs(logged.min()! - s.bestValidation) < 1e-5)
        // The JSON summary is one line of valid JSON with the promised keys.
        let json = try JSONSerialization.jsonObject(with: Data(s.json.utf8)) as? [String: Any]
        #expect(json?["steps"] as? Int == 120)
        #expect((json?["val_metric"] as? [String: Any])?["name"] as? String == "val_loss")
        #expect((json?["throughput"] as? [String: Any])?["unit"] as? String == "tokens/s")
        #expect(json?["val_loss"] != nil && json?["seconds"] != nil && json?["tool"] as? String == "lm-train")
        #expect((json?["metrics"] as? [String: Any])?["val_loss"] != nil)
        #expect(!s.json.contains("\n"))
    }
}

// MARK: - Bad input

@Suite struct LanguageModelBadInputTests {
    func train(_ data: String?, out: String, configure: (inout LanguageModelTrainingOptions) -> Void = { _ in },
               training: (inout TrainingConfiguration) -> Void = { _ in }) throws -> TrainingRunSummary {
        var o = LanguageModelTrainingOptions()
        o.dataPath = data; o.layers = 1; o.hidden = 4; o.embedding = 3; o.batch = 2; o.seqLen = 4
        var t = TrainingConfiguration()
        t.steps = 3; t.evalEvery = 0; t.threads = 1; t.outDirectory = out
        configure(&o)
        training(&t)
        return try trainLanguageModel(o, t).0
    }

    func message(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return "\(error)" }
    }

    @Test func missingEmptyFolderAndInvalidUTF8() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let out = folder.path + "/out"
        let missing = folder.path + "/nope.txt"
        let m1 = message { _ = try train(missing, out: out) }
        #expect(m1 == "\(missing): no such file or folder")

        let empty = try folder.write("empty.txt", bytes: [])
        #expect(message { _ = try train(empty, out: out) } == "\(empty): file is empty")

        let dir = folder.path + "/notext"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data([0x00, 0x01, 0x02]).write(to: URL(fileURLWithPath: dir + "/data.bin"))
        #expect(message { _ = try train(dir, out: out) } == "\(dir): folder holds no UTF-8 text files")

        // "héllo" with the second byte of 'é' cut: the invalid sequence starts at byte 1.
        let bad = try folder.write("bad.txt", bytes: [0x68, 0xC3, 0x6C, 0x6C, 0x6F] + Array(repeating: 0x61, count: 40))
        let m4 = message { _ = try train(bad, out: out) }
        #expect(m4 == "\(bad): invalid UTF-8 at byte offset 1 (byte 0xC3)")
        // Nothing was written for any of them.
        #expect(!FileManager.default.fileExists(atPath: out))
        for m in [m1, m4] { #expect(m?.contains("\n") == false) }
    }

    @Test func corpusShorterThanOneBatchNamesTheFlag() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("short.txt", text: String(repeating: "abcde", count: 4))   // 20 chars
        let m = message { _ = try train(data, out: folder.path + "/out") { $0.batch = 8; $0.seqLen = 4; $0.valFraction = 0 } }
        #expect(m?.contains("--batch") == true && m?.contains("--seq-len") == true, "\(m ?? "no error")")
        #expect(m?.contains("lower") == true)
        let w = message { _ = try train(data, out: folder.path + "/out") { $0.batching = .windows; $0.seqLen = 40; $0.valFraction = 0 } }
        #expect(w?.contains("--seq-len") == true, "\(w ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/out/last.safetensors"))
    }

    @Test func checkpointOfAnotherTaskOrVersionIsRejected() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 2, embedding: 0, vocab: ["a", "b", "c"], seed: 1)
        for format in ["rnn-suite/seq2seq/1", "rnn-suite/lm/2"] {
            var meta = ref.metadata
            meta["format"] = format
            let path = folder.path + "/other.safetensors"
            try SafeTensors.write(ref.tensors, metadata: meta, to: path)
            let m = message { _ = try LanguageModelCheckpoint.load(path: path) }
            #expect(m?.hasPrefix(path + ":") == true, "\(m ?? "no error")")
            #expect(m?.contains(format) == true)
        }
        var meta = ref.metadata
        meta["format"] = nil
        let path = folder.path + "/noformat.safetensors"
        try SafeTensors.write(ref.tensors, metadata: meta, to: path)
        #expect(message { _ = try LanguageModelCheckpoint.load(path: path) }?.hasPrefix(path + ":") == true)
        // A tensor with the wrong shape for the config.
        var tensors = ref.tensors
        tensors[0] = NamedTensor(name: tensors[0].name, shape: [4, 3], values: [Float](repeating: 0, count: 12))
        let bad = folder.path + "/shape.safetensors"
        try SafeTensors.write(tensors, metadata: ref.metadata, to: bad)
        let ms = message { _ = try LanguageModelCheckpoint.load(path: bad) }
        #expect(ms?.hasPrefix(bad + ":") == true && ms?.contains("rnn.weight_ih_l0") == true, "\(ms ?? "no error")")
    }

    @Test func primeTextWithUnknownCharacters() throws {
        let vocab = Vocabulary.build(from: "hello", level: .character)
        let m = message { _ = try vocab.encode("hexo!", source: "--prime") }
        #expect(m == "--prime has characters not in the vocabulary: 'x' (U+0078), '!' (U+0021)")
    }

    @Test func resumeWithDifferentConfigurationChangesNothing() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 10, seed: 2))
        let out = folder.path + "/out"
        _ = try train(data, out: out)
        let files = ["last.safetensors", "best.safetensors", "last.train.safetensors", "log.csv", "loss.png"]
        let before = try files.map { try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)) }
        let resume6: (inout TrainingConfiguration) -> Void = { $0.resume = true; $0.steps = 6 }
        // The fingerprint names configuration fields, not flags.
        let m = message { _ = try train(data, out: out, configure: { $0.hidden = 5 }, training: resume6) }
        #expect(m == "\(out): cannot --resume: this setting differs from the saved run: --hidden (was 4, now 5); leave it out to continue "
                + "the run, or start a new one (--init-from \(out)/best.safetensors to start from its weights)", "\(m ?? "no error")")
        let other = message { _ = try train(data, out: out, configure: { $0.batch = 3 }, training: resume6) }
        #expect(other?.contains("--batch (was 2, now 3)") == true, "\(other ?? "no error")")
        let lr = message { _ = try train(data, out: out, training: { resume6(&$0); $0.learningRate = 0.5 }) }
        #expect(lr?.contains("--lr (was 0.002, now 0.5)") == true, "\(lr ?? "no error")")
        // Bad data into an existing run folder: no checkpoint overwritten either.
        _ = message { _ = try train(folder.path + "/missing.txt", out: out) }
        let after = try files.map { try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0)) }
        #expect(before == after)
        // Resuming with the same settings works.
        let s = try train(data, out: out, training: resume6)
        #expect(s.steps == 6 && s.stepLosses.count == 3)
    }
}

// MARK: - The lm-train binary

/// Runs the built `lm-train` (next to the test bundle after `swift build`/`swift test`).
@Suite(.enabled(if: builtExecutable("lm-train") != nil, "lm-train is not built next to the test bundle"))
struct LanguageModelCommandLineTests {
    let lmTrain = builtExecutable("lm-train") ?? "lm-train"

    @Test func scorePredictAndSampleOnAHandWrittenCheckpoint() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "gru", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c", "d"], seed: 8)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        let text = LanguageModelScoringTests.text
        let data = try folder.write("t.txt", text: text)
        let score = try runProcess(lmTrain, ["score", "--checkpoint", ckpt, "--data", data])
        #expect(score.status == 0, "\(score.stderr)")
        let nll = ref.meanNLL(try Vocabulary(tokens: ref.vocab, level: .character).encode(text).map(Int.init))
        let expected = String(format: "nll=%.4f ppl=%.4f bpc=%.4f", nll, Foundation.exp(nll), nll / Foundation.log(2.0))
        #expect(score.stdout == expected + "\n")

        let predict = try runProcess(lmTrain, ["predict", "--checkpoint", ckpt, "--text", "abcd"])
        let z = ref.logits([0, 1, 2, 3]).last!
        let greedy = ref.vocab[z.indices.max { z[$0] < z[$1] }!]
        let pGreedy = Foundation.exp(z.max()!) / z.map { Foundation.exp($0) }.reduce(0, +)
        #expect(predict.status == 0 && predict.stdout == "abcd  \(greedy) (\(String(format: "%.4f", pGreedy)))\n", "\(predict.stdout)")

        let s1 = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--prime", "ab", "--length", "40", "--seed", "5"])
        let s2 = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--prime", "ab", "--length", "40", "--seed", "5"])
        let s3 = try runProcess(lmTrain, ["sample", "--checkpoint", ckpt, "--prime", "ab", "--length", "40", "--seed", "6"])
        #expect(s1.status == 0 && s1.stdout == s2.stdout && s1.stdout != s3.stdout)
        #expect(s1.stdout.hasPrefix("ab") && s1.stdout.unicodeScalars.count == 43)
    }

    /// A run into a folder that holds one is refused; `--resume DIR` alone continues it (with
    /// `--steps` counting the whole run) to the weights of an uninterrupted run; changed model or
    /// data options are refused in one line naming every one; `--overwrite` replaces the run.
    @Test func runFolderRefusalResumeAloneAndOverwrite() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 60, seed: 4))
        func arguments(_ out: String, steps: Int) -> [String] {
            ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
             "--seq-len", "8", "--eval-every", "5", "--threads", "1", "--seed", "2", "--steps", "\(steps)"]
        }
        let full = try runProcess(lmTrain, arguments(folder.path + "/full", steps: 20))
        #expect(full.status == 0, "\(full.stderr)")
        let out = folder.path + "/split"
        #expect(try runProcess(lmTrain, arguments(out, steps: 10)).status == 0)
        let best = try Data(contentsOf: URL(fileURLWithPath: out + "/best.safetensors"))

        let again = try runProcess(lmTrain, arguments(out, steps: 30))
        #expect(again.status == 1 && again.stdout.isEmpty)
        #expect(again.stderr.hasPrefix("lm-train: \(out): holds a run (best.safetensors, config.json, events.out.tfevents.")
                && again.stderr.hasSuffix("; use --resume \(out) to continue it, --overwrite to replace it, or another --out\n"), "\(again.stderr)")
        #expect(best == (try Data(contentsOf: URL(fileURLWithPath: out + "/best.safetensors"))))

        let changed = try runProcess(lmTrain, ["train", "--resume", out, "--hidden", "9", "--seq-len", "9", "--level", "word", "--steps", "20"])
        #expect(changed.status == 1)
        #expect(changed.stderr.split(separator: "\n").last.map(String.init) == "lm-train: \(out): cannot --resume: these settings differ from the "
                + "saved run: --hidden (was 8, now 9), --level (was char, now word), --seq-len (was 8, now 9); leave them out to continue the run, "
                + "or start a new one (--init-from \(out)/best.safetensors to start from its weights)", "\(changed.stderr)")

        let resumed = try runProcess(lmTrain, ["train", "--resume", out, "--steps", "20"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("at step 10 (epoch 0, batch 10); 20 steps in all (--steps and --epochs count the whole run), 10 to go"))
        #expect(try SafeTensors.read(path: out + "/last.safetensors").tensors == SafeTensors.read(path: folder.path + "/full/last.safetensors").tensors)
        let json = try #require(try JSONSerialization.jsonObject(with: Data((resumed.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        #expect(Set(json.keys) == Set(TrainingRunSummary.keys) && json["run_dir"] as? String == out && json["steps"] as? Int == 20)
        #expect(resumed.stdout.contains("\"run_dir\":\"\(out)\""))   // slashes not escaped
        // Nothing more to do: the saved budget is reached.
        let done = try runProcess(lmTrain, ["train", "--resume", out])
        #expect(done.status == 0 && done.stdout.contains("\"steps\":20,"), "\(done.stderr)")

        let replaced = try runProcess(lmTrain, arguments(out, steps: 3) + ["--overwrite"])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(replaced.stdout.contains("\"steps\":3,"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("events.out.tfevents.") }.count == 1)
    }

    /// `--init-from` starts a new run from a checkpoint's weights and reads the new text with its
    /// vocabulary; text with characters outside it is refused in one line naming them, and
    /// nothing is written.
    @Test func initFromChecksTheVocabulary() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 60, seed: 4))
        func arguments(_ data: String, _ out: String) -> [String] {
            ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
             "--seq-len", "8", "--threads", "1", "--steps", "4"]
        }
        #expect(try runProcess(lmTrain, arguments(data, folder.path + "/a")).status == 0)
        let ckpt = folder.path + "/a/best.safetensors"
        let tuned = try runProcess(lmTrain, arguments(data, folder.path + "/b") + ["--init-from", ckpt])
        #expect(tuned.status == 0, "\(tuned.stderr)")
        #expect(tuned.stderr.contains("lm-train: initialised from the weights of \(ckpt); optimizer state fresh"))
        // A shorter text over the same characters: the checkpoint's vocabulary reads it.
        let text = try String(contentsOfFile: data, encoding: .utf8)
        let subset = try folder.write("s.txt", text: String(text.prefix(text.count / 2)))
        #expect(try runProcess(lmTrain, arguments(subset, folder.path + "/s") + ["--init-from", ckpt]).status == 0)
        let other = try folder.write("o.txt", text: text + "Quite another text: ~\n")
        let refused = try runProcess(lmTrain, arguments(other, folder.path + "/c") + ["--init-from", ckpt])
        #expect(refused.status == 1)
        let last = refused.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("lm-train: \(other) has characters not in the vocabulary: ") && last.contains("'~' (U+007E)"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/c/config.json"))
    }

    /// Runs `lm-train` and sends `signal` (`count` times) after its first progress line.
    func interrupt(_ arguments: [String], signal: Int32, count: Int = 1) throws -> ProcessResult {
        try runInterrupted(lmTrain, arguments, signal: signal, count: count)
    }

    func trainArguments(_ data: String, out: String, steps: Int = 300) -> [String] {
        ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
         "--seq-len", "8", "--steps", "\(steps)", "--eval-every", "50", "--threads", "2", "--dropout", "0.1",
         "--lr-schedule", "cosine", "--warmup", "5", "--seed", "2"]
    }

    /// SIGINT and SIGTERM finish the step, save, print one line with the way to go on and exit
    /// 130 / 143; resuming then ends with the weights of an uninterrupted run, bit for bit.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalSavesAndResumeMatchesUninterruptedRun(signal: Int32) throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 200, seed: 4))
        let full = try runProcess(lmTrain, trainArguments(data, out: folder.path + "/full"))
        #expect(full.status == 0, "\(full.stderr)")

        let out = folder.path + "/split"
        let r = try interrupt(trainArguments(data, out: out), signal: signal)
        #expect(r.status == 128 + signal, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(last.hasPrefix("lm-train: \(out): stopped by \(name) after step ") && last.hasSuffix("continue with --resume \(out)"), "\(last)")
        let stateStep = try SafeTensors.read(path: out + "/last.train.safetensors").metadata["step"]
        #expect(try LanguageModelCheckpoint.load(path: out + "/last.safetensors").metadata["step"] == stateStep)
        #expect(Int(stateStep ?? "") ?? 300 < 300)

        let resumed = try runProcess(lmTrain, trainArguments(data, out: out) + ["--resume", out])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let x = try SafeTensors.read(path: folder.path + "/full/last.safetensors")
        let y = try SafeTensors.read(path: out + "/last.safetensors")
        #expect(x.tensors == y.tensors)
        #expect(x.metadata["step"] == "300" && y.metadata["step"] == "300")
    }

    /// The process killed (SIGKILL, as by `kill -9`) after each write, fsync, rename and
    /// directory fsync of the save path in turn: `--resume` then either ends with exactly the
    /// weights of an uninterrupted run, or, when no save was complete yet, refuses in one line
    /// naming the folder. It never continues from a mixed pair, and no temporary file is left.
    @Test func resumeAfterAKillAtEachSavePointMatchesTheUninterruptedRun() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 100, seed: 4))
        func arguments(_ out: String) -> [String] {
            ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
             "--seq-len", "8", "--steps", "4", "--eval-every", "2", "--threads", "2", "--dropout", "0.1", "--seed", "2"]
        }
        let full = try runProcess(lmTrain, arguments(folder.path + "/full"), environment: ["RNN_FAULT_TRACE": "1"])
        #expect(full.status == 0, "\(full.stderr)")
        let expected = try SafeTensors.read(path: folder.path + "/full/last.safetensors").tensors
        let points = full.stderr.split(separator: "\n").filter { $0.hasPrefix("fault point ") }
        // config.json at the start, then two saves (steps 2 and 4), each writing last, last.train,
        // best and log.csv.
        #expect(points.count == 36)
        #expect(points.first == "fault point 1: config.json written")
        #expect(points.contains("fault point 11: last.train.safetensors renamed"))
        var resumedRuns = 0
        for (i, point) in points.enumerated() {
            let out = folder.path + "/kill\(i + 1)"
            let killed = try runProcess(lmTrain, arguments(out), environment: ["RNN_FAULT_KILL_AT": "\(i + 1)"])
            #expect(killed.status == SIGKILL, "\(point): \(killed.stderr)")
            let resumed = try runProcess(lmTrain, arguments(out) + ["--resume", out])
            if i + 1 < 11 {
                // Killed before the first resume file was in place: nothing to resume.
                #expect(resumed.status == 1 && resumed.stderr == "lm-train: \(out): no saved run to --resume from\n", "\(point): \(resumed.stderr)")
                continue
            }
            resumedRuns += 1
            #expect(resumed.status == 0, "\(point): \(resumed.stderr)")
            let last = try SafeTensors.read(path: out + "/last.safetensors")
            #expect(last.tensors == expected, "\(point)")
            #expect(last.metadata["step"] == "4")
            let left = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp-") }
            #expect(left.isEmpty, "\(point): \(left)")
        }
        #expect(resumedRuns == 26)
    }

    /// A second SIGINT ends the process at once; whatever it leaves under the final names is complete.
    @Test func secondSigintExitsAtOnceWithoutTornFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 200, seed: 4))
        let out = folder.path + "/run"
        let r = try interrupt(trainArguments(data, out: out, steps: 5000), signal: SIGINT, count: 2)
        #expect(r.status == 130, "\(r.stderr)")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? [] where !name.hasPrefix(".") {
            if name.hasSuffix(".safetensors") { _ = try SafeTensors.read(path: out + "/" + name) }
        }
    }

    /// Weight decay that multiplies the weights by -9999 a step overflows them within a few
    /// steps: the run stops with one line, exit 1, and the last checkpoint is the last good one.
    @Test func divergingRunStopsAndKeepsTheLastGoodCheckpoint() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 100, seed: 4))
        let out = folder.path + "/run"
        let r = try runProcess(lmTrain, ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4",
                                         "--batch", "4", "--seq-len", "8", "--steps", "60", "--eval-every", "2", "--threads", "1",
                                         "--optimizer", "sgd", "--lr", "10", "--weight-decay", "1000"])
        #expect(r.status == 1)
        #expect(r.stdout.isEmpty)
        let errorLines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("lm-train: ") && !$0.hasPrefix("lm-train: warning: ")
                                                                && !$0.hasPrefix("lm-train: run folder ") && !$0.contains(" parameters; ") }
        #expect(errorLines.count == 1 && errorLines[0].hasPrefix("lm-train: training diverged: "), "\(r.stderr)")
        let diverged = Int(errorLines.first?.split(separator: " ").last(where: { Int($0.dropLast()) != nil })?.dropLast() ?? "") ?? 0
        #expect(diverged > 0)
        let last = try LanguageModelCheckpoint.load(path: out + "/last.safetensors")
        let saved = Int(last.metadata["step"] ?? "") ?? -1
        #expect(saved >= 2 && saved < diverged && saved % 2 == 0, "saved \(saved), diverged \(diverged)")
        #expect(last.model.stateDict.allSatisfy { $0.values.allSatisfy(\.isFinite) })
    }

    /// A checkpoint with a NaN or an infinity in a weight is refused by every command that
    /// loads one, in one line naming the file and the tensor, exit 1, no output.
    @Test func nonFiniteCheckpointIsRefusedBySampleScoreAndPredict() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 3, embedding: 2, vocab: ["a", "b", "c"], seed: 5)
        let data = try folder.write("t.txt", text: "abcabca\n")
        for (k, bad) in [Float.nan, .infinity].enumerated() {
            var tensors = ref.tensors
            let victim = tensors.indices.last!
            tensors[victim].values[k] = bad
            let ckpt = folder.path + "/bad\(k).safetensors"
            try SafeTensors.write(tensors, metadata: ref.metadata, to: ckpt)
            let expected = "lm-train: \(ckpt): tensor '\(tensors[victim].name)' holds \(bad) at element \(k); a checkpoint must hold finite numbers\n"
            for args in [["sample", "--checkpoint", ckpt, "--prime", "ab", "--length", "5"], ["score", "--checkpoint", ckpt, "--data", data],
                         ["predict", "--checkpoint", ckpt, "--text", "ab"]] {
                let r = try runProcess(lmTrain, args)
                #expect(r.status == 1 && r.stdout.isEmpty && r.stderr == expected, "\(args): \(r.stdout) \(r.stderr)")
            }
        }
    }

    /// `--lr 1e30 --clip 0 --eval-every 1`: the step-1 weights are huge but finite (a warning
    /// line), the step-2 weights overflow: one line saying so, exit 1, and the kept
    /// `last.safetensors` and `best.safetensors` are the step-1 model with finite weights.
    @Test func hugeLearningRateWarnsThenStopsKeepingFiniteCheckpoints() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 100, seed: 4))
        let out = folder.path + "/run"
        let r = try runProcess(lmTrain, ["train", "--data", data, "--out", out, "--layers", "1", "--hidden", "8", "--embedding", "4",
                                         "--batch", "4", "--seq-len", "8", "--steps", "20", "--eval-every", "1", "--threads", "1",
                                         "--lr", "1e30", "--clip", "0"])
        #expect(r.status == 1 && r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains("diverged") }.count == 1 && lines.last?.hasPrefix("lm-train: training diverged: ") == true,
                "\(r.stderr)")
        #expect(lines.filter { $0.contains("warning:") && $0.contains("learning rate may be too high") }.count == 1, "\(r.stderr)")
        for name in ["last", "best"] {
            let saved = try LanguageModelCheckpoint.load(path: out + "/\(name).safetensors")   // refuses non-finite weights
            #expect(saved.metadata["step"] == "1")
            #expect(Double(saved.metadata["val_loss"] ?? "")?.isFinite == true)
        }
    }

    /// Models that cannot fit in memory are refused before anything is allocated: one line with
    /// what the model needs and what is available, exit 1, no output folder.
    @Test func oversizedModelsAreRefusedBeforeAllocating() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let data = try folder.write("c.txt", text: grammarCorpus(sentences: 300, seed: 4))
        let out = folder.path + "/run"
        for option in [["--hidden", "1000000"], ["--layers", "100000"], ["--embedding", "10000000"]] {
            let start = Date()
            let r = try runProcess(lmTrain, ["train", "--data", data, "--out", out, "--steps", "1"] + option)
            #expect(Date().timeIntervalSince(start) < 20)
            #expect(r.status == 1 && r.stdout.isEmpty, "\(option): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("lm-train: the model (") && lines[0].contains(" of memory but ")
                    && lines[0].hasSuffix("; use a smaller --hidden, --layers, --embedding, --batch or --seq-len"), "\(option): \(r.stderr)")
        }
        let limited = try runProcess("/bin/sh", ["-c", "ulimit -v 2000000 && exec \"$0\" \"$@\"", lmTrain,
                                                 "train", "--data", data, "--out", out, "--steps", "1", "--hidden", "20000"])
        #expect(limited.status == 1 && limited.stderr.contains("is available (process limit RLIMIT_AS; physical memory "), "\(limited.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func badInputGivesOneLineAndNonZeroExit() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let ref = ReferenceLanguageModel(cell: "lstm", layers: 1, hidden: 2, embedding: 0, vocab: ["a", "b", "c"], seed: 2)
        let ckpt = folder.path + "/m.safetensors"
        try ref.write(to: ckpt)
        var meta = ref.metadata
        meta["format"] = "rnn-suite/translate/1"
        let other = folder.path + "/other.safetensors"
        try SafeTensors.write(ref.tensors, metadata: meta, to: other)
        let cases: [([String], String)] = [
            (["sample", "--checkpoint", ckpt, "--prime", "abz"], "--prime has characters not in the vocabulary: 'z' (U+007A)"),
            (["predict", "--checkpoint", other, "--text", "ab"], "\(other): checkpoint format is 'rnn-suite/translate/1'"),
            (["score", "--checkpoint", ckpt, "--data", folder.path + "/none.txt"], "\(folder.path)/none.txt: no such file or folder"),
            (["train", "--data", folder.path + "/none.txt", "--out", folder.path + "/run", "--steps", "1"],
             "\(folder.path)/none.txt: no such file or folder"),
        ]
        for (args, expected) in cases {
            let r = try runProcess(lmTrain, args)
            #expect(r.status != 0, "\(args)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1 && r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/run"))
    }
}
