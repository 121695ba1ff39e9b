// Package train is the `train` stage kind: it fine-tunes a backbone with a
// multi-label head on samples or images tables through models/train and
// writes the inference model and the training history.
//
// Contracts:
//   - The backbone is a zoo model built in Go (random weights: the stage
//     logs a warning saying so) or an ONNX file given as file:PATH or
//     weights:PATH (pretrained weights, e.g. the shared ImageNet
//     MobileNetV2); the file is fingerprinted into the run key. A `model`
//     input starts from a model stitch trained before instead, with a new
//     output layer when its attribute count differs.
//   - Phase 1 trains the head; phase 2 also the backbone parameters after
//     the first freeze_ratio of them in layer order (input side first).
//     Shared initializers of exported models are untied first, so no two
//     layers are trained as one.
//   - Images of a samples table are read from the data root, cropped to
//     their box (crop, crop_margin), resized to image_size and normalised
//     with the backbone's preprocessing unless `normalize` overrides it;
//     images tables are only resized. Decoded images are cached across
//     epochs when they fit in 1 GiB.
//   - Labels 0 (unknown) are left out of the loss and the validation
//     metrics. pos_weight auto is negatives/positives per attribute on the
//     training labels, clipped to [1/100, 100].
//   - Categories (`categories: auto`, the default): when a `categories`
//     input is wired and the training samples have categories, the model
//     gets a second head, one Gemm from the pooled features to a logit per
//     category of the table (in table order), and the loss adds
//     category_weight (> 0, at most 1000) times the softmax cross-entropy
//     over the samples that have a category. auto leaves the head out
//     only when the input is not wired or no training sample has a
//     category: training samples with category ids beside an empty table
//     are an error. Without the input (or with categories: false),
//     categories and category_weight are left out of the run key. `true` makes a missing input or category an error,
//     `false` leaves the head out; true and false may be spelt as any
//     YAML boolean (True, FALSE). A sample whose category the table does
//     not list is an error. The model's metadata records the
//     category output and the categories (id, name, body type). A
//     `model` input whose categories differ gets a fresh category layer
//     (or loses it with `false`). The validation log line of each epoch
//     gives the category top-1 and top-3 accuracy.
//   - Validate reports each rejected parameter as a *pipeline.ParamError
//     naming its key (phase2.batch_size), so that a pipeline file's error
//     points at that key's line. NaN fails the range checks of width,
//     freeze_ratio, crop_margin, min_delta, lr_factor and category_weight.
//   - Sizes are bounded (MaxImageSize and the other Max constants say
//     why), well above any experiment and below what a run can allocate:
//     image_size 32 to 1024 (the images stage's largest side); width above
//     0 and at most 4; each head layer 1 to 16384 units; batch_size 1 to
//     4096, and one batch of input images (batch_size x 3 x image_size^2
//     float32) at most 4 GiB; steps_per_epoch x batch_size at most ten
//     million samples.
//   - A batch_size above the number of training samples trains (and
//     validates) on batches of that number, as Keras' fit does, with an
//     info line saying so: a full pass is one batch of every sample.
//     Batch sizes up to the number of samples are used as given.
//   - A file backbone that names a folder is an error when the stage
//     starts, before its inputs are fingerprinted ("is a directory, want
//     an ONNX file"); the stages upstream of it run first.
//   - Checkpoints go to the run's workdir, so an interrupted stage resumes
//     from its last epoch; a CPU run with one seed gives the same model
//     and history bytes (the history's timing columns are left 0 for
//     that; the log has them). Provider and threads come from the run's
//     settings.
package train
