package autodiff

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"stitch/internal/testenv"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// sharedModels finds ../shared/models beside the module root.
func sharedModels(t testing.TB) string {
	t.Helper()
	return testenv.Shared(t, "models")
}

func loadGraph(t testing.TB, path string) *onnxpb.GraphProto {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m.Graph
}

// resolveParam follows Identity nodes back to the initializer they forward.
func resolveParam(g *onnxpb.GraphProto, name string) string {
	for {
		found := false
		for _, n := range g.Node {
			if n.GetOpType() == "Identity" && len(n.Output) == 1 && n.Output[0] == name {
				name, found = n.Input[0], true
			}
		}
		if !found {
			return name
		}
	}
}

// promote turns initializers into float32 graph inputs and returns their values.
func promote(g *onnxpb.GraphProto, names []string, values map[string][]float64, shapes map[string][]int64) {
	keep := g.Initializer[:0]
	for _, t := range g.Initializer {
		if slices.Contains(names, t.GetName()) {
			values[t.GetName()] = tensorFloats(t)
			shapes[t.GetName()] = t.GetDims()
			g.Input = append(g.Input, valueInfo(t.GetName(), int32(onnxpb.TensorProto_FLOAT), t.GetDims()))
			continue
		}
		keep = append(keep, t)
	}
	g.Initializer = keep
}

// TestModelGradients checks, for each torchvision export, the gradient of a
// random linear functional of the logits with respect to the first
// convolution, a middle one and the classifier against finite differences
// on the coordinates of largest gradient (float32, so the largest carry the
// least relative rounding noise).
func TestModelGradients(t *testing.T) {
	dir := sharedModels(t)
	if err := ort.Init(); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name string
		px   int64
	}{{"smallcnn", 64}, {"resnet18", 32}, {"mobilenet_v2", 32}, {"squeezenet1_1", 32}, {"mobilenet_v2_imagenet", 32}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".onnx")
			if _, err := os.Stat(path); err != nil {
				t.Skip(err)
			}
			checkModel(t, loadGraph(t, path), tc.px)
		})
	}
}

func checkModel(t *testing.T, g *onnxpb.GraphProto, px int64) {
	rng := rand.New(rand.NewPCG(3, 4))
	var convs, gemms []string
	for _, n := range g.Node {
		switch n.GetOpType() {
		case "Conv":
			convs = append(convs, resolveParam(g, n.Input[1]))
		case "Gemm", "MatMul":
			gemms = append(gemms, resolveParam(g, n.Input[1]))
		}
	}
	params := []string{convs[0], convs[len(convs)/2]}
	if len(gemms) > 0 {
		params = append(params, gemms[len(gemms)-1])
	} else {
		params = append(params, convs[len(convs)-1])
	}
	values := map[string][]float64{}
	shapes := map[string][]int64{}
	input := g.Input[0].GetName()
	for _, in := range g.Input[1:] {
		// Older exports list initializers as inputs too.
		if !slices.ContainsFunc(g.Initializer, func(t *onnxpb.TensorProto) bool { return t.GetName() == in.GetName() }) {
			t.Fatalf("unexpected second input %s", in.GetName())
		}
	}
	g.Input = []*onnxpb.ValueInfoProto{valueInfo(input, int32(onnxpb.TensorProto_FLOAT), []int64{2, 3, px, px})}
	shapes[input] = []int64{2, 3, px, px}
	x := make([]float64, 2*3*px*px)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	values[input] = x
	promote(g, params, values, shapes)

	all, err := InferShapes(g, shapes)
	if err != nil {
		t.Fatal(err)
	}
	out := g.Output[0].GetName()
	ys := all[out]
	g.Output = []*onnxpb.ValueInfoProto{valueInfo(out, int32(onnxpb.TensorProto_FLOAT), ys)}
	seed := make([]float64, prod(ys))
	for i := range seed {
		seed[i] = rng.NormFloat64()
	}

	grad := proto.Clone(g).(*onnxpb.GraphProto)
	grad.Input = append(grad.Input, valueInfo("seed", int32(onnxpb.TensorProto_FLOAT), ys))
	shapes["seed"] = ys
	values["seed"] = seed
	names, err := Backward(grad, out, "seed", params, Options{InputShapes: shapes})
	if err != nil {
		t.Fatal(err)
	}
	ins := []string{}
	for _, in := range grad.Input {
		ins = append(ins, in.GetName())
	}
	grad.Output = nil
	var outs []string
	for _, p := range params {
		outs = append(outs, names[p])
		grad.Output = append(grad.Output, valueInfo(names[p], int32(onnxpb.TensorProto_FLOAT), shapes[p]))
	}
	gs, err := newSession(grad, int32(onnxpb.TensorProto_FLOAT), ins, outs, shapes)
	if err != nil {
		t.Fatal(err)
	}
	defer gs.s.Close()
	analytic, err := gs.run(values)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := newSession(g, int32(onnxpb.TensorProto_FLOAT), ins[:len(ins)-1], []string{out}, shapes)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.s.Close()
	objective := func() float64 {
		y, err := fwd.run(values)
		if err != nil {
			t.Fatal(err)
		}
		f := 0.0
		for i, v := range y[0] {
			f += v * seed[i]
		}
		return f
	}

	for pi, p := range params {
		grads := analytic[pi]
		scale := 0.0
		for _, v := range grads {
			scale = max(scale, math.Abs(v))
		}
		if scale == 0 {
			t.Fatalf("%s: gradient is zero", p)
		}
		order := rng.Perm(len(grads))
		order = order[:min(len(order), 300)]
		sort.SliceStable(order, func(i, j int) bool { return math.Abs(grads[order[i]]) > math.Abs(grads[order[j]]) })
		for _, c := range order[:3] {
			v := values[p]
			orig := v[c]
			eps := 1e-2 * max(math.Abs(orig), 0.05)
			v[c] = orig + eps
			fp := objective()
			v[c] = orig - eps
			fm := objective()
			v[c] = orig
			num := (fp - fm) / (2 * eps)
			if math.Abs(grads[c]-num) > 0.05*math.Abs(num)+0.01*scale {
				t.Errorf("d/d %s[%d]: backward %.6g, finite differences %.6g", p, c, grads[c], num)
			} else {
				t.Logf("d/d %s[%d]: backward %.6g, finite differences %.6g", p, c, grads[c], num)
			}
		}
	}
}
