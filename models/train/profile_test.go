package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"stitch/models/graph"
	"stitch/models/ort"
)

// TestProfileStep profiles training steps with ONNX Runtime's profiler
// and prints where the time goes, by operator type and by node. It runs
// only when STITCH_PROFILE names a shared model and size, e.g.
// STITCH_PROFILE=resnet18@112.
func TestProfileStep(t *testing.T) {
	target := os.Getenv("STITCH_PROFILE")
	if target == "" {
		t.Skip("set STITCH_PROFILE=model@size to profile")
	}
	needORT(t)
	name, sizeText, _ := strings.Cut(target, "@")
	size, err := strconv.Atoi(sizeText)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 32
	m := sharedModel(t, name)
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Input: firstInput(m), Logits: m.Graph.Output[0].GetName(), Trainable: order,
		Batch: batch, Height: size, Width: size, Optimizer: Optimizer{Kind: Adam}}
	step, err := BuildStep(m, spec)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := graph.Parse(step.Model)
	if err != nil {
		t.Fatal(err)
	}
	// The runtime reads session options from the model's ort_config when
	// this variable is set; it writes the profile to the working directory.
	t.Setenv("ORT_LOAD_CONFIG_FROM_MODEL", "1")
	graph.SetMetadata(sm, "ort_config", `{"session_options": {"enable_profiling": 1}}`)
	model, err := graph.Marshal(sm)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSessionWithConfig(model, step.Inputs, step.Outputs, ort.Options{},
		map[string]string{"session.load_config_from_model": "1"})
	if err != nil {
		t.Fatal(err)
	}
	weights, err := Weights(m)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []ort.Value
	add := func(data []float32, shape ...int64) {
		if data == nil {
			data = make([]float32, graph.NumElements(shape))
		}
		tensor, err := ort.NewTensor(data, shape...)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, tensor)
	}
	classes := int64(step.Classes)
	// Inputs like BenchmarkTrainStep's: all-zero images and labels would
	// profile a step whose activations and gradients are mostly zero.
	pixels := make([]float32, graph.NumElements(step.Image))
	for i := range pixels {
		pixels[i] = float32(i%255)/255 - 0.5
	}
	add(pixels, step.Image...)
	ones := make([]float32, batch*classes)
	targets := make([]float32, batch*classes)
	for i := range ones {
		ones[i] = 1
		targets[i] = float32(i % 2)
	}
	add(targets, batch, classes)
	add(ones, batch, classes)
	add(ones[:classes], classes)
	add([]float32{1e-4}, 1)
	add([]float32{1}, 1)
	for _, p := range step.Params {
		add(weights[p.Name], p.Shape...)
	}
	for _, s := range step.States {
		add(nil, s.Shape...)
	}
	outputs := make([]ort.Value, len(step.Outputs))
	for i := range 6 {
		for j := range outputs {
			outputs[j] = nil
		}
		if err := sess.Run(inputs, outputs); err != nil {
			t.Fatal(err)
		}
		for _, o := range outputs {
			o.Destroy()
		}
		_ = i
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("onnxruntime_profile_*.json")
	if len(files) != 1 {
		t.Fatalf("profile files: %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Cat  string `json:"cat"`
		Name string `json:"name"`
		Dur  int64  `json:"dur"`
		TS   int64  `json:"ts"`
		Args struct {
			OpName string `json:"op_name"`
			Shape  any    `json:"input_type_shape"`
		} `json:"args"`
	}
	if err := json.Unmarshal(data, &events); err != nil {
		t.Fatal(err)
	}
	// The first run plans memory and packs weights: leave it out.
	var firstEnd int64 = -1
	for _, e := range events {
		if e.Cat == "Session" && e.Name == "model_run" && (firstEnd < 0 || e.TS+e.Dur < firstEnd) {
			firstEnd = e.TS + e.Dur
		}
	}
	byOp, byNode := map[string]int64{}, map[string]int64{}
	var total, runs int64
	for _, e := range events {
		switch {
		case e.TS < firstEnd:
		case e.Cat == "Node" && strings.HasSuffix(e.Name, "_kernel_time"):
			byOp[e.Args.OpName] += e.Dur
			byNode[strings.TrimSuffix(e.Name, "_kernel_time")+" ("+e.Args.OpName+")"] += e.Dur
		case e.Cat == "Session" && e.Name == "model_run":
			total += e.Dur
			runs++
		}
	}
	report := func(title string, m map[string]int64, n int) {
		keys := sortedKeys(m)
		sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
		t.Logf("%s (ms per step):", title)
		for _, k := range keys[:min(n, len(keys))] {
			t.Logf("  %8.2f  %s", float64(m[k])/1e3/float64(runs), k)
		}
	}
	t.Logf("%s at %d px, batch %d: %.1f ms per step (%d runs after the first)", name, size, batch,
		float64(total)/1e3/float64(runs), runs)
	report("by operator", byOp, 25)
	report("by node", byNode, 30)
}
