// Package pipelinetest provides a stand-in for the engine so stage kinds
// can be tested by calling their Run directly.
package pipelinetest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"stitch/artifacts"
	"stitch/pipeline"
)

// Run implements pipeline.Run over a store in a test's temporary folder.
type Run struct {
	StageName string
	SeedValue int64
	Inputs_   map[string][]pipeline.InputRef
	Settings_ pipeline.Settings
	Log       *slog.Logger
	St        *artifacts.Store
	Dir       string
	// Externals are the fingerprints External returns, by path.
	Externals map[string]string

	mu      sync.Mutex
	outputs map[string]artifacts.ID
}

// NewRun returns a Run for stage name with a fresh store under t.TempDir().
func NewRun(t testing.TB, name string) *Run {
	t.Helper()
	dir := t.TempDir()
	store, err := artifacts.OpenStore(filepath.Join(dir, ".stitch"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Run{
		StageName: name,
		SeedValue: 1,
		Inputs_:   map[string][]pipeline.InputRef{},
		Settings_: pipeline.Settings{Provider: "cpu"},
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		St:        store,
		Dir:       filepath.Join(dir, "work"),
		outputs:   map[string]artifacts.ID{},
	}
}

// Bind stores data under a new object and binds it to input name.
func (r *Run) Bind(name string, id artifacts.ID) {
	r.Inputs_[name] = append(r.Inputs_[name], pipeline.InputRef{Stage: "test-" + name, Output: name, ID: id})
}

// Output returns the artifact the stage set for name.
func (r *Run) Output(name string) (artifacts.ID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.outputs[name]
	if !ok {
		return id, fmt.Errorf("stage %s set no output %q", r.StageName, name)
	}
	return id, nil
}

func (r *Run) Stage() string                          { return r.StageName }
func (r *Run) Seed() int64                            { return r.SeedValue }
func (r *Run) Logger() *slog.Logger                   { return r.Log }
func (r *Run) Progress() pipeline.Progress            { return discard{} }
func (r *Run) Settings() pipeline.Settings            { return r.Settings_ }
func (r *Run) Store() *artifacts.Store                { return r.St }
func (r *Run) Inputs(name string) []pipeline.InputRef { return r.Inputs_[name] }

func (r *Run) Input(name string) (artifacts.ID, bool) {
	refs := r.Inputs_[name]
	if len(refs) == 0 {
		return artifacts.ID{}, false
	}
	return refs[0].ID, true
}

func (r *Run) SetOutput(name string, id artifacts.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs[name] = id
}

func (r *Run) Workdir() (string, error) { return r.Dir, os.MkdirAll(r.Dir, 0o755) }

func (r *Run) External(path string) (string, bool) {
	fp, ok := r.Externals[path]
	return fp, ok
}

type discard struct{}

func (discard) Report(string, int, int, string) {}

var _ pipeline.Run = (*Run)(nil)
