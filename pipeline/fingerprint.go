package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// racyWindow: a file modified this close to the moment its hash was
// remembered may change again within the same mtime tick without the
// stat changing (git's "racy clean" problem), so such entries are hashed
// again next time instead of trusted. The same holds for a folder's
// listing. Only mtime is checked against the window, as git does: every
// write sets mtime to the present, so an entry whose mtime is old when
// remembered cannot change later without its mtime changing.
const racyWindow = 2 * time.Second

// fingerprinter hashes external files and folders by content. It
// remembers, in one memo file per path, each folder's stat and list of
// entries and each file's hash by (size, mtime, ctime, inode), so an
// unchanged folder of 300 000 images costs one stat per file and nothing
// else: no directory listing, no sorting, no allocation per file.
type fingerprinter struct {
	dir string
	// readOnly fingerprinters (status, --dry-run) never write the memo.
	readOnly bool
	// hashed counts the files read so far, for tests to tell a memo hit.
	hashed atomic.Int64
}

// The kinds of entry in a folder.
const (
	entryFile uint8 = iota + 1
	entryDir
	entryLink // a symlink to a file inside the root, hashed as its target
)

// fpDir is one folder of an external tree, or the pseudo-folder holding
// a single external file (rel "", one entry named "").
type fpDir struct {
	rel  string // below the root, "/"-separated; "" for the root
	stat statKey
	// entries are sorted by key: the name, with "/" appended for folders,
	// so a depth-first walk meets files in the byte order of their whole
	// relative paths ("a.b" < "a/b" < "a0"), the order the fingerprint
	// hashes them in.
	entries []fpEntry
}

// statKey is what tells that a file or folder changed without reading
// it. ctime is there because no user tool can set it: a file rewritten
// with its size and mtime put back still changes it.
type statKey struct {
	size  int64
	mtime int64
	ctime int64
	ino   uint64
}

func statKeyOf(st *unix.Stat_t) statKey {
	return statKey{size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino}
}

// fpEntry is one entry of a folder.
type fpEntry struct {
	name string
	kind uint8
	stat statKey // of the file, or of a symlink's target
	hash [32]byte
	sub  *fpDir // the folder's own listing, for entryDir
	// path is what to read when the hash must be computed; set only then.
	path string
}

