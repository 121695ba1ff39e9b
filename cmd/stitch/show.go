package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"

	"stitch/artifacts"
	"stitch/internal/suggest"
	"stitch/pipeline"
)

var cmdShow = &command{
	name: "show",
	args: "STAGE[.OUTPUT] [--rows N] [--csv] [--path] [--pipeline NAME]",
	summary: "Print a stage's output from its last run: a table's schema, row count and first rows; " +
		"a text file (a report's csv or markdown) whole.",
	example: `stitch show split.train --rows 5
stitch show 'train[vgg16,0.6].history' --csv > history.csv
python3 -c "import pyarrow as pa; print(pa.ipc.open_file('$(stitch show split.train --path)').read_pandas())"`,
	setup: func(fs *flag.FlagSet) runFunc {
		rows := fs.Int("rows", 10, "print the first `N` rows of a table (0: none, -1: all; with --csv, "+
			"all unless given); 0 prints no text file either")
		asCSV := fs.Bool("csv", false, "print every row as CSV (header included) and nothing else; "+
			"a CSV file output as it is")
		asPath := fs.Bool("path", false, "print the path of the output's file in the store (a table's is "+
			"an Arrow IPC file, for pandas, polars or DuckDB) and nothing else")
		pipe := fs.String("pipeline", "", "the pipeline `NAME`, when several in the workspace have the stage")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				if len(args) == 0 {
					return usagef("show wants a STAGE[.OUTPUT], as `stitch log` lists them")
				}
				return usagef("show wants one STAGE[.OUTPUT], got %q", args)
			}
			if *rows < -1 {
				return usagef("--rows %d: want a count, 0 for none or -1 for all", *rows)
			}
			if *asCSV && *asPath {
				return usagef("--csv and --path: give one")
			}
			if *asCSV && !flagGiven(fs, "rows") {
				*rows = -1 // a CSV export is the whole table
			}
			w, err := pipeline.OpenWorkspaceReadOnly(e.workspace, e.logger)
			if err != nil {
				return err
			}
			rec, output, err := findOutput(w, args[0], *pipe)
			if err != nil {
				return err
			}
			names := sortedOutputs(rec.Outputs)
			if output != "" {
				names = []string{output}
			}
			if *asPath {
				for _, name := range names {
					// A path to a file that is gone would fail in the
					// reader it is handed to, without the hint.
					path := w.Store().Path(rec.Outputs[name])
					if _, statErr := os.Stat(path); statErr != nil {
						if _, err := readOutput(w, rec, name); err != nil {
							return err
						}
						return fmt.Errorf("show %s.%s: %w", rec.Stage, name, statErr)
					}
					fmt.Fprintln(e.stdout, path)
				}
				return nil
			}
			if *asCSV && len(names) > 1 {
				return usagef("--csv prints one output, and stage %s has %d: name one, as in %s.%s",
					rec.Stage, len(names), rec.Stage, names[0])
			}
			reg, err := e.registry()
			if err != nil {
				return err
			}
			for i, name := range names {
				if i > 0 && !*asCSV {
					fmt.Fprintln(e.stdout)
				}
				s := shown{w: w, rec: rec, name: name, kind: outputKind(reg, rec, name)}
				if err := s.print(e.stdout, *rows, *asCSV); err != nil {
					return err
				}
			}
			return nil
		}
	},
}

// flagGiven reports whether the command line set flag name.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// findOutput finds the last run of a stage named "stage" or
// "stage.output" (stage names may themselves hold dots, as in
// train[vgg16,0.6], so both readings are tried).
func findOutput(w *pipeline.Workspace, arg, pipe string) (*pipeline.StageRecord, string, error) {
	recs, err := w.ReadableRecords()
	if err != nil {
		return nil, "", err
	}
	if pipe != "" {
		if err := checkPipeline(recs, pipe); err != nil {
			return nil, "", err
		}
	}
	var known []string
	var found []*pipeline.StageRecord
	var output string
	for _, r := range recs {
		if pipe != "" && r.Pipeline != pipe {
			continue
		}
		known = append(known, r.Stage)
		if r.Stage == arg {
			found, output = append(found, r), ""
			continue
		}
		if i := strings.LastIndexByte(arg, '.'); i > 0 && r.Stage == arg[:i] {
			if _, ok := r.Outputs[arg[i+1:]]; !ok {
				if hint := suggest.Hint(arg[i+1:], sortedOutputs(r.Outputs)); hint != "" {
					return nil, "", usagef("stage %s has no output %q%s", r.Stage, arg[i+1:], hint)
				}
				return nil, "", usagef("stage %s has no output %q; it has %s", r.Stage, arg[i+1:],
					strings.Join(sortedOutputs(r.Outputs), ", "))
			}
			found, output = append(found, r), arg[i+1:]
		}
	}
	switch len(found) {
	case 0:
		if variants := matrixVariants(known, arg); len(variants) > 0 {
			return nil, "", usagef("%s names a matrix stage: name one of its variants, %s",
				arg, strings.Join(variants, ", "))
		}
		what, where := "stage", ""
		if strings.Contains(arg, ".") {
			what = "stage or output"
		}
		if pipe != "" {
			where = fmt.Sprintf(" of pipeline %q", pipe)
		}
		return nil, "", usagef("no recorded run%s has a %s %q in this workspace%s",
			where, what, arg, suggest.Hint(arg, known))
	case 1:
		return found[0], output, nil
	}
	var pipes []string
	for _, r := range found {
		pipes = append(pipes, r.Pipeline)
	}
	// arg may be STAGE.OUTPUT: it is the stage that the pipelines share.
	subject := fmt.Sprintf("stage %q", found[0].Stage)
	if output != "" {
		subject = fmt.Sprintf("%s: its %s", arg, subject)
	}
	return nil, "", usagef("%s is in several pipelines (%s): pick one with --pipeline",
		subject, strings.Join(pipes, ", "))
}

