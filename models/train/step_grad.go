package train

import (
	"fmt"

	"stitch/models/autodiff"
	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// BuildStep returns the training step graph of spec: forward pass, loss,
// gradients of the trainable parameters (models/autodiff) and the
// optimizer update.
func BuildStep(forward *onnxpb.ModelProto, spec Spec) (*Graph, error) {
	if err := spec.Optimizer.Validate(); err != nil {
		return nil, fmt.Errorf("step graph: %w", err)
	}
	if len(spec.Trainable) == 0 {
		return nil, fmt.Errorf("step graph: nothing to train")
	}
	p, err := prepare(forward, spec)
	if err != nil {
		return nil, err
	}
	g := p.model.Graph
	scalar := []int64{1}
	for _, name := range []string{NameLR, NameStepCount} {
		g.Input = append(g.Input, graph.ValueInfo(name, graph.Float, scalar))
		p.shapes[name] = scalar
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
	grads, err := autodiff.Backward(g, target, seed, wrt,
		autodiff.Options{InputShapes: p.shapes, Prefix: "grad/"})
	if err != nil {
		return nil, fmt.Errorf("step graph: gradients: %w", err)
	}

	// A fresh builder, so names the differentiation added are reserved.
	b := graph.Edit(p.model)
	out := &Graph{
		Inputs:  append(p.dataInputs(spec), NameLR, NameStepCount),
		Outputs: p.logitOutputs(spec),
		Params:  p.params, Image: p.image, Classes: p.classes, Categories: p.categories,
	}
	var newStates []string
	for _, t := range p.params {
		for _, s := range spec.Optimizer.StateNames(t.Name) {
			if got := b.Input(s, graph.Float, t.Shape); got != s {
				return nil, fmt.Errorf("step graph: the model already has a value named %q", s)
			}
			out.States = append(out.States, TensorSpec{Name: s, Shape: t.Shape})
			newStates = append(newStates, newPrefix+s)
		}
	}
	g.Output = append(g.Output, graph.ValueInfo(NameLoss, graph.Float, scalar))

	u := newUpdater(b, spec.Optimizer, NameLR, NameStepCount)
	for _, t := range p.params {
		grad := grads[t.Name]
		if grad == "" {
			return nil, fmt.Errorf("step graph: no gradient for %q (does it reach %q?)", t.Name, spec.Logits)
		}
		states := spec.Optimizer.StateNames(t.Name)
		news := make([]string, len(states))
		for i, s := range states {
			news[i] = newPrefix + s
		}
		u.update(t.Name, grad, states, newPrefix+t.Name, news)
	}
	for _, t := range p.params {
		out.Inputs = append(out.Inputs, t.Name)
		out.Outputs = append(out.Outputs, newPrefix+t.Name)
		b.Output(newPrefix+t.Name, graph.Float, t.Shape)
	}
	for i, s := range out.States {
		out.Inputs = append(out.Inputs, s.Name)
		out.Outputs = append(out.Outputs, newStates[i])
		b.Output(newStates[i], graph.Float, s.Shape)
	}
	if out.Model, err = graph.Marshal(p.model); err != nil {
		return nil, fmt.Errorf("step graph: %w", err)
	}
	return out, nil
}
