// The README's "use RecurrentCore from your own package" example, built with the suite so it
// keeps compiling. It trains a GRU to output, at every step, the running parity of a bit stream.
import RecurrentCore

var rng = SeededRandom(seed: 1)
let steps = 12, batch = 16, hidden = 16
let rnn = RecurrentStack(cell: .gru, inputSize: 1, hiddenSize: hidden, numLayers: 1, rng: &rng)
let head = Linear(inFeatures: hidden, outFeatures: 2, rng: &rng)
let optimizer = Adam(parameters: rnn.parameters + head.parameters, learningRate: 1e-2)

var logits = [Float](repeating: 0, count: steps * batch * 2)
var gradLogits = logits
var gradHidden = [Float](repeating: 0, count: steps * batch * hidden)
for step in 1...600 {
    // Inputs [time, batch, 1] (time-major) and targets [time, batch]: parity of the bits so far.
    var x = [Float](repeating: 0, count: steps * batch)
    var y = [Int32](repeating: 0, count: steps * batch)
    for b in 0..<batch {
        var parity: Int32 = 0
        for t in 0..<steps {
            let bit = rng.nextInt(below: 2)
            parity ^= Int32(bit)
            x[t * batch + b] = Float(bit)
            y[t * batch + b] = parity
        }
    }
    rnn.zeroGrad(); head.zeroGrad()
    let loss = x.withUnsafeBufferPointer { xp in
        let input = RecurrentInput.dense(xp.baseAddress!, features: 1)
        let h = rnn.forward(input: input, steps: steps, batch: batch, training: true, rng: &rng)   // [T, B, H]
        return logits.withUnsafeMutableBufferPointer { lp in
            gradLogits.withUnsafeMutableBufferPointer { gp in
                gradHidden.withUnsafeMutableBufferPointer { ghp in
                    head.forward(input: h, rows: steps * batch, output: lp.baseAddress!)
                    let loss = y.withUnsafeBufferPointer {
                        SoftmaxCrossEntropy.compute(logits: lp.baseAddress!, rows: steps * batch, classes: 2,
                                                    targets: $0.baseAddress!, gradLogits: gp.baseAddress!).loss
                    }
                    head.backward(input: h, gradOutput: gp.baseAddress!, rows: steps * batch, gradInput: ghp.baseAddress!)
                    rnn.backward(input: input, gradOutput: ghp.baseAddress!, gradInput: nil)
                    return loss
                }
            }
        }
    }
    clipGradientNorm(optimizer.parameters, maxNorm: 5)
    optimizer.step()
    if step % 100 == 0 { print("step \(step): loss \(String(format: "%.4f", loss))") }
}
