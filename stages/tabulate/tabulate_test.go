package tabulate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
)

// fakeMetrics is a DeepFashion-coarse-shaped metrics table whose values
// are derived from base, so experiments differ.
func fakeMetrics(base float64) (artifacts.MetricsInfo, []artifacts.MetricRow) {
	var rows []artifacts.MetricRow
	add := func(k int, scope, avg, metric string, v float64) {
		rows = append(rows, artifacts.MetricRow{K: k, Scope: scope, Average: avg, Metric: metric, Value: v})
	}
	for _, k := range []int{3, 5, 20} {
		f := base * float64(k) / 5
		for _, m := range []string{"recall", "precision", "f1"} {
			add(k, "all", "micro", m, f)
			add(k, "all", "macro", m, f/2)
		}
		add(k, "all", "pooled", "recall", f*1.1)
		add(k, "all", "global", "recall", f)
		for i, t := range deepFashionTypes {
			add(k, "type:"+t, "", "recall", f*(0.6+0.2*float64(i)))
		}
	}
	add(0, "all", "micro", "map", base)
	add(0, "all", "micro", "auc", 0.9)
	add(0, "all", "macro", "map", base/2)
	add(0, "all", "macro", "auc", 0.85)
	return artifacts.MetricsInfo{Images: 40000, Attributes: 1000, MacroAttributes: 987}, rows
}

// newTabulateRun binds two experiments, their histories and per-attribute
// tables, as a matrix stage would name them.
func newTabulateRun(t *testing.T) *pipelinetest.Run {
	t.Helper()
	return newTabulateRunWith(t, nil)
}

// newTabulateRunWith is newTabulateRun whose first experiment (vgg16)
// also has the category accuracy rows of categories (k -> accuracy).
func newTabulateRunWith(t *testing.T, categories map[int]float64) *pipelinetest.Run {
	t.Helper()
	run := pipelinetest.NewRun(t, "compare")
	bind := func(input, stage string, id artifacts.ID) {
		run.Inputs_[input] = append(run.Inputs_[input], pipeline.InputRef{Stage: stage, Output: input, ID: id})
	}
	for i, backbone := range []string{"vgg16", "resnet18"} {
		info, rows := fakeMetrics(0.3 + 0.1*float64(i))
		for k, v := range categories {
			if i == 0 {
				rows = append(rows, artifacts.MetricRow{K: k, Scope: "category", Metric: "accuracy", Value: v})
			}
		}
		id, err := run.St.PutMetrics(info, rows)
		if err != nil {
			t.Fatal(err)
		}
		bind("metrics", "eval[backbone="+backbone+"]", id)

		var epochs []artifacts.Epoch
		for phase := 1; phase <= 2; phase++ {
			for e := 1; e <= 4; e++ {
				x := float64((phase-1)*4 + e)
				epochs = append(epochs, artifacts.Epoch{Phase: phase, Epoch: e, TrainLoss: 1 / x, ValLoss: 1.2 / x,
					ValAUC: 0.7 + 0.02*x, LearningRate: 1e-3 / x})
			}
		}
		hid, err := run.St.PutHistory(epochs)
		if err != nil {
			t.Fatal(err)
		}
		bind("history", "train[backbone="+backbone+"]", hid)

		var per []artifacts.AttributeMetricRow
		for a := range 200 {
			pos := int64(1 + a*a%900)
			per = append(per, artifacts.AttributeMetricRow{K: 5, Index: a, Name: fmt.Sprintf("attr%d", a),
				Positives: pos, Recall: float64(a%10) / 10})
		}
		pid, err := run.St.PutAttributeMetrics(per)
		if err != nil {
			t.Fatal(err)
		}
		bind("per_attribute", "eval[backbone="+backbone+"]", pid)
	}
	return run
}

