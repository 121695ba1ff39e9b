package main

import (
	"strings"
	"testing"
)

// TestTableAligns: a row with an empty last cell between two rows with one
// does not break the alignment, and no line ends in padding.
func TestTableAligns(t *testing.T) {
	var out strings.Builder
	tw := newTable(&out)
	writeRow(tw, "interrupted", "train[32]", "nothing cached")
	writeRow(tw, "cached", "split", "")
	writeRow(tw, "interrupted", "train[128]", "nothing cached")
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	if a, b := strings.Index(lines[0], "nothing"), strings.Index(lines[2], "nothing"); a != b {
		t.Errorf("detail at columns %d and %d:\n%s", a, b, out.String())
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("line %q ends in padding", l)
		}
	}
}
