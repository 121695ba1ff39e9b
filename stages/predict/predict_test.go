package predict_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/graph/graphtest"
	"stitch/models/head"
	"stitch/models/infer"
	"stitch/models/zoo"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/predict"
)

const size = 32

// tinyModel is a tiny zoo smallcnn at 32 px with a head of n attributes,
// of types 1 and 2 alternately, and a category head when cats are given.
func tinyModel(t *testing.T, n int, cats ...artifacts.Category) *artifacts.Model {
	t.Helper()
	graphtest.RequireORT(t)
	backbone, err := zoo.Build("smallcnn", zoo.Options{Width: 0.125, InputSize: size, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, info, err := head.Attach(backbone, head.Spec{Hidden: []int{8}, Outputs: n, Categories: len(cats), Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	meta := info.Meta
	meta.Categories = cats
	for i := range n {
		meta.Attributes = append(meta.Attributes, artifacts.Attribute{
			Index: i, Name: "attr" + strconv.Itoa(i), Type: 1 + i%2, TypeName: []string{"texture", "fabric"}[i%2],
		})
	}
	if err := head.WriteMeta(m, meta); err != nil {
		t.Fatal(err)
	}
	data, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &artifacts.Model{ONNX: data, Meta: meta}
}

// imagesTable is an images table of rows random pictures at the model size.
func imagesTable(rows, attrs int) *artifacts.Samples {
	s := &artifacts.Samples{NumAttributes: attrs, Height: size, Width: size, Pixels: [][]byte{}}
	for i := range rows {
		s.Image = append(s.Image, "img/"+strconv.Itoa(i)+".jpg")
		s.Partition = append(s.Partition, "test")
		s.Category = append(s.Category, 0)
		s.BBox = append(s.BBox, [4]int32{})
		s.HasBBox = append(s.HasBBox, false)
		s.Landmarks = append(s.Landmarks, nil)
		s.Labels = append(s.Labels, make([]int8, attrs)...)
		px := make([]byte, size*size*3)
		for j := range px {
			px[j] = byte((j*7 + i*31) % 251)
		}
		s.Pixels = append(s.Pixels, px)
	}
	return s
}

// tensor preprocesses an images table row by hand, as the model's
// metadata says: CHW, x = (p/scale - mean)/std.
func tensor(px []byte, meta artifacts.ModelMeta) []float32 {
	x := make([]float32, 3*size*size)
	for c := range 3 {
		for j := range size * size {
			x[c*size*size+j] = (float32(px[3*j+c])/meta.Scale - meta.Mean[c]) / meta.Std[c]
		}
	}
	return x
}

func TestStageMatchesPlainSession(t *testing.T) {
	model := tinyModel(t, 6)
	samples := imagesTable(5, 6)
	run := pipelinetest.NewRun(t, "predict-test")
	modelID, err := run.St.PutModel(model)
	if err != nil {
		t.Fatal(err)
	}
	samplesID, err := run.St.PutSamples(samples)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("model", modelID)
	run.Bind("samples", samplesID)
	params := predict.NewParams()
	params.BatchSize = 2
	if err := predict.New().Run(t.Context(), run, params); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("predictions")
	if err != nil {
		t.Fatal(err)
	}
	got, err := run.St.GetPredictions(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(samples.Image, got.Image); diff != "" {
		t.Errorf("prediction rows are not in sample order (-want +got)\n%s", diff)
	}

	var x []float32
	for _, px := range samples.Pixels {
		x = append(x, tensor(px, model.Meta)...)
	}
	m, err := graph.Parse(model.ONNX)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := graphtest.Run(t, m, "input", "logits", x, 5, 3, size, size)
	want := make([]float32, len(logits))
	for i, v := range logits {
		want[i] = float32(1 / (1 + math.Exp(-float64(v))))
	}
	if diff := cmp.Diff(want, got.Scores, cmpopts.EquateApprox(0, 1e-5)); diff != "" {
		t.Errorf("stage scores differ from a plain session (-want +got)\n%s", diff)
	}
}

func TestStageAttributeMismatch(t *testing.T) {
	run := pipelinetest.NewRun(t, "predict-test")
	modelID, _ := run.St.PutModel(tinyModel(t, 4))
	samplesID, _ := run.St.PutSamples(imagesTable(2, 5))
	run.Bind("model", modelID)
	run.Bind("samples", samplesID)
	err := predict.New().Run(t.Context(), run, predict.NewParams())
	if !errors.Is(err, infer.ErrOutputCount) {
		t.Errorf("4 outputs for 5 attributes = %v, want ErrOutputCount", err)
	}
}

// writePNG writes a w x h picture with a colour gradient.
func writePNG(t *testing.T, path string, w, h int, tint uint8) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), tint, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStageReadsImageFiles(t *testing.T) {
	root := t.TempDir()
	samples := imagesTable(3, 4)
	samples.Root, samples.Pixels, samples.Height, samples.Width = root, nil, 0, 0
	for i, name := range samples.Image {
		writePNG(t, filepath.Join(root, name), 60+i*10, 80, uint8(i*80))
	}
	samples.HasBBox[1], samples.BBox[1] = true, [4]int32{5, 5, 40, 60}

	run := pipelinetest.NewRun(t, "predict-test")
	modelID, _ := run.St.PutModel(tinyModel(t, 4))
	samplesID, _ := run.St.PutSamples(samples)
	run.Bind("model", modelID)
	run.Bind("samples", samplesID)
	if err := predict.New().Run(t.Context(), run, predict.NewParams()); err != nil {
		t.Fatal(err)
	}
	id, _ := run.Output("predictions")
	got, err := run.St.GetPredictions(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Scores) != 12 {
		t.Fatalf("%d scores, want 12", len(got.Scores))
	}
	for _, p := range got.Scores {
		if !(p >= 0 && p <= 1) {
			t.Errorf("score %g is not a probability", p)
		}
	}

	// A missing image names the file.
	os.Remove(filepath.Join(root, samples.Image[2]))
	run2 := pipelinetest.NewRun(t, "predict-test")
	modelID, _ = run2.St.PutModel(tinyModel(t, 4))
	samplesID, _ = run2.St.PutSamples(samples)
	run2.Bind("model", modelID)
	run2.Bind("samples", samplesID)
	err = predict.New().Run(t.Context(), run2, predict.NewParams())
	if err == nil || !strings.Contains(err.Error(), "2.jpg") {
		t.Errorf("missing image: %v, want an error naming it", err)
	}
}

func TestForPeople(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t, 6)
	onnxPath := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(onnxPath, model.ONNX, 0o644); err != nil {
		t.Fatal(err)
	}
	images := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")}
	writePNG(t, images[0], 50, 70, 0)
	writePNG(t, images[1], 90, 40, 200)

	results, err := predict.ForPeople(t.Context(), predict.Options{Model: onnxPath, Images: images, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[1].Image != images[1] {
		t.Fatalf("results = %+v", results)
	}
	for _, r := range results {
		if len(r.Types) != 2 || r.Types[0].TypeName != "texture" || r.Types[1].TypeName != "fabric" {
			t.Errorf("%s: types %+v, want texture then fabric", r.Image, r.Types)
		}
		for _, ty := range r.Types {
			if len(ty.Top) != 2 || ty.Top[0].Probability < ty.Top[1].Probability {
				t.Errorf("%s %s: top %+v, want 2 in decreasing order", r.Image, ty.TypeName, ty.Top)
			}
		}
	}

	var text, js bytes.Buffer
	if err := predict.WriteText(&text, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "texture:") || strings.Contains(text.String(), "category:") {
		t.Errorf("text output of a model without a category head:\n%s", text.String())
	}
	if err := predict.WriteJSON(&js, results); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "categories") {
		t.Errorf("JSON of a model without a category head lists categories:\n%s", js.String())
	}
	var decoded []predict.ImageScores
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || !cmp.Equal(decoded, results) {
		t.Errorf("JSON round trip: %v\n%s", err, js.String())
	}

	// The same model as an artifact, by id and by object path.
	store, err := artifacts.OpenStore(filepath.Join(dir, ".stitch"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.PutModel(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{id.String(), store.Path(id)} {
		again, err := predict.ForPeople(t.Context(), predict.Options{Model: name, Workspace: dir, Images: images, Top: 2})
		if err != nil {
			t.Fatalf("model %s: %v", name, err)
		}
		if diff := cmp.Diff(results, again); diff != "" {
			t.Errorf("model %s: results differ from the ONNX file's (-file +artifact)\n%s", name, diff)
		}
	}
}

func TestLoadModelErrors(t *testing.T) {
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "notes.onnx")
	os.WriteFile(notONNX, []byte("not a model"), 0o644)
	bare := filepath.Join(dir, "bare.onnx")
	raw, _ := zoo.Build("smallcnn", zoo.Options{Width: 0.125, InputSize: size})
	raw.MetadataProps = nil
	if err := graph.Write(bare, raw); err != nil {
		t.Fatal(err)
	}
	tests := map[string]string{
		notONNX:         "neither an ONNX model nor a model artifact",
		bare:            head.MetaKey,
		"no-such-model": "neither a file nor a model artifact id",
	}
	for name, want := range tests {
		_, err := predict.LoadModel(name, dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadModel(%s) = %v, want an error saying %q", name, err, want)
		}
	}
}

// tinyCategories are a category head's categories, not in id order.
var tinyCategories = []artifacts.Category{{ID: 3, Name: "Dress"}, {ID: 1, Name: "Tee"}, {ID: 2, Name: "Skirt"}}

func TestStageCategoryScores(t *testing.T) {
	model := tinyModel(t, 4, tinyCategories...)
	samples := imagesTable(5, 4)
	run := pipelinetest.NewRun(t, "predict-test")
	modelID, err := run.St.PutModel(model)
	if err != nil {
		t.Fatal(err)
	}
	samplesID, err := run.St.PutSamples(samples)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("model", modelID)
	run.Bind("samples", samplesID)
	params := predict.NewParams()
	params.BatchSize = 2
	if err := predict.New().Run(t.Context(), run, params); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("predictions")
	if err != nil {
		t.Fatal(err)
	}
	got, err := run.St.GetPredictions(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.NumCategories != 3 || !cmp.Equal(got.Categories, tinyCategories) {
		t.Fatalf("predictions: %d categories %v, want %v", got.NumCategories, got.Categories, tinyCategories)
	}

	var x []float32
	for _, px := range samples.Pixels {
		x = append(x, tensor(px, model.Meta)...)
	}
	m, err := graph.Parse(model.ONNX)
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := graphtest.Run(t, m, "input", head.CategoryOutputName, x, 5, 3, size, size)
	want := make([]float32, len(logits))
	for i := range 5 {
		var sum float64
		for _, v := range logits[i*3 : (i+1)*3] {
			sum += math.Exp(float64(v))
		}
		for c, v := range logits[i*3 : (i+1)*3] {
			want[i*3+c] = float32(math.Exp(float64(v)) / sum)
		}
	}
	if diff := cmp.Diff(want, got.CategoryScores, cmpopts.EquateApprox(0, 1e-5)); diff != "" {
		t.Errorf("category scores differ from a softmax of a plain session's logits (-want +got)\n%s", diff)
	}
}

func TestForPeopleCategories(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t, 4, tinyCategories...)
	onnxPath := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(onnxPath, model.ONNX, 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "a.png")
	writePNG(t, img, 50, 70, 0)
	results, err := predict.ForPeople(t.Context(), predict.Options{Model: onnxPath, Images: []string{img}, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	cats := results[0].Categories
	if len(cats) != 2 || cats[0].Probability < cats[1].Probability {
		t.Fatalf("categories %+v: want the top 2 in decreasing order", cats)
	}
	for _, c := range cats {
		i := slices.IndexFunc(tinyCategories, func(tc artifacts.Category) bool { return tc.ID == c.ID })
		if i < 0 || tinyCategories[i].Name != c.Category {
			t.Errorf("category %+v: id and name do not match the model's categories", c)
		}
	}

	var text, js bytes.Buffer
	if err := predict.WriteText(&text, results); err != nil {
		t.Fatal(err)
	}
	wantLine := fmt.Sprintf("  category: %s %.3f, %s %.3f\n", cats[0].Category, cats[0].Probability,
		cats[1].Category, cats[1].Probability)
	if !strings.Contains(text.String(), wantLine) || !strings.Contains(text.String(), "texture:") {
		t.Errorf("text output:\n%s\nwant the line %q and the attribute types", text.String(), wantLine)
	}
	if err := predict.WriteJSON(&js, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"categories"`) {
		t.Errorf("JSON output has no categories:\n%s", js.String())
	}
	var decoded []predict.ImageScores
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || !cmp.Equal(decoded, results) {
		t.Errorf("JSON round trip: %v\n%s", err, js.String())
	}
}

// Attributes without a type (a CSV dataset with no types) print under
// "attributes:", not "type 0:".
func TestWriteTextUntyped(t *testing.T) {
	results := []predict.ImageScores{{Image: "a.jpg", Types: []predict.TypeScores{
		{Top: []predict.Score{{Attribute: "striped", Probability: 0.9}}},
		{Type: 9, Top: []predict.Score{{Attribute: "lace", Probability: 0.4}}},
	}}}
	var b bytes.Buffer
	if err := predict.WriteText(&b, results); err != nil {
		t.Fatal(err)
	}
	want := "a.jpg\n  attributes: striped 0.900\n  type 9:  lace 0.400\n"
	if b.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", b.String(), want)
	}
}

// TestForPeopleUnreadable: an image that cannot be decoded gets an error
// naming it, and the images around it are scored as they are alone (one
// such image failed the whole call, losing the others' results).
func TestForPeopleUnreadable(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t, 6)
	onnxPath := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(onnxPath, model.ONNX, 0o644); err != nil {
		t.Fatal(err)
	}
	good := []string{filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")}
	writePNG(t, good[0], 50, 70, 0)
	writePNG(t, good[1], 90, 40, 200)
	garbage := filepath.Join(dir, "garbage.jpg")
	if err := os.WriteFile(garbage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}

	opts := predict.Options{Model: onnxPath, Images: []string{good[0], garbage, good[1]}, Top: 2}
	results, err := predict.ForPeople(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := predict.ForPeople(t.Context(), predict.Options{Model: onnxPath, Images: good, Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || results[1].Image != garbage || !strings.Contains(results[1].Error, garbage) ||
		results[1].Types != nil {
		t.Fatalf("results = %+v, want the garbage image second, with an error naming it and no scores", results)
	}
	if diff := cmp.Diff(alone, []predict.ImageScores{results[0], results[2]}); diff != "" {
		t.Errorf("the readable images' results (-alone +beside garbage):\n%s", diff)
	}

	var text, js bytes.Buffer
	if err := predict.WriteText(&text, results); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), garbage) || !strings.Contains(text.String(), good[1]+"\n") {
		t.Errorf("text leaves out the unreadable image only:\n%s", text.String())
	}
	if err := predict.WriteJSON(&js, results); err != nil {
		t.Fatal(err)
	}
	var decoded []predict.ImageScores
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || !cmp.Equal(decoded, results) {
		t.Errorf("JSON round trip: %v\n%s", err, js.String())
	}
	if strings.Contains(js.String(), `"types": null`) {
		t.Errorf("JSON of an unreadable image has empty scores:\n%s", js.String())
	}
}
