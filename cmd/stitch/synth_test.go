package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestSynthInterrupted: Ctrl-C during synth says what it leaves, a partly
// drawn folder that a rerun replaces (it said the pipeline's "finished
// stages are cached"), and the rerun does replace it.
func TestSynthInterrupted(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "d")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	code, _, stderr := stitch(t, ctx, dir, "synth", "--out", out, "--n", "50", "--size", "32")
	want := "stitch synth: interrupted; " + out + " is left partly drawn; a rerun into it replaces it\n"
	if code != exitInterrupted || stderr != want {
		t.Errorf("synth, interrupted: exit %d, stderr %q; want exit %d, %q", code, stderr, exitInterrupted, want)
	}

	code, stdout, stderr := stitch(t, t.Context(), dir, "synth", "--out", out, "--n", "1", "--size", "32")
	if code != exitOK || !strings.HasPrefix(stdout, out+": 1 image (") {
		t.Errorf("synth into the interrupted folder: exit %d, stdout %q, stderr %q; want 1 image drawn",
			code, stdout, stderr)
	}
}

// TestSynthUsageErrors: a folder synth refuses and an --unknown out of
// range are usage errors (exit 2) that name what the user typed.
func TestSynthUsageErrors(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	write(t, filepath.Join(other, "notes.txt"), "mine")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", other, "--n", "2"}, "is not empty and holds no earlier synth dataset"},
		{[]string{"--out", filepath.Join(dir, "new"), "--unknown", "1"}, "--unknown 1: want a fraction"},
		{[]string{"--out", filepath.Join(dir, "new"), "--n", "0"}, "--n 0: want 1 to 10000000 images"},
		{[]string{"--out", filepath.Join(dir, "new"), "--size", "3"}, "--size 3: want 32 to 4096 pixels"},
		{[]string{"--out", filepath.Join(other, "notes.txt")}, "notes.txt is a file, not a folder"},
		{[]string{"--out", filepath.Join(other, "notes.txt", "sub")}, "a folder on its path is a file"},
	} {
		code, _, stderr := stitch(t, t.Context(), dir, append([]string{"synth"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("synth %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
}
