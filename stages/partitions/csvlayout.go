package partitions

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"stitch/artifacts"
)

// CSVParams configures the csv layout (see the package documentation).
type CSVParams struct {
	// File is the labels table, relative to root, or an absolute path.
	File string `yaml:"file"`
	// Attributes is the optional attribute table (name, type[, type_name]),
	// relative to root or absolute. It is required in the list form.
	Attributes string `yaml:"attributes"`
	// LabelsColumn, when set, selects the list form: that column holds the
	// names of the present attributes.
	LabelsColumn string `yaml:"labels_column"`
	// ListSeparator separates names in the list column.
	ListSeparator string `yaml:"list_separator"`
}

// Fixed columns of the labels table; every other column is an attribute
// in the wide form.
const (
	colImage     = "image"
	colPartition = "partition"
	colCategory  = "category"
)

var bboxColumns = [4]string{"x1", "y1", "x2", "y2"}

// maxCSVCategory bounds the category ids of a CSV. A CSV names no
// categories, so its table lists every id from 1 to the largest used: an
// id of two billion would make a table of two billion rows. DeepFashion
// has 50 categories.
const maxCSVCategory = 10000

func readCSVLayout(ctx context.Context, root string, attrType int, p CSVParams) (*Dataset, error) {
	var declared []artifacts.Attribute
	if p.Attributes != "" {
		var err error
		if declared, err = readAttributeCSV(underRoot(root, p.Attributes), p.Attributes); err != nil {
			return nil, err
		}
	}
	if p.LabelsColumn != "" && declared == nil {
		return nil, fmt.Errorf("csv: the list form (labels_column %q) needs csv.attributes to name the attributes",
			p.LabelsColumn)
	}

	f, err := openCSV(underRoot(root, p.File), p.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	header, headerLine, err := readCSVHeader(r, p.File)
	if err != nil {
		return nil, err
	}
	header = slices.Clone(header) // ReuseRecord would overwrite it
	cols, err := mapCSVColumns(p, header, declared)
	if err != nil {
		return nil, fmt.Errorf("parse %s:%d: %w", p.File, headerLine, err)
	}
	attrs, keep, err := selectType(cols.attrs, attrType)
	if err != nil {
		return nil, err
	}

	// Rows are collected per partition first: the file has no count line
	// to size buffers from, and CSV datasets are small.
	ds := newDataset(root, len(attrs), [3]int{})
	ds.Attributes = attrs
	seenAt := map[string]int{}
	full := make([]int8, len(cols.attrs))
	kept := make([]int8, len(attrs))
	maxCategory := int32(0)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(p.File, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		fail := func(format string, args ...any) error {
			return fmt.Errorf("parse %s:%d: %s", p.File, line, fmt.Sprintf(format, args...))
		}
		if err := lineBreakField(r, rec, p.File); err != nil {
			return nil, err
		}
		image, ok := imagePath(strings.TrimSpace(rec[cols.image]))
		if !ok {
			return nil, fail("image path %q must be relative to the data root and stay inside it", rec[cols.image])
		}
		if first, dup := seenAt[image]; dup {
			return nil, fail("image %s listed again (first at line %d)", image, first)
		}
		seenAt[image] = line
		part := partitionIndex([]byte(strings.TrimSpace(rec[cols.partition])))
		if part < 0 {
			return nil, fail("partition %q, want train, val or test", rec[cols.partition])
		}
		if err := cols.labels(rec, full); err != nil {
			return nil, fail("%v", err)
		}
		for j, v := range full {
			if keep[j] >= 0 {
				kept[keep[j]] = v
			}
		}
		ds.appendRow(part, image, kept, p.File, line)
		s := ds.Partitions[part]
		if cols.category >= 0 {
			if c := strings.TrimSpace(rec[cols.category]); c != "" {
				id, err := strconv.ParseInt(c, 10, 64)
				if err != nil || id < 1 {
					return nil, fail("category %q, want a 1-based id or nothing", c)
				}
				if id > maxCSVCategory {
					return nil, fail("category %d above %d, the largest id the csv layout accepts", id, maxCSVCategory)
				}
				s.Category[s.Len()-1] = int32(id)
				maxCategory = max(maxCategory, int32(id))
			}
		}
		if cols.bbox[0] >= 0 {
			box, ok, err := csvBox(rec, cols.bbox)
			if err != nil {
				return nil, fail("%v", err)
			}
			s.BBox[s.Len()-1], s.HasBBox[s.Len()-1] = box, ok
		}
	}
	if len(seenAt) == 0 {
		return nil, fmt.Errorf("parse %s:%d: no rows after the header, want one per image", p.File, headerLine)
	}

	// A CSV names no categories; ids 1..max stand for themselves.
	for id := int32(1); id <= maxCategory; id++ {
		ds.Categories = append(ds.Categories, artifacts.Category{ID: int(id), Name: fmt.Sprintf("category %d", id)})
	}
	return ds, nil
}

// openCSV opens a CSV file of the dataset; name is its path relative to
// the root, for messages. A folder is refused here: reading one fails
// with the operating system's words and the absolute path.
func openCSV(path, name string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = errors.New("is a directory, want a CSV file")
	}
	if err != nil {
		f.Close() // opened for reading only: closing loses nothing
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return f, nil
}

// readCSVHeader reads the header row and returns it with its line, which
// blank lines before it move down. A file with no row at all has no line
// to point at; its error says so.
func readCSVHeader(r *csv.Reader, name string) ([]string, int, error) {
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("parse %s:1: empty file, want a header row", name)
	}
	if err != nil {
		return nil, 0, csvError(name, err)
	}
	if err := lineBreakField(r, header, name); err != nil {
		return nil, 0, err
	}
	// A record that Read returned has at least one field.
	line, _ := r.FieldPos(0)
	named := func(h string) bool { return strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) != "" }
	if !slices.ContainsFunc(header, named) {
		return nil, 0, fmt.Errorf("parse %s:%d: blank header row, want the column names", name, line)
	}
	return header, line, nil
}

