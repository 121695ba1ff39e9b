package resample

import (
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/pipeline/pipelinetest"
)

// fixture: attribute 0 is common (4 positives), 1 and 2 are rare (1 each),
// so with the median threshold T = 1, rows 3 and 4 are minority rows.
func fixture() *artifacts.Samples {
	s := &artifacts.Samples{Root: "/data", NumAttributes: 3}
	rows := [][]int8{{1, -1, -1}, {1, -1, -1}, {1, -1, 0}, {1, 1, -1}, {-1, -1, 1}}
	for i, r := range rows {
		s.Image = append(s.Image, string(rune('a'+i))+".jpg")
		s.Partition = append(s.Partition, "train")
		s.Category = append(s.Category, 0)
		s.BBox = append(s.BBox, [4]int32{})
		s.HasBBox = append(s.HasBBox, false)
		s.Landmarks = append(s.Landmarks, nil)
		s.Labels = append(s.Labels, r...)
	}
	return s
}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func TestThreshold(t *testing.T) {
	tests := []struct {
		pos  []int
		q    float64
		want int
	}{
		{[]int{4, 1, 1}, 0.5, 1},
		{[]int{4, 1, 1}, 1, 4},
		{[]int{4, 1, 1}, 0, 1},
		{[]int{0, 0, 10, 20, 30, 40}, 0.5, 20},
		{[]int{0, 0}, 0.5, 0},
	}
	for _, tt := range tests {
		if got := threshold(tt.pos, tt.q); got != tt.want {
			t.Errorf("threshold(%v, %g) = %d, want %d", tt.pos, tt.q, got, tt.want)
		}
	}
}

func TestMinority(t *testing.T) {
	in := fixture()
	p := NewParams()
	p.ReplaceFraction = 2.0 / 3
	out, err := Resample(in, p, rng(1))
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != in.Len() {
		t.Fatalf("%d rows, want %d", out.Len(), in.Len())
	}
	replaced := 0
	for i := range 3 { // the majority-only rows
		if out.Image[i] != in.Image[i] {
			replaced++
			if out.Image[i] != "d.jpg" && out.Image[i] != "e.jpg" {
				t.Errorf("row %d replaced by %s, not a minority row", i, out.Image[i])
			}
		}
	}
	if replaced != 2 {
		t.Errorf("%d rows replaced, want round(2/3 x 3) = 2", replaced)
	}
	if diff := cmp.Diff(in.Image[3:], out.Image[3:]); diff != "" {
		t.Errorf("minority rows changed (-want +got):\n%s", diff)
	}
}

func TestOversampleAndUndersample(t *testing.T) {
	p := NewParams()
	p.Mode, p.Quantile = "oversample", 1 // T = 4: rare attributes get 3 more each
	out, err := Resample(fixture(), p, rng(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := count(out).pos; !cmp.Equal(got[1:], []int{4, 4}) || out.Len() != 11 {
		t.Errorf("oversample: %d rows, positives %v; want 11 rows, 4 each for the rare ones", out.Len(), got)
	}

	p.Mode, p.Quantile = "undersample", 0.5 // T = 1: attribute 0 falls from 4 to 1
	out, err = Resample(fixture(), p, rng(1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"d.jpg", "e.jpg"}, out.Image); diff != "" {
		t.Errorf("undersample rows (-want +got):\n%s", diff)
	}
}

func TestWeights(t *testing.T) {
	got := Weights(fixture(), 100)
	// attribute 0: 1 absent / 4 present; 1: 4 / 1; 2: 3 / 1 (one unknown).
	if diff := cmp.Diff([]float64{0.25, 4, 3}, got); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	if got := Weights(fixture(), 2); !cmp.Equal(got, []float64{0.5, 2, 2}) {
		t.Errorf("clipped weights %v, want [0.5 2 2]", got)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Params{
		{Mode: "smote", Quantile: 0.5, MaxWeight: 10},
		{Mode: "minority", ReplaceFraction: 1.5, Quantile: 0.5, MaxWeight: 10},
		{Mode: "minority", Quantile: 2, MaxWeight: 10},
		{Mode: "minority", Quantile: 0.5, MaxWeight: 0.5},
		{Mode: "minority", Quantile: math.NaN(), MaxWeight: 10},
		{Mode: "minority", ReplaceFraction: math.NaN(), Quantile: 0.5, MaxWeight: 10},
		{Mode: "minority", Quantile: 0.5, MaxWeight: math.Inf(1)},
	} {
		var pe *pipeline.ParamError
		if err := p.Validate(); !errors.As(err, &pe) {
			t.Errorf("%+v: %v, want a parameter error naming its key", p, err)
		}
	}
}

// TestRunDeterministic runs the kind twice with one seed: same bytes.
func TestRunDeterministic(t *testing.T) {
	ids := map[string][]artifacts.ID{}
	for range 2 {
		run := pipelinetest.NewRun(t, "balanced")
		run.SeedValue = 42
		id, err := run.Store().PutSamples(fixture())
		if err != nil {
			t.Fatal(err)
		}
		run.Bind("samples", id)
		attrs := []artifacts.Attribute{{Index: 0, Name: "solid"}, {Index: 1, Name: "floral"}, {Index: 2, Name: "lace"}}
		if id, err = run.Store().PutAttributes(attrs); err != nil {
			t.Fatal(err)
		}
		run.Bind("attributes", id)
		if err := New().Run(t.Context(), run, NewParams()); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"samples", "frequencies", "weights"} {
			id, err := run.Output(name)
			if err != nil {
				t.Fatal(err)
			}
			ids[name] = append(ids[name], id)
		}
		w, err := ReadWeights(run.Store(), ids["weights"][len(ids["weights"])-1])
		if err != nil || len(w) != 3 {
			t.Fatalf("ReadWeights: %v, %v", w, err)
		}
	}
	for name, pair := range ids {
		if pair[0] != pair[1] {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
}

func TestOutputNeutral(t *testing.T) {
	p := NewParams()
	if got := (kind{}).OutputNeutral(p, nil); got != nil {
		t.Errorf("minority: %v, want nothing left out", got)
	}
	p.Mode = "oversample"
	if got := (kind{}).OutputNeutral(p, nil); len(got) != 1 || got[0] != "replace_fraction" {
		t.Errorf("oversample: %v, want replace_fraction left out", got)
	}
}

// TestLogOutcomeWarnsWhenNothingReplaced: the minority mode that replaces
// no row warns with the reason, and one that replaces rows does not warn.
func TestLogOutcomeWarnsWhenNothingReplaced(t *testing.T) {
	in := fixture()
	tests := []struct {
		name     string
		quantile float64
		fraction float64
		want     string // in the warning; "" for none
	}{
		{"replaces", 0.5, 2.0 / 3, ""},
		{"every row minority", 1, 0.3, "every row is labelled with a minority attribute"},
		{"fraction rounds to 0", 0.5, 0.1, "replace_fraction rounds to 0 rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			log := slog.New(slog.NewTextHandler(&buf, nil))
			p := NewParams()
			p.Quantile, p.ReplaceFraction = tt.quantile, tt.fraction
			out, err := Resample(in, p, rng(1))
			if err != nil {
				t.Fatal(err)
			}
			logOutcome(log, in, out, p)
			warned := strings.Contains(buf.String(), "level=WARN")
			if tt.want == "" && warned {
				t.Errorf("warned though rows were replaced:\n%s", buf.String())
			}
			if tt.want != "" && !strings.Contains(buf.String(), tt.want) {
				t.Errorf("log lacks %q:\n%s", tt.want, buf.String())
			}
		})
	}
}
