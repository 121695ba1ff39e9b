package train

import (
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
	"stitch/models/ort"
)

// replicated is what a Stepper runs a replicated step (Graph.Replicas)
// with: one session per shard, reading the same parameter tensors and
// writing its own gradients, then the update session that sums them. On a
// CPU with few cores this measured faster than one session on all
// threads: a convolution of batch 32 parallelises poorly over 2 threads,
// two independent shards need not. On the CPU each session has one
// thread (see NewStepper) and up to `concurrent` shards run at once.
//
// A replicated eval graph runs the same way, without gradients or update.
type replicated struct {
	sessions   []*ort.Session
	update     *ort.Session
	concurrent int
	// Per shard: gradients in Params order, loss, and views of the shard's
	// rows of the Stepper's logits and category logits.
	grads             [][]*ort.Tensor[float32]
	loss              []*ort.Tensor[float32]
	logits, catLogits []*ort.Tensor[float32]
	// count and catCount are the whole batch's known labels and rows with
	// a category (each at least 1), which every shard divides by.
	count, catCount *ort.Tensor[float32]
}

// batchShard views one shard's rows of a Batch.
type batchShard struct {
	x, y, mask *ort.Tensor[float32]
	category   *ort.Tensor[int64]
}

// openReplicated opens the shard sessions of g, a replicated step or eval
// graph of s, and the step's update session, and allocates their outputs:
// each shard writes its rows of logits and catLogits (nil without a
// category head).
func (s *Stepper) openReplicated(g *Graph, logits, catLogits *ort.Tensor[float32], opts, updateOpts ort.Options,
	concurrent int) (*replicated, error) {
	r := &replicated{concurrent: concurrent}
	err := r.open(g, logits, catLogits, opts, updateOpts)
	if err != nil {
		return nil, errors.Join(err, r.close())
	}
	return r, nil
}

