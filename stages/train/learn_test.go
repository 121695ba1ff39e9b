package train

import (
	"testing"

	"stitch/artifacts"
	"stitch/metrics"
	"stitch/pipeline/pipelinetest"
	"stitch/stages/baseline"
	"stitch/stages/partitions"
	"stitch/stages/predict"
	"stitch/stages/synth"
)

// TestLearnsSynthetic is issue 6's learning check: a smallcnn trained from
// random weights on the synthetic dataset ranks the attributes of unseen
// images far better than the frequency baseline, which gives every image
// the same ranking. Eight epochs of 350 images at 64 px keep it near half
// a minute of 2 idle cores. The same model learns the category (issue 4):
// its top-1 accuracy must beat the majority-class rate clearly.
func TestLearnsSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for about half a minute")
	}
	needORT(t)
	root := t.TempDir()
	opts := synth.DefaultOptions(root)
	opts.N, opts.Size = 500, 64
	if _, err := synth.Generate(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	pp := partitions.NewParams()
	pp.Root, pp.Layout = root, "coarse"
	ds, err := partitions.Read(t.Context(), pp)
	if err != nil {
		t.Fatal(err)
	}
	trainSet, valSet, testSet := ds.Partitions[0], ds.Partitions[1], ds.Partitions[2]

	// The random backbone learns nothing in a head-only phase: one epoch
	// of it, then everything trains (freeze_ratio 0).
	run := pipelinetest.NewRun(t, "train")
	run.Settings_.Threads = 2
	bind := func(r *pipelinetest.Run, name string, put func() (artifacts.ID, error)) {
		t.Helper()
		id, err := put()
		if err != nil {
			t.Fatal(err)
		}
		r.Bind(name, id)
	}
	bind(run, "train", func() (artifacts.ID, error) { return run.St.PutSamples(trainSet) })
	bind(run, "val", func() (artifacts.ID, error) { return run.St.PutSamples(valSet) })
	bind(run, "attributes", func() (artifacts.ID, error) { return run.St.PutAttributes(ds.Attributes) })
	bind(run, "categories", func() (artifacts.ID, error) { return run.St.PutCategories(ds.Categories) })
	p := NewParams()
	p.Backbone, p.ImageSize, p.Head, p.FreezeRatio = "smallcnn", 64, []int{128}, 0
	p.Phase1 = PhaseParams{MaxEpochs: 1, BatchSize: 16, LearningRate: 3e-3}
	p.Phase2 = PhaseParams{MaxEpochs: 7, BatchSize: 16, LearningRate: 3e-3}
	// The category cross-entropy, a mean over images, outweighs the
	// attribute loss, a mean over 25 labels per image: over four seeds,
	// weight 1 cost 10 to 15 points of this top-5 recall (59% without
	// the category head, 46% with it), weight 0.1 0 to 5 (3 on average),
	// for about the same category accuracy (87% and 86%).
	p.CategoryWeight = 0.1
	if err := New().Run(t.Context(), run, p); err != nil {
		t.Fatal(err)
	}
	modelID, err := run.Output("model")
	if err != nil {
		t.Fatal(err)
	}

	// Predict the test partition with the predict stage, as a pipeline does.
	pr := pipelinetest.NewRun(t, "predict")
	pr.Settings_.Threads = 2
	model, err := run.St.GetModel(modelID)
	if err != nil {
		t.Fatal(err)
	}
	bind(pr, "model", func() (artifacts.ID, error) { return pr.St.PutModel(model) })
	bind(pr, "samples", func() (artifacts.ID, error) { return pr.St.PutSamples(testSet) })
	if err := predict.New().Run(t.Context(), pr, predict.NewParams()); err != nil {
		t.Fatal(err)
	}
	predID, err := pr.Output("predictions")
	if err != nil {
		t.Fatal(err)
	}
	pred, err := pr.St.GetPredictions(predID)
	if err != nil {
		t.Fatal(err)
	}

	// The frequency baseline: the training positive rates for every image.
	freq := baseline.Frequencies(trainSet)
	var freqScores []float32
	for range testSet.Len() {
		freqScores = append(freqScores, freq...)
	}
	const k = 5
	modelRecall := microRecall(t, testSet, pred.Scores, k)
	baseRecall := microRecall(t, testSet, freqScores, k)
	t.Logf("top-%d micro recall on %d test images: model %.1f%%, frequency baseline %.1f%%",
		k, testSet.Len(), 100*modelRecall, 100*baseRecall)
	// A clear margin, not just "better": the baseline is near 30%, and
	// this budget reached 56% when the test was written.
	if modelRecall < baseRecall+0.15 {
		t.Errorf("top-%d micro recall %.3f: want at least the baseline's %.3f + 0.15", k, modelRecall, baseRecall)
	}

	// Category top-1 accuracy against the majority-class rate: the share
	// of the test images' most frequent category, the best any constant
	// guess does.
	if pred.NumCategories != len(ds.Categories) {
		t.Fatalf("predictions hold %d category scores per image, want %d", pred.NumCategories, len(ds.Categories))
	}
	accuracy, majority := categoryAccuracy(t, pred, testSet)
	t.Logf("category top-1 accuracy on %d test images: model %.1f%%, majority class %.1f%%",
		testSet.Len(), 100*accuracy, 100*majority)
	if accuracy < majority+0.2 {
		t.Errorf("category top-1 accuracy %.3f: want at least the majority-class rate %.3f + 0.2", accuracy, majority)
	}
}

// categoryAccuracy returns the top-1 category accuracy of pred on s, its
// scores placed by category id, and the majority-class rate of s.
func categoryAccuracy(t *testing.T, pred *artifacts.Predictions, s *artifacts.Samples) (float64, float64) {
	t.Helper()
	width := 0
	for _, c := range pred.Categories {
		width = max(width, c.ID)
	}
	byID := make([]float32, s.Len()*width)
	for i := range s.Len() {
		for c, cat := range pred.Categories {
			byID[i*width+cat.ID-1] = pred.CategoryScores[i*pred.NumCategories+c]
		}
	}
	res, err := metrics.CategoryTopK(byID, width, s.Category, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int32]int{}
	for _, c := range s.Category {
		if c > 0 {
			counts[c]++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	return res[0].Value, float64(most) / float64(res[0].Images)
}

func microRecall(t *testing.T, s *artifacts.Samples, scores []float32, k int) float64 {
	t.Helper()
	res, err := metrics.Evaluate(metrics.Data{NumAttributes: s.NumAttributes, Scores: scores, Labels: s.Labels},
		metrics.Options{Ks: []int{k}})
	if err != nil {
		t.Fatal(err)
	}
	return res.TopK[0].Micro.Recall
}
