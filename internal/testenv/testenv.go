// Package testenv finds what tests read from outside the repository: the
// ../shared folder beside the checkout, with the real datasets and the
// ONNX models that must never be copied into the project.
package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"stitch/models/ort"
)

// ModuleRoot returns the folder holding go.mod above the working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// Shared returns ../shared/ELEM... beside the module root. When it is
// absent the test is skipped, except under CI (the CI variable is set),
// where a missing shared folder would silently turn real-data tests into
// skips: there it fails.
func Shared(t testing.TB, elem ...string) string {
	t.Helper()
	path := filepath.Join(append([]string{ModuleRoot(t), "..", "shared"}, elem...)...)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing under CI: %v", path, err)
		}
		t.Skipf("%s not present (%v); it lives outside the repository", path, err)
	}
	return path
}

// RequireORT initialises ONNX Runtime. Without its library (`make ort`
// fetches it) the test is skipped, except under CI, where it fails.
func RequireORT(t testing.TB) {
	t.Helper()
	err := ort.Init()
	switch {
	case err == nil:
	case errors.Is(err, ort.ErrNoLibrary) && os.Getenv("CI") == "":
		t.Skip(err)
	default:
		t.Fatal(err)
	}
}
