package ort_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stitch/internal/testenv"
	"stitch/models/ort"
)

// sharedModels is ../shared/models beside the checkout.
func sharedModels(t *testing.T) string {
	t.Helper()
	return testenv.Shared(t, "models")
}

func TestRunSmallCNN(t *testing.T) {
	model, err := os.ReadFile(filepath.Join(sharedModels(t), "smallcnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in, out, err := ort.Describe(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || len(out) != 1 {
		t.Fatalf("smallcnn: %d inputs, %d outputs; want 1 and 1", len(in), len(out))
	}
	s, err := ort.NewSession(model, []string{in[0].Name}, []string{out[0].Name}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, err := ort.NewEmptyTensor[float32](2, 3, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	y, err := ort.NewEmptyTensor[float32](2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Destroy()
	for i := range 3 {
		x.GetData()[i] = float32(i)
	}
	if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
		t.Fatal(err)
	}
	nonzero := 0
	for _, v := range y.GetData() {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Error("smallcnn produced all-zero logits")
	}
}

func TestCUDAOnCPUBuild(t *testing.T) {
	model, err := os.ReadFile(filepath.Join(sharedModels(t), "smallcnn.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	in, out, err := ort.Describe(model)
	if err != nil {
		t.Fatal(err)
	}
	names := func(infos []ort.IOInfo) []string { return []string{infos[0].Name} }
	_, err = ort.NewSession(model, names(in), names(out), ort.Options{Provider: "cuda"})
	if os.Getenv("STITCH_EXPECT_CUDA") != "" {
		if err != nil {
			t.Fatalf("CUDA expected: %v", err)
		}
		return
	}
	if !errors.Is(err, ort.ErrNoCUDA) {
		t.Fatalf("cuda on a CPU build: got %v, want ort.ErrNoCUDA", err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	for range 2 {
		s, err := ort.NewSession(model, names(in), names(out),
			ort.Options{Provider: "cuda", FallbackCPU: true, Logger: logger})
		if err != nil {
			t.Fatalf("cuda with fall back: %v", err)
		}
		defer s.Close()
		if s.Provider != "cpu" {
			t.Errorf("provider after fall back = %q, want cpu", s.Provider)
		}
	}
	// A stage opens several sessions: the fallback is said once.
	if n := strings.Count(logs.String(), "CUDA unavailable"); n != 1 {
		t.Errorf("two fallen-back sessions logged the fallback %d times, want once:\n%s", n, logs.String())
	}

	// Provider tells the same before any session is opened.
	for _, c := range []struct {
		opts ort.Options
		want string
	}{
		{ort.Options{}, "cpu"},
		{ort.Options{Provider: "cpu"}, "cpu"},
		{ort.Options{Provider: "cuda", FallbackCPU: true}, "cpu"},
	} {
		if got, err := ort.Provider(c.opts); err != nil || got != c.want {
			t.Errorf("Provider(%+v) = %q, %v; want %q", c.opts, got, err, c.want)
		}
	}
	if _, err := ort.Provider(ort.Options{Provider: "cuda"}); !errors.Is(err, ort.ErrNoCUDA) {
		t.Errorf("Provider(cuda) on a CPU build: err = %v, want ort.ErrNoCUDA", err)
	}
}
