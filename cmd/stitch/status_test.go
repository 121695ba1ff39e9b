package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// status names a failed last run, and a bad --set by its flag.
func TestStatusReasons(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	write(t, file, fmt.Sprintf("params: {seed: 1}\nstages: {a: {uses: source}, "+
		"b: {uses: upper, needs: {in: a.out}, with: {fail_if: %q}}}", file))
	bare := filepath.Join(dir, "bare.yaml")
	write(t, bare, "stages: {a: {uses: source}}")

	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"run", file}, exitFailed, "", ""},
		{[]string{"status", file}, exitOK, "last run failed", ""},
		{[]string{"status", file, "--set", "seed=abc"}, exitUsage, "", `--set seed=abc: want an integer, got "abc"`},
		{[]string{"status", file, "--set", "seed=1.9"}, exitUsage, "", "--set seed=1.9: want an integer, got 1.9"},
		{[]string{"status", bare, "--set", "nope=1"}, exitUsage, "",
			`--set nope=1: no parameter "nope": the pipeline declares no params`},
	}
	for _, tc := range tests {
		code, out, errOut := stitch(t, t.Context(), dir, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
			t.Errorf("stitch %v: exit %d, want %d; stdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, out, errOut)
		}
	}
}
