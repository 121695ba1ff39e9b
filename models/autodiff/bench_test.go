package autodiff

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// convBench is one convolution layer to time, batch 32 like `make bench`.
type convBench struct {
	name                string
	c, m, hw, k, stride int64
	group               int64
}

// benchConvs are the layer kinds that dominate the benchmark models.
var benchConvs = []convBench{
	{"3x3_64to64_28px", 64, 64, 28, 3, 1, 1},
	{"3x3s2_64to128_28px", 64, 128, 28, 3, 2, 1},
	{"1x1_64to256_28px", 64, 256, 28, 1, 1, 1},
	{"dw3x3_144_28px", 144, 144, 28, 3, 1, 144},
}

// BenchmarkConvGrad times, per layer kind, the forward Conv and each
// formulation of its input and weight gradients on ONNX Runtime (CPU, 2
// threads). Run with -benchtime=20x; compare ns/op to the forward pass.
func BenchmarkConvGrad(b *testing.B) {
	if err := ort.Init(); err != nil {
		b.Skip(err)
	}
	for _, cb := range benchConvs {
		pad := (cb.k - 1) / 2
		oh := (cb.hw+2*pad-cb.k)/cb.stride + 1
		xs := []int64{32, cb.c, cb.hw, cb.hw}
		ws := []int64{cb.m, cb.c / cb.group, cb.k, cb.k}
		ys := []int64{32, cb.m, oh, oh}
		fwd := func() *testGraph {
			t := newTestGraph(int32(onnxpb.TensorProto_FLOAT), 1)
			t.g.Input = append(t.g.Input, valueInfo("x", t.dtype, xs), valueInfo("w", t.dtype, ws))
			t.node("Conv", []string{"x", "w"}, "y", attrIs("pads", []int64{pad, pad, pad, pad}),
				attrIs("strides", []int64{cb.stride, cb.stride}), attrI("group", cb.group))
			return t
		}
		shapes := map[string][]int64{"x": xs, "w": ws, "seed": ys}
		grad := func(wrt string, tune tuning) (*onnxpb.GraphProto, string) {
			t := fwd()
			t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, ys))
			names, err := backward(t.g, "y", "seed", []string{wrt}, Options{InputShapes: shapes}, tune)
			if err != nil {
				b.Fatal(err)
			}
			return t.g, names[wrt]
		}

		b.Run(cb.name+"/forward", func(b *testing.B) {
			benchGraph(b, fwd().g, []string{"x", "w"}, shapes, "y", ys)
		})
		b.Run(cb.name+"/dX_default", func(b *testing.B) {
			g, out := grad("x", tuning{})
			benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, xs)
		})
		b.Run(cb.name+"/dX_convtranspose", func(b *testing.B) {
			t := fwd()
			t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, ys))
			t.node("ConvTranspose", []string{"seed", "w"}, "dx", attrIs("pads", []int64{pad, pad, pad, pad}),
				attrIs("strides", []int64{cb.stride, cb.stride}), attrI("group", cb.group),
				attrIs("output_padding", []int64{(cb.hw + 2*pad - cb.k) % cb.stride, (cb.hw + 2*pad - cb.k) % cb.stride}))
			benchGraph(b, t.g, []string{"x", "w", "seed"}, shapes, "dx", xs)
		})
		b.Run(cb.name+"/dW_default", func(b *testing.B) {
			g, out := grad("w", tuning{})
			benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
		})
		if cb.k > 1 {
			b.Run(cb.name+"/dW_pertap", func(b *testing.B) {
				g, out := grad("w", tuning{perTapGemm: true})
				benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
			})
		}
		b.Run(cb.name+"/dW_gemm", func(b *testing.B) {
			g, out := grad("w", tuning{weightGrad: wgradGemm})
			benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
		})
		if cb.k > 1 {
			b.Run(cb.name+"/dW_gemm_pertap", func(b *testing.B) {
				g, out := grad("w", tuning{weightGrad: wgradGemm, perTapGemm: true})
				benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
			})
		}
		b.Run(cb.name+"/dW_persample_unfoldconv", func(b *testing.B) {
			g, out := grad("w", tuning{weightGrad: wgradPerSample, unfold: unfoldConv})
			benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
		})
		if cb.k > 1 {
			b.Run(cb.name+"/dW_persample_unfoldslice", func(b *testing.B) {
				g, out := grad("w", tuning{weightGrad: wgradPerSample, unfold: unfoldSlice})
				benchGraph(b, g, []string{"x", "w", "seed"}, shapes, out, ws)
			})
		}
		if cb.group == 1 && cb.stride == 1 {
			// dW[m,c] = Conv over batch-transposed tensors: X as [C, N, H, W]
			// convolved with dY as [M, N, oh, ow] kernels.
			b.Run(cb.name+"/dW_batchtransposed_conv", func(b *testing.B) {
				t := fwd()
				t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, ys))
				perm := attrIs("perm", []int64{1, 0, 2, 3})
				xt := t.node("Transpose", []string{"x"}, "xt", perm)
				dt := t.node("Transpose", []string{"seed"}, "dt", perm)
				c := t.node("Conv", []string{xt, dt}, "cw", attrIs("pads", []int64{pad, pad, pad, pad}))
				t.node("Transpose", []string{c}, "dw", perm)
				benchGraph(b, t.g, []string{"x", "w", "seed"}, shapes, "dw", ws)
			})
		}
		if cb.group == cb.c && cb.stride == 1 {
			// Depthwise: dW[c] = a Conv of X as [1, C*N, H, W] with dY as
			// [C, N, oh, ow] kernels in C groups: N is what each group sums.
			b.Run(cb.name+"/dW_groupconv", func(b *testing.B) {
				t := fwd()
				t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, ys))
				bld, _ := newBuilder(t.g, map[string][]int64{}, "")
				bld.dtype = t.dtype
				perm := attrIs("perm", []int64{1, 0, 2, 3})
				xt := bld.reshape(bld.op("Transpose", "xt", []string{"x"}, perm), []int64{1, cb.c * 32, cb.hw, cb.hw})
				dt := bld.op("Transpose", "dt", []string{"seed"}, perm)
				c := bld.op("Conv", "cw", []string{xt, dt}, attrIs("pads", []int64{pad, pad, pad, pad}), attrI("group", cb.c))
				out := bld.reshape(c, ws)
				t.g.Node = append(t.g.Node, bld.nodes...)
				t.g.Initializer = append(t.g.Initializer, bld.inits...)
				benchGraph(b, t.g, []string{"x", "w", "seed"}, shapes, out, ws)
			})
		}
		if cb.group > 1 {
			// Depthwise: the product of the unfolded input and dY, summed,
			// instead of N*C tiny matrix products.
			b.Run(cb.name+"/dW_unfold_mul_reducesum", func(b *testing.B) {
				t := fwd()
				t.g.Input = append(t.g.Input, valueInfo("seed", t.dtype, ys))
				bld, _ := newBuilder(t.g, map[string][]int64{}, "")
				bld.dtype = t.dtype
				p := convPlan{x: xs, w: ws, y: ys, groups: cb.group, kh: cb.k, kw: cb.k, k: cb.k * cb.k,
					geo: geometry{strides: []int64{1, 1}, dilations: []int64{1, 1},
						padBegin: []int64{pad, pad}, padEnd: []int64{pad, pad}}}
				u := bld.reshape(bld.unfold(p, "x"), []int64{32, cb.c, cb.k * cb.k, oh * oh})
				d := bld.reshape(bld.op("Mul", "p", []string{u, bld.reshape("seed", []int64{32, cb.c, 1, oh * oh})}),
					[]int64{32, cb.c, cb.k * cb.k, oh * oh})
				s := bld.op("ReduceSum", "s", []string{d, bld.ints([]int64{0, 3})}, attrI("keepdims", 0))
				out := bld.reshape(s, ws)
				t.g.Node = append(t.g.Node, bld.nodes...)
				t.g.Initializer = append(t.g.Initializer, bld.inits...)
				benchGraph(b, t.g, []string{"x", "w", "seed"}, shapes, out, ws)
			})
		}
	}
}

