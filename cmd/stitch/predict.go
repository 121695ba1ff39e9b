package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"stitch/models/ort"
	"stitch/pipeline"
	"stitch/stages/predict"
)

var cmdPredict = &command{
	name: "predict",
	args: "--model MODEL [--pipeline NAME] [--top N] [--json] IMAGE...",
	summary: "Score images with a model: the most probable categories (for a model with a category " +
		"head) and attributes of each type. MODEL is an ONNX file written by stitch, a model artifact id, " +
		"or STAGE.OUTPUT of a pipeline run here.",
	example: `stitch predict --model train.model photos/dress.jpg
stitch predict --model model.onnx --top 3 --json a.jpg b.jpg`,
	setup: func(fs *flag.FlagSet) runFunc {
		model := fs.String("model", "", "the `MODEL`: ONNX file, artifact id or STAGE.OUTPUT")
		pipe := fs.String("pipeline", "", "the pipeline `NAME`, when several in the workspace have MODEL's stage")
		top := fs.Int("top", 5, "attributes shown per type, and categories shown")
		asJSON := fs.Bool("json", false, "print JSON instead of text")
		provider := fs.String("provider", "cpu", "execution provider: cpu or cuda")
		fallback := fs.Bool("fallback-cpu", false, "run on the CPU when CUDA is unavailable")
		device := fs.Int("device", 0, "CUDA device id")
		threads := fs.Int("threads", 0, "ONNX Runtime threads (0: all cores)")
		return func(ctx context.Context, e *env, args []string) error {
			if *model == "" || len(args) == 0 {
				return usagef("predict needs --model MODEL and at least one IMAGE")
			}
			if *top < 1 {
				return usagef("--top %d: want at least 1", *top)
			}
			if *threads < 0 {
				return usagef("--threads %d: want 0 (all cores) or more", *threads)
			}
			if *device < 0 {
				return usagef("--device %d: want a CUDA device id, 0 or more", *device)
			}
			// When no argument is a file, the command line is wrong: say so
			// before loading the model. One bad path among others is the
			// others' business no more than an undecodable image is: it is
			// reported with its error and the rest are scored.
			var notFile error
			files := 0
			for _, path := range args {
				if err := predict.CheckImagePath(path); err != nil {
					notFile = cmp.Or(notFile, usagef("%v", err))
				} else {
					files++
				}
			}
			if files == 0 {
				return notFile
			}
			name, err := resolveModel(e, *model, *pipe)
			if err != nil {
				return err
			}
			results, err := predict.ForPeople(ctx, predict.Options{
				Model: name, Workspace: e.workspace, Images: args, Top: *top,
				Runtime: ort.Options{Provider: *provider, DeviceID: *device, FallbackCPU: *fallback,
					Threads: *threads, Logger: e.logger},
			})
			if err != nil {
				return err
			}
			write := predict.WriteText
			if *asJSON {
				write = predict.WriteJSON
			}
			if err := write(e.stdout, results); err != nil {
				return err
			}
			return unreadable(e, results)
		}
	},
}

// unreadable reports on stderr each image that could not be scored, and
// returns an error when there was one, once the others' results are out.
func unreadable(e *env, results []predict.ImageScores) error {
	failed := 0
	for _, r := range results {
		if r.Error != "" {
			failed++
			fmt.Fprintf(e.stderr, "stitch predict: %s\n", r.Error)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read", failed, len(results))
	}
	return nil
}

// resolveModel turns STAGE or STAGE.OUTPUT of a recorded run (of pipeline
// pipe, when not ""), or the start of an output's id as `stitch show`
// prints it, into the id of its model artifact; files and whole artifact
// ids pass through unchanged.
func resolveModel(e *env, model, pipe string) (string, error) {
	// A path names a file; a matrix variant's name may hold a '/' too
	// (train[file:models/a.onnx]), but it has brackets, which paths to
	// models rarely do, and no such file.
	_, statErr := os.Stat(model)
	if statErr == nil || len(model) == 64 ||
		strings.ContainsRune(model, os.PathSeparator) && !strings.ContainsRune(model, '[') {
		return model, nil
	}
	if strings.HasSuffix(strings.ToLower(model), ".onnx") {
		return "", usagef("%s: no such model file", model)
	}
	w, err := pipeline.OpenWorkspaceReadOnly(e.workspace, e.logger)
	if err != nil {
		return "", err
	}
	if id, ok, err := outputByPrefix(w, model); ok || err != nil {
		return id, err
	}
	rec, output, err := findOutput(w, model, pipe)
	if err != nil {
		return "", err
	}
	if output == "" {
		output = "model"
	}
	id, ok := rec.Outputs[output]
	if !ok {
		return "", usagef("stage %s has no output %q", rec.Stage, output)
	}
	return id.String(), nil
}

// outputByPrefix finds the recorded output whose id starts with prefix (at
// least 6 hex digits); ok is false when prefix is no such id's start.
func outputByPrefix(w *pipeline.Workspace, prefix string) (id string, ok bool, err error) {
	if len(prefix) < 6 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return "", false, nil
	}
	recs, err := w.ReadableRecords()
	if err != nil {
		return "", false, err
	}
	matches := map[string]bool{}
	for _, r := range recs {
		for _, out := range r.Outputs {
			if s := out.String(); strings.HasPrefix(s, prefix) {
				matches[s] = true
			}
		}
	}
	switch len(matches) {
	case 0:
		return "", false, nil
	case 1:
		for s := range matches {
			return s, true, nil
		}
	}
	return "", true, usagef("artifact id %s… is the start of %d recorded outputs' ids: give more digits",
		prefix, len(matches))
}
