// Package autodiff differentiates ONNX graphs in reverse mode, writing the
// gradients as standard ONNX operators (opset 17, no com.microsoft kernels)
// so that a training step is one ordinary ONNX Runtime run, on the CPU
// provider as on CUDA.
//
// # Contract
//
// Backward appends to a forward graph the nodes computing the gradient of
// a scalar objective with respect to chosen parameters (initializers or
// graph inputs), given the gradient (seed) of the objective with respect to
// one tensor. Frozen parameters are simply not listed: everything that does
// not depend on a listed parameter is a constant and gets no gradient node,
// so the first layer never computes an input gradient. Gradients of tensors
// read several times are accumulated with one Sum. Shapes are static (the
// batch size is fixed in a step graph): InferShapes resolves them from the
// input shapes, and the generated Reshapes and constants bake them in.
//
// The output is deterministic: the same graph gives the same nodes, names
// and bytes. Generated names start with Options.Prefix ("grad/"); the
// gradient of parameter p is named prefix+p where nothing else claims it.
// An operator without a rule on the gradient path is an error naming the
// node and the operator; one off the path (constant plumbing) is fine.
//
// # Supported operators and their gradients
//
//	Op                  gradient formulation (dY: gradient of the output)
//	Conv                dX, stride 1: Conv(dY, W flipped in space, transposed per group), 1.0x forward
//	                    dX, strided 1x1: Conv(dY, Wᵀ) interleaved with zeros (Reshape, Pad)
//	                    dX, other strides: ConvTranspose(dY, W) with output_padding (s×s
//	                    stride-1 phase Convs joined by DepthToSpace measured no faster)
//	                    dW: the cheaper of two contractions over batch and pixels, by the
//	                    size of their intermediates (per group K = C/g*k, M' = M/g, L = oh*ow):
//	                    K*M' > L*(K+M') (deep layers): Gemm of dY batch-transposed to
//	                    [M, N*L] and U [C*k, N*L] (transB; a MatMul batched over groups), U
//	                    the kernel taps of the padded, batch-transposed input (strided
//	                    Slices) stacked by one Concat;
//	                    else (early layers, depthwise): per sample, X unfolded by a grouped
//	                    one-hot Conv, batched MatMul per group against dY, summed over N
//	                    dB: ReduceSum(dY, [0,2,3]); auto_pad SAME_*/VALID resolved to pads
//	Gemm                one Gemm per input, transA/transB swapped to absorb transposes;
//	                    alpha kept, dC = beta*dY summed over broadcast axes
//	MatMul              dA = dY·Bᵀ, dB = Aᵀ·dY, summed over broadcast batch axes (ranks >= 2)
//	Add, Sub, Sum       dY (negated for Sub's B), ReduceSum over broadcast axes
//	Mul, Div            dY*B, dY*A; dY/B, -dY*Y/B; each reduced over broadcast axes
//	Neg, Sqrt           -dY; dY/(2Y)
//	Relu                dY * Cast(Y > 0): reads Y, so Conv+Relu stays fusable (a Mul by the
//	                    cast mask measured cheaper than Where)
//	LeakyRelu           Where(Y > 0, dY, alpha*dY)
//	Clip                dY * Cast(min < Y < max); bounds from inputs, Constant nodes, attributes
//	Sigmoid, Tanh       dY*Y*(1-Y); dY*(1-Y²)
//	HardSigmoid         Where(0 < Y < 1, alpha*dY, 0)
//	HardSwish           dY * (0 below -3, 1 above 3, X/3+1/2 between), PyTorch's convention
//	Softmax             Y*(dY - ReduceSum(dY*Y, axis))
//	BatchNormalization  inference: dX = dY*scale/sqrt(var+eps); dscale, dbias, dmean, dvar
//	                    from ReduceSum(dY) and ReduceSum(dY*X) per channel;
//	                    training_mode=1: through the batch mean and variance,
//	                    dX = scale*invstd*(dY - mean(dY) - x̂*mean(dY*x̂))
//	MaxPool             ScatterElements(add) of dY at the Indices output, which
//	                    Backward adds to the forward node: exact, overlapping windows add
//	GlobalMaxPool       the same through a whole-plane MaxPool with Indices (exact with ties)
//	AveragePool         dY times a constant map of 1/count (count_include_pad, ceil_mode),
//	                    ConvTranspose with a kernel of ones over [N*C,1,oh,ow]; Expand
//	                    when windows tile the input
//	GlobalAveragePool   Expand(dY/(H*W))
//	ReduceMean, ReduceSum  Expand of dY (scaled by 1/n for the mean)
//	Flatten, Reshape, Squeeze, Unsqueeze  Reshape to the input's shape
//	Transpose           Transpose by the inverse permutation
//	Concat              Split (all inputs need a gradient) or a Slice per input that does
//	Pad                 constant mode: Slice (negative pads: Pad by the opposite)
//	Dropout             identity in inference mode (no or false training_mode), which is
//	                    how step graphs treat it; with training_mode true: dY*mask/(1-ratio),
//	                    the mask output added to the forward node if missing
//	Identity            dY
//
// Constant, Shape and integer plumbing carry no gradient.
//
// # Cost in ONNX Runtime 1.24 (CPU)
//
// Some standard formulations run far below memory speed in ONNX Runtime,
// found by ranking a step profile's nodes by elements per microsecond
// (models/train TestProfileStep, STITCH_PROFILE=model@size):
//
//   - ReduceSum over the leading axis: 6.6 ms on [32, 1, 1152, 128],
//     0.36 ms as a MatMul with a row of ones (sumBatch, used for the
//     per-sample weight gradients).
//   - An elementwise op between a scalar and a tensor whose last axis has
//     size 1 ([960, 160, 1, 1]): 141 million elements/s against 12,200 on
//     the same values as one axis (models/train updates parameters
//     through flat views for this reason).
//   - A kernel flip by Slice with steps -1 (~300 elements/us): 13.9 ms
//     with its Transpose on a 512x512x3x3 weight; the taps reversed by
//     Split and Concat after the Transpose take 7.6 ms (flipKernel).
//   - Still open: the flip is still a third of a ResNet18 layer4 input
//     gradient; the zero interleave of strided 1x1 input gradients (Pad
//     on [.., 1, .., 1] axes) takes 4 to 7 ms each. The forward Convs run
//     3.2x slower than with constant weights (MobileNetV2 at 112 px: 241
//     against 771 images/s), since ONNX Runtime prepacks and reorders
//     (NCHWc) only constant filters; that is the largest remaining cost.
package autodiff
