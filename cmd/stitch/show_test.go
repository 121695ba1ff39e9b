package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/internal/testkinds"
	"stitch/pipeline"
)

func TestMatrixVariants(t *testing.T) {
	stages := []string{"split", "train[32]", "train[128]", "evaluate[32]", "evaluate[128]", "trainer"}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"train", []string{"train[32]", "train[128]"}},
		{"evaluate.metrics", []string{"evaluate[32].metrics", "evaluate[128].metrics"}},
		{"train.model", []string{"train[32].model", "train[128].model"}},
		{"split", nil},
		{"nope.x", nil},
		{"trai", nil},
	} {
		if diff := cmp.Diff(tc.want, matrixVariants(stages, tc.arg)); diff != "" {
			t.Errorf("matrixVariants(%q) (-want +got):\n%s", tc.arg, diff)
		}
	}
}

// TestShowCSVPrintsEveryRow: --csv exports the whole table unless --rows
// says otherwise (it printed the first 10 rows only).
func TestShowCSVPrintsEveryRow(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "p.yaml")
	write(t, pipe, "stages: {a: {uses: source, with: {lines: 15}}}")
	mustRun(t, dir, pipe)
	_, summary, _ := stitch(t, t.Context(), dir, "show", "a", "--rows", "0")
	var rows int
	_, after, _ := strings.Cut(summary, "rows: ")
	if _, err := fmt.Sscanf(after, "%d", &rows); err != nil || rows <= 10 {
		t.Fatalf("show a: %q, want more than 10 rows", summary)
	}
	for _, c := range []struct {
		args  []string
		lines int
	}{{[]string{"show", "a", "--csv"}, rows + 1}, {[]string{"show", "a", "--csv", "--rows", "3"}, 4}} {
		code, out, errOut := stitch(t, t.Context(), dir, c.args...)
		if got := strings.Count(out, "\n"); code != exitOK || got != c.lines {
			t.Errorf("stitch %v: exit %d, %d lines, want %d\n%s", c.args, code, got, c.lines, errOut)
		}
	}
}

// reportKind stores its outputs as tabulate does, as plain files (CSV,
// Markdown, HTML) rather than Arrow tables, and exports the HTML.
type reportKind struct{}

var reportFiles = map[string]string{
	"csv":      "name,recall\nA,0.5\nB,0.25\n",
	"markdown": "| name | recall |\n|---|---|\n| A | 0.5 |\n",
	"html":     "<!DOCTYPE html>\n<html><body><p>A 0.5</p></body></html>\n",
}

func (reportKind) Name() string    { return "report" }
func (reportKind) Version() string { return "1" }
func (reportKind) Inputs() []pipeline.Port {
	return nil
}

func (reportKind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "csv", Kind: artifacts.KindReport},
		{Name: "markdown", Kind: artifacts.KindReport},
		{Name: "html", Kind: artifacts.KindReport},
	}
}
func (reportKind) NewParams() any { return &struct{}{} }

func (reportKind) Run(_ context.Context, run pipeline.Run, _ any) error {
	for name, data := range reportFiles {
		id, err := run.Store().Put([]byte(data))
		if err != nil {
			return err
		}
		run.SetOutput(name, id)
	}
	return nil
}

func (reportKind) Report(_ context.Context, env pipeline.ReportEnv) error {
	return os.WriteFile(filepath.Join(env.ExportDir, "report.html"), []byte(reportFiles["html"]), 0o644)
}

// stitchReports is stitch with reportKind besides the test kinds.
func stitchReports(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{args[0], "--workspace", dir, "-q"}, args[1:]...)
	code = runMain(t.Context(), args, &out, &errb, append(testkinds.All(nil), reportKind{}))
	return code, out.String(), errb.String()
}

