// Package baseline is the `baseline` stage kind: the frequency baseline
// every experiment must beat. It predicts, for every image, each
// attribute's positive rate in the training samples, so its top k are
// always the k most frequent attributes. Evaluated like a model, it is the
// row "what you get without looking at the pixels".
//
// With a categories table wired (input `categories`) and training samples
// that have categories, it also scores every category by its share of the
// training images, so its category top k are the k most frequent
// categories (ties to the lower id, as evaluate ranks them).
package baseline

import (
	"context"
	"fmt"

	"stitch/artifacts"
	"stitch/pipeline"
)

// Params are the parameters of a baseline stage (none yet).
type Params struct{}

type kind struct{}

// New returns the baseline stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "baseline" }
func (kind) Version() string { return "1" }
func (kind) NewParams() any  { return &Params{} }

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "train", Kind: artifacts.KindSamples, Also: []string{artifacts.KindImages},
			Doc: "training samples (or images): the attribute frequencies"},
		{Name: "samples", Doc: "the samples (or images) to predict"},
		{Name: "categories", Kind: artifacts.KindCategories, Optional: true,
			Doc: "categories to score by training frequency"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "predictions", Kind: artifacts.KindPredictions, Doc: "training frequency of each attribute"},
	}
}

func (kind) Run(ctx context.Context, run pipeline.Run, _ any) error {
	store := run.Store()
	trainID, ok1 := run.Input("train")
	samplesID, ok2 := run.Input("samples")
	if !ok1 || !ok2 {
		return fmt.Errorf("baseline %s: inputs train and samples are required", run.Stage())
	}
	train, err := store.GetSamples(trainID)
	if err != nil {
		return fmt.Errorf("baseline %s: %w", run.Stage(), err)
	}
	samples, err := store.GetSamples(samplesID)
	if err != nil {
		return fmt.Errorf("baseline %s: %w", run.Stage(), err)
	}
	if train.NumAttributes != samples.NumAttributes {
		return fmt.Errorf("baseline %s: train has %d attributes, samples %d",
			run.Stage(), train.NumAttributes, samples.NumAttributes)
	}

	freq := Frequencies(train)
	pred := &artifacts.Predictions{NumAttributes: samples.NumAttributes, Image: samples.Image}
	pred.Scores = make([]float32, 0, samples.Len()*samples.NumAttributes)
	for range samples.Image {
		pred.Scores = append(pred.Scores, freq...)
	}
	if id, ok := run.Input("categories"); ok {
		table, err := store.GetCategories(id)
		if err != nil {
			return fmt.Errorf("baseline %s: categories: %w", run.Stage(), err)
		}
		catFreq, err := CategoryFrequencies(train, table)
		if err != nil {
			return fmt.Errorf("baseline %s: %w", run.Stage(), err)
		}
		if catFreq == nil {
			run.Logger().Info("the training samples have no categories; no category scores")
		} else {
			pred.Categories, pred.NumCategories = table, len(table)
			pred.CategoryScores = make([]float32, 0, samples.Len()*len(table))
			for range samples.Image {
				pred.CategoryScores = append(pred.CategoryScores, catFreq...)
			}
		}
	}
	id, err := store.PutPredictions(pred)
	if err != nil {
		return fmt.Errorf("baseline %s: %w", run.Stage(), err)
	}
	run.SetOutput("predictions", id)
	return nil
}

// Frequencies returns each attribute's positive rate among the rows whose
// label for it is known (label 0 is unknown and counts nowhere); an
// attribute with no known label gets 0.
func Frequencies(s *artifacts.Samples) []float32 {
	pos := make([]int, s.NumAttributes)
	known := make([]int, s.NumAttributes)
	for i := range s.Len() {
		for a, label := range s.Row(i) {
			if label != artifacts.Unknown {
				known[a]++
			}
			if label == artifacts.Present {
				pos[a]++
			}
		}
	}
	freq := make([]float32, s.NumAttributes)
	for a := range freq {
		if known[a] > 0 {
			freq[a] = float32(pos[a]) / float32(known[a])
		}
	}
	return freq
}

// CategoryFrequencies returns, in the order of table, each category's
// share of the training rows that have a category; nil when no row has
// one. A row whose category is not in the table is an error.
func CategoryFrequencies(s *artifacts.Samples, table []artifacts.Category) ([]float32, error) {
	col, err := artifacts.CategoryColumns(table)
	if err != nil {
		return nil, err
	}
	counts := make([]int, len(table))
	rows := 0
	for i, c := range s.Category {
		if c == 0 {
			continue
		}
		j, ok := col[c]
		if !ok {
			return nil, fmt.Errorf("training sample %s has category id %d, which the categories table lacks",
				s.Image[i], c)
		}
		counts[j]++
		rows++
	}
	if rows == 0 {
		return nil, nil
	}
	freq := make([]float32, len(table))
	for j, n := range counts {
		freq[j] = float32(n) / float32(rows)
	}
	return freq, nil
}
