package graph

import (
	"fmt"
	"slices"

	"stitch/models/onnxpb"
)

// Initializers maps initializer names to their tensors.
func Initializers(g *onnxpb.GraphProto) map[string]*onnxpb.TensorProto {
	out := make(map[string]*onnxpb.TensorProto, len(g.GetInitializer()))
	for _, t := range g.GetInitializer() {
		out[t.GetName()] = t
	}
	return out
}

// Producers maps every node output to the node that computes it.
func Producers(g *onnxpb.GraphProto) map[string]*onnxpb.NodeProto {
	out := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o != "" {
				out[o] = n
			}
		}
	}
	return out
}

// Consumers maps every value to the nodes that read it, in graph order.
func Consumers(g *onnxpb.GraphProto) map[string][]*onnxpb.NodeProto {
	out := map[string][]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			if in != "" {
				out[in] = append(out[in], n)
			}
		}
	}
	return out
}

// TopoSort returns the nodes of g so that every node follows the producers
// of its inputs. Among nodes ready at the same time the file's order wins,
// so a graph already in order comes back unchanged.
func TopoSort(g *onnxpb.GraphProto) ([]*onnxpb.NodeProto, error) {
	nodes := g.GetNode()
	producer := map[string]int{}
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if o != "" {
				producer[o] = i
			}
		}
	}

	// waiting[i] counts the inputs of node i whose producer has not run;
	// next lists the nodes that read node i's outputs.
	waiting := make([]int, len(nodes))
	next := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, in := range n.GetInput() {
			if p, ok := producer[in]; ok && in != "" {
				waiting[i]++
				next[p] = append(next[p], i)
			}
		}
	}

	// A min-ordered ready set by index keeps the file's order; graphs are
	// small enough (hundreds of nodes) that a linear scan is fine.
	ready := make([]bool, len(nodes))
	for i := range nodes {
		ready[i] = waiting[i] == 0
	}
	done := make([]bool, len(nodes))
	out := make([]*onnxpb.NodeProto, 0, len(nodes))
	for len(out) < len(nodes) {
		pick := -1
		for i := range nodes {
			if ready[i] && !done[i] {
				pick = i
				break
			}
		}
		if pick < 0 {
			for i := range nodes {
				if !done[i] {
					return nil, fmt.Errorf("sort graph %s: cycle through %s", g.GetName(), describe(nodes[i]))
				}
			}
		}
		done[pick] = true
		out = append(out, nodes[pick])
		for _, j := range next[pick] {
			waiting[j]--
			if waiting[j] == 0 {
				ready[j] = true
			}
		}
	}
	return out, nil
}

// Sort puts the nodes of g in topological order (see TopoSort).
func Sort(g *onnxpb.GraphProto) error {
	nodes, err := TopoSort(g)
	if err != nil {
		return err
	}
	g.Node = nodes
	return nil
}

// RemoveDead drops the nodes that no graph output depends on, then the
// initializers no remaining node reads. Graph inputs are kept: they are
// the model's interface.
func RemoveDead(g *onnxpb.GraphProto) {
	live := map[string]bool{}
	for _, o := range g.GetOutput() {
		live[o.GetName()] = true
	}

	// Walk backwards: a node is live when one of its outputs is needed,
	// and then all of its inputs are needed too.
	keep := make([]bool, len(g.GetNode()))
	for changed := true; changed; {
		changed = false
		for i := len(g.Node) - 1; i >= 0; i-- {
			if keep[i] {
				continue
			}
			for _, o := range g.Node[i].GetOutput() {
				if live[o] {
					keep[i] = true
				}
			}
			if keep[i] {
				changed = true
				for _, in := range g.Node[i].GetInput() {
					live[in] = true
				}
			}
		}
	}
	nodes := g.Node[:0]
	for i, n := range g.Node {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes

	inits := g.Initializer[:0]
	for _, t := range g.Initializer {
		if live[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
}

// ResolveIdentities removes Identity nodes whose input is an initializer
// (torchvision exports share weights that way) and makes their readers
// read the initializer directly. An Identity that feeds a graph output is
// kept, since the output's name is part of the model's interface.
func ResolveIdentities(g *onnxpb.GraphProto) {
	inits := Initializers(g)
	outputs := map[string]bool{}
	for _, o := range g.GetOutput() {
		outputs[o.GetName()] = true
	}

	// alias maps an Identity output to the initializer at the end of its
	// chain; chains resolve because nodes are visited in order.
	alias := map[string]string{}
	nodes := g.Node[:0]
	for _, n := range g.Node {
		if n.GetOpType() == "Identity" && len(n.Input) == 1 && len(n.Output) == 1 && !outputs[n.Output[0]] {
			src := n.Input[0]
			if a, ok := alias[src]; ok {
				src = a
			}
			if _, ok := inits[src]; ok {
				alias[n.Output[0]] = src
				continue
			}
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	for _, n := range g.Node {
		for i, in := range n.Input {
			if a, ok := alias[in]; ok {
				n.Input[i] = a
			}
		}
	}
}

// notParams lists the (operator, input position) pairs whose initializers
// are settings, not weights: Clip bounds, a Reshape's shape, a Pad's pads,
// batch normalisation's running statistics.
var notParams = map[string][]int{
	"Clip": {1, 2}, "Reshape": {1}, "Pad": {1, 2}, "BatchNormalization": {3, 4},
	"Resize": {1, 2, 3}, "Slice": {1, 2, 3, 4}, "Squeeze": {1}, "Unsqueeze": {1},
}

// ParamOrder returns the names of the float initializers of g that hold
// weights, in the order nodes (topologically sorted) first read them: the
// order of layers from input to output, which is what freezing "the first
// 80%" refers to. Initializers that are settings (see notParams) are left out.
func ParamOrder(g *onnxpb.GraphProto) ([]string, error) {
	nodes, err := TopoSort(g)
	if err != nil {
		return nil, err
	}
	inits := Initializers(g)
	seen := map[string]bool{}
	var out []string
	for _, n := range nodes {
		for pos, in := range n.GetInput() {
			t, ok := inits[in]
			if ok && !seen[in] && t.GetDataType() == Float && !slices.Contains(notParams[n.GetOpType()], pos) {
				seen[in] = true
				out = append(out, in)
			}
		}
	}
	return out, nil
}
