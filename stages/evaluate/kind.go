package evaluate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"stitch/artifacts"
	"stitch/metrics"
	"stitch/pipeline"
)

// Params are the parameters of an evaluate stage.
type Params struct {
	// K lists the top-k cut-offs.
	K []int `yaml:"k"`
}

// MaxK bounds a cut-off: far above any attribute count (a k above the
// number of attributes takes them all), and within the int32 the metrics
// table stores k in.
const MaxK = 100_000

// NewParams returns the defaults: k in 3, 5 and 20.
func NewParams() *Params { return &Params{K: []int{3, 5, 20}} }

// Validate checks the parameters.
func (p *Params) Validate() error {
	if len(p.K) == 0 {
		return pipeline.ParamErrorf("k", "k: want at least one cut-off")
	}
	seen := map[int]bool{}
	for _, k := range p.K {
		if k < 1 || k > MaxK {
			return pipeline.ParamErrorf("k", "k %d: want 1 to %d", k, MaxK)
		}
		if seen[k] {
			return pipeline.ParamErrorf("k", "k %d: listed twice", k)
		}
		seen[k] = true
	}
	return nil
}

type kind struct{}

// New returns the evaluate stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string { return "evaluate" }

// Version 2: category accuracy at 1, 3 and 5 besides k, and no per-type
// rows for untyped attributes; 1: metrics as defined in package metrics'
// doc.go.
func (kind) Version() string { return "4" }

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "predictions", Kind: artifacts.KindPredictions, Doc: "scores per image and attribute"},
		// No declared kind: a samples table and an images table both work.
		{Name: "samples", Doc: "the labels of the predicted images"},
		{Name: "attributes", Kind: artifacts.KindAttributes, Doc: "attribute names and types"},
		{Name: "categories", Kind: artifacts.KindCategories, Optional: true,
			Doc: "category names, for category accuracy"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "metrics", Kind: artifacts.KindMetrics, Doc: "every metric in long format (k, scope, average, metric, value)"},
		{Name: "per_attribute", Kind: artifacts.KindTable, Doc: "counts and metrics per attribute and k"},
	}
}

func (kind) NewParams() any { return NewParams() }

// Run evaluates one predictions table. Its errors do not name the stage:
// the engine's report of a failed stage does.
func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	store := run.Store()
	predID, ok1 := run.Input("predictions")
	samplesID, ok2 := run.Input("samples")
	attrsID, ok3 := run.Input("attributes")
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("inputs predictions, samples and attributes are required")
	}
	pred, err := store.GetPredictions(predID)
	if err != nil {
		return fmt.Errorf("read predictions: %w", err)
	}
	samples, err := store.GetSamples(samplesID)
	if err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	attrs, err := store.GetAttributes(attrsID)
	if err != nil {
		return fmt.Errorf("read attributes: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	if samples.Len() == 0 {
		// Every metric would be 0 of 0: a table of zeros that reads like a
		// result.
		return fmt.Errorf("no images to evaluate: samples %s has no rows (an empty partition?)", samplesID.Short())
	}
	if err := matchAttributes(pred.AttributeNames, attrs); err != nil {
		return err
	}
	data, err := align(pred, samples, attrs)
	if err != nil {
		return err
	}
	if data.extra > 0 {
		run.Logger().Warn("predictions of images not in the samples are left out",
			"images", data.extra)
	}
	if err := addCategories(run, pred, samples, &data); err != nil {
		return err
	}
	res, err := metrics.Evaluate(data.Data, metrics.Options{Ks: p.K, Workers: run.Settings().Threads})
	if err != nil {
		return fmt.Errorf("compute metrics: %w", err)
	}
	if data.NumCategories > 0 {
		// Category accuracy is reported at 1, 3 and 5 whatever k says, so
		// that tabulate's category columns (top-3, top-5) are always there.
		res.Category, err = metrics.CategoryTopK(data.CategoryScores, data.NumCategories, data.Categories,
			categoryKs(p.K))
		if err != nil {
			return fmt.Errorf("compute category accuracy: %w", err)
		}
	}

	info := artifacts.MetricsInfo{Images: res.NumImages, Attributes: res.NumAttributes,
		MacroAttributes: res.TopK[0].MacroAttributes}
	metricsID, err := store.PutMetrics(info, Rows(res, attrs))
	if err != nil {
		return fmt.Errorf("store metrics: %w", err)
	}
	perAttrID, err := store.PutAttributeMetrics(AttributeRows(res, attrs))
	if err != nil {
		return fmt.Errorf("store per-attribute metrics: %w", err)
	}
	run.SetOutput("metrics", metricsID)
	run.SetOutput("per_attribute", perAttrID)
	logArgs := []any{"images", res.NumImages, "attributes", res.NumAttributes,
		"macro_attributes", info.MacroAttributes}
	for _, c := range res.Category {
		logArgs = append(logArgs, fmt.Sprintf("category_top%d", c.K), c.Value)
	}
	run.Logger().Info("evaluated", logArgs...)
	return nil
}

