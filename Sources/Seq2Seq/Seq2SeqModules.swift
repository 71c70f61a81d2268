import RecurrentCore

/// The trainable pieces of a `Seq2SeqModel`, with PyTorch-style `state_dict` names.
///
/// - `encoder.embedding.weight [Vs, E]`, `encoder.rnn.*` (an `nn.LSTM/GRU/RNN(E, H, layers,
///   bidirectional=...)`),
/// - `decoder.embedding.weight [Vt, E]`, `decoder.rnn.*` (input `E + H` with input feeding, else `E`),
/// - `attention.linear_in.weight [H, H]` (general), `attention.query.weight [H, H]`,
///   `attention.key.weight [H, H]`, `attention.key.bias [H]`, `attention.v.weight [1, H]`
///   (additive), `attention.linear_out.weight [H, 2H]` (every attention variant),
/// - `decoder.out.weight [Vt, H]`, `decoder.out.bias [Vt]`.
///
/// A replica made with `init(sharing:)` reads the same values and owns its gradients.
final class Seq2SeqModules: ParameterContainer {
    let config: Seq2SeqConfig
    let sourceEmbedding: Embedding
    let encoder: RecurrentStack
    let targetEmbedding: Embedding
    let decoder: RecurrentStack
    let linearIn: Linear?
    let query: Linear?
    let key: Linear?
    let v: Parameter?
    let linearOut: Linear?
    let out: Linear

    /// Width of the decoder's input: `E + H` with input feeding, else `E`.
    var decoderInputSize: Int { config.embedding + (config.attention.usesInputFeeding ? config.hidden : 0) }

    init(config c: Seq2SeqConfig, rng: inout SeededRandom) {
        config = c
        let H = c.hidden
        sourceEmbedding = Embedding(vocabularySize: c.sourceVocabSize, dimension: c.embedding, rng: &rng)
        encoder = RecurrentStack(cell: c.cell, inputSize: c.embedding, hiddenSize: H, numLayers: c.layers,
                                 bidirectional: c.bidirectional, dropout: c.dropout, rng: &rng)
        targetEmbedding = Embedding(vocabularySize: c.targetVocabSize, dimension: c.embedding, rng: &rng)
        decoder = RecurrentStack(cell: c.cell, inputSize: c.embedding + (c.attention.usesInputFeeding ? H : 0),
                                 hiddenSize: H, numLayers: c.layers, dropout: c.dropout, rng: &rng)
        linearIn = c.attention == .general ? Linear(inFeatures: H, outFeatures: H, bias: false, rng: &rng) : nil
        if c.attention == .additive {
            query = Linear(inFeatures: H, outFeatures: H, bias: false, rng: &rng)
            key = Linear(inFeatures: H, outFeatures: H, bias: true, rng: &rng)
            let p = Parameter(name: "weight", shape: [1, H])
            p.fillUniform(bound: 1 / Float(H).squareRoot(), rng: &rng)
            v = p
        } else {
            query = nil; key = nil; v = nil
        }
        linearOut = c.attention == .none ? nil : Linear(inFeatures: 2 * H, outFeatures: H, bias: false, rng: &rng)
        out = Linear(inFeatures: H, outFeatures: c.targetVocabSize, rng: &rng)
    }

    init(sharing o: Seq2SeqModules) {
        config = o.config
        sourceEmbedding = Embedding(sharing: o.sourceEmbedding)
        encoder = RecurrentStack(sharing: o.encoder)
        targetEmbedding = Embedding(sharing: o.targetEmbedding)
        decoder = RecurrentStack(sharing: o.decoder)
        linearIn = o.linearIn.map { Linear(sharing: $0) }
        query = o.query.map { Linear(sharing: $0) }
        key = o.key.map { Linear(sharing: $0) }
        v = o.v.map { Parameter(sharing: $0) }
        linearOut = o.linearOut.map { Linear(sharing: $0) }
        out = Linear(sharing: o.out)
    }

    var namedParameters: [(name: String, parameter: Parameter)] {
        var list: [(name: String, parameter: Parameter)] = []
        func add(_ prefix: String, _ c: ParameterContainer?) {
            guard let c else { return }
            list += c.namedParameters.map { (prefix + $0.name, $0.parameter) }
        }
        add("encoder.embedding.", sourceEmbedding)
        add("encoder.rnn.", encoder)
        add("decoder.embedding.", targetEmbedding)
        add("decoder.rnn.", decoder)
        add("attention.linear_in.", linearIn)
        add("attention.query.", query)
        add("attention.key.", key)
        if let v { list.append(("attention.v.weight", v)) }
        add("attention.linear_out.", linearOut)
        add("decoder.out.", out)
        return list
    }
}

/// Pointers to an encoded batch, as attention reads it.
struct MemoryView {
    /// Encoder outputs `[rows, S, H]`.
    var m: UnsafePointer<Float>
    /// Attention keys `[rows, S, H]`: `m` (dot), `m W_a^T` (general), `m W_k^T + b_k` (additive).
    var keys: UnsafePointer<Float>
    /// Source lengths `[rows]`.
    var lengths: UnsafePointer<Int>
    /// Padded source length.
    var steps: Int
}

