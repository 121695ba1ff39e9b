// Package infer runs a stitch model artifact on batches of images through
// ONNX Runtime and returns probabilities: per attribute, and per category
// for a model with a category head.
//
// Contracts:
//   - A Predictor holds one session and one input and one output tensor
//     (two with a category head) of BatchSize images, created once and
//     reused by every batch; a last,
//     shorter batch gets views of the same memory. Close frees them all. The
//     runtime allocates nothing per batch that the Predictor does not free,
//     so memory stays flat over a long run (TestNoLeaks checks the Go heap,
//     the process's resident memory and the count of live tensors).
//   - Images reach the input tensor through a Fill function that the caller
//     supplies (decode, crop, resize, normalise): Predict calls it for the
//     images of one batch at a time, in parallel, so at most one batch of
//     pixels is held beyond what Fill itself holds.
//   - Scores come back in image order; a sigmoid is applied when the model's
//     metadata says its output holds logits.
//   - A model whose metadata names a category output (CategoryOutput, with
//     one entry of Categories per column) also gives category
//     probabilities: a softmax of each image's category logits, in the
//     order of the metadata's categories.
//   - A Predictor is not safe for concurrent use: one batch runs at a time.
package infer
