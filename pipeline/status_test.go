package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"stitch/pipeline"
)

// A gathered input whose variants come in another order says the whole
// list it read before, not its first entry.
func TestStatusInputWasWholeList(t *testing.T) {
	f := newFixture(t)
	src := "stages: {a: {uses: source, matrix: {value: [x, y]}}, b: {uses: join, needs: {in: a.out}}}"
	f.mustRun(src)
	reordered := strings.Replace(src, "[x, y]", "[y, x]", 1)
	want := map[string][]string{"b": {"input `in` now reads a[y].out, a[x].out (was a[x].out, a[y].out)"}}
	if diff := cmp.Diff(want, f.status(reordered)); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// A stage whose only attempt failed says so; what it feeds was never run.
func TestStatusLastRunFailed(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "fail")
	writeFile(t, marker, "")
	src := "params: {m: x}\nstages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, " +
		"with: {fail_if: \"${m}\"}}, c: {uses: upper, needs: {in: b.out}}}"
	if _, _, err := f.run(src, pipeline.Options{}, "m="+marker); err == nil {
		t.Fatal("run: no error, want b to fail")
	}
	want := map[string][]string{"b": {"last run failed: failing on purpose after writing the output"},
		"c": {"never run", "upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(src, "m="+marker)); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// A run that stops at a before reaching b leaves b's failure the last.
	if _, _, err := f.run(src, pipeline.Options{Targets: []string{"a"}}, "m="+marker); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, f.status(src, "m="+marker)); diff != "" {
		t.Errorf("status after a run of a alone (-want +got):\n%s", diff)
	}
}

// A stage that succeeded once and then failed with other parameters says
// that its last run failed, besides what changed since the success; back
// at the old parameters it is cached and says nothing of the failure.
func TestStatusFailedAfterSuccess(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "fail")
	writeFile(t, marker, "")
	src := "params: {m: x}\nstages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, " +
		"with: {fail_if: \"${m}\"}}}"
	f.mustRun(src)
	if _, _, err := f.run(src, pipeline.Options{}, "m="+marker); err == nil {
		t.Fatal("run: no error, want b to fail")
	}
	got := f.status(src, "m="+marker)["b"]
	if len(got) != 2 || !strings.HasPrefix(got[0], "last run failed: failing on purpose") ||
		!strings.Contains(got[1], "fail_if") {
		t.Errorf("status of b = %q, want the failure and the parameter change", got)
	}
	if got := f.status(src); len(got) != 0 {
		t.Errorf("status at the old parameters = %v, want all fresh", got)
	}
}

// recordOn keeps, when stage starts, the run record written so far.
type recordOn struct {
	cancelOn
	w      *pipeline.Workspace
	record **pipeline.RunRecord
}

func (o recordOn) StageStarted(stage string) {
	if stage == o.stage {
		runs, _ := o.w.RunRecords() // the test fails below when there is none
		for _, r := range runs {
			if r.Outcome == pipeline.OutcomeRunning {
				*o.record = r
			}
		}
	}
	o.cancelOn.StageStarted(stage)
}