func TestTabulate(t *testing.T) {
	run := newTabulateRun(t)
	if err := New().Run(t.Context(), run, NewParams()); err != nil {
		t.Fatal(err)
	}
	md := output(t, run, "markdown")
	for _, want := range []string{
		"| experiment ", "| backbone=vgg16 ", "| backbone=resnet18 ",
		// vgg16 at k=5: micro recall .3, macro .15, pooled .33, texture .18.
		"|   30.00 |", "|   15.00 |", "|      33.00 |",
		"FashionNet (Liu et al., CVPR 2016) †", "54.61", "60.95", "63.74", "96.12",
		"published figures, not computed by stitch",
		"987/1000",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Aligned: every table line has the same width.
	var widths []int
	for _, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(line, "|") {
			widths = append(widths, len([]rune(line)))
		}
	}
	for _, w := range widths {
		if w != widths[0] {
			t.Errorf("table lines of widths %v, want one width", widths)
			break
		}
	}

	csv := string(output(t, run, "csv"))
	if !strings.HasPrefix(csv, "experiment,source,k,recall_micro,") || !strings.Contains(csv, "backbone=vgg16,stitch,5,0.3,") ||
		!strings.Contains(csv, "Wang et al. (CVPR 2018),published,5,") {
		t.Errorf("csv:\n%s", csv)
	}
	page := string(output(t, run, "html"))
	for _, want := range []string{"<svg", palette[0], palette[1], "Training curves", "validation AUC", "<circle", "published (not ours)"} {
		if !strings.Contains(page, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
			t.Errorf("html contains %q: it must be self-contained", banned)
		}
	}

	tableID, err := run.Output("table")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := run.St.GetTable(tableID)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 5 || artifacts.KindOf(tbl.Schema()) != artifacts.KindTable {
		t.Errorf("table: %d rows of kind %q, want 2 experiments + 3 references", tbl.NumRows(), artifacts.KindOf(tbl.Schema()))
	}
}

func TestReferenceRows(t *testing.T) {
	for _, c := range []struct {
		reference string
		k         int
		want      bool
	}{
		{ReferenceAuto, 5, true}, {ReferenceNone, 5, false}, {ReferenceAuto, 20, false}, {ReferenceDeepFashion, 3, true},
	} {
		run := newTabulateRun(t)
		if err := New().Run(t.Context(), run, &Params{K: c.k, Reference: c.reference}); err != nil {
			t.Fatal(err)
		}
		md := string(output(t, run, "markdown"))
		if got := strings.Contains(md, "FashionNet"); got != c.want {
			t.Errorf("reference %s at k=%d: FashionNet shown %v, want %v", c.reference, c.k, got, c.want)
		}
	}
	// A dataset that is not DeepFashion coarse shows no reference on auto.
	run := newTabulateRun(t)
	aid, err := run.St.PutAttributes([]artifacts.Attribute{{Index: 0, Name: "x", Type: 1, TypeName: "texture"}})
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("attributes", aid)
	if err := New().Run(t.Context(), run, NewParams()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(output(t, run, "markdown")), "FashionNet") {
		t.Error("reference rows shown for a 1-attribute dataset")
	}
}

func TestMissingK(t *testing.T) {
	run := newTabulateRun(t)
	err := New().Run(t.Context(), run, &Params{K: 7, Reference: ReferenceAuto})
	if err == nil || !strings.Contains(err.Error(), "eval[backbone=vgg16]") || !strings.Contains(err.Error(), "k = 7") {
		t.Errorf("got %v, want an error naming the stage and k", err)
	}
}

func TestReport(t *testing.T) {
	run := newTabulateRun(t)
	if err := New().Run(t.Context(), run, NewParams()); err != nil {
		t.Fatal(err)
	}
	outputs := map[string]artifacts.ID{}
	for _, name := range []string{"table", "markdown", "csv", "html"} {
		id, err := run.Output(name)
		if err != nil {
			t.Fatal(err)
		}
		outputs[name] = id
	}
	dir := t.TempDir()
	var out bytes.Buffer
	err := New().(pipeline.Reporter).Report(t.Context(), pipeline.ReportEnv{
		Stage: "compare", Store: run.St, Outputs: outputs, Out: &out, ExportDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.html", "table.md", "table.csv"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("export: %v", err)
		}
	}
	if !strings.Contains(out.String(), "| backbone=vgg16 ") || !strings.HasSuffix(out.String(), filepath.Join(dir, "report.html")+"\n") {
		t.Errorf("printed:\n%s", out.String())
	}
}

