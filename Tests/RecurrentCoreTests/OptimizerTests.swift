#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import RecurrentCore

// Optimizer updates against reference values computed here in Float64 from the update rules of
// PyTorch's documentation (torch.optim.SGD / Adam / AdamW / RMSprop, dampening 0, not centered),
// written out independently of the library's code. A few first steps are also checked against
// numbers worked out by hand.

private let start: [Double] = [0.5, -1.0, 2.0]
/// Gradient of each step (the optimizers do not clear gradients; each step sets its own).
private let grads: [[Double]] = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.5], [-0.3, 0.2, 0.1]]

private func makeParameter(_ values: [Double], name: String = "w") -> Parameter {
    let p = Parameter(name: name, shape: [values.count])
    p.values = values.map { Float($0) }
    return p
}

private func setGrad(_ p: Parameter, _ g: [Double]) {
    for i in 0..<p.count { p.grad[i] = Float(g[i]) }
}

/// Runs `steps` steps of the optimizer built by `make` from `start` and returns the values.
private func runOptimizer(steps: Int, _ make: ([Parameter]) -> any Optimizer) -> [Float] {
    let p = makeParameter(start)
    let opt = make([p])
    for s in 0..<steps { setGrad(p, grads[s]); opt.step() }
    #expect(opt.stepCount == steps)
    return p.values
}

private func expectValues(_ got: [Float], _ expected: [Double], _ what: String, tolerance: Double = 3e-6,
                          sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == expected.count)
    for i in 0..<min(got.count, expected.count) {
        #expect(abs(Double(got[i]) - expected[i]) <= tolerance * max(1, abs(expected[i])),
                "\(what)[\(i)]: \(got[i]) vs expected \(expected[i])", sourceLocation: sourceLocation)
    }
}

// MARK: Float64 reference rules

/// SGD: d = g + wd p; with momentum b = d (first step) or mu b + d; Nesterov d = d + mu b,
/// otherwise d = b; p = p - lr d.
private func referenceSGD(steps: Int, lr: Double, momentum mu: Double, nesterov: Bool, weightDecay wd: Double) -> [Double] {
    var p = start
    var buf: [Double]? = nil
    for s in 0..<steps {
        var d = (0..<p.count).map { grads[s][$0] + wd * p[$0] }
        if mu != 0 {
            let b = buf.map { old in (0..<p.count).map { mu * old[$0] + d[$0] } } ?? d
            buf = b
            d = nesterov ? (0..<p.count).map { d[$0] + mu * b[$0] } : b
        }
        for i in 0..<p.count { p[i] -= lr * d[i] }
    }
    return p
}

