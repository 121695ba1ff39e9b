package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/onnxpb"
)

// synthClasses are the attributes of the synthetic images: the background
// colour (red, green, blue), horizontal stripes, vertical stripes, a white
// square.
const synthClasses = 6

// synthData is an in-memory dataset of 32x32 drawings whose attributes
// are visible: what a classifier can learn in seconds.
type synthData struct {
	size   int
	labels [][]int8
	pixels [][]float32
	// colours are the background colours (0 red, 1 green, 2 blue), known
	// even where the label is not.
	colours []int
	// poison makes every image NaN, for the NaN test.
	poison bool
}

func newSynth(n, size int, seed uint64) *synthData {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &synthData{size: size}
	for range n {
		labels := make([]int8, synthClasses)
		for a := range labels {
			labels[a] = -1
		}
		colour := rng.IntN(3)
		labels[colour] = 1
		hStripes, vStripes, square := rng.IntN(2) == 0, rng.IntN(3) == 0, rng.IntN(2) == 0
		for a, on := range []bool{hStripes, vStripes, square} {
			if on {
				labels[3+a] = 1
			}
		}
		img := make([]float32, 3*size*size)
		for y := range size {
			for x := range size {
				v := [3]float32{0.2, 0.2, 0.2}
				v[colour] = 0.9
				if (hStripes && y%6 < 2) || (vStripes && x%6 < 2) {
					v = [3]float32{0.05, 0.05, 0.05}
				}
				if square && x >= size/3 && x < size/2 && y >= size/3 && y < size/2 {
					v = [3]float32{1, 1, 1}
				}
				for c := range 3 {
					img[c*size*size+y*size+x] = (v[c]-0.5)*2 + float32(rng.NormFloat64()*0.1)
				}
			}
		}
		// One label in ten is unknown, as in DeepFashion.
		for a := range labels {
			if rng.IntN(10) == 0 {
				labels[a] = 0
			}
		}
		d.labels = append(d.labels, labels)
		d.pixels = append(d.pixels, img)
		d.colours = append(d.colours, colour)
	}
	return d
}

func (d *synthData) Len() int            { return len(d.labels) }
func (d *synthData) Labels(i int) []int8 { return d.labels[i] }

func (d *synthData) Image(_ context.Context, i int, dst []float32, augment bool, seed uint64) error {
	copy(dst, d.pixels[i])
	if d.poison {
		dst[0] = float32(math.NaN())
	}
	if augment && seed%2 == 0 {
		// Horizontal flip, the one augmentation that keeps every label.
		s := d.size
		for c := range 3 {
			for y := range s {
				row := dst[c*s*s+y*s : c*s*s+(y+1)*s]
				slices.Reverse(row)
			}
		}
	}
	return nil
}

// smallModel is smallcnn from ../shared/models with a synthClasses head.
func smallModel(t testing.TB) (*onnxpb.ModelProto, head.Info) {
	t.Helper()
	m, info, err := head.Attach(sharedModel(t, "smallcnn"), head.Spec{Outputs: synthClasses, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m, info
}

func baseConfig(m *onnxpb.ModelProto, info head.Info, epochs int) Config {
	backbone := info.BackboneParams
	return Config{
		Model: m, Input: info.Input, Logits: info.Output, Height: 32, Width: 32,
		Phases: []Phase{
			{Trainable: info.HeadParams, MaxEpochs: epochs, BatchSize: 16, LearningRate: 1e-2},
			{Trainable: append(slices.Clone(backbone[len(backbone)/2:]), info.HeadParams...),
				MaxEpochs: epochs, BatchSize: 16, LearningRate: 1e-3},
		},
		Optimizer: Optimizer{Kind: Adam}, Patience: 8, MinDelta: 1e-4, LRPatience: 4, LRFactor: 0.1,
		BestBy: BestByValAUC, Seed: 5,
	}
}

// recallAtK is the micro top-k recall of scores (row-major, synthClasses
// per row) on labels.
func recallAtK(scores []float32, labels [][]int8, k int) float64 {
	var hits, positives float64
	for i, row := range labels {
		s := scores[i*synthClasses : (i+1)*synthClasses]
		idx := make([]int, synthClasses)
		for a := range idx {
			idx[a] = a
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case s[a] > s[b]:
				return -1
			case s[a] < s[b]:
				return 1
			}
			return 0
		})
		for a, l := range row {
			if l == 1 {
				positives++
				if slices.Index(idx, a) < k {
					hits++
				}
			}
		}
	}
	return hits / positives
}

