// Package testkinds holds small stage kinds for the engine's tests and for
// the test build of the binary (go build -tags stitchtest). They write
// tiny Arrow tables of text lines, so every artifact is real.
package testkinds

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
	"stitch/pipeline"
)

// EnvStarted names a file the "slow" kind creates once it is mid-way, so a
// test knows when to kill the process. It is an environment variable, not
// a parameter, so it does not change the run key.
const EnvStarted = "STITCH_TEST_STARTED"

// Counter counts how often each stage really ran.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{n: map[string]int{}} }

func (c *Counter) add(stage string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[stage]++
}

// Take returns the counts and resets them.
func (c *Counter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.n
	c.n = map[string]int{}
	return out
}

// All returns the test kinds, counting runs in c (which may be nil).
func All(c *Counter) []pipeline.Kind {
	return []pipeline.Kind{source{c}, upper{c}, join{c}, number{c}, slow{c}, pair{c}, needy{c}}
}

var textSchema = arrow.NewSchema([]arrow.Field{{Name: "line", Type: arrow.BinaryTypes.String}},
	func() *arrow.Metadata {
		m := arrow.NewMetadata([]string{artifacts.MetaKind}, []string{"text"})
		return &m
	}())

func putLines(st *artifacts.Store, lines []string) (artifacts.ID, error) {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(lines, nil)
	col := b.NewArray()
	defer col.Release()
	rec := array.NewRecordBatch(textSchema, []arrow.Array{col}, int64(len(lines)))
	defer rec.Release()
	return st.PutRecords(textSchema, rec)
}

func readLines(st *artifacts.Store, id artifacts.ID) ([]string, error) {
	t, err := st.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	var out []string
	for _, chunk := range t.Column(0).Data().Chunks() {
		s := chunk.(*array.String)
		for i := range s.Len() {
			out = append(out, s.Value(i))
		}
	}
	return out, nil
}

func text(name, doc string) pipeline.Port { return pipeline.Port{Name: name, Kind: "text", Doc: doc} }

// source writes `lines` copies of `value`, and the contents of `file` or
// the names and contents of the files in `dir` when set.
type source struct{ c *Counter }

// SourceParams are the parameters of kind "source".
type SourceParams struct {
	Value string  `yaml:"value"`
	Lines int     `yaml:"lines"`
	LR    float64 `yaml:"lr"`
	File  string  `yaml:"file"`
	Dir   string  `yaml:"dir"`
	Tags  map[string]string
}

func (source) Name() string             { return "source" }
func (source) Version() string          { return "1" }
func (source) Inputs() []pipeline.Port  { return nil }
func (source) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "lines")} }
func (source) NewParams() any           { return &SourceParams{Lines: 1, LR: 0.001} }
func (source) Externals(p any) ([]string, error) {
	sp := p.(*SourceParams)
	var out []string
	for _, f := range []string{sp.File, sp.Dir} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out, nil
}

// Validate rejects negative line counts, naming the key so that the
// error points at it.
func (p *SourceParams) Validate() error {
	if p.Lines < 0 {
		return pipeline.ParamErrorf("lines", "lines must be >= 0, got %d", p.Lines)
	}
	return nil
}

func (s source) Run(ctx context.Context, run pipeline.Run, params any) error {
	s.c.add(run.Stage())
	p := params.(*SourceParams)
	var lines []string
	for range p.Lines {
		lines = append(lines, p.Value)
	}
	lines = append(lines, "lr="+strconv.FormatFloat(p.LR, 'g', -1, 64))
	if p.File != "" {
		data, err := os.ReadFile(p.File)
		if err != nil {
			return err
		}
		lines = append(lines, string(data))
	}
	if p.Dir != "" {
		err := filepath.WalkDir(p.Dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			lines = append(lines, path+"="+string(data))
			return err
		})
		if err != nil {
			return err
		}
	}
	id, err := putLines(run.Store(), lines)
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	return nil
}

// upper upper-cases its input and appends a suffix. With fail_if set to a
// path that exists, it writes its output and then fails.
type upper struct{ c *Counter }