/// Adam / AdamW: (AdamW) p = p (1 - lr wd) or (Adam) g = g + wd p; m = b1 m + (1 - b1) g;
/// v = b2 v + (1 - b2) g^2; m^ = m / (1 - b1^t); v^ = v / (1 - b2^t); p = p - lr m^ / (sqrt(v^) + eps).
private func referenceAdam(steps: Int, lr: Double, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                           weightDecay wd: Double, decoupled: Bool) -> (p: [Double], m: [Double], v: [Double]) {
    var p = start
    var m = [Double](repeating: 0, count: p.count), v = m
    for s in 0..<steps {
        let t = Double(s + 1)
        for i in 0..<p.count {
            var g = grads[s][i]
            if decoupled { p[i] *= 1 - lr * wd } else { g += wd * p[i] }
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            let mHat = m[i] / (1 - pow(beta1, t))
            let vHat = v[i] / (1 - pow(beta2, t))
            p[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
    return (p, m, v)
}

/// RMSprop: g = g + wd p; v = a v + (1 - a) g^2; with momentum b = mu b + g / (sqrt(v) + eps),
/// p = p - lr b; otherwise p = p - lr g / (sqrt(v) + eps).
private func referenceRMSProp(steps: Int, lr: Double, alpha: Double = 0.99, eps: Double = 1e-8, momentum mu: Double,
                              weightDecay wd: Double) -> [Double] {
    var p = start
    var v = [Double](repeating: 0, count: p.count), b = v
    for s in 0..<steps {
        for i in 0..<p.count {
            let g = grads[s][i] + wd * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            let d = g / (v[i].squareRoot() + eps)
            if mu != 0 {
                b[i] = mu * b[i] + d
                p[i] -= lr * b[i]
            } else {
                p[i] -= lr * d
            }
        }
    }
    return p
}

@Suite struct OptimizerUpdateTests {
    @Test func sgdPlainByHand() {
        // p - 0.1 g: 0.5 - 0.01 = 0.49, -1 + 0.02 = -0.98, 2 - 0.03 = 1.97; then minus 0.1 g2.
        expectValues(runOptimizer(steps: 1) { SGD(parameters: $0, learningRate: 0.1) }, [0.49, -0.98, 1.97], "SGD step 1")
        expectValues(runOptimizer(steps: 2) { SGD(parameters: $0, learningRate: 0.1) }, [0.45, -0.98, 2.02], "SGD step 2")
        expectValues(runOptimizer(steps: 3) { SGD(parameters: $0, learningRate: 0.1) },
                     referenceSGD(steps: 3, lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0), "SGD")
    }

    @Test func sgdMomentum() {
        // By hand, element 0 with mu 0.9, lr 0.1: b1 = 0.1, p = 0.49; b2 = 0.09 + 0.4 = 0.49, p = 0.441.
        let two = runOptimizer(steps: 2) { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) }
        #expect(abs(Double(two[0]) - 0.441) < 1e-6)
        expectValues(runOptimizer(steps: 3) { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9) },
                     referenceSGD(steps: 3, lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0), "SGD momentum")
    }

    @Test func sgdNesterov() {
        // By hand, element 0: step 1 d = 0.1 + 0.9 * 0.1 = 0.19, p = 0.481;
        // step 2 b = 0.49, d = 0.4 + 0.9 * 0.49 = 0.841, p = 0.3969.
        let two = runOptimizer(steps: 2) { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }
        #expect(abs(Double(two[0]) - 0.3969) < 1e-6)
        expectValues(runOptimizer(steps: 3) { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) },
                     referenceSGD(steps: 3, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0), "SGD Nesterov")
    }

    @Test func sgdWeightDecay() {
        // Element 2, wd 0.5, lr 0.1: d = 0.3 + 0.5 * 2 = 1.3, p = 2 - 0.13 = 1.87.
        let one = runOptimizer(steps: 1) { SGD(parameters: $0, learningRate: 0.1, weightDecay: 0.5) }
        #expect(abs(Double(one[2]) - 1.87) < 1e-6)
        expectValues(runOptimizer(steps: 3) { SGD(parameters: $0, learningRate: 0.1, weightDecay: 0.5) },
                     referenceSGD(steps: 3, lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0.5), "SGD weight decay")
        expectValues(runOptimizer(steps: 3) { SGD(parameters: $0, learningRate: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.5) },
                     referenceSGD(steps: 3, lr: 0.1, momentum: 0.8, nesterov: true, weightDecay: 0.5), "SGD Nesterov weight decay")
    }

    @Test func adam() {
        // First step: m^ = g, v^ = g^2, so every element moves by lr * sign(g) (g != 0) —
        // element 1 of step 1: -1 + 0.01 = -0.99.
        let one = runOptimizer(steps: 1) { Adam(parameters: $0, learningRate: 0.01) }
        expectValues(one, [0.49, -0.99, 1.99], "Adam step 1")

        let p = makeParameter(start)
        let opt = Adam(parameters: [p], learningRate: 0.01)
        for s in 0..<3 { setGrad(p, grads[s]); opt.step() }
        let ref = referenceAdam(steps: 3, lr: 0.01, weightDecay: 0, decoupled: false)
        expectValues(p.values, ref.p, "Adam")
        // The moment estimates are exposed as PyTorch names them.
        let state = Dictionary(uniqueKeysWithValues: opt.state.map { ($0.name, $0.values) })
        #expect(Set(state.keys) == ["exp_avg.0", "exp_avg_sq.0"])
        expectValues(state["exp_avg.0"] ?? [], ref.m, "exp_avg", tolerance: 1e-6)
        expectValues(state["exp_avg_sq.0"] ?? [], ref.v, "exp_avg_sq", tolerance: 1e-6)

        // L2 weight decay (coupled, added to the gradient).
        expectValues(runOptimizer(steps: 3) { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1) },
                     referenceAdam(steps: 3, lr: 0.01, weightDecay: 0.1, decoupled: false).p, "Adam L2")
    }

    @Test func adamW() {
        // First step, element 2: p = 2 (1 - 0.01 * 0.1) = 1.998, then - 0.01 → 1.988.
        let one = runOptimizer(steps: 1) { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.1) }
        #expect(abs(Double(one[2]) - 1.988) < 1e-6)
        expectValues(runOptimizer(steps: 3) { AdamW(parameters: $0, learningRate: 0.01, weightDecay: 0.1) },
                     referenceAdam(steps: 3, lr: 0.01, weightDecay: 0.1, decoupled: true).p, "AdamW")
        // Default decay of AdamW is 0.01 as in PyTorch.
        expectValues(runOptimizer(steps: 3) { AdamW(parameters: $0, learningRate: 0.01) },
                     referenceAdam(steps: 3, lr: 0.01, weightDecay: 0.01, decoupled: true).p, "AdamW default decay")
        // Decoupled and coupled decay really differ.
        let coupled = referenceAdam(steps: 3, lr: 0.01, weightDecay: 0.1, decoupled: false).p
        let decoupled = referenceAdam(steps: 3, lr: 0.01, weightDecay: 0.1, decoupled: true).p
        #expect(abs(coupled[2] - decoupled[2]) > 1e-4)
    }

    @Test func rmsProp() {
        // First step: v = 0.01 g^2, sqrt(v) = 0.1 |g|, so the step is lr * 10 * sign(g) = 0.1 sign(g)
        // (element 1: -1 + 0.1 = -0.9).
        let one = runOptimizer(steps: 1) { RMSProp(parameters: $0, learningRate: 0.01) }
        expectValues(one, [0.4, -0.9, 1.9], "RMSProp step 1")
        expectValues(runOptimizer(steps: 3) { RMSProp(parameters: $0, learningRate: 0.01) },
                     referenceRMSProp(steps: 3, lr: 0.01, momentum: 0, weightDecay: 0), "RMSProp")
        expectValues(runOptimizer(steps: 3) { RMSProp(parameters: $0, learningRate: 0.01, alpha: 0.9, weightDecay: 0.2) },
                     referenceRMSProp(steps: 3, lr: 0.01, alpha: 0.9, momentum: 0, weightDecay: 0.2), "RMSProp weight decay")
    }

    @Test func rmsPropMomentum() {
        expectValues(runOptimizer(steps: 3) { RMSProp(parameters: $0, learningRate: 0.01, momentum: 0.9) },
                     referenceRMSProp(steps: 3, lr: 0.01, momentum: 0.9, weightDecay: 0), "RMSProp momentum")
        // Momentum changes the result after the first step.
        let plain = referenceRMSProp(steps: 2, lr: 0.01, momentum: 0, weightDecay: 0)
        let heavy = referenceRMSProp(steps: 2, lr: 0.01, momentum: 0.9, weightDecay: 0)
        #expect(abs(plain[1] - heavy[1]) > 1e-3)
    }

    /// Learning rate changes between steps take effect at the next step.
    @Test func learningRateIsReadEachStep() {
        let p = makeParameter(start)
        let opt = SGD(parameters: [p], learningRate: 0.1)
        setGrad(p, grads[0]); opt.step()
        opt.learningRate = 1
        setGrad(p, grads[1]); opt.step()
        // Element 0: 0.5 - 0.1 * 0.1 - 1 * 0.4 = 0.09.
        #expect(abs(Double(p.values[0]) - 0.09) < 1e-6)
    }
}

