package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatrixVariants(t *testing.T) {
	stages := []string{"split", "train[32]", "train[128]", "evaluate[32]", "evaluate[128]", "trainer"}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"train", []string{"train[32]", "train[128]"}},
		{"evaluate.metrics", []string{"evaluate[32].metrics", "evaluate[128].metrics"}},
		{"train.model", []string{"train[32].model", "train[128].model"}},
		{"split", nil},
		{"nope.x", nil},
		{"trai", nil},
	} {
		if diff := cmp.Diff(tc.want, matrixVariants(stages, tc.arg)); diff != "" {
			t.Errorf("matrixVariants(%q) (-want +got):\n%s", tc.arg, diff)
		}
	}
}
