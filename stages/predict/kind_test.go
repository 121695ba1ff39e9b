package predict_test

import (
	"errors"
	"math"
	"testing"

	"stitch/pipeline"
	"stitch/stages/predict"
)

// Each bad value is an error naming its key, NaN included; a batch that
// would only cost memory is refused before anything is allocated.
func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*predict.Params)
		key  string
	}{
		{func(p *predict.Params) { p.BatchSize = 0 }, "batch_size"},
		{func(p *predict.Params) { p.BatchSize = predict.MaxBatchSize + 1 }, "batch_size"},
		{func(p *predict.Params) { nan := math.NaN(); p.CropMargin = &nan }, "crop_margin"},
	} {
		p := predict.NewParams()
		tc.edit(p)
		var pe *pipeline.ParamError
		if err := p.Validate(); !errors.As(err, &pe) || pe.Key != tc.key {
			t.Errorf("want an error about %s, got %v", tc.key, err)
		}
	}
	if err := predict.NewParams().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
