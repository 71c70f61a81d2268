#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A first-order optimizer over a fixed list of parameters, with PyTorch's update rules.
///
/// The learning rate is set per step (`learningRate`), typically from a `LearningRateSchedule`.
/// `state` exposes the slot tensors (momentum buffers, moment estimates) by name so training
/// can be checkpointed and resumed exactly.
public protocol Optimizer: AnyObject {
    /// Current learning rate.
    var learningRate: Float { get set }
    /// Number of `step()` calls so far.
    var stepCount: Int { get }
    /// Applies one update from the parameters' `grad` (gradients are not cleared).
    func step()
    /// Optimizer state as named flat arrays (for checkpoints).
    var state: [(name: String, values: [Float])] { get }
    /// Restores state produced by `state` (same parameters, same order). Throws on mismatch.
    func load(state: [String: [Float]], stepCount: Int) throws
}

/// Errors restoring optimizer state.
public enum OptimizerError: Error, CustomStringConvertible {
    case missingState(String)
    case sizeMismatch(String, expected: Int, got: Int)

    public var description: String {
        switch self {
        case .missingState(let n): return "optimizer state '\(n)' is missing"
        case .sizeMismatch(let n, let e, let g): return "optimizer state '\(n)' has \(g) values, expected \(e)"
        }
    }
}

/// Shared storage of per-parameter slot buffers.
public class SlotOptimizer {
    /// The parameters this optimizer updates.
    public let parameters: [Parameter]
    let slotNames: [String]
    var slots: [[FloatBuffer]]   // [slot][parameter]
    public var learningRate: Float
    public internal(set) var stepCount = 0
    /// Threads for the elementwise update of large parameter sets (Adam/AdamW; results do not
    /// depend on it).
    public var threads = 1

    init(parameters: [Parameter], learningRate: Float, slotNames: [String]) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.slotNames = slotNames
        slots = slotNames.map { _ in parameters.map { FloatBuffer(count: $0.count) } }
    }

    public var state: [(name: String, values: [Float])] {
        var out: [(name: String, values: [Float])] = []
        for (s, slotName) in slotNames.enumerated() {
            for (i, p) in parameters.enumerated() { out.append(("\(slotName).\(i)", slots[s][i].array(p.count))) }
        }
        return out
    }

    public func load(state: [String: [Float]], stepCount: Int) throws {
        for (s, slotName) in slotNames.enumerated() {
            for (i, p) in parameters.enumerated() {
                let key = "\(slotName).\(i)"
                guard let v = state[key] else { throw OptimizerError.missingState(key) }
                guard v.count == p.count else { throw OptimizerError.sizeMismatch(key, expected: p.count, got: v.count) }
                v.withUnsafeBufferPointer { slots[s][i].pointer.update(from: $0.baseAddress!, count: p.count) }
            }
        }
        self.stepCount = stepCount
    }
}

/// Stochastic gradient descent with optional momentum (PyTorch: `buf = mu buf + g`, the first
/// step `buf = g`), Nesterov (`g + mu buf`) and L2 weight decay (`g + wd p`).
public final class SGD: SlotOptimizer, Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float

    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(parameters: parameters, learningRate: learningRate, slotNames: momentum != 0 ? ["momentum"] : [])
    }

    public func step() {
        let first = stepCount == 0
        stepCount += 1
        for (i, p) in parameters.enumerated() {
            let w = p.value, g = p.grad
            let buf = momentum != 0 ? slots[0][i].pointer : nil
            for j in 0..<p.count {
                var d = g[j] + weightDecay * w[j]
                if let buf {
                    buf[j] = first ? d : momentum * buf[j] + d
                    d = nesterov ? d + momentum * buf[j] : buf[j]
                }
                w[j] -= learningRate * d
            }
        }
    }
}

