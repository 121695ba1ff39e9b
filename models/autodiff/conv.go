package autodiff

import (
	"fmt"
	"math"
	"slices"

	"stitch/models/onnxpb"
)

// Formulations of the weight gradient; see BenchmarkConvGrad and
// BenchmarkTunings for the measurements behind the defaults.
const (
	// wgradAuto picks per layer by the sizes of the intermediates (see
	// convWeightGrad).
	wgradAuto = iota
	// wgradGemm contracts over batch and pixels at once: one Gemm (or one
	// MatMul batched over groups) of dY and the input unfolded, both
	// batch-transposed to [channels, N*oh*ow].
	wgradGemm
	// wgradPerSample multiplies per sample and sums the N products: its
	// intermediate is N times the size of dW, which dominates deep layers.
	wgradPerSample
)

// Unfold formulations for wgradPerSample.
const (
	unfoldConv  = iota // a grouped Conv with one-hot kernels
	unfoldSlice        // Pad, then k×k strided Slices concatenated
)

// convPlan is the resolved arithmetic of one 2-D Conv node.
type convPlan struct {
	x, w, y   []int64 // shapes: [N,C,H,W], [M,C/g,kh,kw], [N,M,oh,ow]
	groups    int64
	geo       geometry
	kh, kw, k int64 // kernel height, width, and their product
}

func (b *builder) planConv(n *onnxpb.NodeProto) (convPlan, error) {
	var p convPlan
	var err error
	if p.x, err = b.shape(n.Input[0]); err != nil {
		return p, err
	}
	if p.w, err = b.shape(n.Input[1]); err != nil {
		return p, err
	}
	if p.y, err = b.shape(n.Output[0]); err != nil {
		return p, err
	}
	if len(p.x) != 4 {
		return p, fmt.Errorf("input of rank %d: only 2-D convolutions have a gradient here", len(p.x))
	}
	if p.geo, err = convGeometry(n, p.x, p.w[2:]); err != nil {
		return p, err
	}
	p.groups = getI(n, "group", 1)
	p.kh, p.kw = p.w[2], p.w[3]
	p.k = p.kh * p.kw
	return p, nil
}

// gradConv differentiates Conv. The input gradient is a Conv of dY with the
// kernel flipped in space and transposed in channels when the stride is 1
// (as fast as the forward pass), a Conv plus zero interleaving for strided
// 1×1 kernels, and ConvTranspose otherwise. The weight gradient contracts dY
// with the input unfolded, over batch and pixels, in the cheaper of two
// orders (convWeightGrad). The bias gradient sums dY.
func gradConv(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	p, err := b.planConv(n)
	if err != nil {
		return nil, err
	}
	res := make([]string, len(n.Input))
	if need[0] {
		res[0] = b.convInputGrad(p, n.Input[1], dY[0])
	}
	if need[1] {
		res[1] = b.convWeightGrad(p, n.Input[0], dY[0])
	}
	if len(n.Input) > 2 && need[2] {
		res[2] = b.op("ReduceSum", "dbias", []string{dY[0], b.ints([]int64{0, 2, 3})}, attrI("keepdims", 0))
	}
	return res, nil
}

// flipKernel turns W [M, C/g, kh, kw] into [C, M/g, kh, kw], flipped in
// space: the kernel of the convolution that maps dY back to dX.
func (b *builder) flipKernel(p convPlan, w string) string {
	m, cg, g := p.w[0], p.w[1], p.groups
	if g == 1 && p.k > 1 {
		// Transposed first, then the k taps of each kernel in reverse
		// order: one column each (Split), joined back reversed (Concat).
		// Flipping both spatial axes reverses the row-major taps. ONNX
		// Runtime took 7.6 ms for this on a 512x512x3x3 weight, against
		// 13.9 ms for a Slice with steps -1 and the Transpose.
		if m > 1 || cg > 1 {
			w = b.op("Transpose", "wT", []string{w}, attrIs("perm", []int64{1, 0, 2, 3}))
		}
		ones := make([]int64, p.k)
		for i := range ones {
			ones[i] = 1
		}
		taps := b.opN("Split", "flip", []string{b.reshape(w, []int64{cg * m, p.k}), b.ints(ones)}, int(p.k),
			attrI("axis", 1))
		taps = slices.Clone(taps) // the Split node keeps its own order
		slices.Reverse(taps)
		return b.reshape(b.op("Concat", "flip", taps, attrI("axis", 1)), []int64{cg, m, p.kh, p.kw})
	}
	if p.k > 1 {
		lo := int64(math.MinInt64)
		w = b.op("Slice", "flip", []string{
			w, b.ints([]int64{-1, -1}), b.ints([]int64{lo, lo}), b.ints([]int64{2, 3}), b.ints([]int64{-1, -1}),
		})
	}
	switch {
	case g == 1:
		if m > 1 || cg > 1 {
			w = b.op("Transpose", "wT", []string{w}, attrIs("perm", []int64{1, 0, 2, 3}))
		}
	case cg > 1 || m/g > 1:
		w = b.reshape(w, []int64{g, m / g, cg, p.kh, p.kw})
		w = b.op("Transpose", "wT", []string{w}, attrIs("perm", []int64{0, 2, 1, 3, 4}))
		w = b.reshape(w, []int64{g * cg, m / g, p.kh, p.kw})
	}
	return w
}

