// Package head cuts a backbone at its pooled features and appends the
// multi-label classifier head a pipeline asks for.
//
// Contracts:
//   - Attach never changes its argument: it works on a copy.
//   - The backbone's image input is its one 4-D float input (NCHW); its
//     height and width may be dynamic. No such input is ErrNoImageInput.
//   - The automatic cut point is the pooled feature vector: the output of
//     the last GlobalAveragePool, flattened. When the backbone classifies
//     before pooling (SqueezeNet: a 1x1 Conv to the class count, ReLU, then
//     the pool), the cut moves before that Conv and the head pools itself.
//   - The head is Gemm layers with ReLU between, He-initialised for layers
//     followed by a ReLU and Glorot-initialised for the last, biases zero,
//     all drawn from a PCG seeded with Spec.Seed. Its output is named
//     "logits" and holds logits: apply a sigmoid for probabilities.
//   - With Spec.Categories above 0 the model gets a second output,
//     "category_logits": one Gemm from the same features to one logit per
//     category (apply a softmax), Glorot-initialised from a PCG stream of
//     its own, so the attribute head's initial weights do not depend on
//     whether it is there. ReplaceOutput keeps it; ReplaceCategories
//     replaces or removes it on a model Attach made, finding the features
//     by walking back through the head's Gemm and ReLU layers.
//   - Preprocessing and the meaning of outputs travel as JSON of
//     artifacts.ModelMeta under the metadata_props key MetaKey: the
//     attribute and category output names here, the attributes and
//     categories (id, name) from the caller.
package head