// UpperParams are the parameters of kind "upper".
type UpperParams struct {
	Suffix string  `yaml:"suffix"`
	Scale  float64 `yaml:"scale"`
	FailIf string  `yaml:"fail_if"`
	// Note changes nothing in the output (see OutputNeutral), except
	// with the suffix "+note", which appends it.
	Note string `yaml:"note"`
}

func (upper) Name() string    { return "upper" }
func (upper) Version() string { return "1" }
func (upper) Inputs() []pipeline.Port {
	return []pipeline.Port{text("in", "text to upper-case")}
}
func (upper) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "upper-cased")} }
func (upper) NewParams() any           { return &UpperParams{Scale: 1} }

// OutputNeutral: note is left out of the run key unless the suffix uses it.
func (upper) OutputNeutral(params any, _ func(string) bool) []string {
	if params.(*UpperParams).Suffix == "+note" {
		return nil
	}
	return []string{"note"}
}

func (u upper) Run(ctx context.Context, run pipeline.Run, params any) error {
	u.c.add(run.Stage())
	p := params.(*UpperParams)
	in, _ := run.Input("in") // required input: the engine bound it
	lines, err := readLines(run.Store(), in)
	if err != nil {
		return err
	}
	for i := range lines {
		lines[i] = strings.ToUpper(lines[i]) + p.Suffix + fmt.Sprintf(" x%g", p.Scale)
		if p.Suffix == "+note" {
			lines[i] += p.Note
		}
	}
	id, err := putLines(run.Store(), lines)
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	if p.FailIf != "" {
		if _, err := os.Stat(p.FailIf); err == nil {
			return errors.New("failing on purpose after writing the output")
		}
	}
	return nil
}

// join concatenates any number of inputs.
type join struct{ c *Counter }

// JoinParams are the parameters of kind "join".
type JoinParams struct {
	Sep string `yaml:"sep"`
}

func (join) Name() string    { return "join" }
func (join) Version() string { return "1" }
func (join) Inputs() []pipeline.Port {
	return []pipeline.Port{{Name: "in", Kind: "text", Many: true, Doc: "texts to join"},
		{Name: "extra", Kind: "text", Optional: true}}
}
func (join) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "joined")} }
func (join) NewParams() any           { return &JoinParams{Sep: "|"} }

func (j join) Run(ctx context.Context, run pipeline.Run, params any) error {
	j.c.add(run.Stage())
	var all []string
	for _, ref := range slices.Concat(run.Inputs("in"), run.Inputs("extra")) {
		lines, err := readLines(run.Store(), ref.ID)
		if err != nil {
			return err
		}
		all = append(all, ref.Stage+":"+strings.Join(lines, params.(*JoinParams).Sep))
	}
	id, err := putLines(run.Store(), all)
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	return nil
}

// Report prints the joined lines, as tabulate prints its table.
func (join) Report(ctx context.Context, env pipeline.ReportEnv) error {
	lines, err := readLines(env.Store, env.Outputs["out"])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Out, "%s: %d lines\n", env.Stage, len(lines))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(env.ExportDir, "joined.txt"), []byte(strings.Join(lines, "\n")), 0o644)
}

// pair joins two single inputs, left then right: a consumer of two
// matrix stages at once, to test fan-out over both. Its list parameters
// test how list values of a matrix are spelled in names.
type pair struct{ c *Counter }

// PairParams are the parameters of kind "pair".
type PairParams struct {
	Sizes  []int    `yaml:"sizes"`
	Labels []string `yaml:"labels"`
}

func (pair) Name() string    { return "pair" }
func (pair) Version() string { return "1" }
func (pair) Inputs() []pipeline.Port {
	return []pipeline.Port{text("left", "first lines"), text("right", "last lines")}
}
func (pair) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "left then right")} }
func (pair) NewParams() any           { return &PairParams{} }

func (pr pair) Run(ctx context.Context, run pipeline.Run, params any) error {
	pr.c.add(run.Stage())
	var all []string
	for _, name := range []string{"left", "right"} {
		id, _ := run.Input(name) // required inputs: the engine bound them
		lines, err := readLines(run.Store(), id)
		if err != nil {
			return err
		}
		all = append(all, lines...)
	}
	id, err := putLines(run.Store(), all)
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	return nil
}