func TestShortNames(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"eval[backbone=vgg16]", "eval[backbone=resnet18]"}, []string{"backbone=vgg16", "backbone=resnet18"}},
		{[]string{"evaluate[phase1.max_epochs=1]", "evaluate[phase1.max_epochs=2]"},
			[]string{"phase1.max_epochs=1", "phase1.max_epochs=2"}},
		{[]string{"e[32,phase1.lr=0.1]", "e[32,phase1.lr=0.2]"}, []string{"phase1.lr=0.1", "phase1.lr=0.2"}},
		{[]string{"e[32]", "e[128]"}, []string{"32", "128"}},
		{[]string{"train[0.6]", "train[0.8]"}, []string{"0.6", "0.8"}},
		{[]string{"e[1e-5]", "e[1e-4]"}, []string{"1e-5", "1e-4"}},
		{[]string{"e[-1]", "e[-2]"}, []string{"-1", "-2"}},
		{[]string{"e[32x16]", "e[64x16]"}, []string{"32x16", "64x16"}},
		{[]string{"e[[a, b],1]", "e[[a, c],1]"}, []string{"[a, b]", "[a, c]"}},
		{[]string{"e-A[0.5]", "e-B[0.5]"}, []string{"A", "B"}},
		{[]string{"evalx[0.6]", "ev2[0.8]"}, []string{"evalx[0.6]", "ev2[0.8]"}},
		{[]string{"evalx[0.6]", "evalx[0.8]", "ev2[0.6]", "ev2[0.8]"},
			[]string{"evalx[0.6]", "evalx[0.8]", "ev2[0.6]", "ev2[0.8]"}},
		{[]string{"evaluate[32]", "evaluate[128]", "evaluate-frequency"},
			[]string{"evaluate[32]", "evaluate[128]", "evaluate-frequency"}},
		{[]string{"eval-vgg16", "eval-vit"}, []string{"vgg16", "vit"}},
		{[]string{"evaluate"}, []string{"evaluate"}},
		{[]string{"a", "a"}, []string{"a", "a"}},
		{[]string{"vgg16-eval", "resnet-eval"}, []string{"vgg16", "resnet"}},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, shortNames(c.in)); diff != "" {
			t.Errorf("shortNames(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestParams(t *testing.T) {
	if err := NewParams().Validate(); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		key string
		p   Params
	}{{"k", Params{K: 0, Reference: "auto"}}, {"k", Params{K: 4294967299, Reference: "auto"}},
		{"reference", Params{K: 5, Reference: "paper"}}} {
		key, p := c.key, c.p
		err := p.Validate()
		if pe := (*pipeline.ParamError)(nil); !errors.As(err, &pe) || pe.Key != key {
			t.Errorf("%+v: Validate() = %v, want a *pipeline.ParamError about %s", p, err, key)
		}
	}
}

