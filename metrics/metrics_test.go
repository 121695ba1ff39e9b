package metrics

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// handExample is 4 images x 6 attributes, worked out on paper below.
// Types: a0 a1 a2 are type 1, a3 a4 type 2, a5 type 3.
//
//	        a0      a1      a2      a3      a4      a5
//	img0   .9 +1   .8 -1   .1 -1   .7 +1   .2 -1   .3  0
//	img1   .5 -1   .5 +1   .4 -1   .1 -1   .6 -1   .2 -1
//	img2   .1 -1   .2 -1   .3 -1   .4 -1   .5 +1   .6 +1
//	img3   .3  0   .9 +1   .2 -1   .6 -1   .1 -1   .8  0
//
// GT: a0 1, a1 2, a2 0 (no positives), a3 1, a4 1, a5 1; sum 6.
// Rankings (ties to the lower index: img1 has a0 before a1 at .5):
//
//	img0: a0 a1 a3 a5 a4 a2
//	img1: a4 a0 a1 a2 a5 a3
//	img2: a5 a4 a3 a2 a1 a0
//	img3: a1 a5 a3 a0 a2 a4
func handExample() Data {
	return Data{
		NumAttributes: 6,
		Types:         []int{1, 1, 1, 2, 2, 3},
		Scores: []float32{
			.9, .8, .1, .7, .2, .3,
			.5, .5, .4, .1, .6, .2,
			.1, .2, .3, .4, .5, .6,
			.3, .9, .2, .6, .1, .8,
		},
		Labels: []int8{
			1, -1, -1, 1, -1, 0,
			-1, 1, -1, -1, -1, -1,
			-1, -1, -1, -1, 1, 1,
			0, 1, -1, -1, -1, 0,
		},
		// Category ids 1, 2, none, 3. img1 ties categories 1 and 2 at .4;
		// category 1 (lower id) ranks first, so category 2 is second.
		NumCategories: 3,
		CategoryScores: []float32{
			.7, .2, .1,
			.4, .4, .2,
			.9, .05, .05,
			.5, .3, .2,
		},
		Categories: []int32{1, 2, 0, 3},
	}
}

var approx = cmpopts.EquateApprox(0, 1e-12)

