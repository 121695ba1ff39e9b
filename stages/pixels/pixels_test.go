package pixels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// near reports whether two colours differ by at most tol per channel.
func near(a, b color.NRGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && a.A == b.A
}

func halves(w, h int, left, right color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			if x < w/2 {
				img.Set(x, y, left)
			} else {
				img.Set(x, y, right)
			}
		}
	}
	return img
}

var (
	red  = color.NRGBA{255, 0, 0, 255}
	blue = color.NRGBA{0, 0, 255, 255}
)

func TestLoadRGBJPEG(t *testing.T) {
	path := writeFile(t, "rgb.jpg", encodeJPEG(t, halves(32, 16, red, blue)))
	img, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if img.Rect != image.Rect(0, 0, 32, 16) {
		t.Fatalf("bounds %v", img.Rect)
	}
	if got := img.NRGBAAt(2, 8); !near(got, red, 12) {
		t.Errorf("left pixel %v, want red", got)
	}
}

func TestLoadGreyscaleJPEG(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range g.Pix {
		g.Pix[i] = 100
	}
	img, err := Load(writeFile(t, "grey.jpg", encodeJPEG(t, g)))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.NRGBAAt(5, 5); !near(got, color.NRGBA{100, 100, 100, 255}, 2) {
		t.Errorf("pixel %v, want grey 100", got)
	}
}

// cmykJPEG writes a baseline 8x8 JPEG with four components and an Adobe
// APP14 marker (transform 0: CMYK), which image/jpeg cannot encode. Every
// block is flat, so only DC coefficients are coded. Adobe stores CMYK
// inverted: 255 means no ink.
func cmykJPEG(c, m, y, k uint8) []byte {
	var out bytes.Buffer
	seg := func(marker byte, payload []byte) {
		out.Write([]byte{0xff, marker})
		binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
		out.Write(payload)
	}
	out.Write([]byte{0xff, 0xd8})
	seg(0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}) // transform 0
	seg(0xdb, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...))      // all quantisers 1
	seg(0xc0, []byte{8, 0, 8, 0, 8, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0})
	// DC table: categories 0..11, all 4-bit codes 0000..1011.
	dc := []byte{0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	seg(0xc4, append(dc, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))
	// AC table: only end-of-block, code "0".
	seg(0xc4, []byte{0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00})
	seg(0xda, []byte{4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0})

	var bits []bool
	put := func(v, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, v>>i&1 == 1)
		}
	}
	for _, ink := range []uint8{c, m, y, k} {
		stored := 255 - int(ink)
		dcValue := 8 * (stored - 128) // a flat block's DC with quantiser 1
		size, mag := 0, dcValue
		if mag < 0 {
			mag = -mag
		}
		for mag>>size != 0 {
			size++
		}
		put(size, 4)
		if dcValue < 0 {
			dcValue += 1<<size - 1
		}
		put(dcValue, size)
		put(0, 1) // end of block
	}
	for len(bits)%8 != 0 {
		bits = append(bits, true)
	}
	for i := 0; i < len(bits); i += 8 {
		var b byte
		for j := range 8 {
			if bits[i+j] {
				b |= 0x80 >> j
			}
		}
		out.WriteByte(b)
		if b == 0xff {
			out.WriteByte(0) // byte stuffing
		}
	}
	out.Write([]byte{0xff, 0xd9})
	return out.Bytes()
}

func TestLoadCMYKJPEG(t *testing.T) {
	path := writeFile(t, "cmyk.jpg", cmykJPEG(0, 255, 255, 0)) // magenta + yellow ink: red
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jpeg.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.(*image.CMYK); !ok {
		t.Fatalf("the test file decodes as %T, want *image.CMYK", raw)
	}
	img, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.NRGBAAt(3, 3); !near(got, red, 3) {
		t.Errorf("pixel %v, want red", got)
	}
}