func output(t *testing.T, run *pipelinetest.Run, name string) []byte {
	t.Helper()
	id, err := run.Output(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := run.St.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// markdownCells returns the cells of the Markdown table row that starts
// with name, by header.
func markdownCells(t *testing.T, md, name string) map[string]string {
	t.Helper()
	var header []string
	split := func(line string) []string {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		return cells
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| experiment ") {
			header = split(line)
		}
		if strings.HasPrefix(line, "| "+name) && header != nil {
			out := map[string]string{}
			for i, c := range split(line) {
				out[header[i]] = c
			}
			return out
		}
	}
	t.Fatalf("markdown has no row %q:\n%s", name, md)
	return nil
}

func TestCategoryColumns(t *testing.T) {
	// The published category figures, beside ours, at either table k.
	published := map[string][2]string{
		"FashionNet (Liu et al., CVPR 2016)": {"82.58", "90.17"},
		"Wang et al. (CVPR 2018)":            {"90.99", "95.78"},
		"Liu and Lu (ECCV workshops 2018)":   {"91.16", "96.12"},
	}
	for _, k := range []int{3, 5} {
		run := newTabulateRunWith(t, map[int]float64{3: 0.8, 5: 0.9, 20: 0.99})
		if err := New().Run(t.Context(), run, &Params{K: k, Reference: ReferenceAuto}); err != nil {
			t.Fatal(err)
		}
		md := string(output(t, run, "markdown"))
		if got := markdownCells(t, md, "backbone=vgg16"); got["cat top-3"] != "80.00" || got["cat top-5"] != "90.00" {
			t.Errorf("k=%d: vgg16 category cells %q, %q; want 80.00, 90.00", k, got["cat top-3"], got["cat top-5"])
		}
		if got := markdownCells(t, md, "backbone=resnet18"); got["cat top-3"] != "–" || got["cat top-5"] != "–" {
			t.Errorf("k=%d: resnet18 has no category accuracy, cells %q, %q", k, got["cat top-3"], got["cat top-5"])
		}
		for name, want := range published {
			got := markdownCells(t, md, name)
			if got["cat top-3"] != want[0] || got["cat top-5"] != want[1] {
				t.Errorf("k=%d: %s category cells %q, %q; want %s, %s",
					k, name, got["cat top-3"], got["cat top-5"], want[0], want[1])
			}
		}
		if !strings.Contains(md, "category top-3 and top-5 accuracy, whatever the table's k") {
			t.Errorf("k=%d: markdown does not say what the category columns are:\n%s", k, md)
		}

		csv := string(output(t, run, "csv"))
		if !strings.Contains(csv, ",category_top3,category_top5,") ||
			!strings.Contains(csv, ",0.8258,0.9017,") || !strings.Contains(csv, ",0.8,0.9,") {
			t.Errorf("k=%d: csv lacks the category columns and values:\n%s", k, csv)
		}
	}

	// Without references: the columns follow the experiments.
	run := newTabulateRunWith(t, map[int]float64{3: 0.8, 5: 0.9})
	if err := New().Run(t.Context(), run, &Params{K: 5, Reference: ReferenceNone}); err != nil {
		t.Fatal(err)
	}
	md := string(output(t, run, "markdown"))
	if !strings.Contains(md, "cat top-3") || strings.Contains(md, "FashionNet") {
		t.Errorf("no references, one experiment with categories:\n%s", md)
	}
	run = newTabulateRun(t)
	if err := New().Run(t.Context(), run, &Params{K: 5, Reference: ReferenceNone}); err != nil {
		t.Fatal(err)
	}
	if md = string(output(t, run, "markdown")); strings.Contains(md, "cat top") {
		t.Errorf("no references, no categories: category columns shown:\n%s", md)
	}
}

// TestCategoryOnlyK checks that the cut-offs evaluate writes only category
// accuracy at (1, 3 and 5, whatever its k) do not pass for cut-offs the
// attributes were evaluated at.
func TestCategoryOnlyK(t *testing.T) {
	run := newTabulateRunWith(t, map[int]float64{1: 0.7, 3: 0.8, 5: 0.9})
	err := New().Run(t.Context(), run, &Params{K: 1, Reference: ReferenceNone})
	want := "metrics of eval[backbone=vgg16]: not evaluated at k = 1 (only at [3 5 20])"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("tabulate at k = 1: %v, want an error saying %s", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "compare") {
		t.Errorf("error %q names the stage, which the engine does", err)
	}
}

// TestUntyped checks the table of untyped attributes (a CSV dataset
// without an attributes table): no per-type columns, and no note about a
// pooled column that is not there.
func TestUntyped(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	rows = slices.DeleteFunc(rows, func(r artifacts.MetricRow) bool {
		return strings.HasPrefix(r.Scope, "type:") || r.Average == "pooled"
	})
	info.Attributes = 3
	_, md, cells := tabulateOne(t, info, rows, ReferenceAuto)
	for _, gone := range []string{"all pooled", "texture", "0"} {
		if _, ok := cells[gone]; ok {
			t.Errorf("untyped: column %q shown:\n%s", gone, md)
		}
	}
	if strings.Contains(md, `"all pooled"`) || !strings.Contains(md, `"all global" ranks all attributes at once.`) {
		t.Errorf("untyped: the note explains a pooled column that is not there:\n%s", md)
	}
}

// A type with no more attributes than k has all of them in its top list:
// its recall cell is marked and the note under the table says why.
func TestTypeRankedWhole(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	for _, tn := range deepFashionTypes {
		n := 200
		if tn == "shape" {
			n = 3
		}
		if tn == "part" {
			n = 5 // equal to k: every attribute too
		}
		rows = append(rows, artifacts.MetricRow{K: 0, Scope: "type:" + tn, Metric: "attributes", Value: float64(n)})
	}
	run, md, cells := tabulateOne(t, info, rows, ReferenceNone)
	for col, marked := range map[string]bool{"shape": true, "part": true, "texture": false, "style": false} {
		if got := strings.HasSuffix(cells[col], " *"); got != marked {
			t.Errorf("cell %s = %q: marked %v, want %v:\n%s", col, cells[col], got, marked, md)
		}
	}
	const note = "* The type has no more attributes than k = 5 (shape: 3, part: 5)"
	if !strings.Contains(md, note) || !strings.Contains(string(output(t, run, "html")), note) {
		t.Errorf("no note %q under the tables:\n%s", note, md)
	}
	// The bars of those types say so too: one experiment, two types.
	const bar = "(100 by construction: the top list holds every attribute)"
	if n := strings.Count(string(output(t, run, "html")), bar); n != 2 {
		t.Errorf("%d bars marked %q, want 2 (shape, part)", n, bar)
	}
}

// A category accuracy whose top list holds every category is marked like
// a type's recall, with its own note: 4 categories at top-5, not top-3.
func TestCategoryRankedWhole(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	rows = append(rows,
		artifacts.MetricRow{K: 3, Scope: "category", Metric: "accuracy", Value: 0.8},
		artifacts.MetricRow{K: 5, Scope: "category", Metric: "accuracy", Value: 1},
		artifacts.MetricRow{K: 0, Scope: "category", Metric: "categories", Value: 4})
	run, md, cells := tabulateOne(t, info, rows, ReferenceNone)
	if cells["cat top-3"] != "80.00" || cells["cat top-5"] != "100.00 *" {
		t.Errorf("cat top-3 %q, cat top-5 %q; want 80.00 and 100.00 *:\n%s", cells["cat top-3"], cells["cat top-5"], md)
	}
	const note = "* The experiment ranks no more categories than the top list holds (cat top-5: 4 categories)"
	if !strings.Contains(md, note) || !strings.Contains(string(output(t, run, "html")), note) {
		t.Errorf("no note %q under the tables:\n%s", note, md)
	}
}

// tabulateOne tabulates one evaluate output of info and rows at k = 5 and
// returns the run, its Markdown and the cells of its row.
func tabulateOne(t *testing.T, info artifacts.MetricsInfo, rows []artifacts.MetricRow,
	ref string,
) (*pipelinetest.Run, string, map[string]string) {
	t.Helper()
	run := pipelinetest.NewRun(t, "compare")
	id, err := run.St.PutMetrics(info, rows)
	if err != nil {
		t.Fatal(err)
	}
	run.Inputs_["metrics"] = []pipeline.InputRef{{Stage: "evaluate", Output: "metrics", ID: id}}
	if err := New().Run(t.Context(), run, &Params{K: 5, Reference: ref}); err != nil {
		t.Fatal(err)
	}
	md := string(output(t, run, "markdown"))
	return run, md, markdownCells(t, md, "evaluate")
}

// A '|' in a type's name is escaped in the Markdown table, which would
// otherwise gain a column.
func TestMarkdownEscapesPipes(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	rows = append(rows, artifacts.MetricRow{K: 5, Scope: "type:pi|pe", Metric: "recall", Value: 0.5})
	_, md, _ := tabulateOne(t, info, rows, ReferenceNone)
	columns := -1
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if columns >= 0 && n != columns {
			t.Errorf("%d column bars in %q, want %d:\n%s", n, line, columns, md)
		}
		columns = n
	}
	if !strings.Contains(md, `pi\|pe`) {
		t.Errorf("no escaped type name in:\n%s", md)
	}
}

