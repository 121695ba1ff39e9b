package graph

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"stitch/models/onnxpb"
)

// Builder adds inputs, initializers, nodes and outputs to one model and
// hands out names that are unique in its graph.
type Builder struct {
	// Model is the model being built; its graph is edited in place.
	Model *onnxpb.ModelProto
	used  map[string]bool
	count map[string]int
}

// New starts an empty model named name: IR 8, opset 17, producer stitch.
func New(name string) *Builder {
	m := &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		ProducerName: proto.String("stitch"),
		OpsetImport: []*onnxpb.OperatorSetIdProto{
			{Domain: proto.String(""), Version: proto.Int64(Opset)},
		},
		Graph: &onnxpb.GraphProto{Name: proto.String(name)},
	}
	return Edit(m)
}

// Edit returns a builder that adds to m (changed in place). Every name
// already in the graph is reserved.
func Edit(m *onnxpb.ModelProto) *Builder {
	if m.Graph == nil {
		m.Graph = &onnxpb.GraphProto{}
	}
	b := &Builder{Model: m, used: map[string]bool{}, count: map[string]int{}}
	g := m.Graph
	for _, v := range g.Input {
		b.used[v.GetName()] = true
	}
	for _, t := range g.Initializer {
		b.used[t.GetName()] = true
	}
	for _, n := range g.Node {
		b.used[n.GetName()] = true
		for _, o := range n.Output {
			b.used[o] = true
		}
	}
	return b
}

// Graph is the graph being built.
func (b *Builder) Graph() *onnxpb.GraphProto { return b.Model.Graph }

// Name returns base if it is free, else base_1, base_2, ..., and reserves it.
func (b *Builder) Name(base string) string {
	name := base
	for b.used[name] {
		b.count[base]++
		name = base + "_" + strconv.Itoa(b.count[base])
	}
	b.used[name] = true
	return name
}

// Input adds a graph input. A dim of -1 is symbolic, named by params.
func (b *Builder) Input(name string, elem int32, dims []int64, params ...string) string {
	name = b.Name(name)
	b.Model.Graph.Input = append(b.Model.Graph.Input, ValueInfo(name, elem, dims, params...))
	return name
}

// Output declares an existing value as a graph output.
func (b *Builder) Output(name string, elem int32, dims []int64, params ...string) {
	b.Model.Graph.Output = append(b.Model.Graph.Output, ValueInfo(name, elem, dims, params...))
}

// Initializer adds a float32 initializer holding data with shape and
// returns its (unique) name.
func (b *Builder) Initializer(name string, data []float32, shape ...int64) (string, error) {
	t, err := FloatTensor(b.Name(name), data, shape...)
	if err != nil {
		return "", err
	}
	b.Model.Graph.Initializer = append(b.Model.Graph.Initializer, t)
	return t.GetName(), nil
}

// Int64Initializer adds an int64 initializer (a Reshape shape, axes).
func (b *Builder) Int64Initializer(name string, data []int64, shape ...int64) (string, error) {
	t, err := Int64Tensor(b.Name(name), data, shape...)
	if err != nil {
		return "", err
	}
	b.Model.Graph.Initializer = append(b.Model.Graph.Initializer, t)
	return t.GetName(), nil
}

// Node adds a node of type op reading inputs and producing outputs fresh
// values, named after name ("" = op), and returns their names.
func (b *Builder) Node(op, name string, inputs []string, outputs int, attrs ...*onnxpb.AttributeProto) []string {
	if name == "" {
		name = op
	}
	name = b.Name(name)
	outs := make([]string, outputs)
	for i := range outs {
		suffix := "_out"
		if outputs > 1 {
			suffix = "_out" + strconv.Itoa(i)
		}
		outs[i] = b.Name(name + suffix)
	}
	b.Model.Graph.Node = append(b.Model.Graph.Node, &onnxpb.NodeProto{
		OpType: proto.String(op), Name: proto.String(name),
		Input: append([]string{}, inputs...), Output: outs, Attribute: attrs,
	})
	return outs
}

// Op adds a single-output node and returns its output's name.
func (b *Builder) Op(op, name string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.Node(op, name, inputs, 1, attrs...)[0]
}

func attr(name string, typ onnxpb.AttributeProto_AttributeType) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: typ.Enum()}
}

// AttrInt is an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_INT)
	a.I = proto.Int64(v)
	return a
}

// AttrFloat is a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_FLOAT)
	a.F = proto.Float32(v)
	return a
}

// AttrInts is an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_INTS)
	a.Ints = append([]int64{}, v...)
	return a
}

// AttrFloats is a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_FLOATS)
	a.Floats = append([]float32{}, v...)
	return a
}

// AttrString is a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_STRING)
	a.S = []byte(v)
	return a
}

// AttrTensor is a TENSOR attribute (a Constant's value).
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	a := attr(name, onnxpb.AttributeProto_TENSOR)
	a.T = t
	return a
}

// Attr returns the attribute name of n, or nil.
func Attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrIntOr returns the INT attribute name of n, or def when absent.
func AttrIntOr(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := Attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloatOr returns the FLOAT attribute name of n, or def when absent.
func AttrFloatOr(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := Attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrIntsOr returns the INTS attribute name of n, or def when absent.
func AttrIntsOr(n *onnxpb.NodeProto, name string, def []int64) []int64 {
	if a := Attr(n, name); a != nil {
		return a.GetInts()
	}
	return def
}

// AttrStringOr returns the STRING attribute name of n, or def when absent.
func AttrStringOr(n *onnxpb.NodeProto, name, def string) string {
	if a := Attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// describe names a node for error messages: its name, else its first output.
func describe(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return fmt.Sprintf("%s node %s", n.GetOpType(), n.GetName())
	}
	if len(n.GetOutput()) > 0 {
		return fmt.Sprintf("%s node producing %s", n.GetOpType(), n.GetOutput()[0])
	}
	return n.GetOpType() + " node"
}

// NodeTo adds a node of type op whose outputs have the given names (a
// graph output such as "logits"). A name already in use is an error.
func (b *Builder) NodeTo(op, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) error {
	for _, o := range outputs {
		if b.used[o] {
			return fmt.Errorf("add %s node: output name %s is already used", op, o)
		}
	}
	for _, o := range outputs {
		b.used[o] = true
	}
	if name == "" {
		name = op
	}
	b.Model.Graph.Node = append(b.Model.Graph.Node, &onnxpb.NodeProto{
		OpType: proto.String(op), Name: proto.String(b.Name(name)),
		Input: append([]string{}, inputs...), Output: append([]string{}, outputs...), Attribute: attrs,
	})
	return nil
}
