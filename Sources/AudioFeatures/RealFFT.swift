import CKissFFT
import Foundation

/// Planned real-input FFT (KissFFT `kiss_fftr`) that produces power spectra.
///
/// The plan and the work buffers are allocated once; `powerSpectrum` allocates nothing when
/// called through the pointer form. Not thread-safe: one instance per thread.
public final class RealFFT {
    /// Transform length (even).
    public let size: Int
    /// Number of output bins, `size / 2 + 1`.
    public var bins: Int { size / 2 + 1 }
    private let plan: OpaquePointer
    private let input: UnsafeMutablePointer<Float>         // [size]
    private let output: UnsafeMutablePointer<kiss_fft_cpx>  // [bins]

    /// Plans a transform of `size` points (even, 2…131072).
    public init(size: Int) throws {
        guard size >= 2, size % 2 == 0, size <= 1 << 17, let p = kiss_fftr_alloc(Int32(size), 0, nil, nil) else {
            throw FeatureError.invalidConfig(source: "FFT", reason: "cannot plan a real FFT of size \(size) (must be even, 2…131072)")
        }
        self.size = size
        plan = p
        input = .allocate(capacity: size)
        input.initialize(repeating: 0, count: size)
        output = .allocate(capacity: size / 2 + 1)
        output.initialize(repeating: kiss_fft_cpx(r: 0, i: 0), count: size / 2 + 1)
    }

    deinit {
        free(UnsafeMutableRawPointer(plan))
        input.deallocate()
        output.deallocate()
    }

    /// Power spectrum `|X_k|² / size` for k = 0…size/2 of `count` samples at `x` multiplied by
    /// `window` (when given, `[count]`), zero-padded to `size` (`count ≤ size`). Writes `[bins]`
    /// values to `power` and returns their sum (the frame energy).
    @discardableResult
    public func powerSpectrum(_ x: UnsafePointer<Float>, count: Int, window: UnsafePointer<Float>?,
                              into power: UnsafeMutablePointer<Float>) -> Float {
        let n = min(count, size)
        if let w = window {
            for i in 0..<n { input[i] = x[i] * w[i] }
        } else {
            input.update(from: x, count: n)
        }
        if n < size { (input + n).update(repeating: 0, count: size - n) }
        kiss_fftr(plan, input, output)
        let inv = 1 / Float(size)
        var energy: Float = 0
        for k in 0..<bins {
            let c = output[k]
            let p = (c.r * c.r + c.i * c.i) * inv
            power[k] = p
            energy += p
        }
        return energy
    }

    /// Array form: power spectrum `[bins]` of `x` `[≤ size]` (no window).
    public func powerSpectrum(_ x: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: bins)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                if let xp = xb.baseAddress {
                    powerSpectrum(xp, count: xb.count, window: nil, into: ob.baseAddress!)
                } else {
                    var zero: Float = 0
                    powerSpectrum(&zero, count: 0, window: nil, into: ob.baseAddress!)
                }
            }
        }
        return out
    }
}