// checkPipeline reports, as a usage error, a --pipeline that names no
// pipeline with recorded runs, listing those that have some.
func checkPipeline(recs []*pipeline.StageRecord, pipe string) error {
	var names []string
	for _, r := range recs {
		if r.Pipeline == pipe {
			return nil
		}
		if !slices.Contains(names, r.Pipeline) {
			names = append(names, r.Pipeline)
		}
	}
	if len(names) == 0 {
		return usagef("--pipeline %s: no pipeline has recorded runs in this workspace", pipe)
	}
	slices.Sort(names)
	return usagef("--pipeline %s: no pipeline of that name has recorded runs in this workspace%s; "+
		"those that have: %s", pipe, suggest.Hint(pipe, names), strings.Join(names, ", "))
}

// matrixVariants returns, for arg "base" or "base.output" where base is
// a matrix stage, its recorded variants base[...] (with ".output").
func matrixVariants(stages []string, arg string) []string {
	variants := func(base, suffix string) []string {
		var out []string
		for _, st := range stages {
			if strings.HasPrefix(st, base+"[") && strings.HasSuffix(st, "]") && !slices.Contains(out, st+suffix) {
				out = append(out, st+suffix)
			}
		}
		return out
	}
	out := variants(arg, "")
	if i := strings.LastIndexByte(arg, '.'); len(out) == 0 && i > 0 {
		out = variants(arg[:i], arg[i:])
	}
	return out
}

func sortedOutputs(m map[string]artifacts.ID) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// shown is one output of a recorded stage run, as show prints it.
type shown struct {
	w    *pipeline.Workspace
	rec  *pipeline.StageRecord
	name string
	// kind is the artifact kind its stage kind declares for it, or "".
	kind string
}

