package artifacts

import (
	"bufio"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// SamplesWriter appends rows to a samples or images table that is being
// stored, writing an Arrow record batch every batchRows rows, so that a
// table much larger than memory (a materialised partition) never has to
// be held whole. Get one from Store.WriteSamples.
type SamplesWriter struct {
	fw        *ipc.FileWriter
	b         *array.RecordBuilder
	images    bool
	numAttrs  int
	pixelLen  int
	batchRows int
	pending   int
	rows      int
	batches   int
}

// WriteSamples stores the table that fill appends to, batch by batch, and
// returns its ID. head holds no rows: its Root and NumAttributes, and for
// an images table a non-nil Pixels with Height and Width, give the schema,
// the same one PutSamples writes, so GetSamples reads the result. Rows go
// out in the order they are appended, batchRows per record batch (at
// least 1; an empty table gets one empty batch). When fill fails nothing
// is stored.
func (st *Store) WriteSamples(head *Samples, batchRows int, fill func(*SamplesWriter) error) (ID, error) {
	images := head.Pixels != nil
	if images && (head.Height <= 0 || head.Width <= 0) {
		return ID{}, fmt.Errorf("write samples: images table of %dx%d pixels", head.Height, head.Width)
	}
	schema := SamplesSchema(head, images)
	return st.Write(func(w io.Writer) error {
		// The IPC writer issues many small writes; the store's file is not
		// buffered.
		bw := bufio.NewWriterSize(w, 1<<20)
		fw, err := ipc.NewFileWriter(bw, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
		if err != nil {
			return fmt.Errorf("write samples: %w", err)
		}
		sw := &SamplesWriter{
			fw: fw, images: images, numAttrs: head.NumAttributes,
			pixelLen: 3 * head.Height * head.Width, batchRows: max(1, batchRows),
			b: array.NewRecordBuilder(memory.DefaultAllocator, schema),
		}
		defer sw.b.Release()
		if err := fill(sw); err != nil {
			fw.Close() // fill's error is the one to report
			return err
		}
		// An empty table still gets one empty batch, as PutSamples writes.
		if sw.pending > 0 || sw.batches == 0 {
			if err := sw.flush(); err != nil {
				fw.Close() // the flush error is the one to report
				return err
			}
		}
		if err := fw.Close(); err != nil {
			return fmt.Errorf("write samples: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write samples: %w", err)
		}
		return nil
	})
}

// Append adds row i of src with its pixels, Height x Width x 3 RGB bytes
// for an images table and nil for a samples table. src's own Pixels are
// ignored. The bytes are copied: the caller may reuse pixels.
func (sw *SamplesWriter) Append(src *Samples, i int, pixels []byte) error {
	if src.NumAttributes != sw.numAttrs {
		return fmt.Errorf("append sample %s: %d attributes, the table has %d",
			src.Image[i], src.NumAttributes, sw.numAttrs)
	}
	if sw.images && len(pixels) != sw.pixelLen {
		return fmt.Errorf("append sample %s: %d pixel bytes, want %d", src.Image[i], len(pixels), sw.pixelLen)
	}
	if !sw.images && pixels != nil {
		return fmt.Errorf("append sample %s: pixels for a samples table", src.Image[i])
	}

	b := sw.b
	if sw.images && sw.pending == 0 {
		// One allocation per batch: growing by doubling would copy the
		// pixels several times and briefly hold old and new buffers.
		b.Field(6).(*array.BinaryBuilder).ReserveData(sw.batchRows * sw.pixelLen)
	}
	b.Field(0).(*array.StringBuilder).Append(src.Image[i])
	b.Field(1).(*array.StringBuilder).Append(src.Partition[i])
	b.Field(2).(*array.Int32Builder).Append(src.Category[i])
	bboxB := b.Field(3).(*array.FixedSizeListBuilder)
	if src.HasBBox[i] {
		bboxB.Append(true)
		bboxB.ValueBuilder().(*array.Int32Builder).AppendValues(src.BBox[i][:], nil)
	} else {
		bboxB.AppendNull()
	}
	lmB := b.Field(4).(*array.ListBuilder)
	if src.Landmarks[i] != nil {
		lmB.Append(true)
		lmB.ValueBuilder().(*array.Int32Builder).AppendValues(src.Landmarks[i], nil)
	} else {
		lmB.AppendNull()
	}
	labB := b.Field(5).(*array.FixedSizeListBuilder)
	labB.Append(true)
	labB.ValueBuilder().(*array.Int8Builder).AppendValues(src.Row(i), nil)
	if sw.images {
		b.Field(6).(*array.BinaryBuilder).Append(pixels)
	}

	sw.pending++
	sw.rows++
	if sw.pending >= sw.batchRows {
		return sw.flush()
	}
	return nil
}

// flush writes the pending rows as one record batch.
func (sw *SamplesWriter) flush() error {
	rec := sw.b.NewRecordBatch()
	defer rec.Release()
	if err := sw.fw.Write(rec); err != nil {
		return fmt.Errorf("write samples: batch %d: %w", sw.batches, err)
	}
	sw.pending = 0
	sw.batches++
	return nil
}

// Rows is the number of rows appended so far. Rows and Batches may be
// read after WriteSamples returns, for the totals: the last batch is
// written after fill returns.
func (sw *SamplesWriter) Rows() int { return sw.rows }

// Batches is the number of record batches written so far.
func (sw *SamplesWriter) Batches() int { return sw.batches }
