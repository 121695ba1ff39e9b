package train

import (
	"context"
	"fmt"
	"math/rand/v2"

	"golang.org/x/sync/errgroup"
)

// Dataset is what the trainer reads: labelled images by index.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// Labels returns sample i's labels, one per class: 1 present, -1 absent,
	// 0 unknown (left out of the loss and of the metrics).
	Labels(i int) []int8
	// Image writes sample i's normalised pixels (C·H·W floats, CHW) into
	// dst. When augment is set it applies the online augmentation drawn
	// from seed; the same seed gives the same image, whichever goroutine
	// decodes it. It is called from several goroutines at once.
	Image(ctx context.Context, i int, dst []float32, augment bool, seed uint64) error
}

// CategoryDataset is a Dataset whose samples also have a category, which
// a model with a category head (Config.CategoryLogits) needs.
type CategoryDataset interface {
	Dataset
	// Category returns sample i's class in the category head: 1 to the
	// head's width (column c+1 of the category logits), 0 when the sample
	// has none, which leaves it out of the category loss.
	Category(i int) int
}

// batchPlan says which samples go into each batch of one pass.
type batchPlan struct {
	// rows[s] are the sample indices of batch s; a short slice leaves the
	// rest of the batch as padding.
	rows [][]int
	// augment turns on augmentation, seeded from seed, step and row.
	augment bool
	seed    uint64
}

// trainPlan draws one epoch of training batches: a permutation seeded by
// seed, cut into steps batches of size batch. When the epoch needs more
// samples than one pass it draws further permutations, and a full pass
// (steps 0) fills its last batch from the start of the next one, so every
// training batch is full and every sample is seen.
func trainPlan(n, batch, steps int, seed uint64) batchPlan {
	rng := rand.New(rand.NewPCG(seed, 0x73687566666c65)) // "shuffle"
	if steps <= 0 {
		steps = (n + batch - 1) / batch
	}
	var order []int
	for len(order) < steps*batch {
		order = append(order, rng.Perm(n)...)
	}
	plan := batchPlan{augment: true, seed: seed}
	for s := range steps {
		plan.rows = append(plan.rows, order[s*batch:(s+1)*batch])
	}
	return plan
}

// evalPlan covers the first steps batches of the samples in order (all of
// them when steps is 0), without augmentation; the last may be short.
func evalPlan(n, batch, steps int) batchPlan {
	var plan batchPlan
	for start := 0; start < n; start += batch {
		if steps > 0 && len(plan.rows) == steps {
			break
		}
		rows := make([]int, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			rows = append(rows, i)
		}
		plan.rows = append(plan.rows, rows)
	}
	return plan
}

// sampleSeed mixes the pass seed, step and row into one augmentation seed.
func sampleSeed(seed uint64, step, row int) uint64 {
	x := seed ^ uint64(step)<<32 ^ uint64(row)
	// splitmix64's finaliser: nearby inputs give unrelated seeds.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// loadBatches fills batches of plan in a goroutine, decoding the images of
// one batch in parallel (workers at a time), while the caller consumes the
// previous one: at most len(bufs) batches exist at once, the prefetch
// bound. consume gets each batch in order and must be done with it when it
// returns.
func loadBatches(ctx context.Context, ds Dataset, plan batchPlan, bufs []*Batch, workers int,
	consume func(step int, b *Batch) error) error {
	g, ctx := errgroup.WithContext(ctx)
	free := make(chan *Batch, len(bufs))
	for _, b := range bufs {
		free <- b
	}
	ready := make(chan *Batch, len(bufs))
	g.Go(func() error {
		defer close(ready)
		for step, rows := range plan.rows {
			var b *Batch
			select {
			case b = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := fillBatch(ctx, ds, plan, step, rows, b, workers); err != nil {
				return err
			}
			select {
			case ready <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		step := 0
		for b := range ready {
			if err := consume(step, b); err != nil {
				return err
			}
			step++
			free <- b
		}
		return nil
	})
	return g.Wait()
}

// fillBatch decodes the samples rows into b: labels and categories here,
// images in parallel. Rows past len(rows) become padding: zero pixels,
// mask 0, no category.
func fillBatch(ctx context.Context, ds Dataset, plan batchPlan, step int, rows []int, b *Batch, workers int) error {
	if b.Category != nil {
		if err := fillCategories(ds, rows, b); err != nil {
			return err
		}
	}
	imgLen := len(b.X) / b.size
	for r := range b.size {
		y, mask := b.Y[r*b.classes:(r+1)*b.classes], b.Mask[r*b.classes:(r+1)*b.classes]
		if r >= len(rows) {
			clear(y)
			clear(mask)
			clear(b.X[r*imgLen : (r+1)*imgLen])
			continue
		}
		labels := ds.Labels(rows[r])
		if len(labels) != b.classes {
			return fmt.Errorf("sample %d: %d labels, the model has %d outputs", rows[r], len(labels), b.classes)
		}
		for a, l := range labels {
			y[a], mask[a] = 0, 0
			if l > 0 {
				y[a] = 1
			}
			if l != 0 {
				mask[a] = 1
			}
		}
	}
	b.Rows = len(rows)

	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for r, i := range rows {
		dst := b.X[r*imgLen : (r+1)*imgLen]
		seed := sampleSeed(plan.seed, step, r)
		g.Go(func() error { return ds.Image(ctx, i, dst, plan.augment, seed) })
	}
	return g.Wait()
}

// fillCategories writes the category of each row of b, 0 for padding.
func fillCategories(ds Dataset, rows []int, b *Batch) error {
	cats, ok := ds.(CategoryDataset)
	if !ok {
		return fmt.Errorf("the model has a category head, and the dataset (%T) has no categories", ds)
	}
	clear(b.Category)
	for r, i := range rows {
		c := cats.Category(i)
		if c < 0 || c > b.categories {
			return fmt.Errorf("sample %d: category class %d, the category head has %d", i, c, b.categories)
		}
		b.Category[r] = int64(c)
	}
	return nil
}
