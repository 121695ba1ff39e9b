package main

import (
	"encoding/json"
	"os"
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

// TestGCKeepsCacheEntryOutputs: a last-run record that lists fewer
// outputs than its key's cache entry (edited, cut short) does not let gc
// free the outputs it leaves out (found by a tester).
func TestGCKeepsCacheEntryOutputs(t *testing.T) {
	dir, _, path := runOneSource(t)

	record := filepath.Join(dir, ".stitch", "last", "p", "a.json")
	data, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	r["outputs"] = map[string]any{}
	data, _ = json.Marshal(r)
	write(t, record, string(data))

	if code, out, errOut := stitch(t, t.Context(), dir, "gc"); code != exitOK {
		t.Fatalf("gc: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("a's current output %s was freed: %v", path, err)
	}
}
