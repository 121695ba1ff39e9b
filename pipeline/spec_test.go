package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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
		{"pipeline name of dots", "name: \"..\"\nstages: {a: {uses: source}}\n",
			[]string{`p.yaml:1:7: pipeline name "..": use letters, digits, '_', '-' and '.', ` +
				`starting with a letter, digit or '_'`}},
		{"with value the matrix shadows", "stages:\n  a:\n    uses: source\n    with: {lr: 0.1, lines: 2}\n" +
			"    matrix: {lr: [0.2, 0.3]}\n",
			[]string{`p.yaml:4:12: stage a: lr is set here and varied by the matrix at line 5, which sets it in ` +
				`every variant: remove it here`}},
		{"nested with value the matrix shadows", "stages:\n  a:\n    uses: source\n" +
			"    with: {value: {k: 1, j: 2}}\n    matrix: {value: [{k: 3}, {k: 4, j: 5}]}\n",
			[]string{`p.yaml:4:20: stage a: value.k is set here and varied by the matrix at line 5`}},
		{"empty list input", `
stages:
  a: {uses: source}
  j:
    uses: join
    needs: {in: []}
`, []string{`p.yaml:6:17: stage j: input "in" is an empty list; name at least one "stage.output" (texts to join)`}},
		{"list binds an artifact twice", `
stages:
  a: {uses: source, matrix: {value: [x, y]}}
  j:
    uses: join
    needs: {in: [a.out, "a[x].out"]}
`, []string{`p.yaml:6:25: stage j: input "in" binds a[x].out twice ("a.out" at line 6, and "a[x].out" here)`}},
		{"unknown kind", `
stages:
  a:
    uses: sourse
`, []string{`p.yaml:4:11: stage a: unknown stage kind "sourse" (did you mean "source"?)`}},
		{"required parameter, no with", `
stages:
  a:
    uses: needy
`, []string{`p.yaml:3:3: stage a: invalid parameters: name is required`}},
		{"parameter needing an unwired input", `
stages:
  s: {uses: source}
  a:
    uses: needy
    with: {name: x, use_extra: true}
  b:
    uses: needy
    needs: {extra: s.out}
    with: {name: y, use_extra: true}
`, []string{`p.yaml:6:32: stage a: invalid parameters: use_extra: true needs the extra input`}},
		{"a number for a list", `
stages:
  a:
    uses: pair
    with: {sizes: 3}
`, []string{`p.yaml:5:19: parameter sizes: want a list, got 3 (write [3] for one item)`}},
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
`, []string{"p.yaml:6:14: parameter lines: want an integer, got \"many\""}},
		{"validate", `
stages:
  a: {uses: source, with: {lines: -1}}
`, []string{"p.yaml:3:35: stage a: invalid parameters: lines must be >= 0"}},
		{"validate, block style", `
stages:
  a:
    uses: source
    with:
      value: x
      lines: -1
`, []string{"p.yaml:7:14: stage a: invalid parameters: lines must be >= 0"}},
		{"validate a matrix value", `
stages:
  a:
    uses: source
    matrix: {lines: [1, -2]}
    with: {value: x}
`, []string{"p.yaml:5:25: stage a[-2]: invalid parameters: lines must be >= 0"}},
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
		{"input in the plural", `
stages:
  a: {uses: source}
  b: {uses: join, needs: {in: [a.out], extras: a.out}}
`, []string{`p.yaml:4:40: stage b: kind join has no input "extras" (did you mean "extra"?)`}},
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
  b: {uses: upper, needs: {in: ["a[x].out", "a[y].out"]}}
`, []string{`input "in" takes one artifact, but this binds 2 (a[x].out, a[y].out)`}},
		{"fan-out that agrees with nothing", `
stages:
  a: {uses: source, matrix: {value: [x, y], lines: [1]}}
  b: {uses: upper, needs: {in: a.out}, matrix: {value: [z]}}
`, []string{`p.yaml:4:32: stage b: input "in": no variant of a agrees with the variants of b so far`}},
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
		{"matrix key no producer has", `
stages:
  a: {uses: source, matrix: {value: [x]}}
  b: {uses: upper, needs: {in: a.out}, matrix: {head: [x]}}
`, []string{`matrix key "head" is no parameter of kind upper, no ${matrix.head} uses it and no producer`}},
		{"syntax", "stages: [\n", []string{"p.yaml:"}},
		{"tab in the indentation", "stages:\n  a:\n\tuses: source\n",
			[]string{"p.yaml:3:1: ", "a tab in the indentation: YAML indents with spaces only"}},
		{"empty matrix list", `
stages:
  a: {uses: source, matrix: {value: []}}
`, []string{`matrix key value: want a non-empty list, got an empty list`}},
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

