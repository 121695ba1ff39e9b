package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"stitch/pipeline"
)

type runFlags struct {
	targets, force, sets stringList
	jobs                 int
	dryRun, keepGoing    bool
	threads              int
	provider             string
	device               int
	fallbackCPU          bool
}

var cmdRun = &command{
	name:    "run",
	args:    "[FILE] [--target S]... [--force S]... [--set k=v]... [--jobs N] [--dry-run] [--keep-going]",
	summary: "Run the stale stages of a pipeline (FILE defaults to " + defaultFile + ").",
	example: `stitch run pipelines/demo.yaml --set seed=2 --target evaluate --jobs 2
stitch run --dry-run            # what would run, and why`,
	setup: func(fs *flag.FlagSet) runFunc {
		f := &runFlags{}
		fs.Var(&f.targets, "target", "run only `STAGE` (full or base name) and what it needs; repeatable")
		fs.Var(&f.force, "force", "rerun `STAGE` even if cached; repeatable")
		fs.Var(&f.sets, "set", "override pipeline parameter: `name=value` (a YAML scalar); repeatable")
		fs.IntVar(&f.jobs, "jobs", 0, "stages run at once (default: the number of cores)")
		fs.BoolVar(&f.dryRun, "dry-run", false, "say what would run and why; change nothing")
		fs.BoolVar(&f.keepGoing, "keep-going", false, "after a failure, keep running independent stages")
		fs.IntVar(&f.threads, "threads", 0, "threads per stage for compute libraries (0: all cores)")
		fs.StringVar(&f.provider, "provider", "cpu", "execution provider: cpu or cuda")
		fs.IntVar(&f.device, "device", 0, "CUDA device id")
		fs.BoolVar(&f.fallbackCPU, "fallback-cpu", false, "fall back to the CPU when CUDA is missing")
		return func(ctx context.Context, e *env, args []string) error {
			return interrupted(ctx, runRun(ctx, e, f, args), "finished stages are cached, a rerun resumes")
		}
	},
}

func runRun(ctx context.Context, e *env, f *runFlags, args []string) error {
	file, err := pipelineFile(args)
	if err != nil {
		return err
	}
	if f.jobs < 0 || f.threads < 0 {
		return usagef("--jobs and --threads: want 0 (all cores) or more, got %d and %d", f.jobs, f.threads)
	}
	if f.provider != "cpu" && f.provider != "cuda" {
		return usagef("--provider: want cpu or cuda, got %q", f.provider)
	}
	if f.device < 0 {
		return usagef("--device %d: want a CUDA device id, 0 or more", f.device)
	}
	p, err := e.load(file, f.sets)
	if err != nil {
		return err
	}
	opts := pipeline.Options{
		Targets:   f.targets,
		Force:     f.force,
		Jobs:      f.jobs,
		DryRun:    f.dryRun,
		KeepGoing: f.keepGoing,
		Settings: pipeline.Settings{
			Threads: f.threads, Provider: f.provider, DeviceID: f.device, FallbackCPU: f.fallbackCPU,
		},
		Args: e.argv,
	}

	var w *pipeline.Workspace
	if f.dryRun {
		w, err = pipeline.OpenWorkspaceReadOnly(e.workspace, e.logger)
	} else {
		w, err = pipeline.OpenWorkspace(e.workspace, e.logger)
	}
	if err != nil {
		return err
	}
	if !f.dryRun && !e.quiet {
		prog := newProgress(e.stderr, e.terminal)
		defer prog.close()
		if e.logs != nil {
			defer e.logs.attach(prog)()
		}
		opts.Observer = prog
	}

	res, runErr := w.Run(ctx, p, opts)
	if res == nil {
		return runErr
	}
	printResult(e, res)
	if f.dryRun || runErr != nil {
		return runErr
	}
	return w.Report(ctx, p, res, e.stdout)
}

// printResult writes one line per stage and a total to stdout.
func printResult(e *env, res *pipeline.Result) {
	tw := newTable(e.stdout)
	for _, s := range res.Stages {
		detail := ""
		switch s.State {
		case pipeline.StateRan:
			detail = fmt.Sprintf("%.2fs", s.Duration.Seconds())
		case pipeline.StateFailed:
			detail = firstLine(s.Err.Error())
		case pipeline.StateInterrupted:
			detail = "nothing cached; a rerun starts it again, or resumes its checkpoint"
		case pipeline.StateUpstreamFailed:
			detail = "because " + s.Upstream + " failed"
		case pipeline.StateWouldRun:
			detail = strings.Join(s.Reasons, "; ")
		}
		writeRow(tw, string(s.State), s.Stage, detail)
	}
	tw.Flush()
	var parts []string
	for _, st := range []pipeline.State{pipeline.StateRan, pipeline.StateCached, pipeline.StateWouldRun,
		pipeline.StateFailed, pipeline.StateInterrupted, pipeline.StateUpstreamFailed, pipeline.StateNotRun} {
		if n := res.Count(st); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", res.Pipeline, strings.Join(parts, ", "))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
