/// A batch the training engine counts for its throughput figure.
public protocol TrainingBatch {
    /// Items in the batch (tokens, frames or examples), for `items/s`.
    var itemCount: Int { get }
}

/// A model the training engine can train: the application's side of one optimizer step, its
/// checkpoints, and any state carried from batch to batch.
///
/// The engine calls `trainStep`, then clips the gradients of `parameters`, sets the learning
/// rate and steps the optimizer. Data parallelism within a process (batch shards on threads,
/// gradients summed into `parameters`) is the model's own business; across processes the engine
/// tells the model its part (`distribute(over:)`) and sums the gradients over the ranks.
public protocol TrainableModel: AnyObject {
    /// What one step trains on.
    associatedtype Batch: TrainingBatch

    /// The parameters the optimizer updates, in a fixed order (the order keys the optimizer
    /// state saved for resuming).
    var parameters: [Parameter] { get }

    /// One forward and backward pass over `batch`. Afterwards every parameter's `grad` holds
    /// d(mean loss)/d(parameter) of this batch alone.
    /// - Parameters:
    ///   - batch: the batch, in the application's shapes (e.g. `[batch, time]` token ids).
    ///   - seed: seeds this step's randomness (dropout masks, sampling); the engine derives it
    ///     from the run's seed and the step number, so a resumed run draws the same values.
    /// - Returns: the batch's mean loss (NaN or infinite stops the run).
    func trainStep(on batch: Batch, seed: UInt64) -> Double

    /// Writes the model's checkpoint (its format tag, configuration, tensors and metadata, plus
    /// `extra` metadata such as the step) atomically to `path`; see `ModelCheckpoint`.
    func writeCheckpoint(to path: String, extra: [String: String]) throws

    /// Loads the weights of a checkpoint written by `writeCheckpoint` for the same
    /// configuration; a different configuration or tensor set is an error naming the file.
    func loadCheckpoint(from path: String) throws

    /// Loads the weights of a checkpoint to start a new run from (`--init-from`): the same
    /// architecture and vocabulary or classes, while what belongs to the new data (feature
    /// statistics) may differ. The default is `loadCheckpoint`.
    func initializeWeights(from path: String) throws

    /// State carried from one batch to the next (the hidden state of truncated backpropagation
    /// through time), as named tensors for the resume file; empty when there is none.
    var carriedState: [NamedTensor] { get }

    /// Restores `carriedState` from the resume file (an empty dictionary: none was saved).
    func restoreCarriedState(_ tensors: [String: NamedTensor]) throws

    /// Makes every following `trainStep` compute only this rank's shards of the batch
    /// (`ProcessGroup.shards(count:threads:)`, the global shard index seeding each shard's
    /// randomness), with gradients scaled by each shard's share of the whole batch, and return
    /// the whole batch's mean loss (shard loss sums gathered over `group` and added in shard
    /// order). `carriedState` then gathers every rank's rows (a collective: all ranks call it),
    /// and `restoreCarriedState` takes this rank's rows of a whole-batch state.
    /// - Throws: `TrainingSetupError` when the model cannot train across processes.
    func distribute(over group: ProcessGroup) throws
}

extension TrainableModel {
    /// The strict `loadCheckpoint`.
    public func initializeWeights(from path: String) throws { try loadCheckpoint(from: path) }
    /// No carried state.
    public var carriedState: [NamedTensor] { [] }
    /// Nothing to restore.
    public func restoreCarriedState(_ tensors: [String: NamedTensor]) throws {}
    /// One process only.
    public func distribute(over group: ProcessGroup) throws {
        if group.isDistributed {
            throw TrainingSetupError.invalid(option: "mpirun", reason: "this model trains in one process only")
        }
    }
}