func TestLoadPNGWithAlpha(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	src.SetNRGBA(0, 0, color.NRGBA{0, 0, 0, 0})      // transparent: white
	src.SetNRGBA(1, 0, color.NRGBA{255, 0, 0, 128})  // half red on white
	src.SetNRGBA(2, 0, color.NRGBA{10, 20, 30, 255}) // opaque
	src.SetNRGBA(3, 0, color.NRGBA{0, 0, 255, 255})  // opaque blue
	img, err := Load(writeFile(t, "alpha.png", encodePNG(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	want := []color.NRGBA{{255, 255, 255, 255}, {255, 127, 127, 255}, {10, 20, 30, 255}, blue}
	for x, w := range want {
		if got := img.NRGBAAt(x, 0); !near(got, w, 1) {
			t.Errorf("pixel %d = %v, want %v", x, got, w)
		}
	}
}

func TestLoadPalettedPNG(t *testing.T) {
	src := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Transparent, red})
	src.SetColorIndex(1, 1, 1)
	img, err := Load(writeFile(t, "pal.png", encodePNG(t, src)))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.NRGBAAt(0, 0); got != (color.NRGBA{255, 255, 255, 255}) {
		t.Errorf("transparent palette entry: %v, want white", got)
	}
	if got := img.NRGBAAt(1, 1); got != red {
		t.Errorf("red palette entry: %v", got)
	}
}

// exifJPEG inserts an APP1 Exif segment with the given orientation after
// the SOI marker of a JPEG.
func exifJPEG(jpg []byte, orientation uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8)) // first IFD
	binary.Write(&tiff, binary.BigEndian, uint16(1)) // one entry
	binary.Write(&tiff, binary.BigEndian, uint16(0x0112))
	binary.Write(&tiff, binary.BigEndian, uint16(3)) // SHORT
	binary.Write(&tiff, binary.BigEndian, uint32(1)) // count
	binary.Write(&tiff, binary.BigEndian, orientation)
	binary.Write(&tiff, binary.BigEndian, uint16(0)) // padding of the value field
	binary.Write(&tiff, binary.BigEndian, uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	var out bytes.Buffer
	out.Write(jpg[:2])
	out.Write([]byte{0xff, 0xe1})
	binary.Write(&out, binary.BigEndian, uint16(len(payload)+2))
	out.Write(payload)
	out.Write(jpg[2:])
	return out.Bytes()
}

func TestLoadEXIFOrientation(t *testing.T) {
	// Stored 32 wide, 16 high, red on the left. Orientation 6 means the
	// camera was turned: display it rotated 90 degrees clockwise, so red
	// ends up on top.
	jpg := encodeJPEG(t, halves(32, 16, red, blue))
	img, err := Load(writeFile(t, "rot.jpg", exifJPEG(jpg, 6)))
	if err != nil {
		t.Fatal(err)
	}
	if img.Rect != image.Rect(0, 0, 16, 32) {
		t.Fatalf("bounds %v, want 16x32", img.Rect)
	}
	if top, bottom := img.NRGBAAt(8, 2), img.NRGBAAt(8, 29); !near(top, red, 12) || !near(bottom, blue, 12) {
		t.Errorf("top %v bottom %v, want red above blue", top, bottom)
	}
}

func TestLoadBadFiles(t *testing.T) {
	jpg := encodeJPEG(t, halves(64, 64, red, blue))
	tests := []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"zero-byte.jpg", nil, "empty file", ErrEmpty},
		{"truncated.jpg", jpg[:len(jpg)/2], "truncated jpeg", nil},
		{"header-only.jpg", jpg[:20], "", nil},
		{"not-an-image.jpg", []byte("hello, world"), "unknown format", nil},
		{"huge.png", hugePNGHeader(60000, 60000), "declares 60000x60000 pixels", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.name, tt.data)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one naming %s and containing %q", err, path, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.jpg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// hugePNGHeader is a PNG signature and an IHDR chunk declaring w x h
