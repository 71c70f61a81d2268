import RecurrentCore

/// A tool's defaults for the shared options it was not given.
public struct TrainingDefaults: Sendable {
    /// The tool's name: new run folders are `runsRoot/<tool>/<YYYYMMDD-HHMMSS>[-N]`.
    public var tool: String
    /// Where new run folders go.
    public var runsRoot = "runs"
    public var valFraction: Double = 0.1
    /// `--test-fraction` of the tools that split a test part off `--data`.
    public var testFraction: Double = 0.1
    public var seed: UInt64 = 0
    public var cell: CellKind = .lstm
    public var layers = 2
    public var hidden = 256
    public var dropout: Float = 0
    public var optimizer: OptimizerKind = .adam
    /// nil = `OptimizerKind.defaultLearningRate`.
    public var learningRate: Float?
    public var lrSchedule: LearningRateScheduleKind = .constant
    public var lrFloor = 0.1
    public var lrDecayFactor: Float = 0.1
    public var warmup = 0
    public var clip: Float = 5
    public var batch = 32
    /// Used when none of `--steps`, `--epochs`, `--time-budget` is given.
    public var epochs: Int? = 1
    public var evalEvery = 250

    /// Defaults of `tool`.
    public init(tool: String) { self.tool = tool }
}
