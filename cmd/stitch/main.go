// Command stitch runs machine-learning experiments described as YAML
// pipelines, rerunning only the stages whose inputs changed.
//
// Exit status, decided in one place (exitCode):
//
//	0    success
//	1    a stage failed (or a report did)
//	2    usage or validation error: bad flags, an invalid pipeline file
//	130  interrupted (Ctrl-C, SIGTERM)
//
// Results go to stdout; logs, progress and errors to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"stitch/internal/suggest"
	"stitch/pipeline"
)

// Exit statuses; see the package comment.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// command is one subcommand. Each lives in its own file and is listed in
// commands; to add one (synth, predict), write cmd_<name>.go defining a
// *command and append it there.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	example string
	// setup declares the command's flags on fs and returns the function
	// that runs it with their values. Flags live in the closure, not in
	// package variables, so in-process tests can run commands in parallel.
	setup func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments.
type runFunc func(ctx context.Context, e *env, args []string) error

// commands is the table of subcommands, in the order --help lists them.
var commands = []*command{
	cmdRun,
	cmdStatus,
	cmdDag,
	cmdShow,
	cmdLog,
	cmdGC,
	cmdSynth,
	cmdPredict,
}

// env is what a command gets: streams, logger, workspace and kinds. It is
// built per invocation, so tests run commands in-process side by side.
type env struct {
	stdout, stderr io.Writer
	// logs is where logger writes: stderr, routed above the progress bars
	// while they are drawn.
	logs      *logSink
	logger    *slog.Logger
	workspace string
	kinds     []pipeline.Kind
	// terminal reports whether stderr is a terminal (progress bars).
	terminal bool
	quiet    bool
	// argv is the command line, for run records.
	argv []string
}

func (e *env) registry() (*pipeline.Registry, error) { return pipeline.NewRegistry(e.kinds...) }

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// interruptedError is a command stopped by a signal, with a note saying
// what it leaves behind and how to go on ("a rerun resumes").
type interruptedError struct {
	note string
	err  error // the context's error
}

func (ie *interruptedError) Error() string { return "interrupted; " + ie.note }
func (ie *interruptedError) Unwrap() error { return ie.err }

// interrupted wraps err, returned by a command whose ctx is done, with
// note; other errors pass through unchanged.
func interrupted(ctx context.Context, err error, note string) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return &interruptedError{note: note, err: err}
}

// plural writes n and word, with an s when n is not 1: "1 image",
// "3 images".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, kinds())
	stop()
	os.Exit(code)
}

// runMain runs one command line and returns the exit status.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, ks []pipeline.Kind) int {
	if len(args) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		topUsage(stdout)
		return exitOK
	}
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == args[0] })
	if i < 0 {
		names := make([]string, len(commands))
		for j, c := range commands {
			names[j] = c.name
		}
		fmt.Fprintf(stderr, "stitch: unknown command %q%s\n", args[0], suggest.Hint(args[0], names))
		topUsage(stderr)
		return exitUsage
	}
	cmd := commands[i]

	fs := flag.NewFlagSet("stitch "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "verbose: debug logs")
	quiet := fs.Bool("q", false, "quiet: warnings and errors only, no progress")
	workspace := fs.String("workspace", "", "workspace folder holding .stitch (default: the current folder)")
	run := cmd.setup(fs)
	// flag calls Usage both for -help and after a bad flag; print it
	// here instead, once: to stdout for -help, to stderr after an error.
	fs.Usage = func() {}
	positional, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		commandUsage(stderr, cmd, fs) // flag has printed the problem
		return exitUsage
	}

	level := slog.LevelInfo
	switch {
	case *verbose:
		level = slog.LevelDebug
	case *quiet:
		level = slog.LevelWarn
	}
	logs := &logSink{w: stderr}
	e := &env{
		stdout:    stdout,
		stderr:    stderr,
		logs:      logs,
		logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
		workspace: *workspace,
		kinds:     ks,
		quiet:     *quiet,
		argv:      append([]string{"stitch"}, args...),
	}
	if f, ok := stderr.(*os.File); ok {
		e.terminal = term.IsTerminal(int(f.Fd()))
	}
	if e.workspace == "" {
		if e.workspace, err = os.Getwd(); err != nil {
			fmt.Fprintf(stderr, "stitch: %v\n", err)
			return exitFailed
		}
	}

	err = run(ctx, e, positional)
	code := exitCode(ctx, err)
	switch {
	case err == nil:
	case code == exitInterrupted:
		// The error only says "context canceled", Go's word for it; a
		// command that leaves something behind says what, in its own terms.
		msg := "interrupted"
		var ie *interruptedError
		if errors.As(err, &ie) {
			msg = ie.Error()
		}
		fmt.Fprintf(stderr, "stitch %s: %s\n", cmd.name, msg)
	default:
		fmt.Fprintf(stderr, "stitch %s: %v\n", cmd.name, err)
	}
	return code
}

// exitCode is the one place that maps errors to exit statuses.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue) || pipeline.IsInvalid(err):
		return exitUsage
	}
	return exitFailed
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (stitch run pipeline.yaml --jobs 2), which the flag
// package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "stitch runs ML experiments described as YAML pipelines, rerunning only what changed.")
	fmt.Fprintln(w, "\nUsage: stitch COMMAND [flags] [args]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'stitch COMMAND --help' for a command's flags and an example.")
	fmt.Fprintln(w, "Exit status: 0 ok, 1 a stage failed, 2 usage or validation error, 130 interrupted.")
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: stitch %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(c.example))
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// defaultFile is the pipeline file commands read when none is given.
const defaultFile = "stitch.yaml"

// pipelineFile picks the FILE argument (at most one) or the default.
func pipelineFile(args []string) (string, error) {
	switch len(args) {
	case 0:
		return defaultFile, nil
	case 1:
		return args[0], nil
	}
	return "", usagef("want at most one pipeline file, got %q", args)
}

// load reads and validates a pipeline file.
func (e *env) load(file string, sets []string) (*pipeline.Pipeline, error) {
	reg, err := e.registry()
	if err != nil {
		return nil, err
	}
	return pipeline.Load(file, reg, sets)
}
