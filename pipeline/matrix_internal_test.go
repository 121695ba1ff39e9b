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
		{"[[a, b], {k: v}, []]", []string{"[a, b]", "{k: v}", "[]"}},
		{`[["a,b"]]`, []string{`["a,b"]`}},
	}
	for _, tc := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tc.list), &doc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, spellValues(doc.Content[0].Content)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.list, diff)
		}
	}
}
