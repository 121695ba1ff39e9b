package main

import (
	"context"
	"flag"
	"fmt"

	"stitch/pipeline"
)

var cmdGC = &command{
	name: "gc",
	args: "[--dry-run]",
	summary: "Remove objects that no stage's last recorded run references, " +
		"their cache entries, leftovers of interrupted writes, checkpoints no rerun would resume " +
		"and lock files no process holds.",
	example: `stitch gc --dry-run   # list what would go
stitch gc`,
	setup: func(fs *flag.FlagSet) runFunc {
		dry := fs.Bool("dry-run", false, "list what would be removed; remove nothing")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("gc takes no arguments, got %q", args)
			}
			open := pipeline.OpenWorkspace
			if *dry {
				open = pipeline.OpenWorkspaceReadOnly
			}
			w, err := open(e.workspace, e.logger)
			if err != nil {
				return err
			}
			res, err := w.GC(ctx, *dry)
			if err != nil {
				return err
			}
			verb := "removed"
			if *dry {
				verb = "would remove"
				for _, id := range res.Objects {
					fmt.Fprintln(e.stdout, id)
				}
			}
			entries := "1 cache entry"
			if res.Entries != 1 {
				entries = fmt.Sprintf("%d cache entries", res.Entries)
			}
			fmt.Fprintf(e.stdout, "%s %s (%d bytes), %s, %s, %s (%d bytes), %s\n",
				verb, plural(len(res.Objects), "object"), res.Bytes, entries, plural(res.Temps, "temporary file"),
				plural(res.Work, "unused work folder"), res.WorkBytes, plural(res.Locks, "unused lock file"))
			return nil
		}
	},
}
