package head

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// OutputName is the name of the head's output.
const OutputName = "logits"

// CategoryOutputName is the name of the category head's output.
const CategoryOutputName = "category_logits"

// ErrNoImageInput reports a model without a 4-D float input.
var ErrNoImageInput = errors.New("no image input (a 4-D float tensor, NCHW)")

// Spec describes the head to attach.
type Spec struct {
	// Hidden are the widths of the hidden layers, each followed by a ReLU
	// (`head: [496]`); empty means one Gemm straight to Outputs.
	Hidden []int
	// Outputs is the number of attributes.
	Outputs int
	// Cut names the backbone value the head starts from; "" finds the
	// pooled features. A 4-D value is pooled and flattened first.
	Cut string
	// Categories, when above 0, adds a second output of that many
	// category logits: one Gemm from the features the attribute head
	// reads.
	Categories int
	// Seed makes the head's initial weights reproducible.
	Seed int64
}

// Info describes a model with a head.
type Info struct {
	// Input is the image input, NCHW float.
	Input string
	// Features is the 2-D [batch, FeatureSize] value the head reads.
	Features    string
	FeatureSize int
	// Output is the head's output, [batch, outputs] logits.
	Output string
	// CategoryOutput is the category head's output, [batch, categories]
	// logits, and CategoryParams its weight and bias; both empty when the
	// model has no category head.
	CategoryOutput string
	CategoryParams []string
	// BackboneParams are the backbone's weight initializers in the order
	// layers first use them, input side first; HeadParams are the head's,
	// weight then bias per layer, the category layer's last.
	BackboneParams []string
	HeadParams     []string
	// Meta is the model metadata Attach wrote: names, input size when the
	// backbone fixes it, and the backbone's preprocessing. Attributes and
	// categories are left for the caller, who knows them.
	Meta artifacts.ModelMeta
}

// Attach returns a copy of backbone cut at its features (dropping what
// followed, the old classifier) with a head as spec describes.
func Attach(backbone *onnxpb.ModelProto, spec Spec) (*onnxpb.ModelProto, Info, error) {
	name := backbone.GetGraph().GetName()
	if spec.Outputs <= 0 || spec.Categories < 0 {
		return nil, Info{}, fmt.Errorf("attach head to %s: %d outputs, %d categories",
			name, spec.Outputs, spec.Categories)
	}
	for _, h := range spec.Hidden {
		if h <= 0 {
			return nil, Info{}, fmt.Errorf("attach head to %s: hidden layer of width %d", name, h)
		}
	}
	m := graph.Clone(backbone)
	g := m.Graph
	graph.ResolveIdentities(g)
	if err := graph.Sort(g); err != nil {
		return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
	}
	input, inDims, err := ImageInput(g)
	if err != nil {
		return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
	}
	shapes, err := graph.InferShapes(g)
	if err != nil {
		return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
	}

	cut := spec.Cut
	if cut == "" {
		if cut, err = findFeatures(g, shapes); err != nil {
			return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
		}
	}
	b := graph.Edit(m)
	features, size, err := flatFeatures(b, shapes, cut)
	if err != nil {
		return nil, Info{}, fmt.Errorf("attach head to %s: cut at %s: %w", name, cut, err)
	}

	// Make the features the only output and drop the old classifier, so
	// that the name "logits" is free for the head.
	g.Output = []*onnxpb.ValueInfoProto{graph.ValueInfo(features, graph.Float, []int64{-1, int64(size)})}
	graph.RemoveDead(g)
	backboneParams, err := graph.ParamOrder(g)
	if err != nil {
		return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
	}
	b = graph.Edit(m)

	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x68656164)) // "head"
	x, width := features, size
	var headParams []string
	widths := append(slices.Clone(spec.Hidden), spec.Outputs)
	for i, out := range widths {
		last := i == len(widths)-1
		w, bias, err := dense(b, rng, fmt.Sprintf("head.%d", i), width, out, !last)
		if err != nil {
			return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
		}
		headParams = append(headParams, w, bias)
		if last {
			if err := b.NodeTo("Gemm", fmt.Sprintf("head.%d.gemm", i), []string{x, w, bias},
				[]string{OutputName}, graph.AttrInt("transB", 1)); err != nil {
				return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
			}
			break
		}
		x = b.Op("Gemm", fmt.Sprintf("head.%d.gemm", i), []string{x, w, bias}, graph.AttrInt("transB", 1))
		x = b.Op("Relu", fmt.Sprintf("head.%d.relu", i), []string{x})
		width = out
	}
	g.Output = []*onnxpb.ValueInfoProto{
		graph.ValueInfo(OutputName, graph.Float, []int64{-1, int64(spec.Outputs)}, "batch"),
	}
	info := Info{
		Input: input, Features: features, FeatureSize: size, Output: OutputName,
		BackboneParams: backboneParams, HeadParams: headParams,
	}
	if spec.Categories > 0 {
		info.CategoryParams, err = addCategoryLayer(b, features, size, spec.Categories, spec.Seed)
		if err != nil {
			return nil, Info{}, fmt.Errorf("attach head to %s: %w", name, err)
		}
		info.CategoryOutput = CategoryOutputName
		info.HeadParams = append(info.HeadParams, info.CategoryParams...)
	}

	info.Meta = baseMeta(backbone, input, inDims)
	info.Meta.CategoryOutput = info.CategoryOutput
	if err := WriteMeta(m, info.Meta); err != nil {
		return nil, Info{}, err
	}
	return m, info, nil
}

