package autodiff

import (
	"fmt"
	"slices"

	"stitch/models/onnxpb"
)

// rule returns, for each input k of n with need[k], the name of the
// gradient contribution to that input ("" for none). dY holds the gradients
// of n's outputs ("" where an output has none).
type rule func(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error)

var rules map[string]rule

func init() {
	rules = map[string]rule{
		"Identity": gradIdentity, "Dropout": gradDropout,
		"Add": gradAddSub, "Sub": gradAddSub, "Sum": gradAddSub, "Mul": gradMul, "Div": gradDiv,
		"Neg":  gradNeg,
		"Relu": gradRelu, "LeakyRelu": gradLeakyRelu, "Clip": gradClip,
		"Sigmoid": gradSigmoid, "Tanh": gradTanh, "HardSigmoid": gradHardSigmoid,
		"HardSwish": gradHardSwish, "Softmax": gradSoftmax, "Sqrt": gradSqrt,
		"Gemm": gradGemm, "MatMul": gradMatMul,
		"Flatten": gradReshape, "Reshape": gradReshape, "Squeeze": gradReshape, "Unsqueeze": gradReshape,
		"Transpose": gradTranspose, "Concat": gradConcat, "Pad": gradPad,
		"ReduceMean": gradReduce, "ReduceSum": gradReduce,
		"GlobalAveragePool": gradGlobalAveragePool, "GlobalMaxPool": gradGlobalMaxPool,
		"MaxPool": gradMaxPool, "AveragePool": gradAveragePool,
		"Conv": gradConv, "BatchNormalization": gradBatchNorm,
	}
}

// shape returns the static shape of a forward tensor.
func (b *builder) shape(name string) ([]int64, error) {
	s, ok := b.shapes[name]
	if !ok {
		return nil, fmt.Errorf("no static shape for %q", name)
	}
	return s, nil
}

// reduceTo sums t (of shape from) down to the broadcast source shape to,
// undoing numpy broadcasting.
func (b *builder) reduceTo(t string, from, to []int64) string {
	if slices.Equal(from, to) {
		return t
	}
	lead := len(from) - len(to)
	var axes []int64
	onlyLead := true
	for i := range from {
		j := i - lead
		if j < 0 {
			axes = append(axes, int64(i))
		} else if to[j] == 1 && from[i] != 1 {
			axes = append(axes, int64(i))
			onlyLead = false
		}
	}
	if len(axes) == 0 {
		return b.reshape(t, to)
	}
	if onlyLead {
		return b.op("ReduceSum", "reduce", []string{t, b.ints(axes)}, attrI("keepdims", 0))
	}
	r := b.op("ReduceSum", "reduce", []string{t, b.ints(axes)}, attrI("keepdims", 1))
	if lead > 0 {
		r = b.reshape(r, to)
	}
	return r
}

func (b *builder) reshape(t string, to []int64) string {
	return b.op("Reshape", "reshape", []string{t, b.ints(to)})
}

func (b *builder) mul(x, y string) string { return b.op("Mul", "mul", []string{x, y}) }

func gradIdentity(_ *builder, _ *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	return []string{dY[0]}, nil
}

// gradDropout is the identity in inference mode (no training_mode input, or
// a constant false one): a step graph treats Dropout as the identity unless
// the forward graph asks for training mode, where the gradient is masked
// and rescaled like the output.
func gradDropout(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	training := false
	if len(n.Input) > 2 && n.Input[2] != "" {
		t, ok := b.consts[n.Input[2]]
		if !ok {
			return nil, fmt.Errorf("training_mode %q is not a constant", n.Input[2])
		}
		training = len(tensorInts(t)) == 1 && tensorInts(t)[0] != 0 ||
			t.GetDataType() == int32(onnxpb.TensorProto_BOOL) && len(t.GetRawData()) == 1 && t.GetRawData()[0] != 0 ||
			t.GetDataType() == int32(onnxpb.TensorProto_BOOL) && len(t.GetInt32Data()) == 1 && t.GetInt32Data()[0] != 0
	}
	if !training {
		return []string{dY[0]}, nil
	}
	ratio := 0.5
	if len(n.Input) > 1 && n.Input[1] != "" {
		r, ok := b.constFloat(n.Input[1])
		if !ok {
			return nil, fmt.Errorf("ratio %q is not a constant", n.Input[1])
		}
		ratio = r
	}
	if len(n.Output) < 2 || n.Output[1] == "" {
		// The mask is needed: ask the forward node for it.
		mask := b.name("mask")
		if len(n.Output) < 2 {
			n.Output = append(n.Output, mask)
		} else {
			n.Output[1] = mask
		}
	}
	m := b.op("Cast", "mask", []string{n.Output[1]}, attrI("to", int64(b.dtype)))
	return []string{b.mul(b.mul(dY[0], m), b.scalar(1/(1-ratio)))}, nil
}