@Suite struct OptimizerStateTests {
    /// Two steps, save, restore into a fresh optimizer on a copy of the parameters, a third step
    /// on both: identical values. A fresh optimizer without the state gives different values.
    @Test(arguments: ["sgd-momentum", "sgd-nesterov", "adam", "adamw", "rmsprop", "rmsprop-momentum"])
    func saveLoadRoundTrip(kind: String) throws {
        func make(_ ps: [Parameter]) -> any Optimizer {
            switch kind {
            case "sgd-momentum": return SGD(parameters: ps, learningRate: 0.1, momentum: 0.9)
            case "sgd-nesterov": return SGD(parameters: ps, learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01)
            case "adam": return Adam(parameters: ps, learningRate: 0.01)
            case "adamw": return AdamW(parameters: ps, learningRate: 0.01, weightDecay: 0.1)
            case "rmsprop": return RMSProp(parameters: ps, learningRate: 0.01)
            default: return RMSProp(parameters: ps, learningRate: 0.01, momentum: 0.9)
            }
        }
        let secondStart: [Double] = [0.25, -0.75]
        let secondGrads: [[Double]] = [[0.3, 0.1], [-0.2, 0.6], [0.5, -0.4]]
        let a1 = makeParameter(start, name: "a"), a2 = makeParameter(secondStart, name: "b")
        let optA = make([a1, a2])
        for s in 0..<2 {
            setGrad(a1, grads[s]); setGrad(a2, secondGrads[s]); optA.step()
        }
        let saved = Dictionary(uniqueKeysWithValues: optA.state.map { ($0.name, $0.values) })
        #expect(!saved.isEmpty)

        let b1 = makeParameter(a1.values.map(Double.init), name: "a"), b2 = makeParameter(a2.values.map(Double.init), name: "b")
        let optB = make([b1, b2])
        try optB.load(state: saved, stepCount: optA.stepCount)
        #expect(optB.stepCount == 2)
        let c1 = makeParameter(a1.values.map(Double.init), name: "a"), c2 = makeParameter(a2.values.map(Double.init), name: "b")
        let optC = make([c1, c2])    // not restored

        for (p1, p2, opt) in [(a1, a2, optA), (b1, b2, optB), (c1, c2, optC)] {
            setGrad(p1, grads[2]); setGrad(p2, secondGrads[2]); opt.step()
        }
        #expect(a1.values == b1.values, "\(kind): first parameter after restore")
        #expect(a2.values == b2.values, "\(kind): second parameter after restore")
        #expect(optB.stepCount == 3)
        #expect(a1.values != c1.values, "\(kind): state should matter for the third step")
        let restored = Dictionary(uniqueKeysWithValues: optB.state.map { ($0.name, $0.values) })
        let original = Dictionary(uniqueKeysWithValues: optA.state.map { ($0.name, $0.values) })
        #expect(restored == original)
    }

