package pixels

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // registered for image.DecodeConfig
	_ "image/png"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/disintegration/imaging"
)

// MaxPixels is the largest width x height Load accepts: 100 megapixels,
// far above any fashion photo (DeepFashion's are at most 300 px) and far
// below what a declared 60000 x 60000 image would allocate (14 GB).
const MaxPixels = 100_000_000

// ErrTooLarge reports an image that declares more than MaxPixels.
var ErrTooLarge = errors.New("image too large")

// ErrEmpty reports a zero-byte file.
var ErrEmpty = errors.New("empty file")

// Load reads, decodes and orients the image at path.
func Load(path string) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	defer f.Close()
	return Decode(f, path)
}

// Decode is Load for an already opened file; name is used in errors.
func Decode(r io.ReadSeeker, name string) (*image.NRGBA, error) {
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode %s: %w", name, ErrEmpty)
	}
	cfg, format, err := image.DecodeConfig(br)
	if err != nil {
		return nil, decodeError(name, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("decode %s: %s declares %dx%d pixels, more than %d: %w",
			name, format, cfg.Width, cfg.Height, MaxPixels, ErrTooLarge)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	img, err := imaging.Decode(bufio.NewReader(r), imaging.AutoOrientation(true))
	if err != nil {
		return nil, decodeError(name, format, err)
	}
	return Opaque(img), nil
}

// decodeError names the file and says "truncated" when the data ended
// early, the commonest damage of a partly copied dataset.
func decodeError(name, format string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if format == "" {
			format = "image"
		}
		return fmt.Errorf("decode %s: truncated %s: %w", name, format, err)
	}
	return fmt.Errorf("decode %s: %w", name, err)
}

// Opaque converts img to an opaque NRGBA with origin (0, 0), compositing
// any transparency on white.
func Opaque(img image.Image) *image.NRGBA {
	b := img.Bounds()
	rect := image.Rect(0, 0, b.Dx(), b.Dy())
	dst := image.NewRGBA(rect)
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		// draw.Src has fast paths for YCbCr, Gray and CMYK sources.
		draw.Draw(dst, rect, img, b.Min, draw.Src)
	} else {
		draw.Draw(dst, rect, image.NewUniform(color.White), image.Point{}, draw.Src)
		draw.Draw(dst, rect, img, b.Min, draw.Over)
	}
	// Every alpha is 255, where premultiplied and straight RGBA agree.
	return &image.NRGBA{Pix: dst.Pix, Stride: dst.Stride, Rect: rect}
}

// BoxFit says how a bounding box lies on its image.
type BoxFit int

const (
	// BoxInside: the box lies within the image.
	BoxInside BoxFit = iota
	// BoxClipped: the box reaches beyond the image; the crop keeps the
	// part inside.
	BoxClipped
	// BoxEmpty: no part of the box with any area lies inside the image;
	// the crop is the whole image.
	BoxEmpty
)

// CropBox crops img to bbox (x1, y1, x2, y2 in pixels) grown by margin
// times the box's width and height on each side, clipped to the image,
// and says how the box itself lay on the image. A box with no area inside
// the image yields the whole image: a bad box must not silently turn a
// sample into a sliver. The margin may reach beyond the image without
// making the box clipped.
func CropBox(img *image.NRGBA, bbox [4]int32, margin float64) (*image.NRGBA, BoxFit) {
	b := img.Bounds()
	box := image.Rect(int(bbox[0]), int(bbox[1]), int(bbox[2]), int(bbox[3]))
	if box.Intersect(b).Empty() {
		return imaging.Clone(img), BoxEmpty
	}
	fit := BoxInside
	if !box.In(b) {
		fit = BoxClipped
	}
	w, h := float64(bbox[2]-bbox[0]), float64(bbox[3]-bbox[1])
	r := image.Rect(
		int(float64(bbox[0])-margin*w), int(float64(bbox[1])-margin*h),
		int(float64(bbox[2])+margin*w+0.5), int(float64(bbox[3])+margin*h+0.5),
	).Intersect(b)
	return imaging.Crop(img, r), fit
}

