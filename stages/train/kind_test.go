package train

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/internal/testenv"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/train"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/partitions"
)

func needORT(t *testing.T) {
	t.Helper()
	testenv.RequireORT(t)
}

// drawSamples writes n PNG photos under root, each a coloured garment (a
// red, green or blue box, striped or not) on grey inside its bounding box,
// and returns them as a samples table with 4 attributes: red, green, blue,
// striped; its category is the colour (colourCategories).
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
		s.Category = append(s.Category, int32(colour+1))
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
	// Trained on files: the model says how they were cropped, for predict.
	if c := m.Meta.Crop; c == nil || *c != (artifacts.CropSpec{Crop: p.Crop, Margin: p.CropMargin}) {
		t.Errorf("model's crop %+v, want crop %v margin %g", c, p.Crop, p.CropMargin)
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

// TestParamsValidate checks each rejected value and the key its
// *pipeline.ParamError names, which places the error in a pipeline file.
func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Params)
		key  string
	}{
		{"unknown backbone", func(p *Params) { p.Backbone = "alexnet" }, "backbone"},
		{"freeze ratio", func(p *Params) { p.FreezeRatio = 1.5 }, "freeze_ratio"},
		{"optimizer", func(p *Params) { p.Optimizer = "rmsprop" }, "optimizer"},
		{"momentum", func(p *Params) { p.Optimizer, p.Momentum = "sgd", 1 }, "momentum"},
		{"weight decay", func(p *Params) { p.WeightDecay = -1 }, "weight_decay"},
		{"pos_weight", func(p *Params) { p.PosWeight = "some" }, "pos_weight"},
		{"best_by", func(p *Params) { p.BestBy = "accuracy" }, "best_by"},
		{"nothing to train", func(p *Params) { p.Phase1.MaxEpochs, p.Phase2.MaxEpochs = 0, 0 }, "phase2.max_epochs"},
		{"batch size", func(p *Params) { p.Phase2.BatchSize = 0 }, "phase2.batch_size"},
		{"learning rate", func(p *Params) { p.Phase1.LearningRate = math.Inf(1) }, "phase1.learning_rate"},
		{"negative steps", func(p *Params) { p.Phase1.StepsPerEpoch = -1 }, "phase1.steps_per_epoch"},
		{"patience", func(p *Params) { p.LRPatience = -1 }, "lr_patience"},
		{"categories", func(p *Params) { p.Categories = "yes" }, "categories"},
		{"category weight", func(p *Params) { p.CategoryWeight = 0 }, "category_weight"},
		{"category weight NaN", func(p *Params) { p.CategoryWeight = math.NaN() }, "category_weight"},
		{"category weight too big", func(p *Params) { p.CategoryWeight = 1e300 }, "category_weight"},

		// Values that passed and then crashed the run (makeslice: len out
		// of range, or out of memory), and NaNs, which pass "v < 0" checks.
		{"image size 1e12", func(p *Params) { p.ImageSize = 1e12 }, "image_size"},
		{"image size 100000", func(p *Params) { p.ImageSize = 100000 }, "image_size"},
		{"image size 1025", func(p *Params) { p.ImageSize = MaxImageSize + 1 }, "image_size"},
		{"width 100000", func(p *Params) { p.Width = 100000 }, "width"},
		{"width above 4", func(p *Params) { p.Width = MaxWidth + 0.5 }, "width"},
		{"width NaN", func(p *Params) { p.Width = math.NaN() }, "width"},
		{"width +Inf", func(p *Params) { p.Width = math.Inf(1) }, "width"},
		{"head 2e9", func(p *Params) { p.Head = []int{2000000000} }, "head"},
		{"head above the limit", func(p *Params) { p.Head = []int{64, MaxHeadWidth + 1} }, "head"},
		{"batch size 1e9", func(p *Params) { p.Phase2.BatchSize = 1000000000 }, "phase2.batch_size"},
		{"batch size above the limit", func(p *Params) { p.Phase1.BatchSize = MaxBatchSize + 1 },
			"phase1.batch_size"},
		{"batch of images too big", func(p *Params) { p.ImageSize, p.Phase1.BatchSize = 1024, 512 },
			"phase1.batch_size"},
		{"steps per epoch 1e9", func(p *Params) { p.Phase1.StepsPerEpoch = 1000000000 }, "phase1.steps_per_epoch"},
		{"steps per epoch that would wrap", func(p *Params) { p.Phase2.StepsPerEpoch = math.MaxInt/32 + 1 },
			"phase2.steps_per_epoch"},
		{"freeze ratio NaN", func(p *Params) { p.FreezeRatio = math.NaN() }, "freeze_ratio"},
		{"crop margin NaN", func(p *Params) { p.CropMargin = math.NaN() }, "crop_margin"},
		{"min delta NaN", func(p *Params) { p.MinDelta = math.NaN() }, "min_delta"},
		{"lr factor NaN", func(p *Params) { p.LRFactor = math.NaN() }, "lr_factor"},
		{"momentum NaN", func(p *Params) { p.Optimizer, p.Momentum = "sgd", math.NaN() }, "momentum"},
		{"weight decay NaN", func(p *Params) { p.WeightDecay = math.NaN() }, "weight_decay"},
		{"weight decay beyond float32", func(p *Params) { p.WeightDecay = 1e300 }, "weight_decay"},
		{"momentum 1 as float32", func(p *Params) { p.Optimizer, p.Momentum = "sgd", 0.99999999999 }, "momentum"},
		{"momentum NaN under adam", func(p *Params) { p.Momentum = math.NaN() }, "momentum"},
		{"negative momentum under adam", func(p *Params) { p.Momentum = -5 }, "momentum"},
		{"learning rate beyond float32", func(p *Params) { p.Phase2.LearningRate = 1e39 }, "phase2.learning_rate"},
		{"learning rate 0 as float32", func(p *Params) { p.Phase1.LearningRate = 1e-50 }, "phase1.learning_rate"},
		{"category weight 0 as float32", func(p *Params) { p.CategoryWeight = 1e-50 }, "category_weight"},
		{"nesterov without momentum", func(p *Params) { p.Optimizer, p.Momentum, p.Nesterov = "sgd", 0, true },
			"nesterov"},
	} {
		p := NewParams()
		tc.edit(p)
		err := p.Validate()
		var pe *pipeline.ParamError
		switch {
		case err == nil:
			t.Errorf("%s: Validate accepted %+v", tc.name, p)
		case !errors.As(err, &pe) || pe.Key != tc.key:
			t.Errorf("%s: Validate() = %v (key %v), want an error about key %s", tc.name, err, pe, tc.key)
		}
	}
	if err := NewParams().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// A phase that does not run needs no batch size.
	p := NewParams()
	p.Phase2 = PhaseParams{}
	if err := p.Validate(); err != nil {
		t.Errorf("phase2 off: %v", err)
	}

	// Each bound is inclusive.
	for _, tc := range []struct {
		name string
		edit func(*Params)
	}{
		{"largest image size", func(p *Params) {
			p.ImageSize, p.Phase1.BatchSize, p.Phase2.BatchSize = MaxImageSize, 256, 256
		}},
		{"largest batch", func(p *Params) { p.Phase1.BatchSize, p.Phase2.BatchSize = MaxBatchSize, MaxBatchSize }},
		{"largest width", func(p *Params) { p.Width = MaxWidth }},
		{"largest head", func(p *Params) { p.Head = []int{MaxHeadWidth, MaxHeadWidth} }},
		{"most steps", func(p *Params) { p.Phase1.StepsPerEpoch = MaxEpochSamples / p.Phase1.BatchSize }},
	} {
		p := NewParams()
		tc.edit(p)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
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

// TestExternalsRefusesAFolder: a folder given as the backbone file was
// fingerprinted file by file as an external input, and failed there on
// whatever the folder held (a symlink pointing outside it).
func TestExternalsRefusesAFolder(t *testing.T) {
	dir := t.TempDir()
	p := NewParams()
	for _, prefix := range []string{"file:", "weights:"} {
		p.Backbone = prefix + dir
		want := "backbone " + p.Backbone + ": " + dir + " is a directory, want an ONNX file"
		paths, err := New().(pipeline.ExternalReader).Externals(p)
		if err == nil || err.Error() != want {
			t.Errorf("Externals: %v, %v; want the error %q", paths, err, want)
		}
		// The stage refuses it too, when run without the engine.
		if err := New().Run(t.Context(), stageRun(t), p); err == nil || err.Error() != want {
			t.Errorf("Run: %v; want the error %q", err, want)
		}
	}
}

// TestBatchAboveTrainingSamples checks that a batch_size above the
// number of training samples trains exactly as a batch of all of them,
// and says so in the log. It once allocated batch_size rows and filled
// them with repeated samples.
func TestBatchAboveTrainingSamples(t *testing.T) {
	needORT(t)
	p := smallParams()
	p.Phase1.MaxEpochs, p.Phase2.MaxEpochs = 1, 1
	p.Phase1.BatchSize, p.Phase2.BatchSize = 48, 8 // stageRun has 48 training samples
	want := trainedModel(t, stageRun(t), p)

	p.Phase1.BatchSize = 1000
	run := stageRun(t)
	var log strings.Builder
	run.Log = slog.New(slog.NewTextHandler(&log, nil))
	got := trainedModel(t, run, p)
	if !slices.Equal(got.ONNX, want.ONNX) {
		t.Error("batch_size 1000 on 48 samples trains another model than batch_size 48")
	}
	line := `msg="batch_size is above the number of training samples: batches hold every sample once" ` +
		"phase=1 batch_size=1000 train=48"
	if !strings.Contains(log.String(), line) {
		t.Errorf("log:\n%s\nwant a line holding %s", log.String(), line)
	}
	if strings.Contains(log.String(), "phase=2 batch_size=") {
		t.Errorf("log:\n%s\nsays phase 2's batch, 8 samples, was changed", log.String())
	}
}

// colourCategories are drawSamples' categories: the colours.
var colourCategories = []artifacts.Category{{ID: 1, Name: "red"}, {ID: 2, Name: "green"}, {ID: 3, Name: "blue"}}

// bindCategories stores cats and binds them as run's categories input.
func bindCategories(t *testing.T, run *pipelinetest.Run, cats []artifacts.Category) {
	t.Helper()
	id, err := run.St.PutCategories(cats)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("categories", id)
}

// trainedModel runs the train stage and returns its model.
func trainedModel(t *testing.T, run *pipelinetest.Run, p *Params) *artifacts.Model {
	t.Helper()
	if err := New().Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("model")
	if err != nil {
		t.Fatal(err)
	}
	m, err := run.St.GetModel(id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkCategoryHead checks that model predicts cats, in its metadata and
// in the ONNX graph's outputs; no cats means no category head.
func checkCategoryHead(t *testing.T, model *artifacts.Model, cats []artifacts.Category) {
	t.Helper()
	m, err := graph.Parse(model.ONNX)
	if err != nil {
		t.Fatal(err)
	}
	embedded, _, err := head.ReadMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(embedded, model.Meta) {
		t.Errorf("the ONNX metadata differs from the artifact's:\n%+v\n%+v", embedded, model.Meta)
	}
	if len(cats) == 0 {
		if model.Meta.CategoryOutput != "" || len(model.Meta.Categories) != 0 || len(m.Graph.Output) != 1 {
			t.Errorf("category output %q, categories %v, %d graph outputs: want no category head",
				model.Meta.CategoryOutput, model.Meta.Categories, len(m.Graph.Output))
		}
		return
	}
	if model.Meta.CategoryOutput != head.CategoryOutputName || !cmp.Equal(model.Meta.Categories, cats) {
		t.Errorf("category output %q, categories %v; want %q, %v", model.Meta.CategoryOutput,
			model.Meta.Categories, head.CategoryOutputName, cats)
	}
	var width int64
	for _, o := range m.Graph.Output {
		if o.GetName() == model.Meta.CategoryOutput {
			_, dims, _ := graph.TensorShape(o)
			width = dims[len(dims)-1]
		}
	}
	if width != int64(len(cats)) {
		t.Errorf("category output of width %d, want %d", width, len(cats))
	}
}

func TestStageTrainsCategories(t *testing.T) {
	needORT(t)
	run := stageRun(t)
	bindCategories(t, run, colourCategories)
	p := smallParams()
	p.Phase2.MaxEpochs = 1
	model := trainedModel(t, run, p)
	checkCategoryHead(t, model, colourCategories)

	// Starting from it: other categories replace the category layer, and
	// categories: false removes it; the attribute layer is kept.
	four := append(slices.Clone(colourCategories), artifacts.Category{ID: 4, Name: "grey"})
	for _, tc := range []struct {
		name string
		cats []artifacts.Category
		mode CategoryMode
	}{
		{"same categories", colourCategories, CategoriesAuto},
		{"other categories", four, CategoriesOn},
		{"categories off", nil, CategoriesOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := stageRun(t)
			id, err := run.St.PutModel(model)
			if err != nil {
				t.Fatal(err)
			}
			run.Bind("model", id)
			if tc.cats != nil {
				bindCategories(t, run, tc.cats)
			}
			p := smallParams()
			p.Phase1.MaxEpochs, p.Phase2.MaxEpochs, p.Categories = 1, 0, tc.mode
			checkCategoryHead(t, trainedModel(t, run, p), tc.cats)
		})
	}
}

func TestStageCategoryErrors(t *testing.T) {
	needORT(t)
	for _, tc := range []struct {
		name string
		cats []artifacts.Category // nil: no categories input
		mode CategoryMode
		want string
	}{
		{"true without the input", nil, CategoriesOn, "needs the categories input"},
		{"true without categories", []artifacts.Category{}, CategoriesOn,
			"categories table (test-categories.categories) is empty"},
		{"auto without categories", []artifacts.Category{}, CategoriesAuto,
			"categories table (test-categories.categories) is empty"},
		{"unlisted category", colourCategories[:2], CategoriesAuto, "has category 3, which the categories table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := stageRun(t)
			if tc.cats != nil {
				bindCategories(t, run, tc.cats)
			}
			p := smallParams()
			p.Categories = tc.mode
			err := New().Run(t.Context(), run, p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("train with categories %s: %v, want an error saying %q", tc.mode, err, tc.want)
			}
		})
	}

	// Without the input, auto trains no category head.
	run := stageRun(t)
	p := smallParams()
	p.Phase1.MaxEpochs, p.Phase2.MaxEpochs = 1, 0
	checkCategoryHead(t, trainedModel(t, run, p), nil)
}

// TestReadCategories checks when the category head is on: auto means
// off only when the samples have no categories or the input is not wired.
func TestReadCategories(t *testing.T) {
	labelled := &artifacts.Samples{Image: []string{"a", "b"}, Category: []int32{2, 0}}
	unlabelled := &artifacts.Samples{Image: []string{"a", "b"}, Category: []int32{0, 0}}
	for _, tc := range []struct {
		name    string
		cats    []artifacts.Category // nil: no categories input
		mode    CategoryMode
		samples *artifacts.Samples
		want    int    // categories of the head
		wantErr string // "" for none
	}{
		{"auto", colourCategories, CategoriesAuto, labelled, 3, ""},
		{"auto, not wired", nil, CategoriesAuto, labelled, 0, ""},
		{"auto, samples without categories", colourCategories, CategoriesAuto, unlabelled, 0, ""},
		{"auto, empty table and no categories", []artifacts.Category{}, CategoriesAuto, unlabelled, 0, ""},
		{"auto, empty table beside category ids", []artifacts.Category{}, CategoriesAuto, labelled, 0,
			"1 training samples have category ids, but the wired categories table " +
				"(test-categories.categories) is empty"},
		{"true, empty table beside category ids", []artifacts.Category{}, CategoriesOn, labelled, 0,
			"the wired categories table (test-categories.categories) is empty"},
		{"true, samples without categories", colourCategories, CategoriesOn, unlabelled, 0,
			"categories: true, and the categories table has 3 categories and 0 training samples have one"},
		{"false, empty table beside category ids", []artifacts.Category{}, CategoriesOff, labelled, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := pipelinetest.NewRun(t, "train")
			if tc.cats != nil {
				bindCategories(t, run, tc.cats)
			}
			p := NewParams()
			p.Categories = tc.mode
			cats, err := readCategories(run, p, tc.samples)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("readCategories: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("readCategories: %v, want an error saying %q", err, tc.wantErr)
			case len(cats) != tc.want:
				t.Errorf("%d categories, want %d", len(cats), tc.want)
			}
		})
	}
}

