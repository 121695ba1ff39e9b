package autodiff

import (
	"cmp"
	"fmt"
	"math"
	"strconv"

	"stitch/models/onnxpb"
)

// Options tunes Backward.
type Options struct {
	// InputShapes gives the static shapes of graph inputs (the batch size is
	// fixed in a step graph). Inputs missing here must have a fully static
	// shape in the graph.
	InputShapes map[string][]int64
	// Prefix starts every name Backward generates (tensors, nodes,
	// initializers); the default is "grad/".
	Prefix string
	// AddOutputs adds each gradient of wrt as a graph output.
	AddOutputs bool
}

// DefaultPrefix is the prefix of generated names when Options.Prefix is empty.
const DefaultPrefix = "grad/"

// Backward appends to g the nodes computing, for every name in wrt
// (initializers or graph inputs), the gradient of a scalar objective whose
// gradient with respect to tensor out is the tensor seed (same shape as out;
// already present in g or a graph input). It returns wrt name -> the name of
// its gradient tensor (also added as graph outputs only if opts.AddOutputs).
// Tensors that do not depend on wrt are constants and get no gradient nodes.
//
// A parameter that out does not depend on gets a gradient of zeros. Backward
// may add an output to a forward node whose gradient needs it (the Indices
// of MaxPool, the mask of a training Dropout); the node computes the same.
// It also declares the graph inputs named in opts.InputShapes with those
// static shapes, which the generated Reshapes and constants assume.
func Backward(g *onnxpb.GraphProto, out, seed string, wrt []string, opts Options) (map[string]string, error) {
	return backward(g, out, seed, wrt, opts, tuning{})
}

// tuning picks between formulations of the same gradient; the zero value is
// the default, and benchmarks try the others.
type tuning struct {
	unfold     int  // unfoldConv or unfoldSlice, for weightGrad = wgradPerSample
	weightGrad int  // wgradAuto, wgradGemm or wgradPerSample
	perTapGemm bool // one weight-gradient product per kernel tap, not one of all taps
	whereMask  bool // Relu and Clip gradients through Where, not a Mul by the cast mask
}

func backward(g *onnxpb.GraphProto, out, seed string, wrt []string, opts Options,
	tune tuning,
) (map[string]string, error) {
	if len(wrt) == 0 {
		return map[string]string{}, nil
	}
	shapes, err := InferShapes(g, opts.InputShapes)
	if err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	b, err := newBuilder(g, shapes, opts.Prefix)
	if err != nil {
		return nil, err
	}
	b.tune = tune
	for _, in := range g.Input {
		if s, ok := opts.InputShapes[in.GetName()]; ok {
			if tt := in.GetType().GetTensorType(); tt != nil {
				in.Type = valueInfo(in.GetName(), tt.GetElemType(), s).Type
			}
		}
	}
	if err := b.setDType(wrt); err != nil {
		return nil, err
	}
	if _, ok := shapes[out]; !ok {
		return nil, fmt.Errorf("autodiff: output %q: unknown tensor or shape", out)
	}
	if !b.exists[seed] {
		return nil, fmt.Errorf("autodiff: seed %q is neither a tensor of the graph nor an input", seed)
	}

	active, err := b.activeTensors(wrt)
	if err != nil {
		return nil, err
	}
	needed := b.neededNodes(out)

	grads := map[string][]string{}
	if active[out] {
		grads[out] = []string{seed}
	}
	nodes := append([]*onnxpb.NodeProto(nil), g.Node...)
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !needed[i] || !anyActive(n.Input, active) {
			continue
		}
		dY := make([]string, len(n.Output))
		any := false
		for k, o := range n.Output {
			if o == "" || len(grads[o]) == 0 {
				continue
			}
			dY[k] = b.sum(o, grads[o])
			any = true
		}
		if !any {
			continue
		}
		need := make([]bool, len(n.Input))
		for k, in := range n.Input {
			need[k] = in != "" && active[in] && differentiable(n.GetOpType(), k)
		}
		rule, ok := rules[n.GetOpType()]
		if !ok || n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
			return nil, fmt.Errorf("autodiff: node %q (%s): no gradient for this operator", n.GetName(), n.GetOpType())
		}
		b.cur = n
		dX, err := rule(b, n, dY, need)
		if err != nil {
			return nil, fmt.Errorf("autodiff: node %q (%s): %w", n.GetName(), n.GetOpType(), err)
		}
		for k, d := range dX {
			if d != "" && need[k] {
				grads[n.Input[k]] = append(grads[n.Input[k]], d)
			}
		}
	}

	b.cur = nil
	res := make(map[string]string, len(wrt))
	renamed := map[string]string{}
	for _, w := range wrt {
		if _, dup := res[w]; dup {
			continue
		}
		parts := make([]string, len(grads[w]))
		for i, p := range grads[w] {
			// An earlier parameter may have claimed (renamed) a shared tensor.
			parts[i] = cmp.Or(renamed[p], p)
		}
		var gname string
		if len(parts) == 0 {
			gname = b.zeros(w, b.shapes[w])
		} else {
			gname = b.sum(w, parts)
		}
		if claimed := b.claim(gname, b.prefix+w, seed); claimed != gname {
			renamed[gname] = claimed
			gname = claimed
		}
		res[w] = gname
		if opts.AddOutputs {
			g.Output = append(g.Output, valueInfo(gname, b.dtype, b.shapes[w]))
		}
	}
	g.Node = append(g.Node, b.nodes...)
	g.Initializer = append(g.Initializer, b.inits...)
	return res, nil
}

