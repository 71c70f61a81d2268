import Foundation
import Testing
@testable import ImageFrames
import RecurrentCore

/// Loads a shapes set written to `root` (train/ and test/) at 8x8 features.
private func loadShapes(_ root: String) throws -> FrameSplit {
    let features = FeatureConfig(width: 8, height: 8)
    return try FrameClassification.loadSplit(root: root, rows: false, features: features, threads: 2).split
}

@Suite struct FrameTrainingTests {
    /// A short debug-build run on small `shapes` clips: bars and discs (4 of the 6 classes) are
    /// easy, so the held-out test accuracy must clear 60 % (chance: 16.7 %) within seconds.
    @Test func shortShapesRunLearns() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let options = ShapesOptions(width: 16, height: 16, frames: 8, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("shapes"), trainPerClass: 24, testPerClass: 8, seed: 3, options: options)
        var o = FrameTrainingOptions()
        o.dataPath = tmp.sub("shapes"); o.width = 8; o.height = 8; o.batch = 16; o.valFraction = 0.1
        o.hidden = 24; o.projection = 16
        var t = TrainingConfiguration()
        t.epochs = 12; t.learningRate = 1e-2; t.lrSchedule = .cosine; t.lrFloor = 0.02; t.seed = 1; t.threads = 2
        t.outDirectory = tmp.sub("run"); t.logEvery = 9
        let start = Date()
        let (report, run) = try quietRun(o, t, evalEveryEpoch: true)
        #expect(Date().timeIntervalSince(start) < 30)
        // 144 training clips: 14 validate, 130 train in 9 batches of up to 16.
        #expect(run.validation.count == 14 && run.train.count == 130)
        #expect(report.test.accuracy >= 0.6, "test accuracy \(report.test.accuracy)")
        #expect(report.summary.steps == 12 * 9)
        #expect(report.test.count == 48)
        // Outputs exist and the log has a header plus one line per epoch.
        let log = try String(contentsOfFile: tmp.sub("run/log.csv"), encoding: .utf8).split(separator: "\n")
        #expect(log.count == 13)
        #expect(log.first == "step,train_loss,lr,grad_norm,val_loss,val_accuracy,clips_per_s,seconds")
        #expect(log.dropFirst().map { Int($0.split(separator: ",")[0]) } == (1...12).map { $0 * 9 })
        for file in ["best.safetensors", "last.safetensors", "loss.png"] {
            #expect(FileManager.default.fileExists(atPath: tmp.sub("run/" + file)), "\(file) missing")
        }
        // The checkpoints evaluate to the test figures the run reported.
        let last = try FrameModel.load(path: tmp.sub("run/last.safetensors"))
        let eval = try last.evaluate(run.test)
        #expect(abs(eval.accuracy - report.lastTest.accuracy) < 1e-9)
        #expect(eval.confusion.counts.flatMap { $0 }.reduce(0, +) == 48)
        #expect((0..<6).reduce(0) { $0 + eval.confusion.counts[$1][$1] } == eval.correct)
        // best.safetensors is the model of the best validation accuracy in the log (first of ties).
        let accuracies = log.dropFirst().map { Double($0.split(separator: ",")[5])! }
        let bestRow = accuracies.firstIndex(of: accuracies.max()!)!
        #expect(report.summary.bestStep == (bestRow + 1) * 9)
        let best = try FrameModel.load(path: tmp.sub("run/best.safetensors"))
        let validation = try FrameEvaluation.compute(network: best.network, examples: run.validation, perFrame: false, classes: 6, batchSize: 7)
        #expect(abs(validation.accuracy - accuracies.max()!) < 1e-5)
    }

    /// Predictions from a reloaded checkpoint equal those of the model that wrote it, and the
    /// metadata carries format, features, statistics and class names.
    @Test func checkpointRoundTripPredictsTheSame() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let options = ShapesOptions(width: 12, height: 12, frames: 4, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("d"), trainPerClass: 3, testPerClass: 1, seed: 5, options: options)
        let split = try loadShapes(tmp.sub("d"))
        let model = try FrameClassification.makeModel(split: split, network: FrameNetworkOptions(cell: .gru, hidden: 6,
                                                      bidirectional: true, projection: 5, pooling: .mean), seed: 9, threads: 1)
        try model.save(to: tmp.sub("m.safetensors"))
        let archive = try SafeTensors.read(path: tmp.sub("m.safetensors"))
        #expect(archive.metadata["format"] == "rnn-suite/frames/1")
        #expect(archive.metadata["classes"] == "[\"bar-left\",\"bar-right\",\"disc-grow\",\"disc-shrink\",\"square-ccw\",\"square-cw\"]")
        #expect(archive.tensor("projection.weight")?.shape == [5, 64])
        #expect(archive.tensor("rnn.weight_hh_l0_reverse")?.shape == [18, 6])
        let loaded = try FrameModel.load(path: tmp.sub("m.safetensors"))
        #expect(loaded.info == model.info)
        let clips = split.test.examples.map(\.source)
        let a = try model.predict(paths: clips), b = try loaded.predict(paths: clips)
        #expect(a == b)
        #expect(a.count == 6 && a.allSatisfy { abs($0.probabilities[0].reduce(0, +) - 1) < 1e-5 })
        // Predict normalises like training: the probabilities equal those of the loaded test set.
        let direct = model.network.predict(FrameBatching.batch(split.test.examples, indices: [0], perFrame: false, labelled: false))
        for c in 0..<6 { #expect(abs(direct[c] - a[0].probabilities[0][c]) < 1e-6) }
    }

    /// Per-frame labels (`labels.txt`): a many-to-many model learns which frames are bright.
    @Test func perFrameLabelsTrainManyToMany() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        var rng = SeededRandom(seed: 4)
        for part in ["train", "test"] {
            for clip in 0..<(part == "train" ? 24 : 8) {
                let folder = tmp.sub("d/\(part)/blink/c\(clip)")
                var labels: [String] = []
                for f in 0..<5 {
                    let on = rng.nextInt(below: 2) == 1
                    let base = on ? 180 : 40
                    let noise = rng.nextInt(below: 40)
                    try writeGrey(folder + "/f\(f).png", width: 6, height: 6) { x, y in UInt8(base + (x * 3 + y * 5 + noise) % 40) }
                    labels.append(on ? "on" : "off")
                }
                try (labels.joined(separator: "\n") + "\n").write(toFile: folder + "/labels.txt", atomically: true, encoding: .utf8)
            }
        }
        let split = try FrameClassification.loadSplit(root: tmp.sub("d"), rows: false, features: FeatureConfig(width: 3, height: 3)).split
        #expect(split.train.frameClassNames == ["off", "on"])
        var o = FrameTrainingOptions()
        o.dataPath = tmp.sub("d"); o.width = 3; o.height = 3; o.batch = 8; o.valFraction = 0
        o.hidden = 8; o.projection = 0; o.perFrame = true
        var t = TrainingConfiguration()
        t.epochs = 15; t.learningRate = 2e-2; t.lrSchedule = .cosine; t.lrFloor = 0.02; t.seed = 2; t.threads = 2
        t.outDirectory = tmp.sub("run")
        let (report, run) = try quietRun(o, t, evalEveryEpoch: true)
        #expect(run.model.info.model.mode == .manyToMany)
        #expect(report.test.count == 40)
        #expect(report.test.accuracy >= 0.95, "per-frame accuracy \(report.test.accuracy)")
        let p = try run.model.predict(paths: [split.test.examples[0].source])
        #expect(p[0].labels.count == 5)
        // A clip-level data set cannot train a per-frame model.
        let shapesOpts = ShapesOptions(width: 8, height: 8, frames: 2, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("s"), trainPerClass: 1, testPerClass: 1, seed: 1, options: shapesOpts)
        let plain = try loadShapes(tmp.sub("s"))
        #expect(throws: FrameError.self) {
            _ = try FrameClassification.makeModel(split: plain, network: FrameNetworkOptions(perFrame: true), seed: 1, threads: 1)
        }
    }

    /// Shifting a 3x3 frame by (1, -1) moves every pixel down one row and left one column.
    @Test func shiftAugmentationMovesPixels() {
        let config = FeatureConfig(width: 3, height: 3)
        let src: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        var dst = [Float](repeating: 0, count: 9)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                FrameBatching.shiftFrames(s.baseAddress!, into: d.baseAddress!, frames: 1, config: config, dy: 1, dx: -1, fill: -1)
            }
        }
        #expect(dst == [-1, -1, -1, 2, 3, -1, 5, 6, -1])
    }
}