// trainYAML is a pipeline with a train stage whose with: holds with.
// parseTrain parses src as train.yaml with the train and partitions kinds.
func parseTrain(t *testing.T, src string) (*pipeline.Pipeline, error) {
	t.Helper()
	reg, err := pipeline.NewRegistry(New(), partitions.New())
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Parse("train.yaml", []byte(src), reg, nil)
}

func trainYAML(with string) string {
	return `stages:
  split: {uses: partitions, with: {root: /data, layout: coarse}}
  train:
    uses: train
    needs: {train: split.train, val: split.val, attributes: split.attributes, categories: split.categories}
` + with
}

// TestCategoryParamsFromYAML checks the parameters as a pipeline file
// spells them: `categories: true` is a YAML bool, decoded as "true".
func TestCategoryParamsFromYAML(t *testing.T) {
	for _, tc := range []struct {
		with, want string // want: a value of categories, or an error (with a space)
	}{
		{"    with: {categories: true, category_weight: 0.5}\n", "true"},
		{"    with: {categories: True}\n", "true"},
		{"    with: {categories: TRUE}\n", "true"},
		{"    with: {categories: 'true'}\n", "true"},
		{"    with: {categories: false}\n", "false"},
		{"    with: {categories: False}\n", "false"},
		{"    with: {categories: FALSE}\n", "false"},
		{"    with: {categories: auto}\n", "auto"},
		{"    with: {categories: maybe}\n", "parameter categories: \"maybe\": want auto, true or false"},
		{"    with: {categories: Auto}\n", "parameter categories: \"Auto\": want auto, true or false"},
		{"    with: {categories: [true]}\n", "parameter categories: a list: want auto, true or false"},
		{"    with: {categories: true, category_weight: -1}\n", "category_weight -1"},
		{"    with: {categories: true, category_weight: [1]}\n", "cannot unmarshal !!seq"},
		{"    with: {categories: true, categry_weight: 1}\n", `did you mean "category_weight"`},
		{"    with: {categories: auto, category_weight: .inf}\n", "category_weight +Inf"},
		{"    with: {categories: auto, category_weight: 1e300}\n",
			"category_weight 1e+300: want a weight > 0 and at most 1000"},
		{"    with: {category_weight: 1000}\n", "auto"},
	} {
		p, err := parseTrain(t, trainYAML(tc.with))
		with := strings.TrimSpace(tc.with)
		if strings.Contains(tc.want, " ") {
			if err == nil || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "train.yaml:6:") {
				t.Errorf("%s: err = %v, want a train.yaml:6 error saying %q", with, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", with, err)
			continue
		}
		for _, st := range p.Stages {
			if params, ok := st.Params.(*Params); ok && string(params.Categories) != tc.want {
				t.Errorf("%s: categories = %q, want %q", with, params.Categories, tc.want)
			}
		}
	}
}

// TestParamErrorPositions checks that a rejected parameter is reported at
// its own line and column, not at the first key under with:.
func TestParamErrorPositions(t *testing.T) {
	for _, tc := range []struct {
		name, with, want string
	}{
		{"category_weight", `    with:
      backbone: smallcnn
      image_size: 32
      category_weight: 0
`, "train.yaml:9:24: stage train: invalid parameters: category_weight 0: want a weight > 0"},
		{"categories", `    with:
      backbone: smallcnn
      categories: maybe
`, `train.yaml:8:19: parameter categories: "maybe": want auto, true or false`},
		{"nested batch_size", `    with:
      backbone: smallcnn
      phase1: {max_epochs: 1, batch_size: 16}
      phase2:
        max_epochs: 2
        batch_size: 0
`, "train.yaml:11:21: stage train: invalid parameters: phase2.batch_size 0: want 1 to 4096"},
		{"image_size too large", `    with:
      backbone: smallcnn
      image_size: 100000
`, "train.yaml:8:19: stage train: invalid parameters: image_size 100000: want 32 to 1024 pixels per side"},
		{"head too wide", `    with:
      head: [2000000000]
`, "train.yaml:7:7: stage train: invalid parameters: head [2000000000]: " +
			"each hidden layer's width must be 1 to 16384"},
		{"batch of images too large", `    with:
      image_size: 1024
      phase1: {batch_size: 4096}
`, "train.yaml:8:28: stage train: invalid parameters: phase1.batch_size 4096: a batch of 1024x1024 px images " +
			"takes 48.0 GiB, want at most 4 GiB"},
		{"two at once", `    with:
      freeze_ratio: 2
      phase1: {learning_rate: 0}
`, "train.yaml:7:21: stage train: invalid parameters: freeze_ratio 2: want 0 to 1\n" +
			"train.yaml:8:31: stage train: invalid parameters: phase1.learning_rate 0: want a finite rate > 0"},
		{"from a parameter", `    with:
      backbone: smallcnn
      lr_factor: "${f}"
`, "train.yaml:9:18: stage train: invalid parameters: lr_factor 2: want between 0 and 1"},
		{"from the matrix", `    matrix: {category_weight: [1, 2000]}
    with:
      backbone: smallcnn
      category_weight: 0.1
`, "train.yaml:6:35: stage train[2000]: invalid parameters: category_weight 2000"},
		{"both phases off", `    with:
      phase1: {max_epochs: 0}
      phase2: {batch_size: 8, max_epochs: 0}
      image_size: 32
`, "train.yaml:8:43: stage train: invalid parameters: phase1 and phase2: both have max_epochs 0"},
		{"pos_weight without the input", `    with:
      categories: true
      pos_weight: input
`, "train.yaml:8:19: stage train: invalid parameters: pos_weight: input needs the weights input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := trainYAML(tc.with)
			if strings.Contains(tc.with, "${f}") {
				src = "params: {f: 2}\n" + src
			}
			_, err := parseTrain(t, src)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant one starting:\n%s", err, tc.want)
			}
		})
	}
}

