// Package resample implements the resample stage kind: it rebalances a
// training samples table and derives per-attribute loss weights.
//
// Let pos(a) be the number of rows labelled 1 for attribute a, and T the
// `quantile` quantile (nearest rank, rounding down) of pos over the
// attributes with pos(a) > 0. Attribute a is a minority attribute when
// 0 < pos(a) <= T and a majority attribute when pos(a) > T. A row is a
// minority row when it is labelled 1 for at least one minority attribute;
// every other row (including a row with no positive at all) carries only
// majority attributes.
//
// Modes:
//
//   - minority (the notebook's alternative D): k = round(replace_fraction x
//     the number of majority-only rows). k majority-only rows, chosen
//     uniformly without replacement, are each replaced in place by a row
//     drawn uniformly with replacement from the minority rows. The row
//     count does not change. With no minority row the table is unchanged.
//   - oversample: for each attribute a in index order with 0 < pos(a) < T,
//     T - pos(a) rows drawn with replacement from the rows positive for a
//     are appended (counts taken on the input table).
//   - undersample: for each majority attribute a, in decreasing pos(a)
//     order (ties: lower index first), majority-only rows positive for a
//     are removed at random while the current count of a exceeds T.
//
// Outputs: samples (the resampled table, a samples or images table as the
// input was), frequencies (index, name, positives, known and frequency,
// before and after) and weights (index, name, pos_weight: the number of
// absent over present labels among known labels after resampling,
// clipped to [1/max_weight, max_weight]; max_weight when an attribute has
// no positive). The random generator is seeded by the seed parameter or,
// when it is 0, by the stage's seed: the same seed gives the same bytes.
package resample
