/// Everything an application hands the training engine: its model, its batches, how to
/// evaluate, and what of its own configuration must match when a run is resumed.
public struct TrainingTask<Model: TrainableModel> {
    /// The tool's name, starting progress lines and messages (e.g. `lm-train`).
    public var label: String
    /// The model being trained (changed in place).
    public var model: Model
    /// The training batches.
    public var data: any BatchSource<Model.Batch>
    /// Held-out evaluation; nil = none (every evaluation point then counts as the best).
    public var evaluation: TrainingEvaluation?
    /// The application's settings that must not change across `--resume`, by configuration
    /// field name (see `TrainingFingerprint.fields(of:)`).
    public var fingerprint: [String: String]
    /// What `TrainingBatch.itemCount` counts, for progress lines, `log.csv` and the summary
    /// (`tokens`, `utterances`, `clips`).
    public var itemName: String
    /// The data's sizes for the line printed at the start (e.g. `9,000 training and 1,000
    /// validation tokens`); empty = none.
    public var dataDescription: String
    /// Called after every step with the step number; a returned text is printed as a message
    /// (e.g. a generated sample). Must not change the training state.
    public var afterStep: ((Int) -> String?)?

    /// A task; see the properties.
    public init(label: String, model: Model, data: any BatchSource<Model.Batch>, evaluation: TrainingEvaluation?,
                fingerprint: [String: String] = [:], itemName: String = "items", dataDescription: String = "",
                afterStep: ((Int) -> String?)? = nil) {
        self.label = label; self.model = model; self.data = data; self.evaluation = evaluation
        self.fingerprint = fingerprint; self.itemName = itemName; self.dataDescription = dataDescription; self.afterStep = afterStep
    }
}
