package train

import (
	"errors"
	"fmt"
	"runtime"

	"stitch/models/graph"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// Batch is one batch of images and labels in Go memory that ONNX Runtime
// reads in place: filling X, Y and Mask and running a step copies nothing.
type Batch struct {
	// X holds Batch·C·H·W normalised pixels, CHW per image.
	X []float32
	// Y is 1 where a label is present, else 0; Mask is 1 where a label is
	// known (present or absent), 0 where it is unknown or the row is padding.
	Y, Mask []float32
	// Category holds each row's class in the category head, 1 to
	// categories, 0 for none or padding; nil without a category head.
	Category []int64
	// Rows is how many leading rows hold real samples; the rest are padding
	// (mask 0) in a short last evaluation batch.
	Rows int

	// size, classes and categories are the batch's rows, labels per row
	// and category head width (0: none).
	size, classes, categories int
	x, y, mask                *ort.Tensor[float32]
	category                  *ort.Tensor[int64]
	// shards view each shard's rows for a replicated step.
	shards []batchShard
}

// Close frees the batch's runtime tensors.
func (b *Batch) Close() error {
	err := errors.Join(destroy(b.x, b.y, b.mask), b.closeShards())
	if b.category != nil {
		err = errors.Join(err, b.category.Destroy())
	}
	return err
}

func destroy(ts ...*ort.Tensor[float32]) error {
	var errs []error
	for _, t := range ts {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	return errors.Join(errs...)
}

// Stepper runs a step graph and its eval graph over two preallocated sets
// of parameter and optimizer-state tensors: step t reads one set and
// writes the other, and the next step swaps them, so nothing is copied
// between steps. A replicated step or eval graph (Graph.Replicas) runs as
// shards at the same time (see replicated).
type Stepper struct {
	step, eval *Graph
	stepSess   *ort.Session
	evalSess   *ort.Session
	rep        *replicated
	evalRep    *replicated

	// sets[cur] holds the current parameters then states, in Graph order.
	sets [2][]*ort.Tensor[float32]
	cur  int
	// t is the number of steps taken.
	t int64

	// Small tensors bound once: lr and count (t) are rewritten each step.
	posWeight, lr, count, loss, evalLoss *ort.Tensor[float32]
	logits, evalLogits                   *ort.Tensor[float32]
	// catLogits and evalCatLogits receive the category logits; nil
	// without a category head.
	catLogits, evalCatLogits *ort.Tensor[float32]
}

// NewStepper opens sessions for step and eval (built from the same Spec).
// params gives each trainable parameter's initial values; states, when not
// nil, the optimizer state (else zeros); t the steps already taken.
// posWeight has one weight per class (nil: all 1).
//
// On the CPU the step, shard and eval sessions run on one intra-op thread
// each, whatever opts.Threads says: ONNX Runtime's CPU GEMM blocks its
// inner sums by how it splits the work over threads, so their results
// change in the last digits with the thread count (measured: a 256x128
// hidden layer's eval logits, 375 of 400 differing between 1 and 2
// threads), and the thread count is no part of a run key. The shards of a
// replicated step and eval graph give the parallelism instead: up to
// opts.Threads of them (0: all cores) run at once, which changes nothing
// in their results. The update session, elementwise, keeps opts.Threads.
func NewStepper(step, eval *Graph, params, states map[string][]float32, t int64,
	posWeight []float32, opts ort.Options) (_ *Stepper, err error) {
	s := &Stepper{step: step, eval: eval, t: t}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	concurrent := opts.Threads
	if concurrent <= 0 {
		concurrent = runtime.NumCPU()
	}
	provider, err := ort.Provider(opts)
	if err != nil {
		return nil, err
	}
	updateOpts := opts
	if provider == "cpu" {
		opts.Threads = 1
	}
	if step.Replicas <= 1 {
		s.stepSess, err = ort.NewSessionWithConfig(step.Model, step.Inputs, step.Outputs, opts, ort.NoSpinning)
		if err != nil {
			return nil, fmt.Errorf("step session: %w", err)
		}
	}
	if eval.Replicas > 1 && eval.Replicas != step.Replicas {
		return nil, fmt.Errorf("stepper: an eval graph of %d shards for a step of %d", eval.Replicas, step.Replicas)
	}
	if eval.Replicas <= 1 {
		s.evalSess, err = ort.NewSessionWithConfig(eval.Model, eval.Inputs, eval.Outputs, opts, ort.NoSpinning)
		if err != nil {
			return nil, fmt.Errorf("eval session: %w", err)
		}
	}

	specs := append(append([]TensorSpec{}, step.Params...), step.States...)
	for k := range s.sets {
		s.sets[k] = make([]*ort.Tensor[float32], len(specs))
		for i, spec := range specs {
			if s.sets[k][i], err = ort.NewEmptyTensor[float32](spec.Shape...); err != nil {
				return nil, fmt.Errorf("tensor %s: %w", spec.Name, err)
			}
		}
	}
	for i, spec := range specs {
		src, ok := params[spec.Name]
		if i >= len(step.Params) {
			src, ok = states[spec.Name]
			if states == nil {
				continue
			}
		}
		dst := s.sets[0][i].GetData()
		if !ok || len(src) != len(dst) {
			return nil, fmt.Errorf("stepper: %s: have %d values, want %d", spec.Name, len(src), len(dst))
		}
		copy(dst, src)
	}

	classes := int64(step.Classes)
	batch := step.Image[0]
	pw := make([]float32, classes)
	for i := range pw {
		pw[i] = 1
	}
	if posWeight != nil {
		if len(posWeight) != len(pw) {
			return nil, fmt.Errorf("stepper: %d positive weights for %d classes", len(posWeight), classes)
		}
		copy(pw, posWeight)
	}
	for _, t := range []struct {
		dst   **ort.Tensor[float32]
		shape []int64
	}{
		{&s.lr, []int64{1}}, {&s.count, []int64{1}}, {&s.loss, []int64{1}}, {&s.evalLoss, []int64{1}},
		{&s.logits, []int64{batch, classes}}, {&s.evalLogits, []int64{batch, classes}},
	} {
		if *t.dst, err = ort.NewEmptyTensor[float32](t.shape...); err != nil {
			return nil, err
		}
	}
	if step.Categories > 0 {
		for _, dst := range []**ort.Tensor[float32]{&s.catLogits, &s.evalCatLogits} {
			if *dst, err = ort.NewEmptyTensor[float32](batch, int64(step.Categories)); err != nil {
				return nil, err
			}
		}
	}
	if s.posWeight, err = ort.NewTensor(pw, classes); err != nil {
		return nil, err
	}
	if step.Replicas > 1 {
		if s.rep, err = s.openReplicated(step, s.logits, s.catLogits, opts, updateOpts, concurrent); err != nil {
			return nil, err
		}
	}
	if eval.Replicas > 1 {
		if s.evalRep, err = s.openReplicated(eval, s.evalLogits, s.evalCatLogits, opts, updateOpts, concurrent); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// NewBatch allocates a batch of the step graph's shape.
func (s *Stepper) NewBatch() (*Batch, error) {
	img := s.step.Image
	n := int(img[0]) * s.step.Classes
	b := &Batch{
		X: make([]float32, graph.NumElements(img)),
		Y: make([]float32, n), Mask: make([]float32, n),
		size: int(img[0]), classes: s.step.Classes, categories: s.step.Categories,
	}
	var err error
	if b.x, err = ort.NewTensor(b.X, img...); err != nil {
		return nil, err
	}
	labels := []int64{img[0], int64(s.step.Classes)}
	if b.y, err = ort.NewTensor(b.Y, labels...); err != nil {
		b.Close()
		return nil, err
	}
	if b.mask, err = ort.NewTensor(b.Mask, labels...); err != nil {
		b.Close()
		return nil, err
	}
	if b.categories > 0 {
		b.Category = make([]int64, b.size)
		if b.category, err = ort.NewTensorOf(b.Category, img[0]); err != nil {
			b.Close()
			return nil, err
		}
	}
	if s.rep != nil {
		if err := b.shardViews(s.step.Replicas); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// dataInputs are the batch's tensors and the positive weights, in the
// graphs' input order.
func (s *Stepper) dataInputs(b *Batch) []ort.Value {
	in := []ort.Value{b.x, b.y, b.mask, s.posWeight}
	if b.category != nil {
		in = append(in, b.category)
	}
	return in
}

// Step runs one training step on b with learning rate lr and returns the
// loss. The new parameters and states become the current ones.
func (s *Stepper) Step(b *Batch, lr float64) (float32, error) {
	s.lr.GetData()[0] = float32(lr)
	s.count.GetData()[0] = float32(s.t + 1)
	if s.rep != nil {
		return s.replicatedStep(b)
	}
	inputs := make([]ort.Value, 0, 7+len(s.sets[0]))
	inputs = append(append(inputs, s.dataInputs(b)...), s.lr, s.count)
	outputs := make([]ort.Value, 0, 3+len(s.sets[0]))
	outputs = append(outputs, s.loss, s.logits)
	if s.catLogits != nil {
		outputs = append(outputs, s.catLogits)
	}
	next := 1 - s.cur
	for i := range s.sets[0] {
		inputs = append(inputs, s.sets[s.cur][i])
		outputs = append(outputs, s.sets[next][i])
	}
	if err := s.stepSess.Run(inputs, outputs); err != nil {
		return 0, fmt.Errorf("training step %d: %w", s.t+1, err)
	}
	s.cur = next
	s.t++
	return s.loss.GetData()[0], nil
}

// Logits are the logits of the last step's batch (live: the next step
// overwrites them).
func (s *Stepper) Logits() []float32 { return s.logits.GetData() }

// Eval runs the eval graph on b with the current parameters and returns
// the loss and the logits (live until the next Eval).
func (s *Stepper) Eval(b *Batch) (float32, []float32, error) {
	if s.evalRep != nil {
		loss, err := s.evalRep.runShards(b, s.posWeight, s.sets[s.cur][:len(s.step.Params)])
		if err != nil {
			return 0, nil, fmt.Errorf("evaluation: %w", err)
		}
		return loss, s.evalLogits.GetData(), nil
	}
	inputs := make([]ort.Value, 0, 5+len(s.step.Params))
	inputs = append(inputs, s.dataInputs(b)...)
	for i := range s.step.Params {
		inputs = append(inputs, s.sets[s.cur][i])
	}
	outputs := []ort.Value{s.evalLoss, s.evalLogits}
	if s.evalCatLogits != nil {
		outputs = append(outputs, s.evalCatLogits)
	}
	if err := s.evalSess.Run(inputs, outputs); err != nil {
		return 0, nil, fmt.Errorf("evaluation: %w", err)
	}
	return s.evalLoss.GetData()[0], s.evalLogits.GetData(), nil
}

// EvalCategoryLogits are the category logits of the last Eval, [batch,
// categories] (live until the next Eval); nil without a category head.
func (s *Stepper) EvalCategoryLogits() []float32 {
	if s.evalCatLogits == nil {
		return nil
	}
	return s.evalCatLogits.GetData()
}

// Steps is the number of steps taken, counting those before NewStepper.
func (s *Stepper) Steps() int64 { return s.t }

// Params returns the current parameter values by name. The slices are
// live: copy them before the next step if they must be kept.
func (s *Stepper) Params() map[string][]float32 {
	out := make(map[string][]float32, len(s.step.Params))
	for i, p := range s.step.Params {
		out[p.Name] = s.sets[s.cur][i].GetData()
	}
	return out
}

// States returns the current optimizer state by name (live, as Params).
func (s *Stepper) States() map[string][]float32 {
	out := make(map[string][]float32, len(s.step.States))
	for i, st := range s.step.States {
		out[st.Name] = s.sets[s.cur][len(s.step.Params)+i].GetData()
	}
	return out
}

// Close frees the sessions and tensors.
func (s *Stepper) Close() error {
	var errs []error
	for _, r := range []*replicated{s.rep, s.evalRep} {
		if r != nil {
			errs = append(errs, r.close())
		}
	}
	for _, sess := range []*ort.Session{s.stepSess, s.evalSess} {
		if sess != nil {
			errs = append(errs, sess.Close())
		}
	}
	for _, set := range s.sets {
		errs = append(errs, destroy(set...))
	}
	errs = append(errs, destroy(s.posWeight, s.lr, s.count, s.loss, s.evalLoss, s.logits, s.evalLogits,
		s.catLogits, s.evalCatLogits))
	return errors.Join(errs...)
}

// Weights reads the float32 initializers of m by name.
func Weights(m *onnxpb.ModelProto) (map[string][]float32, error) {
	out := map[string][]float32{}
	for _, t := range m.GetGraph().GetInitializer() {
		if t.GetDataType() != graph.Float {
			continue
		}
		v, err := graph.InitializerFloats(t)
		if err != nil {
			return nil, fmt.Errorf("read weights: %w", err)
		}
		out[t.GetName()] = v
	}
	return out, nil
}

// SetWeights returns a copy of m whose float32 initializers named in w
// hold w's values. Every name must be an initializer of m's shape.
func SetWeights(m *onnxpb.ModelProto, w map[string][]float32) (*onnxpb.ModelProto, error) {
	out := graph.Clone(m)
	inits := graph.Initializers(out.Graph)
	for name, v := range w {
		t, ok := inits[name]
		if !ok {
			return nil, fmt.Errorf("set weights: no initializer %q", name)
		}
		if graph.NumElements(t.GetDims()) != len(v) {
			return nil, fmt.Errorf("set weights: %s has shape %v, got %d values", name, t.GetDims(), len(v))
		}
		nt, err := graph.FloatTensor(name, v, t.GetDims()...)
		if err != nil {
			return nil, err
		}
		t.RawData, t.FloatData = nt.RawData, nil
		t.DataType = nt.DataType
	}
	return out, nil
}