func (b *builder) convInputGrad(p convPlan, w, dy string) string {
	geo := p.geo
	stride1 := geo.strides[0] == 1 && geo.strides[1] == 1
	fits := true
	pads := make([]int64, 4)
	for i := range 2 {
		span := (p.w[2+i] - 1) * geo.dilations[i]
		pads[i], pads[i+2] = span-geo.padBegin[i], span-geo.padEnd[i]
		fits = fits && pads[i] >= 0 && pads[i+2] >= 0
	}
	if stride1 && fits {
		return b.op("Conv", "dX", []string{dy, b.flipKernel(p, w)},
			attrIs("pads", pads), attrIs("dilations", geo.dilations), attrI("group", p.groups))
	}
	zeroPad := geo.padBegin[0] == 0 && geo.padBegin[1] == 0 && geo.padEnd[0] == 0 && geo.padEnd[1] == 0
	if p.k == 1 && zeroPad {
		return b.stridedPointwiseInputGrad(p, w, dy)
	}
	outPad := make([]int64, 2)
	for i := range 2 {
		full := (p.y[2+i]-1)*geo.strides[i] + (p.w[2+i]-1)*geo.dilations[i] + 1 - geo.padBegin[i] - geo.padEnd[i]
		outPad[i] = p.x[2+i] - full
	}
	return b.op("ConvTranspose", "dX", []string{dy, w},
		attrIs("strides", geo.strides), attrIs("pads", append(append([]int64{}, geo.padBegin...), geo.padEnd...)),
		attrIs("dilations", geo.dilations), attrI("group", p.groups), attrIs("output_padding", outPad))
}

// stridedPointwiseInputGrad: a strided 1×1 Conv reads every s-th pixel, so
// dX is the 1×1 Conv of dY by Wᵀ interleaved with zeros (Pad of a reshaped
// tensor), cropped to the input size.
func (b *builder) stridedPointwiseInputGrad(p convPlan, w, dy string) string {
	z := b.op("Conv", "dXs", []string{dy, b.flipKernel(p, w)}, attrI("group", p.groups))
	n, c, oh, ow := p.x[0], p.x[1], p.y[2], p.y[3]
	sh, sw := p.geo.strides[0], p.geo.strides[1]
	z = b.reshape(z, []int64{n, c, oh, 1, ow, 1})
	z = b.op("Pad", "interleave", []string{z, b.ints([]int64{0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1})})
	z = b.reshape(z, []int64{n, c, oh * sh, ow * sw})
	if oh*sh != p.x[2] || ow*sw != p.x[3] {
		z = b.op("Slice", "crop", []string{z, b.ints([]int64{0, 0}), b.ints(p.x[2:]), b.ints([]int64{2, 3})})
	}
	return z
}

