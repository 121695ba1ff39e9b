package resample

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"stitch/artifacts"
	"stitch/pipeline"
)

// Params are the parameters of a resample stage.
type Params struct {
	// Mode is minority, oversample or undersample.
	Mode string `yaml:"mode"`
	// ReplaceFraction is the share of majority-only rows replaced (minority).
	ReplaceFraction float64 `yaml:"replace_fraction"`
	// Quantile of the positive counts that separates minority from
	// majority attributes.
	Quantile float64 `yaml:"quantile"`
	// MaxWeight clips the positive weights.
	MaxWeight float64 `yaml:"max_weight"`
	// Seed overrides the stage's seed when not 0.
	Seed int64 `yaml:"seed"`
}

// NewParams returns the defaults: minority mode, 0.3, median, weights up
// to 100.
func NewParams() *Params {
	return &Params{Mode: "minority", ReplaceFraction: 0.3, Quantile: 0.5, MaxWeight: 100}
}

// Validate checks the parameters.
func (p *Params) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, pipeline.ParamErrorf(key, format, args...))
	}
	switch p.Mode {
	case "minority", "oversample", "undersample":
	default:
		bad("mode", "mode %q: want minority, oversample or undersample", p.Mode)
	}
	// Written so that NaN fails each test.
	if !(p.ReplaceFraction >= 0 && p.ReplaceFraction <= 1) {
		bad("replace_fraction", "replace_fraction %g: want 0 to 1", p.ReplaceFraction)
	}
	if !(p.Quantile >= 0 && p.Quantile <= 1) {
		bad("quantile", "quantile %g: want 0 to 1", p.Quantile)
	}
	if !(p.MaxWeight >= 1) || math.IsInf(p.MaxWeight, 0) {
		bad("max_weight", "max_weight %g: want a finite weight of 1 or more", p.MaxWeight)
	}
	return errors.Join(errs...)
}

type kind struct{}

// New returns the resample stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "resample" }
func (kind) Version() string { return "1" }
func (kind) NewParams() any  { return NewParams() }

// OutputNeutral leaves replace_fraction out of the run key outside the
// minority mode, the only one that reads it.
func (kind) OutputNeutral(params any, _ func(string) bool) []string {
	if params.(*Params).Mode != "minority" {
		return []string{"replace_fraction"}
	}
	return nil
}

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "samples", Kind: artifacts.KindSamples, Also: []string{artifacts.KindImages},
			Doc: "the training samples (or images) to rebalance"},
		{Name: "attributes", Kind: artifacts.KindAttributes, Optional: true, Doc: "attribute names for the tables"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		// No declared kind: a samples or images table, as the input was.
		{Name: "samples", Doc: "the resampled samples (or images)"},
		{Name: "frequencies", Kind: artifacts.KindFrequencies, Doc: "positives per attribute before and after"},
		{Name: "weights", Kind: artifacts.KindWeights, Doc: "per-attribute positive weights for the loss"},
	}
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	store := run.Store()
	id, ok := run.Input("samples")
	if !ok {
		return errors.New("resample: no samples input")
	}
	in, err := store.GetSamples(id)
	if err != nil {
		return err
	}
	names := make([]string, in.NumAttributes)
	for j := range names {
		names[j] = fmt.Sprintf("attribute %d", j)
	}
	if aid, ok := run.Input("attributes"); ok {
		attrs, err := store.GetAttributes(aid)
		if err != nil {
			return err
		}
		if len(attrs) != in.NumAttributes {
			return fmt.Errorf("resample: %d attributes for samples of %d", len(attrs), in.NumAttributes)
		}
		for _, a := range attrs {
			names[a.Index] = a.Name
		}
	}
	seed := p.Seed
	if seed == 0 {
		seed = run.Seed()
	}
	out, err := Resample(in, p, rand.New(rand.NewPCG(uint64(seed), 0x7e5a3b1e)))
	if err != nil {
		return err
	}
	logOutcome(run.Logger(), in, out, p)

	if id, err = store.PutSamples(out); err != nil {
		return err
	}
	run.SetOutput("samples", id)
	if id, err = putFrequencies(store, names, count(in), count(out)); err != nil {
		return err
	}
	run.SetOutput("frequencies", id)
	if id, err = putWeights(store, names, Weights(out, p.MaxWeight)); err != nil {
		return err
	}
	run.SetOutput("weights", id)
	return nil
}

// counts are per-attribute label counts.
type counts struct{ pos, known []int }

func count(s *artifacts.Samples) counts {
	c := counts{pos: make([]int, s.NumAttributes), known: make([]int, s.NumAttributes)}
	for i := range s.Len() {
		for j, v := range s.Row(i) {
			if v != artifacts.Unknown {
				c.known[j]++
			}
			if v == artifacts.Present {
				c.pos[j]++
			}
		}
	}
	return c
}

