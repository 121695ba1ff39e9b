package artifacts

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSamplesRoundTrip(t *testing.T) {
	store, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := &Samples{
		Root: "/data/x", NumAttributes: 3,
		Image:     []string{"img/a b.jpg", "img/ü.jpg"},
		Partition: []string{"train", "train"},
		Category:  []int32{3, 0},
		BBox:      [][4]int32{{1, 2, 3, 4}, {}},
		HasBBox:   []bool{true, false},
		Landmarks: [][]int32{{5, 6}, nil},
		Labels:    []int8{1, -1, 0, 0, 1, -1},
	}
	id, err := store.PutSamples(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := store.GetSamples(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("samples round trip (-want +got):\n%s", diff)
	}
	again, err := store.PutSamples(out)
	if err != nil {
		t.Fatal(err)
	}
	if again != id {
		t.Errorf("re-encoding changed the id: %s then %s", id.Short(), again.Short())
	}
}

func TestModelAndPredictionsRoundTrip(t *testing.T) {
	store, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Model{ONNX: []byte{1, 2, 3}, Meta: ModelMeta{Input: "x", Output: "y", Height: 8, Width: 8,
		Scale: 255, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{1, 1, 1},
		Attributes: []Attribute{{Index: 0, Name: "a", Type: 1, TypeName: "texture"}}}}
	id, err := store.PutModel(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetModel(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("model round trip (-want +got):\n%s", diff)
	}
	if _, err := store.GetPredictions(id); err == nil {
		t.Error("reading a model as predictions: want a kind error")
	}

	p := &Predictions{NumAttributes: 2, Image: []string{"a", "b"}, Scores: []float32{0.1, 0.9, 0.5, 0.25}}
	pid, err := store.PutPredictions(p)
	if err != nil {
		t.Fatal(err)
	}
	gotP, err := store.GetPredictions(pid)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, gotP); diff != "" {
		t.Errorf("predictions round trip (-want +got):\n%s", diff)
	}
}

func TestReadOnlyStoreKeepsCorruptObjects(t *testing.T) {
	dir := t.TempDir()
	store, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.Put([]byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	path := store.Path(id)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenStoreReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.Get(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only Get of a tampered object: %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the read-only store removed the corrupt object: %v", err)
	}
	if _, err := store.Get(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a tampered object: %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store kept a corrupt object: %v", err)
	}
}

func TestPredictionsWithCategoriesRoundTrip(t *testing.T) {
	store, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Columns in the model's order, which need not be id order.
	p := &Predictions{
		NumAttributes: 2, Image: []string{"a", "b"}, Scores: []float32{0.1, 0.9, 0.5, 0.25},
		NumCategories: 3, CategoryScores: []float32{0.2, 0.7, 0.1, 0.6, 0.3, 0.1},
		Categories:     []Category{{ID: 2, Name: "Skirt", BodyType: 2}, {ID: 5, Name: "Dress"}, {ID: 1, Name: "Tee"}},
		AttributeNames: []string{"floral", "denim"},
	}
	id, err := store.PutPredictions(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetPredictions(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("predictions with categories round trip (-want +got):\n%s", diff)
	}
	if again, err := store.PutPredictions(got); err != nil || again != id {
		t.Errorf("re-encoding: id %s, %v; want %s", again.Short(), err, id.Short())
	}

	// Without category scores the table is what it was before predictions
	// could carry them: same schema, so the same bytes and id.
	plain := &Predictions{NumAttributes: 2, Image: p.Image, Scores: p.Scores}
	plainID, err := store.PutPredictions(plain)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := store.GetTable(plainID)
	if err != nil {
		t.Fatal(err)
	}
	schema := tbl.Schema()
	tbl.Release()
	if !schema.Equal(PredictionsSchema(2)) || !cmp.Equal(schema.Metadata(), PredictionsSchema(2).Metadata()) {
		t.Errorf("schema without categories = %v, want %v", schema, PredictionsSchema(2))
	}
	gotPlain, err := store.GetPredictions(plainID)
	if err != nil {
		t.Fatal(err)
	}
	if gotPlain.NumCategories != 0 || gotPlain.CategoryScores != nil || gotPlain.Categories != nil {
		t.Errorf("predictions without categories read as %d categories, %d scores, %v",
			gotPlain.NumCategories, len(gotPlain.CategoryScores), gotPlain.Categories)
	}

	for _, bad := range []*Predictions{
		{NumAttributes: 2, Image: p.Image, Scores: p.Scores, NumCategories: 3,
			CategoryScores: p.CategoryScores[:5], Categories: p.Categories},
		{NumAttributes: 2, Image: p.Image, Scores: p.Scores, NumCategories: 2,
			CategoryScores: p.CategoryScores[:4], Categories: p.Categories},
		{NumAttributes: 2, Image: p.Image, Scores: p.Scores, NumCategories: 2,
			CategoryScores: p.CategoryScores[:4], Categories: []Category{{ID: 3}, {ID: 3}}},
	} {
		if _, err := store.PutPredictions(bad); err == nil {
			t.Errorf("PutPredictions accepted %d categories %v with %d scores",
				bad.NumCategories, bad.Categories, len(bad.CategoryScores))
		}
	}
}

func TestModelMetaCategoriesRoundTrip(t *testing.T) {
	store, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Model{ONNX: []byte{1}, Meta: ModelMeta{Input: "x", Output: "logits", CategoryOutput: "category_logits",
		Categories: []Category{{ID: 1, Name: "Tee", BodyType: 1}, {ID: 2, Name: "Skirt", BodyType: 2}}}}
	id, err := store.PutModel(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetModel(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("model with categories round trip (-want +got):\n%s", diff)
	}
}

func TestCategoryColumns(t *testing.T) {
	col, err := CategoryColumns([]Category{{ID: 7, Name: "Tee"}, {ID: 2, Name: "Dress"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int32]int{7: 0, 2: 1}, col); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	for _, bad := range [][]Category{{{ID: 1}, {ID: 1}}, {{ID: 0}}, {{ID: -3}}} {
		if _, err := CategoryColumns(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