// predict runs the eval graph of m over d and returns the logits.
func predict(t *testing.T, m *onnxpb.ModelProto, info head.Info, d *synthData) []float32 {
	t.Helper()
	var out []float32
	for i := range d.Len() {
		res := runGraph(t, mustMarshal(t, m), []feed{{info.Input, d.pixels[i], []int64{1, 3, 32, 32}}},
			[]string{info.Output})
		out = append(out, res[info.Output]...)
	}
	return out
}

func mustMarshal(t testing.TB, m *onnxpb.ModelProto) []byte {
	t.Helper()
	b, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTrainLearnsSynthetic(t *testing.T) {
	needORT(t)
	m, info := smallModel(t)
	train, val := newSynth(128, 32, 1), newSynth(64, 32, 2)
	cfg := baseConfig(m, info, 6)
	cfg.Session.Threads = 2
	res, err := Train(t.Context(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.History {
		t.Logf("phase %d epoch %d: train %.4f val %.4f auc %.4f lr %g",
			e.Phase, e.Epoch, e.TrainLoss, e.ValLoss, e.ValAUC, e.LearningRate)
	}

	// The frequency baseline ranks attributes by how often the training
	// set has them.
	freq := make([]float32, synthClasses)
	for _, row := range train.labels {
		for a, l := range row {
			if l == 1 {
				freq[a]++
			}
		}
	}
	var baseline []float32
	for range val.Len() {
		baseline = append(baseline, freq...)
	}
	const k = 2
	base := recallAtK(baseline, val.labels, k)
	got := recallAtK(predict(t, res.Model, info, val), val.labels, k)
	t.Logf("top-%d recall: model %.3f, frequency baseline %.3f (best: phase %d epoch %d)",
		k, got, base, res.BestPhase, res.BestEpoch)
	if got < base+0.15 {
		t.Errorf("top-%d recall %.3f is not clearly above the frequency baseline %.3f", k, got, base)
	}
}

func TestPhase2ChangesOnlyUnfrozen(t *testing.T) {
	needORT(t)
	m, info := smallModel(t)
	cfg := baseConfig(m, info, 1)
	cfg.Phases[0].MaxEpochs = 0
	res, err := Train(t.Context(), cfg, newSynth(32, 32, 1), newSynth(16, 32, 2))
	if err != nil {
		t.Fatal(err)
	}
	before, err := Weights(m)
	if err != nil {
		t.Fatal(err)
	}
	after, err := Weights(res.Model)
	if err != nil {
		t.Fatal(err)
	}
	trainable := cfg.Phases[1].Trainable
	for name, w := range before {
		changed := !slices.Equal(w, after[name])
		if want := slices.Contains(trainable, name); changed != want {
			t.Errorf("%s: changed %v, trainable %v", name, changed, want)
		}
	}
}

func TestNaNLossStops(t *testing.T) {
	needORT(t)
	m, info := smallModel(t)
	train := newSynth(32, 32, 1)
	train.poison = true
	_, err := Train(t.Context(), baseConfig(m, info, 2), train, nil)
	var nan *NonFiniteLossError
	if !errors.As(err, &nan) {
		t.Fatalf("err = %v, want a NonFiniteLossError", err)
	}
	if want := "loss is NaN at phase 1 epoch 1 step 1"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to say %q", err, want)
	}
}

// cancelAt cancels a context on the first report of phase.
type cancelAt struct {
	phase  string
	cancel context.CancelFunc
}

func (c cancelAt) Report(phase string, done, total int, note string) {
	if phase == c.phase && done == 1 {
		c.cancel()
	}
}

// synthCategories are the categories of catSynth: the background colour.
const synthCategories = 3

// catSynth adds a category to synthData's images: 1 + the background
// colour, except every seventh image, which has none.
type catSynth struct {
	*synthData
}

func (d catSynth) Category(i int) int {
	if i%7 == 3 {
		return 0
	}
	return 1 + d.colours[i]
}

// categoryModel is smallModel with a category head too.
func categoryModel(t testing.TB) (*onnxpb.ModelProto, head.Info) {
	t.Helper()
	m, info, err := head.Attach(sharedModel(t, "smallcnn"),
		head.Spec{Outputs: synthClasses, Categories: synthCategories, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m, info
}

func TestTrainLearnsCategories(t *testing.T) {
	needORT(t)
	m, info := categoryModel(t)
	train, val := catSynth{newSynth(96, 32, 1)}, catSynth{newSynth(48, 32, 2)}
	cfg := baseConfig(m, info, 2)
	cfg.CategoryLogits, cfg.CategoryWeight = info.CategoryOutput, 1
	cfg.Session.Threads = 2
	res, err := Train(t.Context(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}

	// Top-1 accuracy on the validation images with a category, against
	// the share of the most frequent category.
	counts := make([]int, synthCategories+1)
	var hits, images int
	data := mustMarshal(t, res.Model)
	for i := range val.Len() {
		c := val.Category(i)
		if c == 0 {
			continue
		}
		counts[c]++
		images++
		out := runGraph(t, data, []feed{{info.Input, val.pixels[i], []int64{1, 3, 32, 32}}},
			[]string{info.CategoryOutput})[info.CategoryOutput]
		best := 0
		for j, v := range out {
			if v > out[best] {
				best = j
			}
		}
		if best+1 == c {
			hits++
		}
	}
	acc, majority := float64(hits)/float64(images), float64(slices.Max(counts))/float64(images)
	t.Logf("category top-1 accuracy %.3f on %d images, majority rate %.3f", acc, images, majority)
	if acc < majority+0.3 {
		t.Errorf("category top-1 accuracy %.3f is not clearly above the majority rate %.3f", acc, majority)
	}
}

func TestTrainCategoriesNeedCategoryData(t *testing.T) {
	needORT(t)
	m, info := categoryModel(t)
	cfg := baseConfig(m, info, 1)
	cfg.CategoryLogits, cfg.CategoryWeight = info.CategoryOutput, 1
	_, err := Train(t.Context(), cfg, newSynth(16, 32, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "no categories") {
		t.Errorf("training a category head on data without categories: %v", err)
	}
	cfg.CategoryWeight = 0
	if _, err := Train(t.Context(), cfg, catSynth{newSynth(16, 32, 1)}, nil); err == nil {
		t.Error("Train accepted a category weight of 0")
	}
}

func TestResumeGivesSameModel(t *testing.T) {
	t.Run("attributes", func(t *testing.T) {
		m, info := smallModel(t)
		checkResume(t, baseConfig(m, info, 2), newSynth(48, 32, 1), newSynth(16, 32, 2))
	})
	t.Run("categories", func(t *testing.T) {
		m, info := categoryModel(t)
		cfg := baseConfig(m, info, 2)
		cfg.CategoryLogits, cfg.CategoryWeight = info.CategoryOutput, 0.5
		checkResume(t, cfg, catSynth{newSynth(48, 32, 1)}, catSynth{newSynth(16, 32, 2)})
	})
}

// checkResume trains cfg once without interruption and once interrupted
// in phase 2 and resumed, and compares the models' bytes.
func checkResume(t *testing.T, cfg Config, train, val Dataset) {
	needORT(t)
	cfg.Session.Threads = 2

	resumed := 0
	run := func(cfg Config, ctx context.Context) ([]byte, error) {
		res, err := Train(ctx, cfg, train, val)
		if err != nil {
			return nil, err
		}
		resumed = res.ResumedEpochs
		return mustMarshal(t, res.Model), nil
	}
	cfg.Workdir = t.TempDir()
	want, err := run(cfg, t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// Interrupt in phase 2's first epoch, then run again on the same
	// workdir: the result must be the same bytes.
	cfg.Workdir = t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	cfg.Progress = cancelAt{phase: "phase 2 epoch 1/2", cancel: cancel}
	if _, err := run(cfg, ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v, want context.Canceled", err)
	}
	cfg.Progress = nil
	got, err := run(cfg, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the resumed run's model differs from the uninterrupted run's")
	}
	// Phase 1 finished before the interruption: a rerun that trains it
	// again from scratch also gives the same bytes, so check it resumed.
	if resumed < 2 {
		t.Errorf("the rerun took over %d epochs from the checkpoint, want phase 1's 2", resumed)
	}
}
