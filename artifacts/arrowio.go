package artifacts

import (
	"bytes"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// MetaKind is the schema metadata key that names an artifact's kind
// (attributes, samples, model, ...).
const MetaKind = "stitch.kind"

// WriteRecords writes records, which all share schema, as one Arrow IPC file.
func WriteRecords(w io.Writer, schema *arrow.Schema, records ...arrow.RecordBatch) error {
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return fmt.Errorf("write arrow file: %w", err)
	}
	for _, rec := range records {
		if err := fw.Write(rec); err != nil {
			fw.Close()
			return fmt.Errorf("write arrow file: %w", err)
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("write arrow file: %w", err)
	}
	return nil
}

// PutRecords stores records as one Arrow IPC file and returns its ID.
func (s *Store) PutRecords(schema *arrow.Schema, records ...arrow.RecordBatch) (ID, error) {
	return s.Write(func(w io.Writer) error { return WriteRecords(w, schema, records...) })
}

// ReadTable decodes an Arrow IPC file into one table. The caller releases it.
func ReadTable(data []byte) (arrow.Table, error) {
	fr, err := ipc.NewFileReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("read arrow file: %w", err)
	}
	defer fr.Close()
	records := make([]arrow.RecordBatch, 0, fr.NumRecords())
	defer func() {
		for _, rec := range records {
			rec.Release()
		}
	}()
	for i := 0; i < fr.NumRecords(); i++ {
		rec, err := fr.RecordBatch(i)
		if err != nil {
			return nil, fmt.Errorf("read arrow file: record %d: %w", i, err)
		}
		rec.Retain()
		records = append(records, rec)
	}
	return array.NewTableFromRecords(fr.Schema(), records), nil
}

// GetTable reads, verifies and decodes object id.
func (s *Store) GetTable(id ID) (arrow.Table, error) {
	data, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	table, err := ReadTable(data)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", id.Short(), err)
	}
	return table, nil
}

// KindOf returns the artifact kind recorded in a schema's metadata, or "".
func KindOf(schema *arrow.Schema) string {
	md := schema.Metadata()
	if i := md.FindKey(MetaKind); i >= 0 {
		return md.Values()[i]
	}
	return ""
}
