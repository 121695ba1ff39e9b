package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"stitch/artifacts"
	"stitch/internal/testenv"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/zoo"
	"stitch/stages/predict"
)

// TestPredictCategories runs `stitch predict` on a model with a category
// head: the text names the top categories above the attribute types, and
// --json carries them.
func TestPredictCategories(t *testing.T) {
	dir := t.TempDir()
	model := writeTestModel(t, dir)
	photo := filepath.Join(dir, "photo.png")
	writeTestPNG(t, photo)

	code, out, stderr := stitch(t, t.Context(), dir, "predict", "--model", model, "--top", "2", photo)
	if code != exitOK {
		t.Fatalf("stitch predict: exit %d\n%s", code, stderr)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || lines[0] != photo || !strings.HasPrefix(lines[1], "  category: ") ||
		!strings.Contains(lines[1], "Dress") || !strings.Contains(lines[1], "Tee") ||
		!strings.HasPrefix(lines[2], "  texture: ") {
		t.Errorf("stitch predict output:\n%s\nwant the image, its categories, then the types", out)
	}

	code, out, stderr = stitch(t, t.Context(), dir, "predict", "--model", model, "--json", photo)
	if code != exitOK {
		t.Fatalf("stitch predict --json: exit %d\n%s", code, stderr)
	}
	var results []predict.ImageScores
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("stitch predict --json: %v\n%s", err, out)
	}
	if len(results) != 1 || len(results[0].Categories) != 2 || len(results[0].Types) != 2 {
		t.Errorf("stitch predict --json = %+v, want 2 categories and 2 types", results)
	}
	var sum float32
	for _, c := range results[0].Categories {
		sum += c.Probability
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("category probabilities sum to %v, want 1", sum)
	}
}

// TestPredictUnreadableImage: among readable images, one that cannot be
// decoded is reported on stderr by name and fails the command at the end,
// after the others' results (only its error was printed); --json lists it
// with its error.
func TestPredictUnreadableImage(t *testing.T) {
	dir := t.TempDir()
	model := writeTestModel(t, dir)
	good, good2, garbage := filepath.Join(dir, "good.png"), filepath.Join(dir, "good2.png"),
		filepath.Join(dir, "garbage.jpg")
	writeTestPNG(t, good)
	writeTestPNG(t, good2)
	write(t, garbage, "not a JPEG")

	code, out, stderr := stitch(t, t.Context(), dir, "predict", "--model", model, good, garbage, good2)
	if code != exitFailed || !strings.HasPrefix(out, good+"\n") || !strings.Contains(out, "\n"+good2+"\n") ||
		strings.Contains(out, garbage) {
		t.Errorf("predict with an unreadable image: exit %d, stdout:\n%s\nwant exit %d and both good images",
			code, out, exitFailed)
	}
	want := "stitch predict: 1 of 3 images could not be read\n"
	if !strings.HasPrefix(stderr, "stitch predict: ") || !strings.Contains(stderr, garbage) ||
		!strings.HasSuffix(stderr, want) {
		t.Errorf("stderr %q: want the unreadable image named, then %q", stderr, want)
	}

	code, out, _ = stitch(t, t.Context(), dir, "predict", "--model", model, "--json", good, garbage, good2)
	var results []predict.ImageScores
	if err := json.Unmarshal([]byte(out), &results); err != nil || code != exitFailed {
		t.Fatalf("predict --json: exit %d, %v\n%s", code, err, out)
	}
	if len(results) != 3 || len(results[0].Types) == 0 || len(results[2].Types) == 0 ||
		!strings.Contains(results[1].Error, garbage) || results[1].Types != nil {
		t.Errorf("predict --json = %+v, want the good images scored and the garbage one's error", results)
	}
}

// TestPredictMissingAmongOthers: a missing file or a folder among images
// is reported like an undecodable image (the command used to stop with a
// usage error and print nothing); only when no argument is a file is it a
// usage error.
func TestPredictMissingAmongOthers(t *testing.T) {
	dir := t.TempDir()
	model := writeTestModel(t, dir)
	good, missing, folder := filepath.Join(dir, "good.png"), filepath.Join(dir, "missing.jpg"), t.TempDir()
	writeTestPNG(t, good)

	code, out, stderr := stitch(t, t.Context(), dir, "predict", "--model", model, missing, good, folder)
	if code != exitFailed || !strings.HasPrefix(out, good+"\n") {
		t.Errorf("exit %d, stdout:\n%s\nwant exit %d and the good image scored", code, out, exitFailed)
	}
	if !strings.Contains(stderr, missing+": no such image file") ||
		!strings.Contains(stderr, folder+" is a folder, not an image") ||
		!strings.HasSuffix(stderr, "2 of 3 images could not be read\n") {
		t.Errorf("stderr %q: want the missing file and the folder named", stderr)
	}
}

