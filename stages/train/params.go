package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"stitch/models/train"
	"stitch/models/zoo"
	"stitch/pipeline"
	"stitch/stages/images"
)

// Params are the parameters of a train stage.
type Params struct {
	// Backbone is a zoo model name (smallcnn, resnet18, ...; random
	// weights), or "file:PATH" / "weights:PATH" for an ONNX file such as
	// ../shared/models/mobilenet_v2_imagenet.onnx (pretrained weights).
	// Ignored when a `model` input is given.
	Backbone string `yaml:"backbone"`
	// Width multiplies a zoo backbone's channel counts, above 0 and at
	// most MaxWidth; an ONNX file's backbone ignores it.
	Width float64 `yaml:"width"`
	// Head are the hidden widths of the classifier head, each 1 to
	// MaxHeadWidth.
	Head []int `yaml:"head"`
	// FreezeRatio is the fraction of the backbone's parameters, input side
	// first, that stays frozen in phase 2.
	FreezeRatio float64 `yaml:"freeze_ratio"`
	// ImageSize is the square input size the images are resized to, 32
	// to MaxImageSize.
	ImageSize int `yaml:"image_size"`
	// Crop cuts images of a samples table to their bounding box, widened
	// by CropMargin of its size on each side.
	Crop       bool    `yaml:"crop"`
	CropMargin float64 `yaml:"crop_margin"`
	// Normalize overrides the backbone's pixel preprocessing.
	Normalize *Normalize `yaml:"normalize"`
	// Optimizer is adam or sgd; Momentum and Nesterov are SGD's;
	// WeightDecay is decoupled for Adam (AdamW) and L2 for SGD.
	Optimizer   string  `yaml:"optimizer"`
	Momentum    float64 `yaml:"momentum"`
	Nesterov    bool    `yaml:"nesterov"`
	WeightDecay float64 `yaml:"weight_decay"`
	// PosWeight is none, auto (negatives/positives per attribute on the
	// training labels, at most MaxPosWeight) or input (the `weights` input).
	PosWeight string `yaml:"pos_weight"`
	// Phase1 trains the head only; Phase2 also the unfrozen backbone
	// (max_epochs 0 skips it).
	Phase1 PhaseParams `yaml:"phase1"`
	Phase2 PhaseParams `yaml:"phase2"`
	// Early stopping and learning-rate reduction on the validation loss.
	Patience   int     `yaml:"patience"`
	MinDelta   float64 `yaml:"min_delta"`
	LRPatience int     `yaml:"lr_patience"`
	LRFactor   float64 `yaml:"lr_factor"`
	// BestBy picks the kept epoch: val_auc or val_loss.
	BestBy string `yaml:"best_by"`
	// Categories is auto, true or false: whether the model also learns
	// the category, through a second head on the same features. auto
	// turns it on when a `categories` input is wired and the training
	// samples have categories; true makes their absence an error.
	Categories CategoryMode `yaml:"categories"`
	// CategoryWeight multiplies the category cross-entropy in the loss;
	// at most MaxCategoryWeight.
	CategoryWeight float64 `yaml:"category_weight"`
}

// PhaseParams are one phase's settings.
type PhaseParams struct {
	MaxEpochs int `yaml:"max_epochs"`
	// StepsPerEpoch and ValidationSteps 0 mean a full pass. An epoch
	// draws at most MaxEpochSamples: StepsPerEpoch times BatchSize.
	StepsPerEpoch   int `yaml:"steps_per_epoch"`
	ValidationSteps int `yaml:"validation_steps"`
	// BatchSize is 1 to MaxBatchSize rows, and one batch of images at
	// most MaxBatchBytes. Above the number of training samples, the phase
	// trains and validates on batches of that number instead, as Keras
	// does: a full pass is then one batch of every sample.
	BatchSize    int     `yaml:"batch_size"`
	LearningRate float64 `yaml:"learning_rate"`
}

// CategoryMode is Params.Categories: auto, true or false.
type CategoryMode string

// Values of Params.Categories.
const (
	CategoriesAuto CategoryMode = "auto"
	CategoriesOn   CategoryMode = "true"
	CategoriesOff  CategoryMode = "false"
)

// UnmarshalYAML reads auto or a boolean, spelt any way a boolean
// parameter may be (true, True, FALSE, ...); the strings "true" and
// "false" are accepted too. Every spelling decodes to one of the three
// values, so they give the same run key.
func (m *CategoryMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch v := CategoryMode(n.Value); v {
		case CategoriesAuto, CategoriesOn, CategoriesOff:
			*m = v
			return nil
		}
		var on bool
		if err := n.Decode(&on); err == nil {
			*m = CategoriesOff
			if on {
				*m = CategoriesOn
			}
			return nil
		}
	}
	// The caller's message names the parameter already.
	return fmt.Errorf("%s: want auto, true or false", yamlText(n))
}

