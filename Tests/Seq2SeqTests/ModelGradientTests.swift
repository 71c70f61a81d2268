import Testing
import RecurrentCore
@testable import Seq2Seq

// Central finite differences of the mean token loss in Float32. With step 1e-3 the
// truncation error is O(1e-6); the rounding error of a Float32 loss near 2 is about
// 2e-7 / 1e-3 = 2e-4, so analytic and numeric derivatives must agree within
// 2e-3 + 2e-2 * |derivative|. A wrong index, sign or missing path gives errors of order 1e-1.
let seqFDStep: Float = 1e-3

func expectGradClose(_ analytic: Float, _ numeric: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let tol: Float = 2e-3 + 2e-2 * max(abs(analytic), abs(numeric))
    #expect(abs(analytic - numeric) <= tol, "\(what): analytic \(analytic) vs numeric \(numeric)", sourceLocation: sourceLocation)
}

/// A small batch over a vocabulary of 8 (ids 4…7 are data tokens): source lengths 3, 5, 2
/// and target lengths 2, 4, 1, so sources and targets are padded.
func smallBatch() -> Seq2SeqBatch {
    let pairs = [EncodedPair(source: [4, 5, 6], target: [7, 4]),
                 EncodedPair(source: [7, 6, 5, 4, 4], target: [5, 5, 6, 7]),
                 EncodedPair(source: [6, 7], target: [4])]
    return Seq2SeqBatcher.makeBatch(pairs, rows: [0, 1, 2])
}

func smallConfig(_ attention: AttentionKind, cell: CellKind = .lstm, layers: Int = 1, bidirectional: Bool = false) -> Seq2SeqConfig {
    Seq2SeqConfig(cell: cell, layers: layers, hidden: 4, embedding: 3, bidirectional: bidirectional, attention: attention,
                  sourceVocabSize: 8, targetVocabSize: 8, maxSourceLength: 10, maxTargetLength: 10)
}

/// Checks up to `perParameter` entries of every parameter's gradient against central differences.
func checkModelGradients(_ config: Seq2SeqConfig, batch: Seq2SeqBatch = smallBatch(), perParameter: Int = 6, threads: Int = 1) throws {
    let model = try Seq2SeqModel(config: config, seed: 11, threads: threads)
    // Larger output weights make the attention and recurrent paths matter in the loss.
    for i in 0..<model.primary.out.weight.count { model.primary.out.weight.value[i] *= 3 }
    model.trainStep(batch: batch, teacherForcing: 1)
    var rng = SeededRandom(seed: 5)
    for (name, p) in model.namedParameters {
        let grad = p.gradient
        var indices = Set<Int>()
        while indices.count < min(perParameter, p.count) { indices.insert(rng.nextInt(below: p.count)) }
        for i in indices.sorted() {
            let old = p.value[i]
            p.value[i] = old + seqFDStep
            let up = model.loss(batch: batch)
            p.value[i] = old - seqFDStep
            let down = model.loss(batch: batch)
            p.value[i] = old
            let numeric = Float((up - down) / Double(2 * seqFDStep))
            expectGradClose(grad[i], numeric, "\(name)[\(i)]")
        }
    }
}

@Test(arguments: AttentionKind.allCases)
func attentionVariantGradients(_ attention: AttentionKind) throws {
    try checkModelGradients(smallConfig(attention))
}

@Test func bidirectionalTwoLayerGRUGradients() throws {
    try checkModelGradients(smallConfig(.general, cell: .gru, layers: 2, bidirectional: true))
}

@Test func bidirectionalLSTMAdditiveGradients() throws {
    try checkModelGradients(smallConfig(.additive, cell: .lstm, layers: 1, bidirectional: true))
}

@Test func tanhRNNDotTwoLayerGradients() throws {
    try checkModelGradients(smallConfig(.dot, cell: .rnnTanh, layers: 2))
}

/// One decoder step: every target is one token long, so the decoder runs on `<s>` and then
/// on that token; the loss reaches every decoder parameter through the first two steps and the
/// encoder only through the initial state and the attention of those steps.
@Test(arguments: [AttentionKind.none, .general])
func decoderStepGradients(_ attention: AttentionKind) throws {
    let pairs = [EncodedPair(source: [4, 5, 6], target: [7]), EncodedPair(source: [5], target: [4])]
    try checkModelGradients(smallConfig(attention, cell: .gru), batch: Seq2SeqBatcher.makeBatch(pairs, rows: [0, 1]), perParameter: 8)
}

/// Two shards on two threads give the gradients of one shard on one thread.
@Test func dataParallelGradientsMatchSingleThread() throws {
    let batch = smallBatch()
    let one = try Seq2SeqModel(config: smallConfig(.additive), seed: 3, threads: 1)
    let two = try Seq2SeqModel(config: smallConfig(.additive), seed: 3, threads: 2)
    let l1 = one.trainStep(batch: batch)
    let l2 = two.trainStep(batch: batch)
    #expect(abs(l1 - l2) < 1e-5)
    for (a, b) in zip(one.namedParameters, two.namedParameters) {
        let ga = a.parameter.gradient, gb = b.parameter.gradient
        let worst = zip(ga, gb).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-5, "\(a.name): gradients differ by \(worst)")
    }
}