// gradAddSub handles Add, Sub and Sum: the gradient, summed over broadcast
// axes, negated for the subtrahend.
func gradAddSub(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	res := make([]string, len(n.Input))
	for k, in := range n.Input {
		if !need[k] {
			continue
		}
		xs, err := b.shape(in)
		if err != nil {
			return nil, err
		}
		d := dY[0]
		if n.GetOpType() == "Sub" && k == 1 {
			d = b.op("Neg", "neg", []string{d})
		}
		res[k] = b.reduceTo(d, ys, xs)
	}
	return res, nil
}

func gradNeg(b *builder, _ *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	return []string{b.op("Neg", "neg", []string{dY[0]})}, nil
}

// gradMul: dA = dY*B, dB = dY*A, each summed over its broadcast axes.
func gradMul(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	res := make([]string, 2)
	for k := range 2 {
		if !need[k] {
			continue
		}
		xs, err := b.shape(n.Input[k])
		if err != nil {
			return nil, err
		}
		res[k] = b.reduceTo(b.mul(dY[0], n.Input[1-k]), ys, xs)
	}
	return res, nil
}

// gradDiv: dA = dY/B, dB = -dY*Y/B (Y = A/B saves recomputing A/B²).
func gradDiv(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	res := make([]string, 2)
	if need[0] {
		xs, err := b.shape(n.Input[0])
		if err != nil {
			return nil, err
		}
		res[0] = b.reduceTo(b.op("Div", "div", []string{dY[0], n.Input[1]}), ys, xs)
	}
	if need[1] {
		xs, err := b.shape(n.Input[1])
		if err != nil {
			return nil, err
		}
		q := b.op("Div", "div", []string{b.mul(dY[0], n.Output[0]), n.Input[1]})
		res[1] = b.reduceTo(b.op("Neg", "neg", []string{q}), ys, xs)
	}
	return res, nil
}

// gradRelu masks dY with Y > 0. Reading Y rather than X leaves X to its
// producer alone, so ONNX Runtime can still fuse Conv and Relu.
func gradRelu(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	pos := b.op("Greater", "pos", []string{n.Output[0], b.scalar(0)})
	return []string{b.masked(dY[0], pos)}, nil
}

// masked is dY where cond holds and 0 elsewhere, as dY times cond cast to
// the float type: on ONNX Runtime's CPU provider that measured 16-30% less
// CPU time than Where(cond, dY, 0) over activation-sized tensors. Unlike
// Where it lets a NaN or infinite dY through where cond is false; the loss
// is NaN then anyway, which stops training.
func (b *builder) masked(dy, cond string) string {
	if b.tune.whereMask {
		return b.op("Where", "masked", []string{cond, dy, b.scalar(0)})
	}
	return b.mul(dy, b.op("Cast", "mask", []string{cond}, attrI("to", int64(b.dtype))))
}

// gradLeakyRelu: Y and X share their sign, so Y decides the slope.
func gradLeakyRelu(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	alpha := getF(n, "alpha", 0.01)
	pos := b.op("Greater", "pos", []string{n.Output[0], b.scalar(0)})
	neg := b.mul(dY[0], b.scalar(alpha))
	return []string{b.op("Where", "dleaky", []string{pos, dY[0], neg})}, nil
}

