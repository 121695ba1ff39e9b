package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"stitch/models/graph"
	"stitch/models/ort"
)

// refLoss is the masked BCE-with-logits in float64, per appendLoss.
func refLoss(z, y, mask, pw []float64, classes int) float64 {
	var sum, count float64
	for i := range z {
		p := pw[i%classes]
		w := 1 + (p-1)*y[i]
		softplus := math.Log1p(math.Exp(-math.Abs(z[i]))) + math.Max(-z[i], 0)
		sum += mask[i] * ((1-y[i])*z[i] + w*softplus)
		count += mask[i]
	}
	return sum / math.Max(count, 1)
}

func TestLossAndGradient(t *testing.T) {
	const batch, classes = 3, 4
	rng := rand.New(rand.NewPCG(1, 2))
	n := batch * classes
	z, y, mask := make([]float32, n), make([]float32, n), make([]float32, n)
	pw := make([]float32, classes)
	for i := range z {
		z[i] = float32(rng.NormFloat64() * 3)
		if rng.IntN(2) == 0 {
			y[i] = 1
		}
		if rng.IntN(4) != 0 {
			mask[i] = 1
		}
	}
	z[0], z[1] = 60, -60 // far in the tails, where a naive log(sigmoid) overflows
	for i := range pw {
		pw[i] = 0.5 + float32(i)
	}

	b := graph.New("loss")
	for _, in := range []struct {
		name  string
		shape []int64
	}{{"z", []int64{batch, classes}}, {"y", []int64{batch, classes}}, {"mask", []int64{batch, classes}}, {"pw", []int64{classes}}} {
		b.Input(in.name, graph.Float, in.shape)
	}
	names := appendLoss(b, "z", "y", "mask", "pw", "")
	b.Output(names.Loss, graph.Float, []int64{1})
	b.Output(names.Grad, graph.Float, []int64{batch, classes})
	out := runGraph(t, marshal(t, b), []feed{
		{"z", z, []int64{batch, classes}}, {"y", y, []int64{batch, classes}},
		{"mask", mask, []int64{batch, classes}}, {"pw", pw, []int64{classes}},
	}, []string{names.Loss, names.Grad})

	f64 := func(v []float32) []float64 {
		r := make([]float64, len(v))
		for i, x := range v {
			r[i] = float64(x)
		}
		return r
	}
	zd, yd, md, pd := f64(z), f64(y), f64(mask), f64(pw)
	want := refLoss(zd, yd, md, pd, classes)
	if got := float64(out[names.Loss][0]); math.Abs(got-want) > 1e-5*math.Max(1, want) {
		t.Errorf("loss = %v, want %v", got, want)
	}

	// Central differences of the float64 reference check the closed-form
	// gradient the graph computes.
	const h = 1e-6
	for i := range zd {
		orig := zd[i]
		zd[i] = orig + h
		up := refLoss(zd, yd, md, pd, classes)
		zd[i] = orig - h
		down := refLoss(zd, yd, md, pd, classes)
		zd[i] = orig
		fd := (up - down) / (2 * h)
		if got := float64(out[names.Grad][i]); math.Abs(got-fd) > 1e-5 {
			t.Errorf("dloss/dz[%d] = %v, finite difference %v", i, got, fd)
		}
	}
}

func TestLossAllUnknown(t *testing.T) {
	b := graph.New("loss")
	for _, name := range []string{"z", "y", "mask"} {
		b.Input(name, graph.Float, []int64{1, 2})
	}
	b.Input("pw", graph.Float, []int64{2})
	names := appendLoss(b, "z", "y", "mask", "pw", "")
	b.Output(names.Loss, graph.Float, []int64{1})
	b.Output(names.Grad, graph.Float, []int64{1, 2})
	out := runGraph(t, marshal(t, b), []feed{
		{"z", []float32{1, -2}, []int64{1, 2}}, {"y", []float32{1, 0}, []int64{1, 2}},
		{"mask", []float32{0, 0}, []int64{1, 2}}, {"pw", []float32{1, 1}, []int64{2}},
	}, []string{names.Loss, names.Grad})
	if l := out[names.Loss][0]; l != 0 {
		t.Errorf("loss without known labels = %v, want 0", l)
	}
	for i, g := range out[names.Grad] {
		if g != 0 {
			t.Errorf("grad[%d] without known labels = %v, want 0", i, g)
		}
	}
}

