package images

import (
	"errors"
	"fmt"
	"runtime"

	"go.yaml.in/yaml/v3"

	"stitch/artifacts"
	"stitch/pipeline"
)

// MaxSide is the largest height or width image_size accepts: four times
// a 224 px network input, and 768 KB of pixels per row at 512 x 512.
const MaxSide = 1024

// Size is an output size, height then width. In YAML it is one number
// for a square (224) or a pair [h, w]; both forms decode to the same
// value, so they give the same run key.
type Size [2]int

// UnmarshalYAML reads a number or a two-item sequence.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		side, err := sizeSide(n)
		if err != nil {
			return err
		}
		*s = Size{side, side}
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		return fmt.Errorf("want a number or [height, width], got %d items", len(n.Content))
	}
	var hw [2]int
	for i, c := range n.Content {
		var err error
		if hw[i], err = sizeSide(c); err != nil {
			return err
		}
	}
	*s = Size{hw[0], hw[1]}
	return nil
}

// sizeSide reads one side in pixels by the pipeline's integer rule (32.0
// is 32; 32.5 is an error, not 32).
func sizeSide(n *yaml.Node) (int, error) {
	var side int
	err := pipeline.DecodeInt(n, &side)
	return side, err
}

// Params are the parameters of an images stage.
type Params struct {
	// ImageSize is the height and width every image is resized to.
	ImageSize Size `yaml:"image_size"`
	// Margin grows the bounding box by this fraction of its width and
	// height on each side before cropping; rows without a box keep the
	// whole image.
	Margin float64 `yaml:"margin"`
	// OnBadImage is error (the first unreadable image fails the stage) or
	// skip (it is left out, logged and listed in bad_images).
	OnBadImage string `yaml:"on_bad_image"`
	// Workers is how many images are decoded at once; 0 means one per
	// core. It changes the speed, never the output.
	Workers int `yaml:"workers"`
}

// NewParams returns the defaults: 224 x 224, margin 0.1, fail on a bad
// image, one worker per core.
func NewParams() *Params {
	return &Params{ImageSize: Size{224, 224}, Margin: 0.1, OnBadImage: "error"}
}

// MaxWorkers bounds workers: each holds a decoded image and a queue slot,
// and far more than the cores only costs memory.
const MaxWorkers = 1024

// Validate checks the parameters; each error names its key, so that the
// pipeline file's error points at it.
func (p *Params) Validate() error {
	var errs []error
	h, w := p.ImageSize[0], p.ImageSize[1]
	if h < 1 || w < 1 || h > MaxSide || w > MaxSide {
		errs = append(errs, pipeline.ParamErrorf("image_size", "image_size [%d, %d]: want sides of 1 to %d pixels",
			h, w, MaxSide))
	}
	if !(p.Margin >= 0 && p.Margin <= 10) {
		errs = append(errs, pipeline.ParamErrorf("margin", "margin %g: want 0 to 10 (a fraction of the box)", p.Margin))
	}
	if p.OnBadImage != "error" && p.OnBadImage != "skip" {
		errs = append(errs, pipeline.ParamErrorf("on_bad_image", "on_bad_image %q: want error or skip", p.OnBadImage))
	}
	if p.Workers < 0 || p.Workers > MaxWorkers {
		errs = append(errs, pipeline.ParamErrorf("workers", "workers %d: want 0 (one per core) to %d", p.Workers,
			MaxWorkers))
	}
	return errors.Join(errs...)
}

// workers resolves Workers = 0 to the number of usable cores.
func (p *Params) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return runtime.GOMAXPROCS(0)
}

type kind struct{}

// New returns the images stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "images" }
func (kind) Version() string { return "2" }
func (kind) NewParams() any  { return NewParams() }

// OutputNeutral leaves workers out of the run key: how many images are
// decoded at once changes nothing in the table.
func (kind) OutputNeutral(any, func(string) bool) []string { return []string{"workers"} }

// Inputs is the samples table to materialise. The image files it names
// are not declared as externals: see the package documentation.
func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{{Name: "samples", Kind: artifacts.KindSamples,
		Doc: "a samples table (e.g. partitions.train) whose image files are decoded"}}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "images", Kind: artifacts.KindImages,
			Doc: "the samples with their cropped, resized RGB pixels, in input order"},
		{Name: "bad_images", Kind: artifacts.KindTable,
			Doc: "images left out by on_bad_image: skip (image, partition, reason)"},
	}
}
