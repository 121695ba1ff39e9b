package partitions

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/internal/testenv"
	"stitch/pipeline/pipelinetest"
)

// sharedData returns ../shared/data/name beside the module root.
func sharedData(t *testing.T, name string) string {
	t.Helper()
	return testenv.Shared(t, "data", name)
}

func typeCounts(attrs []artifacts.Attribute) map[string]int {
	counts := map[string]int{}
	for _, a := range attrs {
		counts[a.TypeName]++
	}
	return counts
}

func labelCounts(s *artifacts.Samples) (pos, neg, unknown int) {
	for _, v := range s.Labels {
		switch v {
		case artifacts.Present:
			pos++
		case artifacts.Absent:
			neg++
		default:
			unknown++
		}
	}
	return pos, neg, unknown
}

func TestDeepFashionFine357Coarse(t *testing.T) {
	root := sharedData(t, "deepfashion-fine-357")
	ds, err := Read(t.Context(), &Params{Root: root, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"texture": 7, "fabric": 6, "shape": 3, "part": 10}, typeCounts(ds.Attributes)); diff != "" {
		t.Errorf("attribute types (-want +got):\n%s", diff)
	}
	for i, want := range []int{257, 50, 50} {
		s := ds.Partitions[i]
		if s.Len() != want {
			t.Errorf("%s: %d images, want %d", partitionNames[i], s.Len(), want)
		}
		for r := range s.Len() {
			pos := 0
			for _, v := range s.Row(r) {
				if v == artifacts.Present {
					pos++
				}
				if v == artifacts.Unknown {
					t.Fatalf("%s: unknown label; the README says none occurs", s.Image[r])
				}
			}
			if pos != 6 {
				t.Fatalf("%s: %d positives, want 6 (one per fine group)", s.Image[r], pos)
			}
			if !s.HasBBox[r] {
				t.Fatalf("%s: no bounding box", s.Image[r])
			}
		}
	}
	if len(ds.Categories) != 0 {
		t.Errorf("%d categories, want none", len(ds.Categories))
	}
}

