import Foundation
import Testing
import RecurrentCore
@testable import Seq2Seq
import TrainingCLI

func temporaryDirectory(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "seq2seq-tests-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func tinyBundle(_ attention: AttentionKind = .dot) throws -> Seq2SeqBundle {
    let src = Vocabulary(texts: ["abc", "cab"], tokenization: .character)
    let tgt = Vocabulary(texts: ["xyz", "zz"], tokenization: .character)
    let config = Seq2SeqConfig(cell: .gru, layers: 1, hidden: 5, embedding: 3, attention: attention,
                               sourceVocabSize: src.count, targetVocabSize: tgt.count, maxSourceLength: 6, maxTargetLength: 6)
    return Seq2SeqBundle(model: try Seq2SeqModel(config: config, seed: 2), sourceVocabulary: src, targetVocabulary: tgt)
}

@Test func checkpointRoundTripKeepsOutputs() throws {
    let dir = temporaryDirectory("ckpt")
    let bundle = try tinyBundle(.additive)
    let path = dir + "/m.safetensors"
    try Seq2SeqCheckpoint.save(bundle, extra: ["task": "reverse"], to: path)
    let archive = try SafeTensors.read(path: path)
    #expect(archive.metadata["format"] == "rnn-suite/seq2seq/1")
    let names = Set(archive.tensors.map(\.name))
    for n in ["encoder.embedding.weight", "encoder.rnn.weight_ih_l0", "decoder.embedding.weight", "decoder.rnn.weight_hh_l0",
              "attention.query.weight", "attention.key.weight", "attention.key.bias", "attention.v.weight",
              "attention.linear_out.weight", "decoder.out.weight", "decoder.out.bias"] {
        #expect(names.contains(n), "missing \(n)")
    }
    #expect(archive.tensor("decoder.rnn.weight_ih_l0")?.shape == [15, 3 + 5])
    let loaded = try Seq2SeqCheckpoint.load(path: path)
    #expect(loaded.metadata["task"] == "reverse")
    #expect(loaded.model.config == bundle.model.config)
    #expect(loaded.sourceVocabulary == bundle.sourceVocabulary && loaded.targetVocabulary == bundle.targetVocabulary)
    var u: [String: Int] = [:]
    let a = try bundle.translate(["abc", "ca"], unknown: &u), b = try loaded.translate(["abc", "ca"], unknown: &u)
    #expect(a.map(\.text) == b.map(\.text))
    #expect(zip(a, b).allSatisfy { abs($0.decoded.logProb - $1.decoded.logProb) < 1e-6 })
}

@Test func checkpointOfAnotherTaskIsRejected() throws {
    let dir = temporaryDirectory("other")
    let path = dir + "/lm.safetensors"
    try SafeTensors.write([NamedTensor(name: "embedding.weight", shape: [2, 2], values: [1, 2, 3, 4])],
                          metadata: ["format": "rnn-suite/lm/1"], to: path)
    #expect {
        try Seq2SeqCheckpoint.load(path: path)
    } throws: { e in
        let text = "\(e)"
        return text.hasPrefix(path + ":") && text.contains("rnn-suite/lm/1") && text.contains("rnn-suite/seq2seq/1") && !text.contains("\n")
    }
    // A checkpoint with a tensor of the wrong shape names it.
    let bundle = try tinyBundle()
    let good = dir + "/good.safetensors"
    try Seq2SeqCheckpoint.save(bundle, to: good)
    var archive = try SafeTensors.read(path: good)
    if let i = archive.tensors.firstIndex(where: { $0.name == "decoder.out.bias" }) {
        archive.tensors[i] = NamedTensor(name: "decoder.out.bias", shape: [2], values: [0, 0])
    }
    try SafeTensors.write(archive.tensors, metadata: archive.metadata, to: good)
    #expect {
        try Seq2SeqCheckpoint.load(path: good)
    } throws: { e in
        let text = "\(e)"
        return text.hasPrefix(good + ":") && text.contains("decoder.out.bias") && text.contains("[2]") && !text.contains("\n")
    }
}

/// Checkpoints written before `dropout` existed (no such key in `config`) still load, as dropout 0.
@Test func checkpointWithoutDropoutInConfigLoads() throws {
    let dir = temporaryDirectory("olddropout")
    let bundle = try tinyBundle(.general)
    let path = dir + "/m.safetensors"
    try Seq2SeqCheckpoint.save(bundle, extra: ["task": "reverse"], to: path)
    var archive = try SafeTensors.read(path: path)
    var config = try #require(try JSONSerialization.jsonObject(with: Data(archive.metadata["config"]!.utf8)) as? [String: Any])
    #expect(config["dropout"] != nil)
    config["dropout"] = nil
    let text = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
    archive.metadata["config"] = text
    try SafeTensors.write(archive.tensors, metadata: archive.metadata, to: path)
    let loaded = try Seq2SeqCheckpoint.load(path: path)
    #expect(loaded.model.config.dropout == 0)
    #expect(loaded.model.config == bundle.model.config)
    #expect(loaded.metadata["task"] == "reverse")
}