// yamlText shows a node in an error: a scalar quoted, else what it is.
func yamlText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "an alias"
}

// Upper bounds of the size parameters. Each lies well above what an
// experiment uses and well below what no longer fits in memory: a value
// past them is a typo or a unit mistake, which would otherwise pass
// validation and crash the run while allocating a batch or a weight.
const (
	// MaxImageSize is the largest image_size, the largest side the images
	// stage makes.
	MaxImageSize = images.MaxSide
	// MaxBatchSize is the largest batch_size: 128 times the default 32.
	// Batches larger still are split over many devices, which stitch does
	// not do.
	MaxBatchSize = 4096
	// MaxBatchBytes bounds one batch of input images, batch_size x 3 x
	// image_size^2 float32 values, of which the trainer keeps two: 4096
	// images of 224 px take 2.3 GiB, 256 of 1024 px 3 GiB.
	MaxBatchBytes = 4 << 30
	// MaxHeadWidth is the largest hidden layer of the head: four times
	// VGG's 4096-wide classifier layers. Two such layers in a row are 2^28
	// weights (1 GiB); two of 65536 would be 17 GiB, past ONNX's 2 GB limit
	// on a model file.
	MaxHeadWidth = 16384
	// MaxWidth is the largest zoo width multiplier. Published widths stop
	// at 2 (EfficientNet-B7; MobileNetV2 at 1.4). Weights grow with its
	// square: resnet50 at width 4 has 375M parameters (1.5 GB), the
	// largest zoo backbone under ONNX's 2 GB limit.
	MaxWidth = 4
	// MaxEpochSamples bounds steps_per_epoch x batch_size: ten million
	// samples, eight passes over ImageNet's training set. The epoch's
	// batch plan holds one index per sample; past that, more epochs say
	// the same thing.
	MaxEpochSamples = 10_000_000
)

// MaxCategoryWeight bounds category_weight: far above it the category
// loss swamps the attribute loss, and a huge weight overflows it to +Inf
// at the first step.
const MaxCategoryWeight = 1000

// Normalize is the pixel preprocessing x = (p/scale - mean[c]) / std[c].
type Normalize struct {
	Scale float32    `yaml:"scale"`
	Mean  [3]float32 `yaml:"mean"`
	Std   [3]float32 `yaml:"std"`
}

// MaxPosWeight caps pos_weight: auto, so that an attribute with a handful
// of positives does not dominate the loss.
const MaxPosWeight = 100

// NewParams returns the defaults of the notebook: a 496-wide head, 80% of
// the backbone frozen in phase 2, 224 px, Adam, early stopping after 8
// epochs and a tenfold learning-rate cut after 4 without improvement;
// and the category head when there are categories, weighted 0.1.
func NewParams() *Params {
	return &Params{
		Backbone: "mobilenet_v2", Width: 1, Head: []int{496}, FreezeRatio: 0.8, ImageSize: 224,
		Crop: true, Optimizer: train.Adam, Momentum: 0.9, PosWeight: "none",
		Phase1:   PhaseParams{MaxEpochs: 10, BatchSize: 32, LearningRate: 1e-3},
		Phase2:   PhaseParams{MaxEpochs: 10, BatchSize: 32, LearningRate: 1e-4},
		Patience: 8, MinDelta: 1e-4, LRPatience: 4, LRFactor: 0.1, BestBy: train.BestByValAUC,
		Categories: CategoriesAuto, CategoryWeight: 0.1,
	}
}