// fpMemo is what the last fingerprint of a path remembered.
type fpMemo struct {
	writtenAt int64
	dirs      map[string]*fpDir
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

	memoFile := filepath.Join(fp.dir, fmt.Sprintf("%x", sha256.Sum256([]byte(abs))))
	memo := readFPMemo(memoFile)

	// Stats taken from here on are compared with this moment to tell racy
	// entries; it must precede them, not follow the (long) hashing.
	began := time.Now().UnixNano()
	w := &treeWalk{root: root, memo: memo, racyBefore: memo.writtenAt - int64(racyWindow)}
	top := &fpDir{}
	if info.IsDir() {
		err = w.walk(ctx, top)
	} else {
		err = w.statFile(top)
	}
	if err != nil {
		return "", err
	}
	if err := hashStale(ctx, w.stale); err != nil {
		return "", err
	}
	fp.hashed.Add(int64(len(w.stale)))
	if w.changed.Load() && !fp.readOnly {
		if err := writeFPMemo(memoFile, top, began); err != nil {
			return "", err
		}
	}

	h := sha256.New()
	if !info.IsDir() {
		h.Write([]byte("file\x00"))
		h.Write(top.entries[0].hash[:])
	} else {
		h.Write([]byte("dir\x00"))
		sumTree(h, top, make([]byte, 0, 256))
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// sumTree feeds each file's "rel\x00hash" to h in key order, one reused
// buffer for all of them.
func sumTree(h hash.Hash, d *fpDir, buf []byte) {
	for i := range d.entries {
		e := &d.entries[i]
		if e.sub != nil {
			sumTree(h, e.sub, buf)
			continue
		}
		buf = buf[:0]
		if d.rel != "" {
			buf = append(append(buf, d.rel...), '/')
		}
		buf = append(append(append(buf, e.name...), 0), e.hash[:]...)
		h.Write(buf)
	}
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

// treeWalk is one fingerprint's walk over an external path.
type treeWalk struct {
	root       string
	memo       *fpMemo
	racyBefore int64 // remembered stats newer than this are not trusted

	mu    sync.Mutex
	stale []*fpEntry // files whose hash must be computed
	// changed says the memo no longer matches what is on disk.
	changed atomic.Bool
}

// statFile fills the pseudo-folder of a single external file.
func (w *treeWalk) statFile(top *fpDir) error {
	var st unix.Stat_t
	if err := unix.Stat(w.root, &st); err != nil {
		return fmt.Errorf("stat %s: %w", w.root, err)
	}
	top.entries = []fpEntry{{kind: entryFile, stat: statKeyOf(&st), path: w.root}}
	old := w.memo.dirs[""]
	if old == nil || len(old.entries) != 1 || old.entries[0].name != "" {
		old = &fpDir{}
	}
	w.reuse(&top.entries[0], old.entries, "")
	return nil
}

// walk fills top with the tree below w.root. Folders are read in
// parallel: the walk is bound by system calls, which overlap even on two
// cores while a goroutine waits for the disk.
func (w *treeWalk) walk(ctx context.Context, top *fpDir) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4 * runtime.NumCPU())
	var visit func(d *fpDir) error
	visit = func(d *fpDir) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.readDir(d); err != nil {
			return err
		}
		for i := range d.entries {
			sub := d.entries[i].sub
			if sub == nil {
				continue
			}
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
	g.Go(func() error { return visit(top) })
	return g.Wait()
}

// readDir fills d.entries. When the folder's own stat is unchanged since
// the memo (and not racy), its list of entries is too: adding, removing
// or renaming an entry changes the folder's mtime. Then the remembered
// names are stat'ed in place, with no listing and no allocation per
// file; files changed in place still show in their own stat.
func (w *treeWalk) readDir(d *fpDir) error {
	dirPath := w.root
	if d.rel != "" {
		dirPath = w.root + "/" + d.rel
	}
	f, err := os.Open(dirPath)
	if err != nil {
		return fmt.Errorf("read folder %s: %w", dirPath, err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", dirPath, err)
	}
	d.stat = statKeyOf(&st)

	old := w.memo.dirs[d.rel]
	if old == nil {
		old = &fpDir{}
	}
	if old.stat == d.stat && d.stat.mtime < w.racyBefore {
		ok, err := w.statListed(fd, dirPath, d, old)
		if ok || err != nil {
			return err
		}
	}
	// The listing changed, or an entry changed type under an unchanged
	// folder stat (a race with a writer): list it again.
	w.changed.Store(true)
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read folder %s: %w", dirPath, err)
	}
	d.entries = make([]fpEntry, 0, len(names))
	for _, name := range names {
		e := fpEntry{name: name}
		if err := w.classify(fd, dirPath, d, &e); err != nil {
			return err
		}
		if e.kind != 0 {
			d.entries = append(d.entries, e)
		}
	}
	slices.SortFunc(d.entries, func(a, b fpEntry) int { return compareKeys(&a, &b) })

	// Both lists are sorted by key: merge them to find each entry's
	// remembered hash.
	j := 0
	for i := range d.entries {
		e := &d.entries[i]
		for j < len(old.entries) && compareKeys(&old.entries[j], e) < 0 {
			j++
		}
		if e.kind != entryDir {
			w.reuse(e, old.entries[j:], dirPath)
		}
	}
	return nil
}

// statListed stats the entries the memo lists for d. It returns false
// when one is gone or changed type, so the caller lists the folder.
func (w *treeWalk) statListed(fd int, dirPath string, d, old *fpDir) (bool, error) {
	d.entries = make([]fpEntry, len(old.entries))
	for i := range old.entries {
		e := &d.entries[i]
		e.name = old.entries[i].name
		if err := w.classify(fd, dirPath, d, e); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			return false, err
		}
		if e.kind != old.entries[i].kind {
			return false, nil
		}
		if e.kind != entryDir {
			w.reuse(e, old.entries[i:i+1], dirPath)
		}
	}
	return true, nil
}

// classify stats one entry of the folder open as fd and sets its kind
// (0 for what has no content: sockets, pipes, devices) and stat, or its
// sub-folder.
func (w *treeWalk) classify(fd int, dirPath string, d *fpDir, e *fpEntry) error {
	var st unix.Stat_t
	// fstatat on the open folder spares the kernel a path walk per file.
	if err := unix.Fstatat(fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", dirPath+"/"+e.name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.kind = entryDir
		rel := e.name
		if d.rel != "" {
			rel = d.rel + "/" + e.name
		}
		e.sub = &fpDir{rel: rel}
	case unix.S_IFREG:
		e.kind = entryFile
		e.stat = statKeyOf(&st)
	case unix.S_IFLNK:
		target, err := followLink(w.root, dirPath+"/"+e.name, &st)
		if err != nil {
			return err
		}
		e.kind = entryLink
		e.stat = statKeyOf(&st)
		e.path = target
	default:
		e.kind = 0
	}
	return nil
}

// reuse takes e's hash from the first of olds when that is the same
// entry with the same stat, remembered long enough ago to be trusted;
// otherwise it queues e to be hashed, reading e.path when set (a
// symlink's target, a single file) and the file in dirPath otherwise.
// The path is joined only here, so trusted files cost no allocation.
func (w *treeWalk) reuse(e *fpEntry, olds []fpEntry, dirPath string) {
	if len(olds) > 0 {
		o := &olds[0]
		if o.name == e.name && o.kind == e.kind && o.stat == e.stat && e.stat.mtime < w.racyBefore {
			e.hash = o.hash
			e.path = ""
			return
		}
	}
	if e.path == "" {
		e.path = dirPath + "/" + e.name
	}
	w.changed.Store(true)
	w.mu.Lock()
	w.stale = append(w.stale, e)
	w.mu.Unlock()
}

// compareKeys orders entries by name, a folder's name read as if it
// ended in "/". That only matters where one name is a prefix of the
// other, and no name contains "/".
func compareKeys(a, b *fpEntry) int {
	switch {
	case a.kind == entryDir && len(a.name) < len(b.name) && strings.HasPrefix(b.name, a.name):
		return cmpByte('/', b.name[len(a.name)])
	case b.kind == entryDir && len(b.name) < len(a.name) && strings.HasPrefix(a.name, b.name):
		return cmpByte(a.name[len(b.name)], '/')
	}
	return strings.Compare(a.name, b.name)
}

func cmpByte(a, b byte) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// followLink resolves a symlink inside an external folder and stats its
// target into st; the target must be a file inside the folder, so the
// fingerprint never depends on something outside what the stage names.
func followLink(root, full string, st *unix.Stat_t) (string, error) {
	target, err := filepath.EvalSymlinks(full)
	if err != nil {
		dest, _ := os.Readlink(full) // only for the message
		return "", fmt.Errorf("external input %s: dangling symlink to %q", full, dest)
	}
	if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("external input %s: symlink points outside %s (to %s)", full, root, target)
	}
	if err := unix.Stat(target, st); err != nil {
		return "", fmt.Errorf("stat %s: %w", target, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("external input %s: symlink to a folder is not followed", full)
	}
	return target, nil
}

// hashStale reads and hashes the files the walk could not trust.
func hashStale(ctx context.Context, stale []*fpEntry) error {
	if len(stale) == 0 {
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for _, e := range stale {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			sum, err := hashFile(e.path)
			e.hash = sum
			return err
		})
	}
	return g.Wait()
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

// The memo is a compact binary file, not JSON: 300 000 entries must load
// in a few milliseconds of the one second a warm `stitch status` may
// take. Folders come in depth-first order, each with its stat and its
// entries in key order:
//
//	magic, varint writtenAt, uvarint folders,
//	per folder: string rel, varint size, mtime, ctime, uvarint ino,
//	  uvarint entries, per entry: byte kind, string name,
//	  and for files and links: varint size, mtime, ctime, uvarint ino, hash[32]
//
// where a string is a uvarint length and its bytes.
const fpMagic = "stitch-fp-3\n"

// readFPMemo reads a memo; a missing, old or damaged one reads as empty,
// so everything is listed and hashed again.
func readFPMemo(path string) *fpMemo {
	empty := &fpMemo{}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(data, []byte(fpMagic)) {
		return empty
	}
	// One string for the whole file: every name is a substring of it,
	// so decoding allocates per folder, not per file.
	r := &memoReader{s: string(data[len(fpMagic):])}
	m := &fpMemo{writtenAt: r.varint()}
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)) {
		return empty
	}
	m.dirs = make(map[string]*fpDir, n)
	for range n {
		d := &fpDir{rel: r.str()}
		d.stat = statKey{size: r.varint(), mtime: r.varint(), ctime: r.varint(), ino: r.uvarint()}
		count := r.uvarint()
		if r.bad || count > uint64(len(r.s)) {
			return empty
		}
		d.entries = make([]fpEntry, count)
		for i := range d.entries {
			e := &d.entries[i]
			e.kind = r.u8()
			e.name = r.str()
			if e.kind != entryDir {
				e.stat = statKey{size: r.varint(), mtime: r.varint(), ctime: r.varint(), ino: r.uvarint()}
				r.sum(&e.hash)
			}
		}
		if r.bad {
			return empty
		}
		m.dirs[d.rel] = d
	}
	return m
}

