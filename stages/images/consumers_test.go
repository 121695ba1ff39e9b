package images_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/internal/testenv"
	"stitch/stages/partitions"
	"stitch/stages/predict"
)

// TestPredictReadsImagesTable feeds the images table to predict's input
// function: it must use the stored pixels, which have the model's size.
func TestPredictReadsImagesTable(t *testing.T) {
	in, _ := mixedDataset(t)
	p := sized(12, 20)
	res, err := materialise(t, in, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	meta := artifacts.ModelMeta{Height: 12, Width: 20, Scale: 255, Std: [3]float32{1, 1, 1}}
	// Remove the files: predict must not need them any more.
	if err := os.RemoveAll(filepath.Join(in.Root, "img")); err != nil {
		t.Fatal(err)
	}
	fill := predict.SamplesFill(res.images, meta, true, 0.1, nil)
	const plane = 12 * 20
	got := make([]float32, 3*plane)
	for i := range res.images.Len() {
		if err := fill(t.Context(), i, got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		want := make([]float32, 3*plane)
		for j := range plane {
			for c := range 3 {
				want[c*plane+j] = float32(res.images.Pixels[i][3*j+c]) / 255
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("row %d: predict's input is not the stored pixels (-want +got):\n%s", i, diff)
		}
	}
}

// sharedData returns ../shared/data/name beside the module root.
func sharedData(t *testing.T, name string) string {
	t.Helper()
	return testenv.Shared(t, "data", name)
}

// TestDeepFashionVal materialises the real val partition at 64 px.
func TestDeepFashionVal(t *testing.T) {
	root := sharedData(t, "deepfashion-fine-357")
	ds, err := partitions.Read(t.Context(), &partitions.Params{Root: root, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	val := ds.Partitions[1]
	res, err := materialise(t, val, sized(64, 64), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := res.images
	if got.Len() != 50 || len(res.bad) != 0 {
		t.Fatalf("%d rows and %d bad images, want 50 and 0", got.Len(), len(res.bad))
	}
	if diff := cmp.Diff(val.Image, got.Image); diff != "" {
		t.Errorf("row order (-val +images):\n%s", diff)
	}
	for i, px := range got.Pixels {
		if len(px) != 64*64*3 {
			t.Fatalf("row %d: %d pixel bytes, want %d", i, len(px), 64*64*3)
		}
		if !val.HasBBox[i] {
			t.Errorf("row %d (%s) has no box; the README gives one per image", i, got.Image[i])
		}
	}
}
