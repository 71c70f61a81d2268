import Foundation
import Testing
import RNNKernels
import TestSupport
@testable import RecurrentCore

/// Whether this process runs the bf16 products natively (AVX512_BF16 at the avx512 level); the
/// portable kernel runs everywhere.
let bf16Native = Precision.bf16Native

/// `x` rounded to bf16 and back, as a Double.
func bf16Rounded(_ x: Float) -> Double { Double(rnn_bf16_to_float(rnn_float_to_bf16(x))) }

/// A parameter's gradient as an array.
func gradients(_ p: Parameter) -> [Float] { Array(UnsafeBufferPointer(start: p.grad, count: p.count)) }

/// The bound on the error of summing `terms` in fp32 in any order (n terms: n u sum|t|,
/// u = 2^-24), with one more term for the starting value.
func fp32SumBound(_ absSum: Double, terms: Int) -> Double { Double(terms + 1) * 0x1p-24 * absSum + 1e-30 }

/// The bf16 conversions and products of `RNNBF16.h`.
@Suite struct BF16KernelTests {
    /// Round to nearest, ties to even, on values worked out by hand: bf16 keeps 7 fraction bits,
    /// so between 1 and 2 its spacing is 2^-7.
    @Test func roundingIsToNearestEven() {
        func bits(_ x: Float) -> UInt16 { rnn_float_to_bf16(x) }
        #expect(bits(1) == 0x3F80)
        #expect(bits(1 + 0x1p-8) == 0x3F80, "a tie goes to the even neighbour 1.0")
        #expect(bits(1 + 3 * 0x1p-8) == 0x3F82, "a tie goes to the even neighbour 1 + 2^-6")
        #expect(bits(1 + 0x1p-8 + 0x1p-20) == 0x3F81, "above the tie rounds up")
        #expect(bits(-2.5) == 0xC020)
        #expect(bits(1e-40) == 0x0000 && bits(-1e-40) == 0x8000, "denormals become signed zeros, as vcvtneps2bf16 makes them")
        #expect(bits(.infinity) == 0x7F80)
        #expect(bits(.nan) & 0x7FC0 == 0x7FC0)
        #expect(rnn_bf16_to_float(0x3F81) == 1 + 0x1p-7)
    }

    /// The conversion of rows (vcvtneps2bf16 where the processor has it) agrees with the scalar
    /// one bit for bit, writes the zero that pads an odd row, and nothing else.
    @Test func vectorConversionMatchesScalar() {
        var rng = SeededRandom(seed: 11)
        let rows = 3, cols = 37, ldd = 40
        var src = (0..<(rows * cols)).map { _ in rng.uniform(-1, 1) * Float(pow(2.0, Double(rng.nextInt(below: 60)) - 30)) }
        src[4] = 1e-39; src[5] = -3e-41; src[6] = 1 + 0x1p-8
        var dst = [UInt16](repeating: 0xFFFF, count: rows * ldd)
        src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { rnn_to_bf16(s.baseAddress!, Int32(rows), Int32(cols), Int32(cols), $0.baseAddress!, Int32(ldd)) } }
        for r in 0..<rows {
            for c in 0..<cols { #expect(dst[r * ldd + c] == rnn_float_to_bf16(src[r * cols + c]), "row \(r) column \(c)") }
            #expect(dst[r * ldd + cols] == 0, "padding zero")
            #expect(dst[r * ldd + cols + 1] == 0xFFFF && dst[r * ldd + cols + 2] == 0xFFFF, "wrote past the padded row")
        }
    }

    /// The transposed conversion against its definition.
    @Test func transposedConversion() {
        var rng = SeededRandom(seed: 12)
        let rows = 35, cols = 40, ldd = 36
        let src = randomArray(rows * cols, &rng)
        var dst = [UInt16](repeating: 0xFFFF, count: cols * ldd)
        src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { rnn_to_bf16_transposed(s.baseAddress!, Int32(rows), Int32(cols), Int32(cols), $0.baseAddress!, Int32(ldd)) } }
        for c in 0..<cols {
            for r in 0..<rows { #expect(dst[c * ldd + r] == rnn_float_to_bf16(src[r * cols + c])) }
            #expect(dst[c * ldd + rows] == 0)
        }
    }

    static let shapes = [(1, 1, 1), (3, 20, 5), (9, 37, 13), (7, 45, 6), (16, 1024, 256), (17, 256, 301), (8, 64, 3), (13, 8, 600)]

