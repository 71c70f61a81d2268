import Foundation
import Testing
@testable import RecurrentCore

/// A batch of random features `[batch, time, features]` with random labels for `config`.
private func randomBatch(_ config: SequenceClassifierConfig, batch B: Int, time T: Int, lengths: [Int],
                         seed: UInt64) -> SequenceBatch {
    var rng = SeededRandom(seed: seed)
    let x = randomArray(B * T * config.inputSize, &rng)
    if config.mode == .ctc {
        // Label sequences short enough for their lengths (at most one label per two steps).
        let sequences = lengths.map { n in (0..<max(1, n / 2)).map { _ in Int32(1 + rng.nextInt(below: config.classes - 1)) } }
        return SequenceBatch(inputs: x, batch: B, time: T, features: config.inputSize, lengths: lengths, labelSequences: sequences)
    }
    let count = config.mode == .manyToOne ? B : B * T
    let labels = (0..<count).map { _ in Int32(rng.nextInt(below: config.classes)) }
    return SequenceBatch(inputs: x, batch: B, time: T, features: config.inputSize, lengths: lengths, labels: labels)
}

/// Checks every parameter gradient of `trainStep` against central differences of the
/// evaluation loss (same tolerance rule as the layer checks in GradientCheckTests).
private func checkWholeModel(_ config: SequenceClassifierConfig, lengths: [Int]) {
    let T = lengths.max() ?? 1
    let model = SequenceClassifier(config: config, seed: 7)
    let batch = randomBatch(config, batch: lengths.count, time: T, lengths: lengths, seed: 11)
    _ = model.trainStep(batch)
    let label = "\(config.mode.rawValue) \(config.pooling.rawValue) \(config.cell) bi=\(config.bidirectional) P=\(config.projection)"
    var nonzero = 0
    for (name, p) in model.namedParameters {
        let analytic = p.gradient
        for i in 0..<p.count {
            let old = p.value[i]
            p.value[i] = old + fdStep; let lp = model.evaluate(batch).result.loss
            p.value[i] = old - fdStep; let lm = model.evaluate(batch).result.loss
            p.value[i] = old
            expectClose(analytic[i], Float((lp - lm) / Double(2 * fdStep)), "\(label) \(name)[\(i)]")
            if abs(analytic[i]) > 1e-4 { nonzero += 1 }
        }
    }
    // A check where every gradient is zero would pass trivially.
    #expect(nonzero > model.parameterCount / 2, "\(label): only \(nonzero) nonzero gradients")
}

@Suite struct SequenceClassifierGradientTests {
    @Test func manyToOneLastBidirectionalLSTMWithProjection() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 3, projection: 3, projectionActivation: .tanh, cell: .lstm,
                                                 layers: 2, hidden: 3, bidirectional: true, classes: 3,
                                                 mode: .manyToOne, pooling: .last), lengths: [4, 2, 1])
    }

    @Test func manyToOneMeanBidirectionalGRUWithLinearProjection() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 3, projection: 2, projectionActivation: .none, cell: .gru,
                                                 layers: 1, hidden: 3, bidirectional: true, classes: 4,
                                                 mode: .manyToOne, pooling: .mean), lengths: [3, 4, 2])
    }

    @Test func manyToOneMeanUnidirectionalRNN() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 2, cell: .rnnTanh, layers: 1, hidden: 4, classes: 3,
                                                 mode: .manyToOne, pooling: .mean), lengths: [4, 1, 3])
    }

    @Test func manyToOneMaxBidirectionalTwoLayerLSTM() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 3, projection: 2, cell: .lstm, layers: 2, hidden: 3,
                                                 bidirectional: true, classes: 3, mode: .manyToOne, pooling: .max),
                        lengths: [4, 1, 3])
    }

    @Test func manyToOneMaxUnidirectionalGRU() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 2, cell: .gru, layers: 1, hidden: 4, classes: 3,
                                                 mode: .manyToOne, pooling: .max), lengths: [2, 5, 3])
    }

    @Test func manyToManyBidirectionalLSTMWithProjection() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 3, projection: 3, projectionActivation: .tanh, cell: .lstm,
                                                 layers: 1, hidden: 3, bidirectional: true, classes: 3,
                                                 mode: .manyToMany), lengths: [4, 2, 3])
    }

    @Test func ctcBidirectionalLSTMWithProjection() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 3, projection: 3, cell: .lstm, layers: 1, hidden: 3,
                                                 bidirectional: true, classes: 4, mode: .ctc), lengths: [5, 3, 4])
    }

    @Test func manyToManyTwoLayerGRU() {
        checkWholeModel(SequenceClassifierConfig(inputSize: 2, projection: 2, cell: .gru, layers: 2, hidden: 3,
                                                 classes: 2, mode: .manyToMany), lengths: [1, 4, 3])
    }
}