// An experiment with no more attributes than k has its recall columns
// marked, with a note: every attribute is in every top list.
func TestEveryAttributeRanked(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	info.Attributes = 4
	_, md, cells := tabulateOne(t, info, rows, ReferenceNone)
	for col, marked := range map[string]bool{"R micro": true, "R macro": true, "all global": true,
		"all pooled": true, "P micro": false} {
		if got := strings.HasSuffix(cells[col], " *"); got != marked {
			t.Errorf("cell %s = %q: marked %v, want %v:\n%s", col, cells[col], got, marked, md)
		}
	}
	const note = "* An experiment with no more attributes than k = 5 (4) holds them all in its top list"
	if !strings.Contains(md, note) {
		t.Errorf("no note %q under the table:\n%s", note, md)
	}
}

// When every type has no more attributes than k, "all pooled" ranks each
// type whole: it is marked, with its own note.
func TestEveryTypeRanked(t *testing.T) {
	info, rows := fakeMetrics(0.3)
	for _, tn := range deepFashionTypes {
		rows = append(rows, artifacts.MetricRow{K: 0, Scope: "type:" + tn, Metric: "attributes", Value: 4})
	}
	_, md, cells := tabulateOne(t, info, rows, ReferenceNone)
	if !strings.HasSuffix(cells["all pooled"], " *") || strings.HasSuffix(cells["all global"], " *") {
		t.Errorf("all pooled %q, all global %q: want only pooled marked:\n%s", cells["all pooled"], cells["all global"], md)
	}
	const note = "* Every type of the experiment has no more attributes than k = 5, so its pooled recall is 100"
	if !strings.Contains(md, note) {
		t.Errorf("no note %q:\n%s", note, md)
	}
}

