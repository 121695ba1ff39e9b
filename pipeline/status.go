package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"stitch/artifacts"
)

// StageStatus says whether a stage is fresh and, if not, why.
type StageStatus struct {
	Stage string
	Kind  string
	Fresh bool
	// Key is the run key; "" when an upstream stage is stale and so the
	// inputs, and with them the key, are not known yet.
	Key string
	// Reasons explain a stale stage ("parameter `phase2.learning_rate` changed 0.001 ->
	// 0.0001", "never run"); for a fresh one they may note that it comes
	// from an earlier run than the last.
	Reasons []string
	Outputs map[string]artifacts.ID
}

// Status reports, for each stage of p in order, whether it is fresh and
// why not. It writes nothing: not the store, not the records, not the
// caches of external fingerprints.
func (w *Workspace) Status(ctx context.Context, p *Pipeline) ([]StageStatus, error) {
	return w.status(ctx, p, p.Stages, nil)
}

func (w *Workspace) status(ctx context.Context, p *Pipeline, stages []*Stage,
	forced map[string]bool,
) ([]StageStatus, error) {
	fp := &fingerprinter{dir: filepath.Join(w.meta, "fp"), readOnly: true}
	memo := w.loadMemo()
	ro := *w
	ro.readOnly = true // verify without discarding: status changes nothing
	byName := map[string]*StageStatus{}
	var attempts map[string]stageAttempts // read from the run records when first needed
	// Preallocated so the pointers kept in byName stay valid.
	out := make([]StageStatus, 0, len(stages))
	for _, s := range stages {
		st := StageStatus{Stage: s.Name, Kind: s.Kind.Name()}
		last, err := w.LastRecord(p.Name, s.Name)
		if errors.Is(err, ErrBadRecord) {
			// As the engine does: the cache alone says whether it is fresh.
			w.logger.Warn("unreadable run record left out; the cache alone tells whether the stage is fresh",
				"err", err)
			last, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if attempts == nil {
			attempts = w.lastAttempts(p.Name)
		}
		attempt := attempts[s.Name].latest
		prep, err := prepare(ctx, s, fp)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			// An external file that is missing or unreadable makes the
			// stage stale, with the key unknown; the run reports the error.
			st.Reasons = []string{strings.TrimPrefix(err.Error(), "stage "+s.Name+": ")}
			if attempt.reason != "" {
				st.Reasons = append(st.Reasons, attempt.reason)
			}
			out = append(out, st)
			byName[s.Name] = &out[len(out)-1]
			continue
		}

		inputs := map[string][]InputRef{}
		var stale []string
		for _, in := range s.Inputs {
			for _, ref := range in.Refs {
				up := byName[ref.Stage]
				if up == nil || !up.Fresh {
					stale = append(stale, ref.Stage)
					continue
				}
				ir := InputRef{Stage: ref.Stage, Output: ref.Output, ID: up.Outputs[ref.Output]}
				inputs[in.Name] = append(inputs[in.Name], ir)
			}
		}
		slices.Sort(stale)
		stale = slices.Compact(stale)

		if len(stale) > 0 {
			st.Reasons = diffRecord(last, attempt.reason, s, prep, nil)
			for _, up := range stale {
				st.Reasons = append(st.Reasons, fmt.Sprintf("upstream `%s` is stale", up))
			}
		} else {
			st.Key = stageKey(s, prep, inputs)
			outs, missing := ro.cached(st.Key, s, memo)
			switch {
			case forced[s.Name]:
				st.Reasons = []string{"forced"}
			case outs != nil:
				st.Fresh, st.Outputs = true, outs
				if last != nil && last.Key != st.Key {
					st.Reasons = []string{"cached from an earlier run"}
				}
			default:
				if attempt.key != "" && attempt.key != st.Key {
					attempt.reason = "" // it tried other parameters or inputs
				}
				if reason := attempts[s.Name].byKey[st.Key]; reason != "" {
					// An earlier attempt ran as it stands now.
					attempt = attemptOf{reason, st.Key}
				}
				if w.keyBusy(st.Key) {
					// Another process runs it as it stands: whatever the
					// last attempt was, that is the news.
					attempt.reason = "running now in another process"
					if last != nil {
						attempt.key = st.Key
					}
				}
				st.Reasons = diffRecord(last, attempt.reason, s, prep, inputs)
				if last != nil && attempt.reason != "" && attempt.key == st.Key {
					// It succeeded before, then failed as it stands now.
					st.Reasons = append([]string{attempt.reason}, st.Reasons...)
				}
				if len(st.Reasons) == 0 && missing != "" {
					st.Reasons = []string{missing}
				}
				if len(st.Reasons) == 0 {
					st.Reasons = []string{"not in the cache"}
				}
			}
		}
		out = append(out, st)
		byName[s.Name] = &out[len(out)-1]
	}
	return out, nil
}