func TestHandExampleTopK(t *testing.T) {
	res, err := Evaluate(handExample(), Options{Ks: []int{3, 1, 2, 2}})
	if err != nil {
		t.Fatal(err)
	}
	c := func(gt, pred, tp int64) Counts { return Counts{Positives: gt, Predicted: pred, TP: tp} }
	want := []struct {
		k      int
		counts []Counts
		micro  PRF
		macro  PRF
		types  []float64
		pooled float64
	}{
		{
			// k=1. Tops: img0 a0 (+1), img1 a4 (-1), img2 a5 (+1), img3 a1 (+1).
			// TP 3, PRED 4, GT 6: R = 3/6, P = 3/4, F1 = 2(.75)(.5)/1.25 = .6.
			// Macro over a0 a1 a3 a4 a5 (a2 has no positives):
			// R = (1 + 1/2 + 0 + 0 + 1)/5 = .5; P = (1 + 1 + 0 + 0 + 1)/5 = .6
			// (a3 never predicted: P 0); F1 = (1 + 2/3 + 0 + 0 + 1)/5 = 8/15.
			// Types: type 1 tops img0 a0 hit, img1 a0 miss, img3 a1 hit of 3
			// positives = 2/3; type 2 img0 a3, img2 a4 = 2/2; type 3 img2 a5
			// = 1/1. Pooled (2+2+1)/6.
			k:      1,
			counts: []Counts{c(1, 1, 1), c(2, 1, 1), c(0, 0, 0), c(1, 0, 0), c(1, 1, 0), c(1, 1, 1)},
			micro:  PRF{Recall: .5, Precision: .75, F1: .6},
			macro:  PRF{Recall: .5, Precision: .6, F1: 8.0 / 15},
			types:  []float64{2.0 / 3, 1, 1},
			pooled: 5.0 / 6,
		},
		{
			// k=2. img0 a0+ a1-, img1 a4- a0-, img2 a5+ a4+, img3 a1+ and
			// a5 unknown, which counts nowhere. PRED: a0 2, a1 2, a4 2, a5 1
			// = 7; TP: a0 a1 a4 a5 = 4. R = 4/6, P = 4/7,
			// F1 = 2(4/7)(2/3)/(4/7+2/3) = 8/13.
			// Macro R = (1 + 1/2 + 0 + 1 + 1)/5 = .7; P = (1/2 + 1/2 + 0 + 1/2
			// + 1)/5 = .5; F1 = (2/3 + 1/2 + 0 + 2/3 + 1)/5 = 17/30.
			// Types: type 1 top 2 holds every type-1 positive (img0 a0, img1
			// a1, img3 a1): 3/3; type 2 has 2 attributes: 2/2; type 3 has 1
			// (k is cut to 1): 1/1. Pooled 6/6.
			k:      2,
			counts: []Counts{c(1, 2, 1), c(2, 2, 1), c(0, 0, 0), c(1, 0, 0), c(1, 2, 1), c(1, 1, 1)},
			micro:  PRF{Recall: 4.0 / 6, Precision: 4.0 / 7, F1: 8.0 / 13},
			macro:  PRF{Recall: .7, Precision: .5, F1: 17.0 / 30},
			types:  []float64{1, 1, 1},
			pooled: 1,
		},
		{
			// k=3. Adds img0 a3+, img1 a1+, img2 a3-, img3 a3-. PRED: a0 2,
			// a1 3, a3 3, a4 2, a5 1 = 11; TP: 1+2+1+1+1 = 6. R = 1,
			// P = 6/11, F1 = 2(6/11)/(17/11) = 12/17.
			// Macro R = 1; P = (1/2 + 2/3 + 1/3 + 1/2 + 1)/5 = .6;
			// F1 = (2/3 + 4/5 + 1/2 + 2/3 + 1)/5 = 109/150.
			k:      3,
			counts: []Counts{c(1, 2, 1), c(2, 3, 2), c(0, 0, 0), c(1, 3, 1), c(1, 2, 1), c(1, 1, 1)},
			micro:  PRF{Recall: 1, Precision: 6.0 / 11, F1: 12.0 / 17},
			macro:  PRF{Recall: 1, Precision: .6, F1: 109.0 / 150},
			types:  []float64{1, 1, 1},
			pooled: 1,
		},
	}
	if len(res.TopK) != len(want) {
		t.Fatalf("got %d cut-offs, want %d (ks sorted and deduplicated)", len(res.TopK), len(want))
	}
	for i, w := range want {
		got := res.TopK[i]
		if got.K != w.k {
			t.Fatalf("TopK[%d].K = %d, want %d", i, got.K, w.k)
		}
		if diff := cmp.Diff(w.counts, got.Counts); diff != "" {
			t.Errorf("k=%d counts (-want +got):\n%s", w.k, diff)
		}
		if diff := cmp.Diff(w.micro, got.Micro, approx); diff != "" {
			t.Errorf("k=%d micro (-want +got):\n%s", w.k, diff)
		}
		if diff := cmp.Diff(w.macro, got.Macro, approx); diff != "" {
			t.Errorf("k=%d macro (-want +got):\n%s", w.k, diff)
		}
		if got.MacroNote() != "macro over 5 of 6 attributes with positives" {
			t.Errorf("k=%d note %q", w.k, got.MacroNote())
		}
		var types []float64
		for _, tr := range got.Types {
			types = append(types, tr.Value)
		}
		if diff := cmp.Diff(w.types, types, approx); diff != "" {
			t.Errorf("k=%d per-type recall (-want +got):\n%s", w.k, diff)
		}
		if math.Abs(got.Pooled.Value-w.pooled) > 1e-12 || got.Global.Value != got.Micro.Recall {
			t.Errorf("k=%d pooled %v global %v, want %v and micro recall %v",
				w.k, got.Pooled.Value, got.Global.Value, w.pooled, got.Micro.Recall)
		}
	}
	// Type 3 has one attribute: every k is cut to 1.
	if tr := res.TopK[2].Types[2]; tr.K != 1 || tr.Attributes != 1 || tr.Positives != 1 {
		t.Errorf("type 3 at k=3: %+v, want K 1 of 1 attribute with 1 positive", tr)
	}
}

