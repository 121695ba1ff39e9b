package pipeline

import (
	"context"
	"io"
	"log/slog"

	"stitch/artifacts"
)

// Kind is a stage kind (partitions, train, evaluate, ...). Stage packages
// implement it and register it in a Registry; pipeline never imports them.
type Kind interface {
	// Name is what a pipeline's `uses:` says.
	Name() string
	// Version is the implementation version. It is part of every run key:
	// bump it when a change alters what the stage writes.
	Version() string
	// Inputs are the named inputs a stage of this kind accepts in `needs:`.
	Inputs() []Port
	// Outputs are the artifacts a run produces, by name.
	Outputs() []Port
	// NewParams returns a pointer to a fresh parameter struct holding the
	// defaults. `with:` is decoded into it strictly (yaml tags name the
	// keys). If it has a `Validate() error` method, that is called after
	// decoding.
	NewParams() any
	// Run executes one stage. It reads inputs and writes every output
	// through run; returning an error caches nothing.
	Run(ctx context.Context, run Run, params any) error
}

// Port describes one input or output of a stage kind.
type Port struct {
	Name string
	// Kind is the artifact kind (attributes, samples, model, ...), checked
	// between producer and consumer when both declare one.
	Kind string
	// Also lists further kinds an input takes: a samples input that reads
	// only labels and paths or pixels takes an images table too.
	Also []string
	// Optional inputs may be left out of `needs:`.
	Optional bool
	// Many inputs accept a list of references (tabulate's experiments).
	Many bool
	// Doc is one line for `stitch dag` and --help.
	Doc string
}

// ExternalReader is implemented by kinds that read files outside the store
// (a dataset folder, a backbone ONNX file). The returned paths (files or
// folders) are fingerprinted by content into the run key.
type ExternalReader interface {
	Externals(params any) ([]string, error)
}

// WiringChecker is implemented by kinds with parameters that need an
// optional input wired (train's `categories: true` needs `categories`).
// CheckWiring is called at load time, after Validate, with whether each
// input is in the stage's `needs:`; its *ParamError values are reported
// at the parameter's line, before anything runs.
type WiringChecker interface {
	CheckWiring(params any, wired func(input string) bool) error
}

// KeyPruner is implemented by kinds with parameters that change nothing
// in the outputs, always (a worker count) or given the others and the
// wiring (a loss weight of a head left out). OutputNeutral names them by
// their top-level keys; they are left out of the run key and the records,
// so changing one reuses the cache instead of rerunning the stage.
type KeyPruner interface {
	OutputNeutral(params any, wired func(input string) bool) []string
}

// Reporter is implemented by kinds whose outputs a person wants to see at
// the end of `stitch run` (tabulate prints its main table). It is called
// for fresh and cached runs alike.
type Reporter interface {
	Report(ctx context.Context, env ReportEnv) error
}

// ReportEnv is what a Reporter gets: the stage's outputs and where to put
// files meant for people.
type ReportEnv struct {
	Stage   string
	Store   *artifacts.Store
	Outputs map[string]artifacts.ID
	// Out is stdout: the results a person asked for.
	Out io.Writer
	// ExportDir is a folder in the workspace for this stage's files meant
	// to be opened by people (an HTML report); it exists already.
	ExportDir string
}

// InputRef is one resolved input of a stage run.
type InputRef struct {
	// Stage and Output name the producer (a matrix variant's full name).
	Stage  string
	Output string
	ID     artifacts.ID
}

// Settings are runtime choices that change how fast a stage runs but never
// what it computes, so they are not part of any cache key.
type Settings struct {
	// Threads for compute libraries (ONNX Runtime intra-op); 0 means all cores.
	Threads int
	// Provider is "cpu" or "cuda".
	Provider string
	// DeviceID selects the CUDA device.
	DeviceID int
	// FallbackCPU turns a missing CUDA build into a logged fall back to the CPU.
	FallbackCPU bool
}

// Progress receives a running stage's progress, for a bar on a terminal
// and plain lines elsewhere.
type Progress interface {
	// Report says done of total units of phase are complete (total 0 if
	// unknown); note is a short status such as "loss 0.213, 410 img/s".
	Report(phase string, done, total int, note string)
}

// Run is what a stage sees of the engine while it runs.
type Run interface {
	// Stage is the stage's full name (with its matrix variant).
	Stage() string
	// Seed is derived from the pipeline seed and the stage name.
	Seed() int64
	Logger() *slog.Logger
	Progress() Progress
	Settings() Settings
	Store() *artifacts.Store
	// Inputs returns the references bound to an input name, in the order
	// the pipeline lists them; nil when an optional input is absent.
	Inputs(name string) []InputRef
	// Input returns the single artifact bound to name and whether it is set.
	Input(name string) (artifacts.ID, bool)
	// SetOutput records an output the stage has stored. Every declared
	// output must be set before Run returns nil.
	SetOutput(name string, id artifacts.ID)
	// Workdir is a scratch directory private to this run key. It survives a
	// failed or interrupted run (so training can resume from a checkpoint)
	// and is removed after a successful one.
	Workdir() (string, error)
	// External returns the content fingerprint, part of this run's key, of
	// a path the kind's Externals returned, and whether there is one.
	External(path string) (string, bool)
}
