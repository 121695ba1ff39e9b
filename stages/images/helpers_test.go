package images_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"stitch/artifacts"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/images"
)

// row describes one sample of a test dataset.
type row struct {
	image string
	bbox  *[4]int32
}

// box returns a pointer to a bounding box, for row literals.
func box(x1, y1, x2, y2 int32) *[4]int32 { return &[4]int32{x1, y1, x2, y2} }

// samplesOf builds a samples table under root with two attributes whose
// labels and landmarks differ per row, so a mixed-up row shows.
func samplesOf(root, partition string, rows []row) *artifacts.Samples {
	s := &artifacts.Samples{Root: root, NumAttributes: 2}
	for i, r := range rows {
		s.Image = append(s.Image, r.image)
		s.Partition = append(s.Partition, partition)
		s.Category = append(s.Category, int32(i%3))
		var bb [4]int32
		if r.bbox != nil {
			bb = *r.bbox
		}
		s.BBox = append(s.BBox, bb)
		s.HasBBox = append(s.HasBBox, r.bbox != nil)
		var marks []int32
		if i%2 == 0 {
			marks = []int32{int32(i), int32(2 * i)}
		}
		s.Landmarks = append(s.Landmarks, marks)
		s.Labels = append(s.Labels, []int8{artifacts.Present, artifacts.Absent, artifacts.Unknown}[i%3],
			artifacts.Unknown)
	}
	return s
}

// writeFile writes data to root/rel, creating folders.
func writeFile(t testing.TB, root, rel string, data []byte) {
	t.Helper()
	path := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// framed is a w x h picture of colour out with the rectangle r in colour in.
func framed(w, h int, out, in color.NRGBA, r image.Rectangle) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := out
			if image.Pt(x, y).In(r) {
				c = in
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// hugePNGHeader is the start of a PNG that declares w x h pixels: a
// signature and a valid IHDR chunk, no image data.
func hugePNGHeader(w, h uint32) []byte {
	ihdr := make([]byte, 0, 17)
	ihdr = append(ihdr, "IHDR"...)
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, no interlace
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

// syncBuffer is a bytes.Buffer that several goroutines may log to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is what one images run produced.
type result struct {
	imagesID, badID artifacts.ID
	images          *artifacts.Samples
	bad             []images.BadImage
	store           *artifacts.Store
}

// materialise runs the stage on s with p, logging to log (nil: discard).
func materialise(t *testing.T, s *artifacts.Samples, p *images.Params, log io.Writer) (result, error) {
	t.Helper()
	run := pipelinetest.NewRun(t, "images-test")
	if log == nil {
		log = io.Discard
	}
	run.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	id, err := run.St.PutSamples(s)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("samples", id)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := images.New().Run(t.Context(), run, p); err != nil {
		return result{}, err
	}
	res := result{store: run.St}
	if res.imagesID, err = run.Output("images"); err != nil {
		t.Fatal(err)
	}
	if res.badID, err = run.Output("bad_images"); err != nil {
		t.Fatal(err)
	}
	if res.images, err = run.St.GetSamples(res.imagesID); err != nil {
		t.Fatal(err)
	}
	if res.bad, err = images.GetBadImages(run.St, res.badID); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

// withoutPixels returns s's sample columns only, for comparing rows.
func withoutPixels(s *artifacts.Samples) *artifacts.Samples {
	c := *s
	c.Pixels, c.Height, c.Width, c.Crop = nil, 0, 0, nil
	return &c
}

// rowsOf returns the rows of s named keep, in keep's order.
func rowsOf(s *artifacts.Samples, keep ...string) *artifacts.Samples {
	out := s.EmptyLike()
	for _, k := range keep {
		for i := range s.Len() {
			if s.Image[i] == k {
				out.Append(s, i)
			}
		}
	}
	return out
}

// sized returns the default parameters at height x width.
func sized(height, width int) *images.Params {
	p := images.NewParams()
	p.ImageSize = images.Size{height, width}
	return p
}
