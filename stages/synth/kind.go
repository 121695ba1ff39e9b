package synth

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
	"stitch/pipeline"
)

// Params are the parameters of a synth stage.
type Params struct {
	// Out is the folder the dataset is written to.
	Out string `yaml:"out"`
	// N is the number of images.
	N int `yaml:"n"`
	// Seed fixes the drawing; the stage's own seed is not used, so that
	// the same parameters give the same folder in any pipeline.
	Seed int64 `yaml:"seed"`
	// Size is the side of the square images in pixels.
	Size int `yaml:"size"`
	// UnknownFraction of the coarse labels are written as unknown (0).
	UnknownFraction float64 `yaml:"unknown_fraction"`
}

// NewParams returns the defaults: 400 images of 128 px, seed 1.
func NewParams() *Params {
	d := DefaultOptions("")
	return &Params{N: d.N, Seed: d.Seed, Size: d.Size, UnknownFraction: d.UnknownFraction}
}

// Validate checks the parameters.
func (p *Params) Validate() error {
	if p.Out == "" {
		return errors.New("out: the folder to write is required")
	}
	o := p.options()
	return o.Validate()
}

func (p *Params) options() Options {
	return Options{Out: p.Out, N: p.N, Seed: p.Seed, Size: p.Size, UnknownFraction: p.UnknownFraction}
}

type kind struct{}

// New returns the synth stage kind. It writes the dataset folder (outside
// the store) and outputs a manifest table; a partitions stage reading the
// folder lists the manifest under its optional `after` input so that it
// runs after this stage and reruns when the dataset changes.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string            { return "synth" }
func (kind) Version() string         { return "1" }
func (kind) Inputs() []pipeline.Port { return nil }
func (kind) NewParams() any          { return NewParams() }

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{{Name: "manifest", Kind: artifacts.KindTable,
		Doc: "what was generated (key, value): folder, options, counts"}}
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	opts := p.options()
	out, err := filepath.Abs(p.Out)
	if err != nil {
		return err
	}
	opts.Out = out
	opts.Workers = run.Settings().Threads
	sum, err := Generate(ctx, opts)
	if err != nil {
		return err
	}
	run.Logger().Info("synthetic dataset written", "out", out, "images", sum.Images,
		"train", sum.Train, "val", sum.Val, "test", sum.Test)
	id, err := putManifest(run.Store(), opts, sum)
	if err != nil {
		return err
	}
	run.SetOutput("manifest", id)
	return nil
}

// ManifestSchema is the schema of the manifest table: key, value strings.
var ManifestSchema = arrow.NewSchema([]arrow.Field{
	{Name: "key", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.BinaryTypes.String},
}, func() *arrow.Metadata {
	md := arrow.NewMetadata([]string{artifacts.MetaKind}, []string{artifacts.KindTable})
	return &md
}())

func putManifest(store *artifacts.Store, opts Options, sum Summary) (artifacts.ID, error) {
	rows := [][2]string{
		{"out", opts.Out}, {"n", strconv.Itoa(opts.N)}, {"seed", strconv.FormatInt(opts.Seed, 10)},
		{"size", strconv.Itoa(opts.Size)}, {"unknown_fraction", strconv.FormatFloat(opts.UnknownFraction, 'g', -1, 64)},
		{"train", strconv.Itoa(sum.Train)}, {"val", strconv.Itoa(sum.Val)}, {"test", strconv.Itoa(sum.Test)},
		{"attributes", strconv.Itoa(sum.Attributes)}, {"positives", strconv.Itoa(sum.Positives)},
		{"unknown", strconv.Itoa(sum.Unknown)},
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, ManifestSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r[0])
		b.Field(1).(*array.StringBuilder).Append(r[1])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return store.PutRecords(ManifestSchema, rec)
}
