package pipeline

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// integerParams has an integer in every place a kind's parameters may
// hold one.
type integerParams struct {
	N     int             `yaml:"n"`
	Small int8            `yaml:"small"`
	Big   int64           `yaml:"big"`
	Count uint32          `yaml:"count"`
	Sizes []int           `yaml:"sizes"`
	Pair  [2]uint         `yaml:"pair"`
	Inner struct{ K int } `yaml:"inner"`
	Ptr   *int            `yaml:"ptr"`
	ByKey map[int]int     `yaml:"by_key"`
	Wait  time.Duration   `yaml:"wait"`
	Rate  float64         `yaml:"rate"`
	Halfs halves          `yaml:"halfs"`
}

// halves is an integer that decodes itself, floats included: 1.5 is 3.
type halves int

func (h *halves) UnmarshalYAML(n *yaml.Node) error {
	var f float64
	if err := n.Decode(&f); err != nil {
		return err
	}
	*h = halves(2 * f)
	return nil
}

// A float for an integer parameter is that integer when it is whole and
// an error at its position otherwise; yaml.v3 alone truncates it.
func TestIntegerParams(t *testing.T) {
	ten := 10
	tests := []struct {
		with string
		want integerParams // when err is ""
		err  string
	}{
		{with: "n: 10.0", want: integerParams{N: 10}},
		{with: "n: 1e3", want: integerParams{N: 1000}},
		{with: "n: -2.0e1", want: integerParams{N: -20}},
		{with: "big: 9.2e18", want: integerParams{Big: 9_200_000_000_000_000_000}},
		{with: "count: 4.0", want: integerParams{Count: 4}},
		{with: "sizes: [32, 64.0]", want: integerParams{Sizes: []int{32, 64}}},
		{with: "inner: {k: 3.0}", want: integerParams{Inner: struct{ K int }{3}}},
		{with: "ptr: 1e1", want: integerParams{Ptr: &ten}},
		{with: "by_key: {2.0: 1}", want: integerParams{ByKey: map[int]int{2: 1}}},
		{with: "rate: 16.9", want: integerParams{Rate: 16.9}},
		{with: "halfs: 1.5", want: integerParams{Halfs: 3}},
		{with: "n: 16.9", err: "p.yaml:1:4: parameter n: want an integer, got 16.9"},
		{with: "n: -0.5", err: "p.yaml:1:4: parameter n: want an integer, got -0.5"},
		{with: "n: 1.7e0", err: "p.yaml:1:4: parameter n: want an integer, got 1.7e0"},
		{with: "n: .nan", err: "p.yaml:1:4: parameter n: want an integer, got .nan"},
		{with: "n: -.inf", err: "p.yaml:1:4: parameter n: want an integer, got -.inf"},
		{with: "small: 1e3", err: "p.yaml:1:8: parameter small: want an integer from -128 to 127, got 1e3"},
		{with: "big: 9.3e18",
			err: "p.yaml:1:6: parameter big: want an integer from -9223372036854775808 to 9223372036854775807, got 9.3e18"},
		{with: "count: 2.5", err: "p.yaml:1:8: parameter count: want an integer, got 2.5"},
		{with: "count: -1.0", err: "p.yaml:1:8: parameter count: want an integer from 0 to 4294967295, got -1.0"},
		{with: "sizes: [32, 32.5]", err: "p.yaml:1:13: parameter sizes[1]: want an integer, got 32.5"},
		{with: "pair: [1, 2.5]", err: "p.yaml:1:11: parameter pair[1]: want an integer, got 2.5"},
		{with: "inner:\n  k: 3.7", err: "p.yaml:2:6: parameter inner.k: want an integer, got 3.7"},
		{with: "ptr: 0.1", err: "p.yaml:1:6: parameter ptr: want an integer, got 0.1"},
		{with: "by_key: {1: 1.5}", err: "p.yaml:1:13: parameter by_key.1: want an integer, got 1.5"},
		{with: "by_key: {1.5: 1}", err: "p.yaml:1:10: parameter by_key: key: want an integer, got 1.5"},
		{with: "wait: 1.5", err: "p.yaml:1:7: parameter wait: cannot unmarshal !!float `1.5` into time.Duration"},
	}
	for _, tc := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.with), &doc); err != nil {
			t.Fatal(err)
		}
		l := &loader{file: "p.yaml"}
		d := paramDecoder{l: l, kind: "k"}
		var got integerParams
		d.decode(doc.Content[0], reflect.ValueOf(&got).Elem(), "")
		switch {
		case tc.err != "" && l.errs.Error() != tc.err:
			t.Errorf("%s: got error %q, want %q", tc.with, l.errs.Error(), tc.err)
		case tc.err == "" && len(l.errs) > 0:
			t.Errorf("%s: %v", tc.with, l.errs)
		case tc.err == "":
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.with, diff)
			}
		}
	}
}

// A null value (`~`, `null` or nothing after the colon) keeps the
// parameter's default, whatever its type.
func TestNullKeepsDefault(t *testing.T) {
	seven := 7
	defaults := func() integerParams {
		return integerParams{N: 5, Sizes: []int{3, 5}, Pair: [2]uint{1, 2}, Inner: struct{ K int }{4},
			Ptr: &seven, ByKey: map[int]int{1: 2}, Rate: 0.5, Halfs: 6}
	}
	for _, with := range []string{
		"n: ~", "sizes: null", "pair: ~", "inner:", "ptr: ~", "by_key: ~", "rate: ~", "halfs: ~",
		"n: ~\nsizes: ~\ninner: ~\nrate: Null",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(with), &doc); err != nil {
			t.Fatal(err)
		}
		l := &loader{file: "p.yaml"}
		d := paramDecoder{l: l, kind: "k"}
		got := defaults()
		d.decode(doc.Content[0], reflect.ValueOf(&got).Elem(), "")
		if len(l.errs) > 0 {
			t.Errorf("%q: %v", with, l.errs)
		}
		if diff := cmp.Diff(defaults(), got); diff != "" {
			t.Errorf("%q changed the defaults (-want +got):\n%s", with, diff)
		}
	}
}
