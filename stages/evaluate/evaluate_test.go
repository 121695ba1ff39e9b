package evaluate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
)

// The 4 x 6 example of package metrics' tests: its numbers are worked out
// there; here they only need to come through the stage.
var (
	images = []string{"img0.jpg", "img1.jpg", "img2.jpg", "img3.jpg"}
	scores = [][]float32{
		{.9, .8, .1, .7, .2, .3},
		{.5, .5, .4, .1, .6, .2},
		{.1, .2, .3, .4, .5, .6},
		{.3, .9, .2, .6, .1, .8},
	}
	labels = [][]int8{
		{1, -1, -1, 1, -1, 0},
		{-1, 1, -1, -1, -1, -1},
		{-1, -1, -1, -1, 1, 1},
		{0, 1, -1, -1, -1, 0},
	}
	attrs = []artifacts.Attribute{
		{Index: 0, Name: "floral", Type: 1, TypeName: "texture"},
		{Index: 1, Name: "striped", Type: 1, TypeName: "texture"},
		{Index: 2, Name: "dotted", Type: 1, TypeName: "texture"},
		{Index: 3, Name: "denim", Type: 2, TypeName: "fabric"},
		{Index: 4, Name: "lace", Type: 2, TypeName: "fabric"},
		{Index: 5, Name: "maxi", Type: 3, TypeName: "shape"},
	}
)

func samplesOf(order []int) *artifacts.Samples {
	s := &artifacts.Samples{NumAttributes: 6}
	for _, i := range order {
		s.Image = append(s.Image, images[i])
		s.Partition = append(s.Partition, "test")
		s.Category = append(s.Category, 0)
		s.BBox = append(s.BBox, [4]int32{})
		s.HasBBox = append(s.HasBBox, false)
		s.Landmarks = append(s.Landmarks, nil)
		s.Labels = append(s.Labels, labels[i]...)
	}
	return s
}

func predictionsOf(order []int) *artifacts.Predictions {
	p := &artifacts.Predictions{NumAttributes: 6}
	for _, i := range order {
		p.Image = append(p.Image, images[i])
		p.Scores = append(p.Scores, scores[i]...)
	}
	return p
}

// runStage runs evaluate on the given rows and returns its metrics rows.
func runStage(t *testing.T, samples *artifacts.Samples, pred *artifacts.Predictions, k []int) ([]artifacts.MetricRow, []artifacts.AttributeMetricRow, error) {
	t.Helper()
	return runStageWith(t, samples, pred, k, nil)
}

// runStageWith is runStage with a categories input holding cats, unless
// cats is nil.
func runStageWith(t *testing.T, samples *artifacts.Samples, pred *artifacts.Predictions, k []int,
	cats []artifacts.Category) ([]artifacts.MetricRow, []artifacts.AttributeMetricRow, error) {
	t.Helper()
	return runStageAttrs(t, samples, pred, k, cats, attrs)
}

// runStageAttrs is runStageWith with attributes table attributes.
func runStageAttrs(t *testing.T, samples *artifacts.Samples, pred *artifacts.Predictions, k []int,
	cats []artifacts.Category, attributes []artifacts.Attribute,
) ([]artifacts.MetricRow, []artifacts.AttributeMetricRow, error) {
	t.Helper()
	run := pipelinetest.NewRun(t, "evaluate-test")
	if cats != nil {
		cid, err := run.St.PutCategories(cats)
		if err != nil {
			t.Fatal(err)
		}
		run.Bind("categories", cid)
	}
	sid, err := run.St.PutSamples(samples)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := run.St.PutPredictions(pred)
	if err != nil {
		t.Fatal(err)
	}
	aid, err := run.St.PutAttributes(attributes)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("samples", sid)
	run.Bind("predictions", pid)
	run.Bind("attributes", aid)
	if err := New().Run(t.Context(), run, &Params{K: k}); err != nil {
		return nil, nil, err
	}
	mid, err := run.Output("metrics")
	if err != nil {
		t.Fatal(err)
	}
	info, rows, err := run.St.GetMetrics(mid)
	if err != nil {
		t.Fatal(err)
	}
	if info != (artifacts.MetricsInfo{Images: samples.Len(), Attributes: 6, MacroAttributes: 5}) {
		t.Errorf("metrics info %+v", info)
	}
	paid, err := run.Output("per_attribute")
	if err != nil {
		t.Fatal(err)
	}
	perAttr, err := run.St.GetAttributeMetrics(paid)
	if err != nil {
		t.Fatal(err)
	}
	return rows, perAttr, nil
}

