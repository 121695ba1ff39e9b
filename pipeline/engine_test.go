package pipeline_test

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/internal/testkinds"
	"stitch/pipeline"
)

// fixture is a workspace with the test kinds and a run counter.
type fixture struct {
	t   *testing.T
	reg *pipeline.Registry
	c   *testkinds.Counter
	w   *pipeline.Workspace
	dir string
}

func newFixture(t *testing.T) *fixture {
	reg, c := registry(t)
	dir := t.TempDir()
	w, err := pipeline.OpenWorkspace(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, reg: reg, c: c, w: w, dir: dir}
}

// run runs src and returns the stages that really ran, with their count.
func (f *fixture) run(src string, opts pipeline.Options, sets ...string) (map[string]int, *pipeline.Result, error) {
	f.t.Helper()
	p := parse(f.t, f.reg, src, sets...)
	res, err := f.w.Run(f.t.Context(), p, opts)
	return f.c.Take(), res, err
}

func (f *fixture) mustRun(src string, sets ...string) map[string]int {
	f.t.Helper()
	ran, _, err := f.run(src, pipeline.Options{}, sets...)
	if err != nil {
		f.t.Fatalf("run: %v", err)
	}
	return ran
}

func (f *fixture) status(src string, sets ...string) map[string][]string {
	f.t.Helper()
	sts, err := f.w.Status(f.t.Context(), parse(f.t, f.reg, src, sets...))
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, st := range sts {
		if !st.Fresh {
			out[st.Stage] = st.Reasons
		}
	}
	return out
}

const chain = `
params: {seed: 7}
stages:
  a: {uses: source, with: {value: hello, lr: 0.01}}
  b: {uses: upper, needs: {in: a.out}, with: {suffix: "!"}}
  c: {uses: slow, needs: {in: b.out}, with: {steps: 1, step_ms: 1}}
  d: {uses: upper, needs: {in: a.out}}
`

func all(names ...string) map[string]int {
	m := map[string]int{}
	for _, n := range names {
		m[n] = 1
	}
	return m
}