/// Adam (Kingma & Ba) with PyTorch's bias correction; `decoupledWeightDecay` makes it AdamW
/// (`p -= lr wd p` before the update) and otherwise weight decay is L2 added to the gradient.
public final class Adam: SlotOptimizer, Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public let decoupledWeightDecay: Bool

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.decoupledWeightDecay = decoupledWeightDecay
        super.init(parameters: parameters, learningRate: learningRate, slotNames: ["exp_avg", "exp_avg_sq"])
    }

    public func step() {
        stepCount += 1
        let t = Double(stepCount)
        let bc1 = Float(1 - pow(Double(beta1), t)), bc2 = Float(1 - pow(Double(beta2), t))
        let stepSize = learningRate / bc1
        let bc2Sqrt = bc2.squareRoot()
        let (b1, b2, eps, wd, decoupled, lr) = (beta1, beta2, epsilon, weightDecay, decoupledWeightDecay, learningRate)
        // Elementwise, so every element can be updated by any thread: large steps are split in
        // `threads` contiguous parts of every parameter (the same result on any thread count).
        let work = UncheckedBox((parameters, slots))
        let parts = parameters.reduce(0) { $0 + $1.count } >= 65_536 ? threads : 1
        Threading.run(parts) { part in
            let (params, slots) = work.value
            for (i, p) in params.enumerated() {
                let w = p.value, g = p.grad, m = slots[0][i].pointer, v = slots[1][i].pointer
                let range = Threading.shards(count: p.count, parts: parts)
                guard part < range.count else { continue }
                var j = range[part].lowerBound
                if wd == 0 {
                    // Sixteen lanes at a time, each as the scalar update below (the same bits).
                    typealias V = SIMD16<Float>
                    let (vb1, vb2, c1, c2) = (V(repeating: b1), V(repeating: b2), V(repeating: 1 - b1), V(repeating: 1 - b2))
                    let (vStep, vBC, vEps) = (V(repeating: stepSize), V(repeating: bc2Sqrt), V(repeating: eps))
                    while j + 16 <= range[part].upperBound {
                        let gj = UnsafeRawPointer(g + j).loadUnaligned(as: V.self)
                        let mj = vb1 * UnsafeRawPointer(m + j).loadUnaligned(as: V.self) + c1 * gj
                        let vj = vb2 * UnsafeRawPointer(v + j).loadUnaligned(as: V.self) + c2 * gj * gj
                        let wj = UnsafeRawPointer(w + j).loadUnaligned(as: V.self) - vStep * mj / (vj.squareRoot() / vBC + vEps)
                        UnsafeMutableRawPointer(m + j).storeBytes(of: mj, as: V.self)
                        UnsafeMutableRawPointer(v + j).storeBytes(of: vj, as: V.self)
                        UnsafeMutableRawPointer(w + j).storeBytes(of: wj, as: V.self)
                        j += 16
                    }
                }
                while j < range[part].upperBound {
                    var gj = g[j]
                    if wd != 0 {
                        if decoupled { w[j] *= 1 - lr * wd } else { gj += wd * w[j] }
                    }
                    m[j] = b1 * m[j] + (1 - b1) * gj
                    v[j] = b2 * v[j] + (1 - b2) * gj * gj
                    w[j] -= stepSize * m[j] / (v[j].squareRoot() / bc2Sqrt + eps)
                    j += 1
                }
            }
        }
    }
}

/// AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).
public func AdamW(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                  epsilon: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
    Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
         weightDecay: weightDecay, decoupledWeightDecay: true)
}

/// RMSProp as PyTorch: `v = alpha v + (1 - alpha) g^2`, `p -= lr g / (sqrt(v) + eps)`, optional
/// momentum (`buf = mu buf + g / (sqrt(v) + eps)`, `p -= lr buf`).
public final class RMSProp: SlotOptimizer, Optimizer {
    public let alpha: Float, epsilon: Float, momentum: Float, weightDecay: Float

    public init(parameters: [Parameter], learningRate: Float = 1e-2, alpha: Float = 0.99, epsilon: Float = 1e-8,
                momentum: Float = 0, weightDecay: Float = 0) {
        self.alpha = alpha; self.epsilon = epsilon; self.momentum = momentum; self.weightDecay = weightDecay
        super.init(parameters: parameters, learningRate: learningRate, slotNames: momentum != 0 ? ["square_avg", "momentum"] : ["square_avg"])
    }

    public func step() {
        stepCount += 1
        for (i, p) in parameters.enumerated() {
            let w = p.value, g = p.grad, v = slots[0][i].pointer
            let buf = momentum != 0 ? slots[1][i].pointer : nil
            for j in 0..<p.count {
                let gj = g[j] + weightDecay * w[j]
                v[j] = alpha * v[j] + (1 - alpha) * gj * gj
                let d = gj / (v[j].squareRoot() + epsilon)
                if let buf {
                    buf[j] = momentum * buf[j] + d
                    w[j] -= learningRate * buf[j]
                } else {
                    w[j] -= learningRate * d
                }
            }
        }
    }
}