// csvError names the file of a Read error, and the line when the error
// has one: a *csv.ParseError does; any other error comes from reading the
// file, where the reader's position says nothing.
func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine != pe.Line {
			// An unclosed quote runs to the end of the file; the record
			// that opened it is where to look.
			return fmt.Errorf("parse %s:%d: %w (the record starts there; its quote is still open at line %d)",
				file, pe.StartLine, pe.Err, pe.Line)
		}
		return fmt.Errorf("parse %s:%d: %w", file, pe.Line, pe.Err)
	}
	return fmt.Errorf("read %s: %w", file, err)
}

// underRoot is the path of a file named relative to root, or absolute.
func underRoot(root, name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(root, name)
}

// lineBreakField rejects a record with a field that holds a line break.
// CSV allows one inside quotes, but no field of a labels or attribute
// table has one: it is a quote closed lines later, and the rows in
// between would be lost inside the field.
func lineBreakField(r *csv.Reader, rec []string, file string) error {
	for i, f := range rec {
		if n := strings.Count(f, "\n"); n > 0 || strings.Contains(f, "\r") {
			at, _ := r.FieldPos(i)
			return fmt.Errorf("parse %s:%d: column %d is a quoted field that runs to line %d; "+
				"no column holds a line break, so check the quotes on line %d", file, at, i+1, at+n, at)
		}
	}
	return nil
}

// csvColumns locates the columns of a labels table.
type csvColumns struct {
	image, partition, category int
	bbox                       [4]int
	attrs                      []artifacts.Attribute
	labels                     func(rec []string, dst []int8) error
}

func mapCSVColumns(p CSVParams, header []string, declared []artifacts.Attribute) (*csvColumns, error) {
	cols := &csvColumns{image: -1, partition: -1, category: -1, bbox: [4]int{-1, -1, -1, -1}}
	byName := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "" {
			return nil, fmt.Errorf("column %d has no name", i+1)
		}
		if _, dup := byName[h]; dup {
			return nil, fmt.Errorf("column %q appears twice", h)
		}
		byName[h] = i
	}
	var ok bool
	if cols.image, ok = byName[colImage]; !ok {
		return nil, fmt.Errorf("no %q column", colImage)
	}
	if cols.partition, ok = byName[colPartition]; !ok {
		return nil, fmt.Errorf("no %q column", colPartition)
	}
	if i, ok := byName[colCategory]; ok {
		cols.category = i
	}
	nBox := 0
	for k, name := range bboxColumns {
		if i, ok := byName[name]; ok {
			cols.bbox[k] = i
			nBox++
		}
	}
	if nBox != 0 && nBox != 4 {
		return nil, fmt.Errorf("a box needs all of x1, y1, x2, y2")
	}
	fixed := func(name string) bool {
		return name == colImage || name == colPartition || name == colCategory ||
			name == "x1" || name == "y1" || name == "x2" || name == "y2"
	}

	if p.LabelsColumn != "" {
		return cols, listForm(cols, p, header, byName, declared, fixed)
	}
	return cols, wideForm(cols, header, declared, fixed)
}

// listForm: one column lists the present attributes; the others are absent.
func listForm(cols *csvColumns, p CSVParams, header []string, byName map[string]int,
	declared []artifacts.Attribute, fixed func(string) bool) error {
	at, ok := byName[p.LabelsColumn]
	if !ok {
		return fmt.Errorf("no %q column (labels_column)", p.LabelsColumn)
	}
	for _, h := range header {
		if h = strings.TrimSpace(h); !fixed(h) && h != p.LabelsColumn {
			return fmt.Errorf("column %q is neither a known column nor the labels column", h)
		}
	}
	index := map[string]int{}
	for _, a := range declared {
		index[a.Name] = a.Index
	}
	cols.attrs = declared
	cols.labels = func(rec []string, dst []int8) error {
		for j := range dst {
			dst[j] = artifacts.Absent
		}
		for name := range strings.SplitSeq(rec[at], p.ListSeparator) {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			j, ok := index[name]
			if !ok {
				return fmt.Errorf("attribute %q is not in the attribute table", name)
			}
			dst[j] = artifacts.Present
		}
		return nil
	}
	return nil
}