// BoxTally counts, safely from several goroutines, the boxes CropBox
// found clipped or empty, for one warning per stage.
type BoxTally struct {
	clipped, empty atomic.Int64
}

// Add counts one box.
func (t *BoxTally) Add(f BoxFit) {
	switch f {
	case BoxClipped:
		t.clipped.Add(1)
	case BoxEmpty:
		t.empty.Add(1)
	}
}

// Warn logs how many boxes were clipped or empty, if any.
func (t *BoxTally) Warn(log *slog.Logger) {
	clipped, empty := t.clipped.Load(), t.empty.Load()
	if clipped+empty == 0 {
		return
	}
	log.Warn("bounding boxes beyond their images: clipped ones are cropped to the part inside, "+
		"for empty ones the whole image is used", "clipped", clipped, "empty", empty)
}

// Fit resizes img to exactly w x h with a linear filter, not keeping the
// aspect ratio, as Keras' target_size does; the notebook's models were
// trained that way. Downscaling by more than 2 uses a box filter first
// so that thin stripes do not alias.
func Fit(img *image.NRGBA, w, h int) *image.NRGBA {
	if img.Rect.Dx() == w && img.Rect.Dy() == h {
		return imaging.Clone(img)
	}
	filter := imaging.Linear
	if img.Rect.Dx() > 2*w || img.Rect.Dy() > 2*h {
		filter = imaging.Box
	}
	return imaging.Resize(img, w, h, filter)
}

// ToTensor writes img into dst as channels x height x width float32, each
// value (p/scale - mean[c]) / std[c] for a byte p of channel c. With scale
// 255, mean 0.485 0.456 0.406 and std 0.229 0.224 0.225 this is the
// torchvision normalisation; with scale 255, mean 0 and std 1, Keras'
// rescale=1/255.
func ToTensor(dst []float32, img *image.NRGBA, scale float32, mean, std [3]float32) error {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if len(dst) < 3*w*h {
		return fmt.Errorf("to tensor: %d floats for a %dx%d image, want %d", len(dst), w, h, 3*w*h)
	}
	if scale == 0 || std[0] == 0 || std[1] == 0 || std[2] == 0 {
		return errors.New("to tensor: scale and std must not be zero")
	}
	// A 256-entry table per channel turns the arithmetic into a lookup.
	var lut [3][256]float32
	for c := range 3 {
		for p := range 256 {
			lut[c][p] = (float32(p)/scale - mean[c]) / std[c]
		}
	}
	plane := w * h
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := range w {
			i := y*w + x
			dst[i] = lut[0][row[4*x]]
			dst[plane+i] = lut[1][row[4*x+1]]
			dst[2*plane+i] = lut[2][row[4*x+2]]
		}
	}
	return nil
}

// RGB returns img's pixels as height x width x 3 bytes, the layout of the
// pixels column of an images table.
func RGB(img *image.NRGBA) []byte {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]byte, 0, 3*w*h)
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < 4*w; x += 4 {
			out = append(out, row[x], row[x+1], row[x+2])
		}
	}
	return out
}

// FromRGB builds an image from height x width x 3 bytes.
func FromRGB(pix []byte, w, h int) (*image.NRGBA, error) {
	if w <= 0 || h <= 0 || len(pix) != 3*w*h {
		return nil, fmt.Errorf("pixels: %d bytes for %dx%d RGB, want %d", len(pix), w, h, 3*w*h)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i, j := 0, 0; i < len(pix); i, j = i+3, j+4 {
		img.Pix[j], img.Pix[j+1], img.Pix[j+2], img.Pix[j+3] = pix[i], pix[i+1], pix[i+2], 255
	}
	return img, nil
}
