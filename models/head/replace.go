package head

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// ReplaceOutput returns a copy of model (a model with a head, as Attach
// makes them) whose last layer is replaced by a fresh one with outputs
// units: the transfer from a model trained on other attributes. Every
// other weight is kept. The model's metadata keeps its preprocessing;
// the caller sets the new attributes.
func ReplaceOutput(model *onnxpb.ModelProto, outputs int, seed int64) (*onnxpb.ModelProto, Info, error) {
	name := model.GetGraph().GetName()
	if outputs <= 0 {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %d outputs", name, outputs)
	}
	m := graph.Clone(model)
	g := m.Graph
	meta, _, err := ReadMeta(m)
	if err != nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %w", name, err)
	}
	out := meta.Output
	if out == "" && len(g.Output) == 1 {
		out = g.Output[0].GetName()
	}

	// The last layer must be a Gemm with constant weights [units, in]
	// (transB=1), as Attach writes it.
	last := graph.Producers(g)[out]
	inits := graph.Initializers(g)
	if last == nil || last.GetOpType() != "Gemm" || len(last.Input) != 3 ||
		graph.AttrIntOr(last, "transB", 0) != 1 || inits[last.Input[1]] == nil || inits[last.Input[2]] == nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: output %s is not computed by a Gemm "+
			"with transB=1 and constant weights", name, out)
	}
	oldW := inits[last.Input[1]]
	in := int(oldW.GetDims()[1])

	// Drop the old weights, then add fresh ones under new names so that a
	// trainer's optimizer state for the old layer cannot be mistaken for
	// the new one.
	kept := g.Initializer[:0]
	for _, t := range g.Initializer {
		if t.GetName() != last.Input[1] && t.GetName() != last.Input[2] {
			kept = append(kept, t)
		}
	}
	g.Initializer = kept
	b := graph.Edit(m)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6f7574)) // "out"
	w, bias, err := dense(b, rng, "head.out", in, outputs, false)
	if err != nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %w", name, err)
	}
	last.Input[1], last.Input[2] = w, bias
	for i, o := range g.Output {
		if o.GetName() == out {
			g.Output[i] = graph.ValueInfo(out, graph.Float, []int64{-1, int64(outputs)}, "batch")
		}
	}

	params, err := graph.ParamOrder(g)
	if err != nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %w", name, err)
	}
	input, _, err := ImageInput(g)
	if err != nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %w", name, err)
	}
	info := Info{
		Input: input, Features: last.Input[0], FeatureSize: in, Output: out,
		BackboneParams: slices.DeleteFunc(params, func(p string) bool { return p == w || p == bias }),
		HeadParams:     []string{w, bias},
		Meta:           meta,
	}
	info.Meta.Attributes = nil
	if err := WriteMeta(m, info.Meta); err != nil {
		return nil, Info{}, err
	}
	return m, info, nil
}
