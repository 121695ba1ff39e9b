package autodiff

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"stitch/models/onnxpb"
)

func smallNet() (*onnxpb.GraphProto, map[string][]int64) {
	t := newTestGraph(int32(onnxpb.TensorProto_FLOAT), 1)
	x := t.input("x", []int64{2, 2, 6, 6}, false, -1, 1)
	c := t.node("Conv", []string{x, t.param("w1", 3, 2, 3, 3), t.param("b1", 3)}, "c",
		attrIs("pads", []int64{1, 1, 1, 1}))
	r := t.node("Relu", []string{c}, "r")
	m := t.node("MaxPool", []string{r}, "m", attrIs("kernel_shape", []int64{2, 2}), attrIs("strides", []int64{2, 2}))
	f := t.node("Flatten", []string{t.node("GlobalAveragePool", []string{m}, "g")}, "f")
	t.node("Gemm", []string{f, t.param("w2", 4, 3), t.param("b2", 4)}, "y", attrI("transB", 1))
	t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, []int64{2, 4}))
	return t.g, map[string][]int64{"seed": {2, 4}}
}

func TestBackwardDeterministic(t *testing.T) {
	var prev []byte
	for range 3 {
		g, shapes := smallNet()
		opts := Options{InputShapes: shapes, AddOutputs: true}
		if _, err := Backward(g, "y", "seed", []string{"w1", "b1", "w2", "b2"}, opts); err != nil {
			t.Fatal(err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && !bytes.Equal(prev, b) {
			t.Fatal("two runs of Backward on the same graph differ")
		}
		prev = b
	}
}

func TestBackwardNames(t *testing.T) {
	g, shapes := smallNet()
	got, err := Backward(g, "y", "seed", []string{"w1", "b2"}, Options{InputShapes: shapes, AddOutputs: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"w1": "grad/w1", "b2": "grad/b2"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("names (-want +got):\n%s", d)
	}
	var outs []string
	for _, o := range g.Output {
		outs = append(outs, o.GetName())
	}
	if d := cmp.Diff([]string{"grad/w1", "grad/b2"}, outs); d != "" {
		t.Errorf("outputs (-want +got):\n%s", d)
	}
	// Only parameters upstream of out get nodes: nothing differentiates x.
	for _, n := range g.Node {
		if strings.HasPrefix(n.GetName(), "grad/") && n.GetOpType() == "ConvTranspose" {
			t.Errorf("unexpected input gradient node %s", n.GetName())
		}
	}
}

func TestBackwardUnsupported(t *testing.T) {
	tg := newTestGraph(int32(onnxpb.TensorProto_FLOAT), 1)
	e := tg.node("Erf", []string{tg.param("x", 2, 3)}, "e")
	tg.node("Relu", []string{e}, "y")
	tg.g.Input = append(tg.g.Input, valueInfo("seed", tg.dtype, []int64{2, 3}))
	_, err := Backward(tg.g, "y", "seed", []string{"x"}, Options{})
	if err == nil || !strings.Contains(err.Error(), `node "n_e" (Erf)`) {
		t.Fatalf("error %v; want one naming node n_e and op Erf", err)
	}
}

func TestBackwardZeroGradient(t *testing.T) {
	g, shapes := smallNet()
	extra := "unused"
	g.Initializer = append(g.Initializer, floatTensor(extra, int32(onnxpb.TensorProto_FLOAT), []float64{1, 2}, []int64{2}))
	got, err := Backward(g, "y", "seed", []string{extra}, Options{InputShapes: shapes})
	if err != nil {
		t.Fatal(err)
	}
	last := g.Node[len(g.Node)-1]
	if last.GetOpType() != "ConstantOfShape" || last.Output[0] != got[extra] {
		t.Errorf("gradient of an unused parameter: %v, want zeros from ConstantOfShape", last)
	}
}

// TestBackwardSharedGradient: the two terms of a sum share one gradient
// tensor, which the first parameter names; the second must follow.
func TestBackwardSharedGradient(t *testing.T) {
	tg := newTestGraph(int32(onnxpb.TensorProto_FLOAT), 1)
	s := tg.node("Add", []string{tg.param("p", 2, 3), tg.param("q", 2, 3)}, "s")
	tg.node("Relu", []string{s}, "y")
	tg.g.Input = append(tg.g.Input, valueInfo("seed", tg.dtype, []int64{2, 3}))
	got, err := Backward(tg.g, "y", "seed", []string{"p", "q"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got["p"] != "grad/p" || got["q"] != "grad/p" {
		t.Errorf("gradients %v; want both grad/p", got)
	}
}
