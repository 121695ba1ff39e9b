package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// racyWindow: a file modified this close to the moment its hash was
// remembered may change again within the same mtime tick without the
// stat changing (git's "racy clean" problem), so such entries are hashed
// again next time instead of trusted.
const racyWindow = 2 * time.Second

// fingerprinter hashes external files and folders by content, remembering
// each file's hash by (size, mtime ns, inode) in one cache file per path,
// so an unchanged folder of 300 000 images is only stat'ed.
type fingerprinter struct {
	dir string
	// readOnly fingerprinters (status, --dry-run) never write the cache.
	readOnly bool
}

// fileStat is what is known about one file of an external path.
type fileStat struct {
	rel   string // path below the root, "/"-separated; "" for a single file
	path  string // what to read (a symlink's target)
	size  int64
	mtime int64
	ino   uint64
	hash  [32]byte
}

func (f fileStat) sameStat(o fileStat) bool {
	return f.size == o.size && f.mtime == o.mtime && f.ino == o.ino
}

// fingerprint returns the content fingerprint of path: for a file the
// SHA-256 of its bytes, for a folder a hash over its files' sorted
// (relative path, content hash) pairs. Symlinks inside a folder are
// followed only to files inside it; a dangling one is an error.
func (fp *fingerprinter) fingerprint(ctx context.Context, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", path, err)
	}
	root, info, err := resolveRoot(abs)
	if err != nil {
		return "", err
	}

	// Stats taken from here on are compared with this moment to tell racy
	// entries; it must precede them, not follow the (long) hashing.
	began := time.Now().UnixNano()
	var files []fileStat
	if info.IsDir() {
		files, err = walk(ctx, root)
	} else {
		files, err = statOne(root)
	}
	if err != nil {
		return "", err
	}

	cacheFile := filepath.Join(fp.dir, fmt.Sprintf("%x", sha256.Sum256([]byte(abs))))
	cached, writtenAt := readFPCache(cacheFile)
	changed, err := hashStale(ctx, files, cached, writtenAt)
	if err != nil {
		return "", err
	}
	if (changed || len(cached) != len(files)) && !fp.readOnly {
		if err := writeFPCache(cacheFile, files, began); err != nil {
			return "", err
		}
	}

	h := sha256.New()
	if !info.IsDir() {
		h.Write([]byte("file\x00"))
		h.Write(files[0].hash[:])
	} else {
		h.Write([]byte("dir\x00"))
		for _, f := range files {
			h.Write([]byte(f.rel))
			h.Write([]byte{0})
			h.Write(f.hash[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func resolveRoot(abs string) (string, fs.FileInfo, error) {
	linfo, err := os.Lstat(abs)
	if err != nil {
		return "", nil, fmt.Errorf("external input %s: %w", abs, err)
	}
	info := linfo
	if linfo.Mode()&fs.ModeSymlink != 0 {
		if info, err = os.Stat(abs); err != nil {
			target, _ := os.Readlink(abs) // only for the message; Stat already failed
			return "", nil, fmt.Errorf("external input %s: dangling symlink to %s: %w", abs, target, err)
		}
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", nil, fmt.Errorf("external input %s: %w", abs, err)
	}
	if !info.IsDir() && !info.Mode().IsRegular() {
		return "", nil, fmt.Errorf("external input %s: not a file or folder (%s)", abs, info.Mode().Type())
	}
	return root, info, nil
}

func statOne(path string) ([]fileStat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	return []fileStat{{path: path, size: st.Size, mtime: st.Mtim.Nano(), ino: st.Ino}}, nil
}

// walk lists the files below root, sorted by relative path. Folders are
// read in parallel: the walk is bound by system calls, not by the CPU.
func walk(ctx context.Context, root string) ([]fileStat, error) {
	var (
		mu    sync.Mutex
		files []fileStat
	)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4 * runtime.NumCPU())
	var visit func(rel string) error
	visit = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		local, subdirs, err := readDir(root, rel)
		if err != nil {
			return err
		}
		mu.Lock()
		files = append(files, local...)
		mu.Unlock()
		for _, sub := range subdirs {
			// Hand sub-folders to new goroutines while there is room and
			// walk them here otherwise, so a full pool cannot deadlock.
			if !g.TryGo(func() error { return visit(sub) }) {
				if err := visit(sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	g.Go(func() error { return visit("") })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b fileStat) int { return strings.Compare(a.rel, b.rel) })
	return files, nil
}

func readDir(root, rel string) (files []fileStat, subdirs []string, err error) {
	dirPath := filepath.Join(root, filepath.FromSlash(rel))
	d, err := os.Open(dirPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read folder %s: %w", dirPath, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, fmt.Errorf("read folder %s: %w", dirPath, err)
	}
	fd := int(d.Fd())
	for _, name := range names {
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		full := filepath.Join(dirPath, name)
		var st unix.Stat_t
		// fstatat on the open folder spares the kernel a path walk per file.
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, nil, fmt.Errorf("stat %s: %w", full, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			subdirs = append(subdirs, childRel)
		case unix.S_IFREG:
			files = append(files, fileStat{rel: childRel, path: full, size: st.Size, mtime: st.Mtim.Nano(), ino: st.Ino})
		case unix.S_IFLNK:
			f, err := followLink(root, full, childRel)
			if err != nil {
				return nil, nil, err
			}
			files = append(files, f)
		default:
			// Sockets, pipes and devices have no content to fingerprint.
		}
	}
	return files, subdirs, nil
}

// followLink fingerprints a symlink inside an external folder by its
// target's content; the target must be a file inside the folder, so the
// fingerprint never depends on something outside what the stage names.
func followLink(root, full, rel string) (fileStat, error) {
	target, err := filepath.EvalSymlinks(full)
	if err != nil {
		dest, _ := os.Readlink(full) // only for the message
		return fileStat{}, fmt.Errorf("external input %s: dangling symlink to %q", full, dest)
	}
	if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return fileStat{}, fmt.Errorf("external input %s: symlink points outside %s (to %s)", full, root, target)
	}
	var st unix.Stat_t
	if err := unix.Stat(target, &st); err != nil {
		return fileStat{}, fmt.Errorf("stat %s: %w", target, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileStat{}, fmt.Errorf("external input %s: symlink to a folder is not followed", full)
	}
	return fileStat{rel: rel, path: target, size: st.Size, mtime: st.Mtim.Nano(), ino: st.Ino}, nil
}

// hashStale fills in each file's hash, from the cache when its stat is
// unchanged and not racy, by reading it otherwise. It reports whether
// anything had to be read.
func hashStale(ctx context.Context, files []fileStat, cached map[string]fileStat, writtenAt int64) (bool, error) {
	var todo []int
	for i := range files {
		c, ok := cached[files[i].rel]
		if ok && c.sameStat(files[i]) && files[i].mtime < writtenAt-int64(racyWindow) {
			files[i].hash = c.hash
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return false, nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for _, i := range todo {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sum, err := hashFile(files[i].path)
			files[i].hash = sum
			return err
		})
	}
	return true, g.Wait()
}

func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("hash %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// The cache is a small binary file, not JSON: 300 000 entries must load in
// well under the one second a warm `stitch status` may take.
const fpMagic = "stitch-fp-1\n"

func readFPCache(path string) (map[string]fileStat, int64) {
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte(fpMagic)) {
		return nil, 0 // no cache or an old format: everything is hashed again
	}
	r := bytes.NewReader(data[len(fpMagic):])
	writtenAt, err1 := binary.ReadVarint(r)
	n, err2 := binary.ReadUvarint(r)
	if err1 != nil || err2 != nil || n > uint64(len(data)) {
		return nil, 0
	}
	out := make(map[string]fileStat, n)
	for range n {
		var f fileStat
		relLen, err := binary.ReadUvarint(r)
		if err != nil || relLen > uint64(r.Len()) {
			return nil, 0
		}
		rel := make([]byte, relLen)
		io.ReadFull(r, rel) // length checked above
		f.rel = string(rel)
		size, e1 := binary.ReadVarint(r)
		mtime, e2 := binary.ReadVarint(r)
		ino, e3 := binary.ReadUvarint(r)
		_, e4 := io.ReadFull(r, f.hash[:])
		if err := errors.Join(e1, e2, e3, e4); err != nil {
			return nil, 0
		}
		f.size, f.mtime, f.ino = size, mtime, ino
		out[f.rel] = f
	}
	return out, writtenAt
}

func writeFPCache(path string, files []fileStat, began int64) error {
	return writeAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		bw.WriteString(fpMagic)
		var buf [binary.MaxVarintLen64]byte
		putV := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
		putU := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
		putV(began)
		putU(uint64(len(files)))
		for _, f := range files {
			putU(uint64(len(f.rel)))
			bw.WriteString(f.rel)
			putV(f.size)
			putV(f.mtime)
			putU(f.ino)
			bw.Write(f.hash[:])
		}
		return bw.Flush() // bufio keeps the first write error and returns it here
	})
}
