import RecurrentCore

/// The tensors in which two safetensors files differ, bit for bit (names, shapes and every
/// value's bit pattern, so -0 differs from +0 and a NaN equals the same NaN); empty when the
/// files hold the same tensors. A tensor only one file has is listed too.
public func differingTensors(_ a: String, _ b: String) throws -> [String] {
    let x = try SafeTensors.read(path: a), y = try SafeTensors.read(path: b)
    var byName: [String: NamedTensor] = [:]
    for t in y.tensors { byName[t.name] = t }
    var differ = Set(y.tensors.map(\.name)).subtracting(x.tensors.map(\.name))
    for p in x.tensors {
        guard let q = byName[p.name], p.shape == q.shape, p.values.map(\.bitPattern) == q.values.map(\.bitPattern) else {
            differ.insert(p.name)
            continue
        }
    }
    return differ.sorted()
}
