package autodiff

import (
	"fmt"
	"slices"

	"stitch/models/onnxpb"
)

// InferShapes returns the static shape of every tensor of g given input
// shapes (for the supported ops). Graph inputs missing from inputShapes take
// their declared shape when it is fully static. Outputs of operators it does
// not know are left out of the map rather than failing, so that constant
// plumbing off the gradient path does no harm; an inconsistent shape (a
// MatMul whose inner dimensions differ, say) is an error naming the node.
func InferShapes(g *onnxpb.GraphProto, inputShapes map[string][]int64) (map[string][]int64, error) {
	shapes := map[string][]int64{}
	consts := map[string][]int64{} // values of small integer tensors
	for _, t := range g.Initializer {
		shapes[t.GetName()] = nonNil(t.GetDims())
		if isIntType(t.GetDataType()) {
			consts[t.GetName()] = tensorInts(t)
		}
	}
	for _, in := range g.Input {
		name := in.GetName()
		if s, ok := inputShapes[name]; ok {
			shapes[name] = slices.Clone(s)
			continue
		}
		if _, ok := shapes[name]; ok {
			continue // an initializer also listed as input
		}
		s, ok := declaredShape(in)
		if !ok {
			return nil, fmt.Errorf("input %q: no static shape given", name)
		}
		shapes[name] = s
	}
	for _, n := range g.Node {
		if err := inferNode(n, shapes, consts); err != nil {
			return nil, fmt.Errorf("shape of node %q (%s): %w", n.GetName(), n.GetOpType(), err)
		}
	}
	return shapes, nil
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return slices.Clone(s)
}

func isIntType(dt int32) bool {
	return dt == int32(onnxpb.TensorProto_INT64) || dt == int32(onnxpb.TensorProto_INT32)
}

func declaredShape(v *onnxpb.ValueInfoProto) ([]int64, bool) {
	tt := v.GetType().GetTensorType()
	if tt == nil || tt.GetShape() == nil {
		return nil, false
	}
	var s []int64
	for _, d := range tt.GetShape().GetDim() {
		dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
		if !ok || dv.DimValue <= 0 {
			return nil, false
		}
		s = append(s, dv.DimValue)
	}
	return nonNil(s), true
}

