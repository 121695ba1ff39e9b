package augment

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
	"stitch/stages/pixels"
)

// Policy is a Keras ImageDataGenerator-like augmentation. It is stored as
// JSON in an augment-policy artifact; the train stage reads it with
// ReadPolicy and calls Apply per image with a generator seeded per epoch.
type Policy struct {
	// Rescale is read from policies stored before version 2 and is not
	// used: the train stage scales pixels by the model's preprocessing.
	Rescale float64 `json:"rescale,omitempty"`
	// ShearRange is the largest shear angle in degrees.
	ShearRange float64 `json:"shear_range"`
	// ZoomRange is the range of zoom factors [low, high]; each axis draws
	// its own factor, as Keras does. [1, 1] means no zoom.
	ZoomRange [2]float64 `json:"zoom_range"`
	// RotationRange is the largest rotation in degrees.
	RotationRange float64 `json:"rotation_range"`
	// WidthShiftRange and HeightShiftRange are the largest shifts as
	// fractions of the width and height.
	WidthShiftRange  float64 `json:"width_shift_range"`
	HeightShiftRange float64 `json:"height_shift_range"`
	// HorizontalFlip mirrors half of the images.
	HorizontalFlip bool `json:"horizontal_flip"`
	// FillMode says what lies outside the source: nearest, constant (CVal),
	// reflect or wrap.
	FillMode string `json:"fill_mode"`
	// CVal is the grey level (0..255) of the constant fill.
	CVal float64 `json:"cval"`
	// TargetSize is height, width; the image is resized to it before the
	// warp. 0 0 keeps the size.
	TargetSize [2]int `json:"target_size"`
}

// Validate checks the ranges and the fill mode.
func (p *Policy) Validate() error {
	switch p.FillMode {
	case "nearest", "constant", "reflect", "wrap":
	default:
		return fmt.Errorf("fill_mode %q: want nearest, constant, reflect or wrap", p.FillMode)
	}
	switch {
	case p.ShearRange < 0 || p.RotationRange < 0 || p.WidthShiftRange < 0 || p.HeightShiftRange < 0:
		return fmt.Errorf("ranges must not be negative")
	case p.ZoomRange[0] <= 0 || p.ZoomRange[1] < p.ZoomRange[0]:
		return fmt.Errorf("zoom range %v: want 0 < low <= high", p.ZoomRange)
	case p.CVal < 0 || p.CVal > 255:
		return fmt.Errorf("cval %g: want 0..255", p.CVal)
	case p.TargetSize[0] < 0 || p.TargetSize[1] < 0 || (p.TargetSize[0] == 0) != (p.TargetSize[1] == 0):
		return fmt.Errorf("target_size %v: want height and width, or neither", p.TargetSize)
	}
	return nil
}