// refCategoryLoss is the masked softmax cross-entropy in float64, per
// appendCategoryLoss: ids[r] is row r's class, 1-based, 0 for none.
func refCategoryLoss(z []float64, ids []int64, classes int) float64 {
	var sum, count float64
	for r, id := range ids {
		if id == 0 {
			continue
		}
		row := z[r*classes : (r+1)*classes]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var e float64
		for _, v := range row {
			e += math.Exp(v - m)
		}
		sum += m + math.Log(e) - row[id-1]
		count++
	}
	return sum / math.Max(count, 1)
}

// categoryLossGraph runs appendCategoryLoss on z and ids and returns the
// loss and the gradient.
func categoryLossGraph(t *testing.T, z []float32, ids []int64, batch, classes int) (float32, []float32) {
	t.Helper()
	b := graph.New("category_loss")
	b.Input("z", graph.Float, []int64{int64(batch), int64(classes)})
	b.Input("ids", graph.Int64, []int64{int64(batch)})
	names := appendCategoryLoss(b, "z", "ids", "", batch, classes)
	b.Output(names.Loss, graph.Float, []int64{1})
	b.Output(names.Grad, graph.Float, []int64{int64(batch), int64(classes)})
	needORT(t)
	zt, err := ort.NewTensor(z, int64(batch), int64(classes))
	if err != nil {
		t.Fatal(err)
	}
	defer zt.Destroy()
	it, err := ort.NewTensorOf(ids, int64(batch))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Destroy()
	sess, err := ort.NewSession(marshal(t, b), []string{"z", "ids"}, []string{names.Loss, names.Grad},
		ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	outs := make([]ort.Value, 2)
	if err := sess.Run([]ort.Value{zt, it}, outs); err != nil {
		t.Fatal(err)
	}
	defer outs[0].Destroy()
	defer outs[1].Destroy()
	loss := outs[0].(*ort.Tensor[float32]).GetData()[0]
	return loss, append([]float32{}, outs[1].(*ort.Tensor[float32]).GetData()...)
}

func TestCategoryLossAndGradient(t *testing.T) {
	const batch, classes = 5, 4
	rng := rand.New(rand.NewPCG(3, 4))
	z := make([]float32, batch*classes)
	for i := range z {
		z[i] = float32(rng.NormFloat64() * 3)
	}
	// Row 1 is far in the tails, where exp overflows float32 without the
	// log-sum-exp shift; row 3 has no category.
	z[classes+0], z[classes+2] = 90, -90
	ids := []int64{2, 1, 4, 0, 3}

	loss, grad := categoryLossGraph(t, z, ids, batch, classes)
	zd := make([]float64, len(z))
	for i, v := range z {
		zd[i] = float64(v)
	}
	want := refCategoryLoss(zd, ids, classes)
	if math.Abs(float64(loss)-want) > 1e-5*math.Max(1, want) {
		t.Errorf("category loss = %v, want %v", loss, want)
	}

	const h = 1e-6
	for i := range zd {
		orig := zd[i]
		zd[i] = orig + h
		up := refCategoryLoss(zd, ids, classes)
		zd[i] = orig - h
		down := refCategoryLoss(zd, ids, classes)
		zd[i] = orig
		fd := (up - down) / (2 * h)
		if math.Abs(float64(grad[i])-fd) > 1e-5 {
			t.Errorf("dloss/dz[%d] (row %d, category %d) = %v, finite difference %v",
				i, i/classes, ids[i/classes], grad[i], fd)
		}
	}
}

func TestCategoryLossNoCategories(t *testing.T) {
	loss, grad := categoryLossGraph(t, []float32{1, -2, 3, 0.5, 40, -7}, []int64{0, 0}, 2, 3)
	if loss != 0 {
		t.Errorf("category loss without categories = %v, want 0", loss)
	}
	for i, g := range grad {
		if g != 0 {
			t.Errorf("grad[%d] without categories = %v, want 0", i, g)
		}
	}
}
