package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestEditedImagesRerun: with check_images: true, an image edited in place
// (same name, new content) reruns partitions and every stage reading the
// pixels; without it the images stage stays cached, as
// stages/images/doc.go documents.
func TestEditedImagesRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("draws a dataset and decodes it")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		full := append([]string{args[0], "--workspace", dir, "-q"}, args[1:]...)
		if code := runMain(t.Context(), full, &out, &errb, kinds()); code != exitOK {
			t.Fatalf("stitch %v: exit %d\n%s", args, code, errb.String())
		}
		return out.String()
	}
	run("synth", "--out", data, "--n", "12", "--seed", "3")
	for _, check := range []bool{true, false} {
		pipe := filepath.Join(dir, fmt.Sprintf("check-%v.yaml", check))
		write(t, pipe, fmt.Sprintf(`
name: check-%[1]v
stages:
  split-%[1]v:
    uses: partitions
    with: {root: %[2]s, layout: coarse, check_images: %[1]v}
  pixels-%[1]v:
    uses: images
    needs: {samples: split-%[1]v.train}
    with: {image_size: [16, 16]}
`, check, data))
		run("run", pipe)
	}
	before := outputs(t, dir)

	// Rotate the images' bytes: every name stays, every content changes.
	imgs, err := filepath.Glob(filepath.Join(data, "img", "*.jpg"))
	if err != nil || len(imgs) < 2 {
		t.Fatalf("images of the synthetic set: %v %v", imgs, err)
	}
	first := readFile(t, imgs[0])
	for i := range imgs[:len(imgs)-1] {
		write(t, imgs[i], string(readFile(t, imgs[i+1])))
	}
	write(t, imgs[len(imgs)-1], string(first))
	for _, check := range []bool{true, false} {
		run("run", filepath.Join(dir, fmt.Sprintf("check-%v.yaml", check)))
	}
	after := outputs(t, dir)

	for _, name := range []string{"split-true.train", "pixels-true.images"} {
		if before[name] == after[name] {
			t.Errorf("check_images: true: %s unchanged after the images changed", name)
		}
	}
	for _, name := range []string{"split-false.train", "pixels-false.images"} {
		if before[name] != after[name] {
			t.Errorf("check_images: false: %s changed; the images are not part of the key", name)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
