package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"stitch/artifacts"
)

// GCResult is what a garbage collection removed (or, dry, would remove).
type GCResult struct {
	// Objects are the unreferenced artifacts, sorted.
	Objects []artifacts.ID
	// Bytes is their total size.
	Bytes int64
	// Entries counts cache entries dropped because an output went.
	Entries int
	// Temps counts leftovers of interrupted writes.
	Temps int
	// Work counts the work folders (checkpoints) of abandoned attempts,
	// which no rerun would resume, and the empty ones, which hold nothing
	// to resume from; WorkBytes is their size.
	Work      int
	WorkBytes int64
	// Locks counts the per-key lock files that no process held.
	Locks int
}

// GC removes the objects that no stage's last recorded run references
// (see LastRecords; the cache entry of the record's key counts as its
// reference too), the cache entries that pointed at them, the
// temporary files of interrupted writes, the per-key lock files that no
// process holds and the work folders of abandoned attempts: a folder
// stays while its key is the latest attempt of some stage that did not
// succeed (failed, interrupted or killed), which a rerun as it stands
// would resume, unless it is empty (no file anywhere in it), which leaves
// nothing to resume from. It holds the workspace lock exclusively, so it
// waits for running `stitch run`s and they wait for it. With dryRun it
// only lists what it would remove.
func (w *Workspace) GC(ctx context.Context, dryRun bool) (*GCResult, error) {
	if !dryRun {
		unlock, err := flock(ctx, filepath.Join(w.meta, "lock"), unix.LOCK_EX, func() {
			w.logger.Info("waiting for the stitch runs in this workspace to finish")
		})
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if w.store == nil {
		return &GCResult{}, nil // a workspace that was never run in
	}
	records, err := w.LastRecords()
	if err != nil {
		return nil, err
	}
	// Live are the outputs each record names and those its key's cache
	// entry names: a record edited or cut short must not free the
	// current outputs it no longer lists.
	live := map[artifacts.ID]bool{}
	for _, r := range records {
		for _, id := range r.Outputs {
			live[id] = true
		}
		var e IndexEntry
		if len(r.Key) > 2 && readJSON(w.indexPath(r.Key), &e) == nil {
			for _, id := range e.Outputs {
				live[id] = true
			}
		}
	}

	res := &GCResult{}
	objects, err := filepath.Glob(filepath.Join(w.meta, "objects", "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	dead := map[artifacts.ID]bool{}
	for _, path := range objects {
		id, err := artifacts.ParseID(filepath.Base(filepath.Dir(path)) + filepath.Base(path))
		if err != nil || live[id] {
			continue // not an object name: not ours to remove
		}
		if info, err := os.Stat(path); err == nil {
			res.Bytes += info.Size()
		}
		dead[id] = true
		res.Objects = append(res.Objects, id)
		if !dryRun {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("gc: remove %s: %w", path, err)
			}
		}
	}
	slices.SortFunc(res.Objects, func(a, b artifacts.ID) int { return strings.Compare(a.String(), b.String()) })

	entries, err := filepath.Glob(filepath.Join(w.meta, "index", "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, path := range entries {
		var e IndexEntry
		if err := readJSON(path, &e); err != nil {
			continue // unreadable entries are misses anyway; leave them for a person to see
		}
		for _, id := range e.Outputs {
			if dead[id] || !w.store.Has(id) {
				res.Entries++
				if !dryRun {
					os.Remove(path) // a vanished entry is as good as a removed one
				}
				break
			}
		}
	}

	temps, err := w.temps()
	if err != nil {
		return nil, err
	}
	res.Temps = len(temps)
	if !dryRun {
		for _, t := range temps {
			os.Remove(t) // under the exclusive lock nobody is writing them
		}
	}

	if res.Locks, err = w.gcLocks(dryRun); err != nil {
		return res, err
	}

	work, err := os.ReadDir(filepath.Join(w.meta, "work"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("gc: %w", err)
	}
	if len(work) == 0 {
		return res, nil
	}
	keep, err := w.resumableKeys()
	if err != nil {
		return nil, err
	}
	for _, d := range work {
		path := w.workPath(d.Name())
		if keep[d.Name()] && !emptyTree(path) {
			continue
		}
		res.Work++
		res.WorkBytes += treeSize(path)
		if !dryRun {
			if err := os.RemoveAll(path); err != nil {
				return res, fmt.Errorf("gc: %w", err)
			}
		}
	}
	return res, nil
}

// gcLocks removes the lock files under locks/ that no process holds and
// returns how many; dry, it only counts them.
//
// Removing one is safe because of the workspace lock that GC holds
// exclusively. A run opens and locks locks/<key> only while it holds the
// workspace lock shared (Run, then runStage), so none is between opening
// a lock file and locking it: none can lock the unlinked file while a
// later run creates a new one under the same name, and both think they
// hold the key. The one other opener, keyBusy (status), never waits and
// creates nothing: a probe of the unlinked file says "not busy", which is
// true. Each file is taken with a non-blocking exclusive flock first and
// removed only while held, so one that some process does hold stays.
// A dry run holds no workspace lock, so it only probes, as status does.
func (w *Workspace) gcLocks(dryRun bool) (int, error) {
	dir := filepath.Join(w.meta, "locks")
	locks, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("gc: %w", err)
	}
	n := 0
	for _, d := range locks {
		if !d.Type().IsRegular() {
			continue // not a lock file: not ours to remove
		}
		if dryRun {
			if !w.keyBusy(d.Name()) {
				n++
			}
			continue
		}
		removed, err := removeIfFree(filepath.Join(dir, d.Name()))
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// removeIfFree removes the lock file at path unless a process holds it,
// and reports whether it did.
func removeIfFree(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gc: %w", err)
	}
	defer f.Close() // closing releases the lock, after the unlink

	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gc: lock %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("gc: remove %s: %w", path, err)
	}
	return true, nil
}

// emptyTree reports whether path is a folder with no file anywhere under
// it, only folders if any. What cannot be read counts as not empty.
func emptyTree(path string) bool {
	empty := true
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			empty = false
			return filepath.SkipAll
		}
		return nil
	})
	return err == nil && empty
}

