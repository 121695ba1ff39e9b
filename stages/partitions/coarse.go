package partitions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"stitch/artifacts"
)

// coarseAnnoDir returns the coarse annotation folder: Anno/ when it holds
// list_attr_img.txt, else Anno_coarse/ (DeepFashion's later releases
// renamed it).
func coarseAnnoDir(root string) (string, error) {
	for _, dir := range []string{"Anno", "Anno_coarse"} {
		if _, err := os.Stat(filepath.Join(root, dir, "list_attr_img.txt")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("read %s: no Anno/list_attr_img.txt or Anno_coarse/list_attr_img.txt", root)
}

// readCoarse reads the coarse layout under root.
func readCoarse(ctx context.Context, root string, attrType int) (*Dataset, error) {
	anno, err := coarseAnnoDir(root)
	if err != nil {
		return nil, err
	}
	rel := func(name string) string { return filepath.ToSlash(filepath.Join(anno, name)) }
	abs := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }

	all, dups, err := readAttrCloth(abs(rel("list_attr_cloth.txt")), rel("list_attr_cloth.txt"), true)
	if err != nil {
		return nil, err
	}
	attrs, keep, err := selectType(all, attrType)
	if err != nil {
		return nil, err
	}
	const evalFile = "Eval/list_eval_partition.txt"
	idx, err := readEvalPartition(abs(evalFile), evalFile)
	if err != nil {
		return nil, err
	}
	ds := newDataset(root, len(attrs), idx.counts)
	ds.Attributes = attrs
	if dups != nil {
		ds.Tolerated = append(ds.Tolerated, *dups)
	}
	attrFile := rel("list_attr_img.txt")
	if err := readAttrImg(ctx, abs(attrFile), attrFile, len(all), keep, idx, ds); err != nil {
		return nil, err
	}

	// The remaining files are optional: a dataset without boxes or
	// categories (clothing-attributes) is still a dataset.
	for _, step := range []struct {
		file  string
		apply func(path, name string) error
	}{
		{"list_category_cloth.txt", func(p, n string) (err error) {
			ds.Categories, err = readCategoryCloth(p, n)
			return err
		}},
		{"list_category_img.txt", func(p, n string) error {
			const cloth = "list_category_cloth.txt"
			if err := requireFile(abs(rel(cloth)), rel(cloth), n); err != nil {
				return err
			}
			return applyCategoryImg(p, n, idx, attrFile, ds)
		}},
		{"list_bbox.txt", func(p, n string) error { return applyBBoxes(p, n, idx, attrFile, ds) }},
		{"list_landmarks.txt", func(p, n string) error { return applyLandmarks(p, n, idx, attrFile, ds) }},
	} {
		path := abs(rel(step.file))
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := step.apply(path, rel(step.file)); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// readEvalPartition reads Eval/list_eval_partition.txt: image path, then
// train, val or test.
func readEvalPartition(path, name string) (*imageIndex, error) {
	lr, err := openLines(path, name)
	if err != nil {
		return nil, err
	}
	defer lr.Close()
	count, err := lr.readHeader("image_name")
	if err != nil {
		return nil, err
	}
	idx := newImageIndex(name, min(count, 1<<22))
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		status, image := lastToken(line)
		if len(image) == 0 {
			return nil, lr.errorf("want an image path and a partition, got %q", clip(line))
		}
		part := partitionIndex(status)
		if part < 0 {
			return nil, lr.errorf("partition %q, want train, val or test", status)
		}
		if err := idx.add(lr, image, part); err != nil {
			return nil, err
		}
	}
	return idx, lr.checkCount(count, len(idx.paths))
}

// readAttrImg reads list_attr_img.txt, the big file (600 MB for the full
// benchmark). Each row is an image path followed by numAttrs labels; the
// labels are parsed from the right so that a path may contain spaces. The
// kept columns go straight into the partition's label buffer, which was
// sized from the partition file, so nothing grows while parsing.
func readAttrImg(ctx context.Context, path, name string, numAttrs int, keep []int,
	idx *imageIndex, ds *Dataset) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	count, err := lr.readHeader("image_name")
	if err != nil {
		return err
	}
	scratch := make([]int8, numAttrs)
	kept := make([]int8, ds.Partitions[0].NumAttributes)
	identity := len(kept) == numAttrs // attr_type 0 keeps every column in place
	rows := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		rows++
		if rows&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		image, err := splitLabels(lr, line, scratch)
		if err != nil {
			return err
		}
		k, ok := idx.find(image)
		if !ok {
			return lr.errorf("image %s is not in %s", image, idx.file)
		}
		if idx.row[k] >= 0 {
			return lr.errorf("image %s listed again (first at line %d)", image, idx.rowAt[k])
		}
		row := scratch
		if !identity {
			for j, v := range scratch {
				if o := keep[j]; o >= 0 {
					kept[o] = v
				}
			}
			row = kept
		}
		part := int(idx.part[k])
		idx.row[k] = int32(ds.Partitions[part].Len())
		idx.rowAt[k] = int32(lr.line)
		ds.appendRow(part, idx.paths[k], row, name, lr.line)
	}
	if err := lr.checkCount(count, rows); err != nil {
		return err
	}
	return idx.checkAllLabelled(name)
}

