package metrics

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// randomData has scores independent of labels; each label is 1 with
// probability p, else -1.
func randomData(n, m int, p float64, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := Data{NumAttributes: m, Scores: make([]float32, n*m), Labels: make([]int8, n*m),
		Types: make([]int, m)}
	for a := range m {
		d.Types[a] = 1 + a%3
	}
	for i := range d.Scores {
		d.Scores[i] = rng.Float32()
		d.Labels[i] = -1
		if rng.Float64() < p {
			d.Labels[i] = 1
		}
	}
	return d
}

func TestRandomScoresRecallIsKOverA(t *testing.T) {
	// With scores independent of labels, each positive is in the top k
	// with probability k/A: 2000 images x 50 attributes x 0.2 gives about
	// 20,000 positives, so the standard error is under 0.004.
	const n, m = 2000, 50
	d := randomData(n, m, 0.2, 42)
	res, err := Evaluate(d, Options{Ks: []int{1, 5, 10}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range res.TopK {
		want := float64(tk.K) / m
		if math.Abs(tk.Micro.Recall-want) > 0.015 {
			t.Errorf("k=%d: micro recall %.4f, want about %.4f", tk.K, tk.Micro.Recall, want)
		}
		// Precision is the positive rate, whatever k.
		if math.Abs(tk.Micro.Precision-0.2) > 0.015 {
			t.Errorf("k=%d: micro precision %.4f, want about 0.2", tk.K, tk.Micro.Precision)
		}
	}
	if math.Abs(res.Ranking.MicroAUC-0.5) > 0.01 || math.Abs(res.Ranking.MacroAUC-0.5) > 0.01 {
		t.Errorf("AUC micro %.4f macro %.4f, want about 0.5", res.Ranking.MicroAUC, res.Ranking.MacroAUC)
	}
	if math.Abs(res.Ranking.MicroAP-0.2) > 0.01 {
		t.Errorf("micro AP %.4f, want about the positive rate 0.2", res.Ranking.MicroAP)
	}
}

func TestPermutingAttributesChangesNothing(t *testing.T) {
	const n, m = 300, 40
	d := randomData(n, m, 0.1, 7)
	// Some unknown labels and one attribute without positives.
	for i := range n {
		d.Labels[i*m+3] = 0
		d.Labels[i*m+5] = -1
	}
	perm := rand.New(rand.NewPCG(3, 3)).Perm(m)
	p := Data{NumAttributes: m, Scores: make([]float32, n*m), Labels: make([]int8, n*m), Types: make([]int, m)}
	for a, to := range perm {
		p.Types[to] = d.Types[a]
		for i := range n {
			p.Scores[i*m+to] = d.Scores[i*m+a]
			p.Labels[i*m+to] = d.Labels[i*m+a]
		}
	}
	opts := Options{Ks: []int{1, 3, 20}}
	a, err := Evaluate(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Put b's per-attribute results back in d's order; the means may
	// differ in the last bits because they are summed in another order.
	for ki := range b.TopK {
		counts := make([]Counts, m)
		for from, to := range perm {
			counts[from] = b.TopK[ki].Counts[to]
		}
		b.TopK[ki].Counts = counts
	}
	r := b.Ranking
	unperm := func(v []float64) []float64 {
		out := make([]float64, m)
		for from, to := range perm {
			out[from] = v[to]
		}
		return out
	}
	r.AP, r.AUC = unperm(r.AP), unperm(r.AUC)
	hasAP, hasAUC := make([]bool, m), make([]bool, m)
	for from, to := range perm {
		hasAP[from], hasAUC[from] = r.HasAP[to], r.HasAUC[to]
	}
	r.HasAP, r.HasAUC = hasAP, hasAUC
	b.Ranking = r
	b.Positives, b.Negatives = a.Positives, a.Negatives
	if diff := cmp.Diff(a, b, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("permuted result (-original +permuted):\n%s", diff)
	}
}

func TestWorkersDoNotChangeResults(t *testing.T) {
	d := syntheticCoarse(600, 2)
	one, err := Evaluate(d, Options{Ks: []int{3, 5, 20}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	three, err := Evaluate(d, Options{Ks: []int{3, 5, 20}, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one, three); diff != "" {
		t.Errorf("1 worker vs 3 (-1 +3):\n%s", diff)
	}
}

// TestRankingMatchesSorting checks the splitter-based AP and AUC against
// a plain sort of each attribute, on data with many ties.
func TestRankingMatchesSorting(t *testing.T) {
	const n, m = 500, 12
	rng := rand.New(rand.NewPCG(9, 9))
	d := Data{NumAttributes: m, Scores: make([]float32, n*m), Labels: make([]int8, n*m)}
	for i := range d.Scores {
		d.Scores[i] = float32(rng.IntN(20)) / 20 // ties everywhere
		d.Labels[i] = int8([]int{-1, -1, 1, 0}[rng.IntN(4)])
	}
	res, err := Evaluate(d, Options{Ks: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	for a := range m {
		s, l := knownColumn(d, a)
		ap, auc := bruteAPAUC(s, l)
		if math.Abs(ap-res.Ranking.AP[a]) > 1e-12 || math.Abs(auc-res.Ranking.AUC[a]) > 1e-12 {
			t.Errorf("a%d: AP %v AUC %v, brute force %v %v", a, res.Ranking.AP[a], res.Ranking.AUC[a], ap, auc)
		}
	}
}

// knownColumn returns attribute a's scores over the images whose label is
// known, and whether each label is positive.
func knownColumn(d Data, a int) (scores []float32, positive []bool) {
	m := d.NumAttributes
	for i := range d.NumImages() {
		if v := d.Labels[i*m+a]; v != 0 {
			scores = append(scores, d.Scores[i*m+a])
			positive = append(positive, v == 1)
		}
	}
	return scores, positive
}

// bruteAPAUC is the quadratic textbook definition: AUC over all pairs
// with ties as 1/2, AP over distinct thresholds.
func bruteAPAUC(s []float32, pos []bool) (ap, auc float64) {
	var p, nn, u float64
	for i := range s {
		if pos[i] {
			p++
		} else {
			nn++
		}
	}
	for i := range s {
		for j := range s {
			if pos[i] && !pos[j] {
				switch {
				case s[i] > s[j]:
					u++
				case s[i] == s[j]:
					u += .5
				}
			}
		}
	}
	seen := map[float32]bool{}
	for i := range s {
		if !pos[i] || seen[s[i]] {
			continue
		}
		seen[s[i]] = true
		var tpAt, all, tp float64
		for j := range s {
			if s[j] == s[i] && pos[j] {
				tpAt++
			}
			if s[j] >= s[i] {
				all++
				if pos[j] {
					tp++
				}
			}
		}
		ap += tpAt / p * tp / all
	}
	return ap, u / (p * nn)
}

// TestRankingMatchesSortingLarge checks every AP and AUC, per attribute and
// micro, against a sort of each list, on data large enough that the
// ranking pass's bucket tables, row chunks and attribute blocks all come
// into play: long-tailed label frequencies, a score range per attribute,
// and scores rounded so that some positives and negatives tie.
func TestRankingMatchesSortingLarge(t *testing.T) {
	const n, m = 3000, 70
	rng := rand.New(rand.NewPCG(11, 3))
	d := Data{NumAttributes: m, Scores: make([]float32, n*m), Labels: make([]int8, n*m)}
	for i := range n {
		for a := range m {
			l := int8(-1)
			if rng.Float64() < 0.3/float64(a+1) {
				l = 1
			}
			if rng.IntN(50) == 0 {
				l = 0
			}
			s := rng.NormFloat64() + float64(a%7) - 3
			if l == 1 {
				s += 1.5
			}
			if a%5 == 0 {
				s = math.Round(s*64) / 64 // ties
			}
			d.Labels[i*m+a], d.Scores[i*m+a] = l, float32(s)
		}
	}
	res, err := Evaluate(d, Options{Ks: []int{3}})
	if err != nil {
		t.Fatal(err)
	}
	var allS []float32
	var allL []bool
	for a := range m {
		s, l := knownColumn(d, a)
		allS, allL = append(allS, s...), append(allL, l...)
		ap, auc, hasAP, hasAUC := sortedAPAUC(s, l)
		if hasAP != res.Ranking.HasAP[a] || hasAUC != res.Ranking.HasAUC[a] ||
			math.Abs(ap-res.Ranking.AP[a]) > 1e-9 || math.Abs(auc-res.Ranking.AUC[a]) > 1e-9 {
			t.Errorf("a%d: AP %v AUC %v, by sorting %v %v", a, res.Ranking.AP[a], res.Ranking.AUC[a], ap, auc)
		}
	}
	ap, auc, _, _ := sortedAPAUC(allS, allL)
	if math.Abs(ap-res.Ranking.MicroAP) > 1e-9 || math.Abs(auc-res.Ranking.MicroAUC) > 1e-9 {
		t.Errorf("micro: AP %v AUC %v, by sorting %v %v", res.Ranking.MicroAP, res.Ranking.MicroAUC, ap, auc)
	}
}

// sortedAPAUC computes AP and AUC by sorting the scores, highest first,
// and walking each group of equal scores at once.
func sortedAPAUC(s []float32, pos []bool) (ap, auc float64, hasAP, hasAUC bool) {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return s[idx[i]] > s[idx[j]] })
	var p, nn float64
	for _, v := range pos {
		if v {
			p++
		} else {
			nn++
		}
	}
	var tp, fp, u float64
	for i := 0; i < len(idx); {
		j := i
		var gp, gn float64
		for ; j < len(idx) && s[idx[j]] == s[idx[i]]; j++ {
			if pos[idx[j]] {
				gp++
			} else {
				gn++
			}
		}
		// Each negative of the group scores below every positive above
		// the group and ties with the group's positives.
		u += gn * (tp + gp/2)
		tp, fp = tp+gp, fp+gn
		if gp > 0 {
			ap += gp / p * tp / (tp + fp)
		}
		i = j
	}
	if p > 0 && nn > 0 {
		auc, hasAUC = u/(p*nn), true
	}
	return ap, auc, p > 0, hasAUC
}
