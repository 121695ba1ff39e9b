package metrics

import (
	"math"
	"slices"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// blockAttributes is how many attributes the ranking pass handles together:
// 16 float32 scores are one cache line of each row, and 16 lookup tables
// stay in cache while the pass walks down the rows.
const blockAttributes = 16

// rankChunkRows is how many rows a ranking worker takes at a time: 512
// rows of 1000 scores (2 MB) stay in the last-level cache while the pass
// walks them block by block.
const rankChunkRows = 512

// orderKey maps a score to a uint32 with the same order, so that ranking
// works on integers: equal scores get equal keys (-0 is folded into +0).
func orderKey(s float32) uint32 {
	b := math.Float32bits(s)
	if b == 1<<31 {
		b = 0
	}
	mask := uint32(int32(b)>>31) | 1<<31
	return b ^ mask
}

// scoreOf inverts orderKey.
func scoreOf(key uint32) float32 {
	if key&(1<<31) != 0 {
		return math.Float32frombits(key &^ (1 << 31))
	}
	return math.Float32frombits(^key)
}

// splitters are the distinct score keys of a set of positives. Ranking
// needs only where each negative falls among them; negatives are never
// sorted, which is what makes the threshold-free metrics cheap.
type splitters struct {
	keys []uint32 // distinct, ascending
	mult []int64  // positives with keys[i]
	lo   uint32
	hi   uint32
	// table[b] is the first index whose key is at least lo + b<<shift,
	// so a lookup scans only the keys of one bucket of the key range.
	shift uint
	table []int32
}

func newSplitters(sorted []uint32) *splitters {
	s := &splitters{}
	for i, k := range sorted {
		if i > 0 && k == sorted[i-1] {
			s.mult[len(s.mult)-1]++
			continue
		}
		s.keys = append(s.keys, k)
		s.mult = append(s.mult, 1)
	}
	if len(s.keys) == 0 {
		return s
	}
	s.lo, s.hi = s.keys[0], s.keys[len(s.keys)-1]

	// About two buckets per key keeps the scans short for any smooth
	// score distribution; a clustered one falls back to binary search.
	target := uint64(2)
	for target < 2*uint64(len(s.keys)) {
		target *= 2
	}
	for uint64(s.hi-s.lo)>>s.shift >= target {
		s.shift++
	}
	buckets := int(uint64(s.hi-s.lo)>>s.shift) + 1
	s.table = make([]int32, buckets+1)
	i := 0
	for b := range buckets {
		start := uint64(s.lo) + uint64(b)<<s.shift
		for i < len(s.keys) && uint64(s.keys[i]) < start {
			i++
		}
		s.table[b] = int32(i)
	}
	s.table[buckets] = int32(len(s.keys))
	return s
}

// locate returns the number of keys below x and whether x equals the next
// one. s must hold at least one key.
func (s *splitters) locate(x uint32) (int, bool) {
	if x <= s.lo {
		return 0, x == s.lo
	}
	if x > s.hi {
		return len(s.keys), false
	}
	b := (x - s.lo) >> s.shift
	i, j := int(s.table[b]), int(s.table[b+1])
	if j-i > 8 {
		i += sort.Search(j-i, func(n int) bool { return s.keys[i+n] >= x })
	} else {
		for i < j && s.keys[i] < x {
			i++
		}
	}
	// x <= hi, so a key at least x exists and i is in range.
	return i, s.keys[i] == x
}

// negCounts places negatives among splitters: below[i] counts those with
// exactly i keys below and none equal, eq[i] those equal to keys[i].
type negCounts struct {
	below, eq []int64
}

func newNegCounts(s *splitters) negCounts {
	return negCounts{below: make([]int64, len(s.keys)+1), eq: make([]int64, len(s.keys))}
}

func (c negCounts) add(s *splitters, key uint32) {
	i, eq := s.locate(key)
	if eq {
		c.eq[i]++
	} else {
		c.below[i]++
	}
}

func (c negCounts) merge(o negCounts) {
	for i, v := range o.below {
		c.below[i] += v
	}
	for i, v := range o.eq {
		c.eq[i] += v
	}
}

// apAUC computes average precision and ROC AUC from the positives'
// splitters and where the negatives fell among them (see doc.go).
func apAUC(s *splitters, c negCounts) (ap, auc float64, hasAP, hasAUC bool) {
	var pos, neg int64
	for _, m := range s.mult {
		pos += m
	}
	for i := range c.below {
		neg += c.below[i]
	}
	for _, v := range c.eq {
		neg += v
	}
	if pos == 0 {
		return 0, 0, false, false
	}

	// AUC by the Mann-Whitney count, doubled so ties stay integers: a
	// negative scores 2 per positive above it and 1 per positive equal.
	var u2, below int64
	for i := range s.keys {
		u2 += c.below[i]*2*(pos-below) + c.eq[i]*(2*(pos-below)-s.mult[i])
		below += s.mult[i]
	}
	if neg > 0 {
		auc = float64(u2) / (2 * float64(pos) * float64(neg))
	}

	// AP walks the distinct positive scores from the highest down: at
	// each, recall gains mult/pos at the precision of everything scoring
	// at least that much.
	var tp int64
	negAtLeast := c.below[len(s.keys)]
	for i := len(s.keys) - 1; i >= 0; i-- {
		negAtLeast += c.eq[i]
		tp += s.mult[i]
		ap += float64(s.mult[i]) * float64(tp) / float64(tp+negAtLeast)
		negAtLeast += c.below[i]
	}
	return ap / float64(pos), auc, true, neg > 0
}

// rankingPass computes average precision and ROC AUC per attribute and
// over all pairs. The positives' keys are known from the top-k pass; this
// pass places every negative among them.
func rankingPass(d *Data, tk *topKResult, workers int) Ranking {
	m, n := d.NumAttributes, d.NumImages()
	perAttr := make([]*splitters, m)
	for a := range m {
		perAttr[a] = newSplitters(tk.keys[tk.keyStart[a]:tk.keyStart[a+1]])
	}
	all := slices.Clone(tk.keys)
	slices.Sort(all)
	global := newSplitters(all)

	// Workers take chunks of rows and walk each chunk one block of
	// attributes at a time: the chunk stays in cache while the blocks'
	// lookup tables change, and the rows are read in address order (a
	// whole column at a time would miss the TLB on every row).
	type counts struct {
		perAttr []negCounts
		global  negCounts
	}
	acc := make([]counts, workers)
	var next atomic.Int64
	var g errgroup.Group
	for w := range workers {
		c := counts{perAttr: make([]negCounts, m), global: newNegCounts(global)}
		for a := range m {
			c.perAttr[a] = newNegCounts(perAttr[a])
		}
		acc[w] = c
		g.Go(func() error {
			for {
				lo := int(next.Add(rankChunkRows)) - rankChunkRows
				if lo >= n {
					return nil
				}
				hi := min(n, lo+rankChunkRows)
				for a0 := 0; a0 < m; a0 += blockAttributes {
					rankBlock(d, lo, hi, a0, min(m, a0+blockAttributes), perAttr, c.perAttr, global, c.global)
				}
			}
		})
	}
	// The workers cannot fail: scores and labels were checked already.
	_ = g.Wait()
	for _, c := range acc[1:] {
		for a := range m {
			acc[0].perAttr[a].merge(c.perAttr[a])
		}
		acc[0].global.merge(c.global)
	}
	perCounts, globalCounts := acc[0].perAttr, acc[0].global

	r := Ranking{AP: make([]float64, m), AUC: make([]float64, m),
		HasAP: make([]bool, m), HasAUC: make([]bool, m)}
	var sumAP, sumAUC float64
	for a := range m {
		r.AP[a], r.AUC[a], r.HasAP[a], r.HasAUC[a] = apAUC(perAttr[a], perCounts[a])
		if r.HasAP[a] {
			sumAP += r.AP[a]
			r.MacroAPAttributes++
		}
		if r.HasAUC[a] {
			sumAUC += r.AUC[a]
			r.MacroAUCAttributes++
		}
	}
	if r.MacroAPAttributes > 0 {
		r.MacroAP = sumAP / float64(r.MacroAPAttributes)
	}
	if r.MacroAUCAttributes > 0 {
		r.MacroAUC = sumAUC / float64(r.MacroAUCAttributes)
	}
	r.MicroAP, r.MicroAUC, _, _ = apAUC(global, globalCounts)
	return r
}

// rankBlock places the negatives of rows [lo, hi) and attributes [a0, a1)
// among their attribute's positives and among all positives.
func rankBlock(d *Data, lo, hi, a0, a1 int, perAttr []*splitters, perCounts []negCounts,
	global *splitters, gc negCounts) {
	m := d.NumAttributes
	hasGlobal := len(global.keys) > 0
	for i := lo; i < hi; i++ {
		base := i * m
		labels := d.Labels[base+a0 : base+a1]
		scores := d.Scores[base+a0 : base+a1]
		for j, l := range labels {
			if l != -1 {
				continue
			}
			key := orderKey(scores[j])
			if s := perAttr[a0+j]; len(s.keys) > 0 {
				perCounts[a0+j].add(s, key)
			}
			if hasGlobal {
				gc.add(global, key)
			}
		}
	}
}