// number writes an artifact of another kind, to test kind checks.
type number struct{ c *Counter }

func (number) Name() string             { return "number" }
func (number) Version() string          { return "1" }
func (number) Inputs() []pipeline.Port  { return nil }
func (number) Outputs() []pipeline.Port { return []pipeline.Port{{Name: "out", Kind: "number"}} }
func (number) NewParams() any           { return &struct{}{} }
func (n number) Run(ctx context.Context, run pipeline.Run, _ any) error {
	n.c.add(run.Stage())
	id, err := run.Store().Put([]byte("42"))
	run.SetOutput("out", id)
	return err
}

// slow copies its input in `steps` steps of `step_ms` each, keeping a
// checkpoint in its work folder, so an interrupted run resumes.
type slow struct{ c *Counter }

// SlowParams are the parameters of kind "slow".
type SlowParams struct {
	Steps  int `yaml:"steps"`
	StepMS int `yaml:"step_ms"`
}

func (slow) Name() string    { return "slow" }
func (slow) Version() string { return "1" }
func (slow) Inputs() []pipeline.Port {
	return []pipeline.Port{text("in", "text to copy slowly")}
}
func (slow) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "copied")} }
func (slow) NewParams() any           { return &SlowParams{Steps: 3, StepMS: 10} }

func (s slow) Run(ctx context.Context, run pipeline.Run, params any) error {
	s.c.add(run.Stage())
	p := params.(*SlowParams)
	dir, err := run.Workdir()
	if err != nil {
		return err
	}
	ckpt := filepath.Join(dir, "checkpoint")
	step := 0
	if data, err := os.ReadFile(ckpt); err == nil {
		step, _ = strconv.Atoi(string(data)) // a torn checkpoint restarts from 0
		run.Logger().Info("resuming", "step", step)
	}
	for ; step < p.Steps; step++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(p.StepMS) * time.Millisecond):
		}
		run.Progress().Report("copy", step+1, p.Steps, "")
		if err := os.WriteFile(ckpt, []byte(strconv.Itoa(step+1)), 0o644); err != nil {
			return err
		}
		if marker := os.Getenv(EnvStarted); marker != "" && step+1 >= p.Steps/2 {
			os.WriteFile(marker, nil, 0o644) // best effort: only a test waits for it
		}
	}
	in, _ := run.Input("in")
	lines, err := readLines(run.Store(), in)
	if err != nil {
		return err
	}
	id, err := putLines(run.Store(), append(lines, fmt.Sprintf("steps=%d seed=%d", p.Steps, run.Seed())))
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	return nil
}

// needy has a required parameter and one that needs its optional input
// wired, to test where load-time parameter errors point.
type needy struct{ c *Counter }

// NeedyParams are needy's parameters.
type NeedyParams struct {
	// Name is required.
	Name string `yaml:"name"`
	// UseExtra needs the extra input.
	UseExtra bool `yaml:"use_extra"`
}

// Validate requires name.
func (p *NeedyParams) Validate() error {
	if p.Name == "" {
		return pipeline.ParamErrorf("name", "name is required")
	}
	return nil
}

func (needy) Name() string    { return "needy" }
func (needy) Version() string { return "1" }
func (needy) Inputs() []pipeline.Port {
	return []pipeline.Port{{Name: "extra", Kind: "text", Optional: true}}
}
func (needy) Outputs() []pipeline.Port { return []pipeline.Port{text("out", "the name")} }
func (needy) NewParams() any           { return &NeedyParams{} }

// CheckWiring requires extra when use_extra is set.
func (needy) CheckWiring(params any, wired func(string) bool) error {
	if params.(*NeedyParams).UseExtra && !wired("extra") {
		return pipeline.ParamErrorf("use_extra", "use_extra: true needs the extra input")
	}
	return nil
}

func (n needy) Run(ctx context.Context, run pipeline.Run, params any) error {
	n.c.add(run.Stage())
	id, err := putLines(run.Store(), []string{params.(*NeedyParams).Name})
	if err != nil {
		return err
	}
	run.SetOutput("out", id)
	return nil
}
