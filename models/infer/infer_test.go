package infer

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/graph/graphtest"
	"stitch/models/head"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// headModel is smallcnn with a head of outputs attributes.
func headModel(t testing.TB, outputs int) *artifacts.Model {
	t.Helper()
	return categoryModel(t, outputs, 0)
}

// categoryModel is smallcnn with a head of outputs attributes and, when
// categories is above 0, a category head with ids 2, 4, 6, ...
func categoryModel(t testing.TB, outputs, categories int) *artifacts.Model {
	t.Helper()
	graphtest.RequireORT(t)
	m, info, err := head.Attach(graphtest.SharedModel(t, "smallcnn"),
		head.Spec{Hidden: []int{16}, Outputs: outputs, Categories: categories, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	meta := info.Meta
	for i := range outputs {
		meta.Attributes = append(meta.Attributes, artifacts.Attribute{Index: i, Name: "a" + strconv.Itoa(i), Type: 1 + i%5})
	}
	for i := range categories {
		meta.Categories = append(meta.Categories, artifacts.Category{ID: 2 * (i + 1), Name: "c" + strconv.Itoa(i)})
	}
	return &artifacts.Model{ONNX: data, Meta: meta}
}

func TestPredictMatchesPlainSession(t *testing.T) {
	model := headModel(t, 6)
	const n = 11 // two full batches of 4 and a short one of 3
	x := graphtest.Input(3, n, 3, 64, 64)
	p, err := New(model, Options{BatchSize: 4, Workers: 2, Runtime: ort.Options{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	size := 3 * 64 * 64
	got, err := p.Predict(t.Context(), n, func(_ context.Context, i int, dst []float32) error {
		copy(dst, x[i*size:(i+1)*size])
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	logits, _ := graphtest.Run(t, mustParse(t, model.ONNX), "input", "logits", x, n, 3, 64, 64)
	want := make([]float32, len(logits))
	for i, v := range logits {
		want[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
	if diff := cmp.Diff(want, got.Attributes, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("Predictor scores differ from a plain session (-want +got)\n%s", diff)
	}
	if got.Categories != nil || p.NumCategories() != 0 {
		t.Errorf("a model without a category head gave %d category scores", len(got.Categories))
	}
}

// TestPredictCategories checks the category probabilities against a
// softmax of a plain session's category logits, over full and short
// batches, and that the short batches' views are freed.
func TestPredictCategories(t *testing.T) {
	model := categoryModel(t, 6, 5)
	const n = 7 // a full batch of 4 and a short one of 3
	x := graphtest.Input(5, n, 3, 64, 64)
	p, err := New(model, Options{BatchSize: 4, Workers: 2, Runtime: ort.Options{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.NumCategories() != 5 {
		t.Fatalf("NumCategories = %d, want 5", p.NumCategories())
	}
	size := 3 * 64 * 64
	got, err := p.Predict(t.Context(), n, func(_ context.Context, i int, dst []float32) error {
		copy(dst, x[i*size:(i+1)*size])
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.live != 3 {
		t.Errorf("%d live tensors after a short batch, want 3", p.live)
	}

	m := mustParse(t, model.ONNX)
	attrLogits, _ := graphtest.Run(t, m, "input", head.OutputName, x, n, 3, 64, 64)
	if len(got.Attributes) != len(attrLogits) {
		t.Errorf("%d attribute scores, want %d", len(got.Attributes), len(attrLogits))
	}
	logits, _ := graphtest.Run(t, m, "input", head.CategoryOutputName, x, n, 3, 64, 64)
	want := make([]float32, len(logits))
	for i := range n {
		row := logits[i*5 : (i+1)*5]
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v))
		}
		for c, v := range row {
			want[i*5+c] = float32(math.Exp(float64(v)) / sum)
		}
	}
	if diff := cmp.Diff(want, got.Categories, cmpopts.EquateApprox(0, 1e-6)); diff != "" {
		t.Errorf("category probabilities differ from a softmax of the logits (-want +got)\n%s", diff)
	}

	// Metadata that lists other categories than the output has is refused.
	wrong := *model
	wrong.Meta.Categories = wrong.Meta.Categories[:4]
	if _, err := New(&wrong, Options{}); !errors.Is(err, ErrOutputCount) {
		t.Errorf("New with 5 category outputs and 4 categories = %v, want ErrOutputCount", err)
	}
	wrong.Meta.CategoryOutput = "no_such_output"
	if _, err := New(&wrong, Options{}); err == nil || !strings.Contains(err.Error(), "no_such_output") {
		t.Errorf("New with a missing category output = %v", err)
	}
}

func mustParse(t testing.TB, data []byte) *onnxpb.ModelProto {
	t.Helper()
	m, err := graph.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPredictFillError(t *testing.T) {
	p, err := New(headModel(t, 2), Options{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	boom := errors.New("decode image 3: broken JPEG")
	_, err = p.Predict(t.Context(), 5, func(_ context.Context, i int, dst []float32) error {
		if i == 3 {
			return boom
		}
		return nil
	}, nil)
	if !errors.Is(err, boom) {
		t.Errorf("Predict = %v, want the Fill error", err)
	}
}

func TestNewRejectsBadModels(t *testing.T) {
	model := headModel(t, 4)
	wrongCount := *model
	wrongCount.Meta.Attributes = wrongCount.Meta.Attributes[:3]
	if _, err := New(&wrongCount, Options{}); !errors.Is(err, ErrOutputCount) {
		t.Errorf("New with 4 outputs and 3 attributes = %v, want ErrOutputCount", err)
	}
	noSize := *model
	noSize.Meta.Height = 0
	if _, err := New(&noSize, Options{}); err == nil || !strings.Contains(err.Error(), "input size") {
		t.Errorf("New without an input size = %v", err)
	}
	wrongName := *model
	wrongName.Meta.Input = "pixels"
	if _, err := New(&wrongName, Options{}); err == nil || !strings.Contains(err.Error(), `"pixels"`) {
		t.Errorf("New with a wrong input name = %v", err)
	}
	notONNX := *model
	notONNX.ONNX = []byte("not a model")
	if _, err := New(&notONNX, Options{}); err == nil {
		t.Error("New accepted bytes that are not ONNX")
	}
}

func TestCUDARequest(t *testing.T) {
	model := headModel(t, 2)
	p, err := New(model, Options{Runtime: ort.Options{Provider: "cuda"}})
	if os.Getenv("STITCH_EXPECT_CUDA") != "" {
		if err != nil {
			t.Fatalf("CUDA expected: %v", err)
		}
		p.Close()
		return
	}
	if !errors.Is(err, ort.ErrNoCUDA) {
		t.Errorf("CUDA on a CPU build = %v, want ErrNoCUDA", err)
	}
	p, err = New(model, Options{Runtime: ort.Options{Provider: "cuda", FallbackCPU: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Provider() != "cpu" {
		t.Errorf("provider after fall back = %s, want cpu", p.Provider())
	}
}

func TestMissingLibrary(t *testing.T) {
	t.Setenv(ort.EnvLibrary, "/nowhere/libonnxruntime.so.1")
	_, err := ort.FindLibrary()
	if err == nil || !strings.Contains(err.Error(), ort.EnvLibrary) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FindLibrary with %s pointing nowhere = %v", ort.EnvLibrary, err)
	}
}

// TestNoLeaks runs many batches, full and short, and checks that the Go
// heap and the process's resident memory (C allocations of the runtime
// included) stay flat and that every tensor made for a short batch is
// destroyed, then that Close destroys the rest.
func TestNoLeaks(t *testing.T) {
	p, err := New(headModel(t, 8), Options{BatchSize: 8, Runtime: ort.Options{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	scores := make([]float32, 8*p.NumOutputs())
	runs := func(k int) {
		for i := range k {
			if err := p.RunBuffer(1+i%8, scores, nil); err != nil {
				t.Fatal(err)
			}
			if p.live != 2 {
				t.Fatalf("after batch %d: %d live tensors, want 2", i, p.live)
			}
		}
	}
	runs(50) // warm up the runtime's arenas before measuring
	heap0, rss0 := memory(t)
	runs(600)
	heap1, rss1 := memory(t)
	t.Logf("Go heap %d -> %d KiB, resident %d -> %d KiB", heap0>>10, heap1>>10, rss0>>10, rss1>>10)
	if heap1 > heap0+4<<20 {
		t.Errorf("Go heap grew by %d KiB over 600 batches", (heap1-heap0)>>10)
	}
	if rss0 > 0 && rss1 > rss0+32<<20 {
		t.Errorf("resident memory grew by %d KiB over 600 batches", (rss1-rss0)>>10)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.live != 0 {
		t.Errorf("%d tensors live after Close", p.live)
	}
}

// memory returns the live Go heap after a collection and the resident set
// size from /proc (0 where there is none).
func memory(t *testing.T) (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return ms.HeapAlloc, 0
	}
	fields := strings.Fields(string(data))
	pages, _ := strconv.ParseUint(fields[1], 10, 64)
	return ms.HeapAlloc, pages * uint64(os.Getpagesize())
}
