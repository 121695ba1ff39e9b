package synth

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/partitions"
	"stitch/stages/pixels"
)

// hashTree hashes every file under dir, by relative path.
func hashTree(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sums[rel] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func TestGenerateReadsInBothLayouts(t *testing.T) {
	out := t.TempDir()
	opts := DefaultOptions(out)
	opts.N = 60
	opts.Size = 64
	sum, err := Generate(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Out: out, Images: 60, Train: 42, Val: 9, Test: 9, Attributes: 25, Categories: 5,
		Positives: sum.Positives, Unknown: sum.Unknown}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if sum.Unknown == 0 {
		t.Error("no unknown labels in the coarse layout")
	}

	coarse, err := partitions.Read(t.Context(), &partitions.Params{Root: out, Layout: "coarse", CheckImages: true})
	if err != nil {
		t.Fatal(err)
	}
	fine, err := partitions.Read(t.Context(), &partitions.Params{Root: out, Layout: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for p := range 3 {
		c, f := coarse.Partitions[p], fine.Partitions[p]
		if diff := cmp.Diff(c.Image, f.Image); diff != "" {
			t.Fatalf("images (-coarse +fine):\n%s", diff)
		}
		if diff := cmp.Diff(c.BBox, f.BBox); diff != "" {
			t.Errorf("boxes (-coarse +fine):\n%s", diff)
		}
		if diff := cmp.Diff(c.Category, f.Category); diff != "" {
			t.Errorf("categories (-coarse +fine):\n%s", diff)
		}
		for i, v := range c.Labels {
			switch {
			case v == artifacts.Unknown:
				unknown++
				if f.Labels[i] != artifacts.Absent {
					t.Fatalf("label %d: coarse unknown, fine %d; want absent", i, f.Labels[i])
				}
			case v != f.Labels[i]:
				t.Fatalf("label %d: coarse %d, fine %d", i, v, f.Labels[i])
			}
		}
		for r := range c.Len() {
			if !c.HasBBox[r] || c.Category[r] < 1 {
				t.Fatalf("%s: box %v, category %d", c.Image[r], c.HasBBox[r], c.Category[r])
			}
			b := c.BBox[r]
			if b[0] < 0 || b[1] < 0 || b[2] > 64 || b[3] > 64 || b[2]-b[0] < 10 || b[3]-b[1] < 10 {
				t.Fatalf("%s: box %v outside the 64 px image or tiny", c.Image[r], b)
			}
			for _, lm := range [][]int32{c.Landmarks[r], f.Landmarks[r]} {
				if slices.ContainsFunc(lm, func(v int32) bool { return v < 0 || v >= 64 }) {
					t.Fatalf("%s: landmarks %v outside the 64 px image", c.Image[r], lm)
				}
			}
		}
	}
	if unknown != sum.Unknown {
		t.Errorf("%d unknown labels read back, summary says %d", unknown, sum.Unknown)
	}
	img, err := pixels.Load(filepath.Join(out, coarse.Partitions[0].Image[0]))
	if err != nil {
		t.Fatal(err)
	}
	if img.Rect.Dx() != 64 || img.Rect.Dy() != 64 {
		t.Errorf("image size %v, want 64x64", img.Rect)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for i, dir := range []string{a, b} {
		opts := Options{Out: dir, N: 12, Seed: 7, Size: 48, UnknownFraction: 0.05, Workers: 1 + i}
		if _, err := Generate(t.Context(), opts); err != nil {
			t.Fatal(err)
		}
	}
	ha, hb := hashTree(t, a), hashTree(t, b)
	// The README names nothing run-specific, so whole trees must agree.
	if diff := cmp.Diff(ha, hb); diff != "" {
		t.Errorf("two runs with the same options differ (-a +b):\n%s", diff)
	}
	c := t.TempDir()
	if _, err := Generate(t.Context(), Options{Out: c, N: 12, Seed: 8, Size: 48}); err != nil {
		t.Fatal(err)
	}
	if hc := hashTree(t, c); hc["img/synth_000001.jpg"] == ha["img/synth_000001.jpg"] {
		t.Error("another seed drew the same first image")
	}
}

func TestGenerateSmallAndFast(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		opts := DefaultOptions(t.TempDir())
		opts.N, opts.Size = n, 32
		if _, err := Generate(t.Context(), opts); err != nil {
			t.Fatalf("n %d: %v", n, err)
		}
		if _, err := partitions.Read(t.Context(), &partitions.Params{Root: opts.Out, Layout: "coarse"}); err != nil {
			t.Fatalf("n %d: %v", n, err)
		}
	}
	if testing.Short() {
		return
	}
	start := time.Now()
	if _, err := Generate(t.Context(), DefaultOptions(t.TempDir())); err != nil {
		t.Fatal(err)
	}
	t.Logf("400 images of 128 px in %v", time.Since(start))
}

func TestGenerateBadOptions(t *testing.T) {
	for _, opts := range []Options{{N: 1, Size: 64}, {Out: "x", N: 0, Size: 64}, {Out: "x", N: 1, Size: 8},
		{Out: "x", N: 1, Size: 64, UnknownFraction: 1}} {
		if _, err := Generate(t.Context(), opts); err == nil {
			t.Errorf("%+v: no error", opts)
		}
	}
}

func TestKindRun(t *testing.T) {
	run := pipelinetest.NewRun(t, "synth")
	p := NewParams()
	p.Out, p.N, p.Size = filepath.Join(t.TempDir(), "data"), 8, 32
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := New().Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("manifest")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := run.Store().GetTable(id)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() < 5 || artifacts.KindOf(tbl.Schema()) != artifacts.KindTable {
		t.Errorf("manifest: %d rows, kind %q", tbl.NumRows(), artifacts.KindOf(tbl.Schema()))
	}
}

// Generate refuses a folder that holds anything but an earlier synth
// dataset, and replaces an earlier one whole: a smaller n leaves no stale
// images beside the new annotations.
func TestGenerateOutFolder(t *testing.T) {
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "Anno"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(t.Context(), Options{Out: other, N: 3, Seed: 1, Size: 32})
	if err == nil || !strings.Contains(err.Error(), "holds no earlier synth dataset") {
		t.Fatalf("error %v, want a refusal of the non-empty folder", err)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 1 {
		t.Errorf("the refused folder was written: %d entries", len(entries))
	}

	dir := t.TempDir()
	for _, n := range []int{5, 2} {
		if _, err := Generate(t.Context(), Options{Out: dir, N: n, Seed: 1, Size: 32}); err != nil {
			t.Fatalf("n %d: %v", n, err)
		}
	}
	imgs, err := os.ReadDir(filepath.Join(dir, "img"))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Errorf("%d images after n 5 then n 2, want 2", len(imgs))
	}
}