// addCategories fills data's category fields when the predictions carry
// category scores and the samples have categories, after checking the
// predictions' categories against the categories input when one is
// wired; otherwise it says in the log why there is no category accuracy.
func addCategories(run pipeline.Run, pred *artifacts.Predictions, samples *artifacts.Samples,
	data *aligned) error {
	id, wired := run.Input("categories")
	if pred.NumCategories == 0 {
		if wired {
			run.Logger().Info("the predictions hold no category scores (a model without a category head, or a baseline " +
				"without categories); category accuracy skipped")
		}
		return nil
	}
	if !slices.ContainsFunc(samples.Category, func(c int32) bool { return c > 0 }) {
		run.Logger().Info("the samples have no categories; category accuracy skipped")
		return nil
	}
	if wired {
		table, err := run.Store().GetCategories(id)
		if err != nil {
			return fmt.Errorf("read categories: %w", err)
		}
		if err := matchCategories(pred.Categories, table); err != nil {
			return err
		}
	}
	return alignCategories(pred, samples, data)
}

// matchAttributes checks the attribute names the predictions carry (nil:
// none, as a baseline's) against the attributes table, column by column:
// scores of a model trained on another attribute list or order would
// otherwise be scored against the wrong labels without a sign.
func matchAttributes(names []string, attrs []artifacts.Attribute) error {
	if names == nil || len(names) != len(attrs) {
		return nil // a count mismatch is align's error
	}
	first, differ := -1, 0
	for i, a := range attrs {
		if a.Index != i {
			return nil // align's error
		}
		if names[i] != a.Name {
			differ++
			if first < 0 {
				first = i
			}
		}
	}
	if differ == 0 {
		return nil
	}
	a := attrs[first]
	return fmt.Errorf("the model's attributes do not match the attributes table at %d of %d columns, "+
		"first at column %d: %q in the model, %q in the table (was it trained on another attribute list or order?)",
		differ, len(attrs), a.Index, names[a.Index], a.Name)
}

// matchCategories checks that the predictions score exactly the
// categories of the table: the same ids with the same names, in any
// order.
func matchCategories(pred, table []artifacts.Category) error {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("the model's categories (%d) do not match the categories table (%d): "+format,
			append([]any{len(pred), len(table)}, args...)...)
	}
	names := make(map[int]string, len(table))
	for _, c := range table {
		names[c.ID] = c.Name
	}
	for _, c := range pred {
		name, ok := names[c.ID]
		if !ok {
			return mismatch("id %d (%q) is not in the table", c.ID, c.Name)
		}
		if name != c.Name {
			return mismatch("id %d is %q in the model, %q in the table", c.ID, c.Name, name)
		}
		delete(names, c.ID)
	}
	for _, c := range table {
		if _, left := names[c.ID]; left {
			return mismatch("id %d (%q) has no score in the predictions", c.ID, c.Name)
		}
	}
	return nil
}

// alignCategories places the predictions' category scores by category
// id, in sample order, as package metrics reads them: the score of id c
// in column c-1, ids the model does not score at -Inf. A sample whose
// category has no score is an error.
func alignCategories(pred *artifacts.Predictions, samples *artifacts.Samples, data *aligned) error {
	width := 0
	for _, c := range pred.Categories {
		width = max(width, c.ID)
	}
	scored := make([]bool, width+1)
	for _, c := range pred.Categories {
		scored[c.ID] = true
	}
	for i, c := range samples.Category {
		if c < 0 || int(c) > width || (c > 0 && !scored[c]) {
			return fmt.Errorf("align categories: sample %q has category %d, which the predictions do not score",
				samples.Image[i], c)
		}
	}

	scores := make([]float32, samples.Len()*width)
	for i := range scores {
		scores[i] = float32(math.Inf(-1))
	}
	n := pred.NumCategories
	for i := range samples.Len() {
		j := i
		if data.rows != nil {
			j = data.rows[i]
		}
		src := pred.CategoryScores[j*n : (j+1)*n]
		for c, cat := range pred.Categories {
			scores[i*width+cat.ID-1] = src[c]
		}
	}
	data.NumCategories, data.CategoryScores, data.Categories = width, scores, samples.Category
	return nil
}