/// Gradient clipping by global norm, as `torch.nn.utils.clip_grad_norm_`: when the L2 norm of
/// all gradients together exceeds `maxNorm`, every gradient is scaled by
/// `maxNorm / (norm + 1e-6)`. Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var sum = 0.0
    for p in parameters {
        let g = p.grad
        var s: Float = 0
        for j in 0..<p.count { s += g[j] * g[j] }
        sum += Double(s)
    }
    let norm = Float(sum.squareRoot())
    if maxNorm > 0 && norm > maxNorm {
        let k = maxNorm / (norm + 1e-6)
        for p in parameters { let g = p.grad; for j in 0..<p.count { g[j] *= k } }
    }
    return norm
}

/// A learning rate as a function of the (0-based) step and, for runs limited by time, of the
/// fraction of the time budget used.
public protocol LearningRateSchedule: Sendable {
    /// Learning rate for the given step.
    func rate(at step: Int) -> Float
    /// Learning rate for the given step when the run's length is a time budget: `timeFraction`
    /// is the share of the budget used so far, in [0, 1] (nil: measure progress in steps).
    /// Schedules that do not depend on the run's length ignore it (the default).
    func rate(at step: Int, timeFraction: Double?) -> Float
}

extension LearningRateSchedule {
    /// The step-based rate; progress in time does not matter.
    public func rate(at step: Int, timeFraction: Double?) -> Float { rate(at: step) }
}

/// A constant learning rate.
public struct ConstantRate: LearningRateSchedule {
    public let value: Float
    public init(_ value: Float) { self.value = value }
    public func rate(at step: Int) -> Float { value }
}

/// Step decay: `base * gamma^(step / every)`; for a run limited by time,
/// `base * gamma^floor(timeFraction / everyFraction)` when `everyFraction` is set.
public struct StepDecay: LearningRateSchedule {
    public let base: Float, every: Int, gamma: Float
    /// The share of a time budget after which the rate is multiplied by `gamma` again (nil: by steps).
    public let everyFraction: Double?
    public init(base: Float, every: Int, gamma: Float, everyFraction: Double? = nil) {
        self.base = base; self.every = max(every, 1); self.gamma = gamma
        self.everyFraction = everyFraction.flatMap { $0 > 0 ? $0 : nil }
    }
    public func rate(at step: Int) -> Float { base * Float(pow(Double(gamma), Double(step / every))) }
    public func rate(at step: Int, timeFraction: Double?) -> Float {
        guard let f = timeFraction, let e = everyFraction else { return rate(at: step) }
        return base * Float(pow(Double(gamma), (min(max(f, 0), 1) / e).rounded(.down)))
    }
}

/// Cosine annealing from `base` to `minimum` over `totalSteps`, then `minimum`; for a run
/// limited by time, over the time budget (`timeFraction` 0 to 1).
public struct CosineDecay: LearningRateSchedule {
    public let base: Float, minimum: Float, totalSteps: Int
    public init(base: Float, totalSteps: Int, minimum: Float = 0) { self.base = base; self.totalSteps = max(totalSteps, 1); self.minimum = minimum }
    public func rate(at step: Int) -> Float {
        let s = min(max(step, 0), totalSteps)
        return rate(progress: Double(s) / Double(totalSteps))
    }
    public func rate(at step: Int, timeFraction: Double?) -> Float {
        guard let f = timeFraction else { return rate(at: step) }
        return rate(progress: min(max(f, 0), 1))
    }
    /// The rate after the share `progress` (0 to 1) of the decay.
    func rate(progress p: Double) -> Float {
        minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * p)))
    }
}

/// Linear warm-up over `warmupSteps` (rate `(step + 1) / warmupSteps` times the inner
/// schedule), then the inner schedule, shifted so it starts at step 0 after warm-up.
public struct LinearWarmup<Inner: LearningRateSchedule>: LearningRateSchedule {
    public let warmupSteps: Int, inner: Inner
    public init(warmupSteps: Int, then inner: Inner) { self.warmupSteps = warmupSteps; self.inner = inner }
    public func rate(at step: Int) -> Float { rate(at: step, timeFraction: nil) }
    public func rate(at step: Int, timeFraction: Double?) -> Float {
        if step < warmupSteps { return inner.rate(at: 0, timeFraction: timeFraction.map { _ in 0 }) * Float(step + 1) / Float(warmupSteps) }
        return inner.rate(at: step - warmupSteps, timeFraction: timeFraction)
    }
}