// attemptOf is how the latest run that attempted a stage ended, where
// that was no success, and the key it ran under ("" when unknown).
type attemptOf struct {
	reason, key string
}

// stageAttempts are a stage's attempts in the run records: the latest,
// and by key how the latest attempt under that key ended ("" for a
// success).
type stageAttempts struct {
	latest attemptOf
	byKey  map[string]string
}

// lastAttempts returns, by stage, how the latest run of pipeline that
// attempted the stage ended, where that was no success: "last run
// failed: " and the error's first line, "last run interrupted" or "last
// run killed". A run that let
// the stage out (its upstream failed, another stage's failure or an
// interruption stopped the run first) does not count: the run before it
// says. A killed run left its record as it stood: the stages it had
// started and not ended say "running", and those count as killed.
func (w *Workspace) lastAttempts(pipeline string) map[string]stageAttempts {
	out := map[string]stageAttempts{}
	runs, err := w.RunRecords()
	if err != nil {
		// The records only refine "never run"; status works without them,
		// and with those that can be read.
		w.logger.Warn("could not read the run records", "err", err)
		if !errors.Is(err, ErrBadRecord) {
			return out
		}
	}
	done := map[string]bool{}
	for _, r := range slices.Backward(runs) {
		if r.Pipeline != pipeline || r.Outcome == OutcomeRunning && !r.Killed() {
			continue // in progress: what it does has not ended yet
		}
		for _, sr := range r.Stages {
			var reason string
			switch sr.State {
			case StateFailed:
				reason = "last run failed"
				if msg, _, _ := strings.Cut(sr.Error, "\n"); msg != "" {
					reason += ": " + msg
				}
			case StateInterrupted:
				reason = "last run interrupted"
			case StateRunning:
				reason = "last run killed"
			case StateRan, StateCached:
			default:
				continue // not attempted: upstream failed, or stopped by another's failure
			}
			a := out[sr.Stage]
			if a.byKey == nil {
				a.byKey = map[string]string{}
			}
			if _, seen := a.byKey[sr.Key]; !seen && sr.Key != "" {
				a.byKey[sr.Key] = reason
			}
			if !done[sr.Stage] {
				a.latest = attemptOf{reason, sr.Key}
				done[sr.Stage] = true
			}
			out[sr.Stage] = a
		}
	}
	return out
}

// cached is the read-only form of runner.hit: the outputs cached under
// key if they are all present and intact, else why not.
func (w *Workspace) cached(key string, s *Stage, memo *verifyMemo) (map[string]artifacts.ID, string) {
	entry, err := w.readIndex(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		return nil, "cache entry unreadable"
	}
	for _, out := range s.Kind.Outputs() {
		id, ok := entry.Outputs[out.Name]
		if !ok {
			return nil, fmt.Sprintf("output `%s` not in the cache entry", out.Name)
		}
		if err := w.verifyObject(id, memo); err != nil {
			if errors.Is(err, artifacts.ErrCorrupt) {
				return nil, fmt.Sprintf("output `%s` is corrupt in the store", out.Name)
			}
			return nil, fmt.Sprintf("output `%s` is missing from the store", out.Name)
		}
	}
	return entry.Outputs, ""
}

// diffRecord explains how a stage differs from its last recorded run; a
// stage without one says how its last attempt ended (attempt) or that
// there was none. inputs nil means they are not known (an upstream stage
// is stale).
func diffRecord(last *StageRecord, attempt string, s *Stage, prep stageKeyInputs,
	inputs map[string][]InputRef,
) []string {
	if last == nil {
		return []string{cmpOr(attempt, "never run")}
	}
	var why []string
	if last.Kind != s.Kind.Name() {
		why = append(why, fmt.Sprintf("kind changed %s -> %s", last.Kind, s.Kind.Name()))
	} else if last.Version != s.Kind.Version() {
		why = append(why, fmt.Sprintf("implementation version changed %s -> %s", last.Version, s.Kind.Version()))
	}
	why = append(why, diffParams(last, s, prep)...)
	if last.Seed != s.Seed {
		why = append(why, "seed changed")
	}

	if inputs != nil {
		names := map[string]bool{}
		for n := range inputs {
			names[n] = true
		}
		for n := range last.Inputs {
			names[n] = true
		}
		for _, n := range sortedKeys(names) {
			if d := diffInput(n, last.Inputs[n], inputs[n]); d != "" {
				why = append(why, d)
			}
		}
	}

	for _, path := range sortedKeys(mergeKeys(last.Externals, prep.externals)) {
		old, had := last.Externals[path]
		now, has := prep.externals[path]
		switch {
		case !had:
			why = append(why, fmt.Sprintf("external `%s` added", path))
		case !has:
			why = append(why, fmt.Sprintf("external `%s` no longer read", path))
		case old != now:
			why = append(why, fmt.Sprintf("external `%s` changed", path))
		}
	}
	return why
}

