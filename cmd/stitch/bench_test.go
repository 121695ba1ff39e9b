package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"stitch/artifacts"
)

func pipelineID(objectPath string) (artifacts.ID, error) {
	return artifacts.ParseID(filepath.Base(filepath.Dir(objectPath)) + filepath.Base(objectPath))
}

// BenchmarkNoopRun50 times `stitch run` of a 50-stage pipeline whose
// stages are all cached.
func BenchmarkNoopRun50(b *testing.B) {
	dir := b.TempDir()
	var src strings.Builder
	src.WriteString("name: fifty\nstages:\n  s0: {uses: source, with: {value: v}}\n")
	for i := 1; i < 50; i++ {
		fmt.Fprintf(&src, "  s%d: {uses: upper, needs: {in: s%d.out}, with: {suffix: \"%d\"}}\n", i, (i-1)/2, i)
	}
	file := filepath.Join(dir, "p.yaml")
	write(b, file, src.String())
	if code, out, errOut := stitch(b, b.Context(), dir, "run", file); code != 0 {
		b.Fatalf("first run: %d\n%s%s", code, out, errOut)
	}
	b.ResetTimer()
	for b.Loop() {
		if code, out, _ := stitch(b, b.Context(), dir, "run", file); code != 0 || !strings.Contains(out, "50 cached") {
			b.Fatalf("no-op run: %d\n%s", code, out)
		}
	}
}

// BenchmarkStatus300k times a warm `stitch status` of a pipeline whose
// one stage reads a folder of 300 000 small files.
func BenchmarkStatus300k(b *testing.B) {
	const files, perDir = 300_000, 1000
	var fs unix.Statfs_t
	if err := unix.Statfs(os.TempDir(), &fs); err == nil {
		if free := fs.Bavail * uint64(fs.Bsize); free < 4<<30 || fs.Ffree < 2*files {
			b.Skipf("temp disk short: %d bytes, %d inodes free", free, fs.Ffree)
		}
	}
	dir := b.TempDir()
	data := filepath.Join(dir, "images")
	for d := range files / perDir {
		sub := filepath.Join(data, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range perDir {
			name := filepath.Join(sub, fmt.Sprintf("img%04d.jpg", f))
			if err := os.WriteFile(name, []byte(name), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Age the files past the racy window, so the run's remembered hashes
	// are trusted, as they are for any dataset not written a moment ago.
	old := time.Now().Add(-time.Hour)
	filepath.WalkDir(data, func(p string, _ os.DirEntry, _ error) error { return os.Chtimes(p, old, old) })

	file := filepath.Join(dir, "p.yaml")
	write(b, file, "name: big\nparams: {d: x}\nstages:\n  a: {uses: source, with: {dir: \"${d}\"}}\n"+
		"  b: {uses: upper, needs: {in: a.out}}\n")
	set := "d=" + data
	if code, out, errOut := stitch(b, b.Context(), dir, "run", file, "--set", set); code != 0 {
		b.Fatalf("first run: %d\n%s%s", code, out, errOut)
	}
	b.ResetTimer()
	for b.Loop() {
		if code, out, _ := stitch(b, b.Context(), dir, "status", file, "--set", set); code != 0 || !strings.Contains(out, "2 fresh") {
			b.Fatalf("status: %d\n%s", code, out)
		}
	}
}
