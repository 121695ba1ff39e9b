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
// compares, which is most of the selection's work.
func candidate(score float32, index int) uint64 {
	return uint64(orderKey(score))<<32 | uint64(^uint32(index))
}

func candidateIndex(c uint64) int32 { return int32(^uint32(c)) }

func candidateScore(c uint64) float32 { return scoreOf(uint32(c >> 32)) }

// topHeap keeps the best cap candidates seen so far with the worst at the
// root, so a newcomer is compared with one value only.
type topHeap struct {
	e   []uint64
	cap int
}

func (h *topHeap) push(x uint64) {
	h.e = append(h.e, x)
	e := h.e
	i := len(e) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if e[i] >= e[parent] {
			break
		}
		e[i], e[parent] = e[parent], e[i]
		i = parent
	}
}

func (h *topHeap) replaceRoot(x uint64) {
	e := h.e
	i, n := 0, len(e)
	for {
		child := 2*i + 1
		if child >= n {
			break
		}
		if child+1 < n && e[child+1] < e[child] {
			child++
		}
		if x <= e[child] {
			break
		}
		e[i] = e[child]
		i = child
	}
	e[i] = x
}

// ranked sorts the kept candidates best first. Insertion sort: at most a
// few dozen entries.
func (h *topHeap) ranked() []uint64 {
	e := h.e
	for i := 1; i < len(e); i++ {
		x := e[i]
		j := i
		for ; j > 0 && e[j-1] < x; j-- {
			e[j] = e[j-1]
		}
		e[j] = x
	}
	return e
}

// selectFrom keeps the best h.cap of row[list[j]] (all of row when list is
// nil). It returns false if a score it looked at is NaN.
func (h *topHeap) selectFrom(row []float32, list []int32) bool {
	h.e = h.e[:0]
	n := len(row)
	if list != nil {
		n = len(list)
	}
	at := func(j int) int {
		if list == nil {
			return j
		}
		return int(list[j])
	}
	ok := true
	for j := range h.cap {
		v := row[at(j)]
		ok = ok && v == v
		h.push(candidate(v, at(j)))
	}
	// Attributes come in index order, so a newcomer that ties the worst
	// kept score has the higher index and loses: a strict comparison is
	// the tie rule.
	thr := candidateScore(h.e[0])
	if list == nil {
		for a := h.cap; a < n; a++ {
			v := row[a]
			if !(v <= thr) { // NaN lands here too
				if v != v {
					ok = false
					continue
				}
				h.replaceRoot(candidate(v, a))
				thr = candidateScore(h.e[0])
			}
		}
		return ok
	}
	for _, a := range list[h.cap:] {
		if v := row[a]; v > thr {
			h.replaceRoot(candidate(v, int(a)))
			thr = candidateScore(h.e[0])
		}
	}
	return ok
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
	// lists[s] are the attributes of slot s, ascending; caps[s] is how
	// many of them a top-k selection keeps.
	lists [][]int32
	caps  []int
}

func newTypeLayout(types []int, maxK int) *typeLayout {
	if types == nil {
		return nil
	}
	ids := slices.Clone(types)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	l := &typeLayout{ids: ids, slot: make([]int32, len(types)), sizes: make([]int, len(ids)),
		lists: make([][]int32, len(ids)), caps: make([]int, len(ids))}
	for a, t := range types {
		s, _ := slices.BinarySearch(ids, t)
		l.slot[a] = int32(s)
		l.sizes[s]++
		l.lists[s] = append(l.lists[s], int32(a))
	}
	for s := range ids {
		l.caps[s] = min(maxK, l.sizes[s])
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
	layout := newTypeLayout(d.Types, maxK)
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

// selector holds one worker's heaps, reused for every image.
type selector struct {
	m      int
	all    topHeap
	types  []topHeap
	layout *typeLayout
}

func newSelector(m, maxK int, layout *typeLayout) *selector {
	s := &selector{m: m, layout: layout}
	s.all = topHeap{e: make([]uint64, 0, min(maxK, m)), cap: min(maxK, m)}
	if layout != nil {
		for _, c := range layout.caps {
			s.types = append(s.types, topHeap{e: make([]uint64, 0, c), cap: c})
		}
	}
	return s
}

// image ranks image i and adds its counts to acc. It returns false after
// recording a NaN score or an invalid label in acc.
func (s *selector) image(d *Data, i int, ks []int, acc *topKAcc) bool {
	m := s.m
	row := d.Scores[i*m : (i+1)*m]
	labels := d.Labels[i*m : (i+1)*m]
	if !s.selectTop(row) {
		for a, v := range row {
			if math.IsNaN(float64(v)) {
				acc.errAt = i*m + a
				acc.err = fmt.Errorf("evaluate: score of image %d, attribute %d: %w", i, a, ErrNaN)
				return false
			}
		}
	}
	if col, ok := countLabels(row, labels, s.layout, acc); !ok {
		acc.errAt = i*m + col
		acc.err = fmt.Errorf("evaluate: label %d of image %d, attribute %d: want 1, -1 or 0",
			labels[col], i, col)
		return false
	}

	top := s.all.ranked()
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
	for t := range s.types {
		top := s.types[t].ranked()
		for ki, k := range ks {
			hits := int64(0)
			for _, c := range top[:min(k, len(top))] {
				if labels[candidateIndex(c)] == 1 {
					hits++
				}
			}
			acc.typeHits[ki*len(s.types)+t] += hits
		}
	}
	return true
}

// selectTop fills the heaps with row's best attributes overall and per
// type. It returns false if row holds a NaN.
func (s *selector) selectTop(row []float32) bool {
	// The overall selection looks at every score, so it alone checks NaN.
	ok := s.all.selectFrom(row, nil)
	for t := range s.types {
		s.types[t].selectFrom(row, s.layout.lists[t])
	}
	return ok
}

// countLabels counts a row's labels. On an invalid label it returns the
// label's column and false.
func countLabels(row []float32, labels []int8, layout *typeLayout, acc *topKAcc) (int, bool) {
	for a, l := range labels {
		if l == -1 {
			continue
		}
		switch l {
		case 1:
			acc.pos[a]++
			if layout != nil {
				acc.typePos[layout.slot[a]]++
			}
			acc.posKeys = append(acc.posKeys, posKey{int32(a), orderKey(row[a])})
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