// gradClip passes dY where min < Y < max (strictly, like PyTorch's
// hardtanh); bounds come from inputs (Constant nodes, initializers) or, in
// old opsets, attributes.
func gradClip(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	lo, hi := "", ""
	if len(n.Input) > 1 {
		lo = n.Input[1]
	}
	if len(n.Input) > 2 {
		hi = n.Input[2]
	}
	if a := findAttr(n, "min"); a != nil && lo == "" {
		lo = b.scalar(float64(a.GetF()))
	}
	if a := findAttr(n, "max"); a != nil && hi == "" {
		hi = b.scalar(float64(a.GetF()))
	}
	y := n.Output[0]
	var mask string
	if lo != "" {
		mask = b.op("Greater", "above", []string{y, lo})
	}
	if hi != "" {
		below := b.op("Less", "below", []string{y, hi})
		if mask == "" {
			mask = below
		} else {
			mask = b.op("And", "inside", []string{mask, below})
		}
	}
	if mask == "" {
		return []string{dY[0]}, nil
	}
	return []string{b.masked(dY[0], mask)}, nil
}

// gradSigmoid: dX = dY * Y * (1 - Y).
func gradSigmoid(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	y := n.Output[0]
	oneMinus := b.op("Sub", "one_minus", []string{b.scalar(1), y})
	return []string{b.mul(dY[0], b.mul(y, oneMinus))}, nil
}

// gradTanh: dX = dY * (1 - Y²).
func gradTanh(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	y := n.Output[0]
	d := b.op("Sub", "one_minus", []string{b.scalar(1), b.mul(y, y)})
	return []string{b.mul(dY[0], d)}, nil
}

// gradSqrt: dX = dY / (2Y).
func gradSqrt(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	twice := b.mul(n.Output[0], b.scalar(2))
	return []string{b.op("Div", "dsqrt", []string{dY[0], twice})}, nil
}

// gradHardSigmoid: dX = alpha*dY where 0 < Y < 1.
func gradHardSigmoid(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	alpha := getF(n, "alpha", 0.2)
	y := n.Output[0]
	inside := b.op("And", "inside", []string{
		b.op("Greater", "above", []string{y, b.scalar(0)}),
		b.op("Less", "below", []string{y, b.scalar(1)}),
	})
	return []string{b.op("Where", "dhsig", []string{inside, b.mul(dY[0], b.scalar(alpha)), b.scalar(0)})}, nil
}

// gradHardSwish: dY/dX is 0 below -3, 1 above 3 and X/3 + 1/2 between
// (PyTorch's convention at the kinks).
func gradHardSwish(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	x := n.Input[0]
	mid := b.op("Add", "mid", []string{b.mul(x, b.scalar(1.0/3)), b.scalar(0.5)})
	upper := b.op("Where", "upper", []string{b.op("Greater", "above", []string{x, b.scalar(3)}), b.scalar(1), mid})
	slope := b.op("Where", "slope", []string{b.op("Less", "below", []string{x, b.scalar(-3)}), b.scalar(0), upper})
	return []string{b.mul(dY[0], slope)}, nil
}

// gradSoftmax: dX = Y * (dY - sum(dY*Y, axis)).
func gradSoftmax(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	axis := normAxis(getI(n, "axis", -1), len(ys))
	y := n.Output[0]
	dot := b.op("ReduceSum", "dot", []string{b.mul(dY[0], y), b.ints([]int64{axis})}, attrI("keepdims", 1))
	return []string{b.mul(y, b.op("Sub", "centered", []string{dY[0], dot}))}, nil
}

// gradGemm: Y = alpha*A'B' + beta*C with A' = A or Aᵀ, B' = B or Bᵀ. Each
// gradient is one Gemm whose transposition flags absorb the transposes.
func gradGemm(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	alpha, beta := getF(n, "alpha", 1), getF(n, "beta", 1)
	ta, tb := getI(n, "transA", 0), getI(n, "transB", 0)
	a, w, d := n.Input[0], n.Input[1], dY[0]
	gemm := func(hint, x, y string, tx, ty int64) string {
		attrs := []*onnxpb.AttributeProto{attrI("transA", tx), attrI("transB", ty)}
		if alpha != 1 {
			attrs = append(attrs, attrF("alpha", alpha))
		}
		return b.op("Gemm", hint, []string{x, y}, attrs...)
	}
	res := make([]string, len(n.Input))
	if need[0] {
		if ta == 0 {
			res[0] = gemm("dA", d, w, 0, 1-tb)
		} else {
			res[0] = gemm("dA", w, d, tb, 1)
		}
	}
	if need[1] {
		if tb == 0 {
			res[1] = gemm("dB", a, d, 1-ta, 0)
		} else {
			res[1] = gemm("dB", d, a, 1, ta)
		}
	}
	if len(n.Input) > 2 && need[2] {
		ys, err := b.shape(n.Output[0])
		if err != nil {
			return nil, err
		}
		cs, err := b.shape(n.Input[2])
		if err != nil {
			return nil, err
		}
		dc := d
		if beta != 1 {
			dc = b.mul(d, b.scalar(beta))
		}
		res[2] = b.reduceTo(dc, ys, cs)
	}
	return res, nil
}

