import Foundation

/// A checkpoint format: a name and a version, written as the `format` metadata tag
/// `name/version` (e.g. `rnn-suite/lm/1`).
public struct CheckpointFormat: Sendable, Equatable, CustomStringConvertible {
    /// E.g. `rnn-suite/lm`.
    public var name: String
    /// The layout's version; a reader accepts only its own.
    public var version: Int

    /// A format tag.
    public init(name: String, version: Int) {
        self.name = name
        self.version = version
    }

    /// `name/version`.
    public var tag: String { "\(name)/\(version)" }
    /// The tag.
    public var description: String { tag }
}

/// One application checkpoint: a safetensors file whose `__metadata__` holds `format` (the
/// tag), the `Configuration` as a JSON object with sorted keys under `configurationKey`
/// (`config`; layouts that predate the wrapper keep their own key, e.g. `model` in
/// `rnn-suite/speech/1` and `rnn-suite/frames/1`) and any further application keys (a
/// vocabulary, statistics, the step), and whose tensors are the model's state dict (PyTorch
/// names and shapes).
///
/// Reading checks the tag, decodes the configuration and, through `tensors(matching:)`, checks
/// the tensor set strictly: a missing, unexpected or wrongly shaped tensor is one error naming
/// the tensor and the file.
public struct ModelCheckpoint<Configuration: Codable>: @unchecked Sendable {
    /// The format tag.
    public var format: CheckpointFormat
    /// The model's configuration (the metadata under `configurationKey`).
    public var configuration: Configuration
    /// The metadata key of the configuration.
    public var configurationKey: String
    /// The tensors, in file order.
    public var tensors: [NamedTensor]
    /// Metadata besides `format` and the configuration.
    public var metadata: [String: String]

    /// A checkpoint to write.
    /// - Parameter configurationKey: where the configuration is stored (`config` unless the
    ///   format's layout says otherwise).
    public init(format: CheckpointFormat, configuration: Configuration, configurationKey: String = "config",
                tensors: [NamedTensor], metadata: [String: String] = [:]) {
        self.format = format
        self.configuration = configuration
        self.configurationKey = configurationKey
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The `config` JSON text of a configuration (sorted keys, compact).
    public static func configurationJSON(_ configuration: Configuration) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(configuration), as: UTF8.self)
    }

    /// Writes the file atomically (temporary file, fsync, rename).
    public func write(to path: String) throws {
        var meta = metadata
        meta["format"] = format.tag
        meta[configurationKey] = try Self.configurationJSON(configuration)
        try SafeTensors.write(tensors, metadata: meta, to: path)
    }

    /// Reads a checkpoint of `format` whose configuration is under `configurationKey`.
    /// - Throws: `ModelLoadError.badMetadata` naming the file when the tag is absent or another
    ///   format's, or the configuration is missing or does not decode; `CheckpointError` for a
    ///   file that is not valid safetensors.
    public static func read(path: String, format: CheckpointFormat, configurationKey: String = "config") throws -> ModelCheckpoint {
        let archive = try SafeTensors.read(path: path)
        var meta = archive.metadata
        guard let tag = meta["format"] else {
            throw ModelLoadError.badMetadata(path, "not a \(format.name) checkpoint (no 'format' in the metadata)")
        }
        guard tag == format.tag else {
            throw ModelLoadError.badMetadata(path, "checkpoint format is '\(tag)', expected '\(format.tag)'")
        }
        let key = configurationKey
        guard let text = meta[key] else { throw ModelLoadError.badMetadata(path, "metadata '\(key)' is missing") }
        let configuration: Configuration
        do {
            configuration = try JSONDecoder().decode(Configuration.self, from: Data(text.utf8))
        } catch let error as DecodingError {
            throw ModelLoadError.badMetadata(path, "metadata '\(key)' is not a valid configuration: \(Self.describe(error))")
        }
        try Self.requireFinite(archive.tensors, source: path)
        meta["format"] = nil
        meta[key] = nil
        return ModelCheckpoint(format: format, configuration: configuration, configurationKey: key, tensors: archive.tensors, metadata: meta)
    }

    /// The tensors by name, checked against the expected set: every expected name present
    /// with its shape, nothing else.
    /// - Parameters:
    ///   - expected: `(name, shape)` of every tensor the model needs.
    ///   - source: the file, for the error.
    /// - Throws: `ModelLoadError.missingTensor`, `.unexpectedTensor` or `.shapeMismatch`
    ///   naming the file and the first offending tensor.
    public func tensors(matching expected: [(name: String, shape: [Int])], source: String) throws -> [String: NamedTensor] {
        var byName: [String: NamedTensor] = [:]
        for t in tensors { byName[t.name] = t }
        for (name, shape) in expected {
            guard let t = byName[name] else { throw ModelLoadError.missingTensor(source, name) }
            guard t.shape == shape else { throw ModelLoadError.shapeMismatch(source, name, expected: shape, got: t.shape) }
        }
        let names = Set(expected.map(\.name))
        if let extra = tensors.map(\.name).first(where: { !names.contains($0) }) {
            throw ModelLoadError.unexpectedTensor(source, extra)
        }
        return byName
    }

    /// Checks that every value of `tensors` is finite.
    /// - Throws: `ModelLoadError.nonFiniteValue` naming `source`, the first tensor holding NaN
    ///   or an infinity, and the element.
    public static func requireFinite(_ tensors: [NamedTensor], source: String) throws {
        try requireFiniteTensors(tensors, source: source)
    }

    /// One line for a decoding error: the key path and what is wrong.
    static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? c.debugDescription : "'\(p)': \(c.debugDescription)"
        }
        switch error {
        case .keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): return path(c)
        @unknown default: return "\(error)"
        }
    }
}

/// Checks that every value of `tensors` is finite.
/// - Throws: `ModelLoadError.nonFiniteValue` naming `source`, the first tensor holding NaN or an
///   infinity, and the element.
func requireFiniteTensors(_ tensors: [NamedTensor], source: String) throws {
    for t in tensors {
        if let i = t.values.firstIndex(where: { !$0.isFinite }) {
            throw ModelLoadError.nonFiniteValue(source, t.name, index: i, value: t.values[i])
        }
    }
}