// A stage that names a matrix stage by its base name on an input taking
// one artifact fans out: one variant per producer variant, named with the
// producer's suffix, binding the matching variant all the way down.
func TestFanOut(t *testing.T) {
	reg, _ := registry(t)
	tests := []struct {
		name  string
		src   string
		order []string            // p.Stages
		binds map[string][]string // stage -> "input=ref" of every bound input
	}{
		{"chain and gather", `
stages:
  a: {uses: source}
  train: {uses: upper, needs: {in: a.out}, matrix: {suffix: [x, y]}}
  predict: {uses: upper, needs: {in: train.out}}
  evaluate: {uses: upper, needs: {in: predict.out}}
  table: {uses: join, needs: {in: evaluate.out}}
`,
			[]string{"a", "train[x]", "predict[x]", "evaluate[x]", "train[y]", "predict[y]", "evaluate[y]", "table"},
			map[string][]string{
				"predict[x]":  {"in=train[x].out"},
				"evaluate[y]": {"in=predict[y].out"},
				"table":       {"in=evaluate[x].out", "in=evaluate[y].out"},
			}},
		{"own matrix plus fan-out", `
stages:
  train: {uses: source, matrix: {value: [x, y]}}
  eval: {uses: upper, needs: {in: train.out}, matrix: {suffix: [s, t]}}
`,
			[]string{"train[x]", "eval[s,x]", "eval[t,x]", "train[y]", "eval[s,y]", "eval[t,y]"},
			map[string][]string{"eval[t,y]": {"in=train[y].out"}, "eval[s,x]": {"in=train[x].out"}}},
		{"product of two producers", `
stages:
  a: {uses: source, matrix: {value: [x, y]}}
  b: {uses: source, matrix: {lines: [1, 2]}}
  p: {uses: pair, needs: {left: a.out, right: b.out}}
`,
			[]string{"a[x]", "a[y]", "b[1]", "b[2]", "p[1,x]", "p[1,y]", "p[2,x]", "p[2,y]"},
			map[string][]string{"p[2,x]": {"left=a[x].out", "right=b[2].out"}}},
		{"two producers over the same keys", `
stages:
  train: {uses: source, matrix: {value: [x, y]}}
  predict: {uses: upper, needs: {in: train.out}}
  eval: {uses: pair, needs: {left: predict.out, right: train.out}}
`,
			[]string{"train[x]", "predict[x]", "eval[x]", "train[y]", "predict[y]", "eval[y]"},
			map[string][]string{"eval[y]": {"left=predict[y].out", "right=train[y].out"}}},
		{"explicit matrix over a producer's key", `
stages:
  train: {uses: source, matrix: {value: [x, y]}}
  predict: {uses: upper, needs: {in: train.out}}
  eval: {uses: upper, needs: {in: predict.out}, matrix: {value: [y, x]}}
`,
			[]string{"train[x]", "predict[x]", "eval[x]", "train[y]", "predict[y]", "eval[y]"},
			map[string][]string{"eval[x]": {"in=predict[x].out"}}},
		{"include producer", `
stages:
  alt:
    uses: source
    matrix: {include: [{name: A, value: a}, {name: B}]}
  use: {uses: upper, needs: {in: alt.out}}
  all: {uses: join, needs: {in: use.out, extra: "alt-B.out"}}
`,
			[]string{"alt-A", "alt-B", "use-A", "use-B", "all"},
			map[string][]string{"use-B": {"in=alt-B.out"}, "all": {"extra=alt-B.out", "in=use-A.out", "in=use-B.out"}}},
		{"a full name does not fan out", `
stages:
  train: {uses: source, matrix: {value: [x, y]}}
  best: {uses: upper, needs: {in: "train[y].out"}}
`,
			[]string{"train[x]", "train[y]", "best"},
			map[string][]string{"best": {"in=train[y].out"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, reg, tc.src)
			if diff := cmp.Diff(tc.order, stageNames(p)); diff != "" {
				t.Errorf("stages (-want +got):\n%s", diff)
			}
			for name, want := range tc.binds {
				s, ok := p.Lookup(name)
				if !ok {
					t.Errorf("no stage %s", name)
					continue
				}
				var got []string
				for _, in := range s.Inputs {
					for _, r := range in.Refs {
						got = append(got, in.Name+"="+r.String())
					}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s binds (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// Inherited matrix keys bind only: they set no parameter of the consumer,
// whose own parameters keep what the file says.
func TestFanOutSetsNoParameter(t *testing.T) {
	reg, _ := registry(t)
	p := parse(t, reg, `
stages:
  train: {uses: source, matrix: {value: [x, y]}}
  eval: {uses: upper, needs: {in: train.out}, matrix: {suffix: [s]}, with: {scale: 2}}
`)
	s, _ := p.Lookup("eval[s,y]")
	if diff := cmp.Diff(&testkinds.UpperParams{Suffix: "s", Scale: 2}, s.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"scale", "suffix"}, s.Explicit); diff != "" {
		t.Errorf("explicit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"suffix": "s", "value": "y"}, s.Variant); diff != "" {
		t.Errorf("variant (-want +got):\n%s", diff)
	}
}

// List values of a matrix are spelled without brackets where that stays
// unambiguous.
func TestMatrixListNames(t *testing.T) {
	reg, _ := registry(t)
	tests := []struct {
		matrix string
		want   []string
	}{
		{"{sizes: [[32], [128]]}", []string{"p[128]", "p[32]"}},
		{"{sizes: [[32, 64], [32], [1.5e1, 0x10]]}", []string{"p[32]", "p[32x64]", "p[[1.5e1, 0x10]]"}},
		{"{labels: [[relu], [relu, tanh]]}", []string{"p[[relu, tanh]]", "p[relu]"}},
		{"{labels: [[a, b]], sizes: [[1, 2]]}", []string{"p[[a, b],1x2]"}},
	}
	for _, tc := range tests {
		t.Run(tc.matrix, func(t *testing.T) {
			src := "stages:\n  s: {uses: source}\n  p: {uses: pair, needs: {left: s.out, right: s.out}, matrix: " +
				tc.matrix + "}\n"
			p := parse(t, reg, src)
			var got []string
			for _, s := range p.Stages {
				if s.Base == "p" {
					got = append(got, s.Name)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

// A matrix takes its values from a parameter, so --set chooses the
// variants (a dataset that lacks one attribute type, say).
func TestMatrixFromParameter(t *testing.T) {
	reg, _ := registry(t)
	src := "params: {sizes: [[32], [128]]}\nstages:\n  s: {uses: source}\n" +
		"  p: {uses: pair, needs: {left: s.out, right: s.out}, matrix: {sizes: \"${sizes}\"}}\n"
	for _, tc := range []struct {
		sets []string
		want []string
	}{
		{nil, []string{"p[128]", "p[32]"}},
		{[]string{"sizes=[[8], [16], [32]]"}, []string{"p[16]", "p[32]", "p[8]"}},
	} {
		p := parse(t, reg, src, tc.sets...)
		var got []string
		for _, s := range p.Stages {
			if s.Base == "p" {
				got = append(got, s.Name)
			}
		}
		slices.Sort(got)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("--set %v: names (-want +got):\n%s", tc.sets, diff)
		}
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

// A pipeline file that cannot be read (missing, a folder) is a SpecError
// naming the file, so that cmd/stitch exits 2 as for any bad pipeline.
func TestLoadUnreadableFile(t *testing.T) {
	reg, _ := registry(t)
	dir := t.TempDir()
	for _, file := range []string{filepath.Join(dir, "missing.yaml"), dir} {
		_, err := pipeline.Load(file, reg, nil)
		if !pipeline.IsInvalid(err) || !strings.HasPrefix(err.Error(), file+": cannot read the pipeline file: ") {
			t.Errorf("Load(%s): %v, want a SpecError naming the file", file, err)
		}
	}
}

// A file cut off at the alias limit reports that alone, not the errors
// of the cut tree; a second YAML document is an error, not ignored.
func TestWholeFileErrors(t *testing.T) {
	reg, _ := registry(t)
	laughs := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 1, "a"; i < 8; i++ {
		name := string(rune('a' + i))
		laughs += name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = name
	}
	tests := []struct{ name, src, want string }{
		{"one number spelled two ways", "stages:\n  a: {uses: source, matrix: {lr: [0.5, 1, 5e-1]}}\n",
			`p.yaml:2:43: stage a: matrix key lr lists "5e-1" twice`},
		{"lists with one number spelled two ways", "stages:\n  a: {uses: pair, matrix: {sizes: [[32], [32.0]]}}\n",
			`stage a: matrix key sizes lists "[32.0]" twice`},
		{"consumers of a failed matrix", "stages:\n  a: {uses: source, matrix: {value: [x, x]}}\n" +
			"  j: {uses: join, needs: {in: [a.out]}}\n",
			`p.yaml:2:41: stage a: matrix key value lists "x" twice`},
		{"alias limit", "params:\n" + indent(laughs) + "stages: {}\n",
			"file expands to more than 1048576 nodes through aliases"},
		{"second document", "stages:\n  a: {uses: source}\n---\nstages:\n  b: {uses: source}\n",
			"p.yaml:3:1: a second YAML document (after ---): a pipeline file holds one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.src), reg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(err.Error()), "\n"); n > 0 {
				t.Errorf("%d more lines after the error:\n%v", n, err)
			}
		})
	}
	for _, src := range []string{"stages:\n  a: {uses: source}\n---\n", "stages:\n  a: {uses: source}\n...\n"} {
		if _, err := pipeline.Parse("p.yaml", []byte(src), reg, nil); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}
