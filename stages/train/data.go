package train

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"sync/atomic"

	"stitch/artifacts"
	"stitch/stages/pixels"
)

// augmenter applies an online augmentation drawn from seed.
type augmenter interface {
	Apply(img *image.NRGBA, seed uint64) *image.NRGBA
}

// cacheBytes bounds the memory spent keeping decoded, resized images
// between epochs; larger sets are decoded again every epoch.
const cacheBytes = 1 << 30

// samplesData is a samples or images table as a train.Dataset: images
// are read (and cropped) or taken from the table, resized to the model's
// input, augmented, and normalised.
type samplesData struct {
	s         *artifacts.Samples
	size      int
	crop      bool
	margin    float64
	scale     float32
	mean, std [3]float32
	augment   augmenter
	cache     []atomic.Pointer[image.NRGBA]
	// boxes counts the boxes beyond their images; boxSeen keeps a sample
	// decoded in every epoch from being counted again.
	boxes   *pixels.BoxTally
	boxSeen []atomic.Bool
}

func newSamplesData(s *artifacts.Samples, p *Params, meta artifacts.ModelMeta, aug augmenter,
	boxes *pixels.BoxTally,
) *samplesData {
	d := &samplesData{
		s: s, size: p.ImageSize, crop: p.Crop, margin: p.CropMargin,
		scale: meta.Scale, mean: meta.Mean, std: meta.Std, augment: aug,
		boxes: boxes, boxSeen: make([]atomic.Bool, s.Len()),
	}
	if s.Len()*p.ImageSize*p.ImageSize*4 <= cacheBytes {
		d.cache = make([]atomic.Pointer[image.NRGBA], s.Len())
	}
	return d
}

// categoryData adds each sample's category class to a samplesData, for
// a model with a category head (a train.CategoryDataset).
type categoryData struct {
	*samplesData
	// classes[i] is sample i's class in the category head, 0 for none.
	classes []int
}

// Category implements train.CategoryDataset.
func (d categoryData) Category(i int) int { return d.classes[i] }

func (d *samplesData) Len() int            { return d.s.Len() }
func (d *samplesData) Labels(i int) []int8 { return d.s.Row(i) }

// Image implements train.Dataset. The augmentation runs on the resized
// image, so the decoded one can be cached across epochs.
func (d *samplesData) Image(_ context.Context, i int, dst []float32, augment bool, seed uint64) error {
	img, err := d.resized(i)
	if err != nil {
		return err
	}
	if augment && d.augment != nil {
		img = d.augment.Apply(img, seed)
		if b := img.Bounds(); b.Dx() != d.size || b.Dy() != d.size {
			img = pixels.Fit(img, d.size, d.size)
		}
	}
	if err := pixels.ToTensor(dst, img, d.scale, d.mean, d.std); err != nil {
		return fmt.Errorf("image %s: %w", d.s.Image[i], err)
	}
	return nil
}

// resized returns sample i decoded, cropped and resized (cached when the
// set is small enough). The cached image is never modified.
func (d *samplesData) resized(i int) (*image.NRGBA, error) {
	if d.cache != nil {
		if img := d.cache[i].Load(); img != nil {
			return img, nil
		}
	}
	var img *image.NRGBA
	var err error
	if d.s.Pixels != nil {
		if img, err = pixels.FromRGB(d.s.Pixels[i], d.s.Width, d.s.Height); err != nil {
			return nil, fmt.Errorf("image %s: %w", d.s.Image[i], err)
		}
	} else {
		if img, err = pixels.Load(filepath.Join(d.s.Root, d.s.Image[i])); err != nil {
			return nil, err
		}
		if d.crop && d.s.HasBBox[i] {
			var fit pixels.BoxFit
			img, fit = pixels.CropBox(img, d.s.BBox[i], d.margin)
			if d.boxes != nil && !d.boxSeen[i].Swap(true) {
				d.boxes.Add(fit)
			}
		}
	}
	if b := img.Bounds(); b.Dx() != d.size || b.Dy() != d.size {
		img = pixels.Fit(img, d.size, d.size)
	}
	if d.cache != nil {
		d.cache[i].Store(img)
	}
	return img, nil
}
