// Package predict is the `predict` stage kind and the person-facing
// `stitch predict`: both run a model artifact on images through
// models/infer and report a probability per attribute.
//
// Contracts:
//   - The stage's `samples` input is a samples table (images are read from
//     the data root, cropped to their bounding box when asked, resized to
//     the model's input size) or an images table (pixels already decoded,
//     only resized when their size differs from the model's).
//   - Predictions come out in sample order, one probability per attribute.
//     A model whose attribute count differs from the samples' is an error.
//   - At most one batch of images is decoded at a time, so memory does not
//     grow with the partition.
//   - Provider and threads come from the run's settings and never change
//     the predictions' cache key.
package predict
