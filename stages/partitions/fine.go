package partitions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const fineDir = "Anno_fine"

// fineLandmarks is the landmark count of a fine-layout S_landmarks.txt
// row, whatever the clothes type: DeepFashion writes 0 0 for the absent.
const fineLandmarks = 8

// readFine reads the fine layout: Anno_fine/list_attr_cloth.txt and, per
// partition S, the row-aligned files S.txt (image paths), S_attr.txt
// (0/1 labels; 0 means absent), S_bbox.txt, S_landmarks.txt and S_cate.txt
// (the last three optional). These files have no count or header line.
func readFine(ctx context.Context, root string, attrType int) (*Dataset, error) {
	rel := func(name string) string { return fineDir + "/" + name }
	abs := func(name string) string { return filepath.Join(root, fineDir, name) }

	all, dups, err := readAttrCloth(abs("list_attr_cloth.txt"), rel("list_attr_cloth.txt"), false)
	if err != nil {
		return nil, err
	}
	attrs, keep, err := selectType(all, attrType)
	if err != nil {
		return nil, err
	}

	// Read the image lists first so the label buffers can be sized.
	idx := newImageIndex(rel("{train,val,test}.txt"), 0)
	for p, part := range partitionNames {
		if err := readFineImages(abs(part+".txt"), rel(part+".txt"), p, idx); err != nil {
			return nil, err
		}
	}
	ds := newDataset(root, len(attrs), idx.counts)
	ds.Attributes = attrs
	if dups != nil {
		ds.Tolerated = append(ds.Tolerated, *dups)
	}

	if _, err := os.Stat(abs("list_category_cloth.txt")); err == nil {
		ds.Categories, err = readCategoryCloth(abs("list_category_cloth.txt"), rel("list_category_cloth.txt"))
		if err != nil {
			return nil, err
		}
	}
	for p, part := range partitionNames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := readFineLabels(abs(part+"_attr.txt"), rel(part+"_attr.txt"), p, len(all), keep, idx, ds); err != nil {
			return nil, err
		}
		if err := readFineExtras(abs, rel, p, ds); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// readFineImages reads S.txt, one image path per line (spaces allowed).
func readFineImages(path, name string, part int, idx *imageIndex) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	lr.aligned = true
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := idx.add(lr, line, part); err != nil {
			return err
		}
	}
}

// readFineLabels reads S_attr.txt: exactly numAttrs values per row, 1
// present and 0 (or -1) absent. The fine layout has no unknown label.
func readFineLabels(path, name string, part, numAttrs int, keep []int, idx *imageIndex, ds *Dataset) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	lr.aligned = true
	want := idx.counts[part]
	first := firstOfPartition(idx, part)
	kept := make([]int8, ds.Partitions[part].NumAttributes)
	rows := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if rows == want {
			return lr.errorf("more rows than the %d images of %s.txt", want, partitionNames[part])
		}
		rest, j := line, 0
		for len(rest) > 0 {
			var tok []byte
			tok, rest = firstToken(rest)
			v, ok := parseLabel(tok)
			if !ok {
				return lr.errorf("bad label %q, want 1 (present), or 0 or -1 (absent)", clip(tok))
			}
			if j < numAttrs && keep[j] >= 0 {
				kept[keep[j]] = fineLabel(v)
			}
			j++
		}
		if j != numAttrs {
			return lr.errorf("row has %d label values, want %d", j, numAttrs)
		}
		k := first + rows
		idx.row[k] = int32(rows)
		ds.appendRow(part, idx.paths[k], kept, strings.TrimSuffix(name, "_attr.txt")+".txt", rows+1)
		rows++
	}
	if rows != want {
		list := strings.TrimSuffix(name, "_attr.txt") + ".txt"
		return fmt.Errorf("parse %s: %d rows, %s lists %d images; %s:%d (%s) is the first without one",
			name, rows, list, want, list, rows+1, idx.paths[first+rows])
	}
	return nil
}

// fineLabel maps the fine layout's 0 (absent) to -1.
func fineLabel(v int8) int8 {
	if v == 1 {
		return 1
	}
	return -1
}

// firstOfPartition returns the index of the first image of part; the fine
// image lists are read partition by partition, so each is contiguous.
func firstOfPartition(idx *imageIndex, part int) int {
	n := 0
	for p := 0; p < part; p++ {
		n += idx.counts[p]
	}
	return n
}

// readFineExtras reads the optional S_bbox.txt (x1 y1 x2 y2),
// S_landmarks.txt (fineLandmarks x y pairs, 0 0 missing) and S_cate.txt
// (category id).
func readFineExtras(abs, rel func(string) string, part int, ds *Dataset) error {
	s := ds.Partitions[part]
	prefix := partitionNames[part]
	extras := []struct {
		suffix string
		fn     func(lr *lineReader, row int, v []int64) error
	}{
		{"_bbox.txt", func(lr *lineReader, row int, v []int64) error {
			if len(v) != 4 {
				return lr.errorf("row has %d values, want 4 (x1 y1 x2 y2)", len(v))
			}
			box, err := toBox(lr, v)
			s.BBox[row], s.HasBBox[row] = box, err == nil
			return err
		}},
		{"_landmarks.txt", func(lr *lineReader, row int, v []int64) error {
			if len(v) != 2*fineLandmarks {
				return lr.errorf("row has %d values, want %d x y pairs (0 0 for a missing landmark)", len(v),
					fineLandmarks)
			}
			pairs := make([]int32, len(v))
			for i, x := range v {
				if x < 0 || x > maxBoxCoord {
					return lr.errorf("landmark %d: position %d, want 0 to %d", i/2+1, x, maxBoxCoord)
				}
				pairs[i] = int32(x)
			}
			s.Landmarks[row] = pairs
			return nil
		}},
		{"_cate.txt", func(lr *lineReader, row int, v []int64) error {
			if len(v) != 1 {
				return lr.errorf("row has %d values, want one category id", len(v))
			}
			if v[0] < 1 || v[0] > int64(len(ds.Categories)) {
				return lr.errorf("category %d outside 1..%d (list_category_cloth.txt)", v[0], len(ds.Categories))
			}
			s.Category[row] = int32(v[0])
			return nil
		}},
	}
	for _, e := range extras {
		path := abs(prefix + e.suffix)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if e.suffix == "_cate.txt" {
			const cloth = "list_category_cloth.txt"
			if err := requireFile(abs(cloth), rel(cloth), rel(prefix+e.suffix)); err != nil {
				return err
			}
		}
		if err := eachIntRow(path, rel(prefix+e.suffix), rel(prefix+".txt"), s.Image, e.fn); err != nil {
			return err
		}
	}
	return nil
}

// eachIntRow reads a headerless file of integers, a row for each of
// images, which the file list lists.
func eachIntRow(path, name, list string, images []string, fn func(lr *lineReader, row int, v []int64) error) error {
	want := len(images)
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	lr.aligned = true
	var values []int64
	rows := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if rows == want {
			return lr.errorf("more rows than the %d images of the partition", want)
		}
		values = values[:0]
		for rest := line; len(rest) > 0; {
			var tok []byte
			tok, rest = firstToken(rest)
			v, ok := parseInt(tok)
			if !ok {
				return lr.errorf("bad value %q, want an integer", clip(tok))
			}
			values = append(values, v)
		}
		if err := fn(lr, rows, values); err != nil {
			return err
		}
		rows++
	}
	if rows != want {
		return fmt.Errorf("parse %s: %d rows, %s lists %d images; %s:%d (%s) is the first without one",
			name, rows, list, want, list, rows+1, images[rows])
	}
	return nil
}
