package images_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/images"
	"stitch/stages/pixels"
)

var (
	red   = color.NRGBA{220, 30, 30, 255}
	green = color.NRGBA{30, 180, 60, 255}
	blue  = color.NRGBA{40, 60, 200, 255}
	clear = color.NRGBA{0, 0, 0, 0}
	white = color.NRGBA{255, 255, 255, 255}
)

// mixedDataset writes JPEG and PNG files, RGB, greyscale and with alpha,
// with and without boxes. Each row's crop is one flat colour, returned by
// image name.
func mixedDataset(t *testing.T) (*artifacts.Samples, map[string]color.NRGBA) {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root, "img/plain.jpg", encodeJPEG(t, framed(60, 40, blue, blue, image.Rectangle{})))
	writeFile(t, root, "img/boxed.png",
		encodePNG(t, framed(100, 80, green, red, image.Rect(20, 10, 60, 50))))
	writeFile(t, root, "img/boxed.jpg",
		encodeJPEG(t, framed(96, 64, blue, green, image.Rect(16, 16, 80, 48))))
	grey := image.NewGray(image.Rect(0, 0, 50, 50))
	for i := range grey.Pix {
		grey.Pix[i] = 128
	}
	writeFile(t, root, "img/grey.jpg", encodeJPEG(t, grey))
	writeFile(t, root, "img/grey.png", encodePNG(t, grey))
	// Transparent outside the box, opaque red inside: the crop is red, the
	// uncropped image would show white around it.
	writeFile(t, root, "img/alpha.png", encodePNG(t, framed(40, 40, clear, red, image.Rect(8, 8, 32, 32))))
	writeFile(t, root, "img/clear.png", encodePNG(t, framed(30, 20, clear, clear, image.Rectangle{})))
	writeFile(t, root, "img/sub dir/ümlaut.png", encodePNG(t, framed(33, 17, red, red, image.Rectangle{})))

	s := samplesOf(root, "train", []row{
		{image: "img/plain.jpg"},
		{image: "img/boxed.png", bbox: box(20, 10, 60, 50)},
		{image: "img/boxed.jpg", bbox: box(16, 16, 80, 48)},
		{image: "img/grey.jpg", bbox: box(5, 5, 45, 45)},
		{image: "img/grey.png"},
		{image: "img/alpha.png", bbox: box(8, 8, 32, 32)},
		{image: "img/clear.png"},
		{image: "img/sub dir/ümlaut.png"},
	})
	colours := map[string]color.NRGBA{
		"img/plain.jpg": blue, "img/boxed.png": red, "img/boxed.jpg": green,
		"img/grey.jpg": {128, 128, 128, 255}, "img/grey.png": {128, 128, 128, 255},
		"img/alpha.png": red, "img/clear.png": white, "img/sub dir/ümlaut.png": red,
	}
	return s, colours
}

// reference decodes row i the way the stage should: Load, crop, Fit, RGB.
func reference(t *testing.T, s *artifacts.Samples, i int, p *images.Params) []byte {
	t.Helper()
	img, err := pixels.Load(filepath.Join(s.Root, s.Image[i]))
	if err != nil {
		t.Fatal(err)
	}
	if s.HasBBox[i] {
		img, _ = pixels.CropBox(img, s.BBox[i], p.Margin)
	}
	return pixels.RGB(pixels.Fit(img, p.ImageSize[1], p.ImageSize[0]))
}

