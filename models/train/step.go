package train

import (
	"fmt"
	"slices"

	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// Names of the values a step or eval graph adds to the forward graph. The
// image input and the logits keep the forward model's names.
const (
	NameTargets   = "train/y"
	NameMask      = "train/mask"
	NamePosWeight = "train/pos_weight"
	NameCategory  = "train/category"
	NameLR        = "train/lr"
	NameStepCount = "train/t"
	NameLoss      = "train/loss"
	// NameCount and NameCategoryCount are the whole batch's known-label
	// count and count of rows with a category, each at least 1, that a
	// shard of a replicated step divides its losses by.
	NameCount         = "train/count"
	NameCategoryCount = "train/category_count"
	newPrefix         = "train/new/"
	gradPrefix        = "train/grad/"
)

// Spec describes the step graph of one training phase.
type Spec struct {
	// Input and Logits name the forward model's image input and its
	// per-attribute logits.
	Input, Logits string
	// CategoryLogits, when set, names the forward model's category logits
	// [batch, categories]: the graphs then read each row's category and
	// add CategoryWeight times their softmax cross-entropy to the loss.
	CategoryLogits string
	CategoryWeight float32
	// Trainable are the initializers that get gradients and updates, in a
	// fixed order. Every other initializer stays a constant of the graph,
	// so frozen layers cost no gradient.
	Trainable []string
	// Batch, Height and Width fix the image input to [Batch, C, Height,
	// Width]; a fixed batch lets ONNX Runtime plan every buffer once.
	Batch, Height, Width int
	Optimizer            Optimizer
	// Replicas above 1 split each batch into that many equal shards whose
	// gradients are computed at the same time by separate sessions, then
	// summed by one update graph (data parallelism on the CPU's cores).
	// Batch must be a multiple of it. The result depends on Replicas
	// through the order of float additions, not on the machine.
	Replicas int
}

// AutoReplicas is the Spec.Replicas the trainer uses for a batch of rows
// on provider: 2 on the CPU when the batch splits into two shards of at
// least 8 rows, else 1. It does not depend on the number of cores, so
// that the same pipeline trains the same model on any CPU; with more than
// 2 cores each shard's session gets half of the threads.
func AutoReplicas(provider string, rows int) int {
	if (provider == "" || provider == "cpu") && rows >= 16 && rows%2 == 0 {
		return 2
	}
	return 1
}

// TensorSpec names a float32 tensor and its shape.
type TensorSpec struct {
	Name  string
	Shape []int64
}

// Graph is a built step or eval graph and the order of its inputs and
// outputs, which is the order Session.Run takes them in.
//
// A step graph reads [image, y, mask, pos_weight, lr, t, params...,
// states...] and writes [loss, logits, new params..., new states...]; an
// eval graph reads [image, y, mask, pos_weight, params...] and writes
// [loss, logits]. y and mask are [Batch, Classes], pos_weight [Classes],
// lr, t and loss [1]; t counts steps from 1 (Adam's bias correction).
// With Spec.CategoryLogits both also read category (int64 [Batch]: 1 to
// Categories, 0 for none) after pos_weight and write the category logits
// after the logits.
type Graph struct {
	Model           []byte
	Inputs, Outputs []string
	// Params are the trainable parameters in Spec order; States the
	// optimizer state, Optimizer.StateNames of each parameter in turn.
	Params, States []TensorSpec
	// Image is the image input's shape; Classes the logits' width;
	// Categories the category logits' width, 0 without them.
	Image      []int64
	Classes    int
	Categories int

	// Replicas > 1 marks a replicated step (Spec.Replicas): Model is then
	// the gradient graph of one shard of Image[0]/Replicas rows, reading
	// the shard's data inputs, count, category_count (with categories)
	// and params, and writing [loss, logits(, category logits), gradients
	// in Params order], its loss being the shard's part of the batch's.
	// A replicated eval graph is the same without the gradients and the
	// Update.
	// Update reads [lr, t, params..., states..., then the gradients of
	// each shard in turn] and writes [new params..., new states...].
	Replicas int
	Update   *Graph
}

// prepared is a forward graph turned into the common part of step and eval
// graphs: trainable initializers made inputs, the image shape fixed, the
// targets, mask and positive weights declared and the loss appended.
type prepared struct {
	model *onnxpb.ModelProto
	// loss is the total loss and the gradient of the attribute logits;
	// categoryGrad the category logits' (weighted), "" without them.
	loss         lossNames
	categoryGrad string
	params       []TensorSpec
	image        []int64
	// shapes are the graph inputs' shapes, for the differentiation.
	shapes              map[string][]int64
	classes, categories int
}

// prepare builds the common part; with shard set, the losses divide by the
// NameCount and NameCategoryCount inputs instead of the batch's own counts.
func prepare(forward *onnxpb.ModelProto, spec Spec, shard bool) (*prepared, error) {
	if spec.Batch <= 0 || spec.Height <= 0 || spec.Width <= 0 {
		return nil, fmt.Errorf("step graph: batch %d, height %d, width %d must be positive",
			spec.Batch, spec.Height, spec.Width)
	}
	m := graph.Clone(forward)
	g := m.Graph
	inits := graph.Initializers(g)
	p := &prepared{model: m, shapes: map[string][]int64{}}

	// Exporters that list initializers among the inputs (IR < 4) would make
	// every constant overridable; keep only the image input.
	var image *onnxpb.ValueInfoProto
	for _, in := range g.Input {
		if in.GetName() == spec.Input {
			image = in
		}
	}
	if image == nil {
		return nil, fmt.Errorf("step graph: model has no input %q", spec.Input)
	}
	_, dims, ok := graph.TensorShape(image)
	if !ok || len(dims) != 4 {
		return nil, fmt.Errorf("step graph: input %q is not a 4-d tensor", spec.Input)
	}
	channels := dims[1]
	if channels <= 0 {
		channels = 3
	}
	p.image = []int64{int64(spec.Batch), channels, int64(spec.Height), int64(spec.Width)}
	g.Input = []*onnxpb.ValueInfoProto{graph.ValueInfo(spec.Input, graph.Float, p.image)}
	p.shapes[spec.Input] = p.image

	// Trainable initializers become inputs, in Spec order.
	seen := map[string]bool{}
	for _, name := range spec.Trainable {
		t, ok := inits[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("step graph: no initializer %q to train", name)
		case t.GetDataType() != graph.Float:
			return nil, fmt.Errorf("step graph: initializer %q is not float32", name)
		case seen[name]:
			return nil, fmt.Errorf("step graph: initializer %q listed twice", name)
		}
		seen[name] = true
		shape := slices.Clone(t.GetDims())
		p.params = append(p.params, TensorSpec{Name: name, Shape: shape})
		g.Input = append(g.Input, graph.ValueInfo(name, graph.Float, shape))
		p.shapes[name] = shape
	}
	g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool { return seen[t.GetName()] })

	classes, err := logitsWidth(g, spec.Logits)
	if err != nil {
		return nil, err
	}
	p.classes = classes
	labels := []int64{int64(spec.Batch), int64(classes)}
	outputs := []*onnxpb.ValueInfoProto{graph.ValueInfo(spec.Logits, graph.Float, labels)}
	if spec.CategoryLogits != "" {
		if p.categories, err = logitsWidth(g, spec.CategoryLogits); err != nil {
			return nil, err
		}
		if spec.CategoryWeight <= 0 {
			return nil, fmt.Errorf("step graph: category weight %g: want > 0", spec.CategoryWeight)
		}
		outputs = append(outputs, graph.ValueInfo(spec.CategoryLogits, graph.Float,
			[]int64{int64(spec.Batch), int64(p.categories)}))
	}
	g.Output = outputs

	b := graph.Edit(m)
	for _, in := range []TensorSpec{
		{NameTargets, labels}, {NameMask, labels}, {NamePosWeight, []int64{int64(classes)}},
	} {
		if got := b.Input(in.Name, graph.Float, in.Shape); got != in.Name {
			return nil, fmt.Errorf("step graph: the model already has a value named %q", in.Name)
		}
		p.shapes[in.Name] = in.Shape
	}
	count, catCount := "", ""
	if shard {
		if count, err = p.countInput(b, NameCount); err != nil {
			return nil, err
		}
		if p.categories > 0 {
			if catCount, err = p.countInput(b, NameCategoryCount); err != nil {
				return nil, err
			}
		}
	}
	p.loss = appendLoss(b, spec.Logits, NameTargets, NameMask, NamePosWeight, count)
	if p.categories > 0 {
		shape := []int64{int64(spec.Batch)}
		if got := b.Input(NameCategory, graph.Int64, shape); got != NameCategory {
			return nil, fmt.Errorf("step graph: the model already has a value named %q", NameCategory)
		}
		p.shapes[NameCategory] = shape
		cat := appendCategoryLoss(b, spec.CategoryLogits, NameCategory, catCount, spec.Batch, p.categories)
		weight := scalarConst(b, "category_loss/weight", spec.CategoryWeight)
		p.categoryGrad = b.Op("Mul", "category_loss/weighted_grad", []string{cat.Grad, weight})
		weighted := b.Op("Mul", "category_loss/weighted", []string{cat.Loss, weight})
		p.loss.Loss = b.Op("Add", "loss/total", []string{p.loss.Loss, weighted})
	}
	renameOutput(g, p.loss.Loss, NameLoss)
	p.loss.Loss = NameLoss
	return p, nil
}