func TestHandExampleRanking(t *testing.T) {
	res, err := Evaluate(handExample(), Options{Ks: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Ranking
	// Per attribute over known labels, ranked by score:
	//   a0: .9+ .5- .1-        the positive is first: AP 1, AUC 1.
	//   a1: .9+ .8- .5+ .2-    AUC: .9 beats 2 negatives, .5 beats 1: 3/4.
	//                          AP: 1/2 x 1/1 + 1/2 x 2/3 = 5/6.
	//   a2: no positive        AP and AUC undefined.
	//   a3: .7+ .6- .4- .1-    AP 1, AUC 1.
	//   a4: .6- .5+ .2- .1-    AUC 2/3; AP 1/2.
	//   a5: .6+ .2-            AP 1, AUC 1 (img0 and img3 unknown).
	// Macro over 5: AP (1 + 5/6 + 1 + 1/2 + 1)/5 = 13/15,
	// AUC (1 + 3/4 + 1 + 2/3 + 1)/5 = 53/60.
	wantAP := []float64{1, 5.0 / 6, 0, 1, .5, 1}
	wantAUC := []float64{1, .75, 0, 1, 2.0 / 3, 1}
	if diff := cmp.Diff(wantAP, r.AP, approx); diff != "" {
		t.Errorf("AP (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAUC, r.AUC, approx); diff != "" {
		t.Errorf("AUC (-want +got):\n%s", diff)
	}
	defined := []bool{true, true, false, true, true, true}
	if !cmp.Equal(r.HasAP, defined) || !cmp.Equal(r.HasAUC, defined) {
		t.Errorf("HasAP %v HasAUC %v, want %v", r.HasAP, r.HasAUC, defined)
	}
	// Micro: 6 positives (.9 .9 .7 .6 .5 .5) and 15 negatives
	// (.8, .6 x2, .5, .4 x2, .3, .2 x4, .1 x4) pooled.
	// AUC: .9s beat 15 each (30), .7 beats 14, .6 beats 12 and ties 2
	// (13), each .5 beats 11 and ties 1 (23): 80 / (6 x 15) = 8/9.
	// AP at each distinct positive score: .9 -> 2/2 for 2 positives,
	// .7 -> 3/4 for 1, .6 -> 4/7 for 1, .5 -> 6/10 for 2:
	// (2 + 3/4 + 4/7 + 6/5)/6 = 211/280.
	got := []float64{r.MicroAUC, r.MicroAP, r.MacroAP, r.MacroAUC}
	want := []float64{8.0 / 9, 211.0 / 280, 13.0 / 15, 53.0 / 60}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("micro AUC, micro AP, macro AP, macro AUC (-want +got):\n%s", diff)
	}
	if r.MacroAPAttributes != 5 || r.MacroAUCAttributes != 5 {
		t.Errorf("macro over %d / %d attributes, want 5", r.MacroAPAttributes, r.MacroAUCAttributes)
	}
}

func TestHandExampleCategory(t *testing.T) {
	res, err := Evaluate(handExample(), Options{Ks: []int{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	// img0's category 1 ranks 1st, img1's category 2 2nd (tie with 1, which
	// has the lower id), img3's category 3 3rd; img2 has none.
	want := []CategoryAccuracy{
		{K: 1, Hits: 1, Images: 3, Value: 1.0 / 3, Categories: 3},
		{K: 2, Hits: 2, Images: 3, Value: 2.0 / 3, Categories: 3},
		{K: 3, Hits: 3, Images: 3, Value: 1, Categories: 3},
	}
	if diff := cmp.Diff(want, res.Category, approx); diff != "" {
		t.Errorf("category accuracy (-want +got):\n%s", diff)
	}
}

func TestPerfectScores(t *testing.T) {
	// Each image has at most k positives and they score highest.
	d := Data{NumAttributes: 4, Types: []int{1, 1, 2, 2},
		Scores: []float32{.9, .1, .8, .2, .1, .2, .3, .9, .5, .6, .1, .2},
		Labels: []int8{1, -1, 1, -1, -1, -1, -1, 1, 1, 1, -1, -1}}
	res, err := Evaluate(d, Options{Ks: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	tk := res.TopK[0]
	if tk.Micro.Recall != 1 || tk.Macro.Recall != 1 || tk.Pooled.Value != 1 {
		t.Errorf("recall micro %v macro %v pooled %v, want 1", tk.Micro.Recall, tk.Macro.Recall, tk.Pooled.Value)
	}
	if res.Ranking.MicroAUC != 1 || res.Ranking.MacroAP != 1 {
		t.Errorf("micro AUC %v macro AP %v, want 1", res.Ranking.MicroAUC, res.Ranking.MacroAP)
	}
}

func TestUnknownLabelsCountNowhere(t *testing.T) {
	// Turning a -1 into 0 removes it from PRED and from the negatives and
	// changes nothing else; adding an unknown column changes nothing.
	base := handExample()
	withUnknown := handExample()
	// img1 a4 (-1, ranked first in img1) becomes unknown.
	withUnknown.Labels[1*6+4] = 0
	a, err := Evaluate(base, Options{Ks: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(withUnknown, Options{Ks: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := a.TopK[0].Counts
	wantCounts[4].Predicted--
	if diff := cmp.Diff(wantCounts, b.TopK[0].Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if b.Negatives[4] != a.Negatives[4]-1 || b.Positives[4] != a.Positives[4] {
		t.Errorf("a4 negatives %d positives %d, want %d and %d",
			b.Negatives[4], b.Positives[4], a.Negatives[4]-1, a.Positives[4])
	}
	// a4 ranked .6- .5+ .2- .1-; without the .6 its positive is first.
	if b.Ranking.AUC[4] != 1 || b.Ranking.AP[4] != 1 {
		t.Errorf("a4 AUC %v AP %v, want 1 and 1", b.Ranking.AUC[4], b.Ranking.AP[4])
	}
}

func TestTiesGoToLowerIndex(t *testing.T) {
	// All scores equal: the top k are attributes 0..k-1 in every image.
	d := Data{NumAttributes: 5, Scores: make([]float32, 10),
		Labels: []int8{-1, -1, -1, 1, 1, 1, -1, -1, -1, -1}}
	res, err := Evaluate(d, Options{Ks: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.TopK[0].Counts
	want := []Counts{{1, 2, 1}, {0, 2, 0}, {0, 0, 0}, {1, 0, 0}, {1, 0, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	// Every pair ties: AUC 1/2 for each attribute with both labels.
	if res.Ranking.AUC[0] != .5 || res.Ranking.MicroAUC != .5 {
		t.Errorf("AUC a0 %v micro %v, want .5", res.Ranking.AUC[0], res.Ranking.MicroAUC)
	}
	// -0 and +0 tie too, and -Inf is a score like any other.
	d.Scores = []float32{float32(math.Copysign(0, -1)), 0, float32(math.Inf(-1)), 0, 0, 0, 0, 0, 0, 0}
	res, err = Evaluate(d, Options{Ks: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.TopK[0].Counts); diff != "" {
		t.Errorf("counts with -0 (-want +got):\n%s", diff)
	}
}

func TestKLargerThanType(t *testing.T) {
	d := handExample()
	res, err := Evaluate(d, Options{Ks: []int{20}})
	if err != nil {
		t.Fatal(err)
	}
	tk := res.TopK[0]
	for _, tr := range tk.Types {
		if tr.K != tr.Attributes || tr.Value != 1 {
			t.Errorf("type %d: K %d of %d attributes, recall %v; want all taken and recall 1",
				tr.Type, tr.K, tr.Attributes, tr.Value)
		}
	}
	// Every known label is predicted once: PRED = known labels.
	for a, c := range tk.Counts {
		if c.Predicted != res.Positives[a]+res.Negatives[a] || c.TP != c.Positives {
			t.Errorf("a%d: %+v with %d negatives", a, c, res.Negatives[a])
		}
	}
}

func TestBadInput(t *testing.T) {
	nan := handExample()
	nan.Scores[7] = float32(math.NaN())
	if _, err := Evaluate(nan, Options{Ks: []int{1}}); !errors.Is(err, ErrNaN) {
		t.Errorf("NaN score: got %v, want ErrNaN", err)
	}
	bad := handExample()
	bad.Labels[9] = 2
	_, err := Evaluate(bad, Options{Ks: []int{1}})
	if err == nil || err.Error() != "evaluate: label 2 of image 1, attribute 3: want 1, -1 or 0" {
		t.Errorf("bad label: got %v", err)
	}
	if _, err := Evaluate(handExample(), Options{Ks: []int{0}}); err == nil {
		t.Error("k = 0 accepted")
	}
	short := handExample()
	short.Scores = short.Scores[:5]
	if _, err := Evaluate(short, Options{Ks: []int{1}}); err == nil {
		t.Error("5 scores for 24 labels accepted")
	}
}

func TestPerAttributeRows(t *testing.T) {
	res, err := Evaluate(handExample(), Options{Ks: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	rows := res.PerAttribute(&res.TopK[0], []string{"a", "b", "c", "d", "e", "f"}, []int{1, 1, 1, 2, 2, 3})
	want := AttributeRow{Index: 4, Name: "e", Type: 2, Positives: 1, Predicted: 2, TP: 1, FP: 1,
		Recall: 1, Precision: .5, F1: 2.0 / 3, AP: .5, AUC: 2.0 / 3, HasAP: true, HasAUC: true}
	if diff := cmp.Diff(want, rows[4], approx); diff != "" {
		t.Errorf("row a4 (-want +got):\n%s", diff)
	}
}
