package partitions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"stitch/artifacts"
	"stitch/pipeline"
)

// Params are the parameters of a partitions stage.
type Params struct {
	// Root is the dataset folder; relative paths are taken from the
	// working directory and made absolute.
	Root string `yaml:"root"`
	// Layout is coarse, fine or csv.
	Layout string `yaml:"layout"`
	// AttrType keeps only the attributes of one type (coarse: 1 texture,
	// 2 fabric, 3 shape, 4 part, 5 style; fine: the group id); 0 keeps all.
	AttrType int `yaml:"attr_type"`
	// CheckImages verifies that every listed image exists, and puts the
	// image folder's content fingerprint into the samples tables, so that
	// editing an image reruns every stage that reads the pixels.
	CheckImages bool `yaml:"check_images"`
	// CSV configures the csv layout.
	CSV CSVParams `yaml:"csv"`
}

// NewParams returns the defaults: coarse layout, all attribute types.
func NewParams() *Params {
	return &Params{
		Layout: "coarse",
		CSV:    CSVParams{File: "labels.csv", ListSeparator: ";"},
	}
}

// Validate checks the parameters without touching the disk; an error is a
// *pipeline.ParamError naming the key. It makes root absolute and cleans
// the CSV paths (filepath.Abs, Clean), so that data/, ./data, data and
// $PWD/data share a run key.
func (p *Params) Validate() error {
	if p.Root == "" {
		return pipeline.ParamErrorf("root", "root: the dataset folder is required")
	}
	if abs, err := filepath.Abs(p.Root); err == nil {
		p.Root = abs
	} else {
		p.Root = filepath.Clean(p.Root)
	}
	for _, f := range []*string{&p.CSV.File, &p.CSV.Attributes} {
		if *f == "" {
			continue
		}
		*f = filepath.Clean(*f)
		// A file under root is named relative to it, however it was
		// given: one spelling, one run key.
		if rel, err := filepath.Rel(p.Root, *f); err == nil && filepath.IsAbs(*f) && filepath.IsLocal(rel) {
			*f = rel
		}
	}
	switch p.Layout {
	case "coarse":
		if p.AttrType < 0 || p.AttrType > 5 {
			return pipeline.ParamErrorf("attr_type", "attr_type %d: want 0 (all) or 1..5", p.AttrType)
		}
	case "fine", "csv":
		if p.AttrType < 0 {
			return pipeline.ParamErrorf("attr_type", "attr_type %d: want 0 (all) or a type id", p.AttrType)
		}
	default:
		return pipeline.ParamErrorf("layout", "layout %q: want coarse, fine or csv", p.Layout)
	}
	if p.Layout == "csv" {
		if p.CSV.File == "" {
			return pipeline.ParamErrorf("csv.file", "csv.file: the labels table is required")
		}
		if p.CSV.LabelsColumn != "" && p.CSV.ListSeparator == "" {
			return pipeline.ParamErrorf("csv.list_separator", "csv.list_separator: required with labels_column")
		}
	}
	return nil
}

// root returns the absolute dataset folder, which must be a folder.
func (p *Params) root() (string, error) {
	root, err := filepath.Abs(p.Root)
	if err != nil {
		return "", fmt.Errorf("root %s: %w", p.Root, err)
	}
	if st, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("root %s: %w", root, errors.Unwrap(err))
	} else if !st.IsDir() {
		return "", fmt.Errorf("root %s: not a folder", root)
	}
	return root, nil
}

type kind struct{}

// New returns the partitions stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "partitions" }
func (kind) Version() string { return "3" }

// Inputs has one optional input, after: artifacts that must exist before
// the dataset is read (a synth stage's manifest). They are not read; they
// order the stages and enter the run key, so a regenerated dataset is
// read again.
func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{{Name: "after", Optional: true, Many: true,
		Doc: "stages that write the dataset folder (e.g. synth.manifest)"}}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "attributes", Kind: artifacts.KindAttributes, Doc: "attribute names and types, in label order"},
		{Name: "categories", Kind: artifacts.KindCategories, Doc: "categories (empty when the dataset has none)"},
		{Name: "train", Kind: artifacts.KindSamples, Doc: "training samples"},
		{Name: "val", Kind: artifacts.KindSamples, Doc: "validation samples"},
		{Name: "test", Kind: artifacts.KindSamples, Doc: "test samples"},
	}
}

func (kind) NewParams() any { return NewParams() }

