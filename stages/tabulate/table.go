package tabulate

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
)

// metricKey names one value of a metrics table.
type metricKey struct {
	k                      int
	scope, average, metric string
}

// experiment is one evaluate output.
type experiment struct {
	Name  string
	Stage string
	Info  artifacts.MetricsInfo
	value map[metricKey]float64
	// Types are the experiment's type scopes in the order evaluate wrote
	// them (ascending type id).
	Types []string
	// Ks are the cut-offs its attributes were evaluated at; evaluate
	// writes category accuracy at some more (1, 3 and 5), which do not
	// count.
	Ks []int
}

func newExperiment(name, stage string, info artifacts.MetricsInfo, rows []artifacts.MetricRow) *experiment {
	e := &experiment{Name: name, Stage: stage, Info: info, value: map[metricKey]float64{}}
	for _, r := range rows {
		e.value[metricKey{r.K, r.Scope, r.Average, r.Metric}] = r.Value
		if strings.HasPrefix(r.Scope, "type:") && !slices.Contains(e.Types, r.Scope) {
			e.Types = append(e.Types, r.Scope)
		}
		if r.K > 0 && r.Scope != "category" && !slices.Contains(e.Ks, r.K) {
			e.Ks = append(e.Ks, r.K)
		}
	}
	slices.Sort(e.Ks)
	return e
}

func (e *experiment) get(k int, scope, avg, metric string) (float64, bool) {
	v, ok := e.value[metricKey{k, scope, avg, metric}]
	return v, ok
}

// column is one numeric column of the comparison table.
type column struct {
	// Name is the column's name in Arrow and CSV; Header in Markdown.
	Name, Header string
	get          func(e *experiment, k int) (float64, bool)
	// typeScope is the scope of a per-type recall column ("type:NAME").
	typeScope string
}

// categoryK is the k of a category accuracy column, 0 for the others.
func (c column) categoryK() int {
	switch c.Name {
	case "category_top3":
		return 3
	case "category_top5":
		return 5
	}
	return 0
}

