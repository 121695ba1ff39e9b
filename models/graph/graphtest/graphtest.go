// Package graphtest holds helpers shared by the tests of the model
// packages: where the shared models are, and running a model once on ONNX
// Runtime.
package graphtest

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"stitch/internal/testenv"
	"stitch/models/graph"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// SharedModelNames are the torchvision exports in ../shared/models, plus
// the ImageNet-pretrained MobileNetV2.
var SharedModelNames = []string{"smallcnn", "resnet18", "mobilenet_v2", "squeezenet1_1", "mobilenet_v2_imagenet"}

// SharedModels returns ../shared/models beside the module root (found by
// walking up to go.mod) and skips the test when that folder is absent.
func SharedModels(t testing.TB) string {
	t.Helper()
	return testenv.Shared(t, "models")
}

// SharedModel reads ../shared/models/NAME.onnx.
func SharedModel(t testing.TB, name string) *onnxpb.ModelProto {
	t.Helper()
	m, err := graph.Read(filepath.Join(SharedModels(t), name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// RequireORT skips the test when the ONNX Runtime library is missing.
func RequireORT(t testing.TB) {
	t.Helper()
	testenv.RequireORT(t)
}

// Input returns a deterministic pseudo-random input of shape.
func Input(seed uint64, shape ...int64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0))
	x := make([]float32, graph.NumElements(shape))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// Run runs model once on x (shape xShape) and returns the single output
// named output and its shape.
func Run(t testing.TB, model *onnxpb.ModelProto, input, output string, x []float32,
	xShape ...int64) ([]float32, []int64) {
	t.Helper()
	RequireORT(t)
	data, err := graph.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, []string{input}, []string{output}, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	xt, err := ort.NewTensor(x, xShape...)
	if err != nil {
		t.Fatal(err)
	}
	defer xt.Destroy()
	outs := []ort.Value{nil}
	if err := s.Run([]ort.Value{xt}, outs); err != nil {
		t.Fatal(err)
	}
	defer outs[0].Destroy()
	y, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		t.Fatalf("output %s is %T, want a float32 tensor", output, outs[0])
	}
	return append([]float32(nil), y.GetData()...), y.GetShape()
}
