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
//     "accuracy", "attributes"), value and note. Threshold-free rows have
//     k = 0. Every macro row's note says how many attributes it averages
//     over, and so does the schema metadata (stitch.macro_attributes).
//     Each type has a row (k = 0, metric "attributes") with its number of
//     attributes: its recall at a k at least that ranks them all and is 1
//     by construction, which tabulate marks.
//   - Output `per_attribute` (kind table) has one row per k and attribute:
//     name, type, positives, predicted, TP, FP, recall, precision, F1, and
//     AP and AUC (null where undefined).
//   - Per-type recall (and the pooled row) is left out when no attribute
//     has a type (all type 0, as in a CSV dataset without an attributes
//     table).
//   - Category accuracy (scope "category", metric "accuracy", one row per
//     k of the k parameter and at 1, 3 and 5 whatever k says, so that
//     tabulate always has its top-3 and top-5 columns; the note counting
//     hits and images with a category) is written when the predictions
//     carry category scores (a model with a category head) and the
//     samples have categories; images without a category are left out of
//     it. Scores are matched to the samples' categories
//     by category id, not by column. With the optional `categories`
//     input, the predictions must score exactly its categories (same ids,
//     same names), or the stage fails saying which id differs; a sample
//     whose category the predictions do not score is an error too.
//     Otherwise the log says why there is no category accuracy.
//   - Errors do not name the stage: the engine's report of a failed stage
//     does.
package evaluate
