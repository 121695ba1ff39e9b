package head

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"stitch/artifacts"
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
		HeadParams: []string{w, bias},
		Meta:       meta,
	}
	layer, err := categoryLayer(g, meta)
	if err != nil {
		return nil, Info{}, fmt.Errorf("replace output layer of %s: %w", name, err)
	}
	if layer != nil {
		info.CategoryOutput, info.CategoryParams = meta.CategoryOutput, slices.Clone(layer.Input[1:3])
	}
	notBackbone := append([]string{w, bias}, info.CategoryParams...)
	info.BackboneParams = slices.DeleteFunc(params, func(p string) bool { return slices.Contains(notBackbone, p) })
	info.Meta.Attributes = nil
	if err := WriteMeta(m, info.Meta); err != nil {
		return nil, Info{}, err
	}
	return m, info, nil
}

// ReplaceCategories returns a copy of model (a model with a head, as
// Attach makes them) whose category head is a fresh Gemm to categories
// logits from the features the attribute head reads, in place of the one
// it had if any; categories 0 removes the category head. Every other
// weight is kept. Info's HeadParams are the new layer's (none when
// removing); the metadata keeps everything but the categories, which the
// caller sets.
func ReplaceCategories(model *onnxpb.ModelProto, categories int, seed int64) (*onnxpb.ModelProto, Info, error) {
	name := model.GetGraph().GetName()
	fail := func(err error) (*onnxpb.ModelProto, Info, error) {
		return nil, Info{}, fmt.Errorf("replace category layer of %s: %w", name, err)
	}
	if categories < 0 {
		return fail(fmt.Errorf("%d categories", categories))
	}
	m := graph.Clone(model)
	g := m.Graph
	meta, _, err := ReadMeta(m)
	if err != nil {
		return fail(err)
	}
	features, size, err := headFeatures(g, meta)
	if err != nil {
		return fail(err)
	}

	// Drop the old category output; RemoveDead then drops its Gemm and
	// weights, which nothing else reads.
	if old := meta.CategoryOutput; old != "" {
		g.Output = slices.DeleteFunc(g.Output, func(v *onnxpb.ValueInfoProto) bool { return v.GetName() == old })
		graph.RemoveDead(g)
	}
	info := Info{Features: features, FeatureSize: size, Output: meta.Output, Meta: meta}
	info.Meta.CategoryOutput, info.Meta.Categories = "", nil
	if categories > 0 {
		b := graph.Edit(m)
		if info.CategoryParams, err = addCategoryLayer(b, features, size, categories, seed); err != nil {
			return fail(err)
		}
		info.CategoryOutput, info.Meta.CategoryOutput = CategoryOutputName, CategoryOutputName
		info.HeadParams = slices.Clone(info.CategoryParams)
	}

	params, err := graph.ParamOrder(g)
	if err != nil {
		return fail(err)
	}
	info.BackboneParams = slices.DeleteFunc(params, func(p string) bool {
		return slices.Contains(info.HeadParams, p)
	})
	if info.Input, _, err = ImageInput(g); err != nil {
		return fail(err)
	}
	if err := WriteMeta(m, info.Meta); err != nil {
		return nil, Info{}, err
	}
	return m, info, nil
}

// categoryLayer returns the Gemm computing meta.CategoryOutput, nil when
// the model has no category head; one that is not a Gemm with transB=1
// and constant weights is an error.
func categoryLayer(g *onnxpb.GraphProto, meta artifacts.ModelMeta) (*onnxpb.NodeProto, error) {
	if meta.CategoryOutput == "" {
		return nil, nil
	}
	n := graph.Producers(g)[meta.CategoryOutput]
	inits := graph.Initializers(g)
	if n == nil || n.GetOpType() != "Gemm" || len(n.Input) != 3 || graph.AttrIntOr(n, "transB", 0) != 1 ||
		inits[n.Input[1]] == nil || inits[n.Input[2]] == nil {
		return nil, fmt.Errorf("category output %s is not computed by a Gemm with transB=1 and constant weights",
			meta.CategoryOutput)
	}
	return n, nil
}

// headFeatures finds the features the head reads: walking back from the
// attribute output through the head's Gemm layers (constant head.*
// weights, transB=1) and the ReLUs between them, to the input of the
// first. It returns the value and its width.
func headFeatures(g *onnxpb.GraphProto, meta artifacts.ModelMeta) (string, int, error) {
	producers := graph.Producers(g)
	inits := graph.Initializers(g)
	isHeadGemm := func(n *onnxpb.NodeProto) bool {
		return n != nil && n.GetOpType() == "Gemm" && len(n.Input) == 3 &&
			graph.AttrIntOr(n, "transB", 0) == 1 && inits[n.Input[1]] != nil &&
			strings.HasPrefix(n.Input[1], "head.")
	}
	gemm := producers[meta.Output]
	if !isHeadGemm(gemm) {
		return "", 0, fmt.Errorf("output %q is not computed by a head Gemm (head.* weights, transB=1)",
			meta.Output)
	}
	for {
		relu := producers[gemm.Input[0]]
		if relu == nil || relu.GetOpType() != "Relu" || !isHeadGemm(producers[relu.Input[0]]) {
			break
		}
		gemm = producers[relu.Input[0]]
	}
	dims := inits[gemm.Input[1]].GetDims()
	if len(dims) != 2 || dims[1] <= 0 {
		return "", 0, fmt.Errorf("head weight %s has shape %v, want [units, features]", gemm.Input[1], dims)
	}
	return gemm.Input[0], int(dims[1]), nil
}
