package baseline

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/pipeline/pipelinetest"
)

func samples(labels []int8, images ...string) *artifacts.Samples {
	n := len(images)
	s := &artifacts.Samples{NumAttributes: len(labels) / n, Image: images, Labels: labels}
	for range images {
		s.Partition = append(s.Partition, "train")
		s.Category = append(s.Category, 0)
		s.BBox = append(s.BBox, [4]int32{})
		s.HasBBox = append(s.HasBBox, false)
		s.Landmarks = append(s.Landmarks, nil)
	}
	return s
}

func TestFrequenciesIgnoreUnknown(t *testing.T) {
	// Attribute 0: 1 of 2 known positive (the 0 is unknown, not negative).
	// Attribute 1: 0 of 3. Attribute 2: 3 of 3.
	s := samples([]int8{1, -1, 1, -1, -1, 1, 0, -1, 1}, "a", "b", "c")
	got := Frequencies(s)
	want := []float32{0.5, 0, 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Frequencies (-want +got):\n%s", diff)
	}
}

func TestRunPredictsTrainingFrequencies(t *testing.T) {
	run := pipelinetest.NewRun(t, "baseline")
	trainID, err := run.St.PutSamples(samples([]int8{1, -1, 1, 1}, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	testID, err := run.St.PutSamples(samples([]int8{-1, -1, 1, 1, 0, 0}, "x", "y", "z"))
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("train", trainID)
	run.Bind("samples", testID)
	pred := runBaseline(t, run)
	want := &artifacts.Predictions{NumAttributes: 2, Image: []string{"x", "y", "z"},
		Scores: []float32{1, 0.5, 1, 0.5, 1, 0.5}}
	if diff := cmp.Diff(want, pred); diff != "" {
		t.Errorf("predictions (-want +got):\n%s", diff)
	}
}

func TestRunScoresCategoriesByTrainingFrequency(t *testing.T) {
	run := pipelinetest.NewRun(t, "baseline")
	train := samples([]int8{1, -1, 1, 1, -1, -1, 1, 1}, "a", "b", "c", "d")
	train.Category = []int32{7, 3, 7, 0} // 7 twice, 3 once, one row without
	trainID, err := run.St.PutSamples(train)
	if err != nil {
		t.Fatal(err)
	}
	testID, err := run.St.PutSamples(samples([]int8{-1, -1, 1, 1}, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	table := []artifacts.Category{{ID: 3, Name: "Tee"}, {ID: 5, Name: "Skirt"}, {ID: 7, Name: "Dress"}}
	catID, err := run.St.PutCategories(table)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("train", trainID)
	run.Bind("samples", testID)
	run.Bind("categories", catID)
	pred := runBaseline(t, run)
	third := float32(1) / 3
	want := &artifacts.Predictions{NumAttributes: 2, Image: []string{"x", "y"},
		Scores:        []float32{0.75, 0.5, 0.75, 0.5},
		NumCategories: 3, Categories: table,
		CategoryScores: []float32{third, 0, 2 * third, third, 0, 2 * third}}
	if diff := cmp.Diff(want, pred); diff != "" {
		t.Errorf("predictions (-want +got):\n%s", diff)
	}

	// A training category the table lacks is an error naming the image.
	train.Category[3] = 9
	if _, err := CategoryFrequencies(train, table); err == nil ||
		err.Error() != "training sample d has category id 9, which the categories table lacks" {
		t.Errorf("unknown category: got %v", err)
	}
}

// runBaseline runs the stage on run's inputs and returns its predictions.
func runBaseline(t *testing.T, run *pipelinetest.Run) *artifacts.Predictions {
	t.Helper()
	if err := New().Run(t.Context(), run, &Params{}); err != nil {
		t.Fatal(err)
	}
	id, err := run.Output("predictions")
	if err != nil {
		t.Fatal(err)
	}
	pred, err := run.St.GetPredictions(id)
	if err != nil {
		t.Fatal(err)
	}
	return pred
}
