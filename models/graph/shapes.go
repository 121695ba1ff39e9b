package graph

import (
	"fmt"
	"slices"

	"stitch/models/onnxpb"
)

// InferShapes returns the shape of every value in g: graph inputs,
// initializers and node outputs. Unknown dims are -1. It follows the
// operators of the zoo and of common exports; an unknown operator is an
// error that names the node, since a guessed shape would be worse.
func InferShapes(g *onnxpb.GraphProto) (map[string][]int64, error) {
	shapes := map[string][]int64{}
	for _, v := range g.GetInput() {
		if _, dims, ok := TensorShape(v); ok {
			shapes[v.GetName()] = dims
		}
	}
	consts := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		shapes[t.GetName()] = t.GetDims()
		consts[t.GetName()] = t
	}
	nodes, err := TopoSort(g)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.GetOpType() == "Constant" {
			t := Attr(n, "value").GetT()
			if t == nil {
				return nil, fmt.Errorf("infer shapes: %s: only tensor values are supported", describe(n))
			}
			consts[n.Output[0]] = t
		}
		in := make([][]int64, len(n.GetInput()))
		for i, name := range n.GetInput() {
			if name == "" {
				continue
			}
			s, ok := shapes[name]
			if !ok {
				return nil, fmt.Errorf("infer shapes: %s: input %s has no known shape", describe(n), name)
			}
			in[i] = s
		}
		out, err := inferNode(n, in, consts)
		if err != nil {
			return nil, fmt.Errorf("infer shapes: %s: %w", describe(n), err)
		}
		for i, o := range n.GetOutput() {
			if i < len(out) && o != "" {
				shapes[o] = out[i]
			}
		}
	}
	return shapes, nil
}

// sameShape are the operators whose (first) output has their first
// input's shape.
var sameShape = map[string]bool{
	"Relu": true, "Clip": true, "Sigmoid": true, "Tanh": true, "LeakyRelu": true,
	"Dropout": true, "Identity": true, "BatchNormalization": true, "Softmax": true,
	"LogSoftmax": true, "LRN": true, "HardSigmoid": true, "HardSwish": true, "Neg": true,
	"Exp": true, "Log": true, "Sqrt": true, "Abs": true, "Cast": true, "Elu": true,
	"Selu": true, "PRelu": true, "Erf": true, "Reciprocal": true, "Softplus": true,
	"InstanceNormalization": true, "LayerNormalization": true, "Sign": true,
}

// broadcast are the elementwise operators with numpy broadcasting.
var broadcast = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true,
	"Min": true, "Sum": true, "Mean": true, "Where": true, "Equal": true,
	"Greater": true, "Less": true,
}

func inferNode(n *onnxpb.NodeProto, in [][]int64, consts map[string]*onnxpb.TensorProto) ([][]int64, error) {
	op := n.GetOpType()
	switch {
	case op == "Constant":
		return [][]int64{Attr(n, "value").GetT().GetDims()}, nil
	case sameShape[op]:
		return [][]int64{clone(in[0])}, nil
	case broadcast[op]:
		out := in[0]
		for _, s := range in[1:] {
			var err error
			if out, err = broadcastShapes(out, s); err != nil {
				return nil, err
			}
		}
		return [][]int64{out}, nil
	}
	switch op {
	case "Conv":
		return one(convShape(n, in[0], in[1]))
	case "MaxPool", "AveragePool":
		return one(poolShape(n, in[0]))
	case "GlobalAveragePool", "GlobalMaxPool":
		if len(in[0]) < 3 {
			return nil, fmt.Errorf("input rank %d, want at least 3", len(in[0]))
		}
		out := clone(in[0])
		for i := 2; i < len(out); i++ {
			out[i] = 1
		}
		return [][]int64{out}, nil
	case "Flatten":
		axis := int(AttrIntOr(n, "axis", 1))
		if axis < 0 {
			axis += len(in[0])
		}
		return [][]int64{{product(in[0][:axis]), product(in[0][axis:])}}, nil
	case "Gemm":
		return one(gemmShape(n, in[0], in[1]))
	case "MatMul":
		return one(matMulShape(in[0], in[1]))
	case "Concat":
		return one(concatShape(n, in))
	case "Reshape":
		return one(reshapeShape(n, in[0], consts))
	case "Transpose":
		perm := AttrIntsOr(n, "perm", nil)
		out := make([]int64, len(in[0]))
		for i := range out {
			if perm == nil {
				out[i] = in[0][len(out)-1-i]
			} else {
				out[i] = in[0][perm[i]]
			}
		}
		return [][]int64{out}, nil
	case "Squeeze", "Unsqueeze", "ReduceMean", "ReduceSum", "ReduceMax":
		return one(axesShape(n, in, consts))
	}
	return nil, fmt.Errorf("operator %s is not supported by shape inference", op)
}