// baseMeta is the metadata a new head model starts with.
func baseMeta(backbone *onnxpb.ModelProto, input string, inDims []int64) artifacts.ModelMeta {
	meta := artifacts.ModelMeta{Input: input, Output: OutputName, OutputIsLogits: true}
	if old, ok, err := ReadMeta(backbone); ok && err == nil {
		meta.Height, meta.Width, meta.Backbone = old.Height, old.Width, old.Backbone
	}
	if inDims[2] > 0 && inDims[3] > 0 {
		meta.Height, meta.Width = int(inDims[2]), int(inDims[3])
	}
	meta.Scale, meta.Mean, meta.Std = Preprocessing(backbone)
	if meta.Backbone == "" {
		meta.Backbone = backbone.GetGraph().GetName()
	}
	return meta
}

// addCategoryLayer adds the category head to b: one Gemm from features
// (width in) to n logits named CategoryOutputName, declared as a graph
// output. Its weights come from a PCG stream of their own, so that adding
// it leaves the attribute head's initial weights as they were. It returns
// the weight and bias names.
func addCategoryLayer(b *graph.Builder, features string, in, n int, seed int64) ([]string, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636174)) // "cat"
	w, bias, err := dense(b, rng, "head.category", in, n, false)
	if err != nil {
		return nil, err
	}
	if err := b.NodeTo("Gemm", "head.category.gemm", []string{features, w, bias},
		[]string{CategoryOutputName}, graph.AttrInt("transB", 1)); err != nil {
		return nil, fmt.Errorf("category layer: %w", err)
	}
	b.Output(CategoryOutputName, graph.Float, []int64{-1, int64(n)}, "batch")
	return []string{w, bias}, nil
}

// dense adds the weight [out, in] and bias [out] of a Gemm layer: He
// normal when a ReLU follows (it halves the variance), Glorot normal for
// the output layer.
func dense(b *graph.Builder, rng *rand.Rand, prefix string, in, out int, relu bool) (string, string, error) {
	std := math.Sqrt(2 / float64(in+out))
	if relu {
		std = math.Sqrt(2 / float64(in))
	}
	w := make([]float32, in*out)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * std)
	}
	wName, err := b.Initializer(prefix+".weight", w, int64(out), int64(in))
	if err != nil {
		return "", "", err
	}
	bName, err := b.Initializer(prefix+".bias", make([]float32, out), int64(out))
	return wName, bName, err
}

// ImageInput returns the name and dims (-1 when dynamic) of g's image
// input: the first graph input, not an initializer, that is a 4-D float
// tensor.
func ImageInput(g *onnxpb.GraphProto) (string, []int64, error) {
	inits := graph.Initializers(g)
	var seen []string
	for _, v := range g.GetInput() {
		if _, isInit := inits[v.GetName()]; isInit {
			continue
		}
		elem, dims, ok := graph.TensorShape(v)
		if ok && elem == graph.Float && len(dims) == 4 && dims[1] != 1 {
			return v.GetName(), dims, nil
		}
		seen = append(seen, fmt.Sprintf("%s %v", v.GetName(), dims))
	}
	return "", nil, fmt.Errorf("%w among inputs %v", ErrNoImageInput, seen)
}

// findFeatures returns the value to cut at: see the package contract.
func findFeatures(g *onnxpb.GraphProto, shapes map[string][]int64) (string, error) {
	var pool *onnxpb.NodeProto
	for _, n := range g.Node {
		if n.GetOpType() == "GlobalAveragePool" {
			pool = n
		}
	}
	if pool == nil {
		return "", errors.New("no GlobalAveragePool to find the pooled features by: name the cut point")
	}

	// SqueezeNet-like: the classifier is a 1x1 Conv to the class count
	// before the pool. Cut before that Conv.
	producers := graph.Producers(g)
	classes := int64(-1)
	if len(g.Output) > 0 {
		if s := shapes[g.Output[0].GetName()]; len(s) == 2 {
			classes = s[1]
		}
	}
	src := producers[pool.Input[0]]
	for src != nil && slices.Contains([]string{"Relu", "Clip", "Dropout", "Identity"}, src.GetOpType()) {
		src = producers[src.Input[0]]
	}
	if src != nil && src.GetOpType() == "Conv" {
		w := shapes[src.Input[1]]
		if len(w) == 4 && w[0] == classes && w[2] == 1 && w[3] == 1 {
			return src.Input[0], nil
		}
	}

	// The usual case: the pool's output, through its Flatten when it has
	// one.
	out := pool.Output[0]
	consumers := graph.Consumers(g)[out]
	if len(consumers) == 1 {
		next := consumers[0]
		if s := shapes[next.Output[0]]; len(s) == 2 && next.GetOpType() != "Gemm" && next.GetOpType() != "MatMul" {
			return next.Output[0], nil
		}
	}
	return out, nil
}

// flatFeatures returns a 2-D [batch, size] value for the cut: the cut
// itself, or a GlobalAveragePool (for a spatial map) and a Flatten added
// after it.
func flatFeatures(b *graph.Builder, shapes map[string][]int64, cut string) (string, int, error) {
	s, ok := shapes[cut]
	if !ok {
		return "", 0, fmt.Errorf("no value named %s", cut)
	}
	switch {
	case len(s) == 2 && s[1] > 0:
		return cut, int(s[1]), nil
	case len(s) == 4 && s[1] > 0:
		x := cut
		if s[2] != 1 || s[3] != 1 {
			x = b.Op("GlobalAveragePool", "head.pool", []string{x})
		}
		return b.Op("Flatten", "head.flatten", []string{x}, graph.AttrInt("axis", 1)), int(s[1]), nil
	}
	return "", 0, fmt.Errorf("shape %v: want [batch, features] or [batch, channels, height, width]", s)
}
