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
  fit:
    uses: train
    needs: {train: aug.images, val: imgs.images, attributes: split.attributes}
    with:
      backbone: smallcnn
      width: 0.25
      image_size: 32
      head: [8]
      phase1: {max_epochs: 1, batch_size: 8}
      phase2: {max_epochs: 0}
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
		// How imgs read the files (its default margin 0.1) carries over.
		if c := s.Crop; c == nil || *c != (artifacts.CropSpec{Crop: true, Margin: 0.1}) {
			t.Errorf("%s: crop %+v, want the images stage's (crop, margin 0.1)", name, c)
		}
	}
	// A model trained on the table records it, so predict on a samples
	// table reads the test files the same way.
	id, err := artifacts.ParseID(outs["fit.model"])
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.Store().GetModel(id)
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Meta.Crop; c == nil || *c != (artifacts.CropSpec{Crop: true, Margin: 0.1}) {
		t.Errorf("model trained on images: crop %+v, want crop with margin 0.1", c)
	}
	if outs["freq.predictions"] == "" {
		t.Error("baseline on the augmented images wrote no predictions")
	}
}
