package pipeline_test

import (
	"strings"
	"testing"

	"stitch/internal/testkinds"
	"stitch/pipeline"
)

// A decimal for an integer parameter is an error where it is written,
// whichever way it gets there; a --set value has no line, so its error
// names the flag.
func TestDecimalForInteger(t *testing.T) {
	reg, _ := registry(t)
	tests := []struct {
		name string
		src  string
		sets []string
		want string
	}{
		{"with", `
stages:
  a: {uses: source, with: {lines: 16.9}}
`, nil, "p.yaml:3:35: parameter lines: want an integer, got 16.9"},
		{"list item", `
stages:
  a: {uses: source}
  b: {uses: source}
  c: {uses: pair, needs: {left: a.out, right: b.out}, with: {sizes: [3.7]}}
`, nil, "p.yaml:5:70: parameter sizes[0]: want an integer, got 3.7"},
		{"matrix value", `
stages:
  a: {uses: source}
  b: {uses: source}
  c: {uses: pair, needs: {left: a.out, right: b.out}, matrix: {sizes: [[32], [32.5]]}}
`, nil, "p.yaml:5:79: parameter sizes[0]: want an integer, got 32.5"},
		{"params", `
params: {n: 1.7}
stages:
  a: {uses: source, with: {lines: "${n}"}}
`, nil, "p.yaml:4:35: parameter lines: want an integer, got 1.7"},
		{"--set into with", `
params: {n: 1}
stages:
  a: {uses: source, with: {lines: "${n}"}}
`, []string{"n=2.5"}, "p.yaml:4:35: parameter lines: want an integer, got 2.5"},
		{"--set list into with", `
params: {s: [1]}
stages:
  a: {uses: source}
  b: {uses: source}
  c: {uses: pair, needs: {left: a.out, right: b.out}, with: {sizes: "${s}"}}
`, []string{"s=[1, 2.5]"}, "p.yaml:6:69: parameter sizes[1]: want an integer, got 2.5"},
		{"seed", `
params: {seed: 1.9}
stages: {a: {uses: source}}
`, nil, "p.yaml:2:16: params.seed: want an integer, got 1.9"},
		{"seed by --set", `
params: {seed: 1}
stages: {a: {uses: source}}
`, []string{"seed=1.9"}, "--set seed=1.9: want an integer, got 1.9"},
		{"seed by --set, a string", `
params: {seed: 1}
stages: {a: {uses: source}}
`, []string{"seed=abc"}, `--set seed=abc: want an integer, got "abc"`},
		{"seed, a list", `
params: {seed: [1]}
stages: {a: {uses: source}}
`, nil, "p.yaml:2:16: params.seed: want an integer, got a list"},
		{"--set of nothing declared", `
stages: {a: {uses: source}}
`, []string{"nope=1"}, `--set nope=1: no parameter "nope": the pipeline declares no params`},
		{"--set of an undeclared name", `
params: {seed: 1, lr: 0.1}
stages: {a: {uses: source}}
`, []string{"sed=2"},
			`--set sed=2: no parameter "sed" in params (did you mean "seed"?); the pipeline declares lr, seed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipeline.Parse("p.yaml", []byte(tc.src), reg, tc.sets)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got error\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

// Whole floats stay integers, and the same integers: 10.0 and 10 are one
// run key.
func TestWholeFloatForInteger(t *testing.T) {
	reg, _ := registry(t)
	src := "params: {seed: 1e1}\nstages: {a: {uses: source, with: {lines: 10.0}}}\n"
	p := parse(t, reg, src)
	if p.Seed != 10 {
		t.Errorf("seed %d, want 10", p.Seed)
	}
	if got := p.Stages[0].Params.(*testkinds.SourceParams).Lines; got != 10 {
		t.Errorf("lines %d, want 10", got)
	}

	f := newFixture(t)
	f.mustRun("params: {seed: 10}\nstages: {a: {uses: source, with: {lines: 10}}}\n")
	if st := f.status(src); len(st) != 0 {
		t.Errorf("status with 10.0 after a run with 10: %v", st)
	}
}

// A word where a float is wanted says what YAML reads as a number.
func TestFloatWords(t *testing.T) {
	reg, _ := registry(t)
	for value, want := range map[string]string{
		"NaN":   `want a number, got "NaN" (YAML writes .nan, .inf and -.inf)`,
		"-Inf":  `want a number, got "-Inf" (YAML writes .nan, .inf and -.inf)`,
		"1e400": "1e400 is beyond the range of a float64",
		"fast":  `want a number, got "fast"`,
	} {
		_, err := pipeline.Parse("p.yaml", []byte("stages: {a: {uses: source, with: {lr: "+value+"}}}"), reg, nil)
		if err == nil || !strings.Contains(err.Error(), "p.yaml:1:") || !strings.Contains(err.Error(), want) {
			t.Errorf("lr: %s: error %v, want one at p.yaml:1 containing %q", value, err, want)
		}
	}
}
