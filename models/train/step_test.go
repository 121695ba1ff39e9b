package train

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"stitch/internal/testenv"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// sharedModel reads ../shared/models/name.onnx beside the checkout.
func sharedModel(t testing.TB, name string) *onnxpb.ModelProto {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "models", name+".onnx")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared model not found: %v", err)
	}
	m, err := graph.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Untie(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func needORT(t testing.TB) {
	t.Helper()
	testenv.RequireORT(t)
}

// firstInput is the model's image input.
func firstInput(m *onnxpb.ModelProto) string { return m.GetGraph().GetInput()[0].GetName() }

// TestStepGradients checks the gradient a full step graph applies against
// central differences of the eval graph's loss, for a few elements of the
// first, a middle and the last parameter of each shared model.
func TestStepGradients(t *testing.T) {
	needORT(t)
	for _, name := range []string{"smallcnn", "resnet18", "mobilenet_v2", "squeezenet1_1", "mobilenet_v2_imagenet"} {
		t.Run(name, func(t *testing.T) {
			m := sharedModel(t, name)
			order, err := graph.ParamOrder(m.Graph)
			if err != nil {
				t.Fatal(err)
			}
			checkStepGradients(t, m, order, "")
		})
	}
}

// TestStepGradientsWithCategories checks the step gradient of a model
// with both heads, where the loss adds the weighted category
// cross-entropy: the category layer (last two parameters), the attribute
// head and the first convolution, which gets both heads' gradients.
func TestStepGradientsWithCategories(t *testing.T) {
	needORT(t)
	spec := head.Spec{Hidden: []int{8}, Outputs: 6, Categories: 5, Seed: 2}
	m, info, err := head.Attach(sharedModel(t, "smallcnn"), spec)
	if err != nil {
		t.Fatal(err)
	}
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order[len(order)-2:], info.CategoryParams) {
		t.Fatalf("parameter order ends with %v, want the category layer %v", order[len(order)-2:], info.CategoryParams)
	}
	checkStepGradients(t, m, order, info.CategoryOutput)
}

// checkStepGradients runs the check on the parameters order of m; with
// categoryLogits set, the model's category head joins the loss.
func checkStepGradients(t *testing.T, m *onnxpb.ModelProto, order []string, categoryLogits string) {
	const size, batch = 32, 2
	// Plain SGD with a large rate turns the update into the gradient:
	// g = (p - p') / lr, exact to float32 rounding of p'.
	const lr = 1024
	spec := Spec{
		Input: firstInput(m), Logits: m.Graph.Output[0].GetName(), Trainable: order,
		Batch: batch, Height: size, Width: size, Optimizer: Optimizer{Kind: SGD},
		CategoryLogits: categoryLogits, CategoryWeight: 1.5,
	}
	step, err := BuildStep(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := BuildEval(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	weights, err := Weights(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStepper(step, eval, weights, nil, 0, nil, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Few known labels make each one's gradient large next to float32
	// noise in the loss.
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range b.X {
		b.X[i] = float32(rng.NormFloat64())
	}
	for k := range 6 {
		i := rng.IntN(len(b.Mask))
		b.Mask[i] = 1
		b.Y[i] = float32(k % 2)
	}
	if b.Category != nil {
		b.Category[0], b.Category[1] = 3, 1
	}
	b.Rows = batch

	before := map[string][]float32{}
	for name, v := range s.Params() {
		before[name] = append([]float32{}, v...)
	}
	loss0, _, err := s.Eval(b)
	if err != nil {
		t.Fatal(err)
	}
	stepLoss, err := s.Step(b, lr)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(stepLoss-loss0)) > 1e-4*math.Max(1, math.Abs(float64(loss0))) {
		t.Errorf("step loss %v differs from eval loss %v", stepLoss, loss0)
	}
	after := map[string][]float32{}
	for name, v := range s.Params() {
		after[name] = append([]float32{}, v...)
	}
	grad := func(name string, i int) float64 {
		return (float64(before[name][i]) - float64(after[name][i])) / lr
	}

	// Go back to the old parameters (the live current set) for the
	// differences.
	for name, v := range s.Params() {
		copy(v, before[name])
	}
	// Deep ReLU networks with random weights have kinks close to almost
	// any point, so single differences can be off by a few 1e-4; the check
	// is on the relative error of each parameter's sampled vector.
	checked := 0
	for _, name := range []string{order[0], order[len(order)/2], order[len(order)-2], order[len(order)-1]} {
		p := s.Params()[name]
		best := 0
		for i := range p {
			if math.Abs(grad(name, i)) > math.Abs(grad(name, best)) {
				best = i
			}
		}
		idx := []int{best}
		for range 8 {
			idx = append(idx, rng.IntN(len(p)))
		}
		var diff, norm float64
		for _, i := range idx {
			h := 1e-2 * math.Max(1e-1, math.Abs(float64(p[i])))
			orig := p[i]
			p[i] = orig + float32(h)
			up, _, err := s.Eval(b)
			if err != nil {
				t.Fatal(err)
			}
			p[i] = orig - float32(h)
			down, _, err := s.Eval(b)
			if err != nil {
				t.Fatal(err)
			}
			p[i] = orig
			fd := (float64(up) - float64(down)) / (float64(orig+float32(h)) - float64(orig-float32(h)))
			g := grad(name, i)
			diff += (fd - g) * (fd - g)
			norm += fd * fd
			if i == best && math.Abs(fd-g) > 1e-4+0.1*math.Abs(fd) {
				t.Errorf("%s[%d] (largest gradient): step gradient %.6g, finite difference %.6g", name, i, g, fd)
			}
			checked++
		}
		// 5e-5 per element is the resolution of a float32 loss difference.
		if math.Sqrt(diff) > 0.1*math.Sqrt(norm)+5e-5*math.Sqrt(float64(len(idx))) {
			t.Errorf("%s: gradient error %.3g against a norm of %.3g over %d elements",
				name, math.Sqrt(diff), math.Sqrt(norm), len(idx))
		}
	}
	t.Logf("%d params, %d elements checked, loss %.4f", len(order), checked, loss0)
}