// Validate checks the parameters without touching the disk. Each
// problem is a *pipeline.ParamError naming its key, so that a pipeline
// file's error points at the key's line. A file backbone's path is
// cleaned (filepath.Clean), so that spellings of one path share a key.
func (p *Params) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.ParamErrorf(key, format, args...))
	}
	if pre, path := backboneFile(p.Backbone); path != "" {
		p.Backbone = pre + filepath.Clean(path)
	} else if !slices.Contains(zoo.Names(), p.Backbone) {
		bad("backbone", "backbone %q: want a zoo model (%s) or file:PATH", p.Backbone, strings.Join(zoo.Names(), ", "))
	}
	// Comparisons are written so that NaN fails them: NaN passes every
	// "v < 0" test, and a NaN freeze_ratio reaches a slice index.
	if !(p.Width > 0 && p.Width <= MaxWidth) {
		bad("width", "width %g: want a channel multiplier > 0 and at most %d", p.Width, MaxWidth)
	}
	if slices.ContainsFunc(p.Head, func(h int) bool { return h <= 0 || h > MaxHeadWidth }) {
		bad("head", "head %v: each hidden layer's width must be 1 to %d", p.Head, MaxHeadWidth)
	}
	if !(p.FreezeRatio >= 0 && p.FreezeRatio <= 1) {
		bad("freeze_ratio", "freeze_ratio %g: want 0 to 1", p.FreezeRatio)
	}
	sizeOK := p.ImageSize >= 32 && p.ImageSize <= MaxImageSize
	if !sizeOK {
		bad("image_size", "image_size %d: want 32 to %d pixels per side", p.ImageSize, MaxImageSize)
	}
	if !(p.CropMargin >= 0 && p.CropMargin <= 1) {
		bad("crop_margin", "crop_margin %g: want 0 to 1", p.CropMargin)
	}
	if n := p.Normalize; n != nil && (n.Scale == 0 || n.Std[0] == 0 || n.Std[1] == 0 || n.Std[2] == 0) {
		bad("normalize", "normalize: scale and std must not be zero")
	}
	if p.PosWeight != "none" && p.PosWeight != "auto" && p.PosWeight != "input" {
		bad("pos_weight", "pos_weight %q: want none, auto or input", p.PosWeight)
	}
	// The step graph takes these as float32: checked as they arrive there
	// (0.99999999999 is 1, 1e39 is +Inf). momentum is checked under Adam
	// too, where it is unused: a bad value is a mistake either way.
	optimizerOK := true
	if m := float32(p.Momentum); !(m >= 0 && m < 1) {
		bad("momentum", "momentum %g%s: want 0 or more and below 1", p.Momentum,
			asFloat32(p.Momentum, p.Momentum >= 0 && p.Momentum < 1))
		optimizerOK = false
	}
	if wd := float32(p.WeightDecay); !(wd >= 0) || math.IsInf(float64(wd), 0) {
		bad("weight_decay", "weight_decay %g%s: want a finite value >= 0", p.WeightDecay,
			asFloat32(p.WeightDecay, p.WeightDecay >= 0))
		optimizerOK = false
	}
	if err := p.optimizer().Validate(); err != nil && optimizerOK {
		errs = append(errs, &pipeline.ParamError{Key: p.optimizerKey(), Err: err})
	}
	for i, ph := range []PhaseParams{p.Phase1, p.Phase2} {
		size := p.ImageSize
		if !sizeOK {
			size = 0 // reported above; the batch's bytes are not checked
		}
		errs = append(errs, ph.validate(fmt.Sprintf("phase%d", i+1), size)...)
	}
	if p.Phase1.MaxEpochs == 0 && p.Phase2.MaxEpochs == 0 {
		bad("phase2.max_epochs", "phase1 and phase2: both have max_epochs 0, nothing to train")
	}
	for _, c := range []struct {
		key   string
		value float64
	}{{"patience", float64(p.Patience)}, {"lr_patience", float64(p.LRPatience)}, {"min_delta", p.MinDelta}} {
		if !(c.value >= 0) {
			bad(c.key, "%s %g: must not be negative", c.key, c.value)
		}
	}
	if p.LRPatience > 0 && !(p.LRFactor > 0 && p.LRFactor < 1) {
		bad("lr_factor", "lr_factor %g: want between 0 and 1", p.LRFactor)
	}
	if p.BestBy != train.BestByValAUC && p.BestBy != train.BestByValLoss {
		bad("best_by", "best_by %q: want %s or %s", p.BestBy, train.BestByValAUC, train.BestByValLoss)
	}
	if p.Categories != CategoriesAuto && p.Categories != CategoriesOn && p.Categories != CategoriesOff {
		bad("categories", "categories %q: want auto, true or false", p.Categories)
	}
	if w := float32(p.CategoryWeight); !(w > 0 && w <= MaxCategoryWeight) {
		bad("category_weight", "category_weight %g%s: want a weight > 0 and at most %d (categories: false "+
			"leaves the category head out)", p.CategoryWeight,
			asFloat32(p.CategoryWeight, p.CategoryWeight > 0 && p.CategoryWeight <= MaxCategoryWeight), MaxCategoryWeight)
	}
	return errors.Join(errs...)
}

