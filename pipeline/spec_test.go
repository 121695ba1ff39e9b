package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/internal/testkinds"
	"stitch/pipeline"
)

func registry(t testing.TB) (*pipeline.Registry, *testkinds.Counter) {
	t.Helper()
	c := testkinds.NewCounter()
	reg, err := pipeline.NewRegistry(testkinds.All(c)...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, c
}

func parse(t testing.TB, reg *pipeline.Registry, src string, sets ...string) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Parse("p.yaml", []byte(src), reg, sets)
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return p
}

func stageNames(p *pipeline.Pipeline) []string {
	var out []string
	for _, s := range p.Stages {
		out = append(out, s.Name)
	}
	return out
}

func TestValidationErrors(t *testing.T) {
	reg, _ := registry(t)
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error text
	}{
		{"unknown kind", `
stages:
  a:
    uses: sourse
`, []string{`p.yaml:4:11: stage a: unknown stage kind "sourse" (did you mean "source"?)`}},
		{"unknown parameter", `
stages:
  a:
    uses: source
    with: {valeu: x}
`, []string{`p.yaml:5:12: unknown parameter valeu for kind source (did you mean "value"?)`}},
		{"mistyped parameter", `
stages:
  a:
    uses: source
    with:
      lines: many
`, []string{"p.yaml:6:14: parameter lines: cannot unmarshal !!str `many` into int"}},
		{"validate", `
stages:
  a: {uses: source, with: {lines: -1}}
`, []string{"invalid parameters: lines must be >= 0"}},
		{"misspelt reference", `
stages:
  alpha: {uses: source}
  b: {uses: upper, needs: {in: alpah.out}}
`, []string{`p.yaml:4:32: stage b: input "in": no stage "alpah" (did you mean "alpha"?)`}},
		{"unknown output", `
stages:
  a: {uses: source}
  b: {uses: upper, needs: {in: a.outt}}
`, []string{`stage a (kind source) has no output "outt" (did you mean "out"?)`}},
		{"unknown input", `
stages:
  a: {uses: source}
  b: {uses: upper, needs: {in: a.out, inn: a.out}}
`, []string{`kind upper has no input "inn"`}},
		{"required input", `
stages:
  b: {uses: upper}
`, []string{`p.yaml:3:3: stage b: required input "in" is not bound in needs`}},
		{"duplicate stage", `
stages:
  a: {uses: source}
  a: {uses: source}
`, []string{`p.yaml:4:3: duplicate stage "a" (first at 3:3)`}},
		{"undefined parameter", `
params: {value: x}
stages:
  a: {uses: source, with: {value: "${valeu}"}}
`, []string{`p.yaml:4:35: undefined parameter ${valeu} (did you mean "value"?)`}},
		{"artifact kind mismatch", `
stages:
  n: {uses: number}
  b: {uses: upper, needs: {in: n.out}}
`, []string{`input "in" takes text artifacts, but n.out is number`}},
		{"many variants into one input", `
stages:
  a: {uses: source, matrix: {value: [x, y]}}
  b: {uses: upper, needs: {in: a.out}}
`, []string{`input "in" takes one artifact, but this binds 2 (a[x].out, a[y].out)`}},
		{"cycle of three", `
stages:
  c: {uses: upper, needs: {in: b.out}}
  b: {uses: upper, needs: {in: a.out}}
  a: {uses: upper, needs: {in: c.out}}
`, []string{"cycle: a -> b -> c -> a"}},
		{"unknown top-level key", `
stage: {}
`, []string{`unknown key "stage" (did you mean "stages"?)`}},
		{"matrix key that is nothing", `
stages:
  a: {uses: source, matrix: {valeu: [x]}}
`, []string{`matrix key "valeu" is no parameter of kind source`}},
		{"syntax", "stages: [\n", []string{"p.yaml:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.src), reg, nil)
			var se pipeline.SpecErrors
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want SpecErrors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}

// Case 12: the same cycle message every time, from the smallest stage.
func TestCycleIsStable(t *testing.T) {
	reg, _ := registry(t)
	src := `
stages:
  c: {uses: upper, needs: {in: b.out}}
  b: {uses: upper, needs: {in: a.out}}
  a: {uses: upper, needs: {in: c.out}}
  z: {uses: upper, needs: {in: a.out}}
`
	for range 5 {
		_, err := pipeline.Parse("p.yaml", []byte(src), reg, nil)
		if got, want := err.Error(), "p.yaml:5:3: cycle: a -> b -> c -> a"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestSetOverridesAndTypes(t *testing.T) {
	reg, _ := registry(t)
	src := `
params: {n: 2, v: x, lr: 0.1}
stages:
  a: {uses: source, with: {value: "v=${v}", lines: "${n}", lr: "${lr}"}}
`
	p := parse(t, reg, src, "n=3", "lr=1e-4")
	got := p.Stages[0].Params.(*testkinds.SourceParams)
	want := &testkinds.SourceParams{Value: "v=x", Lines: 3, LR: 1e-4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if _, err := pipeline.Parse("p.yaml", []byte(src), reg, []string{"m=1"}); err == nil ||
		!strings.Contains(err.Error(), `no parameter "m"`) {
		t.Errorf("unknown --set: got %v", err)
	}
}

func TestMatrixNamesAndBinding(t *testing.T) {
	reg, _ := registry(t)
	src := `
stages:
  a: {uses: source}
  train:
    uses: upper
    needs: {in: a.out}
    matrix: {suffix: [x, y], scale: [0.6, 0.8]}
  eval:
    uses: upper
    needs: {in: train.out}
    matrix: {suffix: [x, y], scale: [0.6, 0.8]}
  alt:
    uses: upper
    needs: {in: a.out}
    with: {suffix: base}
    matrix:
      include:
        - {name: A, scale: 2}
        - {name: B, suffix: "${matrix.name}-b"}
  all: {uses: join, needs: {in: train.out, extra: "train[0.8,y].out"}}
`
	p := parse(t, reg, src)
	// Producers first, the smallest ready name next.
	want := []string{"a", "alt-A", "alt-B", "train[0.6,x]", "eval[0.6,x]", "train[0.6,y]", "eval[0.6,y]",
		"train[0.8,x]", "eval[0.8,x]", "train[0.8,y]", "all", "eval[0.8,y]"}
	if diff := cmp.Diff(want, stageNames(p)); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	ev, _ := p.Lookup("eval[0.8,x]")
	if got := ev.Inputs[0].Refs; !cmp.Equal(got, []pipeline.Ref{{Stage: "train[0.8,x]", Output: "out"}}) {
		t.Errorf("eval[0.8,x] binds %v", got)
	}
	all, _ := p.Lookup("all")
	if n := len(all.Inputs[0].Refs); n != 1 {
		t.Errorf("all.extra binds %d variants, want 1", n)
	}
	if n := len(all.Inputs[1].Refs); n != 4 {
		t.Errorf("all binds %d variants, want 4", n)
	}
	b, _ := p.Lookup("alt-B")
	if got := b.Params.(*testkinds.UpperParams); got.Suffix != "B-b" || got.Scale != 1 {
		t.Errorf("alt-B params %+v", got)
	}
}

// Anchors and merge keys hash like the expanded text; float spellings and
// key order give one key (case 3).
func TestKeysIgnoreSpelling(t *testing.T) {
	reg, _ := registry(t)
	variants := []string{`
stages:
  a: {uses: source, with: {value: v, lr: 1e-5, lines: 2}}
  b: {uses: upper, needs: {in: a.out}, with: {suffix: s, scale: 2}}
`, `
stages:
  b: {uses: upper, needs: {in: a.out}, with: {scale: 2.0, suffix: s}}
  a: {uses: source, with: {lines: 2, lr: 1.0e-5, value: v}}
`, `
params: {base: &base {value: v, lr: 0.00001}}
stages:
  a: {uses: source, with: {<<: *base, lines: 2}}
  b: {uses: upper, needs: {in: a.out}, with: {suffix: s, scale: 2}}
`}
	var first []string
	for i, src := range variants {
		p := parse(t, reg, src)
		w, err := pipeline.OpenWorkspaceReadOnly(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		sts, err := w.Status(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		a := sts[0]
		if first == nil {
			first = []string{a.Key}
			continue
		}
		if a.Key != first[0] {
			t.Errorf("variant %d: key %s, want %s", i, a.Key, first[0])
		}
	}
}

func FuzzParse(f *testing.F) {
	reg, _ := registry(f)
	for _, seed := range []string{
		"stages: {a: {uses: source}}",
		"params: {x: 1}\nstages:\n  a: {uses: source, with: {value: \"${x}\"}}\n  b: {uses: upper, needs: {in: a.out}}",
		"x: &a [*a]",
		"stages: {a: {uses: upper, matrix: {include: [{name: A}]}, needs: {in: a.out}}}",
		"a: &a {b: *a}\nstages: {<<: *a}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := pipeline.Parse("f.yaml", []byte(src), reg, nil)
		if err != nil {
			var se pipeline.SpecErrors
			if !errors.As(err, &se) || len(se) == 0 {
				t.Fatalf("error is not SpecErrors: %v", err)
			}
			return
		}
		if len(p.Stages) == 0 {
			t.Fatal("valid pipeline without stages")
		}
	})
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