func one(s []int64, err error) ([][]int64, error) {
	if err != nil {
		return nil, err
	}
	return [][]int64{s}, nil
}

func clone(s []int64) []int64 { return append([]int64{}, s...) }

// product multiplies dims; any unknown dim makes the result unknown.
func product(dims []int64) int64 {
	p := int64(1)
	for _, d := range dims {
		if d < 0 {
			return -1
		}
		p *= d
	}
	return p
}

func broadcastShapes(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		da, db := int64(1), int64(1)
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		case da < 0 || db < 0:
			out[i] = max(da, db)
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// spatial computes one output dim of a convolution or pooling window.
func spatial(in, kernel, stride, dilation, padBegin, padEnd int64, autoPad string, ceil bool) int64 {
	if in < 0 {
		return -1
	}
	eff := (kernel-1)*dilation + 1
	switch autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		return (in + stride - 1) / stride
	case "VALID":
		return (in-eff)/stride + 1
	}
	num := in + padBegin + padEnd - eff
	if ceil {
		return (num+stride-1)/stride + 1
	}
	return num/stride + 1
}

func windowShape(n *onnxpb.NodeProto, x, kernel []int64, channels int64, ceil bool) ([]int64, error) {
	if len(x) != 2+len(kernel) {
		return nil, fmt.Errorf("input rank %d for a %d-D kernel", len(x), len(kernel))
	}
	k := len(kernel)
	strides := AttrIntsOr(n, "strides", nil)
	dilations := AttrIntsOr(n, "dilations", nil)
	pads := AttrIntsOr(n, "pads", nil)
	autoPad := AttrStringOr(n, "auto_pad", "NOTSET")
	out := []int64{x[0], channels}
	for i := range k {
		s, d, pb, pe := int64(1), int64(1), int64(0), int64(0)
		if strides != nil {
			s = strides[i]
		}
		if dilations != nil {
			d = dilations[i]
		}
		if pads != nil {
			pb, pe = pads[i], pads[i+k]
		}
		out = append(out, spatial(x[2+i], kernel[i], s, d, pb, pe, autoPad, ceil))
	}
	return out, nil
}

func convShape(n *onnxpb.NodeProto, x, w []int64) ([]int64, error) {
	if len(w) < 3 {
		return nil, fmt.Errorf("weight rank %d, want at least 3", len(w))
	}
	kernel := AttrIntsOr(n, "kernel_shape", w[2:])
	return windowShape(n, x, kernel, w[0], false)
}

func poolShape(n *onnxpb.NodeProto, x []int64) ([]int64, error) {
	kernel := AttrIntsOr(n, "kernel_shape", nil)
	if kernel == nil {
		return nil, fmt.Errorf("no kernel_shape")
	}
	if len(x) < 2 {
		return nil, fmt.Errorf("input rank %d", len(x))
	}
	return windowShape(n, x, kernel, x[1], AttrIntOr(n, "ceil_mode", 0) != 0)
}