// convWeightGrad returns dW, through convWeightGradGemm or per sample: X
// unfolded (a grouped one-hot Conv), a MatMul per sample and group against
// dY, and a sum over the batch.
func (b *builder) convWeightGrad(p convPlan, x, dy string) string {
	// Per group, the per-sample products make N [K, M/g] matrices (K =
	// C/g*k) to sum, and the Gemm transposes N*(K+M/g)*L values: the Gemm
	// wins where few output pixels meet many channels (deep layers), the
	// per-sample products where pixels are many or channels few (early
	// layers, depthwise kernels).
	kk, mg := p.w[1]*p.k, p.w[0]/p.groups
	gemm := kk*mg > p.y[2]*p.y[3]*(kk+mg)
	if b.tune.weightGrad == wgradGemm || b.tune.weightGrad == wgradAuto && gemm {
		return b.convWeightGradGemm(p, x, dy)
	}
	geo := p.geo
	nb := p.x[0]
	g := p.groups
	l := p.y[2] * p.y[3]
	zeroPad := geo.padBegin[0] == 0 && geo.padBegin[1] == 0 && geo.padEnd[0] == 0 && geo.padEnd[1] == 0

	// u holds, per sample and group, the K = C/g*k input values each output
	// pixel reads: the input itself for 1×1 kernels.
	var u string
	if p.k == 1 && zeroPad {
		u = x
		if geo.strides[0] != 1 || geo.strides[1] != 1 {
			ends := []int64{(p.y[2]-1)*geo.strides[0] + 1, (p.y[3]-1)*geo.strides[1] + 1}
			u = b.op("Slice", "subsample", []string{
				x, b.ints([]int64{0, 0}), b.ints(ends), b.ints([]int64{2, 3}), b.ints(geo.strides),
			})
		}
	} else {
		u = b.unfold(p, x)
	}
	d4 := b.reshape(dy, []int64{nb, g, mg, l})
	u4 := b.reshape(u, []int64{nb, g, kk, l})

	// Transpose the smaller operand: dY when M/g <= K (free when M/g is 1),
	// the unfolded input otherwise.
	var pg string // [N, g, M/g, K]
	if mg <= kk {
		var dT string
		if mg == 1 {
			dT = b.reshape(dy, []int64{nb, g, l, 1})
		} else {
			dT = b.op("Transpose", "dYT", []string{d4}, attrIs("perm", []int64{0, 1, 3, 2}))
		}
		pt := b.op("MatMul", "dWT", []string{u4, dT})
		pt = b.sumBatch(pt, []int64{nb, g, kk, mg})
		if mg == 1 {
			return b.reshape(pt, p.w)
		}
		pg = b.op("Transpose", "dW", []string{pt}, attrIs("perm", []int64{0, 2, 1}))
	} else {
		uT := b.op("Transpose", "uT", []string{u4}, attrIs("perm", []int64{0, 1, 3, 2}))
		pg = b.op("MatMul", "dW", []string{d4, uT})
		pg = b.sumBatch(pg, []int64{nb, g, mg, kk})
	}
	return b.reshape(pg, p.w)
}

// sumBatch sums t, of the given shape, over its first axis: a row of ones
// times t seen as a matrix. ONNX Runtime 1.24's ReduceSum over the leading
// axis is slow here (measured on [32, 1, 1152, 128]: 6.6 ms, against
// 0.36 ms for this MatMul).
func (b *builder) sumBatch(t string, shape []int64) string {
	ones := make([]float64, shape[0])
	rest := int64(1)
	for i := range ones {
		ones[i] = 1
	}
	for _, d := range shape[1:] {
		rest *= d
	}
	sum := b.op("MatMul", "sumN", []string{b.floats(ones, 1, shape[0]), b.reshape(t, []int64{shape[0], rest})})
	return b.reshape(sum, shape[1:])
}