func (r *replicated) open(step *Graph, logits, catLogits *ort.Tensor[float32], opts, updateOpts ort.Options) error {
	for range step.Replicas {
		sess, err := ort.NewSessionWithConfig(step.Model, step.Inputs, step.Outputs, opts, ort.NoSpinning)
		if err != nil {
			return fmt.Errorf("shard session: %w", err)
		}
		r.sessions = append(r.sessions, sess)
	}
	var err error
	if up := step.Update; up != nil {
		if r.update, err = ort.NewSessionWithConfig(up.Model, up.Inputs, up.Outputs, updateOpts, ort.NoSpinning); err != nil {
			return fmt.Errorf("update session: %w", err)
		}
	}

	if r.count, err = ort.NewEmptyTensor[float32](1); err != nil {
		return err
	}
	if r.catCount, err = ort.NewEmptyTensor[float32](1); err != nil {
		return err
	}
	rows := int64(step.Image[0]) / int64(step.Replicas)
	view := func(all *ort.Tensor[float32], k int64, width int64) (*ort.Tensor[float32], error) {
		n := rows * width
		return ort.NewTensor(all.GetData()[k*n:(k+1)*n], rows, width)
	}
	for k := range int64(step.Replicas) {
		loss, err := ort.NewEmptyTensor[float32](1)
		if err != nil {
			return err
		}
		r.loss = append(r.loss, loss)
		shardLogits, err := view(logits, k, int64(step.Classes))
		if err != nil {
			return err
		}
		r.logits = append(r.logits, shardLogits)
		if catLogits != nil {
			cat, err := view(catLogits, k, int64(step.Categories))
			if err != nil {
				return err
			}
			r.catLogits = append(r.catLogits, cat)
		}
		if step.Update == nil {
			continue // an eval graph: no gradients
		}
		grads := make([]*ort.Tensor[float32], len(step.Params))
		r.grads = append(r.grads, grads)
		for i, p := range step.Params {
			if grads[i], err = ort.NewEmptyTensor[float32](p.Shape...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *replicated) close() error {
	var errs []error
	for _, sess := range append([]*ort.Session{r.update}, r.sessions...) {
		if sess != nil {
			errs = append(errs, sess.Close())
		}
	}
	errs = append(errs, destroy(r.count, r.catCount), destroy(r.loss...),
		destroy(r.logits...), destroy(r.catLogits...))
	for _, grads := range r.grads {
		errs = append(errs, destroy(grads...))
	}
	return errors.Join(errs...)
}

// shardViews adds to b one view per shard of its rows.
func (b *Batch) shardViews(replicas int) error {
	rows := b.size / replicas
	pixels := len(b.X) / b.size
	shape := append([]int64{int64(rows)}, b.x.GetShape()[1:]...)
	labels := []int64{int64(rows), int64(b.classes)}
	for k := range replicas {
		var sh batchShard
		x, y, n := k*rows*pixels, k*rows*b.classes, rows*b.classes
		var err error
		if sh.x, err = ort.NewTensor(b.X[x:x+rows*pixels], shape...); err == nil {
			if sh.y, err = ort.NewTensor(b.Y[y:y+n], labels...); err == nil {
				sh.mask, err = ort.NewTensor(b.Mask[y:y+n], labels...)
			}
		}
		if err == nil && b.Category != nil {
			sh.category, err = ort.NewTensorOf(b.Category[k*rows:(k+1)*rows], int64(rows))
		}
		b.shards = append(b.shards, sh)
		if err != nil {
			return err
		}
	}
	return nil
}

// closeShards frees b's shard views.
func (b *Batch) closeShards() error {
	var errs []error
	for _, sh := range b.shards {
		errs = append(errs, destroy(sh.x, sh.y, sh.mask))
		if sh.category != nil {
			errs = append(errs, sh.category.Destroy())
		}
	}
	return errors.Join(errs...)
}

// replicatedStep runs the shards of a replicated step at the same time,
// then the update, and returns the batch's loss.
func (s *Stepper) replicatedStep(b *Batch) (float32, error) {
	r := s.rep
	cur := s.sets[s.cur]
	loss, err := r.runShards(b, s.posWeight, cur[:len(s.step.Params)])
	if err != nil {
		return 0, fmt.Errorf("training step %d: %w", s.t+1, err)
	}

	inputs := []ort.Value{s.lr, s.count}
	for _, t := range cur {
		inputs = append(inputs, t)
	}
	for _, grads := range r.grads {
		for _, gr := range grads {
			inputs = append(inputs, gr)
		}
	}
	next := s.sets[1-s.cur]
	outputs := make([]ort.Value, len(next))
	for i, t := range next {
		outputs[i] = t
	}
	if err := r.update.Run(inputs, outputs); err != nil {
		return 0, fmt.Errorf("training step %d: update: %w", s.t+1, err)
	}
	s.cur = 1 - s.cur
	s.t++
	return loss, nil
}

// runShards runs r's shard sessions on b's shards, up to r.concurrent at
// once, and returns the sum of their losses: the batch's.
func (r *replicated) runShards(b *Batch, posWeight *ort.Tensor[float32],
	params []*ort.Tensor[float32]) (float32, error) {
	// The counts the single step graph takes from the mask and categories:
	// exact integers, at least 1.
	var known, categorised float64
	for _, m := range b.Mask {
		known += float64(m)
	}
	for _, c := range b.Category {
		if c > 0 {
			categorised++
		}
	}
	r.count.GetData()[0] = float32(max(known, 1))
	r.catCount.GetData()[0] = float32(max(categorised, 1))

	var g errgroup.Group
	g.SetLimit(max(1, r.concurrent))
	for k, sess := range r.sessions {
		sh := b.shards[k]
		inputs := []ort.Value{sh.x, sh.y, sh.mask, posWeight}
		outputs := []ort.Value{r.loss[k], r.logits[k]}
		if sh.category != nil {
			inputs = append(inputs, sh.category)
			outputs = append(outputs, r.catLogits[k])
		}
		inputs = append(inputs, r.count)
		if sh.category != nil {
			inputs = append(inputs, r.catCount)
		}
		for _, p := range params {
			inputs = append(inputs, p)
		}
		if k < len(r.grads) {
			for _, gr := range r.grads[k] {
				outputs = append(outputs, gr)
			}
		}
		g.Go(func() error { return sess.Run(inputs, outputs) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var loss float32
	for _, l := range r.loss {
		loss += l.GetData()[0]
	}
	return loss, nil
}
