package train

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/models/head"
)

// TestHistoryIndependentOfThreads: the thread count is no part of a run
// key, so the history (validation loss included) and the model must not
// depend on it (NewStepper).
func TestHistoryIndependentOfThreads(t *testing.T) {
	needORT(t)
	// A hidden layer of 128: its GEMM is where ONNX Runtime's results
	// depended on the thread count.
	m, info, err := head.Attach(sharedModel(t, "smallcnn"),
		head.Spec{Hidden: []int{128}, Outputs: synthClasses, Categories: synthCategories, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(m, info, 2)
	cfg.CategoryLogits, cfg.CategoryWeight = info.CategoryOutput, 0.5
	train, val := catSynth{newSynth(48, 32, 1)}, catSynth{newSynth(24, 32, 2)}
	var histories [][]float64
	var models [][]byte
	for _, threads := range []int{1, 2} {
		cfg.Session.Threads = threads
		cfg.Workdir = t.TempDir()
		res, err := Train(t.Context(), cfg, train, val)
		if err != nil {
			t.Fatal(err)
		}
		var h []float64
		for _, e := range res.History {
			h = append(h, e.TrainLoss, e.ValLoss, e.ValAUC)
		}
		histories = append(histories, h)
		models = append(models, mustMarshal(t, res.Model))
	}
	if diff := cmp.Diff(histories[0], histories[1]); diff != "" {
		t.Errorf("history on 1 thread vs 2 (train loss, val loss, val AUC per epoch):\n%s", diff)
	}
	if string(models[0]) != string(models[1]) {
		t.Error("the model trained on 1 thread differs from the one on 2")
	}
}
