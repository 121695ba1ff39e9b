package artifacts

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Label values, as in DeepFashion. Unknown is kept distinct from Absent
// everywhere: it counts in no loss and no metric.
const (
	Present int8 = 1
	Absent  int8 = -1
	Unknown int8 = 0
)

// Samples is a samples table (or the sample columns of an images table) as
// columns. Row i's labels are Labels[i*NumAttributes : (i+1)*NumAttributes].
type Samples struct {
	// Root is the absolute folder that Image paths are relative to.
	Root string
	// ImagesFingerprint is the content fingerprint of the image folder
	// when partitions checked the images (check_images): edited images
	// then change the table's id, and every stage that reads the pixels
	// runs again. Empty otherwise.
	ImagesFingerprint string
	NumAttributes     int
	Image             []string
	Partition         []string
	// Category is the 1-based category id, 0 when there is none.
	Category []int32
	// BBox is x1, y1, x2, y2 in pixels; HasBBox says whether row i has one.
	BBox    [][4]int32
	HasBBox []bool
	// Landmarks are (x, y) pairs, 0 0 for a missing one; nil when none.
	Landmarks [][]int32
	Labels    []int8
	// Pixels, in an images table only: Height x Width x 3 RGB bytes per row.
	Pixels        [][]byte
	Height, Width int
	// Crop, in an images table, records how its pixels were read from the
	// image files (nil when unknown): train hands it on to the model, so
	// that predict reads test files the same way.
	Crop *CropSpec
}

// MetaCrop is the schema metadata key of an images table's CropSpec, as
// JSON.
const MetaCrop = "stitch.crop"

// Len is the number of rows.
func (s *Samples) Len() int { return len(s.Image) }

// Row returns the labels of row i.
func (s *Samples) Row(i int) []int8 {
	return s.Labels[i*s.NumAttributes : (i+1)*s.NumAttributes]
}

// Append adds row i of src to s (same attribute count). Used by resampling.
func (s *Samples) Append(src *Samples, i int) {
	s.Image = append(s.Image, src.Image[i])
	s.Partition = append(s.Partition, src.Partition[i])
	s.Category = append(s.Category, src.Category[i])
	s.BBox = append(s.BBox, src.BBox[i])
	s.HasBBox = append(s.HasBBox, src.HasBBox[i])
	s.Landmarks = append(s.Landmarks, src.Landmarks[i])
	s.Labels = append(s.Labels, src.Row(i)...)
	if src.Pixels != nil {
		s.Pixels = append(s.Pixels, src.Pixels[i])
	}
}

// EmptyLike returns an empty Samples with the same root, images
// fingerprint, width and size.
func (s *Samples) EmptyLike() *Samples {
	return &Samples{Root: s.Root, ImagesFingerprint: s.ImagesFingerprint, NumAttributes: s.NumAttributes,
		Height: s.Height, Width: s.Width, Crop: s.Crop}
}

