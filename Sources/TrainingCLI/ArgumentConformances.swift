import ArgumentParser
import RecurrentCore

/// `--cell lstm|gru|rnn_tanh|rnn_relu` (also `rnn`, `tanh`, `relu`).
extension CellKind: ExpressibleByArgument {}
/// `--optimizer sgd|adam|adamw|rmsprop`.
extension OptimizerKind: ExpressibleByArgument {}
/// `--precision fp32|bf16`.
extension Precision: ExpressibleByArgument {}
/// `--lr-schedule constant|cosine|step`.
extension LearningRateScheduleKind: ExpressibleByArgument {}
/// `--pooling last|mean|max` (the sequence classifiers of speech-classify and frame-classify).
extension SequenceClassifierConfig.Pooling: ExpressibleByArgument {}
