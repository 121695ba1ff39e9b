package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"stitch/artifacts"
)

// State is what happened to a stage in one run.
type State string

// The states of a stage in a run or a dry run.
const (
	StateRan            State = "ran"
	StateCached         State = "cached"
	StateFailed         State = "failed"
	StateUpstreamFailed State = "upstream failed"
	// StateNotRun: never started because an unrelated stage failed
	// without --keep-going, or the run was interrupted.
	StateNotRun State = "not run"
	// StateInterrupted: the run was interrupted (Ctrl-C) while the stage
	// ran or waited; it cached nothing and a rerun starts or resumes it.
	StateInterrupted State = "interrupted"
	// StateWouldRun: --dry-run found the stage stale.
	StateWouldRun State = "would run"
	// StateRunning is in the record of a run in progress (or killed): the
	// stage had started and not ended.
	StateRunning State = "running"
)

// Observer follows a run, for progress display. Calls come from several
// goroutines at once.
type Observer interface {
	StageStarted(stage string)
	StageProgress(stage, phase string, done, total int, note string)
	StageFinished(r StageResult)
}

// Options are the choices of one run.
type Options struct {
	// Targets limit the run to these stages (full or base names) and what
	// they depend on; empty means every stage.
	Targets []string
	// Force reruns these stages even when cached.
	Force []string
	// Jobs bounds how many stages run at once (default runtime.NumCPU()).
	Jobs int
	// DryRun says what would run and changes nothing.
	DryRun bool
	// KeepGoing runs independent stages after a failure.
	KeepGoing bool
	// Settings are handed to every stage.
	Settings Settings
	// Observer, if set, sees stages start, progress and finish.
	Observer Observer
	// Args are recorded in the run record (the command line).
	Args []string
}

// StageResult is the outcome of one stage in a run.
type StageResult struct {
	Stage    string
	Kind     string
	Key      string
	State    State
	Duration time.Duration
	Outputs  map[string]artifacts.ID
	// Err is the failure of a failed stage.
	Err error
	// Upstream names the failed stage that kept this one from running.
	Upstream string
	// Reasons say why a stage would run (dry runs only).
	Reasons []string
}

// Result is the outcome of a run, stages in pipeline order.
type Result struct {
	Pipeline string
	RunID    string
	Stages   []StageResult
}

// Count returns how many stages ended in state s.
func (r *Result) Count(s State) int {
	n := 0
	for _, st := range r.Stages {
		if st.State == s {
			n++
		}
	}
	return n
}

// FailedError reports the stages that failed by themselves: the root
// causes, not what was downstream of them.
type FailedError struct {
	Failures []StageResult
}

// Error lists each failed stage and its error.
func (e *FailedError) Error() string {
	var parts []string
	for _, f := range e.Failures {
		parts = append(parts, fmt.Sprintf("stage %s failed: %v", f.Stage, f.Err))
	}
	return strings.Join(parts, "\n")
}

// Unwrap returns the stage errors, so errors.Is(err, context.Canceled)
// tells an interrupted run.
func (e *FailedError) Unwrap() []error {
	var errs []error
	for _, f := range e.Failures {
		errs = append(errs, f.Err)
	}
	return errs
}

// node is a stage in one run's scheduling.
type node struct {
	stage     *Stage
	consumers []*node
	pending   int
	forced    bool
	result    StageResult
	done      bool
	upstream  string // first failed producer, if any
	inputsOf  map[string][]InputRef
	prepared  stageKeyInputs
	lastKnown *StageRecord
}