func value(rows []artifacts.MetricRow, k int, scope, avg, metric string) (float64, string, bool) {
	for _, r := range rows {
		if r.K == k && r.Scope == scope && r.Average == avg && r.Metric == metric {
			return r.Value, r.Note, true
		}
	}
	return 0, "", false
}

func TestEvaluateStage(t *testing.T) {
	// Predictions in another order than the samples: joined by key.
	rows, perAttr, err := runStage(t, samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{2, 0, 3, 1}), []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	approx := cmpopts.EquateApprox(0, 1e-12)
	checks := []struct {
		k                  int
		scope, avg, metric string
		want               float64
	}{
		{1, "all", "micro", "recall", .5},
		{1, "all", "micro", "precision", .75},
		{2, "all", "micro", "f1", 8.0 / 13},
		{3, "all", "macro", "f1", 109.0 / 150},
		{1, "all", "pooled", "recall", 5.0 / 6},
		{1, "all", "global", "recall", .5},
		{1, "type:texture", "", "recall", 2.0 / 3},
		{0, "all", "micro", "auc", 8.0 / 9},
		{0, "all", "macro", "map", 13.0 / 15},
		{0, "type:texture", "", "attributes", 3},
	}
	for _, c := range checks {
		got, _, ok := value(rows, c.k, c.scope, c.avg, c.metric)
		if !ok || !cmp.Equal(got, c.want, approx) {
			t.Errorf("k=%d %s %s %s = %v (found %v), want %v", c.k, c.scope, c.avg, c.metric, got, ok, c.want)
		}
	}
	if _, note, _ := value(rows, 2, "all", "macro", "recall"); note != "macro over 5 of 6 attributes with positives" {
		t.Errorf("macro note %q", note)
	}
	// 3 ks x 6 attributes; lace (a4) at k=2 as in the metrics tests.
	if len(perAttr) != 18 {
		t.Fatalf("%d per-attribute rows, want 18", len(perAttr))
	}
	want := artifacts.AttributeMetricRow{K: 2, Index: 4, Name: "lace", Type: 2, TypeName: "fabric",
		Positives: 1, Predicted: 2, TP: 1, FP: 1, Recall: 1, Precision: .5, F1: 2.0 / 3,
		AP: .5, AUC: 2.0 / 3, HasAP: true, HasAUC: true}
	if diff := cmp.Diff(want, perAttr[6+4], approx); diff != "" {
		t.Errorf("lace at k=2 (-want +got):\n%s", diff)
	}
	if perAttr[2].HasAP || perAttr[2].HasAUC {
		t.Errorf("dotted has no positives but AP/AUC defined: %+v", perAttr[2])
	}
}