// convWeightGradGemm computes dW[m, c, i, j] = Σ_{n,l} dY[n, m, l] U[c, i, j, n, l],
// where U is X unfolded with the batch moved inside (unfoldTaps): a Gemm
// for g = 1, a MatMul batched over groups otherwise. Only dY and X are
// transposed. The taps are stacked into one operand by a Concat, which
// measured faster than one product per tap (tuning.perTapGemm) whose small
// results are stacked instead.
func (b *builder) convWeightGradGemm(p convPlan, x, dy string) string {
	nb, c := p.x[0], p.x[1]
	m, g := p.w[0], p.groups
	cg, mg := c/g, m/g
	nl := nb * p.y[2] * p.y[3]
	taps := b.unfoldTaps(p, x) // each [C, N*L]
	if !b.tune.perTapGemm && len(taps) > 1 {
		for i, t := range taps {
			taps[i] = b.op("Unsqueeze", "tap", []string{t, b.ints([]int64{1})})
		}
		taps = []string{b.reshape(b.op("Concat", "unfold", taps, attrI("axis", 1)), []int64{c * p.k, nl})}
	}

	// The product of dY with one operand of K rows per group (K = C/g, or
	// C/g*k for stacked taps), as [g, M/g, K] (g = 1: [M, K]).
	var product func(u string, kk int64) string
	if g == 1 {
		dyT := b.reshape(b.batchTranspose(dy), []int64{m, nl})
		product = func(u string, _ int64) string {
			return b.op("Gemm", "dW", []string{dyT, u}, attrI("transB", 1))
		}
	} else {
		// Per group dWᵀ = U_g · dY_gᵀ, with dY as [g, N*L, M/g] (a Reshape
		// when depthwise), then the small result transposed.
		var dyT string
		if mg == 1 {
			dyT = b.reshape(b.batchTranspose(dy), []int64{g, nl, 1})
		} else {
			d4 := b.reshape(dy, []int64{nb, g, mg, p.y[2] * p.y[3]})
			dyT = b.reshape(b.op("Transpose", "dYT", []string{d4}, attrIs("perm", []int64{1, 0, 3, 2})),
				[]int64{g, nl, mg})
		}
		product = func(u string, kk int64) string {
			pt := b.op("MatMul", "dWT", []string{b.reshape(u, []int64{g, kk, nl}), dyT})
			if mg == 1 {
				return pt
			}
			return b.op("Transpose", "dW", []string{pt}, attrIs("perm", []int64{0, 2, 1}))
		}
	}
	if len(taps) == 1 {
		return b.reshape(product(taps[0], cg*p.k), p.w)
	}
	parts := make([]string, len(taps))
	for i, t := range taps {
		parts[i] = b.op("Unsqueeze", "dW_tap", []string{product(t, cg), b.ints([]int64{-1})})
	}
	return b.reshape(b.op("Concat", "dW", parts, attrI("axis", -1)), p.w)
}

// batchTranspose swaps the batch and channel axes of a [N, C, H, W]
// tensor, once per tensor (a block's input feeds both its first conv and
// its downsampling conv).
func (b *builder) batchTranspose(t string) string {
	key := "batchT " + t
	if nm, ok := b.cache[key]; ok {
		return nm
	}
	nm := b.op("Transpose", "batchT", []string{t}, attrIs("perm", []int64{1, 0, 2, 3}))
	b.cache[key] = nm
	return nm
}

// unfoldTaps returns X unfolded as one [C, N*oh*ow] tensor per kernel tap
// (i, j), row-major: what the tap reads of channel c, for every sample and
// output pixel. The taps are strided Slices of the padded, batch-transposed
// input; a 1×1 kernel without pads is the input itself.
func (b *builder) unfoldTaps(p convPlan, x string) []string {
	geo := p.geo
	nb, c := p.x[0], p.x[1]
	nl := nb * p.y[2] * p.y[3]
	strided := geo.strides[0] != 1 || geo.strides[1] != 1
	pads := []int64{geo.padBegin[0], geo.padBegin[1], geo.padEnd[0], geo.padEnd[1]}
	padded := pads[0]+pads[1]+pads[2]+pads[3] > 0
	tap := func(t string, h0, w0 int64) string {
		ends := []int64{h0 + (p.y[2]-1)*geo.strides[0] + 1, w0 + (p.y[3]-1)*geo.strides[1] + 1}
		return b.op("Slice", "tap", []string{
			t, b.ints([]int64{h0, w0}), b.ints(ends), b.ints([]int64{2, 3}), b.ints(geo.strides),
		})
	}

	if p.k == 1 && !padded {
		// Subsample before transposing: a stride-2 1×1 reads a quarter.
		if strided {
			x = b.op("Transpose", "batchT", []string{tap(x, 0, 0)}, attrIs("perm", []int64{1, 0, 2, 3}))
		} else {
			x = b.batchTranspose(x)
		}
		return []string{b.reshape(x, []int64{c, nl})}
	}
	xt := b.batchTranspose(x)
	if padded {
		xt = b.op("Pad", "pad", []string{xt, b.ints([]int64{0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]})})
	}
	taps := make([]string, 0, p.k)
	for i := range p.kh {
		for j := range p.kw {
			taps = append(taps, b.reshape(tap(xt, i*geo.dilations[0], j*geo.dilations[1]), []int64{c, nl}))
		}
	}
	return taps
}

