package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/pipeline"
)

// gc removes the lock files of the keys that ran, except one that a
// process holds; --dry-run counts them and removes none.
func TestGCLockFiles(t *testing.T) {
	f := newFixture(t)
	f.mustRun(chain)
	locks := func() []string {
		paths, _ := filepath.Glob(filepath.Join(f.dir, pipeline.MetaDir, "locks", "*"))
		return paths
	}
	before := locks()
	if len(before) != 4 {
		t.Fatalf("lock files after a run of 4 stages: %v", before)
	}
	held := before[0]
	release := holdKeyLock(t, f.dir, filepath.Base(held))

	res, err := f.w.GC(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Locks != 3 || len(locks()) != 4 {
		t.Errorf("gc --dry-run: %d lock files, %d left; want 3 counted, 4 left", res.Locks, len(locks()))
	}

	res, err = f.w.GC(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Locks != 3 {
		t.Errorf("gc removed %d lock files, want 3", res.Locks)
	}
	if diff := cmp.Diff([]string{held}, locks()); diff != "" {
		t.Errorf("lock files after gc (-want +got):\n%s", diff)
	}

	release()
	if ran := f.mustRun(strings.Replace(chain, `suffix: "!"`, `suffix: "?"`, 1)); len(ran) != 2 {
		t.Errorf("run after gc ran %v, want b and c", ran)
	}
}

// An empty work folder goes even when it is the latest attempt's, which a
// rerun would resume: it holds nothing to resume from.
func TestGCEmptyWorkFolder(t *testing.T) {
	tests := []struct {
		name string
		fill func(t *testing.T, dir string)
	}{
		{"empty", func(*testing.T, string) {}},
		{"empty subfolder", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	}
	src := "stages: {a: {uses: source}, b: {uses: slow, needs: {in: a.out}, with: {steps: 3, step_ms: 20}}}"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// Cancelled as it starts, b creates its work folder and
			// writes no checkpoint.
			_, err := f.w.Run(ctx, parse(t, f.reg, src), pipeline.Options{Observer: cancelOn{"b", cancel}})
			if err == nil {
				t.Fatal("interrupted run: no error")
			}
			f.c.Take()
			work, _ := filepath.Glob(filepath.Join(f.dir, pipeline.MetaDir, "work", "*"))
			if len(work) != 1 {
				t.Fatalf("work folders after the interrupt: %v, want 1", work)
			}
			tt.fill(t, work[0])

			res, err := f.w.GC(t.Context(), false)
			if err != nil {
				t.Fatal(err)
			}
			if res.Work != 1 || res.WorkBytes != 0 {
				t.Errorf("gc removed %d work folders (%d bytes), want 1 (0 bytes)", res.Work, res.WorkBytes)
			}
			if _, err := os.Stat(work[0]); !os.IsNotExist(err) {
				t.Errorf("empty work folder after gc: %v, want it gone", err)
			}
			if ran := f.mustRun(src); ran["b"] != 1 {
				t.Errorf("rerun after gc ran %v, want b", ran)
			}
		})
	}
}