// Case 1: a parameter edit reruns that stage and its dependents only.
func TestParamEditRerunsDependents(t *testing.T) {
	f := newFixture(t)
	if diff := cmp.Diff(all("a", "b", "c", "d"), f.mustRun(chain)); diff != "" {
		t.Fatalf("first run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{}, f.mustRun(chain)); diff != "" {
		t.Fatalf("second run (-want +got):\n%s", diff)
	}
	edited := strings.Replace(chain, `suffix: "!"`, `suffix: "?"`, 1)
	want := map[string][]string{"b": {"parameter `suffix` changed \"!\" -> \"?\""}, "c": {"upstream `b` is stale"}}
	if diff := cmp.Diff(want, f.status(edited)); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(all("b", "c"), f.mustRun(edited)); diff != "" {
		t.Errorf("after edit (-want +got):\n%s", diff)
	}
}

// Case 2: removing a parameter reruns the stage (its default differs).
func TestRemovedParamReruns(t *testing.T) {
	f := newFixture(t)
	f.mustRun(chain)
	edited := strings.Replace(chain, ", lr: 0.01", "", 1)
	want := map[string][]string{"a": {"parameter `lr` removed: 0.01 -> default 0.001"},
		"b": {"upstream `a` is stale"}, "c": {"upstream `b` is stale"}, "d": {"upstream `a` is stale"}}
	if diff := cmp.Diff(want, f.status(edited)); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if ran := f.mustRun(edited); ran["a"] != 1 {
		t.Errorf("a did not rerun: %v", ran)
	}
}

// Case 3 at run level: spellings of one float are one cache entry.
func TestFloatSpellingsOneKey(t *testing.T) {
	f := newFixture(t)
	for i, lr := range []string{"1e-5", "1.0e-5", "0.00001", "1E-05"} {
		src := "stages: {a: {uses: source, with: {lr: " + lr + ", value: v}}}"
		ran := f.mustRun(src)
		if want := map[string]int{}; i == 0 {
			want = all("a")
			if diff := cmp.Diff(want, ran); diff != "" {
				t.Fatal(diff)
			}
		} else if len(ran) != 0 {
			t.Errorf("lr %s reran: %v", lr, ran)
		}
	}
}

// Case 4: a byte change of an external file reruns (also CRLF -> LF);
// touching it does not.
func TestExternalFile(t *testing.T) {
	f := newFixture(t)
	data := filepath.Join(t.TempDir(), "labels.txt")
	writeFile(t, data, "a\r\nb\r\n")
	src := "params: {file: x}\nstages: {a: {uses: source, with: {file: \"${file}\"}}, b: {uses: upper, needs: {in: a.out}}}"
	set := "file=" + data
	f.mustRun(src, set)

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(data, later, later); err != nil {
		t.Fatal(err)
	}
	if ran := f.mustRun(src, set); len(ran) != 0 {
		t.Errorf("touch reran %v", ran)
	}

	writeFile(t, data, "a\nb\n")
	if got := f.status(src, set)["a"]; !cmp.Equal(got, []string{"external `" + data + "` changed"}) {
		t.Errorf("status says %q", got)
	}
	if diff := cmp.Diff(all("a", "b"), f.mustRun(src, set)); diff != "" {
		t.Errorf("CRLF->LF (-want +got):\n%s", diff)
	}
}

// Case 5: an object changed in the store is detected and recomputed.
func TestTamperedObjectRecomputed(t *testing.T) {
	f := newFixture(t)
	_, res, err := f.run(chain, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Stages[0].Outputs["out"]
	path := f.w.Store().Path(id)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "not what it was")

	ran, res2, err := f.run(chain, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// a reruns and writes the same bytes again, so its consumers hit.
	if diff := cmp.Diff(all("a"), ran); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}
	if got := res2.Stages[0].Outputs["out"]; got != id {
		t.Errorf("recomputed id %s, want %s", got.Short(), id.Short())
	}
	if err := f.w.Store().Verify(id); err != nil {
		t.Errorf("object after recompute: %v", err)
	}
}

// Case 6: a stage that writes its output and then fails is not cached.
func TestFailedStageNotCached(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "fail")
	writeFile(t, marker, "")
	src := "params: {m: x}\nstages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, with: {fail_if: \"${m}\"}}, " +
		"c: {uses: slow, needs: {in: b.out}}, d: {uses: upper, needs: {in: a.out}}}"
	_, res, err := f.run(src, pipeline.Options{KeepGoing: true}, "m="+marker)
	var fe *pipeline.FailedError
	if !errors.As(err, &fe) || len(fe.Failures) != 1 || fe.Failures[0].Stage != "b" {
		t.Fatalf("got %v, want b alone reported as failed", err)
	}
	states := map[string]pipeline.State{}
	for _, s := range res.Stages {
		states[s.Stage] = s.State
	}
	want := map[string]pipeline.State{"a": pipeline.StateRan, "b": pipeline.StateFailed,
		"c": pipeline.StateUpstreamFailed, "d": pipeline.StateRan}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}

	os.Remove(marker)
	if diff := cmp.Diff(all("b", "c"), f.mustRun(src, "m="+marker)); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}
}

// Case 9: variants a, b, then a again: the third run is all cache hits.
func TestVariantsABA(t *testing.T) {
	f := newFixture(t)
	src := "params: {v: a}\nstages: {x: {uses: source, with: {value: \"${v}\"}}, y: {uses: upper, needs: {in: x.out}}}"
	f.mustRun(src, "v=a")
	f.mustRun(src, "v=b")
	if ran := f.mustRun(src, "v=a"); len(ran) != 0 {
		t.Errorf("third run ran %v", ran)
	}
	if st := f.status(src, "v=a"); len(st) != 0 {
		t.Errorf("status after a: %v", st)
	}
}