// inferNode sets the shapes of n's outputs when its inputs' shapes are known.
func inferNode(n *onnxpb.NodeProto, shapes, consts map[string][]int64) error {
	in := func(k int) ([]int64, bool) {
		if k >= len(n.Input) || n.Input[k] == "" {
			return nil, false
		}
		s, ok := shapes[n.Input[k]]
		return s, ok
	}
	set := func(k int, s []int64) {
		if k < len(n.Output) && n.Output[k] != "" {
			shapes[n.Output[k]] = s
		}
	}
	op := n.GetOpType()
	if op == "Constant" {
		if t := constantValue(n); t != nil && len(n.Output) == 1 {
			set(0, nonNil(t.GetDims()))
			if isIntType(t.GetDataType()) {
				consts[n.Output[0]] = tensorInts(t)
			}
		}
		return nil
	}
	x, ok := in(0)
	if !ok {
		if op == "Sum" || op == "Concat" {
			return nil
		}
		return nil // unknown input: leave the outputs unknown
	}
	switch op {
	case "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
		"Identity", "Softmax", "LogSoftmax", "Neg", "Exp", "Log", "Sqrt", "Reciprocal",
		"Abs", "Cast", "Erf", "Elu", "Selu", "Softplus", "Not", "Sign", "Floor", "Ceil", "Round":
		set(0, slices.Clone(x))
		if op == "Identity" {
			if c, ok := consts[n.Input[0]]; ok {
				consts[n.Output[0]] = c
			}
		}
	case "Dropout":
		set(0, slices.Clone(x))
		set(1, slices.Clone(x))
	case "BatchNormalization":
		set(0, slices.Clone(x))
		if len(x) > 1 {
			set(1, []int64{x[1]})
			set(2, []int64{x[1]})
		}
	case "Add", "Sub", "Mul", "Div", "Pow", "Sum", "Max", "Min", "Mean", "Equal", "Greater",
		"Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Where":
		out := x
		for k := 1; k < len(n.Input); k++ {
			s, ok := in(k)
			if !ok {
				return nil
			}
			var err error
			if out, err = broadcast(out, s); err != nil {
				return err
			}
		}
		set(0, out)
	case "Conv":
		w, ok := in(1)
		if !ok {
			return nil
		}
		geo, err := convGeometry(n, x, w[2:])
		if err != nil {
			return err
		}
		set(0, append([]int64{x[0], w[0]}, geo.out...))
	case "MaxPool", "AveragePool":
		geo, err := convGeometry(n, x, getIs(n, "kernel_shape"))
		if err != nil {
			return err
		}
		s := append([]int64{x[0], x[1]}, geo.out...)
		set(0, s)
		set(1, slices.Clone(s))
	case "GlobalAveragePool", "GlobalMaxPool":
		s := slices.Clone(x)
		for i := 2; i < len(s); i++ {
			s[i] = 1
		}
		set(0, s)
	case "Flatten":
		axis := getI(n, "axis", 1)
		if axis < 0 {
			axis += int64(len(x))
		}
		set(0, []int64{prod(x[:axis]), prod(x[axis:])})
	case "Reshape":
		target, ok := consts[n.Input[1]]
		if !ok {
			return nil
		}
		s, err := reshapeTarget(x, target, getI(n, "allowzero", 0) != 0)
		if err != nil {
			return err
		}
		set(0, s)
	case "Squeeze", "Unsqueeze":
		var axes []int64
		if len(n.Input) > 1 && n.Input[1] != "" {
			a, ok := consts[n.Input[1]]
			if !ok {
				return nil
			}
			axes = a
		}
		set(0, squeezeShape(op, x, axes))
	case "Transpose":
		perm := getIs(n, "perm")
		if perm == nil {
			for i := len(x) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		s := make([]int64, len(x))
		for i, p := range perm {
			s[i] = x[p]
		}
		set(0, s)
	case "Concat":
		axis := normAxis(getI(n, "axis", 0), len(x))
		s := slices.Clone(x)
		s[axis] = 0
		for k := range n.Input {
			sk, ok := in(k)
			if !ok {
				return nil
			}
			s[axis] += sk[axis]
		}
		set(0, s)
	case "Pad":
		pads, ok := consts[n.Input[1]]
		if !ok || len(pads) != 2*len(x) {
			return nil
		}
		s := slices.Clone(x)
		for i := range s {
			s[i] += pads[i] + pads[i+len(x)]
		}
		set(0, s)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin":
		axes := getIs(n, "axes")
		if op == "ReduceSum" && len(n.Input) > 1 && n.Input[1] != "" {
			a, ok := consts[n.Input[1]]
			if !ok {
				return nil
			}
			axes = a
		}
		set(0, reducedShape(x, axes, getI(n, "keepdims", 1) != 0))
	case "Gemm":
		w, ok := in(1)
		if !ok || len(x) != 2 || len(w) != 2 {
			return nil
		}
		m, k := x[0], x[1]
		if getI(n, "transA", 0) != 0 {
			m, k = k, m
		}
		k2, nn := w[0], w[1]
		if getI(n, "transB", 0) != 0 {
			k2, nn = nn, k2
		}
		if k != k2 {
			return fmt.Errorf("inner dimensions %d and %d differ", k, k2)
		}
		set(0, []int64{m, nn})
	case "MatMul":
		w, ok := in(1)
		if !ok {
			return nil
		}
		s, err := matmulShape(x, w)
		if err != nil {
			return err
		}
		set(0, s)
	case "Shape":
		set(0, []int64{int64(len(x))})
		consts[n.Output[0]] = slices.Clone(x)
	}
	return nil
}

func normAxis(a int64, rank int) int64 {
	if a < 0 {
		a += int64(rank)
	}
	return a
}

func prod(s []int64) int64 {
	p := int64(1)
	for _, d := range s {
		p *= d
	}
	return p
}

// broadcast returns the numpy broadcast of two shapes.
func broadcast(a, b []int64) ([]int64, error) {
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
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

func reshapeTarget(x, target []int64, allowZero bool) ([]int64, error) {
	s := slices.Clone(target)
	infer := -1
	known := int64(1)
	for i, d := range s {
		switch {
		case d == 0 && !allowZero:
			s[i] = x[i]
			known *= s[i]
		case d == -1:
			infer = i
		default:
			known *= d
		}
	}
	if infer >= 0 {
		if known == 0 {
			return nil, fmt.Errorf("reshape %v to %v", x, target)
		}
		s[infer] = prod(x) / known
	}
	if prod(s) != prod(x) {
		return nil, fmt.Errorf("reshape %v to %v changes the size", x, target)
	}
	return s, nil
}

func squeezeShape(op string, x, axes []int64) []int64 {
	if op == "Unsqueeze" {
		rank := len(x) + len(axes)
		marked := make([]bool, rank)
		for _, a := range axes {
			marked[normAxis(a, rank)] = true
		}
		out := make([]int64, 0, rank)
		j := 0
		for i := range rank {
			if marked[i] {
				out = append(out, 1)
			} else {
				out = append(out, x[j])
				j++
			}
		}
		return out
	}
	marked := make([]bool, len(x))
	for _, a := range axes {
		marked[normAxis(a, len(x))] = true
	}
	out := []int64{}
	for i, d := range x {
		if (axes == nil && d == 1) || marked[i] {
			continue
		}
		out = append(out, d)
	}
	return out
}

func reducedShape(x, axes []int64, keep bool) []int64 {
	marked := make([]bool, len(x))
	for _, a := range axes {
		marked[normAxis(a, len(x))] = true
	}
	out := []int64{}
	for i, d := range x {
		switch {
		case axes != nil && !marked[i]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
	}
	return out
}

func matmulShape(a, b []int64) ([]int64, error) {
	if len(a) < 2 || len(b) < 2 {
		return nil, fmt.Errorf("MatMul of ranks %d and %d: only ranks >= 2 are supported", len(a), len(b))
	}
	if a[len(a)-1] != b[len(b)-2] {
		return nil, fmt.Errorf("MatMul %v x %v: inner dimensions differ", a, b)
	}
	batch, err := broadcast(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, err
	}
	return append(batch, a[len(a)-2], b[len(b)-1]), nil
}

// geometry is the resolved window arithmetic of a Conv or pooling node over
// its spatial axes: explicit pads whatever auto_pad said.
type geometry struct {
	kernel, strides, dilations []int64
	padBegin, padEnd           []int64
	out                        []int64
}

// convGeometry resolves strides, dilations, pads (auto_pad included) and the
// output size of n for input x (rank 2+s) and spatial kernel size k.
func convGeometry(n *onnxpb.NodeProto, x, kernel []int64) (geometry, error) {
	sp := len(x) - 2
	if sp < 1 || len(kernel) != sp {
		return geometry{}, fmt.Errorf("input %v and kernel %v do not match", x, kernel)
	}
	g := geometry{
		kernel: slices.Clone(kernel), strides: getIs(n, "strides"), dilations: getIs(n, "dilations"),
		padBegin: make([]int64, sp), padEnd: make([]int64, sp), out: make([]int64, sp),
	}
	if g.strides == nil {
		g.strides = ones(sp)
	}
	if g.dilations == nil {
		g.dilations = ones(sp)
	}
	pads := getIs(n, "pads")
	autoPad := getS(n, "auto_pad", "NOTSET")
	ceil := getI(n, "ceil_mode", 0) != 0
	for i := range sp {
		in, s, d := x[2+i], g.strides[i], g.dilations[i]
		span := (kernel[i]-1)*d + 1
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			o := (in + s - 1) / s
			total := max((o-1)*s+span-in, 0)
			small := total / 2
			if autoPad == "SAME_UPPER" {
				g.padBegin[i], g.padEnd[i] = small, total-small
			} else {
				g.padBegin[i], g.padEnd[i] = total-small, small
			}
			g.out[i] = o
			continue
		case "VALID":
		case "NOTSET", "":
			if pads != nil {
				g.padBegin[i], g.padEnd[i] = pads[i], pads[i+sp]
			}
		default:
			return geometry{}, fmt.Errorf("unknown auto_pad %q", autoPad)
		}
		num := in + g.padBegin[i] + g.padEnd[i] - span
		if ceil {
			g.out[i] = (num+s-1)/s + 1
			// The last window must start inside the input or the left pad.
			if (g.out[i]-1)*s >= in+g.padBegin[i] {
				g.out[i]--
			}
		} else {
			g.out[i] = num/s + 1
		}
		if g.out[i] < 1 {
			return geometry{}, fmt.Errorf("input %v too small for kernel %v", x, kernel)
		}
	}
	return g, nil
}

func ones(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