// resumableKeys are the keys of the latest attempt of each stage of each
// pipeline, where that attempt did not succeed: the work folders a rerun
// would resume from.
func (w *Workspace) resumableKeys() (map[string]bool, error) {
	runs, err := w.RunRecords()
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	keep := map[string]bool{}
	seen := map[string]bool{}
	for _, r := range slices.Backward(runs) {
		for _, sr := range r.Stages {
			id := r.Pipeline + "\x00" + sr.Stage
			if seen[id] {
				continue
			}
			switch sr.State {
			case StateFailed, StateInterrupted, StateRunning:
				keep[sr.Key] = sr.Key != ""
			case StateRan, StateCached:
			default:
				continue // not attempted
			}
			seen[id] = true
		}
	}
	return keep, nil
}

// treeSize is the size of the files under path (0 for what cannot be read).
func treeSize(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// temps lists leftovers of writes interrupted by a crash.
func (w *Workspace) temps() ([]string, error) {
	var out []string
	err := filepath.WalkDir(w.meta, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "objects" || d.Name() == "work") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasPrefix(d.Name(), ".tmp-") || filepath.Base(filepath.Dir(path)) == "tmp") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	return out, nil
}

// Report calls Report on the stages of a run whose kind is a Reporter
// and that ended fresh or cached, in pipeline order. ExportDir is
// WORKSPACE/stitch-out/<pipeline>/<stage>/.
func (w *Workspace) Report(ctx context.Context, p *Pipeline, res *Result, out io.Writer) error {
	var errs []error
	for _, sr := range res.Stages {
		if sr.State != StateRan && sr.State != StateCached {
			continue
		}
		s, ok := p.Lookup(sr.Stage)
		if !ok {
			continue
		}
		rep, ok := s.Kind.(Reporter)
		if !ok {
			continue
		}
		dir := w.ExportDir(p.Name, s.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", s.Name, err))
			continue
		}
		env := ReportEnv{Stage: s.Name, Store: w.store, Outputs: sr.Outputs, Out: out, ExportDir: dir}
		if err := rep.Report(ctx, env); err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}