    /// `C += A B` against a Float64 sum over the bf16-rounded operands, within the fp32
    /// summation bound, for both packing orientations (the vector packing of `[K, N]` and the
    /// scalar packing of `[N, K]`) and every kernel that runs here; columns past N untouched.
    @Test(arguments: shapes, BF16Kernel.runnable)
    func productMatchesRoundedReference(shape: (Int, Int, Int), kernel: BF16Kernel) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 7919 + n * 31 + k))
        let a = randomArray(m * k, &rng), w = randomArray(k * n, &rng), c0 = randomArray(m * n, &rng)
        let k2 = (k + 1) / 2 * 2, ldc = n + 3
        var ab = [UInt16](repeating: 0xFFFF, count: m * k2)
        a.withUnsafeBufferPointer { s in ab.withUnsafeMutableBufferPointer { rnn_to_bf16(s.baseAddress!, Int32(m), Int32(k), Int32(k), $0.baseAddress!, Int32(k2)) } }
        for transposed in [false, true] {
            // B [K, N]: stored as w read [K, N], or (transposed) as its transpose stored [N, K].
            let stored = transposed ? (0..<(n * k)).map { w[($0 % k) * n + $0 / k] } : w
            var packed = [UInt16](repeating: 0xFFFF, count: rnn_packed_bf16_size(Int32(k), Int32(n)))
            stored.withUnsafeBufferPointer { s in
                packed.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(transposed ? k : n), Int32(k), Int32(n), transposed ? 1 : 0, $0.baseAddress!) }
            }
            var c = [Float](repeating: 777, count: m * ldc)
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = c0[i * n + j] } }
            ab.withUnsafeBufferPointer { ap in
                packed.withUnsafeBufferPointer { pp in
                    c.withUnsafeMutableBufferPointer { rnn_gemm_bf16_using(kernel.code, Int32(m), Int32(n), Int32(k), ap.baseAddress!, Int32(k2), pp.baseAddress!, $0.baseAddress!, Int32(ldc)) }
                }
            }
            var excess = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var s = Double(c0[i * n + j]), abs = Swift.abs(s)
                    for kk in 0..<k {
                        let t = bf16Rounded(a[i * k + kk]) * bf16Rounded(w[kk * n + j])
                        s += t; abs += Swift.abs(t)
                    }
                    excess = max(excess, Swift.abs(s - Double(c[i * ldc + j])) / fp32SumBound(abs, terms: k))
                }
                #expect(c[(i * ldc + n)..<(i * ldc + ldc)].allSatisfy { $0 == 777 }, "wrote past column \(n)")
            }
            #expect(excess <= 1, "\(kernel) m \(m) n \(n) k \(k) transposed \(transposed): error \(excess) x the fp32 bound")
        }
    }

    /// `C += P^T X` from two operands packed over their rows (the weight-gradient product
    /// `dG^T H`), against a Float64 sum over the bf16-rounded operands within the fp32 bound; rows
    /// past M and columns past N untouched; every kernel that runs here.
    @Test(arguments: [(1, 1, 1), (8, 5, 3), (37, 19, 9), (40, 33, 64), (1024, 64, 33), (24, 256, 301), (16, 7, 600)],
          BF16Kernel.runnable)
    func transposedLeftProductMatchesRoundedReference(shape: (Int, Int, Int), kernel: BF16Kernel) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 131 + n * 17 + k))
        let p = randomArray(k * m, &rng), x = randomArray(k * n, &rng), c0 = randomArray(m * n, &rng)
        var pa = [UInt16](repeating: 0xFFFF, count: rnn_packed_bf16_size(Int32(k), Int32(m)))
        var pb = [UInt16](repeating: 0xFFFF, count: rnn_packed_bf16_size(Int32(k), Int32(n)))
        p.withUnsafeBufferPointer { s in pa.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(m), Int32(k), Int32(m), 0, $0.baseAddress!) } }
        x.withUnsafeBufferPointer { s in pb.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(n), Int32(k), Int32(n), 0, $0.baseAddress!) } }
        let ldc = n + 2
        var c = [Float](repeating: 777, count: (m + 1) * ldc)
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = c0[i * n + j] } }
        pa.withUnsafeBufferPointer { ap in
            pb.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { rnn_gemm_bf16_at_using(kernel.code, Int32(m), Int32(n), Int32(k), ap.baseAddress!, bp.baseAddress!, $0.baseAddress!, Int32(ldc)) }
            }
        }
        var excess = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = Double(c0[i * n + j]), abs = Swift.abs(s)
                for kk in 0..<k {
                    let t = bf16Rounded(p[kk * m + i]) * bf16Rounded(x[kk * n + j])
                    s += t; abs += Swift.abs(t)
                }
                excess = max(excess, Swift.abs(s - Double(c[i * ldc + j])) / fp32SumBound(abs, terms: k))
            }
            #expect(c[(i * ldc + n)..<(i * ldc + ldc)].allSatisfy { $0 == 777 }, "wrote past column \(n)")
        }
        #expect(c[(m * ldc)...].allSatisfy { $0 == 777 }, "wrote past row \(m)")
        #expect(excess <= 1, "\(kernel) m \(m) n \(n) k \(k): error \(excess) x the fp32 bound")
    }

    /// The widening and portable kernels accumulate each element in the order of the fp32
    /// per-step kernel, one fused multiply-add per term, so on operands that are already bf16
    /// values they give that kernel's bits exactly (and so each other's); the fp32 kernel at
    /// the widest level here.
    @Test(.enabled(if: ISALevel.supported >= .avx2), arguments: [(16, 1024, 256), (9, 37, 13), (17, 256, 301), (1, 45, 600)],
          BF16Kernel.runnable.filter { $0 != .dot })
    func wideningKernelsGiveTheFP32KernelsBits(shape: (Int, Int, Int), kernel: BF16Kernel) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 17 + n * 5 + k))
        let a = randomArray(m * k, &rng).map { Float(bf16Rounded($0)) }, w = randomArray(k * n, &rng).map { Float(bf16Rounded($0)) }
        let c0 = randomArray(m * n, &rng), k2 = (k + 1) / 2 * 2
        var ab = [UInt16](repeating: 0, count: m * k2)
        var packed = [UInt16](repeating: 0, count: rnn_packed_bf16_size(Int32(k), Int32(n)))
        var packed32 = [Float](repeating: 0, count: rnn_packed_size(Int32(k), Int32(n)))
        a.withUnsafeBufferPointer { s in ab.withUnsafeMutableBufferPointer { rnn_to_bf16(s.baseAddress!, Int32(m), Int32(k), Int32(k), $0.baseAddress!, Int32(k2)) } }
        w.withUnsafeBufferPointer { s in
            packed.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(n), Int32(k), Int32(n), 0, $0.baseAddress!) }
            packed32.withUnsafeMutableBufferPointer { rnn_pack_b(s.baseAddress!, Int32(n), Int32(k), Int32(n), 0, $0.baseAddress!) }
        }
        var widened = c0, fp32 = c0
        widened.withUnsafeMutableBufferPointer { c in
            rnn_gemm_bf16_using(kernel.code, Int32(m), Int32(n), Int32(k), ab, Int32(k2), packed, c.baseAddress!, Int32(n))
        }
        fp32.withUnsafeMutableBufferPointer { c in
            rnn_gemm_packed(Int32(ISALevel.supported.rawValue), Int32(m), Int32(n), Int32(k), a, Int32(k), packed32, c.baseAddress!, Int32(n))
        }
        let first = widened.indices.first { widened[$0].bitPattern != fp32[$0].bitPattern }
        #expect(first == nil, "\(kernel) m \(m) n \(n) k \(k): element \(first ?? 0) is \(widened[first ?? 0]), the fp32 kernel's \(fp32[first ?? 0])")
    }

    /// The portable kernel's forms, the widening kernel (avx512 level), the fp32 per-step kernel
    /// on operands widened per call (avx2) and the C loop (generic), give the same bits on bf16
    /// products, the transposed product over two packed operands and the matrix-vector product of
    /// generation included; odd K exercises the padding pair, K over 256 and M over 512 the
    /// blocks, and C starts non-zero. Every form the processor can run is checked against the loop.
    @Test(arguments: [(16, 1024, 256), (9, 37, 13), (17, 256, 301), (1, 45, 600), (33, 70, 1), (530, 40, 519)])
    func portableKernelsFormsGiveTheLoopsBits(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SeededRandom(seed: UInt64(m * 7 + n * 3 + k))
        let a = randomArray(m * k, &rng), w = randomArray(k * n, &rng), c0 = randomArray(m * n, &rng), k2 = (k + 1) / 2 * 2
        var ab = [UInt16](repeating: 0, count: m * k2)
        var packed = [UInt16](repeating: 0, count: rnn_packed_bf16_size(Int32(k), Int32(n)))
        var packedA = [UInt16](repeating: 0, count: rnn_packed_bf16_size(Int32(k), Int32(m)))
        a.withUnsafeBufferPointer { s in
            ab.withUnsafeMutableBufferPointer { rnn_to_bf16(s.baseAddress!, Int32(m), Int32(k), Int32(k), $0.baseAddress!, Int32(k2)) }
            // P[K, M] = A^T, packed: the left operand of the transposed product.
            packedA.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(k), Int32(k), Int32(m), 1, $0.baseAddress!) }
        }
        w.withUnsafeBufferPointer { s in packed.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(n), Int32(k), Int32(n), 0, $0.baseAddress!) } }
        func product(_ level: ISALevel, transposed: Bool) -> [UInt32] {
            var c = c0
            c.withUnsafeMutableBufferPointer { cp in
                packedA.withUnsafeBufferPointer { pa in
                    rnn_gemm_bf16_portable_at_level(Int32(level.rawValue), Int32(m), Int32(n), Int32(k), ab, Int32(k2),
                                                    transposed ? pa.baseAddress : nil, packed, cp.baseAddress!, Int32(n))
                }
            }
            return c.map(\.bitPattern)
        }
        let loop = product(.generic, transposed: false)
        #expect(product(.generic, transposed: true) == loop, "the transposed loop reads the same A, m \(m) n \(n) k \(k)")
        for level in ISALevel.allCases where level != .generic && level <= ISALevel.supported {
            for transposed in [false, true] {
                let form = product(level, transposed: transposed)
                #expect(form == loop, "\(level)\(transposed ? ", transposed" : ""), m \(m) n \(n) k \(k): first difference at \(form.indices.first { form[$0] != loop[$0] } ?? -1)")
            }
        }
        if BF16Kernel.inUse == .portable {
            // Row 0 of A through the matrix-vector product of this process's level.
            var y = Array(c0[..<n]) + [Float](repeating: 12345, count: 40)
            rnn_matvec_bf16(Int32(n), Int32(k), ab, packed, &y)
            #expect(y[n...].allSatisfy { $0 == 12345 }, "wrote past n")
            #expect(Array(y[..<n]).map(\.bitPattern) == Array(loop[..<n]), "matvec, n \(n) k \(k)")
        }
    }

    /// Adam's sixteen-lane update (no weight decay; 87 elements, so five vectors and a scalar
    /// tail) gives exactly the bits of PyTorch's update formula evaluated element by element.
    @Test func adamVectorUpdateMatchesScalarFormula() {
        var rng = SeededRandom(seed: 99)
        let count = 16 * 5 + 7
        let parameter = Parameter(name: "w", shape: [count])
        for i in 0..<count { parameter.value[i] = rng.uniform(-1, 1) }
        var w = (0..<count).map { parameter.value[$0] }
        var m = [Float](repeating: 0, count: count), v = [Float](repeating: 0, count: count)
        let adam = Adam(parameters: [parameter], learningRate: 0.01)
        for step in 1...3 {
            var g = [Float](repeating: 0, count: count)
            for i in 0..<count { g[i] = rng.uniform(-2, 2); parameter.grad[i] = g[i] }
            adam.step()
            let bc1 = Float(1 - pow(Double(Float(0.9)), Double(step))), bc2 = Float(1 - pow(Double(Float(0.999)), Double(step)))
            let stepSize = Float(0.01) / bc1, bc2Sqrt = bc2.squareRoot()
            for i in 0..<count {
                m[i] = 0.9 * m[i] + (1 - 0.9) * g[i]
                v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i]
                w[i] -= stepSize * m[i] / (v[i].squareRoot() / bc2Sqrt + 1e-8)
            }
            #expect((0..<count).allSatisfy { parameter.value[$0] == w[$0] }, "step \(step): weights differ from the scalar formula")
        }
    }

    /// The matrix-vector product of generation against the same reference and against the
    /// blocked product with one row by the kernel whose arithmetic it shares (dot where the
    /// processor has AVX512_BF16, else portable).
    @Test(arguments: [(5, 3), (16, 7), (37, 13), (64, 9), (100, 256), (1024, 256), (65, 256), (81, 1)])
    func matvecMatchesRoundedReference(shape: (Int, Int)) {
        let (n, k) = shape
        var rng = SeededRandom(seed: UInt64(n * 131 + k))
        let x = randomArray(k, &rng), w = randomArray(n * k, &rng), y0 = randomArray(n, &rng)
        var xb = [UInt16](repeating: 0xFFFF, count: k + 1)
        x.withUnsafeBufferPointer { s in xb.withUnsafeMutableBufferPointer { rnn_to_bf16(s.baseAddress!, 1, Int32(k), Int32(k), $0.baseAddress!, Int32(k + 1)) } }
        var packed = [UInt16](repeating: 0, count: rnn_packed_bf16_size(Int32(k), Int32(n)))
        w.withUnsafeBufferPointer { s in packed.withUnsafeMutableBufferPointer { rnn_pack_b_bf16(s.baseAddress!, Int32(k), Int32(k), Int32(n), 1, $0.baseAddress!) } }
        var y = y0 + [Float](repeating: 12345, count: 40), blocked = y0
        xb.withUnsafeBufferPointer { xp in
            packed.withUnsafeBufferPointer { pp in
                y.withUnsafeMutableBufferPointer { rnn_matvec_bf16(Int32(n), Int32(k), xp.baseAddress!, pp.baseAddress!, $0.baseAddress!) }
                let kernel = BF16Kernel.inUse == .portable ? BF16Kernel.portable : .dot
                blocked.withUnsafeMutableBufferPointer { rnn_gemm_bf16_using(kernel.code, 1, Int32(n), Int32(k), xp.baseAddress!, Int32(k + 1), pp.baseAddress!, $0.baseAddress!, Int32(n)) }
            }
        }
        #expect(y[n...].allSatisfy { $0 == 12345 }, "wrote past n")
        var excess = 0.0
        for j in 0..<n {
            var s = Double(y0[j]), abs = Swift.abs(s)
            for kk in 0..<k { let t = bf16Rounded(x[kk]) * bf16Rounded(w[j * k + kk]); s += t; abs += Swift.abs(t) }
            excess = max(excess, Swift.abs(s - Double(y[j])) / fp32SumBound(abs, terms: k))
        }
        #expect(excess <= 1, "n \(n) k \(k): error \(excess) x the fp32 bound")
        // Same operands, same order of accumulation per element: the same bits.
        #expect(Array(y[..<n]).map(\.bitPattern) == blocked.map(\.bitPattern))
    }
}

