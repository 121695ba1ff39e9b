package artifacts

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// streamSamples is n rows over 2 attributes, with 2 x 3 pixels when
// images is set.
func streamSamples(n int, images bool) *Samples {
	s := &Samples{Root: "/data/x", NumAttributes: 2}
	if images {
		s.Pixels, s.Height, s.Width = [][]byte{}, 2, 3
	}
	for i := range n {
		s.Image = append(s.Image, "img/"+strings.Repeat("a", i%5)+".jpg")
		s.Partition = append(s.Partition, "train")
		s.Category = append(s.Category, int32(i%4))
		var bbox [4]int32 // zero without a box, as GetSamples reads it
		if i%3 != 0 {
			bbox = [4]int32{int32(i), 1, 2, 3}
		}
		s.BBox = append(s.BBox, bbox)
		s.HasBBox = append(s.HasBBox, i%3 != 0)
		var marks []int32
		if i%2 == 0 {
			marks = []int32{int32(i), 7}
		}
		s.Landmarks = append(s.Landmarks, marks)
		s.Labels = append(s.Labels, int8(i%3-1), Unknown)
		if images {
			px := make([]byte, 18)
			for j := range px {
				px[j] = byte(i + j)
			}
			s.Pixels = append(s.Pixels, px)
		}
	}
	return s
}

// streamAll writes every row of s through WriteSamples and returns the
// number of record batches written.
func streamAll(store *Store, s *Samples, batchRows int) (ID, int, error) {
	var writer *SamplesWriter
	id, err := store.WriteSamples(headOf(s), batchRows, func(w *SamplesWriter) error {
		writer = w
		for i := range s.Len() {
			var px []byte
			if s.Pixels != nil {
				px = s.Pixels[i]
			}
			if err := w.Append(s, i, px); err != nil {
				return err
			}
		}
		return nil
	})
	// The last batch is written after fill returns.
	return id, writer.Batches(), err
}

func TestWriteSamplesMatchesPutSamples(t *testing.T) {
	store, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		rows      int
		images    bool
		batchRows int
	}{
		{"samples, one batch", 10, false, 256},
		{"images, one batch", 10, true, 10},
		{"empty images", 0, true, 4},
		{"samples, batches", 10, false, 3},
		{"images, batches", 10, true, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := streamSamples(tc.rows, tc.images)
			id, batches, err := streamAll(store, in, tc.batchRows)
			if err != nil {
				t.Fatal(err)
			}
			if want := max(1, (tc.rows+tc.batchRows-1)/tc.batchRows); batches != want {
				t.Errorf("%d batches written, want %d", batches, want)
			}
			got, err := store.GetSamples(id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(in, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// One batch holds what PutSamples writes, byte for byte.
			if tc.rows <= tc.batchRows {
				putID, err := store.PutSamples(in)
				if err != nil {
					t.Fatal(err)
				}
				if putID != id {
					t.Errorf("WriteSamples stored %s, PutSamples %s: want the same bytes", id.Short(), putID.Short())
				}
			}
		})
	}
}

func TestWriteSamplesErrors(t *testing.T) {
	dir := t.TempDir()
	store, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := streamSamples(3, true)
	head := headOf(in)

	_, err = store.WriteSamples(head, 2, func(w *SamplesWriter) error {
		return w.Append(in, 1, []byte{1, 2})
	})
	if err == nil || !strings.Contains(err.Error(), "img/a.jpg: 2 pixel bytes, want 18") {
		t.Errorf("short pixels: err = %v", err)
	}
	_, err = store.WriteSamples(in.EmptyLike(), 2, func(w *SamplesWriter) error {
		return w.Append(in, 0, in.Pixels[0])
	})
	if err == nil || !strings.Contains(err.Error(), "pixels for a samples table") {
		t.Errorf("pixels in a samples table: err = %v", err)
	}
	other := streamSamples(1, true)
	other.NumAttributes, other.Labels = 1, []int8{1}
	_, err = store.WriteSamples(head, 2, func(w *SamplesWriter) error {
		return w.Append(other, 0, other.Pixels[0])
	})
	if err == nil || !strings.Contains(err.Error(), "1 attributes, the table has 2") {
		t.Errorf("attribute count mismatch: err = %v", err)
	}

	// A failing fill, after batches were written, stores nothing.
	boom := errors.New("boom")
	_, err = store.WriteSamples(head, 1, func(w *SamplesWriter) error {
		for i := range in.Len() {
			if err := w.Append(in, i, in.Pixels[i]); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("fill error: err = %v, want boom", err)
	}
	for _, sub := range []string{"objects", "tmp"} {
		entries, err := os.ReadDir(dir + "/" + sub)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s holds %d entries after failed writes, want none", sub, len(entries))
		}
	}
}

// headOf is the row-less head that WriteSamples takes for a table like s.
func headOf(s *Samples) *Samples {
	head := s.EmptyLike()
	if s.Pixels != nil {
		head.Pixels = [][]byte{}
	}
	return head
}
