package augment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"math"
	"math/rand/v2"
	"path/filepath"

	"stitch/artifacts"
	"stitch/internal/suggest"
	"stitch/pipeline"
	"stitch/stages/images"
	"stitch/stages/pixels"
)

// Params are the parameters of an augment stage: the notebook's
// ImageDataGenerator arguments plus the mode.
type Params struct {
	// Mode is online (store the policy for train) or materialise (store
	// augmented copies in an images table).
	Mode             string  `yaml:"mode"`
	Rescale          float64 `yaml:"rescale"`
	ShearRange       float64 `yaml:"shear_range"`
	ZoomRange        float64 `yaml:"zoom_range"`
	RotationRange    float64 `yaml:"rotation_range"`
	WidthShiftRange  float64 `yaml:"width_shift_range"`
	HeightShiftRange float64 `yaml:"height_shift_range"`
	HorizontalFlip   bool    `yaml:"horizontal_flip"`
	FillMode         string  `yaml:"fill_mode"`
	CVal             float64 `yaml:"cval"`
	// TargetSize is height, width.
	TargetSize [2]int `yaml:"target_size"`
	// Copies is K, the augmented copies per row (materialise).
	Copies int `yaml:"copies"`
	// KeepOriginal also stores each row unaugmented (materialise).
	KeepOriginal bool `yaml:"keep_original"`
	// Crop crops file images to their box, grown by Margin, first.
	Crop   bool    `yaml:"crop"`
	Margin float64 `yaml:"margin"`
	// Preview is the number of samples in the contact sheet.
	Preview int `yaml:"preview"`
	// OnBadImage is error or skip (materialise; skipped rows are logged).
	OnBadImage string `yaml:"on_bad_image"`
	// Seed overrides the stage's seed when not 0.
	Seed int64 `yaml:"seed"`
}

// NewParams returns the notebook's generator: rescale 1/255, shear 11
// degrees, zoom 0.2, horizontal flip, nearest fill, 224 x 224.
func NewParams() *Params {
	return &Params{
		Mode: "online", Rescale: 1.0 / 255, ShearRange: 11, ZoomRange: 0.2, HorizontalFlip: true,
		FillMode: "nearest", TargetSize: [2]int{224, 224}, Copies: 2, KeepOriginal: true,
		Crop: true, Margin: 0.1, Preview: 8, OnBadImage: "error",
	}
}

// Policy returns the augmentation the parameters describe; zoom_range z
// becomes [1-z, 1+z] as in Keras.
func (p *Params) Policy() *Policy {
	return &Policy{
		ShearRange: p.ShearRange, ZoomRange: [2]float64{1 - p.ZoomRange, 1 + p.ZoomRange},
		RotationRange: p.RotationRange, WidthShiftRange: p.WidthShiftRange, HeightShiftRange: p.HeightShiftRange,
		HorizontalFlip: p.HorizontalFlip, FillMode: p.FillMode, CVal: p.CVal, TargetSize: p.TargetSize,
	}
}

// MaxCopies bounds copies: each row's copies are drawn from generators
// seeded by (row, copy), which stay distinct up to 65535.
const MaxCopies = 1000

// Validate checks the parameters; each error names its key, so that the
// pipeline file's error points at it. The comparisons are written so that
// NaN fails them.
func (p *Params) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.ParamErrorf(key, format, args...))
	}
	if p.Mode != "online" && p.Mode != "materialise" {
		bad("mode", "mode %q: want online or materialise%s", p.Mode, suggest.Hint(p.Mode, []string{"online", "materialise"}))
	}
	for _, r := range []struct {
		key        string
		value, max float64
		unit       string
	}{
		{"rotation_range", p.RotationRange, 360, "degrees"},
		{"shear_range", p.ShearRange, 89, "degrees"},
		{"width_shift_range", p.WidthShiftRange, 1, "of the width"},
		{"height_shift_range", p.HeightShiftRange, 1, "of the height"},
	} {
		if !(r.value >= 0 && r.value <= r.max) {
			bad(r.key, "%s %g: want 0 to %g %s", r.key, r.value, r.max, r.unit)
		}
	}
	if !(p.ZoomRange >= 0 && p.ZoomRange < 1) {
		bad("zoom_range", "zoom_range %g: want 0 to below 1", p.ZoomRange)
	}
	if !(p.Rescale >= 0) || math.IsInf(p.Rescale, 0) {
		bad("rescale", "rescale %g: want a finite factor >= 0", p.Rescale)
	}
	switch p.FillMode {
	case "nearest", "constant", "reflect", "wrap":
	default:
		bad("fill_mode", "fill_mode %q: want nearest, constant, reflect or wrap", p.FillMode)
	}
	if h, w := p.TargetSize[0], p.TargetSize[1]; h < 0 || w < 0 || (h == 0) != (w == 0) || h > 4096 || w > 4096 {
		bad("target_size", "target_size %v: want height and width of 1 to 4096, or neither", p.TargetSize)
	}
	if !(p.CVal >= 0 && p.CVal <= 255) {
		bad("cval", "cval %g: want 0 to 255", p.CVal)
	}
	if !(p.Margin >= 0 && p.Margin <= 10) {
		bad("margin", "margin %g: want 0 to 10 (a fraction of the box)", p.Margin)
	}
	if p.Mode == "materialise" && (p.Copies < 1 || p.Copies > MaxCopies) {
		bad("copies", "copies %d: materialise needs 1 to %d", p.Copies, MaxCopies)
	}
	if p.Mode == "materialise" && p.TargetSize[0] == 0 {
		bad("target_size", "materialise needs a target_size")
	}
	if p.OnBadImage != "error" && p.OnBadImage != "skip" {
		bad("on_bad_image", "on_bad_image %q: want error or skip", p.OnBadImage)
	}
	if p.Preview < 0 || p.Preview > 64 {
		bad("preview", "preview %d: want 0 to 64", p.Preview)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return p.Policy().Validate()
}