/// The recurrent layers in bf16.
@Suite struct BF16LayerTests {
    /// One step of a tanh RNN in bf16 against a Float64 computation from the bf16-rounded
    /// operands: every product of forward (x W_ih^T, h0 W_hh^T) and of backward (dG W_ih,
    /// dG W_hh, dG^T x, dG^T h0) rounds exactly these operands and accumulates in fp32, so the
    /// two agree to fp32 rounding (the gate math is fp32 in both). Odd sizes exercise the padding.
    @Test func oneStepMatchesRoundedReference() {
        let B = 3, I = 5, H = 7
        var rng = SeededRandom(seed: 21)
        let layer = RecurrentLayer(cell: .rnnTanh, inputSize: I, hiddenSize: H, rng: &rng)
        layer.precision = .bf16
        #expect(layer.computesInBF16)
        let x = randomArray(B * I, &rng), h0 = randomArray(B * H, &rng), dy = randomArray(B * H, &rng)
        var y = [Float](repeating: 0, count: B * H), dx = [Float](repeating: 0, count: B * I)
        let wih = layer.weightIH.values, whh = layer.weightHH.values, bih = layer.biasIH.values, bhh = layer.biasHH.values
        x.withUnsafeBufferPointer { xp in
            h0.withUnsafeBufferPointer { hp in
                y.withUnsafeMutableBufferPointer { yp in
                    layer.forward(input: .dense(xp.baseAddress!, features: I), steps: 1, batch: B, lengths: nil,
                                  h0: hp.baseAddress!, c0: nil, output: yp.baseAddress!, outputStride: H)
                }
                layer.zeroGrad()
                dy.withUnsafeBufferPointer { dp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        layer.backward(input: .dense(xp.baseAddress!, features: I), gradOutput: dp.baseAddress!, gradOutputStride: H,
                                       gradFinalHidden: nil, gradFinalCell: nil, gradInput: dxp.baseAddress!)
                    }
                }
            }
        }
        let r = bf16Rounded
        // Forward: pre-activation from rounded operands; y = tanh of it.
        var dg = [Float](repeating: 0, count: B * H)
        for b in 0..<B {
            for j in 0..<H {
                var s = Double(bih[j]) + Double(bhh[j])
                for i in 0..<I { s += r(x[b * I + i]) * r(wih[j * I + i]) }
                for k in 0..<H { s += r(h0[b * H + k]) * r(whh[j * H + k]) }
                let yv = Float(tanh(s))
                #expect(abs(y[b * H + j] - yv) < 2e-6, "y[\(b), \(j)]: \(y[b * H + j]) vs \(yv)")
                dg[b * H + j] = dy[b * H + j] * (1 - y[b * H + j] * y[b * H + j])   // the layer's own fp32 gate gradient
            }
        }
        // Backward products from the rounded gate gradient.
        let gWih = gradients(layer.weightIH), gWhh = gradients(layer.weightHH)
        var worst = 0.0
        for j in 0..<H {
            for i in 0..<I {
                let e = (0..<B).reduce(0.0) { $0 + r(dg[$1 * H + j]) * r(x[$1 * I + i]) }
                worst = max(worst, abs(e - Double(gWih[j * I + i])))
            }
            for k in 0..<H {
                let e = (0..<B).reduce(0.0) { $0 + r(dg[$1 * H + j]) * r(h0[$1 * H + k]) }
                worst = max(worst, abs(e - Double(gWhh[j * H + k])))
            }
        }
        for b in 0..<B {
            for i in 0..<I {
                let e = (0..<H).reduce(0.0) { $0 + r(dg[b * H + $1]) * r(wih[$1 * I + i]) }
                worst = max(worst, abs(e - Double(dx[b * I + i])))
            }
            for k in 0..<H {
                let e = (0..<H).reduce(0.0) { $0 + r(dg[b * H + $1]) * r(whh[$1 * H + k]) }
                worst = max(worst, abs(e - Double(layer.gradInitialHidden[b * H + k])))
            }
        }
        #expect(worst < 2e-6, "backward products: max error \(worst)")
    }

    /// Outputs and gradients of a padded, bidirectional two-layer stack, bf16 against fp32, for
    /// every cell. Each product rounds both operands to 8 significant bits (relative error at
    /// most 2^-9 each, about 2^-8 per term); over sums of K random-signed terms and 6 steps the
    /// differences stay near 1 % of the values' scale. Outputs may differ by 4 % of their
    /// largest magnitude; gradients by 5 % in the Euclidean norm, 10 % for the ReLU RNN (its
    /// derivative jumps where a pre-activation changes sign, which moves single elements by
    /// their whole value; measured: up to 7 %).
    /// Some difference is required (the bf16 path really ran).
    @Test(arguments: CellKind.allCases)
    func stackAgreesWithFP32(cell: CellKind) {
        let T = 6, B = 5, I = 9, H = 24
        func run(_ precision: Precision) -> (y: [Float], dx: [Float], grads: [[Float]]) {
            var rng = SeededRandom(seed: 3)
            let stack = RecurrentStack(cell: cell, inputSize: I, hiddenSize: H, numLayers: 2, bidirectional: true, rng: &rng)
            stack.precision = precision
            let x = randomArray(T * B * I, &rng), g = randomArray(T * B * 2 * H, &rng)
            var out: [Float] = []
            var gx = [Float](repeating: 0, count: T * B * I)
            x.withUnsafeBufferPointer { xp in
                var noDrop = SeededRandom(seed: 0)
                let y = stack.forward(input: .dense(xp.baseAddress!, features: I), steps: T, batch: B, lengths: [6, 4, 6, 1, 5],
                                      initial: nil, training: false, rng: &noDrop)
                out = Array(UnsafeBufferPointer(start: y, count: T * B * 2 * H))
                stack.zeroGrad()
                g.withUnsafeBufferPointer { gp in
                    gx.withUnsafeMutableBufferPointer { gxp in
                        _ = stack.backward(input: .dense(xp.baseAddress!, features: I), gradOutput: gp.baseAddress!,
                                           gradFinal: nil, gradInput: gxp.baseAddress!)
                    }
                }
            }
            return (out, gx, stack.parameters.map(gradients))
        }
        let a = run(.fp32), b = run(.bf16)
        let scale = Double(a.y.map(abs).max() ?? 0)
        let worst = Double(zip(a.y, b.y).map { abs($0 - $1) }.max() ?? 0)
        #expect(worst <= 0.04 * scale && worst > 0, "\(cell) outputs: max difference \(worst), scale \(scale)")
        func norm(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        func check(_ x: [Float], _ y: [Float], _ what: String) {
            let d = norm(zip(x, y).map { $0 - $1 }), n = norm(x)
            #expect(d <= (cell == .rnnRelu ? 0.1 : 0.05) * n && d > 0, "\(cell) \(what): difference \(d), norm \(n)")
        }
        check(a.dx, b.dx, "input gradient")
        for (i, (ga, gb)) in zip(a.grads, b.grads).enumerated() where ga.contains(where: { $0 != 0 }) { check(ga, gb, "gradient \(i)") }
    }

    /// A replica made for a batch shard computes in its original's precision.
    @Test func replicasKeepThePrecision() {
        var rng = SeededRandom(seed: 1)
        let stack = RecurrentStack(cell: .gru, inputSize: 3, hiddenSize: 4, numLayers: 2, rng: &rng)
        stack.precision = .bf16
        #expect(RecurrentStack(sharing: stack).precision == .bf16)
        let model = RecurrentLanguageModel(config: LanguageModelConfig(cell: .lstm, layers: 1, hidden: 8, embedding: 4, vocabSize: 5), seed: 1, threads: 3)
        model.precision = .bf16
        #expect(model.replicas.allSatisfy { $0.stack.precision == .bf16 })
    }
}

