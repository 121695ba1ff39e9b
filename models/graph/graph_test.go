package graph_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/models/graph"
	"stitch/models/graph/graphtest"
	"stitch/models/onnxpb"
)

func TestParseRejectsNonONNX(t *testing.T) {
	tests := map[string][]byte{
		"empty":  {},
		"text":   []byte("name: not a model\nstages: {}\n"),
		"random": []byte{0xff, 0x00, 0x13, 0x37, 0x42},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := graph.Parse(data); !errors.Is(err, graph.ErrNotONNX) {
				t.Errorf("Parse(%q) = %v, want ErrNotONNX", data, err)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "notes.onnx")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := graph.Read(path)
	if !errors.Is(err, graph.ErrNotONNX) || !strings.Contains(err.Error(), path) {
		t.Errorf("Read = %v, want ErrNotONNX naming the file", err)
	}
}

func TestInitializerFloats(t *testing.T) {
	want := []float32{1, -2.5, 3e-7, float32(math.Inf(1))}
	raw, err := graph.FloatTensor("w", want, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]*onnxpb.TensorProto{
		"raw_data":   raw,
		"float_data": {Name: raw.Name, Dims: raw.Dims, DataType: raw.DataType, FloatData: want},
	}
	for name, tensor := range tests {
		got, err := graph.InitializerFloats(tensor)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: (-want +got)\n%s", name, diff)
		}
	}
	bad, _ := graph.Int64Tensor("s", []int64{1}, 1)
	if _, err := graph.InitializerFloats(bad); err == nil {
		t.Error("InitializerFloats accepted an int64 tensor")
	}
}

// buildAffine builds y = relu(x W^T + b) with a shared weight through an
// Identity, to exercise the builder and the editing functions.
func buildAffine(t *testing.T) *graph.Builder {
	t.Helper()
	b := graph.New("affine")
	x := b.Input("x", graph.Float, []int64{-1, 3}, "batch")
	w, err := b.Initializer("w", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	bias, err := b.Initializer("b", []float32{0.5, -100}, 2)
	if err != nil {
		t.Fatal(err)
	}
	alias := b.Op("Identity", "", []string{w})
	y := b.Op("Gemm", "fc", []string{x, alias, bias}, graph.AttrInt("transB", 1))
	b.Op("Sigmoid", "unused", []string{x})
	out := b.Op("Relu", "", []string{y})
	b.Output(out, graph.Float, []int64{-1, 2}, "batch")
	graph.SetMetadata(b.Model, "k", "v1")
	graph.SetMetadata(b.Model, "k", "v2")
	return b
}

func TestBuilderRunsAndEdits(t *testing.T) {
	b := buildAffine(t)
	if v, _ := graph.Metadata(b.Model, "k"); v != "v2" || len(b.Model.MetadataProps) != 1 {
		t.Errorf("metadata = %v, want one entry k=v2", b.Model.MetadataProps)
	}
	if got := b.Name("fc"); got != "fc_1" {
		t.Errorf("Name(fc) = %q, want fc_1", got)
	}
	out := b.Model.Graph.Output[0].GetName()

	first, err := graph.Marshal(b.Model)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := graph.Marshal(graph.Clone(b.Model))
	if string(first) != string(again) {
		t.Error("Marshal is not deterministic")
	}

	graph.ResolveIdentities(b.Model.Graph)
	graph.RemoveDead(b.Model.Graph)
	var ops []string
	for _, n := range b.Model.Graph.Node {
		ops = append(ops, n.GetOpType())
	}
	if diff := cmp.Diff([]string{"Gemm", "Relu"}, ops); diff != "" {
		t.Errorf("ops after clean-up (-want +got)\n%s", diff)
	}

	got, shape := graphtest.Run(t, b.Model, "x", out, []float32{1, 1, 1, 2, 0, 0}, 2, 3)
	want := []float32{6.5, 0, 2.5, 0}
	if diff := cmp.Diff(want, got); diff != "" || !cmp.Equal(shape, []int64{2, 2}) {
		t.Errorf("output %v %v, want %v [2 2]", got, shape, want)
	}
}

func TestTopoSortKeepsOrderAndFindsCycles(t *testing.T) {
	b := buildAffine(t)
	g := b.Model.Graph
	want := append([]*onnxpb.NodeProto{}, g.Node...)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(g.Node), func(i, j int) { g.Node[i], g.Node[j] = g.Node[j], g.Node[i] })
	sorted, err := graph.TopoSort(g)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range sorted {
		for _, o := range n.Output {
			pos[o] = i
		}
	}
	for i, n := range sorted {
		for _, in := range n.Input {
			if p, ok := pos[in]; ok && p >= i {
				t.Errorf("%s runs before the producer of %s", n.GetName(), in)
			}
		}
	}
	if len(sorted) != len(want) {
		t.Errorf("sorted %d nodes, want %d", len(sorted), len(want))
	}

	// A cycle: make the Identity read the Relu's output.
	g.Node = want
	g.Node[0].Input[0] = g.Node[3].Output[0]
	if _, err := graph.TopoSort(g); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("TopoSort on a cycle = %v, want a cycle error", err)
	}
}

func TestSharedModels(t *testing.T) {
	for _, name := range graphtest.SharedModelNames {
		t.Run(name, func(t *testing.T) {
			m := graphtest.SharedModel(t, name)
			g := m.Graph
			shapes, err := graph.InferShapes(g)
			if err != nil {
				t.Fatal(err)
			}
			_, declared, _ := graph.TensorShape(g.Output[0])
			if diff := cmp.Diff(declared, shapes[g.Output[0].GetName()]); diff != "" {
				t.Errorf("inferred output shape (-declared +inferred)\n%s", diff)
			}

			// Cleaning up must not change what the model computes.
			size := int64(64)
			if name != "smallcnn" {
				size = 112
			}
			x := graphtest.Input(1, 1, 3, size, size)
			in, out := g.Input[0].GetName(), g.Output[0].GetName()
			before, _ := graphtest.Run(t, m, in, out, x, 1, 3, size, size)
			edited := graph.Clone(m)
			graph.ResolveIdentities(edited.Graph)
			graph.RemoveDead(edited.Graph)
			for _, n := range edited.Graph.Node {
				if n.GetOpType() == "Identity" && n.Output[0] != out {
					t.Errorf("Identity %s left after ResolveIdentities", n.GetName())
				}
			}
			after, shape := graphtest.Run(t, edited, in, out, x, 1, 3, size, size)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("cleaned-up model computes something else (-before +after)\n%s", diff)
			}
			if shape[0] != 1 || shape[1] != declared[1] {
				t.Errorf("output shape %v, want [1 %d]", shape, declared[1])
			}
			params, err := graph.ParamOrder(edited.Graph)
			if err != nil || len(params) == 0 {
				t.Fatalf("ParamOrder = %d names, %v", len(params), err)
			}
			for _, p := range params {
				if strings.HasSuffix(p, "_lo") || strings.HasSuffix(p, "_hi") {
					t.Errorf("Clip bound %s listed as a parameter", p)
				}
			}
		})
	}
}
