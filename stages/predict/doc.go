// Package predict is the `predict` stage kind and the person-facing
// `stitch predict`: both run a model artifact on images through
// models/infer and report a probability per attribute (and per category
// when the model has a category head).
//
// Contracts:
//   - The stage's `samples` input is a samples table (images are read from
//     the data root, cropped as the model's training cropped them unless
//     crop or crop_margin say otherwise, resized to the model's input
//     size) or an images table (pixels already decoded, only resized when
//     their size differs from the model's).
//   - Predictions come out in sample order, one probability per attribute.
//     A model whose attribute count differs from the samples' is an error.
//     A model with a category head adds one probability per category (a
//     softmax), in the order of the model's categories, which the
//     predictions record with their ids and names.
//   - At most one batch of images is decoded at a time, so memory does not
//     grow with the partition.
//   - Provider and threads come from the run's settings and never change
//     the predictions' cache key.
//   - ForPeople (`stitch predict`) reads each image file whole, with no
//     box; an image that cannot be decoded gets its error in its
//     ImageScores and the others are scored all the same.
package predict