/// Language models trained and sampled in bf16.
@Suite struct BF16ModelTests {
    /// A small LSTM language model learns a repeating pattern in bf16 as it does in fp32: the
    /// losses track each other step by step (same seed, same batches) and both fall.
    @Test func trainingLossTracksFP32() {
        let pattern: [Int32] = [0, 1, 2, 3, 4, 2, 5, 6, 1, 0, 3, 7]
        let B = 4, T = 12, V = 8
        func losses(_ precision: Precision) -> [Double] {
            let model = RecurrentLanguageModel(config: LanguageModelConfig(cell: .lstm, layers: 2, hidden: 32, embedding: 8, vocabSize: V),
                                               seed: 9, threads: 2)
            model.precision = precision
            let opt = Adam(parameters: model.parameters, learningRate: 1e-2)
            var out: [Double] = []
            for step in 0..<40 {
                var x: [Int32] = [], y: [Int32] = []
                for b in 0..<B {
                    let start = (step * 5 + b * 3) % pattern.count
                    for t in 0..<T { x.append(pattern[(start + t) % pattern.count]); y.append(pattern[(start + t + 1) % pattern.count]) }
                }
                out.append(model.trainStep(inputs: x, targets: y, batch: B, steps: T, carryState: false, seed: UInt64(step)))
                clipGradientNorm(model.parameters, maxNorm: 5)
                opt.step()
            }
            return out
        }
        let fp32 = losses(.fp32), bf16 = losses(.bf16)
        #expect(fp32.last! < 0.5 * fp32.first!, "fp32 did not learn: \(fp32)")
        #expect(bf16.last! < 0.5 * bf16.first!, "bf16 did not learn: \(bf16)")
        let worst = zip(fp32, bf16).map { abs($0 - $1) }.max()!
        #expect(worst < 0.1, "losses differ by up to \(worst): fp32 \(fp32), bf16 \(bf16)")
        #expect(worst > 0, "bf16 gave the fp32 losses bit for bit")
    }

