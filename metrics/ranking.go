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
	span uint32 // keys[len-1] - lo
	// ent[b] is keys[i]<<32 | i for the index i of the first key at least
	// lo + b<<shift, with multiKeys set in i when bucket b holds two keys
	// or more: one load gives both the index and the key to compare.
	shift uint
	ent   []uint64
}

// attrBucketsPerKey and globalBucketsPerKey size the bucket tables of one
// attribute's positives and of all positives. The table of all positives
// is too large for the core's caches and is read at random, so it is kept
// at half the density: fewer cache misses outweigh a few more searches.
const (
	attrBucketsPerKey   = 4
	globalBucketsPerKey = 2
)

// multiKeys marks a bucket of splitters.first that holds several keys.
const multiKeys = 1 << 31

func newSplitters(sorted []uint32, perKey int) *splitters {
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
	s.lo, s.span = s.keys[0], s.keys[len(s.keys)-1]-s.keys[0]

	// About four buckets per key (perKey) leave most buckets with one key at
	// most, which place resolves without a search; a clustered score
	// distribution only sends more negatives to the search.
	target := uint64(4)
	for target < uint64(perKey)*uint64(len(s.keys)) {
		target *= 2
	}
	for uint64(s.span)>>s.shift >= target {
		s.shift++
	}
	buckets := int(s.span>>s.shift) + 1
	s.ent = make([]uint64, buckets)
	i := 0
	for b := range buckets {
		end := uint64(s.lo) + uint64(b+1)<<s.shift
		for i < len(s.keys) && uint64(s.keys[i]) < uint64(s.lo)+uint64(b)<<s.shift {
			i++
		}
		e := uint64(s.keys[i])<<32 | uint64(i)
		if i+1 < len(s.keys) && uint64(s.keys[i+1]) < end {
			e |= multiKeys
		}
		s.ent[b] = e
	}
	return s
}

// A slot is where a key x falls among the keys of splitters, as a counter
// index: 2i when i keys are below x and x equals none, 2i+1 when x equals
// keys[i]. x's entry e is s.ent[clampedBucket(x, ...)] with s's range.
//
// Fast path: x is clamped into [lo, hi] (a key below lo lands in bucket
// 0 and compares below keys[0]; one above hi lands in the last bucket
// and compares above its last key), and its bucket gives the index i of
// the first key not below the bucket's start, and that key. When the
// bucket holds at most one key, keys[i] is that key or a later one, so
// one comparison with it places x: no search and no data-dependent
// branch. Buckets with several keys, rare by the sizing above, binary
// search them.
//
// singleSlot is that fast path, for an entry e without multiKeys.
func singleSlot(e uint64, x uint32) int {
	k := uint32(e >> 32)
	return 2*int(uint32(e)) + 2*b2i(x > k) + b2i(x == k)
}

