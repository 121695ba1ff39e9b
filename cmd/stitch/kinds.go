package main

import (
	"stitch/pipeline"
	"stitch/stages/augment"
	"stitch/stages/baseline"
	"stitch/stages/evaluate"
	"stitch/stages/images"
	"stitch/stages/partitions"
	"stitch/stages/predict"
	"stitch/stages/resample"
	"stitch/stages/synth"
	"stitch/stages/tabulate"
	"stitch/stages/train"
)

// kinds returns every stage kind the binary knows. It is the one place
// where stage packages are wired in: add each kind here.
func kinds() []pipeline.Kind {
	ks := []pipeline.Kind{
		partitions.New(),
		images.New(),
		resample.New(),
		augment.New(),
		synth.New(),
		train.New(),
		predict.New(),
		baseline.New(),
		evaluate.New(),
		tabulate.New(),
	}
	return append(ks, testKinds()...)
}
