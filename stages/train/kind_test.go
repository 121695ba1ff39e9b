package train

import (
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"stitch/artifacts"
	"stitch/internal/testenv"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
)

func needORT(t *testing.T) {
	t.Helper()
	testenv.RequireORT(t)
}

// drawSamples writes n PNG photos under root, each a coloured garment (a
// red, green or blue box, striped or not) on grey inside its bounding box,
// and returns them as a samples table with 4 attributes: red, green, blue,
// striped.
func drawSamples(t *testing.T, root, partition string, n int, seed uint64) *artifacts.Samples {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	s := &artifacts.Samples{Root: root, NumAttributes: 4}
	if err := os.MkdirAll(filepath.Join(root, partition), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		colour, striped := rng.IntN(3), rng.IntN(2) == 0
		img := image.NewNRGBA(image.Rect(0, 0, 48, 40))
		box := [4]int32{8, 4, 40, 36}
		for y := range 40 {
			for x := range 48 {
				c := color.NRGBA{128, 128, 128, 255}
				if x >= int(box[0]) && x < int(box[2]) && y >= int(box[1]) && y < int(box[3]) {
					c = color.NRGBA{40, 40, 40, 255}
					switch colour {
					case 0:
						c.R = 230
					case 1:
						c.G = 230
					case 2:
						c.B = 230
					}
					if striped && y%6 < 2 {
						c = color.NRGBA{255, 255, 255, 255}
					}
				}
				img.SetNRGBA(x, y, c)
			}
		}
		name := filepath.Join(partition, string(rune('a'+i%26))+string(rune('a'+i/26))+".png")
		f, err := os.Create(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		labels := []int8{-1, -1, -1, -1}
		labels[colour] = 1
		if striped {
			labels[3] = 1
		}
		if rng.IntN(8) == 0 {
			labels[rng.IntN(4)] = 0
		}
		s.Image = append(s.Image, name)
		s.Partition = append(s.Partition, partition)
		s.Category = append(s.Category, 0)
		s.BBox = append(s.BBox, box)
		s.HasBBox = append(s.HasBBox, true)
		s.Landmarks = append(s.Landmarks, nil)
		s.Labels = append(s.Labels, labels...)
	}
	return s
}

// stageRun binds train and val samples and the attributes to a fresh run.
func stageRun(t *testing.T) *pipelinetest.Run {
	t.Helper()
	run := pipelinetest.NewRun(t, "train")
	root := t.TempDir()
	for _, part := range []struct {
		name string
		n    int
	}{{"train", 48}, {"val", 16}} {
		id, err := run.St.PutSamples(drawSamples(t, root, part.name, part.n, uint64(part.n)))
		if err != nil {
			t.Fatal(err)
		}
		run.Bind(part.name, id)
	}
	attrs := []artifacts.Attribute{
		{Index: 0, Name: "red", Type: 1, TypeName: "texture"}, {Index: 1, Name: "green", Type: 1, TypeName: "texture"},
		{Index: 2, Name: "blue", Type: 1, TypeName: "texture"}, {Index: 3, Name: "striped", Type: 1, TypeName: "texture"},
	}
	id, err := run.St.PutAttributes(attrs)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("attributes", id)
	run.Settings_.Threads = 2
	return run
}

func smallParams() *Params {
	p := NewParams()
	p.Backbone, p.Width, p.ImageSize, p.Head = "smallcnn", 0.5, 32, []int{16}
	p.Phase1 = PhaseParams{MaxEpochs: 2, BatchSize: 8, LearningRate: 1e-2}
	p.Phase2 = PhaseParams{MaxEpochs: 2, BatchSize: 8, LearningRate: 1e-3}
	p.PosWeight = "auto"
	return p
}

func TestStageTrainsFromSamples(t *testing.T) {
	needORT(t)
	run := stageRun(t)
	p := smallParams()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	k := New()
	if err := k.Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	modelID, err := run.Output("model")
	if err != nil {
		t.Fatal(err)
	}
	m, err := run.St.GetModel(modelID)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Meta.Attributes) != 4 || m.Meta.Height != 32 || m.Meta.Output != "logits" || !m.Meta.OutputIsLogits {
		t.Errorf("model metadata %+v: want 4 attributes, 32 px, logits", m.Meta)
	}
	histID, err := run.Output("history")
	if err != nil {
		t.Fatal(err)
	}
	hist, err := run.St.GetHistory(histID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 || hist[0].Phase != 1 || hist[3].Phase != 2 {
		t.Fatalf("history %+v: want 2 epochs of each phase", hist)
	}

	// A second stage starting from this model with other attributes
	// replaces the output layer and trains on.
	run2 := stageRun(t)
	m.Meta.Attributes = m.Meta.Attributes[:3] // as if trained on 3 attributes
	startID, err := run2.St.PutModel(m)
	if err != nil {
		t.Fatal(err)
	}
	run2.Bind("model", startID)
	p2 := smallParams()
	p2.Phase2.MaxEpochs = 0
	if err := k.Run(t.Context(), run2, p2); err != nil {
		t.Fatal(err)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Params)
	}{
		{"unknown backbone", func(p *Params) { p.Backbone = "alexnet" }},
		{"freeze ratio", func(p *Params) { p.FreezeRatio = 1.5 }},
		{"optimizer", func(p *Params) { p.Optimizer = "rmsprop" }},
		{"pos_weight", func(p *Params) { p.PosWeight = "some" }},
		{"best_by", func(p *Params) { p.BestBy = "accuracy" }},
		{"nothing to train", func(p *Params) { p.Phase1.MaxEpochs, p.Phase2.MaxEpochs = 0, 0 }},
		{"batch size", func(p *Params) { p.Phase2.BatchSize = 0 }},
	} {
		p := NewParams()
		tc.edit(p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tc.name, p)
		}
	}
	if err := NewParams().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestExternals(t *testing.T) {
	k := New().(pipeline.ExternalReader)
	p := NewParams()
	if paths, err := k.Externals(p); err != nil || len(paths) != 0 {
		t.Errorf("zoo backbone: externals %v, %v; want none", paths, err)
	}
	p.Backbone = "weights:../../../shared/models/mobilenet_v2_imagenet.onnx"
	paths, err := k.Externals(p)
	if err != nil || len(paths) != 1 || !filepath.IsAbs(paths[0]) {
		t.Errorf("file backbone: externals %v, %v; want its absolute path", paths, err)
	}
}