// CategoryKs are the cut-offs category accuracy is always reported at, as
// the published DeepFashion tables give it (top-3, top-5) and as a
// classifier's accuracy is usually read (top-1).
var CategoryKs = []int{1, 3, 5}

// categoryKs returns CategoryKs and ks, sorted, each once.
func categoryKs(ks []int) []int {
	return slices.Compact(slices.Sorted(slices.Values(slices.Concat(CategoryKs, ks))))
}

// Rows turns a result into the long-format rows of a metrics table, in a
// fixed order: per k, micro, macro, pooled, global, the types by id, the
// category; then the threshold-free rows with k = 0, the number of
// categories (k = 0, scope category, metric "categories") and each
// type's number of attributes (k = 0, metric "attributes"). A k that only the
// category accuracy has (CategoryKs) has only its category row.
func Rows(res *metrics.Result, attrs []artifacts.Attribute) []artifacts.MetricRow {
	var rows []artifacts.MetricRow
	add := func(k int, scope, avg, metric string, v float64, note string) {
		rows = append(rows, artifacts.MetricRow{K: k, Scope: scope, Average: avg, Metric: metric, Value: v, Note: note})
	}
	typeNames := map[int]string{}
	for _, a := range attrs {
		typeNames[a.Type] = a.TypeName
	}
	ks := make([]int, 0, len(res.TopK)+len(res.Category))
	for _, t := range res.TopK {
		ks = append(ks, t.K)
	}
	for _, c := range res.Category {
		ks = append(ks, c.K)
	}
	for _, k := range slices.Compact(slices.Sorted(slices.Values(ks))) {
		if i := slices.IndexFunc(res.TopK, func(t metrics.TopK) bool { return t.K == k }); i >= 0 {
			rows = append(rows, topKRows(&res.TopK[i], typeNames)...)
		}
		for _, c := range res.Category {
			if c.K == k {
				add(k, "category", "", "accuracy", c.Value,
					fmt.Sprintf("%d of %d images with a category", c.Hits, c.Images))
			}
		}
	}
	r := res.Ranking
	pooled := "all known (image, attribute) pairs ranked as one list"
	add(0, "all", "micro", "map", r.MicroAP, pooled)
	add(0, "all", "micro", "auc", r.MicroAUC, pooled)
	add(0, "all", "macro", "map", r.MacroAP,
		fmt.Sprintf("macro over %d of %d attributes with positives", r.MacroAPAttributes, res.NumAttributes))
	add(0, "all", "macro", "auc", r.MacroAUC,
		fmt.Sprintf("macro over %d of %d attributes with positives and negatives", r.MacroAUCAttributes, res.NumAttributes))
	// How many categories are ranked, for readers of the accuracy: at k
	// at least that, it is 1 by construction.
	if len(res.Category) > 0 {
		n := res.Category[0].Categories
		add(0, "category", "", "categories", float64(n),
			fmt.Sprintf("categories ranked: the top-k accuracy at k >= %d is 1 by construction", n))
	}
	// How many attributes each type has, for readers of its recall: at k
	// at least that, the top list holds them all and the recall is 1.
	if len(res.TopK) > 0 {
		for _, tr := range res.TopK[0].Types {
			add(0, TypeScope(tr.Type, typeNames[tr.Type]), "", "attributes", float64(tr.Attributes),
				fmt.Sprintf("attributes of type %d: its recall at k >= %d ranks them all", tr.Type, tr.Attributes))
		}
	}
	return rows
}

// topKRows returns the attribute rows of one cut-off: micro, macro,
// pooled, global, then the types by id.
func topKRows(t *metrics.TopK, typeNames map[int]string) []artifacts.MetricRow {
	var rows []artifacts.MetricRow
	add := func(k int, scope, avg, metric string, v float64, note string) {
		rows = append(rows, artifacts.MetricRow{K: k, Scope: scope, Average: avg, Metric: metric, Value: v, Note: note})
	}
	k := t.K
	micro := fmt.Sprintf("ΣTP/ΣGT and ΣTP/ΣPRED over %d attributes", len(t.Counts))
	add(k, "all", "micro", "recall", t.Micro.Recall, micro)
	add(k, "all", "micro", "precision", t.Micro.Precision, micro)
	add(k, "all", "micro", "f1", t.Micro.F1, micro)
	add(k, "all", "macro", "recall", t.Macro.Recall, t.MacroNote())
	add(k, "all", "macro", "precision", t.Macro.Precision, t.MacroNote())
	add(k, "all", "macro", "f1", t.Macro.F1, t.MacroNote())
	if t.Types != nil {
		add(k, "all", "pooled", "recall", t.Pooled.Value,
			fmt.Sprintf("per-type top %d, pooled: %d hits of %d positives", k, t.Pooled.Hits, t.Pooled.Positives))
	}
	add(k, "all", "global", "recall", t.Global.Value,
		fmt.Sprintf("top %d over all attributes: %d hits of %d positives", k, t.Global.Hits, t.Global.Positives))
	for _, tr := range t.Types {
		add(k, TypeScope(tr.Type, typeNames[tr.Type]), "", "recall", tr.Value,
			fmt.Sprintf("type %d, top %d of its %d attributes: %d hits of %d positives",
				tr.Type, tr.K, tr.Attributes, tr.Hits, tr.Positives))
	}
	return rows
}