func diffInput(name string, old []InputRecord, now []InputRef) string {
	var oldRefs, nowRefs []string
	for _, r := range old {
		oldRefs = append(oldRefs, r.Stage+"."+r.Output)
	}
	for _, r := range now {
		nowRefs = append(nowRefs, r.Stage+"."+r.Output)
	}
	if !slices.Equal(oldRefs, nowRefs) {
		return fmt.Sprintf("input `%s` now reads %s (was %s)", name,
			cmpOr(strings.Join(nowRefs, ", "), "nothing"), cmpOr(strings.Join(oldRefs, ", "), "nothing"))
	}
	for i := range old {
		if old[i].ID != now[i].ID {
			return fmt.Sprintf("input `%s.%s` changed", now[i].Stage, now[i].Output)
		}
	}
	return ""
}

func diffParams(last *StageRecord, s *Stage, prep stageKeyInputs) []string {
	var oldV, newV any
	// Both were written by canonicalJSON; an unreadable old one reads as empty.
	_ = json.Unmarshal(last.Params, &oldV)
	_ = json.Unmarshal(prep.params, &newV)
	// A top-level field of the parameters missing from a record was left
	// out as output-neutral (KeyPruner) when that record was written.
	fields, _ := canonical(s.Params).(map[string]any)
	oldTop, _ := oldV.(map[string]any)
	oldF, newF := map[string]string{}, map[string]string{}
	flatten("", oldV, oldF)
	flatten("", newV, newF)
	top := func(p string) string { t, _, _ := strings.Cut(p, "."); return t }

	var why []string
	for _, p := range sortedKeys(mergeKeys(oldF, newF)) {
		o, had := oldF[p]
		n, has := newF[p]
		wasSet := slices.Contains(last.Explicit, top(p))
		isSet := slices.Contains(s.Explicit, top(p))
		_, isField := fields[top(p)]
		_, hadTop := oldTop[top(p)]
		switch {
		case !had && isField && !hadTop:
			why = append(why, fmt.Sprintf("parameter `%s` now used (%s)", p, n))
		case !had:
			why = append(why, fmt.Sprintf("parameter `%s` added (%s)", p, n))
		case !has && slices.Contains(prep.neutral, top(p)):
			why = append(why, fmt.Sprintf("parameter `%s` no longer used (was %s)", p, o))
		case !has:
			why = append(why, fmt.Sprintf("parameter `%s` removed (was %s)", p, o))
		case o == n:
		case wasSet && !isSet:
			why = append(why, fmt.Sprintf("parameter `%s` removed: %s -> default %s", p, o, n))
		case !wasSet && isSet:
			why = append(why, fmt.Sprintf("parameter `%s` set: default %s -> %s", p, o, n))
		default:
			why = append(why, fmt.Sprintf("parameter `%s` changed %s -> %s", p, o, n))
		}
	}
	return why
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range maps.Keys(a) {
		out[k] = true
	}
	for k := range maps.Keys(b) {
		out[k] = true
	}
	return out
}

// dryRun reports what Run would do, through the same checks as Status.
func (w *Workspace) dryRun(ctx context.Context, p *Pipeline, stages []*Stage, forced map[string]bool) (*Result, error) {
	sts, err := w.status(ctx, p, stages, forced)
	if err != nil {
		return nil, err
	}
	res := &Result{Pipeline: p.Name}
	for _, st := range sts {
		r := StageResult{Stage: st.Stage, Kind: st.Kind, Key: st.Key, State: StateCached, Outputs: st.Outputs}
		if !st.Fresh {
			r.State, r.Reasons = StateWouldRun, st.Reasons
		}
		res.Stages = append(res.Stages, r)
	}
	return res, nil
}
