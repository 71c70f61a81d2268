// Seq2Seq module: the data side of sequence-to-sequence translation.
//
// - `ToyPairGenerator` makes (source, target) pairs for the toy tasks in `ToyTask`.
// - `PairTSV` reads and writes `source<TAB>target` files; `PairSplitter` splits pairs into
//   train / validation / test without the same source landing in two parts.
// - `TokenLevel.tokenize` and the `Vocabulary` extension (the table itself is RecurrentCore's)
//   turn text into token ids and back.
// - `Seq2SeqBatcher` makes padded batches for an encoder-decoder model.
// - `SequenceMetrics` and `BLEU` score decoded outputs.
// - `Seq2SeqTraining` hands the training engine its task: `Seq2SeqLearner` (the model as a
//   `TrainableModel`), `Seq2SeqBatchSource` and the validation metrics.