type kind struct{}

// New returns the augment stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "augment" }
func (kind) Version() string { return "2" }
func (kind) NewParams() any  { return NewParams() }

// OutputNeutral leaves rescale out of the run key: it is accepted for the
// notebook's settings and changes nothing (see doc.go). Online, the
// settings only materialise reads (copies, keep_original, on_bad_image)
// are left out too, so changing them does not make train stale.
func (kind) OutputNeutral(params any, _ func(string) bool) []string {
	if params.(*Params).Mode == "online" {
		return []string{"rescale", "copies", "keep_original", "on_bad_image"}
	}
	return []string{"rescale"}
}

// CheckWiring reports at load time a materialise stage without the
// samples it would augment.
func (kind) CheckWiring(params any, wired func(string) bool) error {
	if params.(*Params).Mode == "materialise" && !wired("samples") {
		return pipeline.ParamErrorf("mode", "mode: materialise needs the samples input (needs: {samples: ...})")
	}
	return nil
}

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{{Name: "samples", Kind: artifacts.KindSamples, Also: []string{artifacts.KindImages},
		Optional: true,
		Doc:      "rows to augment (materialise) or to preview (online); a samples or images table"}}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "policy", Kind: artifacts.KindAugment, Doc: "the augmentation, for train (online)"},
		{Name: "images", Kind: artifacts.KindImages, Doc: "augmented copies (materialise; empty online)"},
		{Name: "preview", Kind: artifacts.KindReport, Doc: "PNG contact sheet: original then augmented copies"},
	}
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	policy := p.Policy()
	store := run.Store()
	seed := p.Seed
	if seed == 0 {
		seed = run.Seed()
	}
	var in *artifacts.Samples
	if id, ok := run.Input("samples"); ok {
		var err error
		if in, err = store.GetSamples(id); err != nil {
			return err
		}
	} else if p.Mode == "materialise" {
		return errors.New("augment: materialise needs a samples input")
	}

	id, err := PutPolicy(store, policy)
	if err != nil {
		return err
	}
	run.SetOutput("policy", id)

	head := &artifacts.Samples{Pixels: [][]byte{}, Height: max(1, p.TargetSize[0]), Width: max(1, p.TargetSize[1])}
	if in != nil {
		head = in.EmptyLike()
		head.Pixels, head.Height, head.Width = [][]byte{}, p.TargetSize[0], p.TargetSize[1]
		if in.Pixels == nil && p.Mode == "materialise" {
			// Read from the files here; an images table's Crop carries over.
			head.Crop = &artifacts.CropSpec{Crop: p.Crop, Margin: p.Margin}
		}
	}
	if p.Mode == "materialise" {
		// Streamed batch by batch, as the images stage writes: copies
		// times rows of pixels need not fit in memory.
		id, err = store.WriteSamples(head, images.BatchRows(images.Size{head.Height, head.Width}),
			func(w *artifacts.SamplesWriter) error { return materialise(ctx, run, p, policy, in, w, seed) })
	} else {
		id, err = store.PutSamples(head)
	}
	if err != nil {
		return err
	}
	run.SetOutput("images", id)

	sheet, err := preview(p, policy, in, seed)
	if err != nil {
		return err
	}
	if id, err = store.Put(sheet); err != nil {
		return err
	}
	run.SetOutput("preview", id)
	return nil
}

