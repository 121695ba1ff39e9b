package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"stitch/artifacts"
	"stitch/pipeline"
)

// resample, augment (materialise) and baseline take an images table where
// their docs say they do, and pass pixels on: the images stage's table is
// rebalanced, augmented and counted without going back to the files.
func TestImagesTableInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("draws a dataset and decodes it")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	run := func(args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		full := append([]string{args[0], "--workspace", dir, "-q"}, args[1:]...)
		if code := runMain(t.Context(), full, &out, &errb, kinds()); code != exitOK {
			t.Fatalf("stitch %v: exit %d\n%s", args, code, errb.String())
		}
	}
	run("synth", "--out", data, "--n", "16", "--seed", "5")
	pipe := filepath.Join(dir, "p.yaml")
	write(t, pipe, `
name: imgs
stages:
  split: {uses: partitions, with: {root: `+data+`, layout: coarse}}
  imgs: {uses: images, needs: {samples: split.train}, with: {image_size: 16}}
  bal: {uses: resample, needs: {samples: imgs.images}, with: {mode: oversample}}
  aug:
    uses: augment
    needs: {samples: bal.samples}
    with: {mode: materialise, copies: 1, target_size: [16, 16], preview: 0}
  freq: {uses: baseline, needs: {train: aug.images, samples: split.val}}
`)
	run("run", pipe)
	w, err := pipeline.OpenWorkspaceReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	outs := outputs(t, dir)
	for _, name := range []string{"bal.samples", "aug.images"} {
		id, err := artifacts.ParseID(outs[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		s, err := w.Store().GetSamples(id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() == 0 || s.Pixels == nil || s.Width != 16 {
			t.Errorf("%s: %d rows, pixels %v, width %d; want rows of 16 px pixels", name, s.Len(), s.Pixels != nil,
				s.Width)
		}
	}
	if outs["freq.predictions"] == "" {
		t.Error("baseline on the augmented images wrote no predictions")
	}
}
