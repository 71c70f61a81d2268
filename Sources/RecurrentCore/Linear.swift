/// Fully connected layer `y = x W^T + b`, PyTorch's `nn.Linear` layout.
///
/// Parameters: `weight [out, in]`, `bias [out]`. Forward and backward work on row blocks
/// `[rows, in]` / `[rows, out]` (rows = batch × time for sequence models).
public final class Linear: ParameterContainer {
    /// Input features.
    public let inFeatures: Int
    /// Output features.
    public let outFeatures: Int
    /// `[out, in]`.
    public let weight: Parameter
    /// `[out]`, or nil without bias.
    public let bias: Parameter?

    /// Creates the layer with PyTorch's default init: uniform(-1/sqrt(in), 1/sqrt(in)).
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, rng: inout SeededRandom) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: "weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? Parameter(name: "bias", shape: [outFeatures]) : nil
        let bound = 1 / Float(inFeatures).squareRoot()
        weight.fillUniform(bound: bound, rng: &rng)
        self.bias?.fillUniform(bound: bound, rng: &rng)
    }

    /// A layer over existing parameters (`weight [out, in]`, `bias [out]`).
    init(weight: Parameter, bias: Parameter?) {
        precondition(weight.shape.count == 2)
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
        self.weight = weight
        self.bias = bias
    }

    /// A replica sharing this layer's values with separate gradients.
    public init(sharing other: Linear) {
        inFeatures = other.inFeatures
        outFeatures = other.outFeatures
        weight = Parameter(sharing: other.weight)
        bias = other.bias.map { Parameter(sharing: $0) }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var list: [(name: String, parameter: Parameter)] = [("weight", weight)]
        if let bias { list.append(("bias", bias)) }
        return list
    }

    /// `output[rows, out] = input[rows, in] W^T + b`.
    public func forward(input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>) {
        if let bias {
            for r in 0..<rows { (output + r * outFeatures).update(from: bias.value, count: outFeatures) }
        }
        BLAS.gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: input, lda: inFeatures,
                  b: weight.value, ldb: inFeatures, beta: bias == nil ? 0 : 1, c: output, ldc: outFeatures)
    }

    /// Accumulates `dW += dY^T X`, `db += sum_rows dY`; writes (or adds, with `accumulate`)
    /// `gradInput[rows, in] = dY W` when `gradInput` is given.
    public func backward(input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>, rows: Int,
                         gradInput: UnsafeMutablePointer<Float>?, accumulate: Bool = false) {
        BLAS.gemm(transA: true, m: outFeatures, n: inFeatures, k: rows, a: gradOutput, lda: outFeatures,
                  b: input, ldb: inFeatures, beta: 1, c: weight.grad, ldc: inFeatures)
        if let bias { BLAS.addColumnSums(gradOutput, rows: rows, cols: outFeatures, lda: outFeatures, into: bias.grad) }
        if let gradInput {
            BLAS.gemm(m: rows, n: inFeatures, k: outFeatures, a: gradOutput, lda: outFeatures,
                      b: weight.value, ldb: inFeatures, beta: accumulate ? 1 : 0, c: gradInput, ldc: inFeatures)
        }
    }
}

/// Token embedding table, PyTorch's `nn.Embedding` layout: `weight [vocab, dim]`,
/// initialised from a standard normal like PyTorch.
public final class Embedding: ParameterContainer {
    /// Number of tokens.
    public let vocabularySize: Int
    /// Embedding width.
    public let dimension: Int
    /// `[vocab, dim]`.
    public let weight: Parameter

    /// Creates the table with N(0, 1) entries.
    public init(vocabularySize: Int, dimension: Int, rng: inout SeededRandom) {
        self.vocabularySize = vocabularySize
        self.dimension = dimension
        weight = Parameter(name: "weight", shape: [vocabularySize, dimension])
        for i in 0..<weight.count { weight.value[i] = rng.normal() }
    }

    /// A replica sharing this table's values with a separate gradient.
    public init(sharing other: Embedding) {
        vocabularySize = other.vocabularySize
        dimension = other.dimension
        weight = Parameter(sharing: other.weight)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }

    /// `output[n, dim] = weight[ids[n], :]` for `n < count`. Ids must be in range
    /// (callers validate data once, at load time).
    public func forward(ids: UnsafePointer<Int32>, count: Int, output: UnsafeMutablePointer<Float>) {
        for n in 0..<count {
            let id = Int(ids[n])
            precondition(id >= 0 && id < vocabularySize, "token id \(id) outside the vocabulary of \(vocabularySize)")
            (output + n * dimension).update(from: weight.value + id * dimension, count: dimension)
        }
    }

    /// `dW[ids[n], :] += gradOutput[n, :]`.
    public func backward(ids: UnsafePointer<Int32>, count: Int, gradOutput: UnsafePointer<Float>) {
        for n in 0..<count {
            let row = weight.grad + Int(ids[n]) * dimension
            let g = gradOutput + n * dimension
            for j in 0..<dimension { row[j] += g[j] }
        }
    }
}

/// Inverted dropout: in training, each element is zeroed with probability `p` and the rest are
/// scaled by `1 / (1 - p)`; in evaluation it is the identity. The mask of the last forward pass
/// is kept for backward.
public final class Dropout {
    /// Drop probability in [0, 1).
    public let probability: Float
    private let mask = FloatBuffer()

    /// Creates the layer.
    public init(probability: Float) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.probability = probability
    }

    /// `output[count] = input * mask` (training) or a copy (evaluation). In place is allowed.
    public func forward(input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>,
                        training: Bool, rng: inout SeededRandom) {
        guard training && probability > 0 else {
            if UnsafePointer(output) != input { output.update(from: input, count: count) }
            return
        }
        let m = mask.reserve(count)
        let scale = 1 / (1 - probability)
        for i in 0..<count {
            m[i] = rng.nextFloat() < probability ? 0 : scale
            output[i] = input[i] * m[i]
        }
    }

    /// `gradInput = gradOutput * mask` (training) or a copy. In place is allowed.
    public func backward(gradOutput: UnsafePointer<Float>, count: Int, gradInput: UnsafeMutablePointer<Float>, training: Bool) {
        guard training && probability > 0 else {
            if UnsafePointer(gradInput) != gradOutput { gradInput.update(from: gradOutput, count: count) }
            return
        }
        let m = mask.pointer
        for i in 0..<count { gradInput[i] = gradOutput[i] * m[i] }
    }
}

extension Linear {
    /// A decoder whose weight is an existing parameter (weight tying): `weight [out, in]`.
    public convenience init(tiedWeight: Parameter, bias: Parameter) {
        self.init(weight: tiedWeight, bias: bias)
    }
}
