package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"stitch/artifacts"
)

// MetaDir is the folder of a workspace that stitch owns.
const MetaDir = ".stitch"

// Workspace is a folder with stitch's state under .stitch:
//
//	objects/ab/cdef...       artifacts (artifacts.Store)
//	index/ab/<key>.json      one cache entry per run key: its outputs
//	last/<pipeline>/<stage>  the last successful run of each stage, for status
//	runs/<time>-<pid>.json   one record per `stitch run`, for log
//	fp/<hash of path>        remembered content hashes of external files
//	verified.json            objects already re-hashed, by size/mtime/ctime/inode
//	locks/<key>              flock per run key; lock: the workspace lock
//	work/<key>/              scratch folders of unfinished runs
//
// and the files for people under stitch-out/<pipeline>/<stage>/.
type Workspace struct {
	// Dir is the workspace folder.
	Dir      string
	meta     string
	store    *artifacts.Store
	logger   *slog.Logger
	readOnly bool
}

// OpenWorkspace opens the workspace in dir, creating .stitch if needed.
func OpenWorkspace(dir string, logger *slog.Logger) (*Workspace, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	meta := filepath.Join(dir, MetaDir)
	store, err := artifacts.OpenStore(meta, logger)
	if err != nil {
		return nil, fmt.Errorf("open workspace %s: %w", dir, err)
	}
	return &Workspace{Dir: dir, meta: meta, store: store, logger: logger}, nil
}

// OpenWorkspaceReadOnly opens the workspace in dir for commands that must
// change nothing (status, --dry-run, show, log): it creates no folder and
// writes no file, and a workspace without .stitch reads as empty.
func OpenWorkspaceReadOnly(dir string, logger *slog.Logger) (*Workspace, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open workspace %s: no such folder", dir)
	}
	meta := filepath.Join(dir, MetaDir)
	w := &Workspace{Dir: dir, meta: meta, logger: logger, readOnly: true}
	if _, err := os.Stat(filepath.Join(meta, "objects")); err == nil {
		if w.store, err = artifacts.OpenStoreReadOnly(meta, logger); err != nil {
			return nil, fmt.Errorf("open workspace %s: %w", dir, err)
		}
	}
	return w, nil
}

// Store returns the artifact store; nil for a read-only workspace that
// has never been run in.
func (w *Workspace) Store() *artifacts.Store { return w.store }

func (w *Workspace) indexPath(key string) string {
	return filepath.Join(w.meta, "index", key[:2], key+".json")
}

func (w *Workspace) lastPath(pipeline, stage string) string {
	return filepath.Join(w.meta, "last", url.PathEscape(pipeline), url.PathEscape(stage)+".json")
}

func (w *Workspace) workPath(key string) string { return filepath.Join(w.meta, "work", key) }

// ExportDir is where a stage's files for people go.
func (w *Workspace) ExportDir(pipeline, stage string) string {
	clean := func(s string) string { return strings.NewReplacer("/", "_", "\\", "_").Replace(s) }
	return filepath.Join(w.Dir, "stitch-out", clean(pipeline), clean(stage))
}

// IndexEntry is the cache entry of one run key: what went in and what
// came out. It is written once, atomically, after the stage succeeded.
type IndexEntry struct {
	Key       string                    `json:"key"`
	Kind      string                    `json:"kind"`
	Version   string                    `json:"version"`
	Params    json.RawMessage           `json:"params"`
	Seed      int64                     `json:"seed"`
	Inputs    map[string][]artifacts.ID `json:"inputs,omitempty"`
	Externals map[string]string         `json:"externals,omitempty"`
	Outputs   map[string]artifacts.ID   `json:"outputs"`
	Created   time.Time                 `json:"created"`
}

// InputRecord is one input of a recorded stage run.
type InputRecord struct {
	Stage  string       `json:"stage"`
	Output string       `json:"output"`
	ID     artifacts.ID `json:"id"`
}

// StageRecord is the last successful run (fresh or cached) of one stage
// of one pipeline: what `status` compares against to say why it is stale.
type StageRecord struct {
	Pipeline  string                   `json:"pipeline"`
	Stage     string                   `json:"stage"`
	Kind      string                   `json:"kind"`
	Version   string                   `json:"version"`
	Key       string                   `json:"key"`
	Params    json.RawMessage          `json:"params"`
	Explicit  []string                 `json:"explicit,omitempty"`
	Seed      int64                    `json:"seed"`
	Inputs    map[string][]InputRecord `json:"inputs,omitempty"`
	Externals map[string]string        `json:"externals,omitempty"`
	Outputs   map[string]artifacts.ID  `json:"outputs"`
	// Time is when this key and these outputs were first recorded: a
	// later run that reuses them leaves the record as it is.
	Time time.Time `json:"time"`
}

