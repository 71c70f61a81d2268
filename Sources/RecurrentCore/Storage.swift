#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A growable, 64-byte-aligned `Float` buffer with reference semantics.
///
/// Layers keep their activations and workspaces in these so that the time loop never
/// allocates: `reserve(_:)` grows the storage only when a larger batch or sequence arrives and
/// keeps it for every later call.
public final class FloatBuffer: @unchecked Sendable {
    /// Start of the storage; valid for `capacity` elements.
    public private(set) var pointer: UnsafeMutablePointer<Float>
    /// Number of elements the storage holds.
    public private(set) var capacity: Int

    /// Creates a zero-filled buffer of `count` elements.
    public init(count: Int = 0) {
        capacity = max(count, 1)
        pointer = FloatBuffer.allocate(capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    deinit { free(pointer) }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, n * MemoryLayout<Float>.stride)
        guard status == 0, let raw else { fatalError("out of memory allocating \(n) floats") }
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    /// Ensures room for `count` elements. Growing discards the old contents (they are
    /// scratch data) and zero-fills the new storage.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity {
            free(pointer)
            capacity = count
            pointer = FloatBuffer.allocate(count)
            pointer.initialize(repeating: 0, count: count)
        }
        return pointer
    }

    /// Sets the first `count` elements to zero.
    public func zero(_ count: Int) {
        precondition(count <= capacity)
        pointer.update(repeating: 0, count: count)
    }

    /// Copies the first `count` elements into an array.
    public func array(_ count: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}

/// A growable buffer of integers (token ids, lengths) with a stable pointer between `reserve`
/// calls that do not grow it; grown storage is zero-filled.
public final class GrowableBuffer<Element: Numeric> {
    /// Start of the storage.
    public private(set) var pointer: UnsafeMutablePointer<Element>
    private var capacity: Int

    public init() { capacity = 1; pointer = .allocate(capacity: 1); pointer.initialize(to: 0) }
    deinit { pointer.deallocate() }

    /// Ensures room for `n` elements and returns the storage.
    public func reserve(_ n: Int) -> UnsafeMutablePointer<Element> {
        if n > capacity {
            pointer.deallocate()
            capacity = n
            pointer = .allocate(capacity: n)
            pointer.initialize(repeating: 0, count: n)
        }
        return pointer
    }
}

/// A trainable tensor: values, the gradient accumulated by backward passes, a name that
/// follows PyTorch's `state_dict` (e.g. `weight_ih_l0`), and a row-major shape.
///
/// Replicas made with `init(sharing:)` read the same values (the primary's storage) but own a
/// separate gradient, which is how data-parallel training runs several batch shards at once.
public final class Parameter: @unchecked Sendable {
    /// Local name, PyTorch style (`weight`, `bias`, `weight_hh_l1_reverse`, ...).
    public let name: String
    /// Row-major shape, e.g. `[4 * hidden, input]`.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    private let valueStorage: FloatBuffer
    private let gradStorage: FloatBuffer

    /// Values `[count]`, row-major in `shape`.
    @inline(__always) public var value: UnsafeMutablePointer<Float> { valueStorage.pointer }
    /// Gradient `[count]`, same layout as `value`.
    @inline(__always) public var grad: UnsafeMutablePointer<Float> { gradStorage.pointer }

    /// Creates a zero-valued parameter.
    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        self.count = shape.reduce(1, *)
        valueStorage = FloatBuffer(count: count)
        gradStorage = FloatBuffer(count: count)
    }

    /// A replica that shares `other`'s values and has its own zeroed gradient.
    public init(sharing other: Parameter) {
        name = other.name
        shape = other.shape
        count = other.count
        valueStorage = other.valueStorage
        gradStorage = FloatBuffer(count: other.count)
    }

    /// Values as an array (copy).
    public var values: [Float] {
        get { Array(UnsafeBufferPointer(start: value, count: count)) }
        set {
            precondition(newValue.count == count, "\(name): expected \(count) values, got \(newValue.count)")
            newValue.withUnsafeBufferPointer { value.update(from: $0.baseAddress!, count: count) }
        }
    }

    /// Gradient as an array (copy).
    public var gradient: [Float] { Array(UnsafeBufferPointer(start: grad, count: count)) }

    /// Sets the gradient to zero.
    public func zeroGrad() { grad.update(repeating: 0, count: count) }

    /// Fills the values with uniform samples in [-bound, bound).
    public func fillUniform(bound: Float, rng: inout SeededRandom) {
        for i in 0..<count { value[i] = rng.uniform(-bound, bound) }
    }
}

/// Anything that owns parameters: layers, stacks, whole models.
public protocol ParameterContainer: AnyObject {
    /// Parameters with names relative to this container, in a fixed order.
    var namedParameters: [(name: String, parameter: Parameter)] { get }
}

extension ParameterContainer {
    /// Parameters in `namedParameters` order.
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }
    /// Zeroes every gradient.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
    /// Total number of scalar parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// A plain batch-first tensor value for public APIs: `shape` e.g. `[batch, time, features]`,
/// `values` row-major.
public struct Tensor: Sendable, Equatable {
    /// Row-major shape.
    public var shape: [Int]
    /// Row-major values, `shape.reduce(1, *)` of them.
    public var values: [Float]

    /// Creates a tensor; `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }

    /// A zero tensor of the given shape.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.values = [Float](repeating: 0, count: shape.reduce(1, *))
    }
}

/// A growable, 64-byte-aligned buffer of bfloat16 values (stored as `UInt16`, the upper half of
/// the fp32 bits), for the operands of the bf16 products (see `Precision`). Like `FloatBuffer`,
/// `reserve(_:)` grows it only when more room is needed and grown storage is zero-filled.
public final class BF16Buffer: @unchecked Sendable {
    /// Start of the storage; valid for `capacity` elements.
    public private(set) var pointer: UnsafeMutablePointer<UInt16>
    /// Number of elements the storage holds.
    public private(set) var capacity: Int

    /// Creates a zero-filled buffer of `count` elements.
    public init(count: Int = 0) {
        capacity = max(count, 1)
        pointer = BF16Buffer.allocate(capacity)
    }

    deinit { free(pointer) }

    private static func allocate(_ n: Int) -> UnsafeMutablePointer<UInt16> {
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, n * MemoryLayout<UInt16>.stride)
        guard status == 0, let raw else { fatalError("out of memory allocating \(n) bf16 values") }
        let p = raw.bindMemory(to: UInt16.self, capacity: n)
        p.initialize(repeating: 0, count: n)
        return p
    }

    /// Ensures room for `count` elements (old contents are discarded when it grows).
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<UInt16> {
        if count > capacity {
            free(pointer)
            capacity = count
            pointer = BF16Buffer.allocate(count)
        }
        return pointer
    }
}