// Apply returns a randomly transformed copy of src: resized to the target
// size, then warped by one affine map (rotation, shift, shear, zoom about
// the centre) sampled bilinearly with the fill mode outside the source,
// then maybe flipped. Each output pixel is mapped back into the source
// (inverse mapping), so there are no holes.
func (p *Policy) Apply(src *image.NRGBA, rng *rand.Rand) *image.NRGBA {
	if p.TargetSize[0] > 0 {
		src = pixels.Fit(src, p.TargetSize[1], p.TargetSize[0])
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	uniform := func(r float64) float64 { return (2*rng.Float64() - 1) * r }
	theta := uniform(p.RotationRange) * math.Pi / 180
	tx := uniform(p.WidthShiftRange) * float64(w)
	ty := uniform(p.HeightShiftRange) * float64(h)
	shear := uniform(p.ShearRange) * math.Pi / 180
	zx, zy := 1.0, 1.0
	if p.ZoomRange[0] != 1 || p.ZoomRange[1] != 1 {
		zx = p.ZoomRange[0] + rng.Float64()*(p.ZoomRange[1]-p.ZoomRange[0])
		zy = p.ZoomRange[0] + rng.Float64()*(p.ZoomRange[1]-p.ZoomRange[0])
	}
	flip := p.HorizontalFlip && rng.IntN(2) == 1

	// Output offset from the centre -> source offset: rotation x shear x
	// zoom, as Keras composes them; a zoom above 1 shows more of the
	// source (the garment looks smaller), as in Keras.
	cos, sin := math.Cos(theta), math.Sin(theta)
	a := [2][2]float64{{cos, -sin}, {sin, cos}}
	s := [2][2]float64{{1, -math.Sin(shear)}, {0, math.Cos(shear)}}
	m := mul(mul(a, s), [2][2]float64{{zx, 0}, {0, zy}})

	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	cx, cy := float64(w-1)/2, float64(h-1)/2
	fill := uint8(math.Round(p.CVal))
	for y := range h {
		for x := range w {
			ox := float64(x)
			if flip {
				ox = float64(w - 1 - x)
			}
			u, v := ox-cx, float64(y)-cy
			sx := m[0][0]*u + m[0][1]*v + cx - tx
			sy := m[1][0]*u + m[1][1]*v + cy - ty
			i := dst.PixOffset(x, y)
			p.sample(src, sx, sy, fill, dst.Pix[i:i+4])
		}
	}
	return dst
}

func mul(a, b [2][2]float64) [2][2]float64 {
	var c [2][2]float64
	for i := range 2 {
		for j := range 2 {
			c[i][j] = a[i][0]*b[0][j] + a[i][1]*b[1][j]
		}
	}
	return c
}

// sample writes the bilinear interpolation of src at (x, y) into out.
func (p *Policy) sample(src *image.NRGBA, x, y float64, fill uint8, out []uint8) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	var acc [3]float64
	corners := [4][3]float64{{0, 0, (1 - fx) * (1 - fy)}, {1, 0, fx * (1 - fy)}, {0, 1, (1 - fx) * fy}, {1, 1, fx * fy}}
	for _, c := range corners {
		if c[2] == 0 {
			continue
		}
		ix, okx := p.coord(int(x0+c[0]), w)
		iy, oky := p.coord(int(y0+c[1]), h)
		if !okx || !oky {
			for ch := range 3 {
				acc[ch] += c[2] * float64(fill)
			}
			continue
		}
		i := iy*src.Stride + 4*ix
		for ch := range 3 {
			acc[ch] += c[2] * float64(src.Pix[i+ch])
		}
	}
	for ch := range 3 {
		out[ch] = uint8(math.Round(min(255, max(0, acc[ch]))))
	}
	out[3] = 255
}

// coord maps a source coordinate into 0..n-1 by the fill mode; false
// means the constant fill.
func (p *Policy) coord(i, n int) (int, bool) {
	if i >= 0 && i < n {
		return i, true
	}
	switch p.FillMode {
	case "nearest":
		return min(n-1, max(0, i)), true
	case "wrap":
		return ((i % n) + n) % n, true
	case "reflect":
		// Half-sample symmetric, like scipy's reflect: d c b a | a b c d | d c b a.
		period := 2 * n
		i = ((i % period) + period) % period
		if i >= n {
			i = period - 1 - i
		}
		return i, true
	}
	return 0, false
}

// PolicySchema is the schema of an augment-policy table: one row, the
// policy as JSON.
var PolicySchema = arrow.NewSchema([]arrow.Field{
	{Name: "policy", Type: arrow.BinaryTypes.String},
}, func() *arrow.Metadata {
	md := arrow.NewMetadata([]string{artifacts.MetaKind}, []string{artifacts.KindAugment})
	return &md
}())

// PutPolicy stores p as an augment-policy table.
func PutPolicy(store *artifacts.Store, p *Policy) (artifacts.ID, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return artifacts.ID{}, fmt.Errorf("store policy: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, PolicySchema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(string(data))
	rec := b.NewRecordBatch()
	defer rec.Release()
	return store.PutRecords(PolicySchema, rec)
}

// ReadPolicy reads the policy stored by an online augment stage.
func ReadPolicy(store *artifacts.Store, id artifacts.ID) (*Policy, error) {
	tbl, err := store.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	if k := artifacts.KindOf(tbl.Schema()); k != artifacts.KindAugment {
		return nil, fmt.Errorf("policy %s: is a %q artifact, want %q", id.Short(), k, artifacts.KindAugment)
	}
	if tbl.NumRows() != 1 || tbl.NumCols() != 1 || tbl.Column(0).Data().Len() != 1 {
		return nil, fmt.Errorf("policy %s: want one row with one column", id.Short())
	}
	col, ok := tbl.Column(0).Data().Chunk(0).(*array.String)
	if !ok || col.Len() != 1 {
		return nil, fmt.Errorf("policy %s: the policy column is not a string", id.Short())
	}
	p := &Policy{}
	if err := json.Unmarshal([]byte(col.Value(0)), p); err != nil {
		return nil, fmt.Errorf("policy %s: %w", id.Short(), err)
	}
	return p, p.Validate()
}