func gemmShape(n *onnxpb.NodeProto, a, b []int64) ([]int64, error) {
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("input ranks %d and %d, want 2 and 2", len(a), len(b))
	}
	m, ka := a[0], a[1]
	if AttrIntOr(n, "transA", 0) != 0 {
		m, ka = a[1], a[0]
	}
	kb, cols := b[0], b[1]
	if AttrIntOr(n, "transB", 0) != 0 {
		kb, cols = b[1], b[0]
	}
	if ka >= 0 && kb >= 0 && ka != kb {
		return nil, fmt.Errorf("inner dims %d and %d differ", ka, kb)
	}
	return []int64{m, cols}, nil
}

func matMulShape(a, b []int64) ([]int64, error) {
	if len(a) < 2 || len(b) < 2 {
		return nil, fmt.Errorf("input ranks %d and %d: 1-D MatMul is not supported", len(a), len(b))
	}
	batch, err := broadcastShapes(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, err
	}
	return append(batch, a[len(a)-2], b[len(b)-1]), nil
}

func concatShape(n *onnxpb.NodeProto, in [][]int64) ([]int64, error) {
	out := clone(in[0])
	axis := int(AttrIntOr(n, "axis", 0))
	if axis < 0 {
		axis += len(out)
	}
	if axis < 0 || axis >= len(out) {
		return nil, fmt.Errorf("axis %d out of range for rank %d", axis, len(out))
	}
	for _, s := range in[1:] {
		if len(s) != len(out) {
			return nil, fmt.Errorf("ranks %d and %d differ", len(out), len(s))
		}
		if out[axis] < 0 || s[axis] < 0 {
			out[axis] = -1
		} else {
			out[axis] += s[axis]
		}
	}
	return out, nil
}

// constInts reads an int64 constant (initializer or Constant node).
func constInts(consts map[string]*onnxpb.TensorProto, name string) ([]int64, error) {
	t, ok := consts[name]
	if !ok {
		return nil, fmt.Errorf("%s is not a constant", name)
	}
	return InitializerInt64s(t)
}

func reshapeShape(n *onnxpb.NodeProto, x []int64, consts map[string]*onnxpb.TensorProto) ([]int64, error) {
	target, err := constInts(consts, n.Input[1])
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	out := clone(target)
	infer := -1
	for i, d := range out {
		switch {
		case d == 0 && AttrIntOr(n, "allowzero", 0) == 0:
			out[i] = x[i]
		case d == -1:
			infer = i
		}
	}
	if infer >= 0 {
		known := int64(1)
		for i, d := range out {
			if i != infer {
				known *= d
			}
		}
		total := product(x)
		if total < 0 || known <= 0 {
			out[infer] = -1
		} else {
			out[infer] = total / known
		}
	}
	return out, nil
}

// axesShape handles the operators that drop or add axes: Squeeze and
// Unsqueeze (axes as an input since opset 13) and the reductions.
func axesShape(n *onnxpb.NodeProto, in [][]int64, consts map[string]*onnxpb.TensorProto) ([]int64, error) {
	op := n.GetOpType()
	axes := AttrIntsOr(n, "axes", nil)
	if axes == nil && len(n.Input) > 1 && n.Input[1] != "" {
		var err error
		if axes, err = constInts(consts, n.Input[1]); err != nil {
			return nil, fmt.Errorf("axes: %w", err)
		}
	}
	x := in[0]
	rank := len(x)
	if op == "Unsqueeze" {
		rank += len(axes)
	}
	norm := make([]int64, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += int64(rank)
		}
		norm[i] = a
	}
	switch op {
	case "Unsqueeze":
		out := make([]int64, 0, rank)
		j := 0
		for i := range rank {
			if slices.Contains(norm, int64(i)) {
				out = append(out, 1)
			} else {
				out = append(out, x[j])
				j++
			}
		}
		return out, nil
	case "Squeeze":
		var out []int64
		for i, d := range x {
			if (axes == nil && d == 1) || slices.Contains(norm, int64(i)) {
				continue
			}
			out = append(out, d)
		}
		return out, nil
	}
	keep := AttrIntOr(n, "keepdims", 1) != 0
	var out []int64
	for i, d := range x {
		reduced := axes == nil || slices.Contains(norm, int64(i))
		switch {
		case !reduced:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return out, nil
}