// pixels, with no image data at all: decoding it would fail differently,
// so the size error proves the check happens before decoding.
func hugePNGHeader(w, h uint32) []byte {
	var ihdr bytes.Buffer
	ihdr.WriteString("IHDR")
	binary.Write(&ihdr, binary.BigEndian, w)
	binary.Write(&ihdr, binary.BigEndian, h)
	ihdr.Write([]byte{8, 2, 0, 0, 0}) // 8-bit RGB
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&out, binary.BigEndian, uint32(13))
	out.Write(ihdr.Bytes())
	binary.Write(&out, binary.BigEndian, crc32.ChecksumIEEE(ihdr.Bytes()))
	return out.Bytes()
}

func TestCropBox(t *testing.T) {
	img := halves(100, 50, red, blue)
	tests := []struct {
		name   string
		box    [4]int32
		margin float64
		want   image.Rectangle
		fit    BoxFit
	}{
		{"plain", [4]int32{10, 10, 30, 20}, 0, image.Rect(0, 0, 20, 10), BoxInside},
		{"margin", [4]int32{10, 10, 30, 20}, 0.5, image.Rect(0, 0, 40, 20), BoxInside},
		{"margin beyond the image", [4]int32{0, 0, 100, 50}, 0.5, image.Rect(0, 0, 100, 50), BoxInside},
		{"clipped", [4]int32{90, 40, 120, 60}, 0, image.Rect(0, 0, 10, 10), BoxClipped},
		{"outside: whole image", [4]int32{200, 200, 300, 300}, 0, image.Rect(0, 0, 100, 50), BoxEmpty},
		// Its margin would reach into the image: still the whole image.
		{"outside, margin inside", [4]int32{100, 0, 120, 10}, 0.5, image.Rect(0, 0, 100, 50), BoxEmpty},
		{"empty: whole image", [4]int32{10, 10, 10, 10}, 0, image.Rect(0, 0, 100, 50), BoxEmpty},
	}
	var tally BoxTally
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fit := CropBox(img, tt.box, tt.margin)
			if got.Rect != tt.want || fit != tt.fit {
				t.Errorf("bounds %v, fit %d, want %v, %d", got.Rect, fit, tt.want, tt.fit)
			}
			tally.Add(fit)
		})
	}
	if c, e := tally.clipped.Load(), tally.empty.Load(); c != 1 || e != 3 {
		t.Errorf("tally: %d clipped, %d empty, want 1 and 3", c, e)
	}
	if got, _ := CropBox(img, [4]int32{60, 0, 70, 10}, 0); got.NRGBAAt(0, 0) != blue {
		t.Errorf("crop of the right half: %v, want blue", got)
	}
}

func TestFit(t *testing.T) {
	img := Fit(halves(300, 200, red, blue), 64, 32)
	if img.Rect != image.Rect(0, 0, 64, 32) {
		t.Fatalf("bounds %v", img.Rect)
	}
	if got := img.NRGBAAt(5, 5); !near(got, red, 1) {
		t.Errorf("pixel %v, want red", got)
	}
}

func TestToTensor(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	img.SetNRGBA(0, 0, color.NRGBA{0, 51, 255, 255})
	img.SetNRGBA(1, 0, color.NRGBA{255, 102, 0, 255})
	dst := make([]float32, 6)
	if err := ToTensor(dst, img, 255, [3]float32{0, 0.2, 0.5}, [3]float32{1, 1, 0.5}); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1, 0, 0.2, 1, -1} // CHW
	if diff := cmp.Diff(want, dst, cmp.Comparer(func(a, b float32) bool { return a-b < 1e-6 && b-a < 1e-6 })); diff != "" {
		t.Errorf("tensor (-want +got):\n%s", diff)
	}
	if err := ToTensor(make([]float32, 5), img, 255, [3]float32{}, [3]float32{1, 1, 1}); err == nil {
		t.Error("short dst: no error")
	}
}

func TestRGBRoundTrip(t *testing.T) {
	img := halves(6, 4, red, blue)
	back, err := FromRGB(RGB(img), 6, 4)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(img.Pix, back.Pix); diff != "" {
		t.Errorf("pixels (-want +got):\n%s", diff)
	}
	if _, err := FromRGB(make([]byte, 5), 6, 4); err == nil {
		t.Error("short pixels: no error")
	}
}