// TestCategoriesTrueNeedsInputAtLoad: the missing input is reported at
// load time, at the parameter, before anything runs.
func TestCategoriesTrueNeedsInputAtLoad(t *testing.T) {
	src := `stages:
  split: {uses: partitions, with: {root: /data, layout: coarse}}
  train:
    uses: train
    needs: {train: split.train, val: split.val, attributes: split.attributes}
    with: {categories: true}
`
	_, err := parseTrain(t, src)
	want := "train.yaml:6:24: stage train: invalid parameters: categories: true needs the categories input"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error:\n%v\nwant one starting:\n%s", err, want)
	}
}

// TestMisspeltInput checks the hint for an input named in the singular.
func TestMisspeltInput(t *testing.T) {
	src := `stages:
  split: {uses: partitions, with: {root: /data, layout: coarse}}
  train:
    uses: train
    needs: {train: split.train, val: split.val, attributes: split.attributes, category: split.categories}
`
	_, err := parseTrain(t, src)
	want := `kind train has no input "category" (did you mean "categories"?)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one saying %s", err, want)
	}
}

// category_weight is output-neutral exactly when no category head can be
// built, momentum and nesterov exactly under Adam.
func TestOutputNeutral(t *testing.T) {
	wired := func(on bool) func(string) bool { return func(string) bool { return on } }
	for _, tc := range []struct {
		mode      CategoryMode
		optimizer string
		wired     bool
		want      []string
	}{
		{CategoriesOff, train.Adam, true, []string{"categories", "category_weight", "momentum", "nesterov"}},
		{CategoriesAuto, train.Adam, false, []string{"categories", "category_weight", "momentum", "nesterov"}},
		{CategoriesAuto, train.Adam, true, []string{"momentum", "nesterov"}},
		{CategoriesOn, train.SGD, true, nil},
	} {
		p := NewParams()
		p.Categories, p.Optimizer = tc.mode, tc.optimizer
		if got := (kind{}).OutputNeutral(p, wired(tc.wired)); !slices.Equal(got, tc.want) {
			t.Errorf("categories %s, %s, wired %v: %v, want %v", tc.mode, tc.optimizer, tc.wired, got, tc.want)
		}
	}
}

// A matrix over one setting of a phase keeps the phase's other settings
// from the stage's with: (it used to replace the whole phase block, so
// steps_per_epoch fell back to its default), and names the variant by it.
func TestMatrixOverPhaseSetting(t *testing.T) {
	p, err := parseTrain(t, trainYAML(`    with: {phase1: {steps_per_epoch: 7, learning_rate: 0.01}}
    matrix: {phase1: [{max_epochs: 1}, {max_epochs: 2}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]PhaseParams{}
	for _, s := range p.Stages {
		if s.Base == "train" {
			got[s.Name] = s.Params.(*Params).Phase1
		}
	}
	for name, epochs := range map[string]int{"train[phase1.max_epochs=1]": 1, "train[phase1.max_epochs=2]": 2} {
		ph, ok := got[name]
		if !ok {
			t.Fatalf("no stage %s among %v", name, got)
		}
		if ph.MaxEpochs != epochs || ph.StepsPerEpoch != 7 || ph.LearningRate != 0.01 {
			t.Errorf("%s: phase1 %+v, want max_epochs %d with steps_per_epoch 7 and learning_rate 0.01 kept", name, ph, epochs)
		}
	}
}

// A file backbone's path is cleaned, so its spellings share a run key.
func TestValidateCleansBackbonePath(t *testing.T) {
	for _, b := range []string{"file:models/a.onnx", "file:./models/a.onnx", "file:models//x/../a.onnx"} {
		p := NewParams()
		p.Backbone = b
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		if p.Backbone != "file:models/a.onnx" {
			t.Errorf("backbone %s cleaned to %s, want file:models/a.onnx", b, p.Backbone)
		}
	}
}

// Matrix values name their variants by what they read from parameters,
// and two phases varied alike stay apart in the names.
func TestMatrixValueNames(t *testing.T) {
	p, err := parseTrain(t, "params: {ep: 3}\n"+trainYAML(
		`    matrix: {phase1: [{max_epochs: "${ep}"}], phase2: [{max_epochs: 1}, {max_epochs: "${ep}"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Stages {
		if s.Base == "train" {
			got = append(got, s.Name)
		}
	}
	want := []string{"train[phase1.max_epochs=3,phase2.max_epochs=1]", "train[phase1.max_epochs=3,phase2.max_epochs=3]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}

// A value listed twice says so, and only that: no error about the names
// the variants would have had.
func TestMatrixValueTwice(t *testing.T) {
	_, err := parseTrain(t, trainYAML(`    matrix: {phase1: [{max_epochs: 1}, {max_epochs: 1}]}
`))
	if err == nil || !strings.Contains(err.Error(), `matrix key phase1 lists "{max_epochs: 1}" twice`) ||
		strings.Contains(err.Error(), "also made by") {
		t.Errorf("error %v, want only the value listed twice", err)
	}
}