// columns returns the table's numeric columns for these experiments (and
// the category columns when reference rows, which have them, are shown).
func columns(exps []*experiment, withReferences bool) []column {
	at := func(scope, avg, metric string) func(*experiment, int) (float64, bool) {
		return func(e *experiment, k int) (float64, bool) { return e.get(k, scope, avg, metric) }
	}
	// Category accuracy is shown at 3 and 5 whatever the table's k, as the
	// published tables give it.
	category := func(k int) func(*experiment, int) (float64, bool) {
		return func(e *experiment, _ int) (float64, bool) { return e.get(k, "category", "", "accuracy") }
	}
	free := func(avg, metric string) func(*experiment, int) (float64, bool) {
		return func(e *experiment, _ int) (float64, bool) { return e.get(0, "all", avg, metric) }
	}
	cols := []column{
		{"recall_micro", "R micro", at("all", "micro", "recall"), ""},
		{"precision_micro", "P micro", at("all", "micro", "precision"), ""},
		{"f1_micro", "F1 micro", at("all", "micro", "f1"), ""},
		{"recall_macro", "R macro", at("all", "macro", "recall"), ""},
		{"precision_macro", "P macro", at("all", "macro", "precision"), ""},
		{"f1_macro", "F1 macro", at("all", "macro", "f1"), ""},
		{"recall_all_pooled", "all pooled", at("all", "pooled", "recall"), ""},
		{"recall_all_global", "all global", at("all", "global", "recall"), ""},
	}
	var types []string
	for _, e := range exps {
		for _, t := range e.Types {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	for _, t := range types {
		name := strings.TrimPrefix(t, "type:")
		cols = append(cols, column{"recall_" + name, name, at(t, "", "recall"), t})
	}
	cols = append(cols,
		column{"category_top3", "cat top-3", category(3), ""},
		column{"category_top5", "cat top-5", category(5), ""},
		column{"map_micro", "mAP micro", free("micro", "map"), ""},
		column{"map_macro", "mAP macro", free("macro", "map"), ""},
		column{"auc_micro", "AUC micro", free("micro", "auc"), ""},
		column{"auc_macro", "AUC macro", free("macro", "auc"), ""},
	)
	// A column no experiment has (no categories, no types) is left out.
	return slices.DeleteFunc(cols, func(c column) bool {
		if withReferences && isCategory(c) {
			return false
		}
		for _, e := range exps {
			if _, ok := c.get(e, 0); ok {
				return false
			}
			for _, k := range e.Ks {
				if _, ok := c.get(e, k); ok {
					return false
				}
			}
		}
		return true
	})
}

// isCategory says whether c is a category accuracy column.
func isCategory(c column) bool { return strings.HasPrefix(c.Name, "category_") }

// reference is one published result on DeepFashion coarse.
type reference struct {
	Name string
	// Top3 and Top5 are "all" attribute recall in percent; Cat3 and Cat5
	// category top-3 and top-5 accuracy, 0 where the paper gives none.
	Top3, Top5, Cat3, Cat5 float64
}

// deepFashionReferences are the published DeepFashion coarse figures:
// FashionNet (Liu et al., "DeepFashion", CVPR 2016); Wang et al.,
// "Attentive Fashion Grammar Network for Fashion Landmark Detection and
// Clothing Category Classification" (CVPR 2018); Liu and Lu, "Deep Fashion
// Analysis with Feature Map Upsampling and Landmark-driven Attention"
// (ECCV workshops 2018).
var deepFashionReferences = []reference{
	{Name: "FashionNet (Liu et al., CVPR 2016)", Top3: 45.52, Top5: 54.61, Cat3: 82.58, Cat5: 90.17},
	{Name: "Wang et al. (CVPR 2018)", Top3: 51.53, Top5: 60.95, Cat3: 90.99, Cat5: 95.78},
	{Name: "Liu and Lu (ECCV workshops 2018)", Top3: 54.69, Top5: 63.74, Cat3: 91.16, Cat5: 96.12},
}

// refValue is a reference's figure for column c at k, as a fraction.
func refValue(r reference, c column, k int) (float64, bool) {
	var v float64
	switch {
	case c.Name == "recall_all_global" && k == 3:
		v = r.Top3
	case c.Name == "recall_all_global" && k == 5:
		v = r.Top5
	case c.Name == "category_top3":
		v = r.Cat3
	case c.Name == "category_top5":
		v = r.Cat5
	}
	// The figures have two decimals: hundredths of a percent over 10000 is
	// the fraction as printed (0.9017, where v/100 gives 0.9017000000000001).
	return math.Round(v*100) / 10000, v != 0
}

// report is everything the outputs are made from.
type report struct {
	K          int
	Exps       []*experiment
	Cols       []column
	References []reference
	Histories  []history
	PerAttr    []perAttribute
}

type history struct {
	Name   string
	Epochs []artifacts.Epoch
}

type perAttribute struct {
	Name, Stage string
	Rows        []artifacts.AttributeMetricRow
}

// rankNote says what "all pooled" and "all global" are; untyped
// attributes have no pooled column to explain.
func (r *report) rankNote() string {
	const global = `"all global" ranks all attributes at once.`
	if slices.ContainsFunc(r.Cols, func(c column) bool { return c.Name == "recall_all_pooled" }) {
		return `"all pooled" ranks within each type and pools the hits; ` + global
	}
	return global
}

// rankedWhole says whether c is the recall of a type whose every
// attribute the top-k list holds (k at least its attribute count), or a
// category accuracy whose top list holds every category, and that count.
func (r *report) rankedWhole(e *experiment, c column) (int, bool) {
	switch {
	case c.Name == "recall_micro" || c.Name == "recall_macro" || c.Name == "recall_all_global" ||
		c.Name == "recall_all_pooled":
		// Every attribute in the top list: each of these is 100 too.
		n := e.Info.Attributes
		if n > 0 && n <= r.K {
			return n, true
		}
		// Pooled over types ranks within each type: every type whole
		// makes it whole.
		if c.Name != "recall_all_pooled" || len(e.Types) == 0 {
			return n, false
		}
		for _, t := range e.Types {
			if m, ok := e.get(0, t, "", "attributes"); !ok || int(m) > r.K {
				return n, false
			}
		}
		return 0, true
	case c.typeScope != "":
		n, ok := e.get(0, c.typeScope, "", "attributes")
		return int(n), ok && int(n) <= r.K
	case c.categoryK() > 0:
		n, ok := e.get(0, "category", "", "categories")
		return int(n), ok && int(n) <= c.categoryK()
	}
	return 0, false
}

// wholeNote explains the cells rankedWhole marks, naming their types and
// category counts; "" when there are none.
func (r *report) wholeNote() string {
	var types, cats []string
	everyAttribute, everyType := 0, false
	for _, c := range r.Cols {
		for _, e := range r.Exps {
			if n, all := r.rankedWhole(e, c); all {
				switch {
				case c.categoryK() > 0:
					cats = append(cats, fmt.Sprintf("%s: %d categories", c.Header, n))
				case c.typeScope != "":
					types = append(types, fmt.Sprintf("%s: %d", c.Header, n))
				case n == 0:
					everyType = true
				default:
					everyAttribute = n
				}
				break
			}
		}
	}
	var notes []string
	if everyAttribute > 0 {
		notes = append(notes, fmt.Sprintf("* An experiment with no more attributes than k = %d (%d) holds them all "+
			"in its top list: its recall is 100 by construction.", r.K, everyAttribute))
	}
	if len(types) > 0 {
		notes = append(notes, fmt.Sprintf("* The type has no more attributes than k = %d (%s), so its top-%d list "+
			"holds them all and its recall is 100 by construction.", r.K, strings.Join(types, ", "), r.K))
	}
	if everyType && everyAttribute == 0 {
		notes = append(notes, fmt.Sprintf("* Every type of the experiment has no more attributes than k = %d, "+
			"so its pooled recall is 100 by construction.", r.K))
	}
	if len(cats) > 0 {
		notes = append(notes, fmt.Sprintf("* The experiment ranks no more categories than the top list holds (%s), "+
			"so that accuracy is 100 by construction.", strings.Join(cats, ", ")))
	}
	return strings.Join(notes, "\n")
}

// categoryNote says what the category columns are, wherever they appear.
const categoryNote = "\"cat top-3\" and \"cat top-5\" are category top-3 and top-5 accuracy, " +
	"whatever the table's k."

// refNote labels the reference rows wherever they appear.
const refNote = "published figures, not computed by stitch; \"all\" top-k recall and category " +
	"top-3 and top-5 accuracy as the papers report them"

// cell formats a fraction as a percentage with two decimals, the way
// the published tables read.
func cell(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	return strconv.FormatFloat(100*v, 'f', 2, 64)
}

// rows returns the table as text cells: a header, then one row per
// experiment and per reference.
func (r *report) rows() [][]string {
	header := []string{"experiment"}
	for _, c := range r.Cols {
		header = append(header, c.Header)
	}
	header = append(header, "macro over")
	out := [][]string{header}
	for _, e := range r.Exps {
		row := []string{e.Name}
		for _, c := range r.Cols {
			text := cell(c.get(e, r.K))
			if _, all := r.rankedWhole(e, c); all {
				text += " *"
			}
			row = append(row, text)
		}
		row = append(row, fmt.Sprintf("%d/%d", e.Info.MacroAttributes, e.Info.Attributes))
		out = append(out, row)
	}
	for _, ref := range r.References {
		row := []string{ref.Name + " †"}
		for _, c := range r.Cols {
			row = append(row, cell(refValue(ref, c, r.K)))
		}
		out = append(out, append(row, ""))
	}
	return out
}

// Markdown renders the table with aligned columns, so it reads in a
// terminal as well as rendered.
func (r *report) Markdown() []byte {
	rows := r.rows()
	// A '|' in a name (an experiment's, a type's) would start a column.
	for _, row := range rows {
		for j, c := range row {
			row[j] = strings.ReplaceAll(c, "|", `\|`)
		}
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for j, c := range row {
			widths[j] = max(widths[j], len([]rune(c)))
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Top-%d metrics in %%; macro averages over attributes with positives.\n\n", r.K)
	line := func(row []string) {
		b.WriteString("|")
		for j, c := range row {
			pad := strings.Repeat(" ", widths[j]-len([]rune(c)))
			if j == 0 {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			} else {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	b.WriteString("|")
	for j, w := range widths {
		if j == 0 {
			fmt.Fprintf(&b, " %s |", strings.Repeat("-", w))
		} else {
			fmt.Fprintf(&b, " %s: |", strings.Repeat("-", w-1))
		}
	}
	b.WriteString("\n")
	for _, row := range rows[1:] {
		line(row)
	}
	b.WriteString("\n" + r.rankNote() + "\n")
	if note := r.wholeNote(); note != "" {
		b.WriteString(note + "\n")
	}
	if slices.ContainsFunc(r.Cols, isCategory) {
		b.WriteString(categoryNote + "\n")
	}
	if len(r.References) > 0 {
		fmt.Fprintf(&b, "† %s.\n", refNote)
	}
	return b.Bytes()
}

// CSV renders the table with fractions, not percentages, for programs.
func (r *report) CSV() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	header := []string{"experiment", "source", "k"}
	for _, c := range r.Cols {
		header = append(header, c.Name)
	}
	header = append(header, "macro_attributes", "attributes")
	records := [][]string{header}
	num := func(v float64, ok bool) string {
		if !ok {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	k := strconv.Itoa(r.K)
	for _, e := range r.Exps {
		rec := []string{e.Name, "stitch", k}
		for _, c := range r.Cols {
			rec = append(rec, num(c.get(e, r.K)))
		}
		records = append(records, append(rec, strconv.Itoa(e.Info.MacroAttributes), strconv.Itoa(e.Info.Attributes)))
	}
	for _, ref := range r.References {
		rec := []string{ref.Name, "published", k}
		for _, c := range r.Cols {
			rec = append(rec, num(refValue(ref, c, r.K)))
		}
		records = append(records, append(rec, "", ""))
	}
	if err := w.WriteAll(records); err != nil {
		return nil, fmt.Errorf("write csv: %w", err)
	}
	return b.Bytes(), nil
}

// Arrow returns the table's schema and one record (the caller releases it).
func (r *report) Arrow() (*arrow.Schema, arrow.RecordBatch) {
	fields := []arrow.Field{
		{Name: "experiment", Type: arrow.BinaryTypes.String},
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "k", Type: arrow.PrimitiveTypes.Int32},
	}
	for _, c := range r.Cols {
		fields = append(fields, arrow.Field{Name: c.Name, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	fields = append(fields,
		arrow.Field{Name: "macro_attributes", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "attributes", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "note", Type: arrow.BinaryTypes.String})
	md := arrow.NewMetadata([]string{artifacts.MetaKind, artifacts.MetaTable}, []string{artifacts.KindTable, "comparison"})
	schema := arrow.NewSchema(fields, &md)

	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	n := len(r.Cols)
	appendRow := func(name, source string, get func(column) (float64, bool), macro, attrs int, note string) {
		b.Field(0).(*array.StringBuilder).Append(name)
		b.Field(1).(*array.StringBuilder).Append(source)
		b.Field(2).(*array.Int32Builder).Append(int32(r.K))
		for j, c := range r.Cols {
			fb := b.Field(3 + j).(*array.Float64Builder)
			if v, ok := get(c); ok {
				fb.Append(v)
			} else {
				fb.AppendNull()
			}
		}
		for j, v := range []int{macro, attrs} {
			ib := b.Field(3 + n + j).(*array.Int32Builder)
			if source == "stitch" {
				ib.Append(int32(v))
			} else {
				ib.AppendNull()
			}
		}
		b.Field(5 + n).(*array.StringBuilder).Append(note)
	}
	for _, e := range r.Exps {
		appendRow(e.Name, "stitch", func(c column) (float64, bool) { return c.get(e, r.K) },
			e.Info.MacroAttributes, e.Info.Attributes,
			fmt.Sprintf("stage %s; macro over %d of %d attributes with positives",
				e.Stage, e.Info.MacroAttributes, e.Info.Attributes))
	}
	for _, ref := range r.References {
		appendRow(ref.Name, "published", func(c column) (float64, bool) { return refValue(ref, c, r.K) }, 0, 0, refNote)
	}
	return schema, b.NewRecordBatch()
}