// differentiable reports whether input k of an op carries a gradient; shape,
// axes, pads, bounds and ratios are treated as constants.
func differentiable(op string, k int) bool {
	switch op {
	case "Reshape", "Pad", "ReduceSum", "Dropout", "Clip", "Squeeze", "Unsqueeze", "Expand":
		return k == 0
	}
	return true
}

// nonDifferentiableOutputs are ops whose outputs carry no gradient, so they
// do not make their consumers depend on the parameters.
var nonDifferentiableOutputs = map[string]bool{
	"Shape": true, "Size": true, "Equal": true, "Greater": true, "Less": true,
	"GreaterOrEqual": true, "LessOrEqual": true, "Not": true, "And": true, "Or": true,
	"ArgMax": true, "ArgMin": true, "NonZero": true, "ConstantOfShape": true,
}

func anyActive(names []string, active map[string]bool) bool {
	for _, n := range names {
		if n != "" && active[n] {
			return true
		}
	}
	return false
}

// activeTensors returns the tensors that depend on wrt: the parameters and
// the float outputs of nodes reading one of them.
func (b *builder) activeTensors(wrt []string) (map[string]bool, error) {
	active := map[string]bool{}
	for _, w := range wrt {
		if !b.isParam[w] {
			return nil, fmt.Errorf("autodiff: %q is neither an initializer nor a graph input", w)
		}
		active[w] = true
	}
	for _, n := range b.g.Node {
		if nonDifferentiableOutputs[n.GetOpType()] {
			continue
		}
		hit := false
		for k, in := range n.Input {
			if in != "" && active[in] && differentiable(n.GetOpType(), k) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		for k, o := range n.Output {
			// MaxPool's Indices and Dropout's mask are integers and booleans.
			if k > 0 && (n.GetOpType() == "MaxPool" || n.GetOpType() == "Dropout") {
				continue
			}
			active[o] = true
		}
	}
	return active, nil
}

// neededNodes marks the nodes out depends on, by index in g.Node.
func (b *builder) neededNodes(out string) []bool {
	needed := make([]bool, len(b.g.Node))
	want := map[string]bool{out: true}
	for i := len(b.g.Node) - 1; i >= 0; i-- {
		n := b.g.Node[i]
		for _, o := range n.Output {
			if want[o] {
				needed[i] = true
			}
		}
		if needed[i] {
			for _, in := range n.Input {
				want[in] = true
			}
		}
	}
	return needed
}

// builder accumulates the generated nodes and initializers.
type builder struct {
	g       *onnxpb.GraphProto
	prefix  string
	shapes  map[string][]int64
	dtype   int32
	exists  map[string]bool // every tensor name of g, for uniqueness
	isParam map[string]bool
	consts  map[string]*onnxpb.TensorProto // initializers and Constant outputs
	cur     *onnxpb.NodeProto              // node being differentiated, for names

	tune tuning

	nodes    []*onnxpb.NodeProto
	inits    []*onnxpb.TensorProto
	producer map[string]*onnxpb.NodeProto // of generated tensors
	uses     map[string]int               // consumers among generated nodes
	cache    map[string]string            // constants by value, to share them
}

func newBuilder(g *onnxpb.GraphProto, shapes map[string][]int64, prefix string) (*builder, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	b := &builder{
		g: g, prefix: prefix, shapes: shapes,
		exists: map[string]bool{}, isParam: map[string]bool{},
		consts: map[string]*onnxpb.TensorProto{}, producer: map[string]*onnxpb.NodeProto{},
		uses: map[string]int{}, cache: map[string]string{},
	}
	for _, t := range g.Initializer {
		b.exists[t.GetName()] = true
		b.isParam[t.GetName()] = true
		b.consts[t.GetName()] = t
	}
	for _, in := range g.Input {
		b.exists[in.GetName()] = true
		b.isParam[in.GetName()] = true
	}
	for _, n := range g.Node {
		for _, o := range n.Output {
			b.exists[o] = true
		}
		if n.GetName() != "" {
			b.exists[n.GetName()] = true
		}
		if n.GetOpType() == "Constant" && len(n.Output) == 1 {
			if t := constantValue(n); t != nil {
				b.consts[n.Output[0]] = t
			}
		}
	}
	return b, nil
}

// setDType takes the element type of the gradients from the first parameter.
func (b *builder) setDType(wrt []string) error {
	for _, t := range b.g.Initializer {
		if t.GetName() == wrt[0] {
			b.dtype = t.GetDataType()
		}
	}
	for _, in := range b.g.Input {
		if in.GetName() == wrt[0] {
			b.dtype = in.GetType().GetTensorType().GetElemType()
		}
	}
	switch onnxpb.TensorProto_DataType(b.dtype) {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_DOUBLE:
		return nil
	}
	return fmt.Errorf("autodiff: parameter %q: element type %d is neither float nor double", wrt[0], b.dtype)
}

// name returns an unused tensor name built from the current node and hint.
func (b *builder) name(hint string) string {
	base := b.prefix
	if b.cur != nil {
		base += b.cur.GetName()
		if b.cur.GetName() == "" && len(b.cur.Output) > 0 {
			base += b.cur.Output[0]
		}
		base += "/"
	}
	base += hint
	nm := base
	for i := 2; b.exists[nm]; i++ {
		nm = base + "_" + strconv.Itoa(i)
	}
	b.exists[nm] = true
	return nm
}

// op appends a one-output node and returns the output's name.
func (b *builder) op(opType, hint string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.opN(opType, hint, inputs, 1, attrs...)[0]
}

// opN appends a node with nOut outputs.
func (b *builder) opN(opType, hint string, inputs []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	outs := make([]string, nOut)
	for i := range outs {
		h := hint
		if nOut > 1 {
			h += strconv.Itoa(i)
		}
		outs[i] = b.name(h)
	}
	n := &onnxpb.NodeProto{
		OpType: &opType, Input: inputs, Output: outs, Attribute: attrs,
	}
	nm := b.name(hint + "_" + opType)
	n.Name = &nm
	b.nodes = append(b.nodes, n)
	for _, o := range outs {
		b.producer[o] = n
	}
	for _, in := range inputs {
		b.uses[in]++
	}
	return outs
}

// claim renames the generated tensor t to want when nothing else reads it,
// so that gradients of parameters get predictable names.
func (b *builder) claim(t, want, seed string) string {
	n, ok := b.producer[t]
	if !ok || b.uses[t] > 0 || t == seed || b.exists[want] && t != want {
		return t
	}
	for i, o := range n.Output {
		if o == t {
			n.Output[i] = want
		}
	}
	delete(b.producer, t)
	b.producer[want] = n
	b.exists[want] = true
	b.uses[want] = 1 // claimed once: a second parameter sharing it must not rename it
	return want
}

// sum accumulates the gradient contributions of tensor t.
func (b *builder) sum(t string, parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	saved := b.cur
	b.cur = nil
	s := b.op("Sum", t+"/sum", parts)
	b.cur = saved
	if sh, ok := b.shapes[t]; ok {
		b.shapes[s] = sh
	}
	return s
}

// ints adds (once) an int64 initializer and returns its name.
func (b *builder) ints(vals []int64, dims ...int64) string {
	if dims == nil {
		dims = []int64{int64(len(vals))}
	}
	key := fmt.Sprint("i64", dims, vals)
	if nm, ok := b.cache[key]; ok {
		return nm
	}
	saved := b.cur
	b.cur = nil
	nm := b.name("const/i64")
	b.cur = saved
	dt := int32(onnxpb.TensorProto_INT64)
	b.inits = append(b.inits, &onnxpb.TensorProto{
		Name: &nm, DataType: &dt, Dims: dims, Int64Data: append([]int64(nil), vals...),
	})
	b.cache[key] = nm
	return nm
}

// floats adds (once) an initializer of the gradient element type.
func (b *builder) floats(vals []float64, dims ...int64) string {
	key := fmt.Sprint("f", b.dtype, dims, vals)
	if nm, ok := b.cache[key]; ok {
		return nm
	}
	saved := b.cur
	b.cur = nil
	nm := b.name("const/f")
	b.cur = saved
	b.inits = append(b.inits, floatTensor(nm, b.dtype, vals, dims))
	b.cache[key] = nm
	return nm
}

// scalar returns a rank-0 constant of the gradient element type.
func (b *builder) scalar(v float64) string { return b.floats([]float64{v}) }

// zeros returns a tensor of zeros of the given shape (ConstantOfShape keeps
// the model small).
func (b *builder) zeros(hint string, shape []int64) string {
	val := floatTensor("", b.dtype, []float64{0}, []int64{1})
	val.Name = nil
	return b.op("ConstantOfShape", hint+"/zeros", []string{b.ints(shape)}, attrT("value", val))
}

func floatTensor(name string, dtype int32, vals []float64, dims []int64) *onnxpb.TensorProto {
	t := &onnxpb.TensorProto{Dims: dims, DataType: &dtype}
	if name != "" {
		t.Name = &name
	}
	if dtype == int32(onnxpb.TensorProto_DOUBLE) {
		t.DoubleData = append([]float64(nil), vals...)
		return t
	}
	t.FloatData = make([]float32, len(vals))
	for i, v := range vals {
		t.FloatData[i] = float32(v)
	}
	return t
}

func valueInfo(name string, dtype int32, shape []int64) *onnxpb.ValueInfoProto {
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(shape))
	for i, d := range shape {
		dims[i] = &onnxpb.TensorShapeProto_Dimension{
			Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d},
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: &name,
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: &dtype, Shape: &onnxpb.TensorShapeProto{Dim: dims}},
		}},
	}
}

