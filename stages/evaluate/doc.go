// Package evaluate is the `evaluate` stage kind: it scores a predictions
// table against the labels of a samples table with package metrics.
//
// Contracts:
//   - Inputs: predictions, samples (or images), attributes, and optionally
//     categories. Predictions are joined to samples by image key. When the
//     keys match row for row (duplicates included, as in a resampled
//     training set) the rows are used as they are; otherwise each sample
//     is looked up by key, and a sample without a prediction is an error,
//     as is a duplicated key, which cannot be aligned. Predictions of
//     images absent from the samples are left out, with a warning.
//   - Output `metrics` (kind metrics) is long format: k, scope ("all",
//     "type:NAME", "category"), average ("micro", "macro", "pooled",
//     "global", ""), metric ("recall", "precision", "f1", "map", "auc",
//     "accuracy"), value and note. Threshold-free rows have k = 0. Every
//     macro row's note says how many attributes it averages over, and so
//     does the schema metadata (stitch.macro_attributes).
//   - Output `per_attribute` (kind table) has one row per k and attribute:
//     name, type, positives, predicted, TP, FP, recall, precision, F1, and
//     AP and AUC (null where undefined).
//   - Category accuracy needs category scores in the predictions, which
//     the predictions table does not carry yet; until it does the
//     `categories` input is accepted and no category rows are written.
package evaluate
