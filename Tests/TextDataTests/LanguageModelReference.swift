import Foundation
import RecurrentCore
@testable import TextData

/// An independent Float64 reference of the language model `Embedding → RNN/LSTM/GRU stack →
/// Linear`, written with plain loops straight from PyTorch's documented equations. Weights
/// are kept by their `state_dict` names; shapes as in PyTorch (`weight_ih_l{k}` `[G*H, I]`,
/// `weight_hh_l{k}` `[G*H, H]`, biases `[G*H]`, `decoder.weight` `[V, H]`).
struct ReferenceLanguageModel {
    let cell: String          // "lstm", "gru" or "rnn_tanh"
    let layers: Int
    let hidden: Int
    let embedding: Int        // 0 = one-hot input
    let vocab: [String]
    var tensors: [NamedTensor]

    var vocabSize: Int { vocab.count }
    var gates: Int { cell == "lstm" ? 4 : cell == "gru" ? 3 : 1 }

    /// Builds weights from a simple deterministic generator (not the library's RNG): values in
    /// roughly [-scale, scale].
    init(cell: String, layers: Int, hidden: Int, embedding: Int, vocab: [String], seed: Double, scale: Double = 0.9) {
        self.cell = cell; self.layers = layers; self.hidden = hidden; self.embedding = embedding; self.vocab = vocab
        var counter = seed
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                counter += 1
                // A smooth but irregular sequence: fractional part of a quadratic residue.
                let u = (counter * counter * 0.6180339887 + counter * 0.4142135623).truncatingRemainder(dividingBy: 1)
                return Float((u * 2 - 1) * scale)
            }
        }
        let V = vocab.count, H = hidden, G = cell == "lstm" ? 4 : cell == "gru" ? 3 : 1
        var list: [NamedTensor] = []
        if embedding > 0 { list.append(NamedTensor(name: "embedding.weight", shape: [V, embedding], values: values(V * embedding))) }
        for l in 0..<layers {
            let I = l == 0 ? (embedding > 0 ? embedding : V) : H
            list.append(NamedTensor(name: "rnn.weight_ih_l\(l)", shape: [G * H, I], values: values(G * H * I)))
            list.append(NamedTensor(name: "rnn.weight_hh_l\(l)", shape: [G * H, H], values: values(G * H * H)))
            list.append(NamedTensor(name: "rnn.bias_ih_l\(l)", shape: [G * H], values: values(G * H)))
            list.append(NamedTensor(name: "rnn.bias_hh_l\(l)", shape: [G * H], values: values(G * H)))
        }
        list.append(NamedTensor(name: "decoder.weight", shape: [V, H], values: values(V * H)))
        list.append(NamedTensor(name: "decoder.bias", shape: [V], values: values(V)))
        tensors = list
    }

    func w(_ name: String) -> [Double] {
        tensors.first { $0.name == name }!.values.map(Double.init)
    }

    /// The `rnn-suite/lm/1` metadata, written by hand (not by `LanguageModelCheckpoint`).
    var metadata: [String: String] {
        let vocabJSON = String(decoding: try! JSONEncoder().encode(vocab), as: UTF8.self)
        return [
            "format": "rnn-suite/lm/1",
            "config": "{\"cell\":\"\(cell)\",\"layers\":\(layers),\"hidden\":\(hidden),\"embedding\":\(embedding),"
                + "\"vocab_size\":\(vocab.count),\"level\":\"char\",\"dropout\":0}",
            "vocab": vocabJSON,
        ]
    }

    /// Writes the checkpoint file.
    func write(to path: String) throws {
        try SafeTensors.write(tensors, metadata: metadata, to: path)
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

    /// Runs the model over `ids` from a zero state, returning the logits `[ids.count, V]`.
    func logits(_ ids: [Int]) -> [[Double]] {
        let H = hidden, V = vocabSize
        var h = [[Double]](repeating: [Double](repeating: 0, count: H), count: layers)
        var c = h
        let emb = embedding > 0 ? w("embedding.weight") : []
        let wih = (0..<layers).map { w("rnn.weight_ih_l\($0)") }
        let whh = (0..<layers).map { w("rnn.weight_hh_l\($0)") }
        let bih = (0..<layers).map { w("rnn.bias_ih_l\($0)") }
        let bhh = (0..<layers).map { w("rnn.bias_hh_l\($0)") }
        let dw = w("decoder.weight"), db = w("decoder.bias")
        var out: [[Double]] = []
        for id in ids {
            var x: [Double]
            if embedding > 0 { x = Array(emb[(id * embedding)..<((id + 1) * embedding)]) } else {
                x = [Double](repeating: 0, count: V); x[id] = 1
            }
            for l in 0..<layers {
                let I = x.count, G = gates
                // Separate input and hidden projections (GRU needs them apart).
                var gi = [Double](repeating: 0, count: G * H), gh = gi
                for r in 0..<(G * H) {
                    var a = bih[l][r], b = bhh[l][r]
                    for k in 0..<I { a += wih[l][r * I + k] * x[k] }
                    for k in 0..<H { b += whh[l][r * H + k] * h[l][k] }
                    gi[r] = a; gh[r] = b
                }
                var hn = [Double](repeating: 0, count: H)
                for j in 0..<H {
                    switch cell {
                    case "lstm":
                        let i = Self.sigmoid(gi[j] + gh[j]), f = Self.sigmoid(gi[H + j] + gh[H + j])
                        let g = Foundation.tanh(gi[2 * H + j] + gh[2 * H + j]), o = Self.sigmoid(gi[3 * H + j] + gh[3 * H + j])
                        c[l][j] = f * c[l][j] + i * g
                        hn[j] = o * Foundation.tanh(c[l][j])
                    case "gru":
                        let r = Self.sigmoid(gi[j] + gh[j]), z = Self.sigmoid(gi[H + j] + gh[H + j])
                        let n = Foundation.tanh(gi[2 * H + j] + r * gh[2 * H + j])
                        hn[j] = (1 - z) * n + z * h[l][j]
                    default:
                        hn[j] = Foundation.tanh(gi[j] + gh[j])
                    }
                }
                h[l] = hn
                x = hn
            }
            var z = [Double](repeating: 0, count: V)
            for v in 0..<V {
                var s = db[v]
                for k in 0..<H { s += dw[v * H + k] * x[k] }
                z[v] = s
            }
            out.append(z)
        }
        return out
    }

    /// Mean NLL (nats) of predicting `ids[t+1]` from `ids[0...t]`, over `ids.count - 1` predictions.
    func meanNLL(_ ids: [Int]) -> Double {
        let z = logits(Array(ids.dropLast()))
        var total = 0.0
        for t in 0..<(ids.count - 1) {
            let m = z[t].max()!
            let lse = m + Foundation.log(z[t].reduce(0) { $0 + Foundation.exp($1 - m) })
            total += lse - z[t][ids[t + 1]]
        }
        return total / Double(ids.count - 1)
    }
}
