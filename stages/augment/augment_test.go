package augment

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/partitions"
	"stitch/stages/synth"
)

func identity() *Policy { return &Policy{ZoomRange: [2]float64{1, 1}, FillMode: "nearest"} }

func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(10 * y), 128, 255})
		}
	}
	return img
}

func TestCoord(t *testing.T) {
	tests := []struct {
		mode string
		in   []int
		want []int
	}{
		{"nearest", []int{-2, -1, 0, 3, 4, 5}, []int{0, 0, 0, 3, 3, 3}},
		{"wrap", []int{-2, -1, 0, 3, 4, 5}, []int{2, 3, 0, 3, 0, 1}},
		{"reflect", []int{-2, -1, 0, 3, 4, 5, 8}, []int{1, 0, 0, 3, 3, 2, 0}},
	}
	for _, tt := range tests {
		p := &Policy{FillMode: tt.mode}
		var got []int
		for _, i := range tt.in {
			j, ok := p.coord(i, 4)
			if !ok {
				t.Fatalf("%s: %d outside", tt.mode, i)
			}
			got = append(got, j)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.mode, diff)
		}
	}
	if _, ok := (&Policy{FillMode: "constant"}).coord(-1, 4); ok {
		t.Error("constant: -1 maps inside")
	}
}

func TestApplyIdentity(t *testing.T) {
	src := gradient(12, 8)
	got := identity().Apply(src, rand.New(rand.NewPCG(1, 2)))
	if diff := cmp.Diff(src.Pix, got.Pix); diff != "" {
		t.Errorf("identity policy changed pixels (-want +got):\n%s", diff)
	}
}

func TestApplyFlip(t *testing.T) {
	src := gradient(12, 8)
	p := identity()
	p.HorizontalFlip = true
	flipped, kept := 0, 0
	for seed := range uint64(20) {
		got := p.Apply(src, rand.New(rand.NewPCG(seed, 0)))
		switch {
		case cmp.Equal(got.Pix, src.Pix):
			kept++
		case got.NRGBAAt(0, 3) == src.NRGBAAt(11, 3) && got.NRGBAAt(11, 5) == src.NRGBAAt(0, 5):
			flipped++
		default:
			t.Fatalf("seed %d: neither the image nor its mirror", seed)
		}
	}
	if flipped == 0 || kept == 0 {
		t.Errorf("20 draws: %d flipped, %d kept; want both", flipped, kept)
	}
}

func TestApplyFillModes(t *testing.T) {
	src := gradient(10, 10)
	for _, mode := range []string{"nearest", "constant", "reflect", "wrap"} {
		p := identity()
		p.FillMode, p.CVal, p.WidthShiftRange = mode, 7, 0.5
		a := p.Apply(src, rand.New(rand.NewPCG(3, 3)))
		b := p.Apply(src, rand.New(rand.NewPCG(3, 3)))
		if !cmp.Equal(a.Pix, b.Pix) {
			t.Errorf("%s: same seed, different output", mode)
		}
		if cmp.Equal(a.Pix, src.Pix) {
			t.Errorf("%s: a shift changed nothing", mode)
		}
		hasFill := false
		for y := range 10 {
			for x := range 10 {
				if c := a.NRGBAAt(x, y); c.R == 7 && c.G == 7 && c.B == 7 {
					hasFill = true
				}
			}
		}
		if hasFill != (mode == "constant") {
			t.Errorf("%s: constant fill present = %v", mode, hasFill)
		}
	}
}

func TestApplyTargetSizeAndWarp(t *testing.T) {
	p := NewParams().Policy()
	p.RotationRange, p.TargetSize = 30, [2]int{20, 30}
	got := p.Apply(gradient(64, 64), rand.New(rand.NewPCG(5, 5)))
	if got.Rect != image.Rect(0, 0, 30, 20) {
		t.Errorf("bounds %v, want 30x20", got.Rect)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, p := range []Policy{
		{ZoomRange: [2]float64{1, 1}, FillMode: "mirror"},
		{ZoomRange: [2]float64{0, 1}, FillMode: "wrap"},
		{ZoomRange: [2]float64{1, 1}, FillMode: "wrap", RotationRange: -1},
		{ZoomRange: [2]float64{1, 1}, FillMode: "constant", CVal: 300},
		{ZoomRange: [2]float64{1, 1}, FillMode: "wrap", TargetSize: [2]int{10, 0}},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}

// TestParamsValidate: each bad value is an error naming its key (so the
// pipeline file points at its line), NaN and infinities included.
func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Params)
		key  string
	}{
		{func(p *Params) { p.Mode = "offline" }, "mode"},
		{func(p *Params) { p.RotationRange = math.Inf(1) }, "rotation_range"},
		{func(p *Params) { p.ShearRange = math.NaN() }, "shear_range"},
		{func(p *Params) { p.ShearRange = 90 }, "shear_range"},
		{func(p *Params) { p.WidthShiftRange = 2 }, "width_shift_range"},
		{func(p *Params) { p.HeightShiftRange = -0.1 }, "height_shift_range"},
		{func(p *Params) { p.ZoomRange = math.NaN() }, "zoom_range"},
		{func(p *Params) { p.Rescale = math.NaN() }, "rescale"},
		{func(p *Params) { p.CVal = 256 }, "cval"},
		{func(p *Params) { p.Margin = math.Inf(1) }, "margin"},
		{func(p *Params) { p.Mode, p.Copies = "materialise", 0 }, "copies"},
		{func(p *Params) { p.FillMode = "mirror" }, "fill_mode"},
		{func(p *Params) { p.TargetSize = [2]int{100000, 100000} }, "target_size"},
		{func(p *Params) { p.Preview = 65 }, "preview"},
	} {
		p := NewParams()
		tc.edit(p)
		var pe *pipeline.ParamError
		if err := p.Validate(); !errors.As(err, &pe) || pe.Key != tc.key {
			t.Errorf("want an error about %s, got %v", tc.key, err)
		}
	}
	if err := NewParams().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	p := NewParams()
	p.Mode = "materialize"
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `did you mean "materialise"`) {
		t.Errorf("mode materialize: %v, want a hint", err)
	}
	p = NewParams()
	p.Mode, p.Copies = "materialise", MaxCopies+1
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "copies") {
		t.Errorf("copies above the bound: %v", err)
	}
}