// Externals names the annotation folders, and the image folder when the
// images are checked, so that editing any of them reruns the stage.
func (kind) Externals(params any) ([]string, error) {
	p := params.(*Params)
	root, err := p.root()
	if err != nil {
		return nil, err
	}
	var paths []string
	switch p.Layout {
	case "coarse":
		anno, err := coarseAnnoDir(root)
		if err != nil {
			return nil, err
		}
		paths = append(paths, filepath.Join(root, anno), filepath.Join(root, "Eval"))
	case "fine":
		paths = append(paths, filepath.Join(root, fineDir))
	case "csv":
		for _, f := range []struct{ key, name string }{
			{"csv.file", p.CSV.File}, {"csv.attributes", p.CSV.Attributes},
		} {
			if f.name == "" {
				continue
			}
			// A folder would be fingerprinted file by file before Read
			// refuses it, and fail there for reasons unrelated to it.
			path := underRoot(root, f.name)
			if st, err := os.Stat(path); err == nil && st.IsDir() {
				return nil, fmt.Errorf("%s %s: %s is a directory, want a CSV file", f.key, f.name, path)
			}
			paths = append(paths, path)
		}
	}
	if p.CheckImages {
		paths = append(paths, imageFolders(root, p)...)
	}
	return paths, nil
}

// imageFolders returns the folder holding the images: img/ in the
// DeepFashion layouts, the whole root for a CSV dataset.
func imageFolders(root string, p *Params) []string {
	if p.Layout == "csv" {
		return []string{root}
	}
	return []string{filepath.Join(root, "img")}
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	ds, err := Read(ctx, p)
	if err != nil {
		return err
	}
	log := run.Logger()
	for _, t := range ds.Tolerated {
		log.Warn(t.What, "count", t.Count, "first", t.First)
	}
	if p.CheckImages {
		if err := checkImages(ctx, ds); err != nil {
			return err
		}
		// The image folder's fingerprint goes into the samples tables, so
		// that edited images rerun every stage that reads the pixels.
		root, err := p.root()
		if err != nil {
			return err
		}
		var fps []string
		for _, dir := range imageFolders(root, p) {
			fp, ok := run.External(dir)
			if !ok {
				return fmt.Errorf("check images: %s has no fingerprint in the run key", dir)
			}
			fps = append(fps, fp)
		}
		for _, s := range ds.Partitions {
			s.ImagesFingerprint = strings.Join(fps, ",")
		}
	}

	store := run.Store()
	id, err := store.PutAttributes(ds.Attributes)
	if err != nil {
		return err
	}
	run.SetOutput("attributes", id)
	if id, err = store.PutCategories(ds.Categories); err != nil {
		return err
	}
	run.SetOutput("categories", id)
	for i, s := range ds.Partitions {
		if s.Len() == 0 {
			log.Warn("partition is empty", "partition", partitionNames[i])
		}
		if id, err = store.PutSamples(s); err != nil {
			return err
		}
		run.SetOutput(partitionNames[i], id)
	}
	log.Info("partitions read", "root", ds.Partitions[0].Root, "layout", p.Layout,
		"attributes", len(ds.Attributes), "categories", len(ds.Categories),
		"train", ds.Partitions[0].Len(), "val", ds.Partitions[1].Len(), "test", ds.Partitions[2].Len())
	return nil
}

// Read parses the dataset that p describes, without storing anything.
// Tests and the synth command use it to check a folder.
func Read(ctx context.Context, p *Params) (*Dataset, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	root, err := p.root()
	if err != nil {
		return nil, err
	}
	switch p.Layout {
	case "coarse":
		return readCoarse(ctx, root, p.AttrType)
	case "fine":
		return readFine(ctx, root, p.AttrType)
	default:
		return readCSVLayout(ctx, root, p.AttrType, p.CSV)
	}
}

// checkImages stats every listed image and reports the missing ones.
func checkImages(ctx context.Context, ds *Dataset) error {
	var missing []string
	total := 0
	for part, s := range ds.Partitions {
		for i, image := range s.Image {
			total++
			if total&1023 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			st, err := os.Stat(filepath.Join(s.Root, filepath.FromSlash(image)))
			if err == nil && !st.Mode().IsRegular() {
				err = errors.New("not a regular file")
			}
			if err != nil {
				if w := ds.where(part, i); w != "" && len(missing) < 5 {
					image += " (" + w + ")"
				}
				missing = append(missing, image)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	shown := missing[:min(len(missing), 5)]
	return fmt.Errorf("check images: %d of %d listed images are missing under %s: %s",
		len(missing), total, ds.Partitions[0].Root, strings.Join(shown, ", "))
}