// validate checks one phase; prefix is its key (phase1 or phase2) and
// imageSize the side of its images, 0 when image_size is out of bounds.
func (ph PhaseParams) validate(prefix string, imageSize int) []error {
	var errs []error
	for _, c := range []struct {
		key   string
		value int
	}{{"max_epochs", ph.MaxEpochs}, {"steps_per_epoch", ph.StepsPerEpoch}, {"validation_steps", ph.ValidationSteps}} {
		if c.value < 0 {
			errs = append(errs, pipeline.ParamErrorf(prefix+"."+c.key, "%s.%s %d: must not be negative",
				prefix, c.key, c.value))
		}
	}
	if ph.MaxEpochs <= 0 {
		return errs // a skipped phase needs no batch size or learning rate
	}
	batchOK := ph.BatchSize > 0 && ph.BatchSize <= MaxBatchSize
	if !batchOK {
		errs = append(errs, pipeline.ParamErrorf(prefix+".batch_size", "%s.batch_size %d: want 1 to %d",
			prefix, ph.BatchSize, MaxBatchSize))
	}
	if lr := float32(ph.LearningRate); !(lr > 0) || math.IsInf(float64(lr), 0) {
		errs = append(errs, pipeline.ParamErrorf(prefix+".learning_rate",
			"%s.learning_rate %g%s: want a finite rate > 0", prefix, ph.LearningRate,
			asFloat32(ph.LearningRate, ph.LearningRate > 0 && !math.IsInf(ph.LearningRate, 0))))
	}
	if !batchOK {
		return errs
	}

	// Divided rather than multiplied: steps_per_epoch has no bound of its
	// own, and the product could wrap around.
	if ph.StepsPerEpoch > MaxEpochSamples/ph.BatchSize {
		errs = append(errs, pipeline.ParamErrorf(prefix+".steps_per_epoch",
			"%s.steps_per_epoch %d: steps of %d samples draw more than %d samples per epoch; use more epochs",
			prefix, ph.StepsPerEpoch, ph.BatchSize, MaxEpochSamples))
	}
	// Both factors are bounded: the product fits in an int64.
	if bytes := int64(ph.BatchSize) * 3 * int64(imageSize) * int64(imageSize) * 4; bytes > MaxBatchBytes {
		errs = append(errs, pipeline.ParamErrorf(prefix+".batch_size",
			"%s.batch_size %d: a batch of %dx%d px images takes %.1f GiB, want at most %d GiB; "+
				"lower batch_size or image_size", prefix, ph.BatchSize, imageSize, imageSize,
			float64(bytes)/(1<<30), MaxBatchBytes>>30))
	}
	return errs
}

// optimizerKey names the parameter an optimizer error is about, once
// momentum and weight_decay are known to be good.
func (p *Params) optimizerKey() string {
	if p.Optimizer == train.SGD && p.Nesterov {
		return "nesterov"
	}
	return "optimizer"
}

// asFloat32 says what v becomes as a float32 when v itself would pass
// (passes) and that reads as another number: " (1 as float32)" for a
// momentum of 0.99999999999; else "".
func asFloat32(v float64, passes bool) string {
	if f, s := fmt.Sprintf("%g", float32(v)), fmt.Sprintf("%g", v); passes && f != s {
		return fmt.Sprintf(" (%s as float32)", f)
	}
	return ""
}

func (p *Params) optimizer() train.Optimizer {
	o := train.Optimizer{Kind: p.Optimizer, WeightDecay: float32(p.WeightDecay)}
	if p.Optimizer == train.SGD {
		o.Momentum, o.Nesterov = float32(p.Momentum), p.Nesterov
	}
	return o
}

// backboneFile splits "file:PATH" and "weights:PATH"; path is "" for a zoo
// name.
func backboneFile(backbone string) (prefix, path string) {
	for _, pre := range []string{"file:", "weights:"} {
		if rest, ok := strings.CutPrefix(backbone, pre); ok && rest != "" {
			return pre, rest
		}
	}
	return "", ""
}

// backbonePath is the absolute path of a file backbone ("" for a zoo one).
// A folder is an error: the engine would fingerprint it file by file as
// an external input first, and fail there for reasons unrelated to the
// backbone. A missing file is left to the fingerprint, which names it.
func (p *Params) backbonePath() (string, error) {
	_, path := backboneFile(p.Backbone)
	if path == "" {
		return "", nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("backbone %s: %w", p.Backbone, err)
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		return "", fmt.Errorf("backbone %s: %s is a directory, want an ONNX file", p.Backbone, abs)
	}
	return abs, nil
}
