package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// stitch gc says how many lock files it would remove, and removes them.
func TestGCLockFiles(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "p.yaml")
	write(t, spec, "stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}}}")
	if code, out, errOut := stitch(t, t.Context(), dir, "run", spec); code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	locks := func() []string {
		paths, _ := filepath.Glob(filepath.Join(dir, ".stitch", "locks", "*"))
		return paths
	}

	for _, tc := range []struct {
		args []string
		want string
		left int
	}{
		{[]string{"gc", "--dry-run"}, "would remove", 2},
		{[]string{"gc"}, "removed", 0},
	} {
		code, out, errOut := stitch(t, t.Context(), dir, tc.args...)
		if code != exitOK || !strings.Contains(out, tc.want) || !strings.Contains(out, "2 unused lock files") {
			t.Errorf("stitch %v: exit %d; stdout:\n%s\nstderr:\n%s", tc.args, code, out, errOut)
		}
		if got := locks(); len(got) != tc.left {
			t.Errorf("lock files after stitch %v: %v, want %d", tc.args, got, tc.left)
		}
	}
}
