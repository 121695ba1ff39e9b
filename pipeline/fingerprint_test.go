package pipeline

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fpTree writes files (relative path -> content) below a new folder and
// ages every file and folder past the racy window, so a memo trusts them.
func fpTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "data")
	for rel, content := range files {
		path := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	age(t, root)
	return root
}

// age sets the mtime of everything below root an hour back. ctime moves
// to now, as it always does: only mtime decides what is racy.
func age(t *testing.T, root string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// keepMtime returns a function that sets path's mtime back to what it is
// now, as a tool restoring times would: then only its ctime tells.
func keepMtime(t *testing.T, path string) func() {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

// wantFingerprint is the folder fingerprint by its definition: SHA-256
// over the files' sorted "rel\x00sha256(content)".
func wantFingerprint(t *testing.T, root string) string {
	t.Helper()
	var rels []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p) // p is below root
		rels = append(rels, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rels)
	h := sha256.New()
	h.Write([]byte("dir\x00"))
	for _, rel := range rels {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		h.Write([]byte(rel + "\x00"))
		h.Write(sum[:])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func mustFingerprint(t *testing.T, fp *fingerprinter, path string) string {
	t.Helper()
	sum, err := fp.fingerprint(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// Folders are hashed in the byte order of whole relative paths, where
// "a.b" < "a/b" < "a0": the same value from a cold walk, a memo hit and
// a read-only walk.
func TestFingerprintOrder(t *testing.T) {
	root := fpTree(t, map[string]string{
		"a/b": "1", "a/b0/c": "2", "a.b": "3", "a0": "4", "a-": "5", "ab": "6",
		"b/a/b/c": "7", "b/a.b": "8", "z": "9",
	})
	want := wantFingerprint(t, root)
	memo := t.TempDir()
	fp := &fingerprinter{dir: memo}
	for i, f := range []*fingerprinter{fp, fp, {dir: memo, readOnly: true}} {
		if got := mustFingerprint(t, f, root); got != want {
			t.Errorf("walk %d: got %s, want %s", i, got, want)
		}
	}
	if n := fp.hashed.Load(); n != 9 {
		t.Errorf("hashed %d files, want 9 (each once)", n)
	}
}

// What changes a fingerprint, and what a memo hit must still notice.
func TestFingerprintChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, root string)
	}{
		{"same size, mtime put back", func(t *testing.T, root string) {
			path := filepath.Join(root, "d", "x")
			defer keepMtime(t, path)()
			if err := os.WriteFile(path, []byte("X"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"same size, in place", func(t *testing.T, root string) {
			f, err := os.OpenFile(filepath.Join(root, "d", "x"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("y"), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"file added, folder mtime put back", func(t *testing.T, root string) {
			defer keepMtime(t, filepath.Join(root, "d"))()
			if err := os.WriteFile(filepath.Join(root, "d", "new"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"file removed", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "d", "x")); err != nil {
				t.Fatal(err)
			}
		}},
		{"file renamed, folder mtime put back", func(t *testing.T, root string) {
			defer keepMtime(t, filepath.Join(root, "d"))()
			if err := os.Rename(filepath.Join(root, "d", "x"), filepath.Join(root, "d", "w")); err != nil {
				t.Fatal(err)
			}
		}},
		{"file replaced by a folder", func(t *testing.T, root string) {
			path := filepath.Join(root, "d", "x")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(path, "y"), 0o755); err != nil {
				t.Fatal(err)
			}
			age(t, root)
		}},
		{"symlink target changed", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "e", "target"), []byte("t"), 0o644); err != nil {
				t.Fatal(err)
			}
			age(t, root)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fpTree(t, map[string]string{"d/x": "x", "d/y": "y", "e/target": "T", "top": "top"})
			if err := os.Symlink("target", filepath.Join(root, "e", "link")); err != nil {
				t.Fatal(err)
			}
			age(t, root)
			fp := &fingerprinter{dir: t.TempDir()}
			before := mustFingerprint(t, fp, root)
			if again := mustFingerprint(t, fp, root); again != before {
				t.Fatalf("unchanged tree: %s then %s", before, again)
			}
			if n := fp.hashed.Load(); n != 5 {
				t.Fatalf("hashed %d files, want each of 5 (the link too) once", n)
			}

			tc.change(t, root)
			after := mustFingerprint(t, fp, root)
			if after == before {
				t.Errorf("change not seen: fingerprint still %s", after)
			}
			if want := wantFingerprint(t, root); after != want {
				t.Errorf("got %s, want %s", after, want)
			}
		})
	}
}

// Touching a file rereads it but keeps the fingerprint; a damaged memo is
// no memo; a single file works the same way.
func TestFingerprintMemo(t *testing.T) {
	root := fpTree(t, map[string]string{"a": "1", "b/c": "2"})
	memo := t.TempDir()
	fp := &fingerprinter{dir: memo}
	want := mustFingerprint(t, fp, root)

	now := time.Now()
	if err := os.Chtimes(filepath.Join(root, "a"), now, now); err != nil {
		t.Fatal(err)
	}
	if got := mustFingerprint(t, fp, root); got != want {
		t.Errorf("touched: got %s, want %s", got, want)
	}

	files, err := os.ReadDir(memo)
	if err != nil || len(files) != 1 {
		t.Fatalf("memo folder: %v, %v", files, err)
	}
	path := filepath.Join(memo, files[0].Name())
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{len(data) / 2, len(fpMagic) + 1, 3} {
		if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		if got := mustFingerprint(t, &fingerprinter{dir: memo, readOnly: true}, root); got != want {
			t.Errorf("memo cut at %d: got %s, want %s", cut, got, want)
		}
	}

	file := filepath.Join(root, "b", "c")
	sum := sha256.Sum256([]byte("2"))
	single := fmt.Sprintf("%x", sha256.Sum256(append([]byte("file\x00"), sum[:]...)))
	for range 2 {
		if got := mustFingerprint(t, fp, file); got != single {
			t.Errorf("single file: got %s, want %s", got, single)
		}
	}
}

// A symlink out of the folder or to nothing is an error naming it.
func TestFingerprintBadLinks(t *testing.T) {
	for target, want := range map[string]string{"../../elsewhere": "points outside", "nothing": "dangling symlink"} {
		root := fpTree(t, map[string]string{"a": "1"})
		if err := os.Symlink(target, filepath.Join(root, "l")); err != nil {
			t.Fatal(err)
		}
		if target == "../../elsewhere" {
			if err := os.WriteFile(filepath.Join(root, target), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := (&fingerprinter{dir: t.TempDir()}).fingerprint(t.Context(), root)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("link to %s: got %v, want %q", target, err, want)
		}
	}
}
