package train

import (
	"fmt"

	"stitch/models/autodiff"
	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// BuildStep returns the training step graph of spec: forward pass, loss,
// gradients of the trainable parameters (models/autodiff) and the
// optimizer update; with Spec.Replicas above 1, a shard's gradient graph
// and the update graph that sums the shards' gradients (Graph.Update).
func BuildStep(forward *onnxpb.ModelProto, spec Spec) (*Graph, error) {
	if err := spec.Optimizer.Validate(); err != nil {
		return nil, fmt.Errorf("step graph: %w", err)
	}
	if len(spec.Trainable) == 0 {
		return nil, fmt.Errorf("step graph: nothing to train")
	}
	if spec.Replicas > 1 {
		return buildReplicated(forward, spec)
	}
	p, grads, err := differentiate(forward, spec, false)
	if err != nil {
		return nil, err
	}
	g := p.model.Graph
	scalar := []int64{1}
	for _, name := range []string{NameLR, NameStepCount} {
		g.Input = append(g.Input, graph.ValueInfo(name, graph.Float, scalar))
	}
	g.Output = append(g.Output, graph.ValueInfo(NameLoss, graph.Float, scalar))

	// A fresh builder, so names the differentiation added are reserved.
	b := graph.Edit(p.model)
	out := &Graph{
		Inputs:  append(p.dataInputs(spec), NameLR, NameStepCount),
		Outputs: p.logitOutputs(spec),
		Params:  p.params, Image: p.image, Classes: p.classes, Categories: p.categories,
	}
	if err := appendUpdate(b, out, spec.Optimizer, grads); err != nil {
		return nil, err
	}
	if out.Model, err = graph.Marshal(p.model); err != nil {
		return nil, fmt.Errorf("step graph: %w", err)
	}
	return out, nil
}

// differentiate prepares the forward graph of spec (a shard's when shard is
// set) and appends the gradients of its trainable parameters, by name.
func differentiate(forward *onnxpb.ModelProto, spec Spec, shard bool) (*prepared, map[string]string, error) {
	p, err := prepare(forward, spec, shard)
	if err != nil {
		return nil, nil, err
	}
	wrt := make([]string, len(p.params))
	for i, t := range p.params {
		wrt[i] = t.Name
	}
	// Backward takes one output and its gradient: with a category head,
	// both heads' logits are joined into one tensor, and so are their
	// gradients, and the Concat's gradient splits them again.
	target, seed := spec.Logits, p.loss.Grad
	if p.categories > 0 {
		b := graph.Edit(p.model)
		axis := graph.AttrInt("axis", 1)
		target = b.Op("Concat", "train/heads", []string{spec.Logits, spec.CategoryLogits}, axis)
		seed = b.Op("Concat", "train/heads_grad", []string{p.loss.Grad, p.categoryGrad}, axis)
	}
	grads, err := autodiff.Backward(p.model.Graph, target, seed, wrt,
		autodiff.Options{InputShapes: p.shapes, Prefix: "grad/"})
	if err != nil {
		return nil, nil, fmt.Errorf("step graph: gradients: %w", err)
	}
	for _, t := range p.params {
		if grads[t.Name] == "" {
			return nil, nil, fmt.Errorf("step graph: no gradient for %q (does it reach %q?)", t.Name, spec.Logits)
		}
	}
	return p, grads, nil
}

// appendUpdate declares the optimizer states of out's parameters as
// inputs, appends the update of each parameter from its gradient, and
// adds the parameters, states and their new values to out's inputs and
// outputs (out.Inputs must end with the learning rate and step count).
func appendUpdate(b *graph.Builder, out *Graph, o Optimizer, grads map[string]string) error {
	var newStates []string
	for _, t := range out.Params {
		for _, s := range o.StateNames(t.Name) {
			if got := b.Input(s, graph.Float, t.Shape); got != s {
				return fmt.Errorf("step graph: the model already has a value named %q", s)
			}
			out.States = append(out.States, TensorSpec{Name: s, Shape: t.Shape})
			newStates = append(newStates, newPrefix+s)
		}
	}
	u := newUpdater(b, o, NameLR, NameStepCount)
	for _, t := range out.Params {
		states := o.StateNames(t.Name)
		news := make([]string, len(states))
		for i, s := range states {
			news[i] = newPrefix + s
		}
		if err := u.update(t.Name, t.Shape, grads[t.Name], states, newPrefix+t.Name, news); err != nil {
			return err
		}
	}
	for _, t := range out.Params {
		out.Inputs = append(out.Inputs, t.Name)
		out.Outputs = append(out.Outputs, newPrefix+t.Name)
		b.Output(newPrefix+t.Name, graph.Float, t.Shape)
	}
	for i, s := range out.States {
		out.Inputs = append(out.Inputs, s.Name)
		out.Outputs = append(out.Outputs, newStates[i])
		b.Output(newStates[i], graph.Float, s.Shape)
	}
	return nil
}

// buildReplicated builds the shard gradient graph and the update graph of
// a replicated step (Graph.Replicas).
func buildReplicated(forward *onnxpb.ModelProto, spec Spec) (*Graph, error) {
	r := spec.Replicas
	if spec.Batch <= 0 || spec.Batch%r != 0 {
		return nil, fmt.Errorf("step graph: batch %d does not split into %d equal shards", spec.Batch, r)
	}
	shardSpec := spec
	shardSpec.Batch = spec.Batch / r
	p, grads, err := differentiate(forward, shardSpec, true)
	if err != nil {
		return nil, err
	}
	g := p.model.Graph
	g.Output = append(g.Output, graph.ValueInfo(NameLoss, graph.Float, []int64{1}))
	out := &Graph{
		Inputs:  append(p.dataInputs(spec), NameCount),
		Outputs: p.logitOutputs(spec),
		Params:  p.params, Image: append([]int64{int64(spec.Batch)}, p.image[1:]...),
		Classes: p.classes, Categories: p.categories, Replicas: r,
	}
	if p.categories > 0 {
		out.Inputs = append(out.Inputs, NameCategoryCount)
	}
	for _, t := range p.params {
		out.Inputs = append(out.Inputs, t.Name)
		out.Outputs = append(out.Outputs, grads[t.Name])
		g.Output = append(g.Output, graph.ValueInfo(grads[t.Name], graph.Float, t.Shape))
	}
	if out.Model, err = graph.Marshal(p.model); err != nil {
		return nil, fmt.Errorf("step graph: %w", err)
	}

	// The update graph: each parameter's shard gradients summed, then the
	// optimizer step.
	b := graph.New("update")
	up := &Graph{Inputs: []string{NameLR, NameStepCount}, Params: p.params}
	for _, name := range up.Inputs {
		b.Input(name, graph.Float, []int64{1})
	}
	for _, t := range p.params {
		b.Input(t.Name, graph.Float, t.Shape)
	}
	shardGrads := make([][]string, r)
	for k := range r {
		for _, t := range p.params {
			name := fmt.Sprintf("%s%d/%s", gradPrefix, k, t.Name)
			b.Input(name, graph.Float, t.Shape)
			shardGrads[k] = append(shardGrads[k], name)
		}
	}
	sums := map[string]string{}
	for i, t := range p.params {
		parts := make([]string, r)
		for k := range r {
			parts[k] = shardGrads[k][i]
		}
		sums[t.Name] = b.Op("Sum", "update/grad_sum", parts)
	}
	if err := appendUpdate(b, up, spec.Optimizer, sums); err != nil {
		return nil, err
	}
	for k := range r {
		up.Inputs = append(up.Inputs, shardGrads[k]...)
	}
	out.States = up.States
	if up.Model, err = graph.Marshal(b.Model); err != nil {
		return nil, fmt.Errorf("update graph: %w", err)
	}
	out.Update = up
	return out, nil
}
