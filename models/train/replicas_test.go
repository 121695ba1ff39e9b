package train

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// TestReplicatedStepMatchesSingle trains the same batches with one step
// graph and with the batch split in 2 and 4 shards: the losses, logits and
// parameters must agree to float32 rounding (the shards only change the
// order of additions). One batch leaves a whole shard without known
// labels or categories, which must neither divide by zero nor weigh in.
func TestReplicatedStepMatchesSingle(t *testing.T) {
	needORT(t)
	t.Run("attributes", func(t *testing.T) {
		checkReplicated(t, sharedModel(t, "smallcnn"), "")
	})
	t.Run("categories", func(t *testing.T) {
		m, info, err := head.Attach(sharedModel(t, "smallcnn"), head.Spec{Outputs: 12, Categories: 5, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		checkReplicated(t, m, info.CategoryOutput)
	})
}

func checkReplicated(t *testing.T, m *onnxpb.ModelProto, categoryLogits string) {
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	weights, err := Weights(m)
	if err != nil {
		t.Fatal(err)
	}
	const batch, size = 8, 32
	open := func(replicas int) (*Stepper, *Batch) {
		spec := Spec{
			Input: firstInput(m), Logits: m.Graph.Output[0].GetName(), Trainable: order,
			Batch: batch, Height: size, Width: size, Optimizer: Optimizer{Kind: Adam}, Replicas: replicas,
			CategoryLogits: categoryLogits, CategoryWeight: 0.5,
		}
		step, err := BuildStep(m, spec)
		if err != nil {
			t.Fatal(err)
		}
		eval, err := BuildEval(m, spec)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewStepper(step, eval, weights, nil, 0, nil, ort.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		b, err := s.NewBatch()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return s, b
	}
	single, sb := open(1)
	steppers := map[int]*Stepper{}
	batches := map[int]*Batch{}
	for _, r := range []int{2, 4} {
		steppers[r], batches[r] = open(r)
	}

	rng := rand.New(rand.NewPCG(3, 4))
	classes := len(sb.Y) / batch
	for step := range 4 {
		for i := range sb.X {
			sb.X[i] = float32(rng.NormFloat64())
		}
		for i := range sb.Y {
			sb.Y[i] = float32(rng.IntN(2))
			sb.Mask[i] = float32(min(rng.IntN(5), 1)) // a fifth unknown
			if step == 1 && i < 2*classes {
				sb.Mask[i] = 0 // the first shard of 4 has no known label
			}
		}
		for i := range sb.Category {
			sb.Category[i] = int64(rng.IntN(6)) // 0: none
			if step == 2 && i >= batch/2 {
				sb.Category[i] = 0 // the second shard of 2 has no category
			}
		}
		want, err := single.Step(sb, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		wantEval, evalLogits, err := single.Eval(sb)
		if err != nil {
			t.Fatal(err)
		}
		evalLogits = append([]float32{}, evalLogits...)
		evalCats := append([]float32{}, single.EvalCategoryLogits()...)
		for r, s := range steppers {
			b := batches[r]
			copy(b.X, sb.X)
			copy(b.Y, sb.Y)
			copy(b.Mask, sb.Mask)
			copy(b.Category, sb.Category)
			got, err := s.Step(b, 1e-3)
			if err != nil {
				t.Fatal(err)
			}
			if !close32(got, want, 1e-5) {
				t.Errorf("step %d, %d replicas: loss %v, single graph %v", step+1, r, got, want)
			}
			if d := maxRelDiff(s.Logits(), single.Logits()); d > 1e-4 {
				t.Errorf("step %d, %d replicas: logits differ by %g", step+1, r, d)
			}
			if categoryLogits != "" {
				if d := maxRelDiff(s.catLogits.GetData(), single.catLogits.GetData()); d > 1e-4 {
					t.Errorf("step %d, %d replicas: category logits differ by %g", step+1, r, d)
				}
			}
			// The eval graph runs in the same shards, after the update.
			gotEval, logits, err := s.Eval(b)
			if err != nil {
				t.Fatal(err)
			}
			if !close32(gotEval, wantEval, 1e-4) {
				t.Errorf("step %d, %d replicas: eval loss %v, single graph %v", step+1, r, gotEval, wantEval)
			}
			if d := maxRelDiff(logits, evalLogits); d > 1e-3 {
				t.Errorf("step %d, %d replicas: eval logits differ by %g", step+1, r, d)
			}
			if d := maxRelDiff(s.EvalCategoryLogits(), evalCats); d > 1e-3 {
				t.Errorf("step %d, %d replicas: eval category logits differ by %g", step+1, r, d)
			}
		}
	}
	for r, s := range steppers {
		if s.Steps() != single.Steps() {
			t.Errorf("%d replicas took %d steps, want %d", r, s.Steps(), single.Steps())
		}
		for name, want := range single.Params() {
			if d := maxRelDiff(s.Params()[name], want); d > 1e-3 {
				t.Errorf("%d replicas: parameter %s differs by %g", r, name, d)
			}
		}
		for name, want := range single.States() {
			if d := maxRelDiff(s.States()[name], want); d > 1e-3 {
				t.Errorf("%d replicas: state %s differs by %g", r, name, d)
			}
		}
	}
}

func TestReplicatedStepNeedsEqualShards(t *testing.T) {
	m := sharedModel(t, "smallcnn")
	spec := Spec{Input: firstInput(m), Logits: m.Graph.Output[0].GetName(), Trainable: []string{"fc.weight"},
		Batch: 6, Height: 32, Width: 32, Replicas: 4}
	_, err := BuildStep(m, spec)
	if err == nil || !strings.Contains(err.Error(), "does not split into 4 equal shards") {
		t.Fatalf("batch 6 in 4 shards: error %v", err)
	}
}

func close32(a, b float32, tol float64) bool {
	return math.Abs(float64(a-b)) <= tol*math.Max(1, math.Abs(float64(b)))
}

// maxRelDiff is the largest |a-b| relative to the largest |b| (at least 1e-6).
func maxRelDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var diff, scale float64
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return diff / math.Max(scale, 1e-6)
}

// TestFallbackTrainsLikeCPU: CUDA asked for with a fall back, on a library
// without CUDA, trains on the CPU exactly as a CPU run does (same shards,
// same bytes), since both share a run key.
func TestFallbackTrainsLikeCPU(t *testing.T) {
	needORT(t)
	if os.Getenv("STITCH_EXPECT_CUDA") != "" {
		t.Skip("this library has CUDA")
	}
	m, info := smallModel(t)
	train, val := newSynth(48, 32, 1), newSynth(16, 32, 2)
	var models [][]byte
	for _, provider := range []string{"cpu", "cuda"} {
		cfg := baseConfig(m, info, 1)
		cfg.Session = ort.Options{Provider: provider, FallbackCPU: true, Threads: 2}
		res, err := Train(t.Context(), cfg, train, val)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, mustMarshal(t, res.Model))
	}
	if !bytes.Equal(models[0], models[1]) {
		t.Error("the CUDA run that fell back to the CPU trained another model than the CPU run")
	}
}