// writeTestModel writes a tiny model with three attributes of two types
// and a category head into dir, and returns its path.
func writeTestModel(t *testing.T, dir string) string {
	t.Helper()
	testenv.RequireORT(t)
	backbone, err := zoo.Build("smallcnn", zoo.Options{Width: 0.125, InputSize: 32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, info, err := head.Attach(backbone, head.Spec{Outputs: 3, Categories: 2, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	meta := info.Meta
	meta.Attributes = []artifacts.Attribute{
		{Index: 0, Name: "floral", Type: 1, TypeName: "texture"},
		{Index: 1, Name: "denim", Type: 2, TypeName: "fabric"},
		{Index: 2, Name: "striped", Type: 1, TypeName: "texture"},
	}
	meta.Categories = []artifacts.Category{{ID: 7, Name: "Dress"}, {ID: 2, Name: "Tee"}}
	if err := head.WriteMeta(m, meta); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.onnx")
	if err := graph.Write(model, m); err != nil {
		t.Fatal(err)
	}
	return model
}

func writeTestPNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 40, 48))
	for y := range 48 {
		for x := range 40 {
			img.Set(x, y, color.NRGBA{uint8(x * 6), uint8(y * 5), 90, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPredictBadFlags: flags out of range and a folder given as an image
// are usage errors that say what is wrong, before any model is read.
func TestPredictBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "m.onnx", "--top", "0", "a.jpg"}, "--top 0: want at least 1"},
		{[]string{"--model", "m.onnx", "--top", "-1", "a.jpg"}, "--top -1: want at least 1"},
		{[]string{"--model", "m.onnx", "--threads", "-1", "a.jpg"}, "--threads -1"},
		{[]string{"--model", "m.onnx", dir}, "is a folder, not an image"},
		{[]string{"--model", "m.onnx", dir + "/missing.jpg"}, "missing.jpg: no such image file"},
	} {
		code, _, stderr := stitch(t, t.Context(), dir, append([]string{"predict"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("stitch predict %v: exit %d, stderr %q; want exit %d and %q",
				c.args, code, stderr, exitUsage, c.want)
		}
	}
}

// TestPredictModelInTwoPipelines: a stage name that two pipelines of the
// workspace share is picked with --pipeline, as the error says (predict
// had no such flag), and a missing .onnx file is said to be missing.
func TestPredictModelInTwoPipelines(t *testing.T) {
	dir := t.TempDir()
	photo := filepath.Join(dir, "photo.png")
	writeTestPNG(t, photo)
	for _, name := range []string{"one", "two"} {
		pipe := filepath.Join(dir, name+".yaml")
		write(t, pipe, "name: "+name+"\nstages: {a: {uses: source, with: {lines: 2}}}")
		mustRun(t, dir, pipe)
	}
	code, _, stderr := stitch(t, t.Context(), dir, "predict", "--model", "a.out", photo)
	if code != exitUsage || !strings.Contains(stderr, "pick one with --pipeline") {
		t.Fatalf("predict --model a.out: exit %d, %q; want the pipelines to pick from", code, stderr)
	}
	// Picked: a's output is found, and refused for what it is, a text.
	code, _, stderr = stitch(t, t.Context(), dir, "predict", "--model", "a.out", "--pipeline", "one", photo)
	if code == exitOK || strings.Contains(stderr, "several pipelines") || strings.Contains(stderr, "flag provided") ||
		!strings.Contains(stderr, "text") {
		t.Errorf("predict --pipeline one: exit %d, %q; want a's text output refused as a model", code, stderr)
	}
	code, _, stderr = stitch(t, t.Context(), dir, "predict", "--model", "nosuch.onnx", photo)
	if code != exitUsage || !strings.Contains(stderr, "nosuch.onnx: no such model file") {
		t.Errorf("predict --model nosuch.onnx: exit %d, %q", code, stderr)
	}

	// A variant named with a '/' is a stage, not a path.
	pipe := filepath.Join(dir, "three.yaml")
	write(t, pipe, "name: three\nstages: {b: {uses: source, matrix: {value: [x/y]}}}")
	mustRun(t, dir, pipe)
	code, _, stderr = stitch(t, t.Context(), dir, "predict", "--model", "b[x/y].out", photo)
	if code == exitOK || !strings.Contains(stderr, "text") {
		t.Errorf("predict --model b[x/y].out: exit %d, %q; want b[x/y]'s text output found and refused", code, stderr)
	}
}