// unfold returns X unfolded to [N, C*k, oh, ow]: channel c*k + i*kw + j holds
// what kernel tap (i, j) of channel c reads at each output pixel.
func (b *builder) unfold(p convPlan, x string) string {
	geo := p.geo
	c := p.x[1]
	pads := append(append([]int64{}, geo.padBegin...), geo.padEnd...)
	if b.tune.unfold == unfoldSlice {
		xp := x
		if pads[0]+pads[1]+pads[2]+pads[3] > 0 {
			xp = b.op("Pad", "pad", []string{x, b.ints([]int64{0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]})})
		}
		taps := make([]string, 0, p.k)
		for i := range p.kh {
			for j := range p.kw {
				h0, w0 := i*geo.dilations[0], j*geo.dilations[1]
				ends := []int64{h0 + (p.y[2]-1)*geo.strides[0] + 1, w0 + (p.y[3]-1)*geo.strides[1] + 1}
				t := b.op("Slice", "tap", []string{
					xp, b.ints([]int64{h0, w0}), b.ints(ends), b.ints([]int64{2, 3}), b.ints(geo.strides),
				})
				taps = append(taps, b.op("Unsqueeze", "tap", []string{t, b.ints([]int64{2})}))
			}
		}
		u := b.op("Concat", "unfold", taps, attrI("axis", 2))
		return b.reshape(u, []int64{p.x[0], c * p.k, p.y[2], p.y[3]})
	}
	vals := make([]float64, c*p.k*p.k)
	for ch := range c {
		for t := range p.k {
			vals[(ch*p.k+t)*p.k+t] = 1
		}
	}
	kernel := b.floats(vals, c*p.k, 1, p.kh, p.kw)
	return b.op("Conv", "unfold", []string{x, kernel},
		attrIs("strides", geo.strides), attrIs("pads", pads), attrIs("dilations", geo.dilations), attrI("group", c))
}

// gradAveragePool spreads dY/count over each window: dY times a constant
// map of 1/count (count_include_pad and ceil_mode resolved here), then a
// transposed convolution with a kernel of ones over [N*C, 1, oh, ow].
// Windows that tile the input exactly (kernel = stride, no pads) take a
// plain Expand instead.
func gradAveragePool(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	if len(xs) != 4 {
		return nil, fmt.Errorf("input of rank %d: only 2-D pooling has a gradient here", len(xs))
	}
	kernel := getIs(n, "kernel_shape")
	geo, err := convGeometry(n, xs, kernel)
	if err != nil {
		return nil, err
	}
	nb, c, h, w := xs[0], xs[1], xs[2], xs[3]
	oh, ow := geo.out[0], geo.out[1]
	includePad := getI(n, "count_include_pad", 0) != 0

	tiles := kernel[0] == geo.strides[0] && kernel[1] == geo.strides[1] &&
		oh*kernel[0] == h && ow*kernel[1] == w && geo.padBegin[0]+geo.padBegin[1]+geo.padEnd[0]+geo.padEnd[1] == 0
	if tiles {
		d := b.mul(dY[0], b.scalar(1/float64(kernel[0]*kernel[1])))
		d = b.reshape(d, []int64{nb, c, oh, 1, ow, 1})
		d = b.op("Expand", "spread", []string{d, b.ints([]int64{nb, c, oh, kernel[0], ow, kernel[1]})})
		return []string{b.reshape(d, xs)}, nil
	}

	// The divisor of each output pixel, as ONNX Runtime computes it.
	inv := make([]float64, oh*ow)
	for i := range oh {
		for j := range ow {
			count := func(o, s, k, pb, pe, size int64) int64 {
				start := o*s - pb
				end := min(start+k, size+pe)
				if includePad {
					return end - start
				}
				return min(end, size) - max(start, 0)
			}
			ch := count(i, geo.strides[0], kernel[0], geo.padBegin[0], geo.padEnd[0], h)
			cw := count(j, geo.strides[1], kernel[1], geo.padBegin[1], geo.padEnd[1], w)
			inv[i*ow+j] = 1 / float64(ch*cw)
		}
	}
	d := b.mul(dY[0], b.floats(inv, oh, ow))
	d = b.reshape(d, []int64{nb * c, 1, oh, ow})
	ones := make([]float64, kernel[0]*kernel[1])
	for i := range ones {
		ones[i] = 1
	}
	pads := make([]int64, 4)
	extra := make([]int64, 2)
	for i := range 2 {
		full := (geo.out[i]-1)*geo.strides[i] + kernel[i]
		pads[i] = geo.padBegin[i]
		pads[i+2] = full - geo.padBegin[i] - xs[2+i]
		if pads[i+2] < 0 {
			extra[i], pads[i+2] = -pads[i+2], 0
		}
	}
	d = b.op("ConvTranspose", "spread", []string{d, b.floats(ones, 1, 1, kernel[0], kernel[1])},
		attrIs("strides", geo.strides), attrIs("pads", pads))
	if extra[0]+extra[1] > 0 {
		// Rows and columns no window reads get no gradient.
		d = b.op("Pad", "uncovered", []string{d, b.ints([]int64{0, 0, 0, 0, 0, 0, extra[0], extra[1]})})
	}
	return []string{b.reshape(d, xs)}, nil
}

