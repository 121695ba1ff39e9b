package metrics

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// chunkImages is how many images a worker takes at a time: small enough to
// balance two cores, large enough that taking a chunk costs nothing.
const chunkImages = 256

// A candidate of a top-k selection is one uint64: the score's order key
// above the complemented attribute index, so a larger value is a higher
// score or, on a tie, a lower index. Comparisons are then single integer
// compares, which is most of the sorting's work.
func candidate(score float32, index int) uint64 {
	return uint64(orderKey(score))<<32 | uint64(^uint32(index))
}

func candidateIndex(c uint64) int32 { return int32(^uint32(c)) }

func candidateScore(c uint64) float32 { return scoreOf(uint32(c >> 32)) }

// sortDescending sorts candidates best first. The usual input is a few
// dozen values, where insertion sort beats the general sort.
func sortDescending(c []uint64) {
	if len(c) > 64 {
		slices.Sort(c)
		slices.Reverse(c)
		return
	}
	for i := 1; i < len(c); i++ {
		x := c[i]
		j := i
		for ; j > 0 && c[j-1] < x; j-- {
			c[j] = c[j-1]
		}
		c[j] = x
	}
}

// posKey is a positive label's attribute and the order key of its score.
type posKey struct {
	attr int32
	key  uint32
}

// typeLayout maps attributes to dense type slots.
type typeLayout struct {
	ids   []int   // type id of each slot, ascending
	slot  []int32 // slot of each attribute
	sizes []int   // attributes per slot
	// lists[s] are the attributes of slot s, ascending.
	lists [][]int32
}

func newTypeLayout(types []int) *typeLayout {
	if types == nil {
		return nil
	}
	ids := slices.Clone(types)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	l := &typeLayout{ids: ids, slot: make([]int32, len(types)), sizes: make([]int, len(ids)),
		lists: make([][]int32, len(ids))}
	for a, t := range types {
		s, _ := slices.BinarySearch(ids, t)
		l.slot[a] = int32(s)
		l.sizes[s]++
		l.lists[s] = append(l.lists[s], int32(a))
	}
	return l
}

// topKAcc accumulates one worker's counts; summing accumulators in any
// order gives the same integers, so results do not depend on scheduling.
type topKAcc struct {
	pred, tp []int64 // [ki*m+a]
	typeHits []int64 // [ki*types+slot]
	typePos  []int64 // [slot]
	pos, unk []int64 // [a]
	posKeys  []posKey
	errAt    int // flat index of the first bad value, or -1
	err      error
}

// topKResult is the merged outcome of the top-k pass.
type topKResult struct {
	m        int
	layout   *typeLayout
	pred, tp []int64
	typeHits []int64
	typePos  []int64
	pos, neg []int64
	// keys[keyStart[a]:keyStart[a+1]] are attribute a's positive score
	// keys, ascending.
	keys     []uint32
	keyStart []int
}

func topKPass(d *Data, ks []int, workers int) (*topKResult, error) {
	m, n := d.NumAttributes, d.NumImages()
	maxK := ks[len(ks)-1]
	layout := newTypeLayout(d.Types)
	numTypes := 0
	if layout != nil {
		numTypes = len(layout.ids)
	}

	accs := make([]*topKAcc, workers)
	var next atomic.Int64
	var failed atomic.Bool
	var g errgroup.Group
	for w := range workers {
		acc := &topKAcc{
			pred: make([]int64, len(ks)*m), tp: make([]int64, len(ks)*m),
			typeHits: make([]int64, len(ks)*numTypes), typePos: make([]int64, numTypes),
			pos: make([]int64, m), unk: make([]int64, m), errAt: -1,
		}
		accs[w] = acc
		g.Go(func() error {
			sel := newSelector(m, maxK, layout)
			for !failed.Load() {
				lo := int(next.Add(chunkImages)) - chunkImages
				if lo >= n {
					return nil
				}
				for i := lo; i < min(n, lo+chunkImages); i++ {
					if !sel.image(d, i, ks, acc) {
						failed.Store(true)
						return nil
					}
				}
			}
			return nil
		})
	}
	// The workers report failures through their accumulators.
	_ = g.Wait()

	return mergeTopK(d, ks, layout, accs)
}

