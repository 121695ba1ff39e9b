package train

import (
	"fmt"
	"testing"

	"stitch/models/graph"
	"stitch/models/ort"
)

// BenchmarkTrainStep measures training throughput (images/s) of the
// shared torchvision models at batch 32 with 1000 outputs, Adam, every
// parameter trainable and the batch preallocated: the figure to put next
// to ../shared/bench/torch_reference.py. The first variant of each model
// is what the train stage runs on the CPU (AutoReplicas); "_single" is one
// step graph, on one thread like every CPU training session (NewStepper).
func BenchmarkTrainStep(b *testing.B) {
	needORT(b)
	for _, c := range []struct {
		name string
		size int
	}{{"smallcnn", 64}, {"mobilenet_v2", 112}, {"resnet18", 112}} {
		b.Run(fmt.Sprintf("%s_%dpx", c.name, c.size), func(b *testing.B) {
			benchStep(b, c.name, c.size, AutoReplicas("cpu", 32))
		})
		b.Run(fmt.Sprintf("%s_%dpx_single", c.name, c.size), func(b *testing.B) {
			benchStep(b, c.name, c.size, 1)
		})
	}
}

func benchStep(b *testing.B, name string, size, replicas int) {
	const batch = 32
	m := sharedModel(b, name)
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		b.Fatal(err)
	}
	spec := Spec{
		Input: firstInput(m), Logits: m.Graph.Output[0].GetName(), Trainable: order,
		Batch: batch, Height: size, Width: size, Optimizer: Optimizer{Kind: Adam}, Replicas: replicas,
	}
	step, err := BuildStep(m, spec)
	if err != nil {
		b.Fatal(err)
	}
	eval, err := BuildEval(m, spec)
	if err != nil {
		b.Fatal(err)
	}
	weights, err := Weights(m)
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewStepper(step, eval, weights, nil, 0, nil, ort.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batchBuf, err := s.NewBatch()
	if err != nil {
		b.Fatal(err)
	}
	defer batchBuf.Close()
	for i := range batchBuf.X {
		batchBuf.X[i] = float32(i%255)/255 - 0.5
	}
	for i := range batchBuf.Mask {
		batchBuf.Mask[i] = 1
		batchBuf.Y[i] = float32(i % 2)
	}
	if _, err := s.Step(batchBuf, 1e-4); err != nil { // warm-up: first run plans memory
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Step(batchBuf, 1e-4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "img/s")
}
