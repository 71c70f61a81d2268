import Foundation

/// Axis ticks at "nice" values (1, 2 or 5 times a power of ten).
struct Ticks: Equatable {
    /// Axis range, both ends multiples of `step` covering the data.
    var low: Double
    var high: Double
    /// Distance between ticks.
    var step: Double

    /// Tick positions from `low` to `high`.
    var values: [Double] {
        let n = Int(((high - low) / step).rounded())
        return (0...max(0, n)).map { low + Double($0) * step }
    }

    /// Ticks covering [minimum, maximum] with about `target` intervals.
    init(minimum: Double, maximum: Double, target: Int = 6) {
        var lo = minimum, hi = maximum
        if !(hi > lo) {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let raw = (hi - lo) / Double(max(1, target))
        let magnitude = pow(10, floor(log10(raw)))
        let fraction = raw / magnitude
        let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        step = nice * magnitude
        low = floor(lo / step) * step
        high = ceil(hi / step) * step
        // Guard against rounding leaving a data end just outside.
        if low > lo { low -= step }
        if high < hi { high += step }
    }

    /// Label text for a tick value, with as many decimals as the step needs.
    func label(_ value: Double) -> String {
        Ticks.format(value, step: step)
    }

    /// Formats `value` for an axis whose ticks are `step` apart.
    static func format(_ value: Double, step: Double) -> String {
        let v = abs(value) < step * 1e-9 ? 0 : value
        let biggest = abs(v)
        if biggest >= 1e6 || (step < 1e-4 && v != 0) {
            return String(format: "%.2e", v)
        }
        let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
        return String(format: "%.\(min(decimals, 6))f", v)
    }
}
