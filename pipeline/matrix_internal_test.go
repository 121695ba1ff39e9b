package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// Values that would spell alike without brackets keep their flow YAML,
// every value of the key, so the names of one stage stay unique.
func TestSpellValues(t *testing.T) {
	tests := []struct {
		list string
		want []string
	}{
		{"[[32], [128]]", []string{"32", "128"}},
		{"[[32, 64], 0.5, [-1, 2e3]]", []string{"32x64", "0.5", "-1x2e3"}},
		{"[[32], 32]", []string{"[32]", "32"}},
		{"[[32, 64], 32x64]", []string{"[32, 64]", "32x64"}},
		{"[[0x10, 1]]", []string{"[0x10, 1]"}},
		{"[[a, b], {k: v}, []]", []string{"[a, b]", "m.k=v", "[]"}},
		{"[{k: 1, j: 2}, {k: [1]}, {k: a b}, {}]", []string{"m.k=1,m.j=2", "{k: [1]}", "{k: a b}", "{}"}},
		{"[{k: {j: 0.5, i: x}}, {k: {j: 1}}]", []string{"m.k.j=0.5,m.k.i=x", "m.k.j=1"}},
		{"[{k: 1}, m.k=1]", []string{"{k: 1}", "m.k=1"}},
		{`[["a,b"]]`, []string{`["a,b"]`}},
	}
	for _, tc := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.list), &doc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, spellValues("m", doc.Content[0].Content)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.list, diff)
		}
	}
}

// A matrix value that is a mapping sets its keys on the stage's `with:`
// block of that name and keeps the block's other keys, at every depth.
func TestMergeMappings(t *testing.T) {
	tests := []struct{ base, over, want string }{
		{"{max_epochs: 10, steps: 5}", "{max_epochs: 1}", "{max_epochs: 1, steps: 5}"},
		{"{a: {b: 1, c: 2}, d: 3}", "{a: {c: 9}, e: 4}", "{a: {b: 1, c: 9}, d: 3, e: 4}"},
		{"{a: 1}", "[1, 2]", "[1, 2]"},
		{"[1]", "{a: 1}", "{a: 1}"},
		{"{a: {b: 1}}", "{a: 7}", "{a: 7}"},
	}
	node := func(src string) *yaml.Node {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Content[0]
	}
	for _, tc := range tests {
		base := node(tc.base)
		before := flowText(base)
		got := flowText(mergeMappings(base, node(tc.over)))
		if got != tc.want {
			t.Errorf("merge %s over %s = %s, want %s", tc.over, tc.base, got, tc.want)
		}
		if flowText(base) != before {
			t.Errorf("merge changed its base %s to %s", before, flowText(base))
		}
	}
}