func TestEvaluateAlignment(t *testing.T) {
	// Same rows, same order, duplicated (a resampled set): accepted as is.
	dup := []int{0, 1, 1, 2, 3}
	rows, _, err := runStage(t, samplesOf(dup), predictionsOf(dup), []int{1})
	if err != nil {
		t.Fatalf("duplicates in matching order: %v", err)
	}
	// img1's top 1 is a4 (-1): counted twice now.
	if got, _, _ := value(rows, 1, "all", "micro", "precision"); got != 3.0/5 {
		t.Errorf("precision with img1 twice = %v, want 3/5", got)
	}

	cases := []struct {
		name           string
		samples, preds []int
		want           string
	}{
		{"missing", []int{0, 1, 2, 3}, []int{3, 1, 0}, `1 of 4 samples have no prediction (first: "img2.jpg")`},
		{"duplicate out of order", []int{0, 1, 1, 2}, []int{2, 1, 0}, `image "img1.jpg" appears twice in the samples`},
		{"duplicate prediction", []int{0, 1, 2}, []int{2, 1, 1, 0}, `image "img1.jpg" appears twice in the predictions`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runStage(t, samplesOf(c.samples), predictionsOf(c.preds), []int{1})
			// The engine names the stage; the stage's own error must not repeat it.
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "evaluate-test") {
				t.Errorf("got %v, want an error saying %q and not naming the stage", err, c.want)
			}
		})
	}
	// A prediction of an image not in the samples (img3) is left out.
	rows, _, err = runStage(t, samplesOf([]int{0, 1, 2}), predictionsOf([]int{3, 2, 1, 0}), []int{1})
	if err != nil {
		t.Fatalf("extra prediction: %v", err)
	}
	// Tops img0 a0+, img1 a4-, img2 a5+: precision 2/3.
	if got, _, _ := value(rows, 1, "all", "micro", "precision"); got != 2.0/3 {
		t.Errorf("precision without img3 = %v, want 2/3", got)
	}
}

func TestParams(t *testing.T) {
	if err := NewParams().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, k := range [][]int{nil, {0}, {3, 3}, {MaxK + 1}, {4294967299}} {
		err := (&Params{K: k}).Validate()
		if pe := (*pipeline.ParamError)(nil); !errors.As(err, &pe) || pe.Key != "k" {
			t.Errorf("k %v: Validate() = %v, want a *pipeline.ParamError about k", k, err)
		}
	}
}

// The categories of the category tests: the table in id order, and the
// model's columns in another order.
var (
	categoryTable = []artifacts.Category{{ID: 1, Name: "Tee", BodyType: 1}, {ID: 2, Name: "Skirt", BodyType: 2},
		{ID: 3, Name: "Dress", BodyType: 3}}
	modelCategories = []artifacts.Category{{ID: 3, Name: "Dress"}, {ID: 1, Name: "Tee"}, {ID: 2, Name: "Skirt"}}
	// categoryScores are each image's scores in modelCategories' order.
	categoryScores = [][]float32{{.2, .5, .3}, {.3, .3, .4}, {.1, .1, .8}, {.6, .1, .3}}
	// imageCategories: img2 has none.
	imageCategories = []int32{1, 3, 0, 2}
)

// addSampleCategories sets the categories of samples' images.
func addSampleCategories(samples *artifacts.Samples) {
	for r, img := range samples.Image {
		samples.Category[r] = imageCategories[slices.Index(images, img)]
	}
}

// addCategoryScores adds the category scores of pred's images.
func addCategoryScores(pred *artifacts.Predictions) {
	pred.NumCategories, pred.Categories = len(modelCategories), modelCategories
	for _, img := range pred.Image {
		pred.CategoryScores = append(pred.CategoryScores, categoryScores[slices.Index(images, img)]...)
	}
}

// withCategories adds both.
func withCategories(samples *artifacts.Samples, pred *artifacts.Predictions) {
	addSampleCategories(samples)
	addCategoryScores(pred)
}

func TestEvaluateCategories(t *testing.T) {
	// By id, the true category ranks first on img0 (Tee .5), third on img1
	// (Dress .3 after Skirt .4 and Tee .3, which ties and has the lower
	// id) and second on img3 (Skirt .3 after Dress .6); img2 has none.
	// Taken by position instead, top-2 accuracy would be 1/3.
	want := map[int]float64{1: 1.0 / 3, 2: 2.0 / 3, 3: 1}
	for _, tc := range []struct {
		name  string
		cats  []artifacts.Category
		order []int
	}{
		{"with the categories table", categoryTable, []int{2, 0, 3, 1}},
		{"without it", nil, []int{2, 0, 3, 1}},
		{"in sample order", categoryTable, []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples, pred := samplesOf([]int{0, 1, 2, 3}), predictionsOf(tc.order)
			withCategories(samples, pred)
			rows, _, err := runStageWith(t, samples, pred, []int{1, 2, 3}, tc.cats)
			if err != nil {
				t.Fatal(err)
			}
			for k, acc := range want {
				got, note, ok := value(rows, k, "category", "", "accuracy")
				if !ok || !cmp.Equal(got, acc, cmpopts.EquateApprox(0, 1e-12)) {
					t.Errorf("category top-%d accuracy = %v (found %v), want %v", k, got, ok, acc)
				}
				if ok && !strings.HasSuffix(note, " of 3 images with a category") {
					t.Errorf("category top-%d note %q", k, note)
				}
			}
		})
	}
}