// Run runs the stale stages of p in the workspace and returns what
// happened to each. A stage failure is a *FailedError; an invalid option
// (unknown target) a *UsageError.
func (w *Workspace) Run(ctx context.Context, p *Pipeline, opts Options) (*Result, error) {
	selected, err := selectStages(p, opts.Targets)
	if err != nil {
		return nil, err
	}
	forced := map[string]bool{}
	for _, f := range opts.Force {
		ss, err := p.Select(f)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			forced[s.Name] = true
		}
	}
	if opts.DryRun || w.readOnly {
		return w.dryRun(ctx, p, selected, forced)
	}

	unlock, err := w.lockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()

	r := &runner{
		w:      w,
		p:      p,
		opts:   opts,
		memo:   w.loadMemo(),
		fp:     &fingerprinter{dir: filepath.Join(w.meta, "fp")},
		nodes:  map[string]*node{},
		logger: w.logger,
	}
	if r.opts.Jobs <= 0 {
		r.opts.Jobs = runtime.NumCPU()
	}
	started := time.Now()
	// A record that says "running" first, so that a run killed with
	// SIGKILL still shows in `stitch log`, and in `status` for the stages
	// it lists as not run yet; it is replaced at the end.
	begun := &RunRecord{ID: runID(started), Pipeline: p.Name, File: p.File, Args: opts.Args,
		Started: started, Outcome: OutcomeRunning, PID: os.Getpid()}
	for _, s := range selected {
		begun.Stages = append(begun.Stages, StageRun{Stage: s.Name, Kind: s.Kind.Name(), State: StateNotRun})
	}
	r.begun = begun
	r.updateRecord("", "", "", 0)
	for _, s := range selected {
		r.nodes[s.Name] = &node{stage: s, forced: forced[s.Name]}
	}
	for _, s := range selected {
		n := r.nodes[s.Name]
		for _, d := range s.Deps {
			r.nodes[d.Name].consumers = append(r.nodes[d.Name].consumers, n)
			n.pending++
		}
	}
	r.schedule(ctx, selected)

	res := &Result{Pipeline: p.Name, RunID: runID(started)}
	var failures []StageResult
	for _, s := range selected {
		sr := r.nodes[s.Name].result
		res.Stages = append(res.Stages, sr)
		if sr.State == StateFailed {
			failures = append(failures, sr)
		}
	}
	rec := runRecord(res, p, opts.Args, started)
	if err := w.writeRunRecord(rec); err != nil {
		w.logger.Warn("could not write the run record", "err", err)
	}
	if err := r.memo.save(); err != nil {
		w.logger.Warn("could not save the verification memo", "err", err)
	}
	if len(failures) > 0 {
		return res, &FailedError{Failures: failures}
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("run %s: %w", p.Name, err)
	}
	return res, nil
}

func runID(t time.Time) string {
	return fmt.Sprintf("%s-%d", t.UTC().Format("20060102T150405.000000000Z"), os.Getpid())
}

func runRecord(res *Result, p *Pipeline, args []string, started time.Time) *RunRecord {
	rec := &RunRecord{ID: res.RunID, Pipeline: p.Name, File: p.File, Args: args,
		Started: started, Finished: time.Now(), Outcome: "ok", PID: os.Getpid()}
	for _, s := range res.Stages {
		sr := StageRun{Stage: s.Stage, Kind: s.Kind, Key: s.Key, State: s.State,
			Seconds: s.Duration.Seconds(), Outputs: s.Outputs, Upstream: s.Upstream}
		if s.Err != nil {
			sr.Error = s.Err.Error()
			rec.Outcome = "failed"
			if errors.Is(s.Err, context.Canceled) {
				rec.Outcome = "interrupted"
			}
			if s.State == StateInterrupted {
				sr.Error = "interrupted" // the error says "context canceled", Go's word for it
			}
		}
		if s.State == StateInterrupted || s.State == StateNotRun && rec.Outcome == "ok" {
			rec.Outcome = "interrupted"
		}
		rec.Stages = append(rec.Stages, sr)
	}
	return rec
}

