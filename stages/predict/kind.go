package predict

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"

	"stitch/artifacts"
	"stitch/models/infer"
	"stitch/models/ort"
	"stitch/pipeline"
	"stitch/stages/pixels"
)

// Params are the parameters of a predict stage.
type Params struct {
	// BatchSize is the number of images per ONNX Runtime run.
	BatchSize int `yaml:"batch_size"`
	// Partition is a label for people (train, val, test); it changes
	// nothing computed.
	Partition string `yaml:"partition"`
	// Crop cuts each image file to its bounding box (when it has one)
	// before resizing; CropMargin widens the box by that fraction of its
	// size on each side. Unset, each follows how the model was trained
	// (its metadata), else crop to the box with no margin.
	Crop       *bool    `yaml:"crop"`
	CropMargin *float64 `yaml:"crop_margin"`
}

// NewParams returns the defaults: batches of 32, crop as in training.
func NewParams() *Params { return &Params{BatchSize: 32} }

// cropFor resolves Crop and CropMargin for a model: what is set, else what
// training did, else crop with no margin.
func (p *Params) cropFor(meta artifacts.ModelMeta) artifacts.CropSpec {
	c := artifacts.CropSpec{Crop: true}
	if meta.Crop != nil {
		c = *meta.Crop
	}
	if p.Crop != nil {
		c.Crop = *p.Crop
	}
	if p.CropMargin != nil {
		c.Margin = *p.CropMargin
	}
	return c
}

// Validate checks the parameters.
func (p *Params) Validate() error {
	var errs []error
	if p.BatchSize <= 0 || p.BatchSize > MaxBatchSize {
		errs = append(errs, pipeline.ParamErrorf("batch_size", "batch_size %d: want 1 to %d", p.BatchSize, MaxBatchSize))
	}
	if m := p.CropMargin; m != nil && !(*m >= 0 && *m <= 1) {
		errs = append(errs, pipeline.ParamErrorf("crop_margin", "crop_margin %g: want 0 to 1", *m))
	}
	return errors.Join(errs...)
}

// MaxBatchSize bounds batch_size: 4096 images of 224 x 224 are 2.3 GiB
// of input floats, and larger batches only cost memory.
const MaxBatchSize = 4096

type kind struct{}

// New returns the predict stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "predict" }
func (kind) Version() string { return "3" }

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "model", Kind: artifacts.KindModel, Doc: "the model to run"},
		// No declared kind: a samples table and an images table both work.
		{Name: "samples", Doc: "samples or images of one partition"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "predictions", Kind: artifacts.KindPredictions,
			Doc: "a probability per sample and attribute (and per category, for a model with a category head)"},
	}
}

func (kind) NewParams() any { return NewParams() }

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	store := run.Store()
	modelID, ok1 := run.Input("model")
	samplesID, ok2 := run.Input("samples")
	if !ok1 || !ok2 {
		return errors.New("inputs model and samples are required")
	}
	model, err := store.GetModel(modelID)
	if err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	samples, err := store.GetSamples(samplesID)
	if err != nil {
		return fmt.Errorf("read samples: %w", err)
	}

	settings := run.Settings()
	pred, err := infer.New(model, infer.Options{BatchSize: p.BatchSize, Runtime: ort.Options{
		Provider: settings.Provider, DeviceID: settings.DeviceID, Threads: settings.Threads,
		FallbackCPU: settings.FallbackCPU, Logger: run.Logger(),
	}})
	if err != nil {
		return err
	}
	defer pred.Close()
	if pred.NumOutputs() != samples.NumAttributes {
		return fmt.Errorf("%w: the model scores %d attributes, the samples have %d",
			infer.ErrOutputCount, pred.NumOutputs(), samples.NumAttributes)
	}

	crop := p.cropFor(model.Meta)
	if t := model.Meta.Crop; t != nil && samples.Pixels == nil && *t != crop {
		run.Logger().Warn("predict reads images unlike training did", "crop", crop.Crop, "crop_margin", crop.Margin,
			"trained_crop", t.Crop, "trained_crop_margin", t.Margin)
	}
	var boxes pixels.BoxTally
	fill := SamplesFill(samples, model.Meta, crop.Crop, crop.Margin, &boxes)
	progress := func(done int) { run.Progress().Report("predict", done, samples.Len(), p.Partition) }
	scores, err := pred.Predict(ctx, samples.Len(), fill, progress)
	if err != nil {
		return err
	}
	boxes.Warn(run.Logger())
	out := &artifacts.Predictions{
		NumAttributes: pred.NumOutputs(), Image: samples.Image, Scores: scores.Attributes,
	}
	if len(model.Meta.Attributes) == out.NumAttributes {
		out.AttributeNames = make([]string, out.NumAttributes)
		for i, a := range model.Meta.Attributes {
			out.AttributeNames[i] = a.Name
		}
	}
	if pred.NumCategories() > 0 {
		out.NumCategories, out.CategoryScores = pred.NumCategories(), scores.Categories
		out.Categories = model.Meta.Categories
	}
	id, err := store.PutPredictions(out)
	if err != nil {
		return fmt.Errorf("store predictions: %w", err)
	}
	run.SetOutput("predictions", id)
	run.Logger().Info("predicted", "partition", p.Partition, "images", samples.Len(),
		"attributes", pred.NumOutputs(), "categories", pred.NumCategories(), "provider", pred.Provider())
	return nil
}

// SamplesFill returns the infer.Fill that turns row i of samples into the
// model's input: the stored pixels of an images table, or the image file
// under samples.Root, cropped to its box when crop is set. boxes, if not
// nil, counts the boxes beyond their images.
func SamplesFill(samples *artifacts.Samples, meta artifacts.ModelMeta, crop bool, margin float64,
	boxes *pixels.BoxTally,
) infer.Fill {
	return func(_ context.Context, i int, dst []float32) error {
		var img *image.NRGBA
		if samples.Pixels != nil {
			var err error
			if img, err = pixels.FromRGB(samples.Pixels[i], samples.Width, samples.Height); err != nil {
				return fmt.Errorf("image %s: %w", samples.Image[i], err)
			}
		} else {
			var err error
			if img, err = pixels.Load(filepath.Join(samples.Root, samples.Image[i])); err != nil {
				return err
			}
			if crop && samples.HasBBox[i] {
				var fit pixels.BoxFit
				img, fit = pixels.CropBox(img, samples.BBox[i], margin)
				if boxes != nil {
					boxes.Add(fit)
				}
			}
		}
		if err := toTensor(dst, img, meta); err != nil {
			return fmt.Errorf("image %s: %w", samples.Image[i], err)
		}
		return nil
	}
}

// toTensor resizes img to the model's input size when needed and writes
// it normalised into dst.
func toTensor(dst []float32, img *image.NRGBA, meta artifacts.ModelMeta) error {
	if b := img.Bounds(); b.Dx() != meta.Width || b.Dy() != meta.Height {
		img = pixels.Fit(img, meta.Width, meta.Height)
	}
	return pixels.ToTensor(dst, img, meta.Scale, meta.Mean, meta.Std)
}
