import Foundation
import Testing
import RecurrentCore
@testable import Seq2Seq

func temporaryDirectory(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "seq2seq-tests-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func tinyBundle(_ attention: AttentionKind = .dot) throws -> Seq2SeqBundle {
    let src = Vocabulary(texts: ["abc", "cab"], tokenization: .char)
    let tgt = Vocabulary(texts: ["xyz", "zz"], tokenization: .char)
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
        return e as? Seq2SeqError == .wrongFormat(path: path, found: "rnn-suite/lm/1") && text.contains(path) && !text.contains("\n")
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
    #expect(throws: Seq2SeqError.shapeMismatch(path: good, name: "decoder.out.bias", expected: [bundle.targetVocabulary.count], found: [2])) {
        try Seq2SeqCheckpoint.load(path: good)
    }
}

@Test func badTranslateInputIsReported() throws {
    let bundle = try tinyBundle()
    var unknown: [String: Int] = [:]
    #expect(throws: Seq2SeqError.inputTooLong(text: "abcabca", length: 7, maximum: 6)) {
        try bundle.translate(["abc", "abcabca"], unknown: &unknown)
    }
    #expect(throws: Seq2SeqError.emptyInput(line: 2)) { try bundle.translate(["abc", ""], unknown: &unknown) }
    unknown = [:]
    _ = try bundle.translate(["aqq", "q"], unknown: &unknown)
    #expect(unknown == ["q": 3])
}

/// End to end: `reverse` over the alphabet a…e, length exactly 5, dot attention, 300 steps
/// of 32 pairs; greedy exact match on 100 held-out pairs must reach 90 % (training a few
/// seconds in debug). Also checks the files the trainer writes.
@Test func trainsReverseLengthFive() throws {
    var gen = try ToyPairGenerator(task: .reverse, options: ToyTaskOptions(alphabet: Array("abcde"), minLength: 5, maxLength: 5), seed: 3)
    let pairs = try gen.generate(count: 2000)
    let prepared = try Seq2SeqData.prepare(pairs, tokenization: .char, fractions: SplitFractions(train: 0.9, validation: 0.05, test: 0.05), seed: 1)
    let config = Seq2SeqConfig(cell: .gru, layers: 1, hidden: 32, embedding: 8, attention: .dot,
                               sourceVocabSize: prepared.sourceVocabulary.count, targetVocabSize: prepared.targetVocabulary.count,
                               maxSourceLength: 5, maxTargetLength: 7)
    let bundle = Seq2SeqBundle(model: try Seq2SeqModel(config: config, seed: 1, threads: 2),
                               sourceVocabulary: prepared.sourceVocabulary, targetVocabulary: prepared.targetVocabulary)
    var options = TrainingOptions()
    options.batchSize = 32; options.steps = 300; options.evaluateEvery = 150; options.learningRate = 1e-2
    let dir = temporaryDirectory("e2e")
    options.outputDirectory = dir
    let summary = try Seq2SeqTrainer(bundle: bundle, train: prepared.train, validation: prepared.split.validation, options: options).run()
    #expect(summary.steps == 300)
    let test = try bundle.evaluate(prepared.split.test)
    #expect(test.exactMatch >= 0.9, "held-out exact match \(test.exactMatch)")
    let log = try String(contentsOfFile: dir + "/log.csv", encoding: .utf8).split(separator: "\n")
    #expect(log.count == 3 && log[0].hasPrefix("step,epoch"))
    #expect(FileManager.default.fileExists(atPath: dir + "/loss.png"))
    let best = try Seq2SeqCheckpoint.load(path: dir + "/best.safetensors")
    #expect(best.model.config == config)
}
