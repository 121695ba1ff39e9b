package partitions

import (
	"fmt"
	"path"
	"path/filepath"

	"stitch/artifacts"
)

// partitionNames are the partitions, in output order.
var partitionNames = [3]string{"train", "val", "test"}

func partitionIndex(name []byte) int {
	for i, p := range partitionNames {
		if string(name) == p {
			return i
		}
	}
	return -1
}

// Dataset is a parsed dataset: what a partitions stage stores.
type Dataset struct {
	Attributes []artifacts.Attribute
	// Categories is empty when the dataset has none.
	Categories []artifacts.Category
	// Partitions are train, val and test, in that order.
	Partitions [3]*artifacts.Samples
	// Tolerated lists the counted tolerances the parse applied, each
	// logged as one warning.
	Tolerated []Tolerated
	// listed says where each row's image is listed, for errors about it
	// found after the parse: the file of each partition and each row's line.
	listedIn [3]string
	listedAt [3][]int32
}

// where names the file and line that list row i of partition part.
func (ds *Dataset) where(part, i int) string {
	if i >= len(ds.listedAt[part]) {
		return ""
	}
	return fmt.Sprintf("%s:%d", ds.listedIn[part], ds.listedAt[part][i])
}

// Tolerated is one kind of oddity in the input that the parse accepted.
type Tolerated struct {
	What  string
	Count int
	// First names the first case, with its file and line.
	First string
}

func newDataset(root string, numAttrs int, counts [3]int) *Dataset {
	ds := &Dataset{}
	for p := range ds.Partitions {
		n := counts[p]
		ds.Partitions[p] = &artifacts.Samples{
			Root: root, NumAttributes: numAttrs,
			Image: make([]string, 0, n), Partition: make([]string, 0, n),
			Category: make([]int32, 0, n), BBox: make([][4]int32, 0, n),
			HasBBox: make([]bool, 0, n), Landmarks: make([][]int32, 0, n),
			Labels: make([]int8, 0, n*numAttrs),
		}
		ds.listedAt[p] = make([]int32, 0, n)
	}
	return ds
}

// appendRow adds an image with no category, box or landmarks yet, listed
// at line of file.
func (ds *Dataset) appendRow(part int, image string, labels []int8, file string, line int) {
	ds.listedIn[part] = file
	ds.listedAt[part] = append(ds.listedAt[part], int32(line))
	s := ds.Partitions[part]
	s.Image = append(s.Image, image)
	s.Partition = append(s.Partition, partitionNames[part])
	s.Category = append(s.Category, 0)
	s.BBox = append(s.BBox, [4]int32{})
	s.HasBBox = append(s.HasBBox, false)
	s.Landmarks = append(s.Landmarks, nil)
	s.Labels = append(s.Labels, labels...)
}

// imageIndex maps each image of the partition file to its partition and,
// once the attribute file has listed it, to its row in that partition.
type imageIndex struct {
	file   string
	byPath map[string]int32
	paths  []string
	part   []int8
	line   []int32
	row    []int32 // -1 until the attribute file lists the image
	rowAt  []int32 // line of the attribute file that listed it
	counts [3]int
	// partFile names the file that listed a partition's images, for the
	// error of an image listed in two files.
	partFile [3]string
}

func newImageIndex(file string, capacity int) *imageIndex {
	return &imageIndex{
		file: file, byPath: make(map[string]int32, capacity),
		paths: make([]string, 0, capacity), part: make([]int8, 0, capacity),
		line: make([]int32, 0, capacity), row: make([]int32, 0, capacity),
		rowAt: make([]int32, 0, capacity),
	}
}

// add registers an image; lr positions the error of a duplicate.
func (ix *imageIndex) add(lr *lineReader, raw []byte, part int) error {
	p, ok := imagePath(string(raw))
	if !ok {
		return lr.errorf("image path %q must be relative to the data root and stay inside it", raw)
	}
	if k, dup := ix.byPath[p]; dup {
		if first := ix.partFile[ix.part[k]]; first != "" && first != lr.name {
			return lr.errorf("image %s listed again (first in %s, line %d)", raw, first, ix.line[k])
		}
		return lr.errorf("image %s listed again (first at line %d)", raw, ix.line[k])
	}
	ix.partFile[part] = lr.name
	ix.byPath[p] = int32(len(ix.paths))
	ix.paths = append(ix.paths, p)
	ix.part = append(ix.part, int8(part))
	ix.line = append(ix.line, int32(lr.line))
	ix.row = append(ix.row, -1)
	ix.rowAt = append(ix.rowAt, 0)
	ix.counts[part]++
	return nil
}

// imagePath is an image's path in its one spelling (path.Clean:
// ./img/a.jpg and img//a.jpg are img/a.jpg), so that an image listed
// twice is found whatever the spelling; false when the path leaves the
// data root or names the root itself.
func imagePath(p string) (string, bool) {
	c := path.Clean(p)
	return c, c != "." && filepath.IsLocal(filepath.FromSlash(c))
}

// find returns the index of an image however its path is spelled
// (imagePath); the spelling of the partition file is tried first.
func (ix *imageIndex) find(path []byte) (int, bool) {
	if k, ok := ix.byPath[string(path)]; ok {
		return int(k), true
	}
	if p, valid := imagePath(string(path)); valid {
		k, ok := ix.byPath[p]
		return int(k), ok
	}
	return 0, false
}

// lookup finds the partition and row of an image listed in a secondary
// file (bbox, landmarks, categories).
func (ix *imageIndex) lookup(lr *lineReader, path []byte, attrFile string) (part, row int, err error) {
	k, ok := ix.find(path)
	if !ok {
		return 0, 0, lr.errorf("image %s is not in %s", path, ix.file)
	}
	if ix.row[k] < 0 {
		return 0, 0, lr.errorf("image %s is not in %s", path, attrFile)
	}
	return int(ix.part[k]), int(ix.row[k]), nil
}

// checkAllLabelled reports the first image of the partition file that the
// attribute file did not list.
func (ix *imageIndex) checkAllLabelled(attrFile string) error {
	for k, r := range ix.row {
		if r < 0 {
			return fmt.Errorf("parse %s:%d: image %s is in the partition file but not in %s",
				ix.file, ix.line[k], ix.paths[k], attrFile)
		}
	}
	return nil
}

// seen tracks which rows of one partition a secondary file has listed, so
// a second listing is an error rather than a silent overwrite.
type seen struct{ lines [3][]int32 }

func newSeen(ds *Dataset) *seen {
	s := &seen{}
	for p, part := range ds.Partitions {
		s.lines[p] = make([]int32, part.Len())
	}
	return s
}

func (s *seen) mark(lr *lineReader, path []byte, part, row int) error {
	if first := s.lines[part][row]; first != 0 {
		return lr.errorf("image %s listed again (first at line %d)", path, first)
	}
	s.lines[part][row] = int32(lr.line)
	return nil
}