    @Test func loadRejectsMissingOrMisSizedState() {
        let p = makeParameter(start)
        let opt = Adam(parameters: [p], learningRate: 0.01)
        let good: [String: [Float]] = ["exp_avg.0": [0, 0, 0], "exp_avg_sq.0": [0, 0, 0]]
        #expect(throws: Never.self) { try opt.load(state: good, stepCount: 4) }
        #expect(opt.stepCount == 4)

        do {
            try opt.load(state: ["exp_avg.0": [0, 0, 0]], stepCount: 1)
            Issue.record("missing exp_avg_sq.0 was accepted")
        } catch let error as OptimizerError {
            guard case .missingState(let name) = error else { Issue.record("wrong error \(error)"); return }
            #expect(name == "exp_avg_sq.0")
            #expect(error.description.contains("exp_avg_sq.0") && !error.description.contains("\n"))
        } catch { Issue.record("unexpected error \(error)") }

        do {
            try opt.load(state: ["exp_avg.0": [0, 0], "exp_avg_sq.0": [0, 0, 0]], stepCount: 1)
            Issue.record("two values for a three-element parameter were accepted")
        } catch let error as OptimizerError {
            guard case .sizeMismatch(let name, let expected, let got) = error else { Issue.record("wrong error \(error)"); return }
            #expect(name == "exp_avg.0" && expected == 3 && got == 2)
            #expect(error.description.contains("exp_avg.0") && !error.description.contains("\n"))
        } catch { Issue.record("unexpected error \(error)") }
    }
}