// SamplesSchema returns the schema of a samples table (images=false) or an
// images table (images=true) like head: its attribute count, root, images
// fingerprint and, for images, pixel size.
func SamplesSchema(head *Samples, images bool) *arrow.Schema {
	n := head.NumAttributes
	fields := []arrow.Field{
		{Name: "image", Type: arrow.BinaryTypes.String},
		{Name: "partition", Type: arrow.BinaryTypes.String},
		{Name: "category", Type: arrow.PrimitiveTypes.Int32},
		{Name: "bbox", Type: arrow.FixedSizeListOf(4, arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "landmarks", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "labels", Type: arrow.FixedSizeListOf(int32(n), arrow.PrimitiveTypes.Int8)},
	}
	kv := []string{MetaRoot, head.Root, MetaAttributes, strconv.Itoa(n)}
	if head.ImagesFingerprint != "" {
		kv = append(kv, MetaImagesFingerprint, head.ImagesFingerprint)
	}
	kind := KindSamples
	if images {
		fields = append(fields, arrow.Field{Name: "pixels", Type: arrow.BinaryTypes.Binary})
		kind = KindImages
		kv = append(kv, MetaHeight, strconv.Itoa(head.Height), MetaWidth, strconv.Itoa(head.Width))
		if c := head.Crop; c != nil {
			// Marshalling two plain fields cannot fail.
			text, _ := json.Marshal(c)
			kv = append(kv, MetaCrop, string(text))
		}
	}
	return arrow.NewSchema(fields, withKind(kind, kv...))
}

// PutSamples stores s as a samples table, or as an images table when
// s.Pixels is set.
func (st *Store) PutSamples(s *Samples) (ID, error) {
	images := s.Pixels != nil
	schema := SamplesSchema(s, images)
	if len(s.Labels) != s.Len()*s.NumAttributes {
		return ID{}, fmt.Errorf("put samples: %d labels for %d rows x %d attributes",
			len(s.Labels), s.Len(), s.NumAttributes)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	imageB := b.Field(0).(*array.StringBuilder)
	partB := b.Field(1).(*array.StringBuilder)
	catB := b.Field(2).(*array.Int32Builder)
	bboxB := b.Field(3).(*array.FixedSizeListBuilder)
	bboxV := bboxB.ValueBuilder().(*array.Int32Builder)
	lmB := b.Field(4).(*array.ListBuilder)
	lmV := lmB.ValueBuilder().(*array.Int32Builder)
	labB := b.Field(5).(*array.FixedSizeListBuilder)
	labV := labB.ValueBuilder().(*array.Int8Builder)
	for i := range s.Image {
		imageB.Append(s.Image[i])
		partB.Append(s.Partition[i])
		catB.Append(s.Category[i])
		if s.HasBBox[i] {
			bboxB.Append(true)
			bboxV.AppendValues(s.BBox[i][:], nil)
		} else {
			bboxB.AppendNull()
		}
		if s.Landmarks[i] != nil {
			lmB.Append(true)
			lmV.AppendValues(s.Landmarks[i], nil)
		} else {
			lmB.AppendNull()
		}
		labB.Append(true)
		labV.AppendValues(s.Row(i), nil)
		if images {
			b.Field(6).(*array.BinaryBuilder).Append(s.Pixels[i])
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return st.PutRecords(schema, rec)
}

// GetSamples reads a samples or images table.
func (st *Store) GetSamples(id ID) (*Samples, error) {
	tbl, err := st.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	s, err := samplesFromTable(tbl)
	if err != nil {
		return nil, fmt.Errorf("samples %s: %w", id.Short(), err)
	}
	return s, nil
}

func samplesFromTable(tbl arrow.Table) (*Samples, error) {
	md := tbl.Schema().Metadata()
	kind := KindOf(tbl.Schema())
	if kind != KindSamples && kind != KindImages {
		return nil, fmt.Errorf("is a %q artifact, want samples or images", kind)
	}
	n, err := metaInt(md, MetaAttributes)
	if err != nil {
		return nil, err
	}
	s := &Samples{Root: metaString(md, MetaRoot), ImagesFingerprint: metaString(md, MetaImagesFingerprint),
		NumAttributes: n}
	if kind == KindImages {
		if s.Height, err = metaInt(md, MetaHeight); err != nil {
			return nil, err
		}
		if s.Width, err = metaInt(md, MetaWidth); err != nil {
			return nil, err
		}
		if text := metaString(md, MetaCrop); text != "" {
			s.Crop = &CropSpec{}
			if err := json.Unmarshal([]byte(text), s.Crop); err != nil {
				return nil, fmt.Errorf("schema metadata %q: %w", MetaCrop, err)
			}
		}
		s.Pixels = [][]byte{}
	}
	err = eachRecord(tbl, func(rec arrow.RecordBatch) error { return s.appendRecord(rec, kind == KindImages) })
	return s, err
}

func (s *Samples) appendRecord(rec arrow.RecordBatch, images bool) error {
	img, err1 := column[*array.String](rec, "image")
	part, err2 := column[*array.String](rec, "partition")
	cat, err3 := column[*array.Int32](rec, "category")
	bbox, err4 := column[*array.FixedSizeList](rec, "bbox")
	lm, err5 := column[*array.List](rec, "landmarks")
	lab, err6 := column[*array.FixedSizeList](rec, "labels")
	if err := firstErr(err1, err2, err3, err4, err5, err6); err != nil {
		return err
	}
	bboxV := bbox.ListValues().(*array.Int32)
	lmV := lm.ListValues().(*array.Int32)
	labV := lab.ListValues().(*array.Int8)
	var pixels *array.Binary
	if images {
		var err error
		if pixels, err = column[*array.Binary](rec, "pixels"); err != nil {
			return err
		}
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		s.Image = append(s.Image, img.Value(i))
		s.Partition = append(s.Partition, part.Value(i))
		s.Category = append(s.Category, cat.Value(i))
		var box [4]int32
		if bbox.IsValid(i) {
			start, _ := bbox.ValueOffsets(i)
			copy(box[:], bboxV.Int32Values()[start:start+4])
		}
		s.BBox = append(s.BBox, box)
		s.HasBBox = append(s.HasBBox, bbox.IsValid(i))
		var marks []int32
		if lm.IsValid(i) {
			start, end := lm.ValueOffsets(i)
			marks = append([]int32{}, lmV.Int32Values()[start:end]...)
		}
		s.Landmarks = append(s.Landmarks, marks)
		start, end := lab.ValueOffsets(i)
		s.Labels = append(s.Labels, labV.Int8Values()[start:end]...)
		if images {
			s.Pixels = append(s.Pixels, append([]byte{}, pixels.Value(i)...))
		}
	}
	return nil
}