// gradMatMul: dA = dY·Bᵀ, dB = Aᵀ·dY, summed over broadcast batch axes.
func gradMatMul(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	as, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	bs, err := b.shape(n.Input[1])
	if err != nil {
		return nil, err
	}
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	if len(as) < 2 || len(bs) < 2 {
		return nil, fmt.Errorf("MatMul of ranks %d and %d: only ranks >= 2 are supported", len(as), len(bs))
	}
	swap := func(t string, rank int) string {
		perm := make([]int64, rank)
		for i := range perm {
			perm[i] = int64(i)
		}
		perm[rank-1], perm[rank-2] = perm[rank-2], perm[rank-1]
		return b.op("Transpose", "T", []string{t}, attrIs("perm", perm))
	}
	res := make([]string, 2)
	if need[0] {
		p := b.op("MatMul", "dA", []string{dY[0], swap(n.Input[1], len(bs))})
		ps, _ := matmulShape(ys, swapLast(bs))
		res[0] = b.reduceTo(p, ps, as)
	}
	if need[1] {
		p := b.op("MatMul", "dB", []string{swap(n.Input[0], len(as)), dY[0]})
		ps, _ := matmulShape(swapLast(as), ys)
		res[1] = b.reduceTo(p, ps, bs)
	}
	return res, nil
}

func swapLast(s []int64) []int64 {
	s = slices.Clone(s)
	s[len(s)-1], s[len(s)-2] = s[len(s)-2], s[len(s)-1]
	return s
}

// gradReshape covers Flatten, Reshape, Squeeze and Unsqueeze: reshape dY
// back to the input's static shape.
func gradReshape(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	return []string{b.reshape(dY[0], xs)}, nil
}

