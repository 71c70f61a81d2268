// Seq2Seq module.