    /// Batch-1 generation in bf16: the generator's logits agree with the bf16 stack's (same
    /// rounded operands, fp32 sums in another order; the output layer is fp32 in both) and
    /// stay close to fp32's.
    @Test(arguments: [(CellKind.lstm, 6), (.gru, 0), (.rnnTanh, 6)])
    func generationIsCloseToFP32(cell: CellKind, embedding: Int) {
        let tokens: [Int32] = [3, 0, 6, 6, 1, 2, 5, 4, 0, 3, 3, 1]
        func logits(_ precision: Precision, generator: Bool) -> [Float] {
            let model = RecurrentLanguageModel(config: LanguageModelConfig(cell: cell, layers: 2, hidden: 40, embedding: embedding, vocabSize: 7), seed: 5)
            model.precision = precision
            model.resetEvaluationState()
            return tokens.flatMap { generator ? model.nextLogits([$0]) : model.nextLogitsThroughStack([$0]) }
        }
        let fp32 = logits(.fp32, generator: true), bf16 = logits(.bf16, generator: true), bf16Stack = logits(.bf16, generator: false)
        let toStack = zip(bf16, bf16Stack).map { abs($0 - $1) }.max()!
        let scale = fp32.map(abs).max()!, toFP32 = zip(bf16, fp32).map { abs($0 - $1) }.max()!
        #expect(toFP32 < 0.03 * scale && toFP32 > 0, "\(cell): bf16 vs fp32 logits differ by \(toFP32) (scale \(scale))")
        // The generator sums the same bf16 products in another order; an fp32 rounding
        // difference can move a state across a bf16 rounding boundary, so the two agree far
        // more closely than either does with fp32, not bit for bit.
        #expect(toStack < 0.25 * toFP32, "\(cell): bf16 generator vs bf16 stack differ by \(toStack), bf16 vs fp32 by \(toFP32)")
    }
}

