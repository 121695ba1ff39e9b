package images

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
)

// TableBadImages is the artifacts.MetaTable value of a bad_images table.
const TableBadImages = "bad-images"

// BadImage is one row of a bad_images table: an image left out, and why.
type BadImage struct {
	// Image is the path relative to the samples' root.
	Image     string
	Partition string
	// Reason is the decoding error, with the path relative to the root
	// so the table reads the same on every machine.
	Reason string
}

// BadImagesSchema is the schema of a bad_images table.
var BadImagesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "image", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
}, func() *arrow.Metadata {
	md := arrow.NewMetadata([]string{artifacts.MetaKind, artifacts.MetaTable},
		[]string{artifacts.KindTable, TableBadImages})
	return &md
}())

// PutBadImages stores rows as a bad_images table (empty when rows is).
func PutBadImages(store *artifacts.Store, rows []BadImage) (artifacts.ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, BadImagesSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.Image)
		b.Field(1).(*array.StringBuilder).Append(r.Partition)
		b.Field(2).(*array.StringBuilder).Append(r.Reason)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	id, err := store.PutRecords(BadImagesSchema, rec)
	if err != nil {
		return id, fmt.Errorf("store bad_images: %w", err)
	}
	return id, nil
}

// GetBadImages reads a bad_images table.
func GetBadImages(store *artifacts.Store, id artifacts.ID) ([]BadImage, error) {
	tbl, err := store.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	md := tbl.Schema().Metadata()
	if i := md.FindKey(artifacts.MetaTable); i < 0 || md.Values()[i] != TableBadImages {
		return nil, fmt.Errorf("read bad_images %s: not a %s table", id.Short(), TableBadImages)
	}
	rows := []BadImage{}
	reader := array.NewTableReader(tbl, 1<<16)
	defer reader.Release()
	for reader.Next() {
		rec := reader.RecordBatch()
		cols := [3]*array.String{}
		for c := range cols {
			col, ok := rec.Column(c).(*array.String)
			if !ok {
				return nil, fmt.Errorf("read bad_images %s: column %d is %s, want utf8",
					id.Short(), c, rec.Column(c).DataType())
			}
			cols[c] = col
		}
		for i := range int(rec.NumRows()) {
			rows = append(rows, BadImage{cols[0].Value(i), cols[1].Value(i), cols[2].Value(i)})
		}
	}
	if err := reader.Err(); err != nil {
		return nil, fmt.Errorf("read bad_images %s: %w", id.Short(), err)
	}
	return rows, nil
}