// TestShowFileOutputs: show prints a report's CSV and Markdown outputs
// under the header a table gets, names the HTML file to open, and --csv
// prints a CSV output as it is (it failed: "not an Arrow file").
func TestShowFileOutputs(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "m1.yaml")
	write(t, pipe, "name: m1\nstages: {compare: {uses: report}}")
	if code, _, errOut := stitchReports(t, dir, "run", pipe); code != exitOK {
		t.Fatalf("run: exit %d\n%s", code, errOut)
	}

	code, out, errOut := stitchReports(t, dir, "show", "compare.csv", "--pipeline", "m1", "--csv")
	if code != exitOK || out != reportFiles["csv"] {
		t.Errorf("show compare.csv --csv: exit %d, stdout %q, stderr %q; want the CSV as stored",
			code, out, errOut)
	}
	header := regexp.MustCompile(`^compare\.(\w+)  object [0-9a-f]{12}  kind report  ` +
		`current since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n`)
	for _, name := range []string{"csv", "markdown"} {
		code, out, errOut := stitchReports(t, dir, "show", "compare."+name)
		data := reportFiles[name]
		want := fmt.Sprintf("%s, %d bytes:\n%s", name, len(data), data)
		if code != exitOK || !header.MatchString(out) || !strings.HasSuffix(out, "\n"+want) {
			t.Errorf("show compare.%s: exit %d, stderr %q, stdout:\n%s\nwant the header, then\n%s",
				name, code, errOut, out, want)
		}
	}
	code, out, errOut = stitchReports(t, dir, "show", "compare.html")
	exported := filepath.Join(dir, "stitch-out", "m1", "compare", "report.html")
	if want := "not printed; open " + exported + "\n"; code != exitOK || !header.MatchString(out) ||
		!strings.HasSuffix(out, want) {
		t.Errorf("show compare.html: exit %d, stderr %q, stdout:\n%s\nwant the header, then %q",
			code, errOut, out, want)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compare.markdown", "--csv"}, "the output is markdown, not a table or CSV; drop --csv"},
		{[]string{"compare", "--csv"}, "--csv prints one output, and stage compare has 3"},
	} {
		code, _, errOut := stitchReports(t, dir, append([]string{"show"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("show %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
	code, out, _ = stitchReports(t, dir, "show", "compare", "--rows", "0")
	if code != exitOK || strings.Contains(out, "| A |") || !strings.Contains(out, "markdown, ") {
		t.Errorf("show compare --rows 0: exit %d; want the headers and sizes only:\n%s", code, out)
	}
}

// TestShowPipelineErrors: an unknown --pipeline is named as such, with
// the pipelines that have runs (it read "no recorded run of stage"), and
// STAGE.OUTPUT in two pipelines calls the stage part a stage.
func TestShowPipelineErrors(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"one", "two"} {
		pipe := filepath.Join(dir, name+".yaml")
		write(t, pipe, "name: "+name+"\nstages: {split: {uses: source}}")
		mustRun(t, dir, pipe)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"split.out", "--pipeline", "nosuch"}, "--pipeline nosuch: no pipeline of that name has " +
			"recorded runs in this workspace; those that have: one, two"},
		{[]string{"split.out", "--pipeline", "ones"}, `(did you mean "one"?)`},
		{[]string{"split.out"}, `split.out: its stage "split" is in several pipelines (one, two)`},
		{[]string{"split"}, `stage "split" is in several pipelines (one, two)`},
		{[]string{"spilt.out", "--pipeline", "one"},
			`no recorded run of pipeline "one" has a stage or output "spilt.out"`},
		{[]string{"split.nosuch", "--pipeline", "one"}, `stage split has no output "nosuch"; it has out`},
	} {
		code, _, errOut := stitch(t, t.Context(), dir, append([]string{"show"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("show %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
}

// TestShowDiscardedObject: an output whose object is gone (predict
// discards a corrupt one) is said to be gone, with the run that
// recomputes it (it read only "artifact not found"); that run does.
func TestShowDiscardedObject(t *testing.T) {
	dir, pipe, path := runOneSource(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	code, _, errOut := stitch(t, t.Context(), dir, "show", "a.out")
	want := "artifact not found; it is gone from the store (a corrupt object is discarded when read), " +
		"and `stitch run " + pipe + "` recomputes it"
	if code != exitFailed || !strings.Contains(errOut, want) {
		t.Errorf("show a.out, object removed: exit %d, stderr %q; want %q", code, errOut, want)
	}
	// --path gives no path to a file that is gone, and says so the same way.
	code, out, errOut := stitch(t, t.Context(), dir, "show", "a.out", "--path")
	if code != exitFailed || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("show a.out --path, object removed: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	mustRun(t, dir, pipe)
	if code, out, errOut := stitch(t, t.Context(), dir, "show", "a.out"); code != exitOK ||
		!strings.Contains(out, "schema:") {
		t.Errorf("show a.out after the rerun: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}

}

// TestUnreadableRunRecord: an empty last-run record (a crash while it was
// written) made every show and status fail, and an empty run record made
// log fail. show now reads the others, status judges the stage by the
// cache alone, log lists the other runs, gc still refuses (it must see
// every record before it deletes), and a run rewrites the record.
func TestUnreadableRunRecord(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "p.yaml")
	write(t, pipe, "name: p\nstages: {a: {uses: source}, b: {uses: source, with: {value: y}}}")
	mustRun(t, dir, pipe)
	write(t, filepath.Join(dir, ".stitch", "last", "p", "a.json"), "")

	if code, out, errOut := stitch(t, t.Context(), dir, "show", "b.out"); code != exitOK ||
		!strings.Contains(out, "schema:") || !strings.Contains(errOut, "unreadable run record") {
		t.Errorf("show b.out: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if code, out, errOut := stitch(t, t.Context(), dir, "status", pipe); code != exitOK ||
		!strings.Contains(out, "2 fresh, 0 stale") || !strings.Contains(errOut, "unreadable run record") {
		t.Errorf("status: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	// A record of another stage in a's place: status warns, run rewrites.
	b, err := os.ReadFile(filepath.Join(dir, ".stitch", "last", "p", "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, ".stitch", "last", "p", "a.json"), string(b))
	if code, _, errOut := stitch(t, t.Context(), dir, "status", pipe); code != exitOK ||
		!strings.Contains(errOut, "it is stage b of pipeline p") {
		t.Errorf("status, b's record as a's: exit %d, stderr %q", code, errOut)
	}
	// JSON that parses but says nothing would let gc free a's objects.
	for _, content := range []string{"", "null", "{}", `{"pipeline": "p"}`} {
		write(t, filepath.Join(dir, ".stitch", "last", "p", "a.json"), content)
		if code, _, errOut := stitch(t, t.Context(), dir, "gc"); code == exitOK ||
			!strings.Contains(errOut, "run record unreadable") {
			t.Errorf("gc, record %q: exit %d, stderr %q; want a refusal naming the record", content, code, errOut)
		}
	}
	mustRun(t, dir, pipe)
	if code, out, errOut := stitch(t, t.Context(), dir, "show", "a.out"); code != exitOK ||
		!strings.Contains(out, "schema:") {
		t.Errorf("show a.out after the rerun: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}

	// An unreadable record of one run leaves the others to log.
	runs, _ := filepath.Glob(filepath.Join(dir, ".stitch", "runs", "*.json"))
	if len(runs) < 2 {
		t.Fatalf("%d run records, want 2 or more", len(runs))
	}
	write(t, runs[0], "")
	if code, out, errOut := stitch(t, t.Context(), dir, "log"); code != exitOK ||
		!strings.Contains(errOut, "unreadable run record") || !strings.Contains(out, "cached  a") {
		t.Errorf("log with an unreadable run record: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
}

// runOneSource runs pipeline p, one source stage a, in a new workspace
// folder and returns the folder, the pipeline file and the path of a.out's
// object in the store.
func runOneSource(t *testing.T) (dir, pipe, object string) {
	t.Helper()
	dir = t.TempDir()
	pipe = filepath.Join(dir, "p.yaml")
	write(t, pipe, "name: p\nstages: {a: {uses: source}}")
	mustRun(t, dir, pipe)
	_, object, _ = stitch(t, t.Context(), dir, "show", "a.out", "--path")
	return dir, pipe, strings.TrimSpace(object)
}

// mustRun runs the pipeline file pipe in the workspace folder dir and
// stops the test unless it succeeds.
func mustRun(t *testing.T, dir, pipe string) {
	t.Helper()
	if code, out, errOut := stitch(t, t.Context(), dir, "run", pipe); code != exitOK {
		t.Fatalf("run %s: exit %d\n%s\n%s", pipe, code, out, errOut)
	}
}

// TestListInputNamesInKey: a consumer of a list input names its items
// after their stages (tabulate's rows), so renaming a producer whose bytes
// stay the same reruns it (tabulate kept showing the old name).
func TestListInputNamesInKey(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "p.yaml")
	write(t, pipe, "name: p\nstages: {a: {uses: source}, j: {uses: join, needs: {in: [a.out]}}}")
	mustRun(t, dir, pipe)
	write(t, pipe, "name: p\nstages: {renamed: {uses: source}, j: {uses: join, needs: {in: [renamed.out]}}}")
	code, out, errOut := stitch(t, t.Context(), dir, "run", pipe)
	if code != exitOK || !strings.Contains(out, "ran  j") {
		t.Errorf("run after the rename: exit %d, stderr %q, stdout:\n%s\nwant j run again", code, errOut, out)
	}
}