// The charts name a series as the table names its experiment: by the
// experiment's own stage, or by the one stage of the same variant.
func TestExperimentLabels(t *testing.T) {
	exps := []*experiment{{Name: "evaluate[32]", Stage: "evaluate[32]"}, {Name: "evaluate[128]", Stage: "evaluate[128]"},
		{Name: "evaluate-frequency", Stage: "evaluate-frequency"}}
	refs := func(stages ...string) []pipeline.InputRef {
		var out []pipeline.InputRef
		for _, s := range stages {
			out = append(out, pipeline.InputRef{Stage: s})
		}
		return out
	}
	for _, tc := range []struct {
		stages, want []string
	}{
		{[]string{"train[32]", "train[128]"}, []string{"evaluate[32]", "evaluate[128]"}},
		{[]string{"evaluate[128]", "evaluate[32]"}, []string{"evaluate[128]", "evaluate[32]"}},
		// No experiment of variant [64]: every series keeps its own short name.
		{[]string{"train[32]", "train[64]"}, []string{"32", "64"}},
	} {
		if got := experimentLabels(refs(tc.stages...), exps); !slices.Equal(got, tc.want) {
			t.Errorf("labels of %v = %v, want %v", tc.stages, got, tc.want)
		}
	}
	// Two experiments of one variant: no telling which.
	two := append(exps, &experiment{Name: "ev2[32]", Stage: "ev2[32]"})
	if got := experimentLabels(refs("train[32]"), two); !slices.Equal(got, []string{"train[32]"}) {
		t.Errorf("ambiguous variant labelled %v, want the series' own name", got)
	}
}
