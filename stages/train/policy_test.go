package train

import (
	"bytes"
	"image"
	"image/color"
	"testing"

	"stitch/pipeline/pipelinetest"
	"stitch/stages/augment"
)

func TestPolicyAugmenterIsSeededAndKeepsSize(t *testing.T) {
	run := pipelinetest.NewRun(t, "train")
	id, err := augment.PutPolicy(run.St, &augment.Policy{
		RotationRange: 30, HorizontalFlip: true, FillMode: "nearest", TargetSize: [2]int{48, 40},
		ZoomRange: [2]float64{0.9, 1.1},
	})
	if err != nil {
		t.Fatal(err)
	}
	aug, err := readPolicy(run.St, id)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.Set(x, y, color.NRGBA{R: uint8(8 * x), G: uint8(8 * y), B: 40, A: 255})
		}
	}

	a := aug.Apply(img, 7)
	b := aug.Apply(img, 7)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("the same seed gave two different images")
	}
	if got := a.Rect.Size(); got != img.Rect.Size() {
		t.Errorf("augmented size %v, want the model input size %v", got, img.Rect.Size())
	}
	differs := false
	for seed := uint64(1); seed < 8 && !differs; seed++ {
		differs = !bytes.Equal(aug.Apply(img, seed).Pix, a.Pix)
	}
	if !differs {
		t.Error("different seeds never changed the augmentation")
	}
}
