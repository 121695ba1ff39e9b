package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"stitch/pipeline"
)

var cmdLog = &command{
	name:    "log",
	args:    "[--limit N] [--json]",
	summary: "List past runs in the workspace: what ran, what was reused, durations and keys.",
	example: `stitch log --limit 5`,
	setup: func(fs *flag.FlagSet) runFunc {
		limit := fs.Int("limit", 20, "show the `N` most recent runs (0: all)")
		asJSON := fs.Bool("json", false, "print the run records as JSON")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("log takes no arguments, got %q", args)
			}
			w, err := pipeline.OpenWorkspaceReadOnly(e.workspace, e.logger)
			if err != nil {
				return err
			}
			runs, err := w.RunRecords()
			if errors.Is(err, pipeline.ErrBadRecord) {
				e.logger.Warn("unreadable run record left out", "err", err)
				err = nil
			}
			if err != nil {
				return err
			}
			if len(runs) == 0 && !*asJSON {
				fmt.Fprintf(e.stderr, "no runs recorded in %s\n", e.workspace)
				return nil
			}
			slices.Reverse(runs) // newest first
			if *limit > 0 && len(runs) > *limit {
				runs = runs[:*limit]
			}
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(runs)
			}
			for _, r := range runs {
				killed := false
				if r.Outcome == pipeline.OutcomeRunning {
					what := "running now (pid " + strconv.Itoa(r.PID) + ")"
					if killed = r.Killed(); killed {
						what = "killed before it finished: nothing it was running was cached"
					}
					fmt.Fprintf(e.stdout, "%s  %s  %s\n", r.Started.Local().Format(time.DateTime), r.Pipeline, what)
				} else {
					counts := map[pipeline.State]int{}
					for _, s := range r.Stages {
						counts[s.State]++
					}
					fmt.Fprintf(e.stdout, "%s  %s  %s  %s  ran %d, cached %d, failed %d\n",
						r.Started.Local().Format(time.DateTime), r.Pipeline, r.Outcome,
						r.Finished.Sub(r.Started).Round(time.Millisecond), counts[pipeline.StateRan],
						counts[pipeline.StateCached], counts[pipeline.StateFailed])
				}
				tw := newTable(e.stdout)
				for _, s := range r.Stages {
					key := s.Key
					if len(key) > 12 {
						key = key[:12]
					}
					state := string(s.State)
					if killed && s.State == pipeline.StateRunning {
						state = "killed"
					}
					took := fmt.Sprintf("%.2fs", s.Seconds)
					if s.State == pipeline.StateRunning {
						took = "-" // it has not ended: no time to show
					}
					writeRow(tw, "    "+state, s.Stage, took, "key "+key, firstLine(s.Error))
				}
				tw.Flush()
			}
			return nil
		}
	},
}