// gradBatchNorm differentiates BatchNormalization. With fixed statistics
// (inference form) Y is affine in X per channel. With batch statistics
// (training_mode=1) the mean and variance depend on X:
//
//	dX = scale*invstd * (dY - mean(dY) - x̂*mean(dY*x̂))
//
// with the means over the batch and spatial axes; the running statistics
// get no gradient.
func gradBatchNorm(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	if len(xs) < 2 {
		return nil, fmt.Errorf("input of rank %d", len(xs))
	}
	c := xs[1]
	axes := []int64{0}
	cshape := []int64{1, c}
	for i := 2; i < len(xs); i++ {
		axes = append(axes, int64(i))
		cshape = append(cshape, 1)
	}
	count := float64(prod(xs) / c)
	eps := getF(n, "epsilon", 1e-5)
	x, scale, d := n.Input[0], n.Input[1], dY[0]
	ax := b.ints(axes)
	perChannel := func(t string) string { return b.reshape(t, cshape) }
	sum := func(t string, keep int64) string {
		return b.op("ReduceSum", "sum", []string{t, ax}, attrI("keepdims", keep))
	}
	res := make([]string, len(n.Input))

	if getI(n, "training_mode", 0) != 0 {
		mean := b.op("ReduceMean", "mean", []string{x}, attrIs("axes", axes), attrI("keepdims", 1))
		xc := b.op("Sub", "xc", []string{x, mean})
		variance := b.op("ReduceMean", "var", []string{b.mul(xc, xc)}, attrIs("axes", axes), attrI("keepdims", 1))
		invstd := b.op("Reciprocal", "invstd", []string{
			b.op("Sqrt", "std", []string{b.op("Add", "var_eps", []string{variance, b.scalar(eps)})}),
		})
		xhat := b.mul(xc, invstd)
		sdy := sum(d, 1)
		sdyx := sum(b.mul(d, xhat), 1)
		if need[0] {
			m1 := b.mul(sdy, b.scalar(1/count))
			m2 := b.mul(sdyx, b.scalar(1/count))
			inner := b.op("Sub", "inner", []string{b.op("Sub", "inner", []string{d, m1}), b.mul(xhat, m2)})
			res[0] = b.mul(inner, b.mul(perChannel(scale), invstd))
		}
		if need[1] {
			res[1] = b.reshape(sdyx, []int64{c})
		}
		if need[2] {
			res[2] = b.reshape(sdy, []int64{c})
		}
		return res, nil
	}

	mean, variance := n.Input[3], n.Input[4]
	invstd := b.op("Reciprocal", "invstd", []string{
		b.op("Sqrt", "std", []string{b.op("Add", "var_eps", []string{variance, b.scalar(eps)})}),
	})
	if need[0] {
		res[0] = b.mul(d, perChannel(b.mul(scale, invstd)))
	}
	if !need[1] && !need[2] && !need[3] && !need[4] {
		return res, nil
	}
	sdy := sum(d, 0)
	if need[2] {
		res[2] = sdy
	}
	if need[3] {
		res[3] = b.op("Neg", "dmean", []string{b.mul(sdy, b.mul(scale, invstd))})
	}
	if need[1] || need[4] {
		// sum(dY*(X-mean)) = sum(dY*X) - mean*sum(dY): no centred copy of X.
		sc := b.op("Sub", "sdyxc", []string{sum(b.mul(d, x), 0), b.mul(mean, sdy)})
		if need[1] {
			res[1] = b.mul(sc, invstd)
		}
		if need[4] {
			cube := b.mul(invstd, b.mul(invstd, invstd))
			res[4] = b.mul(sc, b.mul(b.mul(scale, cube), b.scalar(-0.5)))
		}
	}
	return res, nil
}