func TestDeepFashionFine357LayoutsAgree(t *testing.T) {
	root := sharedData(t, "deepfashion-fine-357")
	coarse, err := Read(t.Context(), &Params{Root: root, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	fine, err := Read(t.Context(), &Params{Root: root, Layout: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"texture": 7, "sleeve": 3, "length": 3, "neckline": 4, "fabric": 6, "fit": 3}
	if diff := cmp.Diff(want, typeCounts(fine.Attributes)); diff != "" {
		t.Errorf("fine groups (-want +got):\n%s", diff)
	}
	for i, a := range fine.Attributes {
		if a.Name != coarse.Attributes[i].Name {
			t.Errorf("attribute %d: fine %q, coarse %q", i, a.Name, coarse.Attributes[i].Name)
		}
	}
	for p := range partitionNames {
		c, f := coarse.Partitions[p], fine.Partitions[p]
		if diff := cmp.Diff(c.Image, f.Image); diff != "" {
			t.Errorf("%s images (-coarse +fine):\n%s", partitionNames[p], diff)
		}
		if diff := cmp.Diff(c.Labels, f.Labels); diff != "" {
			t.Errorf("%s labels (-coarse +fine):\n%s", partitionNames[p], diff)
		}
		if diff := cmp.Diff(c.BBox, f.BBox); diff != "" {
			t.Errorf("%s boxes (-coarse +fine):\n%s", partitionNames[p], diff)
		}
		for r, marks := range f.Landmarks {
			if len(marks) != 16 {
				t.Fatalf("%s: %d landmark values, want 16", f.Image[r], len(marks))
			}
		}
	}
}

func TestDeepFashionFine357AttrType(t *testing.T) {
	root := sharedData(t, "deepfashion-fine-357")
	all, err := Read(t.Context(), &Params{Root: root, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	part, err := Read(t.Context(), &Params{Root: root, Layout: "coarse", AttrType: 4})
	if err != nil {
		t.Fatal(err)
	}
	var cols []int
	for j, a := range all.Attributes {
		if a.Type == 4 {
			cols = append(cols, j)
		}
	}
	if len(part.Attributes) != 10 || len(cols) != 10 {
		t.Fatalf("attr_type 4: %d attributes, want 10", len(part.Attributes))
	}
	for k, j := range cols {
		got, want := part.Attributes[k], all.Attributes[j]
		want.Index = k
		if got != want {
			t.Errorf("attribute %d = %+v, want %+v", k, got, want)
		}
	}
	s, full := part.Partitions[0], all.Partitions[0]
	for r := range s.Len() {
		for k, j := range cols {
			if s.Row(r)[k] != full.Row(r)[j] {
				t.Fatalf("row %d column %d: %d, want %d", r, k, s.Row(r)[k], full.Row(r)[j])
			}
		}
		pos := 0
		for _, v := range s.Row(r) {
			if v == artifacts.Present {
				pos++
			}
		}
		if pos != 3 { // sleeve, length and neckline: one each
			t.Fatalf("row %d: %d part positives, want 3", r, pos)
		}
	}
}

// The expected label counts were verified independently:
//
//	tail -n +3 Anno/list_attr_img.txt | awk '{for(i=2;i<=NF;i++){
//	  if($i==0)u++; if($i==1)p++; if($i==-1)a++}} END{print u,p,a}'
//	10362 11862 44592
func TestClothingAttributes1856(t *testing.T) {
	root := sharedData(t, "clothing-attributes-1856")
	ds, err := Read(t.Context(), &Params{Root: root, Layout: "coarse", CheckImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Attributes) != 36 {
		t.Errorf("%d attributes, want 36", len(ds.Attributes))
	}
	if diff := cmp.Diff(map[string]int{"texture": 17, "shape": 7, "part": 10, "style": 2}, typeCounts(ds.Attributes)); diff != "" {
		t.Errorf("attribute types (-want +got):\n%s", diff)
	}
	if len(ds.Categories) != 7 {
		t.Errorf("%d categories, want 7", len(ds.Categories))
	}
	var pos, neg, unknown, withCategory int
	for p, s := range ds.Partitions {
		for r, image := range s.Image {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(image, "img/"), ".jpg"))
			if err != nil {
				t.Fatalf("image %q: %v", image, err)
			}
			want := 0
			switch m := n % 20; {
			case m >= 17:
				want = 2
			case m >= 14:
				want = 1
			}
			if p != want {
				t.Fatalf("%s in %s, want %s (number mod 20)", image, partitionNames[p], partitionNames[want])
			}
			if s.Category[r] != 0 {
				withCategory++
			}
		}
		a, b, c := labelCounts(s)
		pos, neg, unknown = pos+a, neg+b, unknown+c
	}
	got := []int{ds.Partitions[0].Len(), ds.Partitions[1].Len(), ds.Partitions[2].Len(), withCategory}
	if diff := cmp.Diff([]int{1301, 279, 276, 1104}, got); diff != "" {
		t.Errorf("train, val, test, with category (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{11862, 44592, 10362}, []int{pos, neg, unknown}); diff != "" {
		t.Errorf("positive, absent, unknown labels (-want +got):\n%s", diff)
	}
}

func TestRunStoresOutputs(t *testing.T) {
	root := sharedData(t, "clothing-attributes-1856")
	run := pipelinetest.NewRun(t, "split")
	p := NewParams()
	p.Root = root
	if err := New().Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	ds, err := Read(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("attributes")
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := run.Store().GetAttributes(id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ds.Attributes, attrs); diff != "" {
		t.Errorf("stored attributes (-want +got):\n%s", diff)
	}
	id, err = run.Output("categories")
	if err != nil {
		t.Fatal(err)
	}
	if cats, err := run.Store().GetCategories(id); err != nil || len(cats) != 7 {
		t.Errorf("stored categories: %d, %v; want 7", len(cats), err)
	}
	for p, name := range partitionNames {
		id, err := run.Output(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := run.Store().GetSamples(id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ds.Partitions[p], s); diff != "" {
			t.Errorf("stored %s (-want +got):\n%s", name, diff)
		}
	}
}