// Case 10: status and --dry-run leave the store and records byte-identical.
func TestStatusAndDryRunChangeNothing(t *testing.T) {
	f := newFixture(t)
	data := filepath.Join(t.TempDir(), "d.txt")
	writeFile(t, data, "x")
	src := "params: {f: x, v: a}\nstages: {a: {uses: source, with: {file: \"${f}\", value: \"${v}\"}}, b: {uses: upper, needs: {in: a.out}}}"
	f.mustRun(src, "f="+data)
	writeFile(t, data, "y") // the fingerprint cache is now out of date too
	before := snapshot(t, f.dir)

	f.status(src, "f="+data, "v=b")
	ro, err := pipeline.OpenWorkspaceReadOnly(f.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ro.Run(t.Context(), parse(t, f.reg, src, "f="+data, "v=b"), pipeline.Options{DryRun: true})
	if err != nil || res.Count(pipeline.StateWouldRun) != 2 {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	if diff := cmp.Diff(before, snapshot(t, f.dir)); diff != "" {
		t.Errorf("workspace changed (-before +after):\n%s", diff)
	}
	if len(f.c.Take()) != 0 {
		t.Error("a dry run ran a stage")
	}
}

// snapshot maps every file under dir to its bytes and mtime.
func snapshot(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		content := ""
		if !d.IsDir() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			content = string(b)
		}
		out[path] = info.ModTime().String() + " " + content
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Case 11: spaces and non-ASCII names (NFC and NFD) in the workspace and
// in external folders; a dangling symlink is a clear error.
func TestOddPaths(t *testing.T) {
	reg, c := registry(t)
	root := filepath.Join(t.TempDir(), "my work space é")
	w, err := pipeline.OpenWorkspace(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "data set")
	writeFile(t, filepath.Join(data, "caf\u00e9.txt"), "nfc")  // é precomposed (NFC)
	writeFile(t, filepath.Join(data, "cafe\u0301.txt"), "nfd") // e + combining accent (NFD)
	writeFile(t, filepath.Join(data, "sub dir", "ü b.txt"), "x")
	src := "params: {d: x}\nstages: {a: {uses: source, with: {dir: \"${d}\"}}}"
	p := parse(t, reg, src, "d="+data)
	run := func() map[string]int {
		if _, err := w.Run(t.Context(), p, pipeline.Options{}); err != nil {
			t.Fatal(err)
		}
		return c.Take()
	}
	if diff := cmp.Diff(all("a"), run()); diff != "" {
		t.Fatal(diff)
	}
	if ran := run(); len(ran) != 0 {
		t.Errorf("unchanged folder reran: %v", ran)
	}
	writeFile(t, filepath.Join(data, "cafe\u0301.txt"), "NFD")
	if diff := cmp.Diff(all("a"), run()); diff != "" {
		t.Errorf("NFD file edit (-want +got):\n%s", diff)
	}

	link := filepath.Join(data, "gone link")
	if err := os.Symlink(filepath.Join(data, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	_, err = w.Run(t.Context(), p, pipeline.Options{})
	if err == nil || !strings.Contains(err.Error(), "dangling symlink") || !strings.Contains(err.Error(), link) {
		t.Errorf("dangling symlink: got %v", err)
	}
	p2 := parse(t, reg, "params: {f: x}\nstages: {a: {uses: source, with: {file: \"${f}\"}}}", "f="+link)
	if _, err := w.Run(t.Context(), p2, pipeline.Options{}); err == nil || !strings.Contains(err.Error(), "dangling symlink") {
		t.Errorf("dangling symlink as the input: got %v", err)
	}
}

// Two clean runs give identical artifact ids; --target runs what it needs.
func TestDeterministicAndTargets(t *testing.T) {
	ids := func() map[string]artifacts.ID {
		f := newFixture(t)
		_, res, err := f.run(chain, pipeline.Options{Targets: []string{"c"}, Jobs: 2})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]artifacts.ID{}
		for _, s := range res.Stages {
			out[s.Stage] = s.Outputs["out"]
		}
		return out
	}
	first := ids()
	if len(first) != 3 {
		t.Errorf("--target c ran %d stages, want a, b, c", len(first))
	}
	if diff := cmp.Diff(first, ids()); diff != "" {
		t.Errorf("second clean run differs:\n%s", diff)
	}
}

func TestGC(t *testing.T) {
	f := newFixture(t)
	src := "params: {v: a}\nstages: {x: {uses: source, with: {value: \"${v}\"}}}"
	f.mustRun(src, "v=a")
	f.mustRun(src, "v=b") // the last record now names b's object only
	res, err := f.w.GC(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 1 || res.Entries != 1 {
		t.Errorf("gc removed %d objects, %d entries; want 1, 1", len(res.Objects), res.Entries)
	}
	if ran := f.mustRun(src, "v=b"); len(ran) != 0 {
		t.Errorf("live stage reran after gc: %v", ran)
	}
	if ran := f.mustRun(src, "v=a"); len(ran) != 1 {
		t.Errorf("collected stage did not rerun: %v", ran)
	}
}

// A matrix train, with predict and evaluate fanning out over it and a
// Many input gathering every evaluate variant: each variant runs once,
// binds its own producer, and a second run reuses everything.
func TestFanOutRun(t *testing.T) {
	f := newFixture(t)
	src := `
stages:
  data: {uses: source, with: {value: img}}
  train: {uses: upper, needs: {in: data.out}, matrix: {suffix: [-32, -128]}}
  predict: {uses: upper, needs: {in: train.out}, with: {suffix: -p}}
  evaluate: {uses: upper, needs: {in: predict.out}, with: {suffix: -e}}
  tabulate: {uses: join, needs: {in: evaluate.out}}
`
	ran, res, err := f.run(src, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := all("data", "train[-32]", "train[-128]", "predict[-32]", "predict[-128]",
		"evaluate[-32]", "evaluate[-128]", "tabulate")
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("ran (-want +got):\n%s", diff)
	}

	var table artifacts.ID
	for _, s := range res.Stages {
		if s.Stage == "tabulate" {
			table = s.Outputs["out"]
		}
	}
	got := readText(t, f.w.Store(), table)
	wantLines := []string{
		"evaluate[-32]:IMG-32 X1-P X1-e x1|LR=0.001-32 X1-P X1-e x1",
		"evaluate[-128]:IMG-128 X1-P X1-e x1|LR=0.001-128 X1-P X1-e x1",
	}
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Errorf("tabulate (-want +got):\n%s", diff)
	}

	if ran := f.mustRun(src); len(ran) != 0 {
		t.Errorf("second run ran %v", ran)
	}
}

func readText(t *testing.T, st *artifacts.Store, id artifacts.ID) []string {
	t.Helper()
	tbl, err := st.GetTable(id)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var out []string
	for _, chunk := range tbl.Column(0).Data().Chunks() {
		s := chunk.(*array.String)
		for i := range s.Len() {
			out = append(out, s.Value(i))
		}
	}
	return out
}

// A corrupt cached output is reported once per stage, not once more when
// the stage looks again under its lock (and then finds it discarded).
func TestTamperedObjectWarnedOnce(t *testing.T) {
	f := newFixture(t)
	_, res, err := f.run(chain, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := f.w.Store().Path(res.Stages[0].Outputs["out"])
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "not what it was")

	var logs strings.Builder
	w, err := pipeline.OpenWorkspace(f.dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Run(t.Context(), parse(t, f.reg, chain), pipeline.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "cached output unusable"); n != 1 {
		t.Errorf("%d warnings about the unusable output, want 1:\n%s", n, logs.String())
	}
}

// cancelOn cancels the run when stage starts.
type cancelOn struct {
	stage  string
	cancel func()
}

func (o cancelOn) StageStarted(stage string) {
	if stage == o.stage {
		o.cancel()
	}
}
func (cancelOn) StageProgress(string, string, int, int, string) {}
func (cancelOn) StageFinished(pipeline.StageResult)             {}

// An interrupted stage says "interrupted", not "failed", and what waits on
// it is "not run", not "upstream failed": nothing failed.
func TestInterruptedIsNotFailed(t *testing.T) {
	f := newFixture(t)
	src := "stages: {a: {uses: source}, b: {uses: slow, needs: {in: a.out}, with: {steps: 100, step_ms: 20}}, " +
		"c: {uses: upper, needs: {in: b.out}}}"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res, err := f.w.Run(ctx, parse(t, f.reg, src), pipeline.Options{Observer: cancelOn{"b", cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v, want context.Canceled", err)
	}
	var fe *pipeline.FailedError
	if errors.As(err, &fe) {
		t.Errorf("run: %v, want no FailedError", err)
	}
	states := map[string]pipeline.State{}
	for _, s := range res.Stages {
		states[s.Stage] = s.State
	}
	want := map[string]pipeline.State{"a": pipeline.StateRan, "b": pipeline.StateInterrupted, "c": pipeline.StateNotRun}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

// A parameter the kind declares output-neutral is left out of the run key:
// changing it reruns nothing and leaves the stage fresh.
func TestOutputNeutralParameter(t *testing.T) {
	f := newFixture(t)
	src := "stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, with: {note: first}}}"
	f.mustRun(src)
	second := strings.Replace(src, "note: first", "note: second", 1)
	if ran := f.mustRun(second); len(ran) != 0 {
		t.Errorf("changing note ran %v, want nothing", ran)
	}
	if got := f.status(second); len(got) != 0 {
		t.Errorf("status after changing note = %v, want all fresh", got)
	}
	if ran := f.mustRun(strings.Replace(second, "note: second", "suffix: '!'", 1)); ran["b"] != 1 {
		t.Errorf("changing suffix ran %v, want b", ran)
	}
}

// Status says an output-neutral parameter is no longer used, or used
// again, rather than removed or added while the file still sets it.
func TestOutputNeutralStatus(t *testing.T) {
	f := newFixture(t)
	used := "stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, with: {note: first, suffix: +note}}}"
	unused := strings.Replace(used, "suffix: +note", "suffix: '!'", 1)
	f.mustRun(used)
	want := []string{"parameter `note` no longer used (was \"first\")",
		"parameter `suffix` changed \"+note\" -> \"!\""}
	if diff := cmp.Diff(want, f.status(unused)["b"]); diff != "" {
		t.Errorf("status after the note stopped mattering (-want +got):\n%s", diff)
	}
	f.mustRun(unused)
	usedAgain := strings.Replace(used, "note: first", "note: second", 1)
	want = []string{"parameter `note` now used (\"second\")", "parameter `suffix` changed \"!\" -> \"+note\""}
	if diff := cmp.Diff(want, f.status(usedAgain)["b"]); diff != "" {
		t.Errorf("status after the note mattered again (-want +got):\n%s", diff)
	}
}

// gc removes the work folder of an attempt whose parameters were
// abandoned and keeps the one a rerun as it stands would resume.
func TestGCWorkFolders(t *testing.T) {
	f := newFixture(t)
	src := "params: {n: 100}\nstages: {a: {uses: source}, b: {uses: slow, needs: {in: a.out}, " +
		"with: {steps: \"${n}\", step_ms: 20}}}"
	interrupt := func(n string) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		obs := cancelAtStep{cancelOn{"b", func() {}}, 2, cancel}
		if _, err := f.w.Run(ctx, parse(t, f.reg, src, "n="+n), pipeline.Options{Observer: obs}); err == nil {
			t.Fatal("interrupted run: no error")
		}
	}
	work := func() []string {
		dirs, _ := filepath.Glob(filepath.Join(f.dir, pipeline.MetaDir, "work", "*"))
		return dirs
	}
	interrupt("100")
	first := work()
	interrupt("99")
	if len(first) != 1 || len(work()) != 2 {
		t.Fatalf("work folders: %v after the first interrupt, %v after the second; want 1, then 2", first, work())
	}
	res, err := f.w.GC(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Work != 1 || res.WorkBytes == 0 {
		t.Errorf("gc removed %d work folders (%d bytes), want 1 with its checkpoint", res.Work, res.WorkBytes)
	}
	if left := work(); len(left) != 1 || left[0] == first[0] {
		t.Errorf("work folders after gc: %v, want the second attempt's only (first was %v)", left, first)
	}
}

// cancelAtStep cancels once a stage reports step `at`: after it wrote a
// checkpoint of the step before.
type cancelAtStep struct {
	cancelOn
	at     int
	cancel func()
}

func (o cancelAtStep) StageProgress(_, _ string, done, _ int, _ string) {
	if done >= o.at {
		o.cancel()
	}
}