func TestEvaluateCategoriesSkipped(t *testing.T) {
	hasCategoryRows := func(rows []artifacts.MetricRow) bool {
		return slices.ContainsFunc(rows, func(r artifacts.MetricRow) bool { return r.Scope == "category" })
	}
	// Predictions without category scores (old ones, or an attribute-only
	// model) read and evaluate as before, categories input or not.
	samples, pred := samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{0, 1, 2, 3})
	addSampleCategories(samples)
	rows, _, err := runStageWith(t, samples, pred, []int{1}, categoryTable)
	if err != nil || hasCategoryRows(rows) {
		t.Errorf("predictions without category scores: %v, category rows %v", err, hasCategoryRows(rows))
	}
	// Samples without categories give no category rows either.
	samples, pred = samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{0, 1, 2, 3})
	addCategoryScores(pred)
	rows, _, err = runStageWith(t, samples, pred, []int{1}, categoryTable)
	if err != nil || hasCategoryRows(rows) {
		t.Errorf("samples without categories: %v, category rows %v", err, hasCategoryRows(rows))
	}
}

func TestEvaluateCategoryMismatch(t *testing.T) {
	renamed := slices.Clone(categoryTable)
	renamed[2].Name = "Gown"
	extra := append(slices.Clone(categoryTable), artifacts.Category{ID: 4, Name: "Coat"})
	for _, tc := range []struct {
		name    string
		table   []artifacts.Category
		edit    func(*artifacts.Samples, *artifacts.Predictions)
		message string
	}{
		{"renamed", renamed, nil, `id 3 is "Dress" in the model, "Gown" in the table`},
		{"table has more", extra, nil, `id 4 ("Coat") has no score in the predictions`},
		{"model has more", categoryTable[:2], nil, `id 3 ("Dress") is not in the table`},
		{"sample category not scored", nil, func(s *artifacts.Samples, _ *artifacts.Predictions) {
			s.Category[2] = 4
		}, `sample "img2.jpg" has category 4, which the predictions do not score`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples, pred := samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{0, 1, 2, 3})
			withCategories(samples, pred)
			if tc.edit != nil {
				tc.edit(samples, pred)
			}
			_, _, err := runStageWith(t, samples, pred, []int{1}, tc.table)
			if err == nil || !strings.Contains(err.Error(), tc.message) ||
				strings.Contains(err.Error(), "evaluate-test") {
				t.Errorf("got %v, want an error saying %s and not naming the stage", err, tc.message)
			}
		})
	}
}

