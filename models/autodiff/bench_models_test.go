package autodiff

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// benchModels are the models and input sizes of `make bench`.
var benchModels = []struct {
	name string
	px   int64
}{{"smallcnn", 64}, {"mobilenet_v2", 112}, {"resnet18", 112}}

// benchBatch is the batch size of `make bench`.
const benchBatch = 32

// stepGraph is a training-step stand-in built from a forward model: the
// gradient of <dlogits, logits> with respect to every float initializer,
// then p - lr*g for each. The loss is left out (its cost is negligible next
// to the convolutions), and the parameters are graph inputs, as in the
// trainer, so ONNX Runtime cannot constant-fold anything computed from them.
type stepGraph struct {
	model  []byte
	ins    []string
	outs   []string
	shapes map[string][]int64 // of ins and outs
}

// buildStep builds the step graph of model name at px pixels, or the
// forward graph alone (logits out) when forward is true.
func buildStep(tb testing.TB, name string, px int64, forward bool, tune tuning) stepGraph {
	return buildGraph(tb, name, px, forward, false, tune)
}

// buildGraph is buildStep; with constParams the forward graph keeps its
// parameters as initializers, which ONNX Runtime may prepack.
func buildGraph(tb testing.TB, name string, px int64, forward, constParams bool, tune tuning) stepGraph {
	tb.Helper()
	path := filepath.Join(sharedModels(tb), name+".onnx")
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Skip(err)
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(raw, m); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	g := m.Graph
	f32 := int32(onnxpb.TensorProto_FLOAT)

	input := g.Input[0].GetName()
	shapes := map[string][]int64{input: {benchBatch, 3, px, px}}
	g.Input = []*onnxpb.ValueInfoProto{valueInfo(input, f32, shapes[input])}
	var params []string
	for _, t := range g.Initializer {
		if t.GetDataType() == f32 {
			params = append(params, t.GetName())
		}
	}
	if constParams {
		params = nil
	}
	values := map[string][]float64{}
	promote(g, params, values, shapes)

	all, err := InferShapes(g, shapes)
	if err != nil {
		tb.Fatal(err)
	}
	logits := g.Output[0].GetName()
	shapes[logits] = all[logits]
	g.Output = []*onnxpb.ValueInfoProto{valueInfo(logits, f32, all[logits])}
	ins := append([]string{input}, params...)
	if forward {
		return stepGraph{model: marshalModel(tb, m), ins: ins, outs: []string{logits}, shapes: shapes}
	}

	g.Input = append(g.Input, valueInfo("dlogits", f32, all[logits]))
	shapes["dlogits"] = all[logits]
	grads, err := backward(g, logits, "dlogits", params, Options{InputShapes: shapes}, tune)
	if err != nil {
		tb.Fatal(err)
	}
	g.Input = append(g.Input, valueInfo("lr", f32, []int64{1}))
	shapes["lr"] = []int64{1}
	ins = append(ins, "dlogits", "lr")
	g.Output = nil
	var outs []string
	for _, p := range params {
		out := "new/" + p
		step := "step/" + p
		mul, sub := "Mul", "Sub"
		g.Node = append(g.Node,
			&onnxpb.NodeProto{OpType: &mul, Input: []string{grads[p], "lr"}, Output: []string{step}},
			&onnxpb.NodeProto{OpType: &sub, Input: []string{p, step}, Output: []string{out}})
		g.Output = append(g.Output, valueInfo(out, f32, shapes[p]))
		shapes[out] = shapes[p]
		outs = append(outs, out)
	}
	return stepGraph{model: marshalModel(tb, m), ins: ins, outs: outs, shapes: shapes}
}

func marshalModel(tb testing.TB, m *onnxpb.ModelProto) []byte {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// stepRunner is a session of a stepGraph with preallocated inputs and
// outputs, so a run times ONNX Runtime alone.
type stepRunner struct {
	s       *ort.Session
	inputs  []ort.Value
	outputs []ort.Value
}

func newStepRunner(tb testing.TB, sg stepGraph, opts ort.Options, config map[string]string) *stepRunner {
	tb.Helper()
	s, err := ort.NewSessionWithConfig(sg.model, sg.ins, sg.outs, opts, config)
	if err != nil {
		tb.Fatal(err)
	}
	r := &stepRunner{s: s}
	tb.Cleanup(func() {
		if err := r.s.Close(); err != nil {
			tb.Error(err)
		}
	})
	alloc := func(name string) ort.Value {
		t, err := ort.NewEmptyTensor[float32](sg.shapes[name]...)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := t.Destroy(); err != nil {
				tb.Error(err)
			}
		})
		// Small nonzero values keep denormals and all-zero shortcuts out.
		data := t.GetData()
		for i := range data {
			data[i] = float32(i%17-8) * 1e-3
		}
		return t
	}
	for _, name := range sg.ins {
		r.inputs = append(r.inputs, alloc(name))
	}
	for _, name := range sg.outs {
		r.outputs = append(r.outputs, alloc(name))
	}
	return r
}

func (r *stepRunner) run(tb testing.TB) {
	if err := r.s.Run(r.inputs, r.outputs); err != nil {
		tb.Fatal(err)
	}
}

// benchOptions is the session setup of the benchmark: 2 intra-op threads,
// like PyTorch's reference run.
var benchOptions = ort.Options{Threads: 2}

