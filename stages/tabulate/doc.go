// Package tabulate is the `tabulate` stage kind: it puts the metrics of
// several experiments side by side and writes a report people can read.
//
// Contracts:
//   - Input `metrics` takes any number of evaluate outputs; each is one
//     experiment, named after the stage that produced it, with the whole
//     tokens every name shares cut off ("eval[backbone=vgg16]" and
//     "eval[backbone=resnet18]" become "backbone=vgg16" and
//     "backbone=resnet18"; "train[0.6]" becomes "0.6"). The optional
//     list inputs `history` (training histories) and `per_attribute`
//     (evaluate's per-attribute tables) feed the report's charts; optional
//     `attributes` helps recognise DeepFashion coarse.
//   - Output `table` (kind table) has one row per experiment at the chosen
//     k: recall, precision and F1 micro and macro, "all" recall pooled over
//     types and global, the per-type recall, category top-3 and top-5
//     accuracy (at 3 and 5 whatever k is, as papers give them; shown when
//     an experiment has them or reference rows are shown), and micro and
//     macro mAP and AUC; published reference rows follow, with source
//     "published".
//   - Outputs `markdown`, `csv` and `html` (kind report) hold the same
//     table; the HTML report is one self-contained file (inline CSS and
//     SVG, no script, nothing fetched when viewed) with per-type recall
//     bars, training curves, per-attribute recall against frequency and
//     the reference rows.
//   - Reference rows are the published DeepFashion coarse top-3 and top-5
//     "all" recall and category top-3 and top-5 accuracy (FashionNet,
//     Wang et al. 2018, Liu and Lu 2018). They appear when k is 3 or 5 and
//     `reference` is deepfashion, or auto and the data looks like
//     DeepFashion coarse (1000 attributes of types 1 to 5), and they are
//     always labelled as published figures, not computed by stitch.
//   - As a pipeline.Reporter it prints the table to stdout after `stitch
//     run` and writes report.html, table.md and table.csv into the
//     stage's export folder.
package tabulate