// TypeScope is the scope of a type's rows: "type:NAME", or "type:ID" when
// the type has no name.
func TypeScope(id int, name string) string {
	if name == "" {
		return "type:" + strconv.Itoa(id)
	}
	return "type:" + name
}

// AttributeRows turns a result into the rows of a per-attribute table,
// ordered by k, then attribute index.
func AttributeRows(res *metrics.Result, attrs []artifacts.Attribute) []artifacts.AttributeMetricRow {
	names := make([]string, len(attrs))
	types := make([]int, len(attrs))
	for i, a := range attrs {
		names[i], types[i] = a.Name, a.Type
	}
	var rows []artifacts.AttributeMetricRow
	for ti := range res.TopK {
		for _, r := range res.PerAttribute(&res.TopK[ti], names, types) {
			rows = append(rows, artifacts.AttributeMetricRow{
				K: res.TopK[ti].K, Index: r.Index, Name: r.Name, Type: r.Type, TypeName: attrs[r.Index].TypeName,
				Positives: r.Positives, Predicted: r.Predicted, TP: r.TP, FP: r.FP,
				Recall: r.Recall, Precision: r.Precision, F1: r.F1,
				AP: r.AP, AUC: r.AUC, HasAP: r.HasAP, HasAUC: r.HasAUC,
			})
		}
	}
	return rows
}

// aligned is the metrics input built from predictions and samples.
type aligned struct {
	metrics.Data
	// extra counts predictions whose image is not among the samples.
	extra int
	// rows[i] is the prediction row of sample i; nil when the rows match
	// one to one.
	rows []int
}

// align joins predictions to samples by image key and returns the dense
// arrays in sample order. See the package contract for the rules.
func align(pred *artifacts.Predictions, samples *artifacts.Samples, attrs []artifacts.Attribute) (aligned, error) {
	m := samples.NumAttributes
	if pred.NumAttributes != m || len(attrs) != m {
		return aligned{}, fmt.Errorf("align: predictions score %d attributes, samples label %d, attributes table has %d",
			pred.NumAttributes, m, len(attrs))
	}
	types := make([]int, m)
	for i, a := range attrs {
		if a.Index != i {
			return aligned{}, fmt.Errorf("align: attributes table row %d has index %d", i, a.Index)
		}
		types[i] = a.Type
	}
	// Untyped attributes (a CSV without an attributes table) get no
	// per-type recall: the one type would only repeat the global recall.
	if !slices.ContainsFunc(types, func(t int) bool { return t != 0 }) {
		types = nil
	}
	out := aligned{Data: metrics.Data{NumAttributes: m, Labels: samples.Labels, Types: types}}
	if slices.Equal(pred.Image, samples.Image) {
		out.Scores = pred.Scores
		return out, nil
	}

	// Keys differ in set or order: look each sample up. A duplicated key
	// could pair any of its rows with any other, so it is refused.
	row := make(map[string]int, len(pred.Image))
	for i, img := range pred.Image {
		if _, dup := row[img]; dup {
			return aligned{}, fmt.Errorf("align: image %q appears twice in the predictions, which are not in sample order", img)
		}
		row[img] = i
	}
	out.Scores = make([]float32, samples.Len()*m)
	out.rows = make([]int, samples.Len())
	seen := make(map[string]bool, samples.Len())
	var missing []string
	for i, img := range samples.Image {
		if seen[img] {
			return aligned{}, fmt.Errorf("align: image %q appears twice in the samples, "+
				"whose order the predictions do not follow", img)
		}
		seen[img] = true
		j, ok := row[img]
		if !ok {
			missing = append(missing, img)
			continue
		}
		copy(out.Scores[i*m:(i+1)*m], pred.Scores[j*m:(j+1)*m])
		out.rows[i] = j
	}
	if len(missing) > 0 {
		return aligned{}, fmt.Errorf("align: %d of %d samples have no prediction (first: %q)",
			len(missing), samples.Len(), missing[0])
	}
	out.extra = len(pred.Image) - samples.Len()
	return out, nil
}
