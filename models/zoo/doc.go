// Package zoo builds the backbones of the notebook's experiments as ONNX
// models in Go: smallcnn, vgg16, resnet18, resnet50, mobilenet_v2 and
// densenet121.
//
// Contracts:
//   - Build is deterministic: the same name and Options give the same
//     bytes. Weights are drawn from a PCG seeded with Options.Seed: He
//     normal for convolutions and layers followed by a ReLU, Glorot normal
//     for the classifier; biases are zero.
//   - Every model has one input "input" [batch, 3, InputSize, InputSize]
//     and one output "logits" [batch, Classes], and its stitch.meta
//     metadata carries torchvision's ImageNet preprocessing.
//   - Models use only Conv, Relu, Clip, MaxPool, AveragePool,
//     GlobalAveragePool, Flatten, Gemm, Add and Concat. Batch normalisation
//     is folded away (a freshly initialised network has identity
//     statistics), which keeps the operator set small for the autodiff.
//     Without it deep residual stacks would grow their activations block
//     after block, so the last convolution of each residual branch starts
//     scaled by 1/sqrt(blocks), as Fixup-style initialisations do.
//   - Every classifier ends GlobalAveragePool, Flatten, Gemm (VGG16 with
//     two 4096-wide hidden layers between), so head.Attach finds the pooled
//     features. VGG16 pools globally instead of flattening a 7x7 map,
//     which gives it about 38M parameters instead of 138M.
//   - Width multiplies every channel count (rounded to a multiple of 8 for
//     mobilenet_v2, at least 1 elsewhere), so tests build tiny models.
package zoo