// RunRecord is what one `stitch run` did, for `stitch log`.
type RunRecord struct {
	ID       string    `json:"id"`
	Pipeline string    `json:"pipeline"`
	File     string    `json:"file"`
	Args     []string  `json:"args,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"` // ok, failed, interrupted or running
	// PID is the process that ran it: a record still "running" whose
	// process is gone was killed (see Killed).
	PID int `json:"pid,omitempty"`
	// Stages are the stages the run selected, all "not run" while it
	// runs: what a killed run leaves.
	Stages []StageRun `json:"stages"`
}

// OutcomeRunning marks the record of a run that has not finished; it is
// rewritten when the run ends, so one that stays is a run in progress or a
// killed one.
const OutcomeRunning = "running"

// Killed reports whether r never finished and its process is gone.
func (r *RunRecord) Killed() bool {
	if r.Outcome != OutcomeRunning || r.PID <= 0 {
		return false
	}
	// Signal 0 checks that the process exists without touching it.
	err := syscall.Kill(r.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}

// StageRun is one stage in a RunRecord.
type StageRun struct {
	Stage    string                  `json:"stage"`
	Kind     string                  `json:"kind"`
	Key      string                  `json:"key,omitempty"`
	State    State                   `json:"state"`
	Seconds  float64                 `json:"seconds"`
	Outputs  map[string]artifacts.ID `json:"outputs,omitempty"`
	Error    string                  `json:"error,omitempty"`
	Upstream string                  `json:"upstream,omitempty"`
}

func (w *Workspace) readIndex(key string) (*IndexEntry, error) {
	var e IndexEntry
	if err := readJSON(w.indexPath(key), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// LastRecord returns the last successful run of stage, or nil.
func (w *Workspace) LastRecord(pipeline, stage string) (*StageRecord, error) {
	path := w.lastPath(pipeline, stage)
	r, err := readRecord(path)
	if err == nil && r != nil && (r.Pipeline != pipeline || r.Stage != stage) {
		return nil, fmt.Errorf("%w: %s: it is stage %s of pipeline %s; a stitch run of its pipeline rewrites it",
			ErrBadRecord, path, r.Stage, r.Pipeline)
	}
	return r, err
}

// ErrBadRecord marks a record, of a stage's last run or of a run, that
// exists but cannot be read as one (a crash while it was written, an
// edit); the next `stitch run` of its pipeline rewrites a last-run record.
var ErrBadRecord = errors.New("run record unreadable")

// readRecord reads one last-run record: nil when there is none, an
// ErrBadRecord when it does not parse.
func readRecord(path string) (*StageRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var r StageRecord
	err = json.Unmarshal(data, &r)
	if err == nil && (r.Pipeline == "" || r.Stage == "" || r.Key == "" || r.Outputs == nil) {
		// `null` or `{}` parse, and would read as a stage with no outputs:
		// gc would then free the stage's current objects.
		err = errors.New("it lacks the pipeline, stage, key or outputs")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; a stitch run of its pipeline rewrites it", ErrBadRecord, path, err)
	}
	return &r, nil
}

// LastRecords returns every last-run record in the workspace, sorted by
// pipeline and stage. Records that do not parse are left out, and the
// error then wraps ErrBadRecord and names the first: a reader may go on
// with the others (show), one that must see all may not (gc).
func (w *Workspace) LastRecords() ([]*StageRecord, error) {
	files, err := filepath.Glob(filepath.Join(w.meta, "last", "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var out []*StageRecord
	var bad error
	for _, f := range files {
		r, err := readRecord(f)
		switch {
		case errors.Is(err, ErrBadRecord):
			bad = cmp.Or(bad, err)
		case err != nil:
			return nil, err
		case r != nil:
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *StageRecord) int {
		return strings.Compare(a.Pipeline+"\x00"+a.Stage, b.Pipeline+"\x00"+b.Stage)
	})
	return out, bad
}

// ReadableRecords is LastRecords for readers that can do without a
// record that does not parse (show, predict): it is left out with a
// warning.
func (w *Workspace) ReadableRecords() ([]*StageRecord, error) {
	recs, err := w.LastRecords()
	if errors.Is(err, ErrBadRecord) {
		w.logger.Warn("unreadable run record left out", "err", err)
		err = nil
	}
	return recs, err
}

// RunRecords returns every run record, oldest first. Records that do not
// parse are left out, and the error then wraps ErrBadRecord and names
// the first, as LastRecords does.
func (w *Workspace) RunRecords() ([]*RunRecord, error) {
	files, err := filepath.Glob(filepath.Join(w.meta, "runs", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []*RunRecord
	var bad error
	for _, f := range files {
		var r RunRecord
		err := readJSON(f, &r)
		if err == nil && r.ID == "" {
			err = fmt.Errorf("read %s: no run id", f) // null or {}
		}
		if err != nil {
			// A crash while it was written, or an edit: the others still
			// tell their runs.
			bad = cmp.Or(bad, fmt.Errorf("%w: %w", ErrBadRecord, err))
			continue
		}
		out = append(out, &r)
	}
	slices.SortFunc(out, func(a, b *RunRecord) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, bad
}

func (w *Workspace) writeRunRecord(r *RunRecord) error {
	return writeJSON(filepath.Join(w.meta, "runs", r.ID+".json"), r)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
}

// writeAtomic writes a file the way the store writes objects: to a
// temporary file in the same folder, synced, then renamed over path, so a
// reader (or another stitch process) sees the old file or the new one,
// never half of one.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Removing is a no-op once the file has been renamed into place.
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// flock takes an advisory lock on path (unix.LOCK_SH or LOCK_EX), waiting
// while another process holds it, until ctx ends. The kernel drops the
// lock when the process dies, so a SIGKILLed run leaves nothing stale.
// Polling with LOCK_NB, rather than a blocking flock, keeps the wait
// cancellable by Ctrl-C. onWait, if not nil, is called once when the lock
// is busy, so that a wait that may last hours does not look like a hang.
func flock(ctx context.Context, path string, how int, onWait func()) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	wait := 5 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if onWait != nil && errors.Is(err, unix.EWOULDBLOCK) {
			onWait()
			onWait = nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// keyBusy reports whether a process holds the lock of key: it is running
// that stage now. It creates nothing.
func (w *Workspace) keyBusy(key string) bool {
	f, err := os.Open(filepath.Join(w.meta, "locks", key))
	if err != nil {
		return false // never locked
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

// lockShared takes the workspace lock shared: any number of runs at once,
// but no `gc` while they last.
func (w *Workspace) lockShared(ctx context.Context) (func(), error) {
	return flock(ctx, filepath.Join(w.meta, "lock"), unix.LOCK_SH, func() {
		w.logger.Info("waiting for stitch gc to finish")
	})
}

// objStat identifies one state of an object file. ctime is in it because
// no user tool can set it back: any write to the object changes it.
type objStat struct {
	Size  int64  `json:"s"`
	Mtime int64  `json:"m"`
	Ctime int64  `json:"c"`
	Ino   uint64 `json:"i"`
}

func statObject(path string) (objStat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return objStat{}, err
	}
	return objStat{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}, nil
}

// verifyMemo remembers which objects were re-hashed in which state, so a
// no-op run does not read every (possibly huge) output again. An entry
// counts only while the file's size, mtime, ctime and inode are the same.
// It is an optimisation: losing entries (two processes writing it at
// once, last one wins) only costs a re-hash.
type verifyMemo struct {
	path    string
	mu      sync.Mutex
	entries map[string]objStat
	dirty   bool
}

func (w *Workspace) loadMemo() *verifyMemo {
	m := &verifyMemo{path: filepath.Join(w.meta, "verified.json"), entries: map[string]objStat{}}
	if err := readJSON(m.path, &m.entries); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.logger.Debug("ignoring unreadable verification memo", "err", err)
	}
	if m.entries == nil {
		m.entries = map[string]objStat{}
	}
	return m
}

func (m *verifyMemo) ok(id artifacts.ID, st objStat) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[id.String()] == st
}

func (m *verifyMemo) remember(id artifacts.ID, st objStat) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[id.String()] != st {
		m.entries[id.String()] = st
		m.dirty = true
	}
}

func (m *verifyMemo) save() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirty {
		return nil
	}
	return writeJSON(m.path, m.entries)
}

// verifyObject checks that object id exists and hashes to its id,
// trusting the memo when the file is unchanged since it last did.
// Read-only callers get the verdict without the corrupt object being
// removed or the memo updated.
func (w *Workspace) verifyObject(id artifacts.ID, memo *verifyMemo) error {
	if w.store == nil {
		return fmt.Errorf("verify object %s: %w", id.Short(), artifacts.ErrNotFound)
	}
	path := w.store.Path(id)
	st, err := statObject(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("verify object %s: %w", id.Short(), artifacts.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("verify object %s: %w", id.Short(), err)
	}
	if memo != nil && memo.ok(id, st) {
		return nil
	}
	if w.readOnly {
		sum, err := hashFile(path)
		if err != nil {
			return err
		}
		if sum != id {
			return fmt.Errorf("verify object %s: %w", id.Short(), artifacts.ErrCorrupt)
		}
		return nil
	}
	if err := w.store.Verify(id); err != nil {
		return err
	}
	if memo != nil {
		memo.remember(id, st)
	}
	return nil
}

const lockEX = unix.LOCK_EX