// memoReader decodes the memo; the first error sticks in bad.
type memoReader struct {
	s   string
	off int
	bad bool
}

func (r *memoReader) uvarint() uint64 {
	var v uint64
	for shift := 0; shift < 64 && r.off < len(r.s); shift += 7 {
		b := r.s[r.off]
		r.off++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v
		}
	}
	r.bad = true
	return 0
}

func (r *memoReader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zig-zag, as binary.PutVarint writes it
}

func (r *memoReader) u8() uint8 {
	if r.off >= len(r.s) {
		r.bad = true
		return 0
	}
	r.off++
	return r.s[r.off-1]
}

func (r *memoReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.s)-r.off) {
		r.bad = true
		return ""
	}
	r.off += int(n)
	return r.s[r.off-int(n) : r.off]
}

func (r *memoReader) sum(h *[32]byte) {
	if len(r.s)-r.off < len(h) {
		r.bad = true
		return
	}
	r.off += copy(h[:], r.s[r.off:])
}

func writeFPMemo(path string, top *fpDir, began int64) error {
	return writeAtomic(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<16)
		bw.WriteString(fpMagic)
		var buf [binary.MaxVarintLen64]byte
		putV := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
		putU := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
		putS := func(s string) { putU(uint64(len(s))); bw.WriteString(s) }

		var dirs []*fpDir
		var collect func(d *fpDir)
		collect = func(d *fpDir) {
			dirs = append(dirs, d)
			for i := range d.entries {
				if sub := d.entries[i].sub; sub != nil {
					collect(sub)
				}
			}
		}
		collect(top)

		putV(began)
		putU(uint64(len(dirs)))
		for _, d := range dirs {
			putS(d.rel)
			putV(d.stat.size)
			putV(d.stat.mtime)
			putV(d.stat.ctime)
			putU(d.stat.ino)
			putU(uint64(len(d.entries)))
			for i := range d.entries {
				e := &d.entries[i]
				bw.WriteByte(e.kind)
				putS(e.name)
				if e.kind != entryDir {
					putV(e.stat.size)
					putV(e.stat.mtime)
					putV(e.stat.ctime)
					putU(e.stat.ino)
					bw.Write(e.hash[:])
				}
			}
		}
		return bw.Flush() // bufio keeps the first write error and returns it here
	})
}