func TestMixedImages(t *testing.T) {
	in, colours := mixedDataset(t)
	p := images.NewParams()
	p.ImageSize = images.Size{24, 40} // height 24, width 40: not square, to catch swaps
	p.Margin = 0
	res, err := materialise(t, in, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := res.images

	if got.Height != 24 || got.Width != 40 {
		t.Errorf("size %dx%d (h x w), want 24x40", got.Height, got.Width)
	}
	// The table says how its pixels were read, for the model train makes.
	if c := got.Crop; c == nil || *c != (artifacts.CropSpec{Crop: true, Margin: 0}) {
		t.Errorf("images table's crop %+v, want crop to the box with margin 0", c)
	}
	if diff := cmp.Diff(in, withoutPixels(got), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("sample columns or row order changed (-input +images):\n%s", diff)
	}
	if len(res.bad) != 0 {
		t.Errorf("bad_images = %v, want none", res.bad)
	}
	for i, px := range got.Pixels {
		if len(px) != 24*40*3 {
			t.Fatalf("row %d (%s): %d pixel bytes, want %d", i, got.Image[i], len(px), 24*40*3)
		}
		if !bytes.Equal(px, reference(t, in, i, p)) {
			t.Errorf("row %d (%s): pixels differ from Load, CropBox, Fit", i, got.Image[i])
		}
		// The crop is one flat colour; JPEG rounding and edge blur stay
		// within a small tolerance away from the border.
		want := colours[got.Image[i]]
		for _, at := range [][2]int{{2, 2}, {12, 20}, {21, 37}} {
			j := 3 * (at[0]*40 + at[1])
			if !near(px[j:j+3], want, 12) {
				t.Errorf("row %d (%s): pixel %v = %v, want about %v", i, got.Image[i], at, px[j:j+3], want)
			}
		}
	}
}

func near(rgb []byte, c color.NRGBA, tol int) bool {
	d := func(a, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
	return d(rgb[0], c.R) <= tol && d(rgb[1], c.G) <= tol && d(rgb[2], c.B) <= tol
}

func TestMarginWidensTheBox(t *testing.T) {
	in, _ := mixedDataset(t)
	in = rowsOf(in, "img/boxed.png") // red 40x40 box in a green 100x80 image
	p := images.NewParams()
	p.ImageSize = images.Size{30, 30}
	p.Margin = 0.25 // 10 px of green on every side: a sixth of the crop
	res, err := materialise(t, in, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	px := res.images.Pixels[0]
	at := func(y, x int) []byte { return px[3*(y*30+x) : 3*(y*30+x)+3] }
	if !near(at(1, 1), green, 12) || !near(at(15, 15), red, 12) {
		t.Errorf("corner %v, centre %v: want green around a red centre", at(1, 1), at(15, 15))
	}
}

// badDataset has good images and every kind of bad one, in this order.
func badDataset(t *testing.T) *artifacts.Samples {
	t.Helper()
	root := t.TempDir()
	good := encodeJPEG(t, framed(32, 32, blue, blue, image.Rectangle{}))
	writeFile(t, root, "img/good1.jpg", good)
	writeFile(t, root, "img/empty.jpg", nil)
	writeFile(t, root, "img/truncated.jpg", good[:len(good)/2])
	writeFile(t, root, "img/good2.png", encodePNG(t, framed(20, 30, red, red, image.Rectangle{})))
	writeFile(t, root, "img/corrupt.jpg", bytes.Repeat([]byte("not an image "), 20))
	writeFile(t, root, "img/huge.png", hugePNGHeader(60000, 60000))
	return samplesOf(root, "val", []row{
		{image: "img/good1.jpg"},
		{image: "img/missing.jpg", bbox: box(0, 0, 10, 10)},
		{image: "img/empty.jpg"},
		{image: "img/truncated.jpg"},
		{image: "img/good2.png", bbox: box(2, 2, 18, 28)},
		{image: "img/corrupt.jpg"},
		{image: "img/huge.png"},
	})
}

func TestSkipBadImages(t *testing.T) {
	in := badDataset(t)
	p := images.NewParams()
	p.ImageSize = images.Size{16, 16}
	p.OnBadImage = "skip"
	var log syncBuffer
	res, err := materialise(t, in, p, &log)
	if err != nil {
		t.Fatal(err)
	}

	want := rowsOf(in, "img/good1.jpg", "img/good2.png")
	if diff := cmp.Diff(want, withoutPixels(res.images), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("kept rows (-want +got):\n%s", diff)
	}
	wantBad := []struct{ image, reason string }{
		{"img/missing.jpg", "no such file"},
		{"img/empty.jpg", pixels.ErrEmpty.Error()},
		{"img/truncated.jpg", "truncated"},
		{"img/corrupt.jpg", "unknown format"},
		{"img/huge.png", pixels.ErrTooLarge.Error()},
	}
	if len(res.bad) != len(wantBad) {
		t.Fatalf("bad_images has %d rows, want %d: %v", len(res.bad), len(wantBad), res.bad)
	}
	for i, w := range wantBad {
		b := res.bad[i]
		if b.Image != w.image || b.Partition != "val" || !strings.Contains(b.Reason, w.reason) {
			t.Errorf("bad_images row %d = %+v, want %s in val with a reason containing %q", i, b, w.image, w.reason)
		}
		// Reasons name the file relative to the root, as on every machine.
		if strings.Contains(b.Reason, in.Root) || !strings.Contains(b.Reason, w.image) {
			t.Errorf("bad_images row %d: reason %q should name %s relative to the root", i, b.Reason, w.image)
		}
	}

	// One warning with the count, one debug line per skipped image.
	text := log.String()
	if n := strings.Count(text, "level=WARN"); n != 1 || !strings.Contains(text, "count=5") {
		t.Errorf("want one warning saying count=5, got %d warnings:\n%s", n, text)
	}
	for _, w := range wantBad {
		if !strings.Contains(text, "level=DEBUG msg=\"bad image skipped\" image="+w.image) {
			t.Errorf("no debug line names %s:\n%s", w.image, text)
		}
	}
}

func TestErrorModeNamesTheFirstBadFile(t *testing.T) {
	in := badDataset(t)
	// The missing file fails fastest, but truncated.jpg comes first in the
	// input, and the first bad image in input order is the one reported.
	in = rowsOf(in, "img/good1.jpg", "img/truncated.jpg", "img/good2.png", "img/missing.jpg")
	p := images.NewParams()
	p.Workers = 4
	_, err := materialise(t, in, p, nil)
	if err == nil {
		t.Fatal("a truncated JPEG with on_bad_image: error succeeded")
	}
	for _, want := range []string{"img/truncated.jpg", "row 1", "truncated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestSameInputSameArtifact(t *testing.T) {
	in := badDataset(t)
	mixed, _ := mixedDataset(t)
	// Rows from two roots cannot share a table; move the bad rows under
	// the mixed root by name only, so they are all missing there.
	for i := range in.Len() {
		mixed.Append(in, i)
	}
	p := images.NewParams()
	p.ImageSize = images.Size{20, 20}
	p.OnBadImage = "skip"
	var ids [][2]artifacts.ID
	for _, workers := range []int{1, 3, 0} {
		p.Workers = workers
		res, err := materialise(t, mixed, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, [2]artifacts.ID{res.imagesID, res.badID})
	}
	for _, got := range ids[1:] {
		if got != ids[0] {
			t.Errorf("images, bad_images ids %v with other workers, want %v", got, ids[0])
		}
	}
}

func TestEmptySamples(t *testing.T) {
	res, err := materialise(t, samplesOf(t.TempDir(), "test", nil), images.NewParams(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.images.Len() != 0 || res.images.Height != 224 || len(res.bad) != 0 {
		t.Errorf("empty input gave %d rows of %dx%d and %d bad images, want an empty 224x224 table",
			res.images.Len(), res.images.Height, res.images.Width, len(res.bad))
	}
}

func TestRefusesImagesTable(t *testing.T) {
	run := pipelinetest.NewRun(t, "images-test")
	id, err := run.St.PutSamples(&artifacts.Samples{NumAttributes: 1, Pixels: [][]byte{}, Height: 2, Width: 2})
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("samples", id)
	err = images.New().Run(t.Context(), run, images.NewParams())
	if err == nil || !strings.Contains(err.Error(), "images table already") {
		t.Errorf("an images table as input: err = %v, want a refusal", err)
	}
}

func TestBatchesAreBounded(t *testing.T) {
	in, _ := mixedDataset(t)
	for in.Len() < 700 {
		in.Append(in, in.Len()%8)
	}
	p := images.NewParams()
	p.ImageSize = images.Size{8, 8}
	res, err := materialise(t, in, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	sizes := batchSizes(t, res.store, res.imagesID)
	if diff := cmp.Diff([]int64{256, 256, 188}, sizes); diff != "" {
		t.Errorf("record batch sizes (-want +got):\n%s", diff)
	}
}

func TestBatchRows(t *testing.T) {
	for _, tc := range []struct {
		size images.Size
		want int
	}{
		{images.Size{64, 64}, 256},
		{images.Size{224, 224}, 222},
		{images.Size{512, 512}, 42},
		{images.Size{1024, 1024}, 10},
	} {
		if got := images.BatchRows(tc.size); got != tc.want {
			t.Errorf("BatchRows(%v) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		want    images.Size
		wantErr string
	}{
		{yaml: "image_size: 224", want: images.Size{224, 224}},
		{yaml: "image_size: [32, 48]", want: images.Size{32, 48}},
		{yaml: "image_size: [1, 2, 3]", wantErr: "got 3 items"},
		{yaml: "image_size: big", wantErr: `want an integer, got "big"`},
		{yaml: "image_size: 32.5", wantErr: "want an integer, got 32.5"},
		{yaml: "image_size: [32, 48.5]", wantErr: "want an integer, got 48.5"},
		{yaml: "image_size: 32.0", want: images.Size{32, 32}},
		{yaml: "image_size: 0", wantErr: "image_size [0, 0]"},
		{yaml: "image_size: [2000, 20]", wantErr: "1 to 1024"},
		{yaml: "{image_size: 8, margin: -1}", wantErr: "margin -1"},
		{yaml: "{image_size: 8, on_bad_image: ignore}", wantErr: "on_bad_image \"ignore\""},
		{yaml: "{image_size: 8, workers: -2}", wantErr: "workers"},
		{yaml: "{image_size: 8, workers: 1e12}", wantErr: "workers 1000000000000: want 0 (one per core) to 1024"},
	} {
		p := images.NewParams()
		err := yaml.Unmarshal([]byte(tc.yaml), p)
		if err == nil {
			err = p.Validate()
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.wantErr == "" && p.ImageSize != tc.want:
			t.Errorf("%s: image_size %v, want %v", tc.yaml, p.ImageSize, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want one containing %q", tc.yaml, err, tc.wantErr)
		}
	}

	// Validate's errors name their key, so the pipeline file's error
	// points at its line.
	p := images.NewParams()
	p.Workers, p.Margin = -1, math.NaN()
	var keys []string
	for _, e := range p.Validate().(interface{ Unwrap() []error }).Unwrap() {
		var pe *pipeline.ParamError
		if errors.As(e, &pe) {
			keys = append(keys, pe.Key)
		}
	}
	if !slices.Equal(keys, []string{"margin", "workers"}) {
		t.Errorf("keys of Validate's errors: %v, want margin and workers", keys)
	}
}

// batchSizes returns the row counts of the record batches of object id.
func batchSizes(t *testing.T, store *artifacts.Store, id artifacts.ID) []int64 {
	t.Helper()
	f, err := os.Open(store.Path(id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	var sizes []int64
	for i := range fr.NumRecords() {
		rec, err := fr.RecordBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, rec.NumRows())
	}
	return sizes
}

func TestCancelledRunStoresNothing(t *testing.T) {
	in, _ := mixedDataset(t)
	run := pipelinetest.NewRun(t, "images-test")
	id, err := run.St.PutSamples(in)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("samples", id)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := images.New().Run(ctx, run, images.NewParams()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: err = %v, want context.Canceled", err)
	}
	if _, err := run.Output("images"); err == nil {
		t.Error("a cancelled run set its images output")
	}
}

// Boxes beyond their images are a counted tolerance: clipped to the image,
// or the whole image when nothing of the box is inside, and one warning
// with both counts.
func TestBoxesBeyondTheImage(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "img/a.png", encodePNG(t, framed(40, 30, red, red, image.Rectangle{})))
	in := samplesOf(root, "train", []row{
		{image: "img/a.png", bbox: box(5, 5, 20, 20)},   // inside
		{image: "img/a.png", bbox: box(30, 20, 60, 50)}, // clipped
		{image: "img/a.png", bbox: box(10, 5, 80, 25)},  // clipped
		{image: "img/a.png", bbox: box(50, 40, 60, 50)}, // outside: whole image
	})
	p := images.NewParams()
	p.ImageSize = images.Size{8, 8}
	var log syncBuffer
	res, err := materialise(t, in, p, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.images.Pixels) != 4 {
		t.Fatalf("%d rows, want 4", len(res.images.Pixels))
	}
	if got := log.String(); !strings.Contains(got, "bounding boxes beyond their images") ||
		!strings.Contains(got, "clipped=2") || !strings.Contains(got, "empty=1") {
		t.Errorf("log lacks the warning with clipped=2 empty=1:\n%s", got)
	}
}
