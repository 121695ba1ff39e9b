package pipeline

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// TestParamNode checks where a parameter error is placed in `with:`.
func TestParamNode(t *testing.T) {
	const with = `backbone: smallcnn
phase1: {max_epochs: 1, batch_size: 0}
phase2:
  max_epochs: 2
head: [16]
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(with), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	tests := []struct {
		name      string
		err       error
		line, col int
	}{
		{"scalar value", ParamErrorf("backbone", "bad"), 1, 11},
		{"nested", ParamErrorf("phase1.batch_size", "bad"), 2, 37},
		{"nested in a block", ParamErrorf("phase2.max_epochs", "bad"), 4, 15},
		{"a mapping: its key", ParamErrorf("phase2", "bad"), 3, 1},
		{"a list: its key", ParamErrorf("head", "bad"), 5, 1},
		{"nested key not written: the parent", ParamErrorf("phase2.batch_size", "bad"), 3, 1},
		{"below a scalar: the scalar", ParamErrorf("backbone.width", "bad"), 1, 11},
		{"key not written: with", ParamErrorf("width", "bad"), 1, 1},
		{"wrapped", fmt.Errorf("check: %w", ParamErrorf("backbone", "bad")), 1, 11},
		{"no key: with", errors.New("bad"), 1, 1},
		{"empty key: with", ParamErrorf("", "bad"), 1, 1},
	}
	for _, tt := range tests {
		n := paramNode(root, tt.err)
		if n.Line != tt.line || n.Column != tt.col {
			t.Errorf("%s: at %d:%d, want %d:%d", tt.name, n.Line, n.Column, tt.line, tt.col)
		}
	}
	if n := paramNode(nil, ParamErrorf("backbone", "bad")); n != nil {
		t.Errorf("no with: got %v, want nil", n)
	}
}

// TestSplitJoined checks that joined errors are reported one by one and
// that an error whose text is more than its parts' stays whole.
func TestSplitJoined(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"one", a, []string{"a"}},
		{"joined", errors.Join(a, b), []string{"a", "b"}},
		{"joined twice", errors.Join(errors.Join(a, b), c), []string{"a", "b", "c"}},
		{"wrapping two", fmt.Errorf("x: %w, %w", a, b), []string{"x: a, b"}},
		{"joined wrapping two", errors.Join(fmt.Errorf("x: %w, %w", a, b), c), []string{"x: a, b", "c"}},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range splitJoined(tt.err) {
			got = append(got, e.Error())
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
