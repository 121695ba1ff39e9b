package zoo_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/models/graph"
	"stitch/models/graph/graphtest"
	"stitch/models/head"
	"stitch/models/zoo"
)

// tiny is how tests build zoo models: a sixteenth of the width, 32 px.
var tiny = zoo.Options{Width: 1.0 / 16, InputSize: 32, Classes: 10, Seed: 1}

func TestBuildTinyModels(t *testing.T) {
	for _, name := range zoo.Names() {
		t.Run(name, func(t *testing.T) {
			m, err := zoo.Build(name, tiny)
			if err != nil {
				t.Fatal(err)
			}
			shapes, err := graph.InferShapes(m.Graph)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int64{-1, 10}, shapes["logits"]); diff != "" {
				t.Errorf("inferred logits shape (-want +got)\n%s", diff)
			}
			x := graphtest.Input(2, 2, 3, 32, 32)
			y, shape := graphtest.Run(t, m, "input", "logits", x, 2, 3, 32, 32)
			if diff := cmp.Diff([]int64{2, 10}, shape); diff != "" {
				t.Errorf("logits shape (-want +got)\n%s", diff)
			}
			if cmp.Equal(y[:10], y[10:]) {
				t.Error("two different images give the same logits")
			}

			again, _ := zoo.Build(name, tiny)
			b1, _ := graph.Marshal(m)
			b2, _ := graph.Marshal(again)
			if string(b1) != string(b2) {
				t.Error("Build is not deterministic")
			}
			other := tiny
			other.Seed = 2
			reseeded, _ := zoo.Build(name, other)
			if b3, _ := graph.Marshal(reseeded); string(b3) == string(b1) {
				t.Error("another seed gives the same model")
			}

			withHead, info, err := head.Attach(m, head.Spec{Hidden: []int{8}, Outputs: 5, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if info.Meta.Height != 32 || info.Meta.Backbone != name {
				t.Errorf("head meta = %+v, want 32 px from %s", info.Meta, name)
			}
			_, shape = graphtest.Run(t, withHead, "input", "logits", x, 2, 3, 32, 32)
			if diff := cmp.Diff([]int64{2, 5}, shape); diff != "" {
				t.Errorf("head output shape (-want +got)\n%s", diff)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := zoo.Build("alexnet", zoo.Options{}); err == nil {
		t.Error("Build accepted an unknown model")
	}
	if _, err := zoo.Build("vgg16", zoo.Options{InputSize: 16}); err == nil {
		t.Error("Build accepted a 16 px input")
	}
}

// TestParamCounts checks full-width models against the reference sizes
// (BN folded, VGG16 pooled globally); it builds full models, so it runs
// only without -short.
func TestParamCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds full-width models")
	}
	want := map[string][2]int{ // millions, low and high
		"resnet18": {11, 12}, "resnet50": {25, 26}, "mobilenet_v2": {3, 4},
		"densenet121": {7, 9}, "vgg16": {37, 39},
	}
	for name, bounds := range want {
		m, err := zoo.Build(name, zoo.Options{InputSize: 32})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, init := range m.Graph.Initializer {
			n += graph.NumElements(init.Dims)
		}
		if n < bounds[0]*1e6 || n > bounds[1]*1e6 {
			t.Errorf("%s: %d parameters, want %d to %d million", name, n, bounds[0], bounds[1])
		}
	}
}