// countInput declares the [1] input name.
func (p *prepared) countInput(b *graph.Builder, name string) (string, error) {
	if got := b.Input(name, graph.Float, []int64{1}); got != name {
		return "", fmt.Errorf("step graph: the model already has a value named %q", name)
	}
	p.shapes[name] = []int64{1}
	return name, nil
}

// logitsWidth returns the number of classes: the last dim of the logits.
func logitsWidth(g *onnxpb.GraphProto, logits string) (int, error) {
	for _, o := range g.Output {
		if o.GetName() != logits {
			continue
		}
		if _, dims, ok := graph.TensorShape(o); ok && len(dims) == 2 && dims[1] > 0 {
			return int(dims[1]), nil
		}
		shapes, err := graph.InferShapes(g)
		if err != nil {
			return 0, fmt.Errorf("step graph: shape of %q: %w", logits, err)
		}
		if s := shapes[logits]; len(s) == 2 && s[1] > 0 {
			return int(s[1]), nil
		}
		return 0, fmt.Errorf("step graph: logits %q have shape %v, want [batch, classes]", logits, shapes[logits])
	}
	return 0, fmt.Errorf("step graph: model has no output %q", logits)
}

// renameOutput renames value from to to in the node producing it.
func renameOutput(g *onnxpb.GraphProto, from, to string) {
	for _, n := range g.Node {
		for i, o := range n.Output {
			if o == from {
				n.Output[i] = to
			}
		}
		for i, in := range n.Input {
			if in == from {
				n.Input[i] = to
			}
		}
	}
}