// print writes the output: for an Arrow table its schema, row count and
// first rows (or the rows as CSV), for any other file its content when
// it is text; see showFile.
func (s *shown) print(out io.Writer, rows int, asCSV bool) error {
	data, err := readOutput(s.w, s.rec, s.name)
	if err != nil {
		return err
	}
	if !isArrowFile(data) {
		return s.showFile(out, data, rows, asCSV)
	}
	table, err := artifacts.ReadTable(data)
	if err != nil {
		return fmt.Errorf("show %s.%s: %w", s.rec.Stage, s.name, err)
	}
	defer table.Release()
	if rows < 0 || int64(rows) > table.NumRows() {
		rows = int(table.NumRows())
	}

	schema := table.Schema()
	header := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		header[i] = f.Name
	}
	cells := firstRows(table, rows, !asCSV)
	if asCSV {
		cw := csv.NewWriter(out)
		cw.Write(header)
		cw.WriteAll(cells) // WriteAll flushes; Error reports the first failure of either
		return cw.Error()
	}

	s.header(out, cmp.Or(artifacts.KindOf(schema), s.kind))
	fmt.Fprintln(out, "schema:")
	for _, f := range schema.Fields() {
		fmt.Fprintf(out, "  %s: %s\n", f.Name, f.Type)
	}
	fmt.Fprintf(out, "rows: %d\n", table.NumRows())
	if rows == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range cells {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// header writes the line that starts every output shown.
func (s *shown) header(out io.Writer, kind string) {
	fmt.Fprintf(out, "%s.%s  object %s  kind %s  current since %s\n", s.rec.Stage, s.name,
		s.rec.Outputs[s.name].Short(), orDash(kind), s.rec.Time.Local().Format("2006-01-02 15:04:05"))
}

// showFile prints an output that is not an Arrow table, such as
// tabulate's csv, markdown and html: the header, then a text's content
// whole (--rows 0: none of it). HTML and binary files are only named,
// for a browser or another tool to open. With --csv a CSV file is
// printed as it is, and anything else refused.
func (s *shown) showFile(out io.Writer, data []byte, rows int, asCSV bool) error {
	format := fileFormat(s.name, data)
	if asCSV {
		if format != "csv" {
			return usagef("%s.%s --csv: the output is %s, not a table or CSV; "+
				"drop --csv to print it", s.rec.Stage, s.name, format)
		}
		_, err := out.Write(data)
		return err
	}

	s.header(out, s.kind)
	switch {
	case format == "html" || format == "binary":
		fmt.Fprintf(out, "%s, %d bytes, not printed; open %s\n", format, len(data), s.file(data))
		return nil
	case rows == 0:
		fmt.Fprintf(out, "%s, %d bytes\n", format, len(data))
		return nil
	}
	fmt.Fprintf(out, "%s, %d bytes:\n", format, len(data))
	if _, err := out.Write(data); err != nil {
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		_, err := fmt.Fprintln(out)
		return err
	}
	return nil
}

// file returns where a person can open the output: the copy `stitch
// run` exported for its report (report.html opens in a browser, the
// object file has no extension) when one holds the same bytes, else the
// object in the store.
func (s *shown) file(data []byte) string {
	dir := s.w.ExportDir(s.rec.Pipeline, s.rec.Stage)
	entries, err := os.ReadDir(dir)
	if err != nil {
		entries = nil // no export: the object is the file
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if info, err := e.Info(); err != nil || !info.Mode().IsRegular() || info.Size() != int64(len(data)) {
			continue
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, data) {
			return path
		}
	}
	return s.w.Store().Path(s.rec.Outputs[s.name])
}

// isArrowFile reports whether data starts as an Arrow IPC file does.
func isArrowFile(data []byte) bool { return bytes.HasPrefix(data, []byte("ARROW1")) }

// fileFormat names what a non-Arrow output holds: its name when that is
// a format (tabulate's outputs are csv, markdown and html), else html,
// text or binary, from its bytes.
func fileFormat(name string, data []byte) string {
	switch name {
	case "csv", "markdown", "html", "json":
		return name
	}
	start := strings.ToLower(string(data[:min(len(data), 512)]))
	start = strings.TrimSpace(start)
	switch {
	case strings.HasPrefix(start, "<!doctype html") || strings.HasPrefix(start, "<html"):
		return "html"
	case utf8.Valid(data) && !bytes.ContainsRune(data, 0):
		return "text"
	}
	return "binary"
}

// outputKind is the artifact kind that the stage kind of rec declares
// for output name, or "" for a kind this binary does not have.
func outputKind(reg *pipeline.Registry, rec *pipeline.StageRecord, name string) string {
	k, ok := reg.Lookup(rec.Kind)
	if !ok {
		return ""
	}
	for _, p := range k.Outputs() {
		if p.Name == name {
			return p.Kind
		}
	}
	return ""
}

// readOutput returns the bytes of output name of rec. An object that is
// gone (a corrupt one is discarded when read, by predict or run) or
// corrupt is an error that says how to get it back.
func readOutput(w *pipeline.Workspace, rec *pipeline.StageRecord, name string) ([]byte, error) {
	id := rec.Outputs[name]
	st := w.Store()
	if st == nil {
		return nil, fmt.Errorf("show %s.%s: object %s: %w; it is gone from the store, and %s recomputes it",
			rec.Stage, name, id.Short(), artifacts.ErrNotFound, rerunCommand(w, rec))
	}
	data, err := st.Get(id)
	switch {
	case errors.Is(err, artifacts.ErrNotFound):
		return nil, fmt.Errorf("show %s.%s: %w; it is gone from the store (a corrupt object is discarded "+
			"when read), and %s recomputes it", rec.Stage, name, err, rerunCommand(w, rec))
	case errors.Is(err, artifacts.ErrCorrupt):
		return nil, fmt.Errorf("show %s.%s: %w; %s discards and recomputes it",
			rec.Stage, name, err, rerunCommand(w, rec))
	case err != nil:
		return nil, fmt.Errorf("show %s.%s: %w", rec.Stage, name, err)
	}
	return data, nil
}

// rerunCommand names the command that recomputes the outputs of rec: a
// run of the file its pipeline was last run from.
func rerunCommand(w *pipeline.Workspace, rec *pipeline.StageRecord) string {
	runs, err := w.RunRecords()
	if err != nil && !errors.Is(err, pipeline.ErrBadRecord) {
		// Only the hint is lost: the error being reported matters more.
		return fmt.Sprintf("a `stitch run` of pipeline %s", rec.Pipeline)
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if r := runs[i]; r.Pipeline == rec.Pipeline && r.File != "" {
			return fmt.Sprintf("`stitch run %s`", r.File)
		}
	}
	return fmt.Sprintf("a `stitch run` of pipeline %s", rec.Pipeline)
}

// firstRows renders the first n rows as strings; long cells are cut when
// the output is for a person.
func firstRows(t arrow.Table, n int, cut bool) [][]string {
	out := make([][]string, n)
	for i := range out {
		out[i] = make([]string, t.NumCols())
	}
	for c := range int(t.NumCols()) {
		row := 0
		for _, chunk := range t.Column(c).Data().Chunks() {
			for i := 0; i < chunk.Len() && row < n; i++ {
				v := chunk.ValueStr(i)
				if chunk.IsNull(i) {
					v = "null"
				}
				if cut && len(v) > 60 {
					v = v[:57] + "..."
				}
				out[row][c] = strings.NewReplacer("\t", " ", "\n", " ").Replace(v)
				row++
			}
		}
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
