package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
)

// Data is what Evaluate scores: n images by m attributes, row-major, so
// Scores[i*NumAttributes+a] and Labels[i*NumAttributes+a] belong to image i
// and attribute a.
type Data struct {
	NumAttributes int
	// Scores are the model's scores (probabilities or logits: only their
	// order matters). NaN is an error.
	Scores []float32
	// Labels are 1 (present), -1 (absent) or 0 (unknown).
	Labels []int8
	// Types[a] is attribute a's type id (DeepFashion: 1 texture, 2 fabric,
	// 3 shape, 4 part, 5 style). Nil skips the per-type recall.
	Types []int

	// NumCategories is the width of CategoryScores; 0 when the predictions
	// hold no category scores, which skips the category accuracy.
	NumCategories int
	// CategoryScores[i*NumCategories+c] is the score of category id c+1 on
	// image i.
	CategoryScores []float32
	// Categories[i] is image i's 1-based category id, 0 when it has none.
	Categories []int32
}

// NumImages is the number of rows of d.
func (d *Data) NumImages() int {
	if d.NumAttributes == 0 {
		return 0
	}
	return len(d.Labels) / d.NumAttributes
}

// Options tune Evaluate.
type Options struct {
	// Ks are the cut-offs of the top-k metrics. They are sorted and
	// deduplicated; each must be at least 1.
	Ks []int
	// Workers bounds the goroutines; 0 means GOMAXPROCS. The results do not
	// depend on it.
	Workers int
}

// Result holds every metric of one evaluation.
type Result struct {
	NumImages     int
	NumAttributes int
	// Positives and Negatives count the labels 1 and -1 of each attribute;
	// unknown labels are in neither.
	Positives []int64
	Negatives []int64
	// TopK has one entry per k of Options.Ks, ascending.
	TopK []TopK
	// Ranking holds the threshold-free metrics.
	Ranking Ranking
	// Category is nil when Data has no category scores.
	Category []CategoryAccuracy
}

// TopK holds the metrics at one cut-off k.
type TopK struct {
	K int
	// Counts has one entry per attribute.
	Counts []Counts
	// Micro pools the counts of all attributes.
	Micro PRF
	// Macro is the mean over the MacroAttributes attributes with at least
	// one positive label of their recall, precision and F1.
	Macro           PRF
	MacroAttributes int
	// Types is the DeepFashion per-type recall, by ascending type id; nil
	// when Data.Types is nil.
	Types []TypeRecall
	// Pooled is "all" as the sum of the per-type hits over the sum of the
	// positives; Global is "all" ranked over every attribute at once (it
	// equals Micro.Recall).
	Pooled Recall
	Global Recall
}

// MacroNote says which attributes a macro average covers, for tables.
func (t *TopK) MacroNote() string {
	return fmt.Sprintf("macro over %d of %d attributes with positives", t.MacroAttributes, len(t.Counts))
}

// Counts are one attribute's top-k counts over the evaluated images.
type Counts struct {
	// Positives is GT(a): images labelled 1.
	Positives int64
	// Predicted is PRED(a): images with a in their top k and a known label.
	Predicted int64
	// TP is images with a in their top k and label 1.
	TP int64
}

// FP is Predicted - TP: images with a in their top k and label -1.
func (c Counts) FP() int64 { return c.Predicted - c.TP }

// Recall is TP / Positives, 0 when there are no positives.
func (c Counts) Recall() float64 { return ratio(c.TP, c.Positives) }

// Precision is TP / Predicted, 0 when a was never predicted.
func (c Counts) Precision() float64 { return ratio(c.TP, c.Predicted) }

// F1 is the harmonic mean of Precision and Recall.
func (c Counts) F1() float64 { return F1(c.Precision(), c.Recall()) }

// PRF is a recall, precision and F1 triple.
type PRF struct {
	Recall, Precision, F1 float64
}

// Recall is a recall with the counts it comes from.
type Recall struct {
	Hits, Positives int64
	Value           float64
}

// TypeRecall is the top-k recall of one attribute type, ranking only the
// attributes of that type.
type TypeRecall struct {
	Type int
	// Attributes is the number of attributes of the type; when it is below
	// k, all of them are taken (K is then Attributes).
	Attributes int
	K          int
	Recall
}

// Ranking holds the threshold-free metrics: average precision and ROC AUC.
type Ranking struct {
	// AP and AUC have one entry per attribute. An attribute without
	// positives has AP 0 and HasAP false; one without positives or without
	// negatives has AUC 0 and HasAUC false.
	AP, AUC       []float64
	HasAP, HasAUC []bool
	// MicroAP and MicroAUC rank all known (image, attribute) pairs as one
	// list.
	MicroAP, MicroAUC float64
	// MacroAP is the mean AP over the MacroAPAttributes attributes with a
	// positive; MacroAUC the mean AUC over the MacroAUCAttributes attributes
	// with a positive and a negative.
	MacroAP, MacroAUC                     float64
	MacroAPAttributes, MacroAUCAttributes int
}

// CategoryAccuracy is the top-k category accuracy.
type CategoryAccuracy struct {
	K int
	// Hits are images whose category is among their top K category
	// scores; Images are the images with a category.
	Hits, Images int64
	Value        float64
	// Categories is how many categories are ranked: at K >= Categories
	// every category is in the top K and the accuracy is 1 by
	// construction.
	Categories int
}

// F1 is 2PR/(P+R), and 0 when P+R is 0.
func F1(precision, recall float64) float64 {
	if precision+recall == 0 {
		return 0
	}
	return 2 * precision * recall / (precision + recall)
}

// ErrNaN reports a NaN score: NaN has no rank, so no metric is defined.
var ErrNaN = errors.New("score is NaN")

// Evaluate computes every metric of d at each k of opts.Ks.
func Evaluate(d Data, opts Options) (*Result, error) {
	ks, err := checkInput(&d, opts.Ks)
	if err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	// The top-k pass reads every row once; it also counts labels and
	// collects the positives' scores, which the ranking pass needs first.
	tk, err := topKPass(&d, ks, workers)
	if err != nil {
		return nil, err
	}
	res := &Result{
		NumImages: d.NumImages(), NumAttributes: d.NumAttributes,
		Positives: tk.pos, Negatives: tk.neg,
	}
	res.TopK = tk.summarise(&d, ks)

	res.Ranking = rankingPass(&d, tk, workers)

	if d.NumCategories > 0 {
		res.Category, err = CategoryTopK(d.CategoryScores, d.NumCategories, d.Categories, ks)
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// checkInput validates d and returns the sorted distinct ks.
func checkInput(d *Data, ks []int) ([]int, error) {
	m := d.NumAttributes
	if m <= 0 {
		return nil, fmt.Errorf("evaluate: %d attributes, want at least 1", m)
	}
	if len(d.Labels)%m != 0 || len(d.Scores) != len(d.Labels) {
		return nil, fmt.Errorf("evaluate: %d scores and %d labels do not make rows of %d attributes",
			len(d.Scores), len(d.Labels), m)
	}
	if d.Types != nil && len(d.Types) != m {
		return nil, fmt.Errorf("evaluate: %d attribute types for %d attributes", len(d.Types), m)
	}
	if d.NumCategories > 0 && len(d.Categories) != d.NumImages() {
		return nil, fmt.Errorf("evaluate: %d categories for %d images", len(d.Categories), d.NumImages())
	}
	out := slices.Clone(ks)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil, errors.New("evaluate: no k given")
	}
	if out[0] < 1 {
		return nil, fmt.Errorf("evaluate: k = %d, want at least 1", out[0])
	}
	return out, nil
}

func ratio(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}