// noSpin keeps idle intra-op threads from spinning between nodes. A step
// graph has hundreds of small nodes, and on shared cores the spinning
// threads take time from the working ones: measured under load, a step ran
// 1.1x (resnet18) to 2.4x (smallcnn) faster without spinning.
var noSpin = map[string]string{"session.intra_op.allow_spinning": "0"}

// BenchmarkModelStep reports the images/s of a training step (forward,
// backward, update) and of the forward pass alone, batch 32, for each model
// of `make bench`. Run with -benchtime=10x: a resnet18 step is ~1 s.
func BenchmarkModelStep(b *testing.B) {
	if err := ort.Init(); err != nil {
		b.Skip(err)
	}
	for _, bm := range benchModels {
		for _, kind := range []string{"step", "forward"} {
			b.Run(bm.name+"/"+kind, func(b *testing.B) {
				sg := buildStep(b, bm.name, bm.px, kind == "forward", tuning{})
				r := newStepRunner(b, sg, benchOptions, noSpin)
				r.run(b) // warm up: the first run allocates
				b.ResetTimer()
				for range b.N {
					r.run(b)
				}
				b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "img/s")
			})
		}
	}
}

// BenchmarkTunings compares formulations (tuning) and session settings on
// whole step graphs, interleaved run by run so that other load on the
// machine hits every variant alike, and reports each variant's median
// images/s and CPU seconds per step. STITCH_BENCH_MODELS (comma-separated)
// limits the models.
func BenchmarkTunings(b *testing.B) {
	if err := ort.Init(); err != nil {
		b.Skip(err)
	}
	type variant struct {
		name          string
		forward, init bool
		tune          tuning
		opts          ort.Options
		config        map[string]string
	}
	variants := []variant{
		// The formulations before this benchmark existed, on default session
		// options (spinning threads).
		{name: "before", opts: benchOptions, tune: tuning{weightGrad: wgradPerSample}},
		{name: "after", opts: benchOptions, config: noSpin},
		{name: "where", opts: benchOptions, config: noSpin, tune: tuning{whereMask: true}},
		{name: "forward", forward: true, opts: benchOptions, config: noSpin},
		// Parameters as initializers: what ONNX Runtime's prepacking and
		// NCHWc layout make of the forward pass when weights are constants.
		{name: "forward_const", forward: true, init: true, opts: benchOptions, config: noSpin},
	}
	for _, bm := range benchModels {
		if !wantModel(bm.name) {
			continue
		}
		b.Run(bm.name, func(b *testing.B) {
			runners := make([]*stepRunner, len(variants))
			for i, v := range variants {
				sg := buildGraph(b, bm.name, bm.px, v.forward, v.init, v.tune)
				runners[i] = newStepRunner(b, sg, v.opts, v.config)
				runners[i].run(b)
			}
			times := make([][]float64, len(variants))
			cpu := make([][]float64, len(variants))
			for range b.N {
				for i, r := range runners {
					start, startCPU := time.Now(), cpuSeconds(b)
					r.run(b)
					times[i] = append(times[i], time.Since(start).Seconds())
					cpu[i] = append(cpu[i], cpuSeconds(b)-startCPU)
				}
			}
			for i, v := range variants {
				b.ReportMetric(benchBatch/median(times[i]), v.name+"_img/s")
				b.ReportMetric(median(cpu[i]), v.name+"_cpu-s")
			}
		})
	}
}

// cpuSeconds is the CPU time of the process so far, user and system. On
// shared cores it measures a variant's work better than the wall clock,
// as long as the runtime does not spin (allow_spinning=0).
func cpuSeconds(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// wantModel applies STITCH_BENCH_MODELS, a comma-separated list of the
// models to run (all when unset).
func wantModel(name string) bool {
	only := os.Getenv("STITCH_BENCH_MODELS")
	return only == "" || slices.Contains(strings.Split(only, ","), name)
}

// BenchmarkProfileStep writes ONNX Runtime's per-node profile of a few
// training steps of each model (onnxruntime_profile_*.json in the package
// folder) when STITCH_ORT_PROFILE=1. The Go binding has no EnableProfiling,
// so the options travel in the model's "ort_config" metadata, which the
// runtime reads under ORT_LOAD_CONFIG_FROM_MODEL=1 in place of the session
// options (hence the thread counts there too).
func BenchmarkProfileStep(b *testing.B) {
	if os.Getenv("STITCH_ORT_PROFILE") != "1" {
		b.Skip("set STITCH_ORT_PROFILE=1 to write profiles")
	}
	if err := ort.Init(); err != nil {
		b.Skip(err)
	}
	b.Setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
	for _, bm := range benchModels {
		if !wantModel(bm.name) {
			continue
		}
		b.Run(bm.name, func(b *testing.B) {
			sg := buildStep(b, bm.name, bm.px, false, tuning{})
			m := &onnxpb.ModelProto{}
			if err := proto.Unmarshal(sg.model, m); err != nil {
				b.Fatal(err)
			}
			key := "ort_config"
			val := `{"session_options": {"intra_op_num_threads": 2, "inter_op_num_threads": 1, "enable_profiling": 1}}`
			m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: &key, Value: &val})
			sg.model = marshalModel(b, m)
			r := newStepRunner(b, sg, benchOptions, nil)
			for range b.N {
				r.run(b)
			}
		})
	}
}
