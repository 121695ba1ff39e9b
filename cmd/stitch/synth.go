package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"stitch/stages/synth"
)

var cmdSynth = &command{
	name:    "synth",
	args:    "--out DIR [--n N] [--seed S] [--size PX]",
	summary: "Draw a synthetic DeepFashion-like dataset (coarse and fine layouts) into a folder.",
	example: `stitch synth --out out/synth --n 600 --seed 1
stitch run pipelines/demo.yaml --set data=out/synth`,
	setup: func(fs *flag.FlagSet) runFunc {
		defaults := synth.DefaultOptions("")
		out := fs.String("out", "", "the `folder` to write: a new or empty one, or one holding an earlier "+
			"synth dataset, which is replaced; any other folder is refused")
		n := fs.Int("n", defaults.N, "number of images")
		seed := fs.Int64("seed", defaults.Seed, "the same seed draws the same bytes")
		size := fs.Int("size", defaults.Size, "side of the square images in `pixels`")
		unknown := fs.Float64("unknown", defaults.UnknownFraction,
			"fraction of coarse labels written 0 (unknown)")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 0 {
				return usagef("synth takes no positional arguments, got %q", args)
			}
			if *out == "" {
				return usagef("synth needs --out DIR")
			}
			switch {
			case !(*unknown >= 0 && *unknown < 1):
				return usagef("--unknown %g: want a fraction from 0 up to, not including, 1", *unknown)
			case *n < 1 || *n > synth.MaxImages:
				return usagef("--n %d: want 1 to %d images", *n, synth.MaxImages)
			case *size < synth.MinSize || *size > synth.MaxSize:
				return usagef("--size %d: want %d to %d pixels", *size, synth.MinSize, synth.MaxSize)
			}
			if st, err := os.Stat(*out); err == nil && !st.IsDir() {
				return usagef("--out %s is a file, not a folder", *out)
			} else if errors.Is(err, syscall.ENOTDIR) {
				return usagef("--out %s: a folder on its path is a file", *out)
			}
			opts := defaults
			opts.Out, opts.N, opts.Seed, opts.Size, opts.UnknownFraction = *out, *n, *seed, *size, *unknown
			if err := opts.Validate(); err != nil {
				return usagef("%v", err)
			}
			sum, err := synth.Generate(ctx, opts)
			if errors.Is(err, synth.ErrOtherFolder) {
				return usagef("%v", err)
			}
			if err != nil {
				// Generate writes README.md first, so the folder reads as
				// an earlier synth dataset, which a rerun may replace.
				return interrupted(ctx, err, *out+" is left partly drawn; a rerun into it replaces it")
			}
			fmt.Fprintf(e.stdout, "%s: %s (train %d, val %d, test %d), %d attributes, %d categories\n",
				sum.Out, plural(sum.Images, "image"), sum.Train, sum.Val, sum.Test, sum.Attributes, sum.Categories)
			return nil
		}
	},
}