// threshold returns T, the q quantile (nearest rank, rounding down) of
// the positive counts that are above zero; 0 when none is.
func threshold(pos []int, q float64) int {
	var nonzero []int
	for _, n := range pos {
		if n > 0 {
			nonzero = append(nonzero, n)
		}
	}
	if len(nonzero) == 0 {
		return 0
	}
	slices.Sort(nonzero)
	return nonzero[int(math.Floor(q*float64(len(nonzero)-1)))]
}

// Resample applies p's mode to s with rng; see the package documentation.
func Resample(s *artifacts.Samples, p *Params, rng *rand.Rand) (*artifacts.Samples, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := count(s)
	t, minorityRow := rowClasses(s, c, p.Quantile)
	switch p.Mode {
	case "minority":
		return replaceMajority(s, minorityRow, p.ReplaceFraction, rng), nil
	case "oversample":
		return oversample(s, c, t, rng), nil
	default:
		return undersample(s, c, t, minorityRow, rng), nil
	}
}

// rowClasses returns T, the threshold of the q quantile, and which rows
// are minority rows (see the package documentation).
func rowClasses(s *artifacts.Samples, c counts, q float64) (int, []bool) {
	t := threshold(c.pos, q)
	minorityRow := make([]bool, s.Len())
	for i := range s.Len() {
		for j, v := range s.Row(i) {
			if v == artifacts.Present && c.pos[j] <= t {
				minorityRow[i] = true
				break
			}
		}
	}
	return t, minorityRow
}

// logOutcome says what a resampling did, and warns when the minority mode
// replaced nothing, which leaves the table as it was, and why.
func logOutcome(log *slog.Logger, in, out *artifacts.Samples, p *Params) {
	if p.Mode != "minority" {
		log.Info("resampled", "mode", p.Mode, "rows_in", in.Len(), "rows_out", out.Len())
		return
	}
	t, minorityRow := rowClasses(in, count(in), p.Quantile)
	minority := 0
	for _, m := range minorityRow {
		if m {
			minority++
		}
	}
	majority := in.Len() - minority
	replaced := 0
	if minority > 0 {
		replaced = int(math.Round(p.ReplaceFraction * float64(majority)))
	}
	log.Info("resampled", "mode", p.Mode, "rows", in.Len(), "threshold", t, "minority_rows", minority,
		"majority_only_rows", majority, "replaced", replaced)
	switch {
	case replaced > 0:
	case majority == 0:
		log.Warn("minority resampling replaced no row: every row is labelled with a minority attribute "+
			"(one with at most threshold positives); a lower quantile makes fewer attributes minority",
			"quantile", p.Quantile, "threshold", t)
	case minority == 0:
		log.Warn("minority resampling replaced no row: no row is labelled with a minority attribute",
			"quantile", p.Quantile, "threshold", t)
	default:
		log.Warn("minority resampling replaced no row: replace_fraction rounds to 0 rows",
			"replace_fraction", p.ReplaceFraction, "majority_only_rows", majority)
	}
}

func replaceMajority(s *artifacts.Samples, minorityRow []bool, fraction float64, rng *rand.Rand) *artifacts.Samples {
	var majority, minority []int
	for i, m := range minorityRow {
		if m {
			minority = append(minority, i)
		} else {
			majority = append(majority, i)
		}
	}
	source := make([]int, s.Len())
	for i := range source {
		source[i] = i
	}
	if len(minority) > 0 {
		k := int(math.Round(fraction * float64(len(majority))))
		rng.Shuffle(len(majority), func(a, b int) { majority[a], majority[b] = majority[b], majority[a] })
		for _, i := range majority[:k] {
			source[i] = minority[rng.IntN(len(minority))]
		}
	}
	out := s.EmptyLike()
	for _, i := range source {
		out.Append(s, i)
	}
	return out
}

func oversample(s *artifacts.Samples, c counts, t int, rng *rand.Rand) *artifacts.Samples {
	out := s.EmptyLike()
	for i := range s.Len() {
		out.Append(s, i)
	}
	for j, n := range c.pos {
		if n == 0 || n >= t {
			continue
		}
		var rows []int
		for i := range s.Len() {
			if s.Row(i)[j] == artifacts.Present {
				rows = append(rows, i)
			}
		}
		for range t - n {
			out.Append(s, rows[rng.IntN(len(rows))])
		}
	}
	return out
}

