package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"stitch/pipeline"
)

var cmdStatus = &command{
	name:    "status",
	args:    "[FILE] [--set k=v]...",
	summary: "Say which stages are fresh and why the others are stale; changes nothing.",
	example: `stitch status pipelines/demo.yaml
# fresh  split
# stale  train   parameter ` + "`phase2.learning_rate`" + ` changed 0.0001 -> 0.00001`,
	setup: func(fs *flag.FlagSet) runFunc {
		var sets stringList
		fs.Var(&sets, "set", "override pipeline parameter: `name=value`; repeatable")
		return func(ctx context.Context, e *env, args []string) error {
			file, err := pipelineFile(args)
			if err != nil {
				return err
			}
			p, err := e.load(file, sets)
			if err != nil {
				return err
			}
			w, err := pipeline.OpenWorkspaceReadOnly(e.workspace, e.logger)
			if err != nil {
				return err
			}
			sts, err := w.Status(ctx, p)
			if err != nil {
				return err
			}
			tw := newTable(e.stdout)
			stale := 0
			for _, st := range sts {
				state := "fresh"
				if !st.Fresh {
					state = "stale"
					stale++
				}
				writeRow(tw, state, st.Stage, strings.Join(st.Reasons, "; "))
			}
			tw.Flush()
			fmt.Fprintf(e.stdout, "%s: %d fresh, %d stale\n", p.Name, len(sts)-stale, stale)
			return nil
		}
	},
}