@Suite struct FrameModelErrorTests {
    private func tinyModel(_ tmp: TempFolder) throws -> FrameModel {
        let options = ShapesOptions(width: 8, height: 8, frames: 2, antiAlias: .off)
        try FrameGenerator.writeShapes(root: tmp.sub("d"), trainPerClass: 1, testPerClass: 1, seed: 1, options: options)
        let split = try loadShapes(tmp.sub("d"))
        return try FrameClassification.makeModel(split: split, network: FrameNetworkOptions(hidden: 3, projection: 0), seed: 1, threads: 1)
    }

    /// The full `__metadata__` of a frame checkpoint, assembled here key by key as the
    /// `rnn-suite/frames/1` layout defines it.
    private func layoutMetadata(_ model: FrameModel) -> [String: String] {
        ["format": "rnn-suite/frames/1", "features": model.info.features.jsonString(),
         "statistics": model.info.statistics?.jsonString() ?? "{}",
         "classes": String(decoding: try! JSONEncoder().encode(model.info.classNames), as: UTF8.self),
         "model": model.info.model.jsonString()]
    }

    @Test func checkpointOfAnotherFormatIsRejected() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let model = try tinyModel(tmp)
        var meta = layoutMetadata(model)
        meta["format"] = "rnn-suite/text/1"
        let path = tmp.sub("lm.safetensors")
        try SafeTensors.write(model.network.stateDict, metadata: meta, to: path)
        let error = try #require(thrownFrameError { _ = try FrameModel.load(path: path) })
        #expect(error.description == "\(path): not a usable frame-classify checkpoint: checkpoint format is 'rnn-suite/text/1', expected 'rnn-suite/frames/1'")
        // No format at all.
        try SafeTensors.write(model.network.stateDict, metadata: [:], to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description.contains("no 'format'") == true)
    }

    @Test func damagedCheckpointsAreRejected() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let model = try tinyModel(tmp)
        let path = tmp.sub("m.safetensors")
        // Not a safetensors file.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        let e1 = try #require(thrownFrameError { _ = try FrameModel.load(path: path) })
        #expect(e1.description.hasPrefix(path + ": "))
        // A missing tensor.
        try SafeTensors.write(Array(model.network.stateDict.dropLast()), metadata: layoutMetadata(model), to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description
                == "\(path): not a usable frame-classify checkpoint: tensor 'classifier.bias' is missing")
        // An unexpected tensor.
        try SafeTensors.write(model.network.stateDict + [NamedTensor(name: "extra.weight", shape: [1], values: [0])],
                              metadata: layoutMetadata(model), to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description
                == "\(path): not a usable frame-classify checkpoint: unexpected tensor 'extra.weight' for this configuration")
        // A wrongly shaped tensor.
        let reshaped = model.network.stateDict.map { $0.name == "classifier.bias" ? NamedTensor(name: $0.name, shape: [1, $0.shape[0]], values: $0.values) : $0 }
        try SafeTensors.write(reshaped, metadata: layoutMetadata(model), to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description.contains("tensor 'classifier.bias' has shape [1, ") == true)
        // Classes that disagree with the model configuration.
        var meta = layoutMetadata(model)
        meta["classes"] = "[\"a\",\"b\"]"
        try SafeTensors.write(model.network.stateDict, metadata: meta, to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description.contains("classes") == true)
        // Invalid feature JSON.
        meta = layoutMetadata(model)
        meta["features"] = "{"
        try SafeTensors.write(model.network.stateDict, metadata: meta, to: path)
        #expect(thrownFrameError { _ = try FrameModel.load(path: path) }?.description.hasPrefix(path) == true)
        // Missing file.
        #expect(thrownFrameError { _ = try FrameModel.load(path: tmp.sub("none.safetensors")) } != nil)
    }

    /// A checkpoint in the `rnn-suite/frames/1` layout written before the shared checkpoint
    /// wrapper: every metadata entry and tensor spelled out here, not produced by `save`.
    @Test func checkpointInTheOriginalLayoutLoads() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        // Rows of a 4x3 grey image: 4 features per step; GRU of 3 units; 2 classes.
        let meta = [
            "format": "rnn-suite/frames/1",
            "features": #"{"colour":"grey","deltas":false,"height":3,"maxPixels":16777216,"mode":"rows","width":4}"#,
            "statistics": #"{"mean":[0.5],"scope":"global","std":[0.25]}"#,
            "classes": #"["circle","square"]"#,
            "model": #"{"bidirectional":false,"cell":"gru","classes":2,"dropout":0,"hidden":3,"input_size":4,"layers":1,"mode":"many-to-one","pooling":"last","projection":0,"projection_activation":"tanh","unit_forget_bias":false}"#,
            "epoch": "7",
        ]
        func tensor(_ name: String, _ shape: [Int], _ k: Int) -> NamedTensor {
            NamedTensor(name: name, shape: shape, values: (0..<shape.reduce(1, *)).map { Float(($0 * 7 + k) % 11) / 10 - 0.5 })
        }
        let tensors = [tensor("rnn.weight_ih_l0", [9, 4], 1), tensor("rnn.weight_hh_l0", [9, 3], 2),
                       tensor("rnn.bias_ih_l0", [9], 3), tensor("rnn.bias_hh_l0", [9], 4),
                       tensor("classifier.weight", [2, 3], 5), tensor("classifier.bias", [2], 6)]
        let path = tmp.sub("old.safetensors")
        try SafeTensors.write(tensors, metadata: meta, to: path)

        let model = try FrameModel.load(path: path)
        #expect(model.info.features == FeatureConfig(width: 4, height: 3, colour: .grey, mode: .rows))
        #expect(model.info.statistics == FeatureStatistics(scope: .global, mean: [0.5], std: [0.25]))
        #expect(model.info.classNames == ["circle", "square"])
        #expect(model.info.model == SequenceClassifierConfig(inputSize: 4, cell: .gru, layers: 1, hidden: 3, classes: 2))
        let loaded = Dictionary(uniqueKeysWithValues: model.network.stateDict.map { ($0.name, $0) })
        #expect(loaded.count == tensors.count)
        for t in tensors { #expect(loaded[t.name] == t) }
        // Saving it again keeps the layout: same keys, same tensors.
        let again = tmp.sub("again.safetensors")
        try model.save(to: again, extra: ["epoch": "7"])
        let archive = try SafeTensors.read(path: again)
        #expect(Set(archive.metadata.keys) == Set(meta.keys))
        #expect(archive.metadata["format"] == "rnn-suite/frames/1")
        #expect(try SequenceClassifierConfig(json: archive.metadata["model"]!, source: again) == model.info.model)
        #expect(archive.tensors.map(\.name).sorted() == tensors.map(\.name).sorted())
    }

    @Test func badPredictionInputNamesTheFile() throws {
        let tmp = TempFolder()
        defer { tmp.cleanup() }
        let model = try tinyModel(tmp)
        let bogus = tmp.sub("x.png")
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: bogus))
        // A file given to this clip model is refused as a single image before it is read.
        #expect(thrownFrameError { _ = try model.predict(paths: [bogus]) } == .notAClip(path: bogus))
        #expect(thrownFrameError { _ = try model.predict(paths: [tmp.sub("missing")]) }?.description.hasPrefix(tmp.sub("missing")) == true)
        try FileManager.default.createDirectory(atPath: tmp.sub("empty"), withIntermediateDirectories: true)
        #expect(thrownFrameError { _ = try model.predict(paths: [tmp.sub("empty")]) } == .emptyClip(path: tmp.sub("empty")))
        // Evaluation data with a class the model does not know.
        try writeGrey(tmp.sub("other/train/x/c0/f0.png"), width: 8, height: 8)
        try writeGrey(tmp.sub("other/test/zebra/c0/f0.png"), width: 8, height: 8)
        #expect(thrownFrameError { _ = try FrameClassification.evaluationSet(root: tmp.sub("other"), model: model) }?
            .description.contains("zebra") == true)
    }
}