// BuildEval returns the eval graph of spec: the forward pass and the loss,
// reading the trainable parameters as inputs so it shares a step session's
// current tensors. With spec.Replicas above 1 it is, like the step, the
// graph of one shard that divides by the whole batch's counts (NameCount,
// NameCategoryCount), which a Stepper runs once per shard at the same time.
func BuildEval(forward *onnxpb.ModelProto, spec Spec) (*Graph, error) {
	r := max(spec.Replicas, 1)
	if spec.Batch <= 0 || spec.Batch%r != 0 {
		return nil, fmt.Errorf("eval graph: batch %d does not split into %d equal shards", spec.Batch, r)
	}
	shardSpec := spec
	shardSpec.Batch = spec.Batch / r
	p, err := prepare(forward, shardSpec, r > 1)
	if err != nil {
		return nil, err
	}
	g := p.model.Graph
	g.Output = append(g.Output, graph.ValueInfo(NameLoss, graph.Float, []int64{1}))
	out := &Graph{
		Inputs:  p.dataInputs(spec),
		Outputs: p.logitOutputs(spec),
		Params:  p.params, Image: append([]int64{int64(spec.Batch)}, p.image[1:]...),
		Classes: p.classes, Categories: p.categories,
	}
	if r > 1 {
		out.Replicas = r
		out.Inputs = append(out.Inputs, NameCount)
		if p.categories > 0 {
			out.Inputs = append(out.Inputs, NameCategoryCount)
		}
	}
	for _, t := range p.params {
		out.Inputs = append(out.Inputs, t.Name)
	}
	if out.Model, err = graph.Marshal(p.model); err != nil {
		return nil, fmt.Errorf("eval graph: %w", err)
	}
	return out, nil
}

// dataInputs are the inputs of a batch, in Graph order: image, labels,
// mask, positive weights and, with a category head, the categories.
func (p *prepared) dataInputs(spec Spec) []string {
	in := []string{spec.Input, NameTargets, NameMask, NamePosWeight}
	if p.categories > 0 {
		in = append(in, NameCategory)
	}
	return in
}

// logitOutputs are the loss and the logits, in Graph order.
func (p *prepared) logitOutputs(spec Spec) []string {
	out := []string{NameLoss, spec.Logits}
	if p.categories > 0 {
		out = append(out, spec.CategoryLogits)
	}
	return out
}