// selectStages returns the targets and everything they depend on, in
// pipeline order; all stages without targets.
func selectStages(p *Pipeline, targets []string) ([]*Stage, error) {
	if len(targets) == 0 {
		return p.Stages, nil
	}
	want := map[string]bool{}
	var visit func(s *Stage)
	visit = func(s *Stage) {
		if want[s.Name] {
			return
		}
		want[s.Name] = true
		for _, d := range s.Deps {
			visit(d)
		}
	}
	for _, t := range targets {
		ss, err := p.Select(t)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			visit(s)
		}
	}
	var out []*Stage
	for _, s := range p.Stages {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// runner is the state of one run.
type runner struct {
	w      *Workspace
	p      *Pipeline
	opts   Options
	memo   *verifyMemo
	fp     *fingerprinter
	nodes  map[string]*node
	logger *slog.Logger

	// begun is the run record while the run lasts: it says which stages
	// have started and ended, so a killed run leaves which one it killed.
	recordMu sync.Mutex
	begun    *RunRecord
}

// updateRecord sets a stage's state, key and seconds in the record of the
// run in progress and rewrites it; stage "" only writes it.
func (r *runner) updateRecord(stage string, state State, key string, seconds float64) {
	r.recordMu.Lock()
	defer r.recordMu.Unlock()
	for i := range r.begun.Stages {
		if sr := &r.begun.Stages[i]; sr.Stage == stage {
			sr.State, sr.Key, sr.Seconds = state, key, seconds
		}
	}
	if err := r.w.writeRunRecord(r.begun); err != nil {
		r.logger.Warn("could not write the run record", "err", err)
	}
}

// schedule dispatches each stage once its producers are done, at most
// opts.Jobs at a time. Only the dispatch loop starts goroutines and it
// starts one only when a slot is free, so no slot is ever held by a stage
// waiting for its inputs and the pool cannot deadlock.
func (r *runner) schedule(ctx context.Context, order []*Stage) {
	g := new(errgroup.Group)
	g.SetLimit(r.opts.Jobs)
	finished := make(chan *node, len(order))
	var ready []*node
	for _, s := range order {
		if n := r.nodes[s.Name]; n.pending == 0 {
			ready = append(ready, n)
		}
	}
	running, stop := 0, false
	for {
		for len(ready) > 0 && running < r.opts.Jobs && !stop && ctx.Err() == nil {
			n := ready[0]
			ready = ready[1:]
			running++
			g.Go(func() error {
				r.runStage(ctx, n)
				finished <- n
				return nil // failures travel in n.result: one must not cancel the others
			})
		}
		if running == 0 {
			break
		}
		n := <-finished
		running--
		n.done = true
		failed := n.result.State == StateFailed || n.result.State == StateUpstreamFailed
		if n.result.State == StateFailed && !r.opts.KeepGoing {
			stop = true
		}
		ready = append(ready, r.release(n, failed)...)
	}
	g.Wait() // every goroutine has sent on finished by now; this only joins them

	// What never started: downstream of a failure, or cut off by a stop.
	for _, s := range order {
		n := r.nodes[s.Name]
		if n.done {
			continue
		}
		n.result = StageResult{Stage: s.Name, Kind: s.Kind.Name(), State: StateNotRun}
		for _, d := range s.Deps {
			if dn := r.nodes[d.Name]; dn.upstream != "" || dn.result.State == StateFailed {
				n.result.State = StateUpstreamFailed
				n.result.Upstream = cmpOr(dn.upstream, dn.stage.Name)
				n.upstream = n.result.Upstream
				break
			}
		}
		if r.opts.Observer != nil {
			r.opts.Observer.StageFinished(n.result)
		}
	}
}

// release marks n's consumers as having one producer fewer and returns
// those that became ready. Consumers of a failure are finished at once as
// "upstream failed", and so on down the graph.
func (r *runner) release(n *node, failed bool) []*node {
	var ready []*node
	for _, c := range n.consumers {
		c.pending--
		if failed && c.upstream == "" {
			c.upstream = cmpOr(n.upstream, n.stage.Name)
		}
		if c.pending > 0 {
			continue
		}
		if c.upstream == "" {
			ready = append(ready, c)
			continue
		}
		c.done = true
		c.result = StageResult{Stage: c.stage.Name, Kind: c.stage.Kind.Name(),
			State: StateUpstreamFailed, Upstream: c.upstream}
		if r.opts.Observer != nil {
			r.opts.Observer.StageFinished(c.result)
		}
		ready = append(ready, r.release(c, true)...)
	}
	return ready
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runStage brings one stage up to date: a cache hit, or a run.
func (r *runner) runStage(ctx context.Context, n *node) {
	s := n.stage
	start := time.Now()
	res := &n.result
	*res = StageResult{Stage: s.Name, Kind: s.Kind.Name()}
	defer func() {
		res.Duration = time.Since(start)
		r.updateRecord(s.Name, res.State, res.Key, res.Duration.Seconds())
		if r.opts.Observer != nil {
			r.opts.Observer.StageFinished(*res)
		}
	}()
	fail := func(err error) {
		res.State, res.Err = StateFailed, err
		if ctx.Err() != nil {
			res.State = StateInterrupted // not the stage's fault: its consumers are "not run"
		}
	}

	n.inputsOf = map[string][]InputRef{}
	for _, in := range s.Inputs {
		for _, ref := range in.Refs {
			id := r.nodes[ref.Stage].result.Outputs[ref.Output]
			n.inputsOf[in.Name] = append(n.inputsOf[in.Name], InputRef{Stage: ref.Stage, Output: ref.Output, ID: id})
		}
	}
	prep, err := prepare(ctx, s, r.fp)
	if err != nil {
		fail(err)
		return
	}
	n.prepared = prep
	key := stageKey(s, prep, n.inputsOf)
	res.Key = key

	// warned keeps the second look, under the lock, from repeating the
	// first one's warning about the same unusable entry.
	warned := false
	if !n.forced {
		if outs, ok := r.hit(key, s, &warned); ok {
			res.State, res.Outputs = StateCached, outs
			r.remember(n, key, outs)
			return
		}
	}

	// One process runs a key at a time; the others wait here and then
	// find its result in the index.
	unlock, err := flock(ctx, filepath.Join(r.w.meta, "locks", key), lockEX, func() {
		r.logger.Info("another stitch run is running this stage; waiting for its result", "stage", s.Name)
	})
	if err != nil {
		fail(err)
		return
	}
	defer unlock()
	if !n.forced {
		if outs, ok := r.hit(key, s, &warned); ok {
			res.State, res.Outputs = StateCached, outs
			r.remember(n, key, outs)
			return
		}
	}

	r.updateRecord(s.Name, StateRunning, key, 0)
	if r.opts.Observer != nil {
		r.opts.Observer.StageStarted(s.Name)
	}
	outs, err := r.execute(ctx, n, key)
	if err != nil {
		fail(err)
		return
	}
	entry := &IndexEntry{Key: key, Kind: s.Kind.Name(), Version: s.Kind.Version(), Params: prep.params,
		Seed: s.Seed, Inputs: inputIDs(n.inputsOf), Externals: prep.externals, Outputs: outs, Created: time.Now()}
	if err := writeJSON(r.w.indexPath(key), entry); err != nil {
		fail(err)
		return
	}
	if err := os.RemoveAll(r.w.workPath(key)); err != nil {
		r.logger.Warn("could not remove work folder", "stage", s.Name, "err", err)
	}
	res.State, res.Outputs = StateRan, outs
	r.remember(n, key, outs)
}

// hit returns the outputs cached under key when every one of them is in
// the store and hashes to its id. A corrupt object is discarded (with a
// warning, by the store) and the stage runs again.
func (r *runner) hit(key string, s *Stage, warned *bool) (map[string]artifacts.ID, bool) {
	entry, err := r.w.readIndex(key)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !*warned {
			*warned = true
			r.logger.Warn("unreadable cache entry; running the stage again", "stage", s.Name, "err", err)
		}
		return nil, false
	}
	for _, out := range s.Kind.Outputs() {
		id, ok := entry.Outputs[out.Name]
		if !ok {
			return nil, false
		}
		if err := r.w.verifyObject(id, r.memo); err != nil {
			if !*warned {
				*warned = true
				r.logger.Warn("cached output unusable; running the stage again",
					"stage", s.Name, "output", out.Name, "err", err)
			}
			return nil, false
		}
	}
	return entry.Outputs, true
}

// remember writes the stage's last-run record when it changed.
func (r *runner) remember(n *node, key string, outs map[string]artifacts.ID) {
	s := n.stage
	last, err := r.w.LastRecord(r.p.Name, s.Name)
	if err == nil && last != nil && last.Key == key && maps.Equal(last.Outputs, outs) {
		return // a no-op run writes nothing per stage
	}
	rec := &StageRecord{Pipeline: r.p.Name, Stage: s.Name, Kind: s.Kind.Name(), Version: s.Kind.Version(),
		Key: key, Params: n.prepared.params, Explicit: s.Explicit, Seed: s.Seed,
		Inputs: map[string][]InputRecord{}, Externals: n.prepared.externals, Outputs: outs, Time: time.Now()}
	for name, refs := range n.inputsOf {
		for _, ref := range refs {
			rec.Inputs[name] = append(rec.Inputs[name], InputRecord{Stage: ref.Stage, Output: ref.Output, ID: ref.ID})
		}
	}
	if err := writeJSON(r.w.lastPath(r.p.Name, s.Name), rec); err != nil {
		r.logger.Warn("could not record the stage's last run", "stage", s.Name, "err", err)
	}
}

// execute calls the kind's Run and checks what it produced.
func (r *runner) execute(ctx context.Context, n *node, key string) (outs map[string]artifacts.ID, err error) {
	s := n.stage
	run := &stageRun{
		stage:     s,
		store:     r.w.store,
		logger:    r.logger.With("stage", s.Name),
		settings:  r.opts.Settings,
		inputs:    n.inputsOf,
		workdir:   r.w.workPath(key),
		outputs:   map[string]artifacts.ID{},
		observer:  r.opts.Observer,
		externals: n.prepared.externals,
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	if err := s.Kind.Run(ctx, run, s.Params); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // interrupted: whatever it returned is not trusted
	}
	outs = run.snapshot()
	for _, out := range s.Kind.Outputs() {
		id, ok := outs[out.Name]
		if !ok {
			return nil, fmt.Errorf("kind %s set no output %q", s.Kind.Name(), out.Name)
		}
		if !r.w.store.Has(id) {
			return nil, fmt.Errorf("output %s: object %s is not in the store", out.Name, id.Short())
		}
	}
	for name := range outs {
		if _, ok := findPort(s.Kind.Outputs(), name); !ok {
			return nil, fmt.Errorf("kind %s set undeclared output %q", s.Kind.Name(), name)
		}
	}
	return outs, nil
}

// stageRun implements Run for one stage.
type stageRun struct {
	stage    *Stage
	store    *artifacts.Store
	logger   *slog.Logger
	settings Settings
	inputs   map[string][]InputRef
	workdir  string
	observer Observer
	// externals are the fingerprints of the run key (prepare).
	externals map[string]string

	mu      sync.Mutex
	outputs map[string]artifacts.ID
}

func (r *stageRun) Stage() string                 { return r.stage.Name }
func (r *stageRun) Seed() int64                   { return r.stage.Seed }
func (r *stageRun) Logger() *slog.Logger          { return r.logger }
func (r *stageRun) Settings() Settings            { return r.settings }
func (r *stageRun) Store() *artifacts.Store       { return r.store }
func (r *stageRun) Inputs(name string) []InputRef { return slices.Clone(r.inputs[name]) }

func (r *stageRun) External(path string) (string, bool) {
	fp, ok := r.externals[path]
	return fp, ok
}

func (r *stageRun) Progress() Progress {
	return progressFunc(func(phase string, done, total int, note string) {
		if r.observer != nil {
			r.observer.StageProgress(r.stage.Name, phase, done, total, note)
		}
	})
}

func (r *stageRun) Input(name string) (artifacts.ID, bool) {
	refs := r.inputs[name]
	if len(refs) == 0 {
		return artifacts.ID{}, false
	}
	return refs[0].ID, true
}

func (r *stageRun) SetOutput(name string, id artifacts.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs[name] = id
}

func (r *stageRun) snapshot() map[string]artifacts.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.outputs)
}

func (r *stageRun) Workdir() (string, error) {
	if err := os.MkdirAll(r.workdir, 0o755); err != nil {
		return "", fmt.Errorf("create work folder %s: %w", r.workdir, err)
	}
	return r.workdir, nil
}

type progressFunc func(phase string, done, total int, note string)

func (f progressFunc) Report(phase string, done, total int, note string) { f(phase, done, total, note) }

var _ Run = (*stageRun)(nil)