func undersample(s *artifacts.Samples, c counts, t int, minorityRow []bool, rng *rand.Rand) *artifacts.Samples {
	order := make([]int, 0, len(c.pos))
	for j, n := range c.pos {
		if n > t {
			order = append(order, j)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return c.pos[order[a]] > c.pos[order[b]] })
	current := slices.Clone(c.pos)
	removed := make([]bool, s.Len())
	for _, j := range order {
		var candidates []int
		for i := range s.Len() {
			if !removed[i] && !minorityRow[i] && s.Row(i)[j] == artifacts.Present {
				candidates = append(candidates, i)
			}
		}
		rng.Shuffle(len(candidates), func(a, b int) { candidates[a], candidates[b] = candidates[b], candidates[a] })
		for _, i := range candidates {
			if current[j] <= t {
				break
			}
			removed[i] = true
			for k, v := range s.Row(i) {
				if v == artifacts.Present {
					current[k]--
				}
			}
		}
	}
	out := s.EmptyLike()
	for i := range s.Len() {
		if !removed[i] {
			out.Append(s, i)
		}
	}
	return out
}

// Weights returns each attribute's positive weight: absent over present
// among known labels, clipped to [1/maxWeight, maxWeight].
func Weights(s *artifacts.Samples, maxWeight float64) []float64 {
	c := count(s)
	w := make([]float64, len(c.pos))
	for j := range w {
		pos, neg := float64(c.pos[j]), float64(c.known[j]-c.pos[j])
		if pos == 0 {
			w[j] = maxWeight
			continue
		}
		w[j] = min(maxWeight, max(1/maxWeight, neg/pos))
	}
	return w
}

func tableMeta(kind string) *arrow.Metadata {
	md := arrow.NewMetadata([]string{artifacts.MetaKind}, []string{kind})
	return &md
}

// FrequenciesSchema is the schema of a frequencies table.
var FrequenciesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "positives_before", Type: arrow.PrimitiveTypes.Int64},
	{Name: "known_before", Type: arrow.PrimitiveTypes.Int64},
	{Name: "frequency_before", Type: arrow.PrimitiveTypes.Float64},
	{Name: "positives_after", Type: arrow.PrimitiveTypes.Int64},
	{Name: "known_after", Type: arrow.PrimitiveTypes.Int64},
	{Name: "frequency_after", Type: arrow.PrimitiveTypes.Float64},
}, tableMeta(artifacts.KindFrequencies))

func putFrequencies(store *artifacts.Store, names []string, before, after counts) (artifacts.ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, FrequenciesSchema)
	defer b.Release()
	freq := func(pos, known int) float64 {
		if known == 0 {
			return 0
		}
		return float64(pos) / float64(known)
	}
	for j, name := range names {
		b.Field(0).(*array.Int32Builder).Append(int32(j))
		b.Field(1).(*array.StringBuilder).Append(name)
		for k, c := range []counts{before, after} {
			b.Field(2 + 3*k).(*array.Int64Builder).Append(int64(c.pos[j]))
			b.Field(3 + 3*k).(*array.Int64Builder).Append(int64(c.known[j]))
			b.Field(4 + 3*k).(*array.Float64Builder).Append(freq(c.pos[j], c.known[j]))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return store.PutRecords(FrequenciesSchema, rec)
}

// WeightsSchema is the schema of a weights table.
var WeightsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "pos_weight", Type: arrow.PrimitiveTypes.Float64},
}, tableMeta(artifacts.KindWeights))

func putWeights(store *artifacts.Store, names []string, w []float64) (artifacts.ID, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, WeightsSchema)
	defer b.Release()
	for j, name := range names {
		b.Field(0).(*array.Int32Builder).Append(int32(j))
		b.Field(1).(*array.StringBuilder).Append(name)
		b.Field(2).(*array.Float64Builder).Append(w[j])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return store.PutRecords(WeightsSchema, rec)
}

// ReadWeights reads a weights table into pos_weight by attribute index,
// for the train stage's loss.
func ReadWeights(store *artifacts.Store, id artifacts.ID) ([]float64, error) {
	tbl, err := store.GetTable(id)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	if k := artifacts.KindOf(tbl.Schema()); k != artifacts.KindWeights {
		return nil, fmt.Errorf("weights %s: is a %q artifact", id.Short(), k)
	}
	reader := array.NewTableReader(tbl, 1<<16)
	defer reader.Release()
	var w []float64
	for reader.Next() {
		rec := reader.RecordBatch()
		idx, ok1 := rec.Column(0).(*array.Int32)
		val, ok2 := rec.Column(2).(*array.Float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("weights %s: unexpected column types", id.Short())
		}
		for i := range int(rec.NumRows()) {
			j := int(idx.Value(i))
			if j < 0 || j > 1<<20 {
				return nil, fmt.Errorf("weights %s: bad index %d", id.Short(), j)
			}
			for len(w) <= j {
				w = append(w, 0)
			}
			w[j] = val.Value(i)
		}
	}
	return w, reader.Err()
}
