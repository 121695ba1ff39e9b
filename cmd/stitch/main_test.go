package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"stitch/internal/testkinds"
	"stitch/pipeline"
)

// stitch runs a command in-process in workspace dir.
func stitch(t testing.TB, ctx context.Context, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{args[0], "--workspace", dir, "-q"}, args[1:]...)
	code = runMain(ctx, args, &out, &errb, testkinds.All(nil))
	return code, out.String(), errb.String()
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	write(t, good, "stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}}}")
	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "stages: {a: {uses: sourse}}")
	failing := filepath.Join(dir, "fail.yaml")
	write(t, failing, fmt.Sprintf("stages: {a: {uses: source}, b: {uses: upper, needs: {in: a.out}, with: {fail_if: %q}}}", good))

	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"run", good}, exitOK, "good: 2 ran"},
		{[]string{"run", good}, exitOK, "good: 2 cached"},
		{[]string{"status", good}, exitOK, "good: 2 fresh, 0 stale"},
		{[]string{"run", bad}, exitUsage, ""},
		{[]string{"run", failing}, exitFailed, "failed"},
		{[]string{"run", good, "--target", "x"}, exitUsage, ""},
		{[]string{"run", good, "--jobs", "-3"}, exitUsage, ""},
		{[]string{"run", "--help"}, exitOK, "Example:"},
		{[]string{"dag", good, "--format", "dot"}, exitOK, `"a" -> "b"`},
		{[]string{"show", "b"}, exitOK, "rows: 2"},
		{[]string{"log"}, exitOK, "good"},
		{[]string{"gc", "--dry-run"}, exitOK, "would remove"},
		{[]string{"show", "b", "--rows", "-5"}, exitUsage, ""},
		{[]string{"show", "b", "--csv", "--path"}, exitUsage, ""},
		{[]string{"run", good, "--device", "-1"}, exitUsage, ""},
		{[]string{"log", "--workspace", filepath.Join(dir, "missing")}, exitFailed, ""},
	}
	for _, tc := range tests {
		code, out, errOut := stitch(t, t.Context(), dir, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("stitch %v: exit %d, want %d; stdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, out, errOut)
		}
	}
	if code := runMain(t.Context(), []string{"rnu"}, &bytes.Buffer{}, &bytes.Buffer{}, nil); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	// No command is a usage error: the usage goes to stderr.
	var out, errOut bytes.Buffer
	if code := runMain(t.Context(), nil, &out, &errOut, nil); code != exitUsage || out.Len() > 0 ||
		!strings.Contains(errOut.String(), "Usage: stitch COMMAND") {
		t.Errorf("no command: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	code, _, synthErr := stitch(t, t.Context(), dir, "synth", "--out", filepath.Join(dir, "s"), "--n", "0")
	if code != exitUsage || !strings.Contains(synthErr, "--n 0: want 1 to 10000000 images") {
		t.Errorf("synth --n 0: exit %d, stderr %q", code, synthErr)
	}
}

// binDir holds the test binary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir) // best effort: it is in the temp folder anyway
	}
	os.Exit(code)
}

// buildOnce builds the binary with the test kinds (-tags stitchtest).
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "stitch-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "stitch")
	out, err := exec.Command("go", "build", "-tags", "stitchtest", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

const slowPipeline = `
name: slowp
stages:
  a: {uses: source, with: {value: v}}
  s: {uses: slow, needs: {in: a.out}, with: {steps: 20, step_ms: 50}}
  j: {uses: join, needs: {in: s.out}}
`

func outputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	w, err := pipeline.OpenWorkspaceReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := w.LastRecords()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs {
		for name, id := range r.Outputs {
			out[r.Stage+"."+name] = id.String()
		}
	}
	return out
}

// startMidStage starts `stitch run -q` of slowPipeline in dir and returns
// once its slow stage is half done (it has written a checkpoint), its
// stderr going to stderr when that is not nil.
func startMidStage(t *testing.T, bin, dir string, stderr io.Writer) *exec.Cmd {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "started")
	cmd := exec.Command(bin, "run", "-q")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testkinds.EnvStarted+"="+marker)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("stage never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Case 7: SIGKILL mid-stage, then run again: it recovers with no manual
// step and ends where a clean run does.
func TestSIGKILLRecovers(t *testing.T) {
	bin := binary(t)
	clean, killed := t.TempDir(), t.TempDir()
	for _, d := range []string{clean, killed} {
		write(t, filepath.Join(d, "stitch.yaml"), slowPipeline)
	}
	cmd := exec.CommandContext(t.Context(), bin, "run", "-q")
	cmd.Dir = clean
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}

	cmd = startMidStage(t, bin, killed, nil)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait() // killed on purpose: the error says so

	work, _ := filepath.Glob(filepath.Join(killed, ".stitch", "work", "*", "checkpoint"))
	if len(work) != 1 {
		t.Errorf("work folders with a checkpoint after the kill: %v", work)
	}
	logCmd := exec.CommandContext(t.Context(), bin, "log")
	logCmd.Dir = killed
	logOut, err := logCmd.CombinedOutput()
	if err != nil || !strings.Contains(string(logOut), "killed before it finished") {
		t.Errorf("stitch log after the kill (err %v) does not list the killed run:\n%s", err, logOut)
	}
	// Its stages as the kill left them: a cached, s killed, j not run.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s+ran\s+a\s`), regexp.MustCompile(`(?m)^\s+killed\s+s\s+-\s`),
		regexp.MustCompile(`(?m)^\s+not run\s+j\s`),
	} {
		if !want.Match(logOut) {
			t.Errorf("stitch log after the kill lacks %s:\n%s", want, logOut)
		}
	}
	rerun := exec.CommandContext(t.Context(), bin, "run")
	rerun.Dir = killed
	out, err := rerun.CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "resuming") {
		t.Errorf("rerun did not resume from the checkpoint:\n%s", out)
	}
	if diff := cmp.Diff(outputs(t, clean), outputs(t, killed)); diff != "" {
		t.Errorf("recovered run differs from a clean one (-clean +recovered):\n%s", diff)
	}
	if work, _ := filepath.Glob(filepath.Join(killed, ".stitch", "work", "*")); len(work) != 0 {
		t.Errorf("work folders left after success: %v", work)
	}
}

