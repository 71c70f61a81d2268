#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy fused with log-softmax, over rows of logits.
///
/// For logits `[N, C]` (N = batch × time, e.g. a `[batch, time, classes]` tensor), integer
/// targets `[N]` and optional per-position weights `[N]`, the loss is the weighted mean
/// `sum_n w_n * nll_n / sum_n w_n` — TensorFlow's `sequence_loss` with
/// `average_across_timesteps` and `average_across_batch`. Weight 0 masks padding.
public enum SoftmaxCrossEntropy {
    /// Computes the loss and writes `gradLogits[N, C] = w_n / W * (softmax - onehot)`.
    ///
    /// - Parameters:
    ///   - logits: `[rows, classes]`.
    ///   - targets: `[rows]` class indices (ignored where the weight is 0).
    ///   - weights: `[rows]`, nil = all 1.
    ///   - gradLogits: `[rows, classes]` output, may be nil to skip the gradient.
    ///   - rowLoss: `[rows]` optional output of each row's negative log-likelihood (nats).
    /// - Returns: the weighted mean loss (nats) and the weight sum.
    @discardableResult
    public static func compute(logits: UnsafePointer<Float>, rows: Int, classes: Int, targets: UnsafePointer<Int32>,
                               weights: UnsafePointer<Float>? = nil, gradLogits: UnsafeMutablePointer<Float>?,
                               rowLoss: UnsafeMutablePointer<Float>? = nil) -> (loss: Double, weightSum: Double) {
        var total = 0.0, wsum = 0.0
        for n in 0..<rows { wsum += Double(weights?[n] ?? 1) }
        let scale = wsum > 0 ? Float(1 / wsum) : 0
        for n in 0..<rows {
            let z = logits + n * classes
            let w = weights?[n] ?? 1
            var m = -Float.infinity
            for j in 0..<classes { m = max(m, z[j]) }
            var s: Float = 0
            if let g = gradLogits.map({ $0 + n * classes }) {
                for j in 0..<classes { let e = expf(z[j] - m); g[j] = e; s += e }
                let target = Int(targets[n])
                let lse = m + logf(s)
                if w != 0 {
                    precondition(target >= 0 && target < classes, "target \(target) outside \(classes) classes")
                    let nll = lse - z[target]
                    total += Double(w) * Double(nll)
                    rowLoss?[n] = nll
                    let k = w * scale / s
                    for j in 0..<classes { g[j] *= k }
                    g[target] -= w * scale
                } else {
                    for j in 0..<classes { g[j] = 0 }
                    rowLoss?[n] = 0
                }
            } else {
                for j in 0..<classes { s += expf(z[j] - m) }
                if w != 0 {
                    let target = Int(targets[n])
                    precondition(target >= 0 && target < classes, "target \(target) outside \(classes) classes")
                    let nll = m + logf(s) - z[target]
                    total += Double(w) * Double(nll)
                    rowLoss?[n] = nll
                } else {
                    rowLoss?[n] = 0
                }
            }
        }
        return (wsum > 0 ? total / wsum : 0, wsum)
    }

    /// Batch-first convenience: logits `[batch, time, classes]`, targets `[batch, time]`,
    /// weights `[batch, time]`. Returns the loss and the gradient tensor of the logits' shape.
    public static func compute(logits: Tensor, targets: [Int32], weights: [Float]? = nil) -> (loss: Double, grad: Tensor) {
        let classes = logits.shape.last ?? 1
        let rows = logits.values.count / max(classes, 1)
        precondition(targets.count == rows, "targets: expected \(rows), got \(targets.count)")
        var grad = [Float](repeating: 0, count: logits.values.count)
        let loss = logits.values.withUnsafeBufferPointer { lp in
            targets.withUnsafeBufferPointer { tp in
                grad.withUnsafeMutableBufferPointer { gp in
                    withOptionalPointer(weights) { wp in
                        compute(logits: lp.baseAddress!, rows: rows, classes: classes, targets: tp.baseAddress!,
                                weights: wp, gradLogits: gp.baseAddress!).loss
                    }
                }
            }
        }
        return (loss, Tensor(shape: logits.shape, values: grad))
    }
}

/// Mean squared error `mean((x - y)^2)` over all elements.
public enum MeanSquaredError {
    /// Returns the loss and writes `grad[i] = 2 (x_i - y_i) / count` when `grad` is given.
    @discardableResult
    public static func compute(prediction: UnsafePointer<Float>, target: UnsafePointer<Float>, count: Int,
                               grad: UnsafeMutablePointer<Float>?) -> Double {
        guard count > 0 else { return 0 }
        var total = 0.0
        let k = 2 / Float(count)
        for i in 0..<count {
            let d = prediction[i] - target[i]
            total += Double(d * d)
            grad?[i] = k * d
        }
        return total / Double(count)
    }

    /// Array convenience: returns the loss and the gradient w.r.t. `prediction`.
    public static func compute(prediction: [Float], target: [Float]) -> (loss: Double, grad: [Float]) {
        precondition(prediction.count == target.count, "prediction and target sizes differ")
        var g = [Float](repeating: 0, count: prediction.count)
        let l = prediction.withUnsafeBufferPointer { p in
            target.withUnsafeBufferPointer { t in
                g.withUnsafeMutableBufferPointer { gp in compute(prediction: p.baseAddress!, target: t.baseAddress!, count: p.count, grad: gp.baseAddress!) }
            }
        }
        return (l, g)
    }
}