// mergeTopK sums the workers' counts and groups the positive keys by
// attribute. On a bad value it reports the first one in row-major order.
func mergeTopK(d *Data, ks []int, layout *typeLayout, accs []*topKAcc) (*topKResult, error) {
	var first *topKAcc
	for _, acc := range accs {
		if acc.err != nil && (first == nil || acc.errAt < first.errAt) {
			first = acc
		}
	}
	if first != nil {
		return nil, first.err
	}

	m, n := d.NumAttributes, d.NumImages()
	r := &topKResult{m: m, layout: layout}
	r.pred, r.tp = sumInts(accs, func(a *topKAcc) []int64 { return a.pred }),
		sumInts(accs, func(a *topKAcc) []int64 { return a.tp })
	r.typeHits = sumInts(accs, func(a *topKAcc) []int64 { return a.typeHits })
	r.typePos = sumInts(accs, func(a *topKAcc) []int64 { return a.typePos })
	r.pos = sumInts(accs, func(a *topKAcc) []int64 { return a.pos })
	unk := sumInts(accs, func(a *topKAcc) []int64 { return a.unk })
	r.neg = make([]int64, m)
	for a := range m {
		r.neg[a] = int64(n) - r.pos[a] - unk[a]
	}

	// A counting sort by attribute, then a sort of each attribute's keys:
	// the workers collected them in whatever order they ran.
	r.keyStart = make([]int, m+1)
	for a := range m {
		r.keyStart[a+1] = r.keyStart[a] + int(r.pos[a])
	}
	r.keys = make([]uint32, r.keyStart[m])
	fillAt := slices.Clone(r.keyStart[:m])
	for _, acc := range accs {
		for _, pk := range acc.posKeys {
			r.keys[fillAt[pk.attr]] = pk.key
			fillAt[pk.attr]++
		}
	}
	for a := range m {
		slices.Sort(r.keys[r.keyStart[a]:r.keyStart[a+1]])
	}
	return r, nil
}

func sumInts(accs []*topKAcc, field func(*topKAcc) []int64) []int64 {
	out := slices.Clone(field(accs[0]))
	for _, acc := range accs[1:] {
		for i, v := range field(acc) {
			out[i] += v
		}
	}
	return out
}

// selector holds one worker's buffers, reused for every image.
type selector struct {
	m      int
	keep   int // min(max k, m): how many of the best scores a row needs
	layout *typeLayout
	// thr is the candidate threshold carried from row to row (see
	// selectTop); -Inf until a row has set it.
	thr      float32
	picked   []int32  // indices of a row's candidates
	cands    []uint64 // the candidates, best first
	positive []int32  // a row's attributes labelled 1
}

func newSelector(m, maxK int, layout *typeLayout) *selector {
	return &selector{m: m, keep: min(maxK, m), layout: layout, thr: float32(math.Inf(-1)),
		picked: make([]int32, m), cands: make([]uint64, 0, m)}
}

// image ranks image i and adds its counts to acc. It returns false after
// recording a NaN score or an invalid label in acc.
func (s *selector) image(d *Data, i int, ks []int, acc *topKAcc) bool {
	m := s.m
	row := d.Scores[i*m : (i+1)*m]
	labels := d.Labels[i*m : (i+1)*m]
	top, ok := s.selectTop(row)
	if !ok {
		for a, v := range row {
			if math.IsNaN(float64(v)) {
				acc.errAt = i*m + a
				acc.err = fmt.Errorf("evaluate: score of image %d, attribute %d: %w", i, a, ErrNaN)
				return false
			}
		}
	}
	if col, ok := s.countLabels(row, labels, acc); !ok {
		acc.errAt = i*m + col
		acc.err = fmt.Errorf("evaluate: label %d of image %d, attribute %d: want 1, -1 or 0",
			labels[col], i, col)
		return false
	}

	for ki, k := range ks {
		base := ki * m
		for _, c := range top[:min(k, len(top))] {
			a := int(candidateIndex(c))
			switch labels[a] {
			case 1:
				acc.tp[base+a]++
				acc.pred[base+a]++
			case -1:
				acc.pred[base+a]++
			}
		}
	}
	if s.layout != nil {
		s.typeHits(row, ks, acc)
	}
	return true
}