// splitLabels parses the last len(dst) tokens of line as labels into dst
// and returns the image path before them. A path whose own last token is
// a label value means the row has a value too many: DeepFashion paths end
// in an extension, so this reading is the safe one.
func splitLabels(lr *lineReader, line []byte, dst []int8) ([]byte, error) {
	end := len(line)
	for j := len(dst) - 1; j >= 0; j-- {
		// Fast path for " -1", " 1" and " 0", which make up almost all of
		// a DeepFashion file: no call, no token boundaries to search.
		if end >= 3 && line[end-1] == '1' && line[end-2] == '-' && spaceTable[line[end-3]] {
			dst[j] = -1
			end -= 3
		} else if end >= 2 && (line[end-1] == '1' || line[end-1] == '0') && spaceTable[line[end-2]] {
			dst[j] = int8(line[end-1] - '0')
			end -= 2
		} else {
			var ok bool
			if end, ok = slowLabel(line, end, &dst[j]); !ok {
				return nil, labelError(lr, line, end, j, len(dst))
			}
		}
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

// slowLabel parses the token that ends at end; it returns the token's
// start, or end itself when the token is not a label.
func slowLabel(line []byte, end int, dst *int8) (int, bool) {
	start := tokenStart(line, end)
	v, ok := parseLabel(line[start:end])
	if !ok {
		return end, false
	}
	*dst = v
	return start, true
}

// tokenStart returns where the token of line that ends at end begins.
func tokenStart(line []byte, end int) int {
	start := end
	for start > 0 && !spaceTable[line[start-1]] {
		start--
	}
	return start
}

// labelError explains why the token ending at end is not label j of n.
func labelError(lr *lineReader, line []byte, end, j, n int) error {
	start := tokenStart(line, end)
	if start == 0 {
		return lr.errorf("row has %d label values after the image path, want %d", n-1-j, n)
	}
	return lr.errorf("bad label %q, want 1, -1 or 0", clip(line[start:end]))
}

// splitInts parses the last len(dst) tokens of line as integers into dst
// and returns the image path before them, with the same reading of a
// value too many or too few as splitLabels.
func splitInts(lr *lineReader, line []byte, dst []int64) ([]byte, error) {
	rest := line
	for j := len(dst) - 1; j >= 0; j-- {
		tok, before := lastToken(rest)
		v, ok := parseInt(tok)
		if !ok {
			if len(before) == 0 {
				return nil, lr.errorf("row has %d values after the image path, want %d", len(dst)-1-j, len(dst))
			}
			return nil, lr.errorf("bad value %q, want an integer", clip(tok))
		}
		dst[j] = v
		rest = before
		if len(rest) == 0 {
			return nil, lr.errorf("row has no image path before its %d values", len(dst))
		}
	}
	if tok, before := lastToken(rest); len(before) > 0 {
		if _, ok := parseInt(tok); ok {
			return nil, lr.errorf("row has more than %d values after the image path", len(dst))
		}
	}
	return rest, nil
}

// applyCategoryImg reads list_category_img.txt: image path and a 1-based
// category id. Images it does not list keep category 0 (none).
func applyCategoryImg(path, name string, idx *imageIndex, attrFile string, ds *Dataset) error {
	return eachImageRow(path, name, 1, idx, attrFile, ds, func(lr *lineReader, s *artifacts.Samples, row int,
		v []int64) error {
		if v[0] < 1 || v[0] > int64(len(ds.Categories)) {
			return lr.errorf("category %d outside 1..%d", v[0], len(ds.Categories))
		}
		s.Category[row] = int32(v[0])
		return nil
	})
}

// requireFile checks that path (shown as name), which the file user needs,
// exists, and says that it is missing when it is not: left unread, a
// missing category table would make every category id of user look out
// of range.
func requireFile(path, name, user string) error {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: it needs %s, which is missing (%s)", user, name, path)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// applyBBoxes reads list_bbox.txt: image path, x1 y1 x2 y2.
func applyBBoxes(path, name string, idx *imageIndex, attrFile string, ds *Dataset) error {
	return eachImageRow(path, name, 4, idx, attrFile, ds, func(lr *lineReader, s *artifacts.Samples, row int,
		v []int64) error {
		box, err := toBox(lr, v)
		if err != nil {
			return err
		}
		s.BBox[row], s.HasBBox[row] = box, true
		return nil
	})
}

func toBox(lr *lineReader, v []int64) ([4]int32, error) {
	if v[0] < 0 || v[1] < 0 || v[2] < v[0] || v[3] < v[1] || v[2] > maxBoxCoord || v[3] > maxBoxCoord {
		return [4]int32{}, lr.errorf("bad box %v, want 0 <= x1 <= x2 <= %d and 0 <= y1 <= y2 <= %d", v,
			maxBoxCoord, maxBoxCoord)
	}
	return [4]int32{int32(v[0]), int32(v[1]), int32(v[2]), int32(v[3])}, nil
}

// eachImageRow reads a list file whose rows are an image path and n
// integers, calling fn with the image's partition table and row.
func eachImageRow(path, name string, n int, idx *imageIndex, attrFile string, ds *Dataset,
	fn func(lr *lineReader, s *artifacts.Samples, row int, v []int64) error) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	count, err := lr.readHeader("image_name")
	if err != nil {
		return err
	}
	marks := newSeen(ds)
	values := make([]int64, n)
	rows := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		rows++
		image, err := splitInts(lr, line, values)
		if err != nil {
			return err
		}
		part, row, err := idx.lookup(lr, image, attrFile)
		if err != nil {
			return err
		}
		if err := marks.mark(lr, image, part, row); err != nil {
			return err
		}
		if err := fn(lr, ds.Partitions[part], row, values); err != nil {
			return err
		}
	}
	return lr.checkCount(count, rows)
}

// applyLandmarks reads list_landmarks.txt: image path, clothes type,
// variation type, then visibility, x, y for 4, 6 or 8 landmarks (the
// count depends on the clothes type). Landmarks are kept as x, y pairs;
// a truncated one (visibility 2) has no location and becomes 0 0.
func applyLandmarks(path, name string, idx *imageIndex, attrFile string, ds *Dataset) error {
	lr, err := openLines(path, name)
	if err != nil {
		return err
	}
	defer lr.Close()
	count, err := lr.readHeader("image_name")
	if err != nil {
		return err
	}
	marks := newSeen(ds)
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
		rows++
		// The width varies with the clothes type, so count the trailing
		// integers first.
		values = values[:0]
		rest := line
		for {
			tok, before := lastToken(rest)
			v, ok := parseInt(tok)
			if !ok || len(before) == 0 {
				break
			}
			values = append(values, v)
			rest = before
		}
		k := (len(values) - 2) / 3
		if (len(values)-2)%3 != 0 || k != 4 && k != 6 && k != 8 {
			return lr.errorf("want image path, clothes type, variation type and 4, 6 or 8 (visibility, x, y) "+
				"triples, got %d values", len(values))
		}
		// DeepFashion's clothes types: 1 upper body (6 landmarks), 2 lower
		// body (4), 3 full body (8).
		if clothes := values[len(values)-1]; clothes < 1 || clothes > 3 || []int{6, 4, 8}[clothes-1] != k {
			return lr.errorf("clothes type %d with %d landmarks, want 1 (upper body) with 6, "+
				"2 (lower body) with 4 or 3 (full body) with 8", clothes, k)
		}
		part, row, err := idx.lookup(lr, rest, attrFile)
		if err != nil {
			return err
		}
		if err := marks.mark(lr, rest, part, row); err != nil {
			return err
		}
		// values holds the row backwards.
		pairs := make([]int32, 0, 2*k)
		for i := 0; i < k; i++ {
			at := len(values) - 3 - 3*i
			vis, x, y := values[at], values[at-1], values[at-2]
			switch {
			case vis < 0 || vis > 2:
				return lr.errorf("landmark %d: visibility %d, want 0 (visible), 1 (occluded) or 2 (truncated)",
					i+1, vis)
			case x < 0 || y < 0 || x > maxBoxCoord || y > maxBoxCoord:
				return lr.errorf("landmark %d: position (%d, %d), want 0 to %d", i+1, x, y, maxBoxCoord)
			case vis == 2:
				x, y = 0, 0
			}
			pairs = append(pairs, int32(x), int32(y))
		}
		ds.Partitions[part].Landmarks[row] = pairs
	}
	return lr.checkCount(count, rows)
}