@Suite struct GradientClippingTests {
    /// Gradients [3, 4] and [12] have global norm 13.
    private func params() -> [Parameter] {
        let a = Parameter(name: "a", shape: [2]), b = Parameter(name: "b", shape: [1])
        a.grad[0] = 3; a.grad[1] = 4; b.grad[0] = 12
        return [a, b]
    }

    @Test func scalesWhenAbove() {
        let ps = params()
        let norm = clipGradientNorm(ps, maxNorm: 6.5)
        #expect(abs(norm - 13) < 1e-5)
        // Scale 6.5 / 13 = 0.5 (the 1e-6 guard changes it by 4e-8 relative).
        expectValues(ps[0].gradient, [1.5, 2], "clipped a", tolerance: 1e-6)
        expectValues(ps[1].gradient, [6], "clipped b", tolerance: 1e-6)
        var sq = 0.0
        for p in ps { for g in p.gradient { sq += Double(g) * Double(g) } }
        #expect(abs(sq.squareRoot() - 6.5) < 1e-5)
    }

    @Test func unchangedWhenBelow() {
        let ps = params()
        let norm = clipGradientNorm(ps, maxNorm: 20)
        #expect(abs(norm - 13) < 1e-5)
        #expect(ps[0].gradient == [3, 4])
        #expect(ps[1].gradient == [12])
        // maxNorm 0 disables clipping but still reports the norm.
        #expect(abs(clipGradientNorm(ps, maxNorm: 0) - 13) < 1e-5)
        #expect(ps[1].gradient == [12])
    }
}

@Suite struct LearningRateScheduleTests {
    private func close(_ a: Float, _ b: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(Double(a) - b) < 1e-6 * max(1, abs(b)), "\(a) vs \(b)", sourceLocation: sourceLocation)
    }

    @Test func stepDecay() {
        let s = StepDecay(base: 0.1, every: 3, gamma: 0.5)
        close(s.rate(at: 0), 0.1)
        close(s.rate(at: 2), 0.1)
        close(s.rate(at: 3), 0.05)
        close(s.rate(at: 5), 0.05)
        close(s.rate(at: 6), 0.025)
        close(s.rate(at: 10), 0.0125)
    }

    @Test func cosineDecay() {
        let s = CosineDecay(base: 1, totalSteps: 10, minimum: 0.1)
        close(s.rate(at: 0), 1)
        close(s.rate(at: 5), 0.55)                        // half way: the mean of base and minimum
        close(s.rate(at: 3), 0.1 + 0.45 * (1 + 0.587_785_252_292_473_1))   // cos(0.3 pi) = 0.5878
        close(s.rate(at: 10), 0.1)
        close(s.rate(at: 25), 0.1)                        // stays at the minimum
        close(CosineDecay(base: 2, totalSteps: 4).rate(at: 1), 1 + 0.707_106_781_186_547_5)   // 2 * (1 + cos(pi/4)) / 2
    }

    @Test func linearWarmup() {
        let w = LinearWarmup(warmupSteps: 4, then: ConstantRate(0.2))
        close(w.rate(at: 0), 0.05)
        close(w.rate(at: 1), 0.1)
        close(w.rate(at: 3), 0.2)
        close(w.rate(at: 4), 0.2)
        close(w.rate(at: 100), 0.2)
        // The inner schedule starts at step 0 after warm-up.
        let d = LinearWarmup(warmupSteps: 2, then: StepDecay(base: 0.1, every: 2, gamma: 0.5))
        close(d.rate(at: 0), 0.05)
        close(d.rate(at: 1), 0.1)
        close(d.rate(at: 2), 0.1)
        close(d.rate(at: 3), 0.1)
        close(d.rate(at: 4), 0.05)
        close(d.rate(at: 6), 0.025)
    }
}