// gradTranspose applies the inverse permutation.
func gradTranspose(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	perm := getIs(n, "perm")
	if perm == nil {
		for i := len(xs) - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	return []string{b.op("Transpose", "dT", []string{dY[0]}, attrIs("perm", inv))}, nil
}

// gradConcat splits dY along the axis: one Split when every input needs a
// gradient, else a Slice per input that does (no copies of the others).
func gradConcat(b *builder, n *onnxpb.NodeProto, dY []string, need []bool) ([]string, error) {
	ys, err := b.shape(n.Output[0])
	if err != nil {
		return nil, err
	}
	axis := normAxis(getI(n, "axis", 0), len(ys))
	sizes := make([]int64, len(n.Input))
	all := true
	for k, in := range n.Input {
		s, err := b.shape(in)
		if err != nil {
			return nil, err
		}
		sizes[k] = s[axis]
		all = all && need[k]
	}
	if all && len(n.Input) > 1 {
		return b.opN("Split", "dconcat", []string{dY[0], b.ints(sizes)}, len(sizes), attrI("axis", axis)), nil
	}
	res := make([]string, len(n.Input))
	start := int64(0)
	for k := range n.Input {
		if need[k] {
			res[k] = b.op("Slice", "dconcat", []string{
				dY[0], b.ints([]int64{start}), b.ints([]int64{start + sizes[k]}), b.ints([]int64{axis}),
			})
		}
		start += sizes[k]
	}
	return res, nil
}

// gradPad crops dY back (constant mode only): a Slice when every pad is
// non-negative, else a Pad by the opposite amounts.
func gradPad(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	if mode := getS(n, "mode", "constant"); mode != "constant" {
		return nil, fmt.Errorf("pad mode %q: only constant has a gradient here", mode)
	}
	if len(n.Input) > 3 && n.Input[3] != "" {
		return nil, fmt.Errorf("pad axes input is not supported")
	}
	t, ok := b.consts[n.Input[1]]
	if !ok {
		return nil, fmt.Errorf("pads %q are not constant", n.Input[1])
	}
	pads := tensorInts(t)
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	r := len(xs)
	neg := false
	starts, ends, axes := []int64{}, []int64{}, []int64{}
	for i := range r {
		if pads[i] < 0 || pads[i+r] < 0 {
			neg = true
		}
		if pads[i] != 0 || pads[i+r] != 0 {
			starts = append(starts, pads[i])
			ends = append(ends, pads[i]+xs[i])
			axes = append(axes, int64(i))
		}
	}
	if len(axes) == 0 {
		return []string{dY[0]}, nil
	}
	if neg {
		opp := make([]int64, len(pads))
		for i, p := range pads {
			opp[i] = -p
		}
		return []string{b.op("Pad", "dpad", []string{dY[0], b.ints(opp)})}, nil
	}
	return []string{b.op("Slice", "dpad", []string{dY[0], b.ints(starts), b.ints(ends), b.ints(axes)})}, nil
}

// gradReduce (ReduceMean, ReduceSum): reshape dY to keep the reduced axes,
// scale by 1/n for the mean, and expand to the input's shape.
func gradReduce(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	axes := getIs(n, "axes")
	if n.GetOpType() == "ReduceSum" && len(n.Input) > 1 && n.Input[1] != "" {
		t, ok := b.consts[n.Input[1]]
		if !ok {
			return nil, fmt.Errorf("axes %q are not constant", n.Input[1])
		}
		axes = tensorInts(t)
	}
	if axes == nil && getI(n, "noop_with_empty_axes", 0) != 0 {
		return []string{dY[0]}, nil
	}
	kept := reducedShape(xs, axes, true)
	d := dY[0]
	if getI(n, "keepdims", 1) == 0 {
		d = b.reshape(d, kept)
	}
	if n.GetOpType() == "ReduceMean" {
		d = b.mul(d, b.scalar(float64(prod(kept))/float64(prod(xs))))
	}
	return []string{b.op("Expand", "expand", []string{d, b.ints(xs)})}, nil
}

// gradGlobalAveragePool spreads dY/(H*W) over the window.
func gradGlobalAveragePool(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	d := b.mul(dY[0], b.scalar(1/float64(prod(xs[2:]))))
	return []string{b.op("Expand", "expand", []string{d, b.ints(xs)})}, nil
}

// gradGlobalMaxPool routes dY to the arg max through a whole-plane MaxPool
// with Indices: exact even with ties, where an equality mask would split it.
func gradGlobalMaxPool(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	idx := b.opN("MaxPool", "argmax", []string{n.Input[0]}, 2, attrIs("kernel_shape", xs[2:]))[1]
	return []string{b.scatter(dY[0], idx, xs)}, nil
}

// scatter adds the values of d into a zero tensor of shape xs at the flat
// indices idx (MaxPool's Indices count over the whole tensor).
func (b *builder) scatter(d, idx string, xs []int64) string {
	flat := []int64{-1}
	upd := b.reshape(d, flat)
	at := b.reshape(idx, flat)
	z := b.zeros("scatter", []int64{prod(xs)})
	s := b.op("ScatterElements", "scatter", []string{z, at, upd},
		attrI("axis", 0), attrS("reduction", "add"))
	return b.reshape(s, xs)
}

// gradMaxPool scatters dY to the positions MaxPool picked, read from its
// Indices output (added to the forward node when missing, so the forward
// pass finds them once). Overlapping windows add up.
func gradMaxPool(b *builder, n *onnxpb.NodeProto, dY []string, _ []bool) ([]string, error) {
	xs, err := b.shape(n.Input[0])
	if err != nil {
		return nil, err
	}
	if getI(n, "storage_order", 0) != 0 {
		return nil, fmt.Errorf("storage_order 1 is not supported")
	}
	if len(n.Output) < 2 || n.Output[1] == "" {
		idx := b.name("indices")
		if len(n.Output) < 2 {
			n.Output = append(n.Output, idx)
		} else {
			n.Output[1] = idx
		}
	}
	return []string{b.scatter(dY[0], n.Output[1], xs)}, nil
}
