package predict

import (
	"testing"

	"stitch/artifacts"
)

// Crop and crop_margin follow the model's training unless set; without a
// record in the model, the default is to crop with no margin.
func TestCropFor(t *testing.T) {
	no, half := false, 0.5
	trained := artifacts.ModelMeta{Crop: &artifacts.CropSpec{Crop: true, Margin: 0.1}}
	for _, tc := range []struct {
		name string
		p    Params
		meta artifacts.ModelMeta
		want artifacts.CropSpec
	}{
		{"as trained", Params{}, trained, artifacts.CropSpec{Crop: true, Margin: 0.1}},
		{"margin set", Params{CropMargin: &half}, trained, artifacts.CropSpec{Crop: true, Margin: 0.5}},
		{"crop off", Params{Crop: &no}, trained, artifacts.CropSpec{Crop: false, Margin: 0.1}},
		{"no record", Params{}, artifacts.ModelMeta{}, artifacts.CropSpec{Crop: true}},
	} {
		if got := tc.p.cropFor(tc.meta); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
