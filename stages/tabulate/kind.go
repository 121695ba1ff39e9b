package tabulate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/stages/evaluate"
)

// Reference choices.
const (
	ReferenceAuto        = "auto"
	ReferenceDeepFashion = "deepfashion"
	ReferenceNone        = "none"
)

// Params are the parameters of a tabulate stage.
type Params struct {
	// K is the cut-off the table compares at; every experiment must have
	// been evaluated at it.
	K int `yaml:"k"`
	// Reference is auto, deepfashion or none: whether to show the
	// published DeepFashion coarse rows (auto: when the data looks like it).
	Reference string `yaml:"reference"`
}

// NewParams returns the defaults: k 5, reference auto.
func NewParams() *Params { return &Params{K: 5, Reference: ReferenceAuto} }

// Validate checks the parameters.
func (p *Params) Validate() error {
	if p.K < 1 || p.K > evaluate.MaxK {
		return pipeline.ParamErrorf("k", "k %d: want 1 to %d", p.K, evaluate.MaxK)
	}
	switch p.Reference {
	case ReferenceAuto, ReferenceDeepFashion, ReferenceNone:
		return nil
	}
	return pipeline.ParamErrorf("reference", "reference %q: want auto, deepfashion or none", p.Reference)
}

type kind struct{}

// New returns the tabulate stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string { return "tabulate" }

// Version 2: category top-3 and top-5 accuracy columns (were one column
// at the table's k) and the published category figures of every reference.
func (kind) Version() string { return "3" }

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "metrics", Kind: artifacts.KindMetrics, Many: true, Doc: "evaluate outputs, one per experiment"},
		{Name: "history", Kind: artifacts.KindHistory, Many: true, Optional: true, Doc: "training histories, for curves"},
		{Name: "per_attribute", Kind: artifacts.KindTable, Many: true, Optional: true,
			Doc: "evaluate's per-attribute tables, for recall against frequency"},
		{Name: "attributes", Kind: artifacts.KindAttributes, Optional: true, Doc: "to recognise DeepFashion coarse"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "table", Kind: artifacts.KindTable, Doc: "one row per experiment (and published reference rows)"},
		{Name: "markdown", Kind: artifacts.KindReport, Doc: "the table as Markdown"},
		{Name: "csv", Kind: artifacts.KindReport, Doc: "the table as CSV"},
		{Name: "html", Kind: artifacts.KindReport, Doc: "a self-contained HTML report with charts"},
	}
}

func (kind) NewParams() any { return NewParams() }

// Run writes the table and its renderings. Its errors do not name the
// stage: the engine's report of a failed stage does.
func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	rep, err := build(ctx, run, p)
	if err != nil {
		return err
	}
	store := run.Store()

	schema, rec := rep.Arrow()
	defer rec.Release()
	tableID, err := store.PutRecords(schema, rec)
	if err != nil {
		return fmt.Errorf("store table: %w", err)
	}
	csvBytes, err := rep.CSV()
	if err != nil {
		return fmt.Errorf("render csv: %w", err)
	}
	outputs := map[string][]byte{"markdown": rep.Markdown(), "csv": csvBytes, "html": rep.HTML()}
	for _, name := range []string{"markdown", "csv", "html"} {
		id, err := store.Put(outputs[name])
		if err != nil {
			return fmt.Errorf("store %s: %w", name, err)
		}
		run.SetOutput(name, id)
	}
	run.SetOutput("table", tableID)
	return nil
}