@Suite struct SequenceClassifierBehaviourTests {
    /// Sharded gradients (2 threads, uneven shards) equal single-thread gradients.
    @Test(arguments: [SequenceClassifierConfig.Mode.manyToOne, .manyToMany, .ctc])
    func shardedGradientsEqualSingleThread(mode: SequenceClassifierConfig.Mode) {
        let config = SequenceClassifierConfig(inputSize: 5, projection: 4, cell: .lstm, layers: 2, hidden: 6,
                                              bidirectional: true, classes: 4, mode: mode, pooling: .mean)
        let single = SequenceClassifier(config: config, seed: 3, threads: 1)
        let sharded = SequenceClassifier(config: config, seed: 3, threads: 2)
        let batch = randomBatch(config, batch: 5, time: 6, lengths: [6, 2, 5, 1, 4], seed: 5)
        let a = single.trainStep(batch)
        let b = sharded.trainStep(batch)
        #expect(abs(a.loss - b.loss) < 1e-5)
        #expect(a.correct == b.correct && a.count == b.count)
        #expect(a.count == (mode == .manyToMany ? 18 : 5))
        for ((name, p), (_, q)) in zip(single.namedParameters, sharded.namedParameters) {
            let g = p.gradient, h = q.gradient
            for i in 0..<g.count {
                #expect(abs(g[i] - h[i]) <= 1e-5 * max(1, abs(g[i])), "\(name)[\(i)]: \(g[i]) vs \(h[i])")
            }
        }
        let pa = single.evaluate(batch).probabilities, pb = sharded.evaluate(batch).probabilities
        #expect(pa.count == pb.count)
        for i in 0..<pa.count { #expect(abs(pa[i] - pb[i]) < 1e-6) }
    }

    /// Mean and max pooling and the classifier recomputed by hand from the stack's batch-first
    /// outputs (steps past a sequence's length, which hold the padding's outputs, are left out).
    @Test(arguments: [SequenceClassifierConfig.Pooling.mean, .max])
    func poolingMatchesHandComputation(pooling: SequenceClassifierConfig.Pooling) {
        let config = SequenceClassifierConfig(inputSize: 3, cell: .gru, layers: 1, hidden: 4, bidirectional: true,
                                              classes: 3, mode: .manyToOne, pooling: pooling)
        let model = SequenceClassifier(config: config, seed: 21)
        let lengths = [4, 2]
        let batch = randomBatch(config, batch: 2, time: 4, lengths: lengths, seed: 4)
        let probs = model.predict(batch)
        var rng = SeededRandom(seed: 0)
        let (out, _) = model.rnn.forward(Tensor(shape: [2, 4, 3], values: batch.inputs), lengths: lengths, rng: &rng)
        let W = model.classifier.weight.values, bias = model.classifier.bias!.values
        for b in 0..<2 {
            var pooled = [Double](repeating: pooling == .max ? -.infinity : 0, count: 8)
            for t in 0..<lengths[b] {
                for k in 0..<8 {
                    let v = Double(out.values[(b * 4 + t) * 8 + k])
                    pooled[k] = pooling == .max ? Swift.max(pooled[k], v) : pooled[k] + v / Double(lengths[b])
                }
            }
            var z = [Double](repeating: 0, count: 3)
            for c in 0..<3 { z[c] = Double(bias[c]); for k in 0..<8 { z[c] += Double(W[c * 8 + k]) * pooled[k] } }
            let e = z.map { exp($0) }, s = e.reduce(0, +)
            for c in 0..<3 { #expect(abs(Double(probs[b * 3 + c]) - e[c] / s) < 1e-5) }
        }
    }

    /// `last` pooling: padding after a sequence's length changes nothing, and the reverse
    /// direction's summary is its state after step 0, so a batch with a shorter time axis gives
    /// the same probabilities.
    @Test func lastPoolingIgnoresPadding() {
        let config = SequenceClassifierConfig(inputSize: 2, projection: 3, cell: .lstm, layers: 2, hidden: 3,
                                              bidirectional: true, classes: 3, mode: .manyToOne, pooling: .last)
        let model = SequenceClassifier(config: config, seed: 8)
        var rng = SeededRandom(seed: 99)
        let seq = randomArray(2 * 2, &rng)                   // 2 steps of 2 features
        let short = SequenceBatch(inputs: seq, batch: 1, time: 2, features: 2, lengths: [2])
        let padded = SequenceBatch(inputs: seq + randomArray(3 * 2, &rng), batch: 1, time: 5, features: 2, lengths: [2])
        let a = model.predict(short), b = model.predict(padded)
        for c in 0..<3 { #expect(abs(a[c] - b[c]) < 1e-6) }
        #expect(abs(a.reduce(0, +) - 1) < 1e-5)
        // Changing a valid step does change the output.
        var changed = seq
        changed[0] += 1
        let d = model.predict(SequenceBatch(inputs: changed, batch: 1, time: 2, features: 2, lengths: [2]))
        #expect((0..<3).contains { abs(d[$0] - a[$0]) > 1e-4 })
    }

    /// Many-to-many probabilities are zero at padded steps and sum to one elsewhere.
    @Test func manyToManyProbabilitiesMaskPadding() {
        let config = SequenceClassifierConfig(inputSize: 2, cell: .gru, hidden: 3, classes: 4, mode: .manyToMany)
        let model = SequenceClassifier(config: config, seed: 2, threads: 2)
        let batch = randomBatch(config, batch: 3, time: 3, lengths: [3, 1, 2], seed: 1)
        let p = model.predict(batch)
        #expect(p.count == 3 * 3 * 4)
        for b in 0..<3 {
            for t in 0..<3 {
                let s = (0..<4).reduce(Float(0)) { $0 + p[(b * 3 + t) * 4 + $1] }
                #expect(abs(s - (t < batch.lengths[b] ? 1 : 0)) < 1e-5)
            }
        }
    }

    /// A few Adam steps on a separable toy problem reduce the loss; the names follow PyTorch.
    @Test func learnsToyTaskAndNamesParameters() {
        let config = SequenceClassifierConfig(inputSize: 2, projection: 4, cell: .lstm, hidden: 8, classes: 2)
        let model = SequenceClassifier(config: config, seed: 1)
        let names = model.namedParameters.map(\.name)
        #expect(names == ["projection.weight", "projection.bias", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                          "rnn.bias_ih_l0", "rnn.bias_hh_l0", "classifier.weight", "classifier.bias"])
        // Class = sign of the sum of the first feature over time.
        var rng = SeededRandom(seed: 5)
        let x = randomArray(16 * 5 * 2, &rng)
        let labels: [Int32] = (0..<16).map { b in (0..<5).reduce(Float(0)) { $0 + x[(b * 5 + $1) * 2] } > 0 ? 1 : 0 }
        let batch = SequenceBatch(inputs: x, batch: 16, time: 5, features: 2, lengths: Array(repeating: 5, count: 16), labels: labels)
        let adam = Adam(parameters: model.parameters, learningRate: 0.05)
        let first = model.evaluate(batch).result.loss
        for _ in 0..<60 { _ = model.trainStep(batch); adam.step() }
        let after = model.evaluate(batch).result
        #expect(after.loss < first * 0.5)
        #expect(after.correct >= 15)
    }

    @Test func configRoundTripsAndRejectsBadValues() throws {
        let config = SequenceClassifierConfig(inputSize: 28, projection: 16, projectionActivation: .none, cell: .gru, layers: 2,
                                              hidden: 32, bidirectional: true, dropout: 0.1, classes: 10, mode: .manyToMany,
                                              pooling: .mean, unitForgetBias: true)
        #expect(try SequenceClassifierConfig(json: config.jsonString(), source: "x") == config)
        #expect(config.jsonString().contains("\"input_size\":28"))
        #expect(throws: ModelLoadError.self) { try SequenceClassifierConfig(json: "{\"cell\":\"lstm\"}", source: "m.safetensors") }
        var bad = config
        bad.classes = 1
        #expect(throws: ModelLoadError.self) { try SequenceClassifierConfig(json: bad.jsonString(), source: "m.safetensors") }
        let model = SequenceClassifier(config: config, seed: 1)
        let other = SequenceClassifier(config: config, seed: 2)
        var tensors = Dictionary(uniqueKeysWithValues: model.stateDict.map { ($0.name, $0) })
        try other.load(tensors, source: "m")
        #expect(other.stateDict == model.stateDict)
        tensors["classifier.bias"] = NamedTensor(name: "classifier.bias", shape: [9], values: Array(repeating: 0, count: 9))
        #expect(throws: ModelLoadError.self) { try other.load(tensors, source: "m") }
    }
}

@Suite struct SequenceClassifierCTCTests {
    /// The CTC-mode loss equals the CTC loss of the model's own per-step scores, computed
    /// separately from `predict`'s probabilities (log-probabilities are valid logits).
    @Test func lossIsCTCOfPerStepScores() {
        let config = SequenceClassifierConfig(inputSize: 3, cell: .gru, layers: 1, hidden: 4, bidirectional: true,
                                              classes: 4, mode: .ctc)
        let model = SequenceClassifier(config: config, seed: 5)
        let lengths = [6, 4]
        let batch = randomBatch(config, batch: 2, time: 6, lengths: lengths, seed: 8)
        let (result, probs) = model.evaluate(batch)
        var expected = 0.0
        for b in 0..<2 {
            let logp = (0..<(lengths[b] * 4)).map { logf(probs[b * 6 * 4 + $0]) }
            let nll = logp.withUnsafeBufferPointer {
                CTC.sequenceLoss(logits: $0.baseAddress!, frames: lengths[b], classes: 4, target: batch.labelSequences[b], gradLogits: nil)
            }
            expected += nll / Double(batch.labelSequences[b].count) / 2
        }
        #expect(abs(result.loss - expected) < 1e-4, "\(result.loss) vs \(expected)")
        #expect(result.count == 2)
    }

    /// A small model learns to transcribe: the input at each step shows the label (one-hot,
    /// label steps separated by zero steps), and after training greedy decoding of every
    /// sequence equals its labels.
    @Test func learnsToTranscribe() {
        let classes = 4, features = 3
        var rng = SeededRandom(seed: 12)
        func example() -> (x: [Float], labels: [Int32]) {
            let labels = (0..<3).map { _ in Int32(1 + rng.nextInt(below: classes - 1)) }
            var x: [Float] = []
            for l in labels {
                var v = [Float](repeating: 0, count: features); v[Int(l) - 1] = 1
                x += v + v + [Float](repeating: 0, count: features)
            }
            return (x, labels)
        }
        let config = SequenceClassifierConfig(inputSize: features, cell: .lstm, layers: 1, hidden: 12, bidirectional: true,
                                              classes: classes, mode: .ctc)
        let model = SequenceClassifier(config: config, seed: 1)
        let optimizer = Adam(parameters: model.parameters, learningRate: 0.05)
        for _ in 0..<150 {
            let examples = (0..<8).map { _ in example() }
            let batch = SequenceBatch(inputs: examples.flatMap(\.x), batch: 8, time: 9, features: features,
                                      lengths: [Int](repeating: 9, count: 8), labelSequences: examples.map(\.labels))
            _ = model.trainStep(batch)
            optimizer.step()
        }
        let test = (0..<16).map { _ in example() }
        let batch = SequenceBatch(inputs: test.flatMap(\.x), batch: 16, time: 9, features: features,
                                  lengths: [Int](repeating: 9, count: 16), labelSequences: test.map(\.labels))
        let result = model.evaluate(batch).result
        #expect(result.correct == 16, "whole-sequence accuracy \(result.correct)/16, loss \(result.loss)")
    }
}