// benchGraph times one run of g producing out from zero-filled inputs.
func benchGraph(b *testing.B, g *onnxpb.GraphProto, ins []string, shapes map[string][]int64,
	out string, outShape []int64,
) {
	g = proto.Clone(g).(*onnxpb.GraphProto)
	g.Output = []*onnxpb.ValueInfoProto{valueInfo(out, int32(onnxpb.TensorProto_FLOAT), outShape)}
	var used []*onnxpb.ValueInfoProto
	for _, in := range g.Input {
		for _, name := range ins {
			if in.GetName() == name {
				used = append(used, in)
			}
		}
	}
	g.Input = used
	names := make([]string, len(used))
	for i, in := range used {
		names[i] = in.GetName()
	}
	model, err := modelBytes(g)
	if err != nil {
		b.Fatal(err)
	}
	s, err := ort.NewSession(model, names, []string{out}, ort.Options{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	inputs := make([]ort.Value, len(names))
	for i, name := range names {
		t, err := ort.NewEmptyTensor[float32](shapes[name]...)
		if err != nil {
			b.Fatal(err)
		}
		defer t.Destroy()
		inputs[i] = t
	}
	o, err := ort.NewEmptyTensor[float32](outShape...)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Destroy()
	outputs := []ort.Value{o}
	if err := s.Run(inputs, outputs); err != nil { // warm up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := s.Run(inputs, outputs); err != nil {
			b.Fatal(err)
		}
	}
}
