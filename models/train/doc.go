// Package train turns a forward ONNX model into training graphs and runs
// them: the loss, the optimizer, the step and eval graphs, the session
// that swaps parameter buffers between steps, and the two-phase trainer
// loop with early stopping, learning-rate reduction, best-checkpoint
// keeping and resumable checkpoints.
//
// Contracts:
//   - BuildStep appends to a copy of the forward graph: the masked
//     binary cross-entropy on logits with per-class positive weights
//     (PyTorch's BCEWithLogitsLoss with pos_weight, mean over the known
//     labels, 0 for a batch with none), its closed-form gradient with
//     respect to the logits, the parameter gradients from
//     models/autodiff seeded with it, and the optimizer update (Adam with
//     bias correction and decoupled weight decay, i.e. AdamW; or SGD with
//     optional (Nesterov) momentum and L2 weight decay). Only standard
//     ONNX operators are used, so the graph runs on any execution
//     provider. Parameters not listed as trainable stay initializers: a
//     frozen layer costs no gradient.
//   - With Spec.CategoryLogits (a model with a category head) the loss
//     adds CategoryWeight times the softmax cross-entropy of the category
//     logits, averaged over the rows that have a category (0 for a batch
//     with none), through LogSoftmax, and its closed-form gradient
//     (softmax minus one-hot, over the count). The graphs read each row's
//     category as one more int64 input. models/autodiff differentiates
//     one output, so the step graph joins both heads' logits (and their
//     gradients) with a Concat; the backbone gets the sum of both.
//   - The learning rate and the step count are graph inputs: schedules
//     and resumption need no new graph. The batch size is fixed per graph.
//   - A Stepper binds two preallocated sets of parameter and state
//     tensors; step t reads one set and writes the other. Nothing is
//     copied between steps; batches are Go slices the runtime reads in
//     place.
//   - On the CPU a step of 16 rows or more is replicated (AutoReplicas):
//     two sessions compute the gradients of the two halves of the batch
//     at the same time on half of the threads each, dividing by the whole
//     batch's counts, and an update graph sums them and applies the
//     optimizer. Measured faster than one session on both threads; the
//     split depends on the batch, not on the core count.
//   - Train is deterministic for a seed: shuffles and augmentation seeds
//     derive from (seed, phase, epoch, step, row) only, images are decoded
//     in parallel into fixed slots, and ONNX Runtime's CPU kernels with a
//     fixed thread count gave identical bytes in the tests. A run resumed
//     from a checkpoint produces the same model as one never interrupted.
//   - Checkpoints are written after every epoch to a temporary file that
//     is synced and renamed; a checkpoint of another configuration is
//     ignored with a warning.
//   - A NaN or infinite loss stops training with a *NonFiniteLossError
//     ("loss is NaN at phase P epoch E step S"), before any checkpoint of
//     that epoch.
//   - Early stopping and the learning-rate reduction follow Keras'
//     EarlyStopping and ReduceLROnPlateau on the validation loss, reset
//     at each phase; the kept (best) weights are chosen across phases.
//
// Known shortcomings:
//   - Dropout and BatchNormalization stay in inference form in the step
//     graph (the zoo and the shared exports fold or omit them).
//     TODO(#6): training-mode batch statistics and seeded dropout.
package train