// source returns row i of s as an image: its pixels in an images table,
// else the file cropped to its box. boxes, if not nil, counts the boxes
// beyond their images.
func source(p *Params, s *artifacts.Samples, i int, boxes *pixels.BoxTally) (*image.NRGBA, error) {
	if s.Pixels != nil {
		return pixels.FromRGB(s.Pixels[i], s.Width, s.Height)
	}
	img, err := pixels.Load(filepath.Join(s.Root, filepath.FromSlash(s.Image[i])))
	if err != nil {
		return nil, err
	}
	if p.Crop && s.HasBBox[i] {
		var fit pixels.BoxFit
		img, fit = pixels.CropBox(img, s.BBox[i], p.Margin)
		if boxes != nil {
			boxes.Add(fit)
		}
	}
	return img, nil
}

// rowRand seeds a generator per (row, copy), so a copy does not depend on
// which rows were skipped before it.
func rowRand(seed int64, row, copyIndex int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), uint64(row)<<16|uint64(copyIndex)))
}

// materialise appends to out, per row of in, the original resized
// (keep_original) and the augmented copies.
func materialise(ctx context.Context, run pipeline.Run, p *Params, policy *Policy,
	in *artifacts.Samples, out *artifacts.SamplesWriter, seed int64) error {
	h, w := p.TargetSize[0], p.TargetSize[1]
	var skipped []string
	var boxes pixels.BoxTally
	for i := range in.Len() {
		if err := ctx.Err(); err != nil {
			return err
		}
		run.Progress().Report("augment", i, in.Len(), "")
		img, err := source(p, in, i, &boxes)
		if err != nil {
			if p.OnBadImage == "error" {
				return fmt.Errorf("augment: %w", err)
			}
			skipped = append(skipped, in.Image[i])
			run.Logger().Warn("skipping a bad image", "image", in.Image[i], "err", err)
			continue
		}
		row := in.EmptyLike() // row i alone, under each copy's key in turn
		row.Append(in, i)
		add := func(key string, pix *image.NRGBA) error {
			row.Image[0] = key
			return out.Append(row, 0, pixels.RGB(pix))
		}
		if p.KeepOriginal {
			if err := add(in.Image[i], pixels.Fit(img, w, h)); err != nil {
				return err
			}
		}
		for k := 1; k <= p.Copies; k++ {
			if err := add(fmt.Sprintf("%s#aug%d", in.Image[i], k), policy.Apply(img, rowRand(seed, i, k))); err != nil {
				return err
			}
		}
	}
	boxes.Warn(run.Logger())
	if len(skipped) > 0 {
		run.Logger().Warn("bad images skipped", "count", len(skipped), "first", skipped[0])
	}
	return nil
}

// preview draws a contact sheet: per sample a row with the original and
// four augmented copies. Without samples it augments a test card.
func preview(p *Params, policy *Policy, in *artifacts.Samples, seed int64) ([]byte, error) {
	const cell, copies = 96, 4
	var sources []*image.NRGBA
	if in != nil {
		for i := 0; i < in.Len() && len(sources) < p.Preview; i++ {
			if img, err := source(p, in, i, nil); err == nil {
				sources = append(sources, img)
			}
		}
	}
	if len(sources) == 0 && p.Preview > 0 {
		sources = append(sources, testCard(cell))
	}
	sheet := image.NewNRGBA(image.Rect(0, 0, cell*(1+copies), cell*max(1, len(sources))))
	draw.Draw(sheet, sheet.Bounds(), image.White, image.Point{}, draw.Src)
	for r, src := range sources {
		cells := []*image.NRGBA{pixels.Fit(src, cell, cell)}
		for k := 1; k <= copies; k++ {
			cells = append(cells, pixels.Fit(policy.Apply(src, rowRand(seed, r, 1000+k)), cell, cell))
		}
		for c, img := range cells {
			draw.Draw(sheet, image.Rect(c*cell, r*cell, (c+1)*cell, (r+1)*cell), img, image.Point{}, draw.Src)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sheet); err != nil {
		return nil, fmt.Errorf("augment: preview: %w", err)
	}
	return buf.Bytes(), nil
}

// testCard is an asymmetric pattern that makes every transform visible.
func testCard(n int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			i := img.PixOffset(x, y)
			r, g, b := uint8(40), uint8(90), uint8(200)
			if (x/(n/8)+y/(n/8))%2 == 0 {
				r, g, b = 235, 235, 235
			}
			if x < n/4 && y < n/4 {
				r, g, b = 220, 40, 40 // a red corner shows flips and rotations
			}
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = r, g, b, 255
		}
	}
	return img
}