// build reads the inputs into a report.
func build(ctx context.Context, run pipeline.Run, p *Params) (*report, error) {
	store := run.Store()
	refs := run.Inputs("metrics")
	if len(refs) == 0 {
		return nil, fmt.Errorf("input metrics: want at least one evaluate output")
	}
	names := shortNames(stageNames(refs))
	rep := &report{K: p.K}
	for i, ref := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, rows, err := store.GetMetrics(ref.ID)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", ref.Stage, err)
		}
		e := newExperiment(names[i], ref.Stage, info, rows)
		if !slices.Contains(e.Ks, p.K) {
			return nil, fmt.Errorf("metrics of %s: not evaluated at k = %d (only at %v); set tabulate's k or evaluate's k",
				ref.Stage, p.K, e.Ks)
		}
		rep.Exps = append(rep.Exps, e)
	}

	histRefs := run.Inputs("history")
	histNames := experimentLabels(histRefs, rep.Exps)
	for i, ref := range histRefs {
		epochs, err := store.GetHistory(ref.ID)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", ref.Stage, err)
		}
		rep.Histories = append(rep.Histories, history{Name: histNames[i], Epochs: epochs})
	}
	paRefs := run.Inputs("per_attribute")
	paNames := experimentLabels(paRefs, rep.Exps)
	for i, ref := range paRefs {
		rows, err := store.GetAttributeMetrics(ref.ID)
		if err != nil {
			return nil, fmt.Errorf("per-attribute metrics of %s: %w", ref.Stage, err)
		}
		rep.PerAttr = append(rep.PerAttr, perAttribute{Name: paNames[i], Stage: ref.Stage, Rows: rows})
	}

	show, err := showReference(run, p, rep.Exps)
	if err != nil {
		return nil, err
	}
	if show && (p.K == 3 || p.K == 5) {
		rep.References = deepFashionReferences
	}
	rep.Cols = columns(rep.Exps, len(rep.References) > 0)
	return rep, nil
}

func stageNames(refs []pipeline.InputRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Stage
	}
	return out
}

// deepFashionTypes are the coarse layout's type names, ids 1 to 5.
var deepFashionTypes = []string{"texture", "fabric", "shape", "part", "style"}

// showReference decides whether the published DeepFashion rows apply.
func showReference(run pipeline.Run, p *Params, exps []*experiment) (bool, error) {
	switch p.Reference {
	case ReferenceDeepFashion:
		return true, nil
	case ReferenceNone:
		return false, nil
	}
	if id, ok := run.Input("attributes"); ok {
		attrs, err := run.Store().GetAttributes(id)
		if err != nil {
			return false, fmt.Errorf("attributes: %w", err)
		}
		return isDeepFashionCoarse(attrs), nil
	}
	// Without attributes, the metrics tell: 1000 attributes and exactly
	// the five coarse types.
	for _, e := range exps {
		types := make([]string, len(e.Types))
		for i, t := range e.Types {
			types[i] = strings.TrimPrefix(t, "type:")
		}
		if e.Info.Attributes != 1000 || !slices.Equal(types, deepFashionTypes) {
			return false, nil
		}
	}
	return true, nil
}

func isDeepFashionCoarse(attrs []artifacts.Attribute) bool {
	if len(attrs) != 1000 {
		return false
	}
	seen := map[int]bool{}
	for _, a := range attrs {
		if a.Type < 1 || a.Type > 5 {
			return false
		}
		seen[a.Type] = true
	}
	return len(seen) == 5
}

// Report prints the table after `stitch run` and writes the files meant
// for people into env.ExportDir.
func (kind) Report(ctx context.Context, env pipeline.ReportEnv) error {
	files := []struct{ output, file string }{
		{"markdown", "table.md"}, {"csv", "table.csv"}, {"html", "report.html"},
	}
	contents := map[string][]byte{}
	for _, f := range files {
		id, ok := env.Outputs[f.output]
		if !ok {
			return fmt.Errorf("report %s: no output %q", env.Stage, f.output)
		}
		data, err := env.Store.Get(id)
		if err != nil {
			return fmt.Errorf("report %s: %s: %w", env.Stage, f.output, err)
		}
		contents[f.output] = data
		if err := writeFileAtomic(filepath.Join(env.ExportDir, f.file), data); err != nil {
			return fmt.Errorf("report %s: %w", env.Stage, err)
		}
	}
	htmlPath, err := filepath.Abs(filepath.Join(env.ExportDir, "report.html"))
	if err != nil {
		return fmt.Errorf("report %s: %w", env.Stage, err)
	}
	if _, err := fmt.Fprintf(env.Out, "%s\n%s\nreport: %s\n", env.Stage, contents["markdown"], htmlPath); err != nil {
		return fmt.Errorf("report %s: print: %w", env.Stage, err)
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// person never opens half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Removing is a no-op once the file has been renamed into place.
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var (
	_ pipeline.Kind     = kind{}
	_ pipeline.Reporter = kind{}
)
