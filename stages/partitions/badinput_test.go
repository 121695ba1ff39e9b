package partitions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"stitch/artifacts"
	"stitch/pipeline"
)

// coarseFixture is a small valid coarse dataset; tests edit a copy.
func coarseFixture() map[string]string {
	return map[string]string{
		"Anno/list_attr_cloth.txt": "3\nattribute_name  attribute_type\nfloral print   1\ndenim   2\nlong sleeve   4\n",
		"Anno/list_attr_img.txt": "4\nimage_name  attribute_labels\n" +
			"img/a.jpg  1 -1 0\nimg/b.jpg  -1 1 1\nimg/c.jpg  -1 -1 -1\nimg/d.jpg  1 1 -1\n",
		"Anno/list_bbox.txt": "4\nimage_name  x_1  y_1  x_2  y_2\n" +
			"img/a.jpg 1 2 30 40\nimg/b.jpg 0 0 10 10\nimg/c.jpg 5 5 6 6\nimg/d.jpg 072 045 137 154\n",
		"Anno/list_category_cloth.txt": "2\ncategory_name  category_type\nBlouse  1\nMaxi dress  3\n",
		"Anno/list_category_img.txt":   "2\nimage_name  category_label\nimg/a.jpg 1\nimg/d.jpg 2\n",
		"Anno/list_landmarks.txt": "2\nimage_name  clothes_type  variation_type  landmark_visibility_1 ...\n" +
			"img/a.jpg 1 0  0 10 11  1 12 13  2 0 0  0 14 15  0 16 17  0 18 19\n" +
			"img/c.jpg 2 1  0 1 2  0 3 4  0 5 6  0 7 8\n",
		"Eval/list_eval_partition.txt": "4\nimage_name  evaluation_status\n" +
			"img/a.jpg train\nimg/b.jpg train\nimg/c.jpg val\nimg/d.jpg test\n",
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readCoarseFiles(t *testing.T, files map[string]string) (*Dataset, error) {
	t.Helper()
	return Read(t.Context(), &Params{Root: writeFiles(t, files), Layout: "coarse"})
}

func TestCoarseFixture(t *testing.T) {
	ds, err := readCoarseFiles(t, coarseFixture())
	if err != nil {
		t.Fatal(err)
	}
	train := ds.Partitions[0]
	if diff := cmp.Diff([]string{"img/a.jpg", "img/b.jpg"}, train.Image); diff != "" {
		t.Errorf("train images (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int8{1, -1, 0, -1, 1, 1}, train.Labels); diff != "" {
		t.Errorf("train labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1, 0}, train.Category); diff != "" {
		t.Errorf("train categories (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{10, 11, 12, 13, 0, 0, 14, 15, 16, 17, 18, 19}, train.Landmarks[0]); diff != "" {
		t.Errorf("landmarks of a (-want +got):\n%s", diff)
	}
	test := ds.Partitions[2]
	if !test.HasBBox[0] || test.BBox[0] != [4]int32{72, 45, 137, 154} || test.Category[0] != 2 {
		t.Errorf("test row: box %v %v category %d", test.HasBBox[0], test.BBox[0], test.Category[0])
	}
	want := []artifacts.Category{{ID: 1, Name: "Blouse", BodyType: 1}, {ID: 2, Name: "Maxi dress", BodyType: 3}}
	if diff := cmp.Diff(want, ds.Categories); diff != "" {
		t.Errorf("categories (-want +got):\n%s", diff)
	}
	if got := ds.Attributes[0]; got.Name != "floral print" || got.TypeName != "texture" {
		t.Errorf("attribute 0 = %+v", got)
	}
}

// TestCoarseBadInput gives each bad input its own case; the error must
// name the file and line.
func TestCoarseBadInput(t *testing.T) {
	const attrImg = "Anno/list_attr_img.txt"
	replace := func(file, old, new string) func(map[string]string) {
		return func(f map[string]string) {
			if !strings.Contains(f[file], old) {
				panic("fixture has no " + old)
			}
			f[file] = strings.Replace(f[file], old, new, 1)
		}
	}
	tests := []struct {
		name string
		edit func(map[string]string)
		want string
	}{
		{"count line too high", replace(attrImg, "4\n", "5\n"),
			"Anno/list_attr_img.txt:1: count line says 5 rows, the file has 4"},
		{"count line not a number", replace(attrImg, "4\n", "four\n"),
			"Anno/list_attr_img.txt:1: want a row count"},
		{"one value too few", replace(attrImg, "img/b.jpg  -1 1 1", "img/b.jpg  -1 1"),
			"Anno/list_attr_img.txt:4: row has 2 label values after the image path, want 3"},
		{"one value too many", replace(attrImg, "img/b.jpg  -1 1 1", "img/b.jpg  -1 1 1 1"),
			"Anno/list_attr_img.txt:4: row has more than 3 label values"},
		{"bad label", replace(attrImg, "img/b.jpg  -1 1 1", "img/b.jpg  -1 2 1"),
			`Anno/list_attr_img.txt:4: bad label "2"`},
		{"no image path", replace(attrImg, "img/b.jpg  -1 1 1", "-1 1 1"),
			"Anno/list_attr_img.txt:4: row has no image path"},
		{"missing header", replace(attrImg, "image_name  attribute_labels\n", ""),
			`Anno/list_attr_img.txt:2: missing header: want a line starting with "image_name"`},
		{"missing attribute header", replace("Anno/list_attr_cloth.txt", "attribute_name  attribute_type\n", ""),
			"Anno/list_attr_cloth.txt:2: missing header"},
		{"type outside 1..5", replace("Anno/list_attr_cloth.txt", "denim   2", "denim   6"),
			`Anno/list_attr_cloth.txt:4: attribute "denim": type 6 outside 1..5`},
		{"type zero", replace("Anno/list_attr_cloth.txt", "denim   2", "denim   0"),
			"Anno/list_attr_cloth.txt:4: attribute \"denim\": type 0 outside 1..5"},
		{"duplicated image row", replace(attrImg, "img/c.jpg  -1 -1 -1", "img/a.jpg  -1 -1 -1"),
			"Anno/list_attr_img.txt:5: image img/a.jpg listed again (first at line 3)"},
		{"duplicated partition row", replace("Eval/list_eval_partition.txt", "img/c.jpg val", "img/a.jpg val"),
			"Eval/list_eval_partition.txt:5: image img/a.jpg listed again (first at line 3)"},
		{"image in partition file not in attribute file", func(f map[string]string) {
			replace(attrImg, "img/c.jpg  -1 -1 -1\n", "")(f)
			replace(attrImg, "4\n", "3\n")(f)
		}, "Eval/list_eval_partition.txt:5: image img/c.jpg is in the partition file but not in Anno/list_attr_img.txt"},
		{"image in attribute file not in partition file", replace(attrImg, "img/c.jpg", "img/x.jpg"),
			"Anno/list_attr_img.txt:5: image img/x.jpg is not in Eval/list_eval_partition.txt"},
		{"unknown partition", replace("Eval/list_eval_partition.txt", "img/c.jpg val", "img/c.jpg validation"),
			`Eval/list_eval_partition.txt:5: partition "validation"`},
		{"bbox value too few", replace("Anno/list_bbox.txt", "img/b.jpg 0 0 10 10", "img/b.jpg 0 10 10"),
			"Anno/list_bbox.txt:4: row has 3 values after the image path, want 4"},
		{"bbox of an unknown image", replace("Anno/list_bbox.txt", "img/b.jpg", "img/z.jpg"),
			"Anno/list_bbox.txt:4: image img/z.jpg is not in Eval/list_eval_partition.txt"},
		{"category out of range", replace("Anno/list_category_img.txt", "img/d.jpg 2", "img/d.jpg 3"),
			"Anno/list_category_img.txt:4: category 3 outside 1..2"},
		{"landmarks width", replace("Anno/list_landmarks.txt", "0 7 8\n", "0 7\n"),
			"Anno/list_landmarks.txt:4: want image path, clothes type"},
		{"one landmark", replace("Anno/list_landmarks.txt", "  0 3 4  0 5 6  0 7 8\n", "\n"),
			"Anno/list_landmarks.txt:4: want image path, clothes type, variation type and 4, 6 or 8"},
		{"clothes type against landmarks", replace("Anno/list_landmarks.txt", "img/c.jpg 2 1", "img/c.jpg 1 1"),
			"Anno/list_landmarks.txt:4: clothes type 1 with 4 landmarks, want 1 (upper body) with 6"},
		{"clothes type unknown", replace("Anno/list_landmarks.txt", "img/c.jpg 2 1", "img/c.jpg 9 1"),
			"Anno/list_landmarks.txt:4: clothes type 9 with 4 landmarks"},
		{"landmark visibility", replace("Anno/list_landmarks.txt", "0 5 6", "7 5 6"),
			"Anno/list_landmarks.txt:4: landmark 3: visibility 7"},
		{"negative landmark", replace("Anno/list_landmarks.txt", "0 5 6", "0 -5 6"),
			"Anno/list_landmarks.txt:4: landmark 3: position (-5, 6)"},
		{"absolute image path", replace("Eval/list_eval_partition.txt", "img/c.jpg val", "/etc/c.jpg val"),
			"Eval/list_eval_partition.txt:5: image path \"/etc/c.jpg\" must be relative"},
		{"missing attribute file", func(f map[string]string) { delete(f, "Anno/list_attr_cloth.txt") },
			"read Anno/list_attr_cloth.txt"},
		{"missing category table", func(f map[string]string) { delete(f, "Anno/list_category_cloth.txt") },
			"read Anno/list_category_img.txt: it needs Anno/list_category_cloth.txt, which is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := coarseFixture()
			tt.edit(files)
			_, err := readCoarseFiles(t, files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCoarseTolerated checks the spellings that must read like the
// fixture: other label notations, CRLF, tabs and runs of spaces.
func TestCoarseTolerated(t *testing.T) {
	want, err := readCoarseFiles(t, coarseFixture())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(map[string]string)
	}{
		{"1.0 and +1", func(f map[string]string) {
			f["Anno/list_attr_img.txt"] = strings.NewReplacer("img/a.jpg  1 -1 0", "img/a.jpg  1.0 -1.0 0.0",
				"img/b.jpg  -1 1 1", "img/b.jpg  -1 +1 +1.00").Replace(f["Anno/list_attr_img.txt"])
		}},
		{"CRLF", func(f map[string]string) {
			for name, content := range f {
				f[name] = strings.ReplaceAll(content, "\n", "\r\n")
			}
		}},
		{"tabs and runs of spaces", func(f map[string]string) {
			for name, content := range f {
				// Only separators change: names keep their inner spaces.
				f[name] = strings.NewReplacer("  ", "\t \t", ".jpg ", ".jpg\t", " -1", "\t-1").Replace(content)
			}
		}},
		{"blank lines, byte order mark, no final newline", func(f map[string]string) {
			f["Anno/list_attr_img.txt"] = "\ufeff" + strings.ReplaceAll(f["Anno/list_attr_img.txt"], "img/c", "\nimg/c")
			f["Eval/list_eval_partition.txt"] = strings.TrimSuffix(f["Eval/list_eval_partition.txt"], "\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := coarseFixture()
			tt.edit(files)
			got, err := readCoarseFiles(t, files)
			if err != nil {
				t.Fatal(err)
			}
			// The listing lines (unexported) move with the edits.
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b string) bool { return a == b }),
				cmpopts.IgnoreUnexported(Dataset{}),
				cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Root" }, cmp.Ignore())); diff != "" {
				t.Errorf("dataset (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCoarsePathsWithSpacesAndNonASCII(t *testing.T) {
	files := coarseFixture()
	paths := map[string]string{"img/a.jpg": "img/summer dress 01.jpg", "img/b.jpg": "img/veste légère/été №2.jpg"}
	for name, content := range files {
		for old, new := range paths {
			content = strings.ReplaceAll(content, old, new)
		}
		files[name] = content
	}
	files["img/summer dress 01.jpg"] = "x"
	files["img/veste légère/été №2.jpg"] = "x"
	files["img/c.jpg"], files["img/d.jpg"] = "x", "x"
	root := writeFiles(t, files)
	ds, err := Read(t.Context(), &Params{Root: root, Layout: "coarse", CheckImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkImages(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	train := ds.Partitions[0]
	if diff := cmp.Diff([]string{"img/summer dress 01.jpg", "img/veste légère/été №2.jpg"}, train.Image); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int8{1, -1, 0, -1, 1, 1}, train.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if !train.HasBBox[1] || train.BBox[1] != [4]int32{0, 0, 10, 10} {
		t.Errorf("box of the non-ASCII path: %v", train.BBox[1])
	}
}

func TestCheckImagesMissing(t *testing.T) {
	files := coarseFixture()
	files["img/a.jpg"], files["img/b.jpg"], files["img/d.jpg"] = "x", "x", "x"
	root := writeFiles(t, files)
	ds, err := Read(t.Context(), &Params{Root: root, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	err = checkImages(t.Context(), ds)
	if err == nil || !strings.Contains(err.Error(), "1 of 4 listed images are missing") ||
		!strings.Contains(err.Error(), "img/c.jpg (Anno/list_attr_img.txt:5)") {
		t.Fatalf("error %v, want img/c.jpg missing, listed at Anno/list_attr_img.txt:5", err)
	}
}

// A missing image names where the fine and CSV layouts list it.
func TestCheckImagesMissingNamesListing(t *testing.T) {
	fine := fineFixture()
	fine["img/a.jpg"], fine["img/c.jpg"], fine["img/d.jpg"] = "x", "x", "x"
	csvFiles := map[string]string{
		"labels.csv": "image,partition,striped\nimg/a.jpg,train,1\n\nimg/b.jpg,val,0\nimg/c.jpg,test,1\n",
		"img/a.jpg":  "x", "img/c.jpg": "x",
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		p     Params
		want  string
	}{
		{"fine", fine, Params{Layout: "fine"}, "img/b.jpg (Anno_fine/train.txt:2)"},
		{"csv", csvFiles, Params{Layout: "csv", CSV: CSVParams{File: "labels.csv"}}, "img/b.jpg (labels.csv:4)"},
	} {
		tc.p.Root = writeFiles(t, tc.files)
		ds, err := Read(t.Context(), &tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := checkImages(t.Context(), ds); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

func fineFixture() map[string]string {
	return map[string]string{
		"Anno_fine/list_attr_cloth.txt": "3\nattribute_name  attribute_type\nfloral  1\nlong_sleeve  2\ntight  6\n",
		"Anno_fine/train.txt":           "img/a.jpg\nimg/b.jpg\n",
		"Anno_fine/train_attr.txt":      "1 0 0\n0 1 1\n",
		"Anno_fine/train_bbox.txt":      "1 2 30 40\n0 0 10 10\n",
		"Anno_fine/train_landmarks.txt": "1 2 3 4 0 0 0 0 0 0 0 0 0 0 0 0\n0 0 5 6 0 0 0 0 0 0 0 0 0 0 7 8\n",
		"Anno_fine/val.txt":             "img/c.jpg\n",
		"Anno_fine/val_attr.txt":        "0 0 0\n",
		"Anno_fine/test.txt":            "img/d.jpg\n",
		"Anno_fine/test_attr.txt":       "1 1 0\n",
	}
}

func TestFine(t *testing.T) {
	files := fineFixture()
	files["Anno_fine/train_attr.txt"] += "\n\r\n" // blank lines at the end change nothing
	ds, err := Read(t.Context(), &Params{Root: writeFiles(t, files), Layout: "fine"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int8{1, -1, -1, -1, 1, 1}, ds.Partitions[0].Labels); diff != "" {
		t.Errorf("train labels (-want +got):\n%s", diff)
	}
	if got := ds.Attributes[2].TypeName; got != "fit" {
		t.Errorf("type of tight: %q, want fit", got)
	}
	want := [][]int32{{1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8}}
	if diff := cmp.Diff(want, ds.Partitions[0].Landmarks); diff != "" {
		t.Errorf("landmarks (-want +got):\n%s", diff)
	}
	if ds.Partitions[1].HasBBox[0] {
		t.Error("val has no box file but a row has a box")
	}
}

func TestFineBadInput(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"value too few", "Anno_fine/train_attr.txt", "1 0 0\n0 1\n", "Anno_fine/train_attr.txt:2: row has 2 label values, want 3"},
		{"value too many", "Anno_fine/train_attr.txt", "1 0 0 1\n0 1 1\n", "Anno_fine/train_attr.txt:1: row has 4 label values, want 3"},
		{"row missing", "Anno_fine/train_attr.txt", "1 0 0\n",
			"Anno_fine/train_attr.txt: 1 rows, Anno_fine/train.txt lists 2 images; Anno_fine/train.txt:2 (img/b.jpg) is the first without one"},
		{"bbox row missing", "Anno_fine/train_bbox.txt", "1 2 30 40\n",
			"Anno_fine/train_bbox.txt: 1 rows, Anno_fine/train.txt lists 2 images; Anno_fine/train.txt:2 (img/b.jpg) is the first without one"},
		{"row too many", "Anno_fine/val_attr.txt", "0 0 0\n1 1 1\n", "Anno_fine/val_attr.txt:2: more rows than the 1 images of val.txt"},
		{"bad label", "Anno_fine/test_attr.txt", "1 2 0\n", `Anno_fine/test_attr.txt:1: bad label "2"`},
		{"duplicated image", "Anno_fine/test.txt", "img/a.jpg\n", "Anno_fine/test.txt:1: image img/a.jpg listed again (first in Anno_fine/train.txt, line 1)"},
		{"landmarks: two pairs", "Anno_fine/train_landmarks.txt", "1 2 3 4\n0 0 5 6\n",
			"Anno_fine/train_landmarks.txt:1: row has 4 values, want 8 x y pairs"},
		{"landmarks beyond int32", "Anno_fine/train_landmarks.txt",
			"1 2 3 4 0 0 0 0 0 0 0 0 0 0 0 0\n4294967297 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			"Anno_fine/train_landmarks.txt:2: landmark 1: position 4294967297"},
		{"negative landmark", "Anno_fine/train_landmarks.txt",
			"1 2 3 4 0 0 0 0 0 0 0 0 0 0 0 0\n0 0 0 -5 0 0 0 0 0 0 0 0 0 0 0 0\n",
			"Anno_fine/train_landmarks.txt:2: landmark 2: position -5"},
		{"bbox width", "Anno_fine/train_bbox.txt", "1 2 30 40\n0 0 10\n", "Anno_fine/train_bbox.txt:2: row has 3 values, want 4"},
		{"missing header", "Anno_fine/list_attr_cloth.txt", "3\nfloral  1\nlong_sleeve  2\ntight  6\n",
			"Anno_fine/list_attr_cloth.txt:2: missing header"},
		{"category out of range", "Anno_fine/train_cate.txt", "1\n3\n",
			"Anno_fine/train_cate.txt:2: category 3 outside 1..2"},
		// Rows align by position: a blank line would shift later rows
		// onto other images if it were skipped. Trailing ones are fine.
		{"blank line in the labels", "Anno_fine/train_attr.txt", "1 0 0\n\n0 1 1\n",
			"Anno_fine/train_attr.txt:2: blank line between rows"},
		{"blank line in the image list", "Anno_fine/train.txt", "\nimg/a.jpg\nimg/b.jpg\n",
			"Anno_fine/train.txt:1: blank line between rows"},
		{"blank line in the boxes", "Anno_fine/train_bbox.txt", "1 2 30 40\n  \n0 0 10 10\n",
			"Anno_fine/train_bbox.txt:2: blank line between rows"},
		{"missing category table", "Anno_fine/list_category_cloth.txt", "",
			"read Anno_fine/train_cate.txt: it needs Anno_fine/list_category_cloth.txt, which is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fineFixture()
			files["Anno_fine/list_category_cloth.txt"] = "2\ncategory_name  category_type\nBlouse  1\nMaxi dress  3\n"
			files["Anno_fine/train_cate.txt"] = "1\n2\n"
			files[tt.file] = tt.content
			if tt.content == "" {
				delete(files, tt.file) // an empty content stands for a missing file
			}
			_, err := Read(t.Context(), &Params{Root: writeFiles(t, files), Layout: "fine"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCSVWide(t *testing.T) {
	files := map[string]string{
		"labels.csv": "image,partition,category,x1,y1,x2,y2,striped,floral,long sleeves\r\n" +
			"img/0001.jpg,train,3,10,12,200,240,1,-1,\r\n" +
			"\"img/with, comma.jpg\",val,,,,,,-1,+1,1.0\r\n" +
			"img/0003.jpg,test,1,,,,,0,1,-1\r\n",
		"attributes.csv": "name,type\nstriped,1\nfloral,1\nlong sleeves,4\n",
	}
	p := &Params{Root: writeFiles(t, files), Layout: "csv",
		CSV: CSVParams{File: "labels.csv", Attributes: "attributes.csv"}}
	ds, err := Read(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := []artifacts.Attribute{
		{Index: 0, Name: "striped", Type: 1, TypeName: "texture"},
		{Index: 1, Name: "floral", Type: 1, TypeName: "texture"},
		{Index: 2, Name: "long sleeves", Type: 4, TypeName: "part"},
	}
	if diff := cmp.Diff(want, ds.Attributes); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	train, val := ds.Partitions[0], ds.Partitions[1]
	if diff := cmp.Diff([]int8{1, -1, 0}, train.Labels); diff != "" {
		t.Errorf("train labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int8{-1, 1, 1}, val.Labels); diff != "" {
		t.Errorf("val labels (-want +got):\n%s", diff)
	}
	if train.BBox[0] != [4]int32{10, 12, 200, 240} || val.HasBBox[0] || val.Image[0] != "img/with, comma.jpg" {
		t.Errorf("train box %v, val box %v, val image %q", train.BBox[0], val.HasBBox[0], val.Image[0])
	}
	if len(ds.Categories) != 3 || train.Category[0] != 3 {
		t.Errorf("%d categories, train category %d; want 3 and 3", len(ds.Categories), train.Category[0])
	}

	p.AttrType = 4
	part, err := Read(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(part.Attributes) != 1 || part.Partitions[0].Labels[0] != 0 {
		t.Errorf("attr_type 4: %+v, labels %v", part.Attributes, part.Partitions[0].Labels)
	}
}

func TestCSVList(t *testing.T) {
	files := map[string]string{
		"labels.csv":     "image,partition,tags\nimg/1.jpg,train,floral; long sleeves\nimg/2.jpg,test,\n",
		"attributes.csv": "name,type,type_name\nstriped,1,\nfloral,1,\nlong sleeves,4,sleeve\n",
	}
	p := &Params{Root: writeFiles(t, files), Layout: "csv",
		CSV: CSVParams{File: "labels.csv", Attributes: "attributes.csv", LabelsColumn: "tags", ListSeparator: ";"}}
	ds, err := Read(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int8{-1, 1, 1}, ds.Partitions[0].Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if ds.Attributes[2].TypeName != "sleeve" {
		t.Errorf("type name %q, want sleeve", ds.Attributes[2].TypeName)
	}
}

func TestCSVBadInput(t *testing.T) {
	tests := []struct{ name, labels, want string }{
		{"no partition column", "image,striped\na.jpg,1\n", `labels.csv:1: no "partition" column`},
		{"bad label", "image,partition,striped\na.jpg,train,2\n", `labels.csv:2: column "striped": bad label "2"`},
		{"bad partition", "image,partition,striped\na.jpg,dev,1\n", `labels.csv:2: partition "dev"`},
		{"duplicated image", "image,partition,striped\na.jpg,train,1\na.jpg,val,1\n",
			"labels.csv:3: image a.jpg listed again (first at line 2)"},
		{"row too short", "image,partition,striped\na.jpg,train\n", "labels.csv:2: wrong number of fields"},
		{"partial box", "image,partition,x1,y1,striped\na.jpg,train,1,2,1\n", "labels.csv:1: a box needs all of"},
		{"box beyond int32", "image,partition,x1,y1,x2,y2,striped\na.jpg,train,0,0,4294967306,20,1\n",
			"labels.csv:2: bad box [0 0 4294967306 20], want 0 <= x1 <= x2 <= 1048576"},
		{"category zero", "image,partition,category,striped\na.jpg,train,0,1\n",
			`labels.csv:2: category "0", want a 1-based id or nothing`},
		{"category above the limit", "image,partition,category,striped\na.jpg,train,1,1\nb.jpg,val,10001,1\n",
			"labels.csv:3: category 10001 above 10000"},
		{"category beyond int64", "image,partition,category,striped\na.jpg,train,99999999999999999999,1\n",
			`labels.csv:2: category "99999999999999999999", want a 1-based id`},
		// Before any row is read the reader has no position: these once
		// panicked in csv.Reader.FieldPos.
		{"empty file", "", "parse labels.csv:1: empty file, want a header row"},
		{"blank lines only", "\n\r\n\n", "parse labels.csv:1: empty file, want a header row"},
		{"header only", "image,partition,striped\n", "parse labels.csv:1: no rows after the header"},
		{"header only after blank lines", "\n\nimage,partition,striped\n\n",
			"parse labels.csv:3: no rows after the header"},
		{"no image column", "partition,striped\ntrain,1\n", `parse labels.csv:1: no "image" column`},
		{"no image column after blank lines", "\n\npartition,striped\ntrain,1\n",
			`parse labels.csv:3: no "image" column`},
		{"byte order mark only", "\ufeff", "parse labels.csv:1: blank header row, want the column names"},
		{"unnamed column", "image,partition,,striped\na.jpg,train,1,1\n", "parse labels.csv:1: column 3 has no name"},
		{"whitespace lines only", "  \n \t\n", "parse labels.csv:1: blank header row, want the column names"},
		{"blank header of commas", ",,\na.jpg,train,1\n", "parse labels.csv:1: blank header row"},
		{"unterminated quote", "image,partition,striped\n\"a.jpg,train,1\n", "parse labels.csv:2:"},
		{"header quote closed lines later", "image,partition,\"striped\nfloral\"\na.jpg,train,1\n",
			"parse labels.csv:1: column 3 is a quoted field that runs to line 2"},
		{"quote closed lines later", "image,partition,striped\n\"a.jpg,train,1\nb.jpg,train,1\nc.jpg\",train,1\nd.jpg,val,1\n",
			"parse labels.csv:2: column 1 is a quoted field that runs to line 4; no column holds a line break"},
		// The quote opened at line 3 runs to the end: the error names line 3.
		{"unterminated quote, rows after", "image,partition,striped\na.jpg,train,1\n\"b.jpg,train,1\nc.jpg,train,1\nd.jpg,val,1\n",
			"parse labels.csv:3: extraneous or missing \" in quoted-field (the record starts there; its quote is still open at line 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, map[string]string{"labels.csv": tt.labels})
			_, err := Read(t.Context(), &Params{Root: root, Layout: "csv", CSV: CSVParams{File: "labels.csv"}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCSVBadAttributeTable is TestCSVBadInput for csv.attributes.
func TestCSVBadAttributeTable(t *testing.T) {
	tests := []struct{ name, attrs, want string }{
		{"empty file", "", "parse attributes.csv:1: empty file, want a header row"},
		{"blank lines only", "\n\n", "parse attributes.csv:1: empty file, want a header row"},
		{"header only", "name,type\n", "parse attributes.csv:1: no attribute rows after the header"},
		{"header only after a blank line", "\nname,type\n", "parse attributes.csv:2: no attribute rows after the header"},
		{"byte order mark only", "\ufeff", "parse attributes.csv:1: blank header row"},
		{"empty name", "name,type\nstriped,1\n ,2\n", "parse attributes.csv:3: attribute with an empty name"},
		{"name twice", "name,type\nstriped,1\nstriped,2\n",
			`parse attributes.csv:3: attribute "striped" listed again (first at line 2)`},
		{"no type column", "\nname\nstriped\n", "parse attributes.csv:2: want columns name and type"},
		{"quote closed lines later", "name,type\n\"striped,1\nfloral\",2\nlace,2\n",
			"parse attributes.csv:2: column 1 is a quoted field that runs to line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, map[string]string{
				"labels.csv":     "image,partition,striped\na.jpg,train,1\n",
				"attributes.csv": tt.attrs,
			})
			p := &Params{Root: root, Layout: "csv",
				CSV: CSVParams{File: "labels.csv", Attributes: "attributes.csv"}}
			_, err := Read(t.Context(), p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestCSVFolder checks that a folder named as a CSV file is refused with
// the name the parameter gives, not the operating system's absolute path.
func TestCSVFolder(t *testing.T) {
	root := writeFiles(t, map[string]string{"labels/a.csv": "", "attributes.csv": "name,type\nstriped,1\n"})
	for _, p := range []CSVParams{
		{File: "labels"},
		{File: "attributes.csv", Attributes: "labels"},
	} {
		_, err := Read(t.Context(), &Params{Root: root, Layout: "csv", CSV: p})
		want := "read labels: is a directory, want a CSV file"
		if err == nil || err.Error() != want {
			t.Errorf("Read %+v: error %v, want %q", p, err, want)
		}

		// Externals runs first, to fingerprint the files: it must not walk
		// the folder.
		params := &Params{Root: root, Layout: "csv", CSV: p}
		_, err = New().(pipeline.ExternalReader).Externals(params)
		want = " labels: " + filepath.Join(root, "labels") + " is a directory, want a CSV file"
		if err == nil || !strings.HasPrefix(err.Error(), "csv.") || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Externals %+v: error %v, want csv.* ending %q", p, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		key  string // the key of the *pipeline.ParamError, which the message names too
	}{
		{"no root", Params{Layout: "coarse"}, "root"},
		{"bad layout", Params{Root: "x", Layout: "parquet"}, "layout"},
		{"attr_type", Params{Root: "x", Layout: "coarse", AttrType: 7}, "attr_type"},
		{"csv without file", Params{Root: "x", Layout: "csv"}, "csv.file"},
		{"list without separator", Params{Root: "x", Layout: "csv", CSV: CSVParams{File: "l.csv", LabelsColumn: "t"}},
			"csv.list_separator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var pe *pipeline.ParamError
			if !errors.As(err, &pe) || pe.Key != tt.key || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("Validate() = %v, want a *pipeline.ParamError about %s", err, tt.key)
			}
		})
	}
	if err := NewParams().Validate(); err == nil {
		t.Error("defaults without a root validate")
	}
}

func FuzzSplitLabels(f *testing.F) {
	for _, seed := range []string{
		"img/a.jpg  1 -1 0", "img/a b.jpg\t+1 1.0 -1", "1 1 1", "img/x.jpg 1 1", "img/x.jpg 1 1 1 1",
		"été 0 0 0", "a -1.0e0 1 0", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		lr := &lineReader{name: "fuzz", line: 1}
		dst := make([]int8, 3)
		trimmed := trimSpace([]byte(line))
		image, err := splitLabels(lr, trimmed, dst)
		ref := make([]int8, 3)
		refImage, refErr := splitLabelsSimple(lr, trimmed, ref)
		if fmt.Sprint(err) != fmt.Sprint(refErr) || string(image) != string(refImage) || (err == nil && !cmp.Equal(dst, ref)) {
			t.Fatalf("fast path: %q %v %v; reference: %q %v %v", image, dst, err, refImage, ref, refErr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse fuzz:1: ") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		if len(image) == 0 || isSpace(image[len(image)-1]) {
			t.Fatalf("image %q: empty or ends in white space", image)
		}
		// Writing the row back canonically must read the same.
		again := make([]int8, 3)
		canon := string(image)
		for _, v := range dst {
			canon += " " + map[int8]string{1: "1", -1: "-1", 0: "0"}[v]
		}
		image2, err := splitLabels(lr, []byte(canon), again)
		if err != nil || string(image2) != string(image) || !cmp.Equal(dst, again) {
			t.Fatalf("reparse of %q: %q %v %v, want %q %v", canon, image2, again, err, image, dst)
		}
	})
}

// splitLabelsSimple is the plain reading of splitLabels: the reference
// FuzzSplitLabels compares the fast path with, written out on its own so
// that it shares no code with what it checks.
func splitLabelsSimple(lr *lineReader, line []byte, dst []int8) ([]byte, error) {
	end := len(line)
	for j := len(dst) - 1; j >= 0; j-- {
		start := end
		for start > 0 && !spaceTable[line[start-1]] {
			start--
		}
		v, ok := parseLabel(line[start:end])
		if !ok {
			if start == 0 {
				return nil, lr.errorf("row has %d label values after the image path, want %d",
					len(dst)-1-j, len(dst))
			}
			return nil, lr.errorf("bad label %q, want 1, -1 or 0", clip(line[start:end]))
		}
		dst[j] = v
		end = start
		for end > 0 && spaceTable[line[end-1]] {
			end--
		}
		if end == 0 {
			return nil, lr.errorf("row has no image path before its %d labels", len(dst))
		}
	}
	image := line[:end]
	if tok, _ := lastToken(image); len(tok) < len(image) {
		if _, ok := parseLabel(tok); ok {
			return nil, lr.errorf("row has more than %d label values after the image path", len(dst))
		}
	}
	return image, nil
}

// An attribute name listed twice in list_attr_cloth.txt is a counted
// tolerance: both columns stay, in order, and Tolerated names the lines.
func TestDuplicateAttributeNames(t *testing.T) {
	files := coarseFixture()
	files["Anno/list_attr_cloth.txt"] = "3\nattribute_name  attribute_type\nfloral print   1\ndenim   2\nfloral print   4\n"
	ds, err := readCoarseFiles(t, files)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range ds.Attributes {
		names = append(names, a.Name)
	}
	if diff := cmp.Diff([]string{"floral print", "denim", "floral print"}, names); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	want := []Tolerated{{What: "attribute names listed more than once; they stay apart by column", Count: 1,
		First: `Anno/list_attr_cloth.txt:3 and 5: "floral print"`}}
	if diff := cmp.Diff(want, ds.Tolerated); diff != "" {
		t.Errorf("tolerated (-want +got):\n%s", diff)
	}
	ds, err = readCoarseFiles(t, coarseFixture())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Tolerated) != 0 {
		t.Errorf("fixture: tolerated %v, want none", ds.Tolerated)
	}
}

// Spellings of one folder give one set of parameters, so one run key:
// `--set data=out/demo-data/` reran the pipeline as if the data changed.
func TestValidateCleansPaths(t *testing.T) {
	want, err := filepath.Abs("data")
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"data", "data/", "./data", "data//", "x/../data", want, want + "/."} {
		p := Params{Root: root, Layout: "csv", CSV: CSVParams{File: "./labels.csv", Attributes: "meta/../attrs.csv"}}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		if p.Root != want || p.CSV.File != "labels.csv" || p.CSV.Attributes != "attrs.csv" {
			t.Errorf("root %q: cleaned to root %q, file %q, attributes %q; want %s, labels.csv, attrs.csv",
				root, p.Root, p.CSV.File, p.CSV.Attributes, want)
		}
	}
}

// A csv.file given as an absolute path under root is named relative to
// root, so both spellings share a run key.
func TestValidateRelativisesCSVUnderRoot(t *testing.T) {
	root := t.TempDir()
	p := Params{Root: root, Layout: "csv", CSV: CSVParams{File: filepath.Join(root, "meta", "labels.csv"),
		Attributes: "/elsewhere/attrs.csv"}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.CSV.File != filepath.Join("meta", "labels.csv") || p.CSV.Attributes != "/elsewhere/attrs.csv" {
		t.Errorf("file %q, attributes %q; want meta/labels.csv and /elsewhere/attrs.csv", p.CSV.File, p.CSV.Attributes)
	}
}

// An absolute csv.file is read where it is, not under root.
func TestCSVAbsoluteFile(t *testing.T) {
	elsewhere := writeFiles(t, map[string]string{"labels.csv": "image,partition,striped\na.jpg,train,1\nb.jpg,val,0\n"})
	p := &Params{Root: t.TempDir(), Layout: "csv", CSV: CSVParams{File: filepath.Join(elsewhere, "labels.csv")}}
	ds, err := Read(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Partitions[0].Len() != 1 || ds.Partitions[1].Len() != 1 {
		t.Errorf("train %d, val %d rows, want 1 and 1", ds.Partitions[0].Len(), ds.Partitions[1].Len())
	}
	paths, err := (kind{}).Externals(p)
	if err != nil || !slices.Contains(paths, p.CSV.File) {
		t.Errorf("externals %v (%v), want %s among them", paths, err, p.CSV.File)
	}
}

// A root that is missing or a file says so, before any list file is
// looked for.
func TestMissingRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for root, want := range map[string]string{
		"/nonexistent/data": "root /nonexistent/data: no such file or directory",
		file:                "root " + file + ": not a folder",
	} {
		for _, layout := range []string{"coarse", "fine", "csv"} {
			p := &Params{Root: root, Layout: layout, CSV: CSVParams{File: "labels.csv"}}
			if _, err := (kind{}).Externals(p); err == nil || err.Error() != want {
				t.Errorf("%s root %s: externals error %v, want %q", layout, root, err, want)
			}
			if _, err := Read(t.Context(), p); err == nil || err.Error() != want {
				t.Errorf("%s root %s: read error %v, want %q", layout, root, err, want)
			}
		}
	}
}

// An image spelled two ways (./img/a.jpg, img//a.jpg) is one image: listed
// in two partitions it is an error, and it is stored in its clean form.
func TestImageSpellings(t *testing.T) {
	fine := fineFixture()
	fine["Anno_fine/test.txt"] = "./img/a.jpg\n"
	csvFiles := map[string]string{"labels.csv": "image,partition,striped\nimg/a.jpg,train,1\nimg//a.jpg,val,0\n"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		p     Params
		want  string
	}{
		{"fine", fine, Params{Layout: "fine"},
			"Anno_fine/test.txt:1: image ./img/a.jpg listed again (first in Anno_fine/train.txt, line 1)"},
		{"csv", csvFiles, Params{Layout: "csv", CSV: CSVParams{File: "labels.csv"}},
			"labels.csv:3: image img/a.jpg listed again (first at line 2)"},
	} {
		tc.p.Root = writeFiles(t, tc.files)
		if _, err := Read(t.Context(), &tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	csvFiles["labels.csv"] = "image,partition,striped\n./img//a.jpg,train,1\nimg/b.jpg,val,0\n"
	ds, err := Read(t.Context(), &Params{Root: writeFiles(t, csvFiles), Layout: "csv", CSV: CSVParams{File: "labels.csv"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Partitions[0].Image[0]; got != "img/a.jpg" {
		t.Errorf("stored as %q, want img/a.jpg", got)
	}
}

// A coarse dataset that spells its paths ./img/... in every file reads as
// one that spells them img/... (only the partition file's paths were
// cleaned, so list_attr_img.txt's no longer matched).
func TestCoarseDotSlashPaths(t *testing.T) {
	files := coarseFixture()
	for name, content := range files {
		files[name] = strings.ReplaceAll(content, "img/", "./img/")
	}
	ds, err := Read(t.Context(), &Params{Root: writeFiles(t, files), Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Partitions[0].Image; !slices.Equal(got, []string{"img/a.jpg", "img/b.jpg"}) {
		t.Errorf("train images %q, want img/a.jpg and img/b.jpg", got)
	}
}