/// `--precision bf16` where the processor (or the `RNN_ISA` cap) has no AVX512_BF16: emulated,
/// and said so.
@Suite struct BF16EmulationTests {
    static let bench = builtExecutable("rnn-bench")

    /// Below the avx512 level a bf16 run goes ahead with the portable kernel, says so in one line
    /// on standard error, and learns like fp32 (three steps of the same run, losses within 1e-2).
    @Test(.enabled(if: bench != nil && ISALevel.supported >= .avx2)) func emulatedBelowAVX512() throws {
        let args = ["train", "--hidden", "16", "--layers", "1", "--vocab", "11", "--batch", "4", "--seq-len", "8", "--steps", "3", "--threads", "1"]
        let r = try runProcess(Self.bench!, args + ["--precision", "bf16"], environment: ["RNN_ISA": "avx2", "RNN_BF16_KERNEL": nil])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("rnn-bench: bf16 is emulated (") && lines[0].hasSuffix("training no faster than fp32"), "\(r.stderr)")
        #expect(r.stdout.contains("precision=bf16"), "\(r.stdout)")
        let fp32 = try runProcess(Self.bench!, args, environment: ["RNN_ISA": "avx2"])
        #expect(fp32.stderr.isEmpty, "fp32 says nothing: \(fp32.stderr)")
        func loss(_ out: String) -> Double? {
            out.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("loss=") }.flatMap { Double($0.dropFirst(5)) }
        }
        let a = try #require(loss(fp32.stdout), "\(fp32.stdout)"), b = try #require(loss(r.stdout), "\(r.stdout)")
        #expect(abs(a - b) < 1e-2, "fp32 \(a), bf16 emulated \(b)")
    }

    @Test(.enabled(if: bench != nil && ISALevel.supported >= .avx2)) func infoSaysEmulated() throws {
        let r = try runProcess(Self.bench!, ["info"], environment: ["RNN_ISA": "avx2", "RNN_BF16_KERNEL": nil])
        #expect(r.stdout.contains("\nprecision: fp32, bf16 emulated (kernel portable, training no faster than fp32: "), "\(r.stdout)")
        if Precision.bf16Native {
            let free = try runProcess(Self.bench!, ["info"], environment: ["RNN_ISA": nil, "RNN_BF16_KERNEL": nil])
            #expect(free.stdout.contains("\nprecision: fp32, bf16 (avx512_bf16; kernel \(BF16Kernel.inUse) (measured per core: vdpbf16ps "),
                    "\(free.stdout)")
        }
    }

    /// `RNN_BF16_KERNEL` names the kernel: portable anywhere, dot and widen where AVX512_BF16
    /// runs (elsewhere one line and status 2, as for a name it does not know); a short bf16
    /// training run gives the same loss with each kernel that runs (the same bf16 operands,
    /// products summed in another order).
    @Test(.enabled(if: bench != nil)) func kernelChosenByTheEnvironment() throws {
        var losses: [BF16Kernel: Double] = [:]
        for kernel in BF16Kernel.runnable {
            let info = try runProcess(Self.bench!, ["info"], environment: ["RNN_BF16_KERNEL": "\(kernel)", "RNN_ISA": nil])
            if Precision.bf16Native {
                #expect(info.stdout.contains("precision: fp32, bf16 (avx512_bf16; kernel \(kernel) (RNN_BF16_KERNEL=\(kernel)))\n")
                        || (kernel == .portable && info.stdout.contains("precision: fp32, bf16 emulated (kernel portable, training no faster than fp32: RNN_BF16_KERNEL=portable)\n")),
                        "\(info.stdout)")
            } else {
                #expect(info.stdout.contains("precision: fp32, bf16 emulated (kernel portable, training no faster than fp32: "), "\(info.stdout)")
            }
            let r = try runProcess(Self.bench!, ["train", "--precision", "bf16", "--hidden", "40", "--layers", "2", "--embedding", "8",
                                                 "--vocab", "13", "--batch", "8", "--seq-len", "10", "--steps", "3", "--threads", "1"],
                                   environment: ["RNN_BF16_KERNEL": "\(kernel)", "RNN_ISA": nil])
            #expect(r.status == 0, "\(r.stderr)")
            let value = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix("loss=") }.flatMap { Double($0.dropFirst(5)) }
            losses[kernel] = try #require(value, "no loss in \(r.stdout)")
        }
        let values = losses.values
        #expect(values.max()! - values.min()! < 1e-3, "\(losses)")
        let bad = try runProcess(Self.bench!, ["train", "--precision", "bf16", "--hidden", "8", "--layers", "1", "--steps", "1"],
                                 environment: ["RNN_BF16_KERNEL": "amx", "RNN_ISA": nil])
        #expect(bad.status == 2)
        #expect(bad.stdout.isEmpty)
        #expect(bad.stderr == "RNN_BF16_KERNEL: unknown kernel 'amx' (use dot, widen or portable)\n", "\(bad.stderr)")
        let native = try runProcess(Self.bench!, ["train", "--precision", "bf16", "--hidden", "8", "--layers", "1", "--steps", "1"],
                                    environment: ["RNN_BF16_KERNEL": "dot", "RNN_ISA": Precision.bf16Native ? "avx2" : nil])
        #expect(native.status == 2 && native.stdout.isEmpty)
        #expect(native.stderr == "RNN_BF16_KERNEL: kernel 'dot' needs AVX512_BF16 at the avx512 level, which this process does not have (use portable)\n",
                "\(native.stderr)")
    }

    @Test func configurationAcceptsBF16Everywhere() throws {
        var c = TrainingConfiguration()
        c.steps = 1
        c.precision = .bf16
        try c.validate()
        #expect(c.fingerprint["precision"] == "bf16")
        let bf16Print = c.fingerprint
        c.precision = .fp32
        #expect(c.fingerprint["precision"] == nil, "fp32 stays out of the fingerprint, so runs saved before the setting resume")
        // A run saved in bf16 and resumed in fp32 differs in exactly that field.
        let d = TrainingFingerprint.firstDifference(saved: bf16Print, now: c.fingerprint)
        #expect(d?.field == "precision" && d?.saved == "bf16" && d?.now == "(absent)")
    }
}