// TestEvaluateCategoryKs checks that category accuracy is reported at 1,
// 3 and 5 besides k, whatever k is, while the attribute rows keep to k.
func TestEvaluateCategoryKs(t *testing.T) {
	// Accuracies of the worked example of TestEvaluateCategories.
	accuracy := map[int]float64{1: 1.0 / 3, 2: 2.0 / 3, 3: 1, 5: 1, 20: 1}
	for _, tc := range []struct {
		k, categoryKs []int
	}{
		{[]int{5}, []int{1, 3, 5}},
		{[]int{1}, []int{1, 3, 5}},
		{[]int{3, 5, 20}, []int{1, 3, 5, 20}},
		{[]int{2}, []int{1, 2, 3, 5}},
	} {
		samples, pred := samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{0, 1, 2, 3})
		withCategories(samples, pred)
		rows, perAttr, err := runStageWith(t, samples, pred, tc.k, categoryTable)
		if err != nil {
			t.Fatalf("k %v: %v", tc.k, err)
		}
		var gotCategory, gotAttr []int
		sawCount := false
		for _, r := range rows {
			switch {
			case r.Scope == "category" && r.Metric == "categories":
				sawCount = true
				if r.K != 0 || r.Value != 3 {
					t.Errorf("k %v: categories row at k %d says %v, want 3 at k 0", tc.k, r.K, r.Value)
				}
			case r.Scope == "category":
				gotCategory = append(gotCategory, r.K)
				if want := accuracy[r.K]; !cmp.Equal(r.Value, want, cmpopts.EquateApprox(0, 1e-12)) {
					t.Errorf("k %v: category top-%d accuracy %v, want %v", tc.k, r.K, r.Value, want)
				}
			case r.Average == "micro" && r.Metric == "recall" && r.K > 0:
				gotAttr = append(gotAttr, r.K)
			}
		}
		if !sawCount {
			t.Errorf("k %v: no row of the number of categories", tc.k)
		}
		if diff := cmp.Diff(tc.categoryKs, gotCategory); diff != "" {
			t.Errorf("k %v: category rows at (-want +got):\n%s", tc.k, diff)
		}
		if diff := cmp.Diff(tc.k, gotAttr); diff != "" {
			t.Errorf("k %v: micro recall rows at (-want +got):\n%s", tc.k, diff)
		}
		if len(perAttr) != len(tc.k)*len(attrs) {
			t.Errorf("k %v: %d per-attribute rows, want %d", tc.k, len(perAttr), len(tc.k)*len(attrs))
		}
	}
}

// TestEvaluateUntyped checks that attributes without types (a CSV dataset
// without an attributes table) give no per-type or pooled rows.
func TestEvaluateUntyped(t *testing.T) {
	untyped := slices.Clone(attrs)
	for i := range untyped {
		untyped[i].Type, untyped[i].TypeName = 0, ""
	}
	rows, _, err := runStageAttrs(t, samplesOf([]int{0, 1, 2, 3}), predictionsOf([]int{0, 1, 2, 3}), []int{3},
		nil, untyped)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if strings.HasPrefix(r.Scope, "type:") || r.Average == "pooled" {
			t.Errorf("untyped attributes gave row %+v", r)
		}
	}
	if _, _, ok := value(rows, 3, "all", "global", "recall"); !ok {
		t.Error("no global recall row")
	}
}

// Predictions that name their attributes are checked against the
// attributes table column by column: a model trained with two attributes
// swapped would score each against the other's labels.
func TestAttributeNamesMustMatch(t *testing.T) {
	names := func() []string {
		out := make([]string, len(attrs))
		for i, a := range attrs {
			out[i] = a.Name
		}
		return out
	}
	pred := predictionsOf([]int{0, 1, 2, 3})
	pred.AttributeNames = names()
	if _, _, err := runStage(t, samplesOf([]int{0, 1, 2, 3}), pred, []int{1}); err != nil {
		t.Fatalf("matching names: %v", err)
	}
	swapped := names()
	swapped[0], swapped[1] = swapped[1], swapped[0]
	pred.AttributeNames = swapped
	_, _, err := runStage(t, samplesOf([]int{0, 1, 2, 3}), pred, []int{1})
	want := `the model's attributes do not match the attributes table at 2 of 6 columns, ` +
		`first at column 0: "striped" in the model, "floral" in the table`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("swapped names: error %v, want %q", err, want)
	}
}

// An empty samples table (an empty test partition) is an error, not a
// table of zeros that reads like a result.
func TestNoImagesIsAnError(t *testing.T) {
	_, _, err := runStage(t, samplesOf(nil), predictionsOf(nil), []int{1})
	if err == nil || !strings.Contains(err.Error(), "no images to evaluate") {
		t.Errorf("empty samples: error %v, want 'no images to evaluate'", err)
	}
}