extension Seq2SeqModules {
    /// Attention forward for one decoder step over `B` rows.
    ///
    /// - Parameters:
    ///   - h: top decoder states `[B, H]`.
    ///   - rowMap: memory row of each of the B rows (nil = row b reads memory row b).
    ///   - weights: `[B, S]` receives the attention weights (exactly 0 at padded positions).
    ///   - concat: `[B, 2H]` receives `[c_t; h_t]`.
    ///   - query: `[B, H]` scratch for `W_q h` (additive).
    ///   - energies: `[B, S, H]` receives `tanh(W_q h + k_s)` (additive), kept for backward.
    func attendForward(h: UnsafePointer<Float>, B: Int, memory mv: MemoryView, rowMap: UnsafePointer<Int>?,
                       weights: UnsafeMutablePointer<Float>, concat: UnsafeMutablePointer<Float>,
                       query q: UnsafeMutablePointer<Float>, energies: UnsafeMutablePointer<Float>) {
        let H = config.hidden, S = mv.steps
        if let query { query.forward(input: h, rows: B, output: q) }
        for b in 0..<B {
            let r = rowMap?[b] ?? b
            let len = mv.lengths[r]
            let hb = h + b * H
            let w = weights + b * S
            var maxScore = -Float.infinity
            for s in 0..<len {
                let k = mv.keys + (r * S + s) * H
                var score: Float = 0
                if let v {
                    let e = energies + (b * S + s) * H
                    let qb = q + b * H
                    for j in 0..<H { e[j] = qb[j] + k[j] }
                    FastMath.tanhInPlace(e, H)
                    for j in 0..<H { score += v.value[j] * e[j] }
                } else {
                    for j in 0..<H { score += hb[j] * k[j] }
                }
                w[s] = score
                maxScore = max(maxScore, score)
            }
            var total: Float = 0
            for s in 0..<len { let e = expf(w[s] - maxScore); w[s] = e; total += e }
            let inv = total > 0 ? 1 / total : 0
            for s in 0..<len { w[s] *= inv }
            for s in len..<S { w[s] = 0 }
            let c = concat + b * 2 * H
            for j in 0..<H { c[j] = 0 }
            for s in 0..<len {
                let a = w[s], m = mv.m + (r * S + s) * H
                for j in 0..<H { c[j] += a * m[j] }
            }
            (c + H).update(from: hb, count: H)
        }
    }

    /// Attention backward for one decoder step (training layout: row b reads memory row b).
    ///
    /// - Parameters:
    ///   - gradContext: `[B, H]`, dL/dc_t (read with row stride `2H`).
    ///   - gradH: `[B, H]`, dL/dh_t, added to.
    ///   - gradM: `[B, S, H]`, dL/dm, added to.
    ///   - gradKeys: `[B, S, H]`, dL/dkeys, added to (general, additive; unused for dot).
    ///   - gradQuery: `[B, H]` scratch (additive).
    func attendBackward(h: UnsafePointer<Float>, B: Int, memory mv: MemoryView, weights: UnsafePointer<Float>,
                        energies: UnsafePointer<Float>, gradContext: UnsafePointer<Float>, gradContextStride: Int,
                        gradH: UnsafeMutablePointer<Float>, gradM: UnsafeMutablePointer<Float>,
                        gradKeys: UnsafeMutablePointer<Float>, gradQuery: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>) {
        let H = config.hidden, S = mv.steps
        if v != nil { gradQuery.update(repeating: 0, count: B * H) }
        for b in 0..<B {
            let len = mv.lengths[b]
            let w = weights + b * S
            let dc = gradContext + b * gradContextStride
            let da = scratch
            var dot: Float = 0
            for s in 0..<len {
                let m = mv.m + (b * S + s) * H
                let dm = gradM + (b * S + s) * H
                var d: Float = 0
                for j in 0..<H { d += dc[j] * m[j]; dm[j] += w[s] * dc[j] }
                da[s] = d
                dot += w[s] * d
            }
            let hb = h + b * H, dh = gradH + b * H
            for s in 0..<len {
                let ds = w[s] * (da[s] - dot)
                let k = mv.keys + (b * S + s) * H
                switch config.attention {
                case .dot:
                    let dm = gradM + (b * S + s) * H
                    for j in 0..<H { dh[j] += ds * k[j]; dm[j] += ds * hb[j] }
                case .general:
                    let dk = gradKeys + (b * S + s) * H
                    for j in 0..<H { dh[j] += ds * k[j]; dk[j] += ds * hb[j] }
                case .additive:
                    guard let v else { break }
                    let e = energies + (b * S + s) * H
                    let dk = gradKeys + (b * S + s) * H
                    let dq = gradQuery + b * H
                    for j in 0..<H {
                        v.grad[j] += ds * e[j]
                        let de = ds * v.value[j] * (1 - e[j] * e[j])
                        dq[j] += de
                        dk[j] += de
                    }
                case .none:
                    break
                }
            }
        }
        if let query { query.backward(input: h, gradOutput: gradQuery, rows: B, gradInput: gradH, accumulate: true) }
    }

    /// Computes the keys `[rows, S, H]` of memory `m [rows, S, H]` (general, additive).
    func computeKeys(m: UnsafePointer<Float>, rows: Int, into keys: UnsafeMutablePointer<Float>) {
        if let linearIn { linearIn.forward(input: m, rows: rows, output: keys) }
        if let key { key.forward(input: m, rows: rows, output: keys) }
    }

    /// Backward of `computeKeys`: adds `dkeys · W` into `gradM` and the weight gradients.
    func keysBackward(m: UnsafePointer<Float>, rows: Int, gradKeys: UnsafePointer<Float>, gradM: UnsafeMutablePointer<Float>) {
        if let linearIn { linearIn.backward(input: m, gradOutput: gradKeys, rows: rows, gradInput: gradM, accumulate: true) }
        if let key { key.backward(input: m, gradOutput: gradKeys, rows: rows, gradInput: gradM, accumulate: true) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