@Test func badTranslateInputIsReported() throws {
    let bundle = try tinyBundle()
    var unknown: [String: Int] = [:]
    #expect(throws: Seq2SeqError.inputTooLong(place: "input 2", text: "abcabca", length: 7, maximum: 6)) {
        try bundle.translate(["abc", "abcabca"], unknown: &unknown)
    }
    #expect(throws: Seq2SeqError.inputTooLong(place: "x.tsv:9", text: "abcabca", length: 7, maximum: 6)) {
        try bundle.translate(["abc", "abcabca"], places: ["x.tsv:4", "x.tsv:9"], unknown: &unknown)
    }
    #expect(throws: Seq2SeqError.emptyInput(place: "input 2")) { try bundle.translate(["abc", ""], unknown: &unknown) }
    unknown = [:]
    _ = try bundle.translate(["aqq", "q"], unknown: &unknown)
    #expect(unknown == ["q": 3])
}

/// End to end through the training engine: `reverse` over the alphabet a…e, length exactly 5,
/// dot attention, 300 steps of 32 pairs; greedy exact match on the 200 held-out test pairs must
/// reach 90 % (training a few seconds in debug). Also checks the files the run writes.
@Test func trainsReverseLengthFive() throws {
    var o = Seq2SeqTrainingOptions()
    o.task = .reverse; o.count = 2000
    o.toyOptions = ToyTaskOptions(alphabet: Array("abcde"), minLength: 5, maxLength: 5)
    o.cell = .gru; o.layers = 1; o.hidden = 32; o.embedding = 8; o.attention = .dot; o.batch = 32
    let dir = temporaryDirectory("e2e")
    var t = TrainingConfiguration()
    t.learningRate = 1e-2; t.lrSchedule = .cosine; t.lrFloor = 0.05; t.steps = 300; t.evalEvery = 150; t.logEvery = 150
    t.seed = 1; t.threads = 2; t.outDirectory = dir
    let outcome = try Seq2SeqTraining.train(options: o, training: t, configure: { $0.progressOutput = { _ in }; $0.plotter = TrainingCLI.writeLossPlot })
    #expect(outcome.summary.steps == 300)
    #expect(outcome.testPairs == 200)
    // Independent check of the reported test score: decode test.tsv with best.safetensors.
    let best = try Seq2SeqCheckpoint.load(path: dir + "/best.safetensors")
    let test = try PairTSV.read(path: dir + "/test.tsv")
    #expect(test.count == 200 && test.allSatisfy { String($0.source.reversed()) == $0.target })
    let r = try best.evaluate(test)
    #expect(r.exactMatch >= 0.9, "held-out exact match \(r.exactMatch)")
    #expect(abs(r.exactMatch - (outcome.testExactMatch ?? -1)) < 1e-9)
    let log = try String(contentsOfFile: dir + "/log.csv", encoding: .utf8).split(separator: "\n")
    #expect(log.count == 3 && log[0] == "step,train_loss,lr,grad_norm,val_loss,val_exact_match,val_token_accuracy,tokens_per_s,seconds")
    #expect(FileManager.default.fileExists(atPath: dir + "/loss.png"))
    #expect(best.model.config.hidden == 32 && best.model.config.attention == .dot && best.metadata["task"] == "reverse")
    let json = try #require(JSONSerialization.jsonObject(with: Data(outcome.json.utf8)) as? [String: Any])
    let metrics = try #require(json["metrics"] as? [String: Any])
    #expect((json["val_metric"] as? [String: Any])?["name"] as? String == "val_exact_match" && (metrics["test_pairs"] as? NSNumber)?.intValue == 200)
    #expect((json["test_metric"] as? [String: Any])?["name"] as? String == "test_exact_match")
    #expect(abs((metrics["test_exact_match"] as? Double ?? -1) - r.exactMatch) < 1e-6)
}

/// The memory estimate counts exactly the values the model allocates, for every attention.
@Test func memoryEstimateCountsTheAllocatedParameters() throws {
    for attention in AttentionKind.allCases {
        for (cell, bidirectional, layers) in [(CellKind.lstm, false, 1), (.gru, true, 2), (.rnnTanh, true, 1)] {
            let c = Seq2SeqConfig(cell: cell, layers: layers, hidden: 6, embedding: 4, bidirectional: bidirectional, attention: attention,
                                  sourceVocabSize: 9, targetVocabSize: 7, maxSourceLength: 5, maxTargetLength: 6, dropout: 0)
            let model = try Seq2SeqModel(config: c, seed: 1, threads: 2)
            let allocated = model.namedParameters.reduce(0) { $0 + $1.parameter.count }
            #expect(c.memoryEstimate(batch: 4, threads: 2).parameters == Double(allocated), "\(attention) \(cell)")
        }
    }
}