func TestRunOnline(t *testing.T) {
	run := pipelinetest.NewRun(t, "aug")
	p := NewParams()
	p.TargetSize = [2]int{32, 32}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := New().Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("policy")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadPolicy(run.Store(), id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p.Policy(), got); diff != "" {
		t.Errorf("policy round trip (-want +got):\n%s", diff)
	}
	id, err = run.Output("preview")
	if err != nil {
		t.Fatal(err)
	}
	data, err := run.Store().Get(id)
	if err != nil {
		t.Fatal(err)
	}
	sheet, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if sheet.Bounds().Dx() != 5*96 {
		t.Errorf("preview width %d, want 480", sheet.Bounds().Dx())
	}
}

func TestRunMaterialise(t *testing.T) {
	opts := synth.DefaultOptions(t.TempDir())
	opts.N, opts.Size = 10, 48
	if _, err := synth.Generate(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	ds, err := partitions.Read(t.Context(), &partitions.Params{Root: opts.Out, Layout: "coarse"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]artifacts.ID{}
	for range 2 {
		run := pipelinetest.NewRun(t, "aug")
		in, err := run.Store().PutSamples(ds.Partitions[0])
		if err != nil {
			t.Fatal(err)
		}
		run.Bind("samples", in)
		p := NewParams()
		p.Mode, p.TargetSize, p.Copies, p.RotationRange, p.Preview = "materialise", [2]int{24, 16}, 2, 20, 3
		if err := New().Run(t.Context(), run, p); err != nil {
			t.Fatal(err)
		}
		id, err := run.Output("images")
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := ids["images"]; ok && prev != id {
			t.Error("two runs with the same seed stored different images")
		}
		ids["images"] = id
		out, err := run.Store().GetSamples(id)
		if err != nil {
			t.Fatal(err)
		}
		n := ds.Partitions[0].Len()
		if out.Len() != 3*n || out.Height != 24 || out.Width != 16 || len(out.Pixels[0]) != 24*16*3 {
			t.Fatalf("%d rows of %dx%d, want %d of 24x16", out.Len(), out.Height, out.Width, 3*n)
		}
		if !strings.HasSuffix(out.Image[2], "#aug2") || !cmp.Equal(out.Row(2), ds.Partitions[0].Row(0)) {
			t.Errorf("row 2: %s, labels %v", out.Image[2], out.Row(2))
		}
	}
}

func TestCheckWiring(t *testing.T) {
	p := NewParams()
	p.Mode = "materialise"
	var pe *pipeline.ParamError
	if err := (kind{}).CheckWiring(p, func(string) bool { return false }); !errors.As(err, &pe) || pe.Key != "mode" {
		t.Errorf("materialise without samples: %v, want an error at mode", err)
	}
	if err := (kind{}).CheckWiring(p, func(string) bool { return true }); err != nil {
		t.Errorf("materialise with samples: %v", err)
	}
	if err := (kind{}).CheckWiring(NewParams(), func(string) bool { return false }); err != nil {
		t.Errorf("online without samples: %v", err)
	}
}

// Online, the settings only materialise reads stay out of the run key;
// materialise keeps them in.
func TestOutputNeutral(t *testing.T) {
	p := NewParams()
	online := (kind{}).OutputNeutral(p, nil)
	p.Mode = "materialise"
	mat := (kind{}).OutputNeutral(p, nil)
	for _, k := range []string{"copies", "keep_original", "on_bad_image"} {
		if !slices.Contains(online, k) || slices.Contains(mat, k) {
			t.Errorf("%s: neutral online %v, materialise %v; want it online only", k, online, mat)
		}
	}
	if !slices.Contains(online, "rescale") || !slices.Contains(mat, "rescale") {
		t.Errorf("rescale must be neutral in both modes: %v, %v", online, mat)
	}
}
