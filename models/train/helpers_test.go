package train

import (
	"errors"
	"testing"

	"stitch/models/graph"
	"stitch/models/ort"
)

// feed is one input of runGraph.
type feed struct {
	name  string
	data  []float32
	shape []int64
}

// runGraph runs model once on one thread and returns the named outputs.
func runGraph(t *testing.T, model []byte, inputs []feed, outputs []string) map[string][]float32 {
	t.Helper()
	if err := ort.Init(); errors.Is(err, ort.ErrNoLibrary) {
		t.Skip(err)
	}
	names := make([]string, len(inputs))
	values := make([]ort.Value, len(inputs))
	for i, in := range inputs {
		names[i] = in.name
		tensor, err := ort.NewTensor(in.data, in.shape...)
		if err != nil {
			t.Fatal(err)
		}
		defer tensor.Destroy()
		values[i] = tensor
	}
	sess, err := ort.NewSession(model, names, outputs, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	outs := make([]ort.Value, len(outputs))
	if err := sess.Run(values, outs); err != nil {
		t.Fatal(err)
	}
	res := map[string][]float32{}
	for i, o := range outs {
		defer o.Destroy()
		res[outputs[i]] = append([]float32{}, o.(*ort.Tensor[float32]).GetData()...)
	}
	return res
}

func marshal(t *testing.T, b *graph.Builder) []byte {
	t.Helper()
	data, err := graph.Marshal(b.Model)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