// Ctrl-C mid-stage: exit 130 with a message in words (not Go's "context
// canceled"), and the log names the stage interrupted.
func TestSIGINTSaysInterrupted(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "stitch.yaml"), slowPipeline)
	var stderr bytes.Buffer
	cmd := startMidStage(t, bin, dir, &stderr)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("exit: %v, want status 130", err)
	}
	if got := stderr.String(); !strings.Contains(got, "stitch run: interrupted; finished stages are cached") ||
		strings.Contains(got, "context canceled") {
		t.Errorf("stderr after Ctrl-C:\n%s", got)
	}
	logCmd := exec.CommandContext(t.Context(), bin, "log")
	logCmd.Dir = dir
	out, err := logCmd.CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\s+interrupted\s+s\s.*\sinterrupted$`).Match(out) ||
		strings.Contains(string(out), "context canceled") {
		t.Errorf("stitch log after Ctrl-C (err %v):\n%s", err, out)
	}
}

// Case 8: eight concurrent runs of one pipeline end with one correct
// result, each stage run once, and an intact store.
func TestEightConcurrentRuns(t *testing.T) {
	bin := binary(t)
	dir, clean := t.TempDir(), t.TempDir()
	src := strings.Replace(slowPipeline, "steps: 20", "steps: 4", 1)
	write(t, filepath.Join(dir, "stitch.yaml"), src)
	write(t, filepath.Join(clean, "stitch.yaml"), src)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	outs := make([][]byte, 8)
	for i := range 8 {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), bin, "run", "-q")
			cmd.Dir = dir
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i])
		}
	}

	cmd := exec.CommandContext(t.Context(), bin, "run", "-q")
	cmd.Dir = clean
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, out)
	}
	if diff := cmp.Diff(outputs(t, clean), outputs(t, dir)); diff != "" {
		t.Errorf("result differs from a clean run:\n%s", diff)
	}

	w, err := pipeline.OpenWorkspaceReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := w.RunRecords()
	if err != nil || len(runs) != 8 {
		t.Fatalf("%d run records, err %v; want 8", len(runs), err)
	}
	ran := map[string]int{}
	for _, r := range runs {
		for _, s := range r.Stages {
			if s.State == pipeline.StateRan {
				ran[s.Stage]++
			}
		}
	}
	if diff := cmp.Diff(map[string]int{"a": 1, "s": 1, "j": 1}, ran); diff != "" {
		t.Errorf("times each stage ran (-want +got):\n%s", diff)
	}
	objects, _ := filepath.Glob(filepath.Join(dir, ".stitch", "objects", "*", "*"))
	for _, o := range objects {
		id, err := pipelineID(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Store().Verify(id); err != nil {
			t.Errorf("store: %v", err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".stitch", "tmp", "*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// `stitch dag` of a pipeline whose stages fan out over a matrix shows one
// node per variant, each bound to its own producer.
func TestDagFanOut(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fan.yaml")
	write(t, file, `
stages:
  data: {uses: source}
  train: {uses: upper, needs: {in: data.out}, matrix: {suffix: [x, y]}}
  predict: {uses: upper, needs: {in: train.out}}
  table: {uses: join, needs: {in: predict.out}}
`)
	tests := []struct {
		format string
		want   []string
	}{
		{"text", []string{"predict[x] (upper)\n  in <- train[x].out\n", "predict[y] (upper)\n  in <- train[y].out\n",
			"table (join)\n  in <- predict[x].out, predict[y].out\n"}},
		{"dot", []string{`"train[x]" -> "predict[x]"`, `"train[y]" -> "predict[y]"`, `"predict[y]" -> "table"`}},
		{"mermaid", []string{`["predict[x]<br/>upper"]`}},
	}
	for _, tc := range tests {
		code, out, errOut := stitch(t, t.Context(), dir, "dag", file, "--format", tc.format)
		if code != exitOK {
			t.Fatalf("dag --format %s: exit %d\n%s", tc.format, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("dag --format %s:\n%s\nlacks\n%s", tc.format, out, w)
			}
		}
	}
}

// --help prints the command's usage once, to stdout, and nothing to
// stderr; a bad flag prints the problem and the usage once, to stderr.
func TestHelpPrintedOnce(t *testing.T) {
	for _, c := range commands {
		var out, errb bytes.Buffer
		code := runMain(t.Context(), []string{c.name, "--help"}, &out, &errb, testkinds.All(nil))
		if code != exitOK || strings.Count(out.String(), "Usage: stitch "+c.name) != 1 || errb.Len() != 0 {
			t.Errorf("stitch %s --help: exit %d; stdout:\n%s\nstderr:\n%s", c.name, code, out.String(), errb.String())
		}
		out.Reset()
		errb.Reset()
		code = runMain(t.Context(), []string{c.name, "--bogus"}, &out, &errb, testkinds.All(nil))
		if code != exitUsage || out.Len() != 0 || strings.Count(errb.String(), "Usage: stitch "+c.name) != 1 ||
			!strings.Contains(errb.String(), "-bogus") {
			t.Errorf("stitch %s --bogus: exit %d; stdout:\n%s\nstderr:\n%s", c.name, code, out.String(), errb.String())
		}
	}
}