// Attribute constructors.

func attrI(name string, v int64) *onnxpb.AttributeProto {
	t := onnxpb.AttributeProto_INT
	return &onnxpb.AttributeProto{Name: &name, Type: &t, I: &v}
}

func attrIs(name string, v []int64) *onnxpb.AttributeProto {
	t := onnxpb.AttributeProto_INTS
	return &onnxpb.AttributeProto{Name: &name, Type: &t, Ints: append([]int64(nil), v...)}
}

func attrF(name string, v float64) *onnxpb.AttributeProto {
	t := onnxpb.AttributeProto_FLOAT
	f := float32(v)
	return &onnxpb.AttributeProto{Name: &name, Type: &t, F: &f}
}

func attrS(name, v string) *onnxpb.AttributeProto {
	t := onnxpb.AttributeProto_STRING
	return &onnxpb.AttributeProto{Name: &name, Type: &t, S: []byte(v)}
}

func attrT(name string, v *onnxpb.TensorProto) *onnxpb.AttributeProto {
	t := onnxpb.AttributeProto_TENSOR
	return &onnxpb.AttributeProto{Name: &name, Type: &t, T: v}
}

// Attribute readers.

func findAttr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.Attribute {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func getI(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := findAttr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

func getF(n *onnxpb.NodeProto, name string, def float64) float64 {
	if a := findAttr(n, name); a != nil {
		return float64(a.GetF())
	}
	return def
}

func getIs(n *onnxpb.NodeProto, name string) []int64 {
	if a := findAttr(n, name); a != nil {
		return a.GetInts()
	}
	return nil
}

func getS(n *onnxpb.NodeProto, name, def string) string {
	if a := findAttr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// constFloat reads a scalar float constant (initializer or Constant node).
func (b *builder) constFloat(name string) (float64, bool) {
	t, ok := b.consts[name]
	if !ok {
		return 0, false
	}
	v := tensorFloats(t)
	if len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

func tensorFloats(t *onnxpb.TensorProto) []float64 {
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_FLOAT:
		if raw := t.GetRawData(); len(raw) > 0 {
			out := make([]float64, len(raw)/4)
			for i := range out {
				bits := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
				out[i] = float64(math.Float32frombits(bits))
			}
			return out
		}
		out := make([]float64, len(t.GetFloatData()))
		for i, v := range t.GetFloatData() {
			out[i] = float64(v)
		}
		return out
	case onnxpb.TensorProto_DOUBLE:
		if raw := t.GetRawData(); len(raw) > 0 {
			out := make([]float64, len(raw)/8)
			for i := range out {
				var bits uint64
				for k := 7; k >= 0; k-- {
					bits = bits<<8 | uint64(raw[8*i+k])
				}
				out[i] = math.Float64frombits(bits)
			}
			return out
		}
		return append([]float64(nil), t.GetDoubleData()...)
	}
	ints := tensorInts(t)
	out := make([]float64, len(ints))
	for i, v := range ints {
		out[i] = float64(v)
	}
	return out
}

func tensorInts(t *onnxpb.TensorProto) []int64 {
	switch onnxpb.TensorProto_DataType(t.GetDataType()) {
	case onnxpb.TensorProto_INT64:
		if raw := t.GetRawData(); len(raw) > 0 {
			out := make([]int64, len(raw)/8)
			for i := range out {
				var bits uint64
				for k := 7; k >= 0; k-- {
					bits = bits<<8 | uint64(raw[8*i+k])
				}
				out[i] = int64(bits)
			}
			return out
		}
		return append([]int64(nil), t.GetInt64Data()...)
	case onnxpb.TensorProto_INT32:
		if raw := t.GetRawData(); len(raw) > 0 {
			out := make([]int64, len(raw)/4)
			for i := range out {
				out[i] = int64(int32(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 |
					uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24))
			}
			return out
		}
		out := make([]int64, len(t.GetInt32Data()))
		for i, v := range t.GetInt32Data() {
			out[i] = int64(v)
		}
		return out
	}
	return nil
}

// constantValue returns the value of a Constant node as a tensor.
func constantValue(n *onnxpb.NodeProto) *onnxpb.TensorProto {
	for _, a := range n.Attribute {
		switch a.GetName() {
		case "value":
			return a.GetT()
		case "value_float":
			return floatTensor("", int32(onnxpb.TensorProto_FLOAT), []float64{float64(a.GetF())}, []int64{})
		case "value_floats":
			v := make([]float64, len(a.GetFloats()))
			for i, f := range a.GetFloats() {
				v[i] = float64(f)
			}
			return floatTensor("", int32(onnxpb.TensorProto_FLOAT), v, []int64{int64(len(v))})
		case "value_int":
			dt := int32(onnxpb.TensorProto_INT64)
			return &onnxpb.TensorProto{DataType: &dt, Dims: []int64{}, Int64Data: []int64{a.GetI()}}
		case "value_ints":
			dt := int32(onnxpb.TensorProto_INT64)
			return &onnxpb.TensorProto{DataType: &dt, Dims: []int64{int64(len(a.GetInts()))}, Int64Data: a.GetInts()}
		}
	}
	return nil
}
