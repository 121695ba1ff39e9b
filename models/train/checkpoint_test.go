package train

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"stitch/artifacts"
)

// TestCheckpointDamage reads back an intact checkpoint, and rejects as
// errBadCheckpoint every damaged one: truncated anywhere, a byte changed
// anywhere, empty, another version, or bytes appended.
func TestCheckpointDamage(t *testing.T) {
	dir := t.TempDir()
	ck := &checkpoint{
		progress: progress{Fingerprint: "fp", Phase: 1, Epoch: 2, Steps: 30, LR: 1e-3,
			History: []artifacts.Epoch{{Phase: 1, Epoch: 1, TrainLoss: 0.5, ValLoss: math.NaN()}}},
		Weights:     map[string][]float32{"a": {1, 2, 3}, "b": {4}},
		States:      map[string][]float32{"m/a": {0.1, 0.2, 0.3}},
		BestWeights: map[string][]float32{"a": {1, 2, 2}},
	}
	if err := writeCheckpoint(dir, ck); err != nil {
		t.Fatal(err)
	}
	got, err := readCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ck.Weights, got.Weights); diff != "" {
		t.Errorf("weights (-wrote +read):\n%s", diff)
	}
	if got.Steps != 30 || got.Fingerprint != "fp" || !math.IsNaN(got.History[0].ValLoss) {
		t.Errorf("progress read back as %+v", got.progress)
	}

	path := filepath.Join(dir, checkpointFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string][]byte{
		"empty":         {},
		"other version": append([]byte("stitch-train-checkpoint 2\n"), good[len(checkpointMagic):]...),
		"appended":      append(bytes.Clone(good), 0),
	}
	for _, cut := range []int{10, len(good) / 2, len(good) - 1} {
		damaged[fmt.Sprintf("truncated to %d bytes", cut)] = good[:cut]
	}
	for _, at := range []int{len(checkpointMagic) + 20, len(good) / 2, len(good) - 40, len(good) - 1} {
		b := bytes.Clone(good)
		b[at] ^= 0x40
		damaged[fmt.Sprintf("byte %d changed", at)] = b
	}
	for name, b := range damaged {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readCheckpoint(dir); !errors.Is(err, errBadCheckpoint) {
			t.Errorf("%s: err = %v, want errBadCheckpoint", name, err)
		}
	}
}

// TestDamagedCheckpointTrainsFromStart: a damaged checkpoint in the workdir
// is ignored with a warning, and training gives the clean run's model.
func TestDamagedCheckpointTrainsFromStart(t *testing.T) {
	needORT(t)
	m, info := smallModel(t)
	cfg := baseConfig(m, info, 2)
	cfg.Session.Threads = 2
	train, val := newSynth(48, 32, 1), newSynth(16, 32, 2)
	cfg.Workdir = t.TempDir()
	res, err := Train(t.Context(), cfg, train, val)
	if err != nil {
		t.Fatal(err)
	}
	want := mustMarshal(t, res.Model)

	cfg.Workdir = t.TempDir()
	junk := []byte(checkpointMagic + " junk")
	if err := os.WriteFile(filepath.Join(cfg.Workdir, checkpointFile), junk, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Train(t.Context(), cfg, train, val)
	if err != nil {
		t.Fatalf("training over a damaged checkpoint: %v", err)
	}
	if res.ResumedEpochs != 0 {
		t.Errorf("took over %d epochs from a damaged checkpoint", res.ResumedEpochs)
	}
	if !bytes.Equal(mustMarshal(t, res.Model), want) {
		t.Error("the model differs from the clean run's")
	}
}