// wideForm: one column per attribute holding 1, -1, 0 or nothing.
func wideForm(cols *csvColumns, header []string, declared []artifacts.Attribute, fixed func(string) bool) error {
	types := map[string]artifacts.Attribute{}
	for _, a := range declared {
		types[a.Name] = a
	}
	var at []int
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if fixed(h) {
			continue
		}
		a, ok := types[h]
		if declared != nil && !ok {
			return fmt.Errorf("attribute column %q is not in the attribute table", h)
		}
		cols.attrs = append(cols.attrs, artifacts.Attribute{
			Index: len(cols.attrs), Name: h, Type: a.Type, TypeName: a.TypeName,
		})
		at = append(at, i)
	}
	if len(cols.attrs) == 0 {
		return fmt.Errorf("no attribute columns")
	}
	if declared != nil && len(declared) != len(cols.attrs) {
		return fmt.Errorf("the attribute table names %d attributes, the labels table has %d columns of them",
			len(declared), len(cols.attrs))
	}
	cols.labels = func(rec []string, dst []int8) error {
		for j, i := range at {
			cell := strings.TrimSpace(rec[i])
			if cell == "" {
				dst[j] = artifacts.Unknown
				continue
			}
			v, ok := parseLabel([]byte(cell))
			if !ok {
				return fmt.Errorf("column %q: bad label %q, want 1, -1, 0 or nothing", header[i], cell)
			}
			dst[j] = v
		}
		return nil
	}
	return nil
}

// maxBoxCoord bounds box coordinates, as list_bbox.txt's are: no image
// is 2^20 pixels wide, and larger values would wrap in the int32 column.
const maxBoxCoord = 1 << 20

func csvBox(rec []string, at [4]int) ([4]int32, bool, error) {
	var v [4]int64
	empty := 0
	for k, i := range at {
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			empty++
			continue
		}
		n, ok := parseInt([]byte(cell))
		if !ok {
			return [4]int32{}, false, fmt.Errorf("box value %q, want an integer", cell)
		}
		v[k] = n
	}
	switch empty {
	case 4:
		return [4]int32{}, false, nil
	case 0:
	default:
		return [4]int32{}, false, fmt.Errorf("a box needs all of x1, y1, x2, y2 or none")
	}
	if v[0] < 0 || v[1] < 0 || v[2] < v[0] || v[3] < v[1] || v[2] > maxBoxCoord || v[3] > maxBoxCoord {
		return [4]int32{}, false, fmt.Errorf("bad box %v, want 0 <= x1 <= x2 <= %d and 0 <= y1 <= y2 <= %d",
			v, maxBoxCoord, maxBoxCoord)
	}
	return [4]int32{int32(v[0]), int32(v[1]), int32(v[2]), int32(v[3])}, true, nil
}

// readAttributeCSV reads the attribute table: columns name and type, and
// optionally type_name (defaulting to DeepFashion's names for 1..5).
func readAttributeCSV(path, name string) ([]artifacts.Attribute, error) {
	f, err := openCSV(path, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, headerLine, err := readCSVHeader(r, name)
	if err != nil {
		return nil, err
	}
	at := map[string]int{}
	for i, h := range header {
		at[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	nameCol, ok1 := at["name"]
	typeCol, ok2 := at["type"]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("parse %s:%d: want columns name and type", name, headerLine)
	}
	typeNameCol, hasTypeName := at["type_name"]
	var attrs []artifacts.Attribute
	seenAt := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		if err := lineBreakField(r, rec, name); err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		a := artifacts.Attribute{Index: len(attrs), Name: strings.TrimSpace(rec[nameCol])}
		if a.Name == "" {
			return nil, fmt.Errorf("parse %s:%d: attribute with an empty name", name, line)
		}
		if first, dup := seenAt[a.Name]; dup {
			return nil, fmt.Errorf("parse %s:%d: attribute %q listed again (first at line %d)", name, line, a.Name, first)
		}
		seenAt[a.Name] = line
		typ, err := strconv.Atoi(strings.TrimSpace(rec[typeCol]))
		if err != nil || typ < 1 {
			return nil, fmt.Errorf("parse %s:%d: type %q, want an integer >= 1", name, line, rec[typeCol])
		}
		a.Type, a.TypeName = typ, coarseTypeNames[typ]
		if hasTypeName && strings.TrimSpace(rec[typeNameCol]) != "" {
			a.TypeName = strings.TrimSpace(rec[typeNameCol])
		}
		attrs = append(attrs, a)
	}
	if len(attrs) == 0 {
		return nil, fmt.Errorf("parse %s:%d: no attribute rows after the header", name, headerLine)
	}
	return attrs, nil
}