// selectTop returns row's best min(max k, m) attributes as candidates,
// best first. It returns false if row holds a NaN.
//
// Fast path: rather than pushing all m scores through a heap, it keeps
// only the scores at least s.thr, a threshold carried over from the
// previous row, and sorts those few. When at least keep scores pass,
// the best keep of them are exactly the row's best keep (anything better
// passes too). When fewer pass, the row is redone with no threshold.
// The next threshold is the score ranked 2 keep in this row, so on rows
// scored alike about 2 keep candidates pass and a redo is rare; a NaN
// always passes (it is not below anything), so the scan also checks NaN.
func (s *selector) selectTop(row []float32) ([]uint64, bool) {
	picked := s.picked[:len(row)]
	n := 0
	for a, v := range row {
		if !(v < s.thr) {
			picked[n] = int32(a)
			n++
		}
	}
	if n < s.keep {
		n = len(row)
		for a := range picked {
			picked[a] = int32(a)
		}
	}

	cands := s.cands[:0]
	for _, a := range picked[:n] {
		v := row[a]
		if v != v {
			return nil, false
		}
		cands = append(cands, candidate(v, int(a)))
	}
	sortDescending(cands)
	s.cands = cands
	if next := 2 * s.keep; next <= len(cands) {
		s.thr = candidateScore(cands[next-1])
	}
	return cands[:s.keep], true
}

// typeHits adds the DeepFashion per-type hits of a row, whose labels
// countLabels has just read.
//
// A positive attribute p of type t is a hit at k when fewer than k
// attributes of t outrank it (higher score, or equal score and lower
// index): that rank is a count, so the few positives of a row are ranked
// directly and no per-type selection is needed. The rank is below m_t,
// so this is also right when k exceeds m_t.
func (s *selector) typeHits(row []float32, ks []int, acc *topKAcc) {
	nt := len(s.layout.ids)
	for _, p := range s.positive {
		t := s.layout.slot[p]
		vp := row[p]
		rank := 0
		for _, a := range s.layout.lists[t] {
			v := row[a]
			if v > vp || (v == vp && a < p) {
				rank++
			}
		}
		for ki, k := range ks {
			if rank < k {
				acc.typeHits[ki*nt+int(t)]++
			}
		}
	}
}

// countLabels counts a row's labels and notes its positives. On an
// invalid label it returns the label's column and false.
func (s *selector) countLabels(row []float32, labels []int8, acc *topKAcc) (int, bool) {
	s.positive = s.positive[:0]
	for a, l := range labels {
		if l == -1 {
			continue
		}
		switch l {
		case 1:
			acc.pos[a]++
			if s.layout != nil {
				acc.typePos[s.layout.slot[a]]++
			}
			acc.posKeys = append(acc.posKeys, posKey{int32(a), orderKey(row[a])})
			s.positive = append(s.positive, int32(a))
		case 0:
			acc.unk[a]++
		default:
			return a, false
		}
	}
	return 0, true
}

// summarise turns the merged counts into the per-k metrics.
func (r *topKResult) summarise(d *Data, ks []int) []TopK {
	m := r.m
	out := make([]TopK, len(ks))
	for ki, k := range ks {
		t := TopK{K: k, Counts: make([]Counts, m)}
		var sumTP, sumPred, sumPos int64
		var macro PRF
		for a := range m {
			c := Counts{Positives: r.pos[a], Predicted: r.pred[ki*m+a], TP: r.tp[ki*m+a]}
			t.Counts[a] = c
			sumTP += c.TP
			sumPred += c.Predicted
			sumPos += c.Positives
			if c.Positives > 0 {
				t.MacroAttributes++
				macro.Recall += c.Recall()
				macro.Precision += c.Precision()
				macro.F1 += c.F1()
			}
		}
		if t.MacroAttributes > 0 {
			div := float64(t.MacroAttributes)
			t.Macro = PRF{macro.Recall / div, macro.Precision / div, macro.F1 / div}
		}
		p, rec := ratio(sumTP, sumPred), ratio(sumTP, sumPos)
		t.Micro = PRF{Recall: rec, Precision: p, F1: F1(p, rec)}
		t.Global = Recall{Hits: sumTP, Positives: sumPos, Value: rec}

		if r.layout != nil {
			var hits, pos int64
			nt := len(r.layout.ids)
			for s, id := range r.layout.ids {
				h, p := r.typeHits[ki*nt+s], r.typePos[s]
				t.Types = append(t.Types, TypeRecall{
					Type: id, Attributes: r.layout.sizes[s], K: min(k, r.layout.sizes[s]),
					Recall: Recall{Hits: h, Positives: p, Value: ratio(h, p)},
				})
				hits += h
				pos += p
			}
			t.Pooled = Recall{Hits: hits, Positives: pos, Value: ratio(hits, pos)}
		}
		out[ki] = t
	}
	return out
}