// search is the slot's path for x in a bucket holding several keys, whose
// entry is e.
func (s *splitters) search(x uint32, e uint64) int {
	i := int(uint32(e) &^ multiKeys)
	j := i + sort.Search(len(s.keys)-i, func(n int) bool { return s.keys[i+n] >= x })
	if j < len(s.keys) && s.keys[j] == x {
		return 2*j + 1
	}
	return 2 * j
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// slotCounts counts negatives per splitters slot (see splitters.slot).
// A worker counts in uint32, which halves the cache the counters take,
// and flushes into int64 before any count could overflow.
type slotCounts struct {
	n     []uint32
	total []int64
}

func newSlotCounts(s *splitters) slotCounts {
	return slotCounts{n: make([]uint32, 2*len(s.keys)+2), total: make([]int64, 2*len(s.keys)+2)}
}

func (c slotCounts) flush() {
	for i, v := range c.n {
		c.total[i] += int64(v)
		c.n[i] = 0
	}
}

// negCounts turns the slot counts of the workers into negCounts.
func toNegCounts(s *splitters, workers []slotCounts) negCounts {
	c := negCounts{below: make([]int64, len(s.keys)+1), eq: make([]int64, len(s.keys))}
	for _, w := range workers {
		w.flush()
		for i := range c.below {
			c.below[i] += w.total[2*i]
		}
		for i := range c.eq {
			c.eq[i] += w.total[2*i+1]
		}
	}
	return c
}

// negCounts places negatives among splitters: below[i] counts those with
// exactly i keys below and none equal, eq[i] those equal to keys[i].
type negCounts struct {
	below, eq []int64
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
		perAttr[a] = newSplitters(tk.keys[tk.keyStart[a]:tk.keyStart[a+1]], attrBucketsPerKey)
	}
	all := slices.Clone(tk.keys)
	slices.Sort(all)
	global := newSplitters(all, globalBucketsPerKey)

	// Workers take chunks of rows and walk each chunk one block of
	// attributes at a time: the chunk stays in cache while the blocks'
	// lookup tables change, and the rows are read in address order (a
	// whole column at a time would miss the TLB on every row).
	type counts struct {
		perAttr []slotCounts
		global  slotCounts
	}
	acc := make([]counts, workers)
	var next atomic.Int64
	var g errgroup.Group
	for w := range workers {
		c := counts{perAttr: make([]slotCounts, m), global: newSlotCounts(global)}
		for a := range m {
			c.perAttr[a] = newSlotCounts(perAttr[a])
		}
		acc[w] = c
		g.Go(func() error {
			// A uint32 count grows by at most one per score read.
			sinceFlush := 0
			for {
				lo := int(next.Add(rankChunkRows)) - rankChunkRows
				if lo >= n {
					return nil
				}
				hi := min(n, lo+rankChunkRows)
				if sinceFlush+(hi-lo)*m > math.MaxUint32 {
					for _, pc := range c.perAttr {
						pc.flush()
					}
					c.global.flush()
					sinceFlush = 0
				}
				sinceFlush += (hi - lo) * m
				for a0 := 0; a0 < m; a0 += blockAttributes {
					rankBlock(d, lo, hi, a0, min(m, a0+blockAttributes), perAttr, c.perAttr, global, c.global.n)
				}
			}
		})
	}
	// The workers cannot fail: scores and labels were checked already.
	_ = g.Wait()

	r := Ranking{AP: make([]float64, m), AUC: make([]float64, m),
		HasAP: make([]bool, m), HasAUC: make([]bool, m)}
	var sumAP, sumAUC float64
	perWorker := make([]slotCounts, workers)
	for a := range m {
		for w := range acc {
			perWorker[w] = acc[w].perAttr[a]
		}
		r.AP[a], r.AUC[a], r.HasAP[a], r.HasAUC[a] = apAUC(perAttr[a], toNegCounts(perAttr[a], perWorker))
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
	for w := range acc {
		perWorker[w] = acc[w].global
	}
	r.MicroAP, r.MicroAUC, _, _ = apAUC(global, toNegCounts(global, perWorker))
	return r
}

// clampedBucket is the bucket of splitters.ent that x falls in, for
// splitters with the given lo, span and shift (see slot). It clamps
// without branches: whether a negative falls below or above the
// positives' range is data, which a branch would have to guess.
func clampedBucket(x uint32, lo, span int64, shift uint) uint64 {
	d := int64(x) - lo
	d &^= d >> 63 // below lo: 0
	over := span - d
	d += over & (over >> 63) // above lo + span: span
	return uint64(d) >> shift
}

// rankBlock places the negatives of rows [lo, hi) and attributes [a0, a1)
// among their attribute's positives and among all positives.
func rankBlock(d *Data, lo, hi, a0, a1 int, perAttr []*splitters, perCounts []slotCounts,
	global *splitters, gcnt []uint32) {
	m := d.NumAttributes
	// Local copies keep the block's tables one load away.
	type table struct {
		ent      []uint64
		cnt      []uint32
		lo, span int64
		shift    uint
		s        *splitters
	}
	var block [blockAttributes]table
	// An attribute without positives, or no positives at all, gets a
	// one-bucket table whose counts are thrown away: no branch in the loop.
	var dummyEnt [1]uint64
	var dummyCnt [4]uint32
	for j := range a1 - a0 {
		sp := perAttr[a0+j]
		if len(sp.keys) == 0 {
			block[j] = table{ent: dummyEnt[:], cnt: dummyCnt[:], s: sp}
			continue
		}
		block[j] = table{ent: sp.ent, cnt: perCounts[a0+j].n, lo: int64(sp.lo), span: int64(sp.span), shift: sp.shift, s: sp}
	}
	gt := table{ent: dummyEnt[:], cnt: dummyCnt[:]}
	if len(global.keys) > 0 {
		gt = table{ent: global.ent, cnt: gcnt, lo: int64(global.lo), span: int64(global.span), shift: global.shift, s: global}
	}
	for i := lo; i < hi; i++ {
		base := i * m
		labels := d.Labels[base+a0 : base+a1]
		scores := d.Scores[base+a0 : base+a1]
		scores = scores[:len(labels)]
		for j, l := range labels {
			if l != -1 {
				continue
			}
			key := orderKey(scores[j])
			t := &block[j]
			if e := t.ent[clampedBucket(key, t.lo, t.span, t.shift)]; e&multiKeys == 0 {
				t.cnt[singleSlot(e, key)]++
			} else {
				t.cnt[t.s.search(key, e)]++
			}
			if e := gt.ent[clampedBucket(key, gt.lo, gt.span, gt.shift)]; e&multiKeys == 0 {
				gt.cnt[singleSlot(e, key)]++
			} else {
				gt.cnt[gt.s.search(key, e)]++
			}
		}
	}
}