// An interrupted stage, and the one a killed run was running, say so
// rather than "never run"; a stage the killed run had not started does
// not.
func TestStatusLastRunInterruptedOrKilled(t *testing.T) {
	f := newFixture(t)
	src := "stages: {a: {uses: source}, b: {uses: slow, needs: {in: a.out}, with: {steps: 100, step_ms: 20}}, " +
		"c: {uses: upper, needs: {in: b.out}}}"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var begun *pipeline.RunRecord
	obs := recordOn{cancelOn{"b", cancel}, f.w, &begun}
	res, _ := f.w.Run(ctx, parse(t, f.reg, src), pipeline.Options{Observer: obs})
	// c never started: it was not run, and says so.
	want := map[string][]string{"b": {"last run interrupted"}, "c": {"never run", "upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(src)); diff != "" {
		t.Errorf("status after the interrupt (-want +got):\n%s", diff)
	}
	// The interrupted attempt had other parameters than b has now.
	other := strings.Replace(src, "steps: 100", "steps: 99", 1)
	want = map[string][]string{"b": {"never run"}, "c": {"never run", "upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(other)); diff != "" {
		t.Errorf("status with other parameters after the interrupt (-want +got):\n%s", diff)
	}

	// The record as it stood while b ran, left by a process that is gone,
	// is what a killed run leaves.
	if begun == nil {
		t.Fatal("no running record while b ran")
	}
	begun.PID = 1 << 30 // above any pid_max: no such process
	data, err := json.Marshal(begun)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.dir, pipeline.MetaDir, "runs", res.RunID+".json"), string(data))
	// b was running when the run was killed; c had not started.
	want = map[string][]string{"b": {"last run killed"}, "c": {"never run", "upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(src)); diff != "" {
		t.Errorf("status after the kill (-want +got):\n%s", diff)
	}
	if err := os.Remove(filepath.Join(f.dir, pipeline.MetaDir, "runs", res.RunID+".json")); err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{"b": {"never run"}, "c": {"never run", "upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(src)); diff != "" {
		t.Errorf("status without run records (-want +got):\n%s", diff)
	}
}

// A missing external file makes its stage stale with the reason, and what
// it feeds stale behind it, instead of failing the whole status; a run
// that failed on it adds "last run failed".
func TestStatusMissingExternal(t *testing.T) {
	f := newFixture(t)
	file := filepath.Join(t.TempDir(), "data.txt")
	writeFile(t, file, "x")
	src := "params: {f: x}\nstages: {a: {uses: source, with: {file: \"${f}\"}}, b: {uses: upper, needs: {in: a.out}}}"
	f.mustRun(src, "f="+file)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	got := f.status(src, "f="+file)
	if len(got["a"]) != 1 || !strings.Contains(got["a"][0], file) || !strings.Contains(got["a"][0], "no such file") {
		t.Errorf("status of a = %q, want the missing file", got["a"])
	}
	if diff := cmp.Diff([]string{"upstream `a` is stale"}, got["b"]); diff != "" {
		t.Errorf("status of b (-want +got):\n%s", diff)
	}
	if _, _, err := f.run(src, pipeline.Options{}, "f="+file); err == nil {
		t.Fatal("run without the file: no error")
	}
	if got := f.status(src, "f="+file)["a"]; len(got) != 2 || !strings.HasPrefix(got[1], "last run failed: ") ||
		!strings.Contains(got[1], "no such file") {
		t.Errorf("status of a after the failed run = %q, want the missing file and the failure", got)
	}
}

// A stage another process is running as it stands says so, whatever its
// last attempt was.
func TestStatusRunningElsewhere(t *testing.T) {
	f := newFixture(t)
	src := "params: {s: x}\nstages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, with: {suffix: \"${s}\"}}}"
	f.mustRun(src)
	sts, err := f.w.Status(t.Context(), parse(t, f.reg, src, "s=y"))
	if err != nil {
		t.Fatal(err)
	}
	key := sts[1].Key
	if sts[1].Stage != "b" || key == "" {
		t.Fatalf("status: %+v, want b stale with a key", sts[1])
	}
	release := holdKeyLock(t, f.dir, key)
	got := f.status(src, "s=y")["b"]
	if len(got) == 0 || got[0] != "running now in another process" {
		t.Errorf("status of b while its key is locked = %q, want it running elsewhere first", got)
	}
	release()
	if got := f.status(src, "s=y")["b"]; slices.Contains(got, "running now in another process") {
		t.Errorf("status of b after the lock went = %q", got)
	}
}

// An attempt under the key a stage has now says how it ended even when a
// later attempt tried other parameters.
func TestStatusEarlierAttemptUnderThisKey(t *testing.T) {
	f := newFixture(t)
	src := "params: {n: 100}\nstages: {a: {uses: source}, b: {uses: slow, needs: {in: a.out}, " +
		"with: {steps: \"${n}\", step_ms: 20}}}"
	for _, n := range []string{"100", "99"} {
		ctx, cancel := context.WithCancel(t.Context())
		opts := pipeline.Options{Observer: cancelOn{"b", cancel}}
		if _, err := f.w.Run(ctx, parse(t, f.reg, src, "n="+n), opts); err == nil {
			t.Fatal("interrupted run: no error")
		}
		cancel()
	}
	for _, n := range []string{"100", "99"} {
		if diff := cmp.Diff([]string{"last run interrupted"}, f.status(src, "n="+n)["b"]); diff != "" {
			t.Errorf("status of b with steps %s (-want +got):\n%s", n, diff)
		}
	}
	if diff := cmp.Diff([]string{"never run"}, f.status(src, "n=98")["b"]); diff != "" {
		t.Errorf("status of b with steps never tried (-want +got):\n%s", diff)
	}
}

// lockedWriter is a log destination that several goroutines may share.
type lockedWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A run that finds a stage's key locked by another process says it waits,
// then goes on when the lock is released.
func TestRunSaysItWaits(t *testing.T) {
	f := newFixture(t)
	var logs lockedWriter
	w, err := pipeline.OpenWorkspace(f.dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	src := "stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}}}"
	f.mustRun("stages: {a: {uses: source}}") // a is cached now, so b's key is known
	sts, err := w.Status(t.Context(), parse(t, f.reg, src))
	if err != nil || sts[1].Key == "" {
		t.Fatalf("status: %+v, %v; want b with a key", sts, err)
	}
	release := holdKeyLock(t, f.dir, sts[1].Key)
	done := make(chan error, 1)
	go func() {
		_, err := w.Run(t.Context(), parse(t, f.reg, src), pipeline.Options{})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "another stitch run is running this stage; waiting") {
		if time.Now().After(deadline) {
			t.Fatalf("no waiting message in the log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("run after the lock went: %v", err)
	}
}

// holdKeyLock takes the run lock of key in the workspace at dir, as a
// running stage holds it, until release is called or the test ends.
func holdKeyLock(t *testing.T, dir, key string) (release func()) {
	t.Helper()
	lock := filepath.Join(dir, pipeline.MetaDir, "locks", key)
	if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := os.Create(lock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := unix.Flock(int(l.Fd()), unix.LOCK_UN); err != nil {
			t.Fatal(err)
		}
	}
}
