package predict

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/infer"
	"stitch/models/ort"
	"stitch/stages/pixels"
)

// Options are what `stitch predict` asks for.
type Options struct {
	// Model is an ONNX file with stitch metadata, the file of a model
	// artifact in a store, or a model artifact id (64 hex digits) in the
	// store of Workspace.
	Model string
	// Workspace holds the .stitch store that artifact ids refer to
	// ("" = the working directory).
	Workspace string
	// Images are image files to score.
	Images []string
	// Top is the number of attributes shown per type, and of categories
	// (default 5).
	Top     int
	Runtime ort.Options
}

// Score is one attribute's probability on one image.
type Score struct {
	Attribute   string  `json:"attribute"`
	Index       int     `json:"index"`
	Probability float32 `json:"probability"`
}

// TypeScores are the top attributes of one attribute type.
type TypeScores struct {
	Type     int     `json:"type"`
	TypeName string  `json:"type_name"`
	Top      []Score `json:"top"`
}

// CategoryScore is one category's probability on one image.
type CategoryScore struct {
	Category    string  `json:"category"`
	ID          int     `json:"id"`
	Probability float32 `json:"probability"`
}

// ImageScores are the results for one image: its most probable
// categories (when the model has a category head), then the types in id
// order; or, for an image that could not be read, why.
type ImageScores struct {
	Image string `json:"image"`
	// Error says why the image could not be read or scored, naming the
	// file; such an image has no scores.
	Error      string          `json:"error,omitempty"`
	Categories []CategoryScore `json:"categories,omitempty"`
	Types      []TypeScores    `json:"types,omitempty"`
}

// CheckImagePath says when path names no image file: nothing is there,
// or a folder. Other problems show when the file is read.
func CheckImagePath(path string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: no such image file", path)
	case err == nil && st.IsDir():
		return fmt.Errorf("%s is a folder, not an image", path)
	}
	return nil
}

// ForPeople scores opts.Images with opts.Model and returns, per image in
// order, the opts.Top most probable attributes of each type and, for a
// model with a category head, the opts.Top most probable categories. An
// image that cannot be read gets its Error instead, and the others are
// scored all the same: the error returned is about the model or the run.
func ForPeople(ctx context.Context, opts Options) ([]ImageScores, error) {
	if len(opts.Images) == 0 {
		return nil, errors.New("predict: no images given")
	}
	if opts.Top <= 0 {
		opts.Top = 5
	}
	model, err := LoadModel(opts.Model, opts.Workspace)
	if err != nil {
		return nil, err
	}
	pred, err := infer.New(model, infer.Options{BatchSize: min(len(opts.Images), 32), Runtime: opts.Runtime})
	if err != nil {
		name := opts.Model
		if len(name) == 64 && strings.Trim(name, "0123456789abcdef") == "" {
			name = name[:12] // an artifact id, as stitch show prints it
		}
		return nil, fmt.Errorf("predict with %s: %w", name, err)
	}
	defer pred.Close()

	// An unreadable image is recorded and scored as zeros, whose scores
	// are dropped, so that it costs the other images nothing. Each fill
	// writes its own index.
	failed := make([]error, len(opts.Images))
	fill := func(_ context.Context, i int, dst []float32) error {
		var img *image.NRGBA
		var err error
		if err = CheckImagePath(opts.Images[i]); err == nil {
			img, err = pixels.Load(opts.Images[i]) // its errors name the file
		}
		if err == nil {
			if err = toTensor(dst, img, model.Meta); err != nil {
				err = fmt.Errorf("image %s: %w", opts.Images[i], err)
			}
		}
		if err != nil {
			failed[i] = err
			clear(dst)
		}
		return nil
	}
	scores, err := pred.Predict(ctx, len(opts.Images), fill, nil)
	if err != nil {
		return nil, err
	}
	attrs := attributes(model.Meta, pred.NumOutputs())
	out := make([]ImageScores, len(opts.Images))
	for i, path := range opts.Images {
		if failed[i] != nil {
			out[i] = ImageScores{Image: path, Error: failed[i].Error()}
			continue
		}
		row := scores.Attributes[i*pred.NumOutputs() : (i+1)*pred.NumOutputs()]
		out[i] = ImageScores{Image: path, Types: topByType(attrs, row, opts.Top)}
		if n := pred.NumCategories(); n > 0 {
			out[i].Categories = topCategories(model.Meta.Categories, scores.Categories[i*n:(i+1)*n], opts.Top)
		}
	}
	return out, nil
}

// topCategories ranks the categories by probability, ties to the lower
// id, as the metrics do, and keeps the top.
func topCategories(cats []artifacts.Category, row []float32, top int) []CategoryScore {
	out := make([]CategoryScore, len(cats))
	for c, cat := range cats {
		out[c] = CategoryScore{Category: cat.Name, ID: cat.ID, Probability: row[c]}
	}
	slices.SortFunc(out, func(a, b CategoryScore) int {
		return cmp.Or(cmp.Compare(b.Probability, a.Probability), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(top, len(out))]
}

// attributes returns the model's attributes, or numbered outputs of one
// type when the metadata lists none.
func attributes(meta artifacts.ModelMeta, n int) []artifacts.Attribute {
	if len(meta.Attributes) == n {
		return meta.Attributes
	}
	attrs := make([]artifacts.Attribute, n)
	for i := range attrs {
		attrs[i] = artifacts.Attribute{Index: i, Name: "output " + strconv.Itoa(i), TypeName: "all"}
	}
	return attrs
}

// topByType ranks each type's attributes by probability, ties to the
// lower index, as the metrics do.
func topByType(attrs []artifacts.Attribute, row []float32, top int) []TypeScores {
	byType := map[int]*TypeScores{}
	for i, a := range attrs {
		ts, ok := byType[a.Type]
		if !ok {
			ts = &TypeScores{Type: a.Type, TypeName: a.TypeName}
			byType[a.Type] = ts
		}
		ts.Top = append(ts.Top, Score{Attribute: a.Name, Index: i, Probability: row[i]})
	}
	types := make([]TypeScores, 0, len(byType))
	for _, ts := range byType {
		slices.SortFunc(ts.Top, func(a, b Score) int {
			return cmp.Or(cmp.Compare(b.Probability, a.Probability), cmp.Compare(a.Index, b.Index))
		})
		ts.Top = ts.Top[:min(top, len(ts.Top))]
		types = append(types, *ts)
	}
	slices.SortFunc(types, func(a, b TypeScores) int { return cmp.Compare(a.Type, b.Type) })
	return types
}

// LoadModel resolves what `--model` names: an ONNX file (its stitch.meta
// metadata is required), a model artifact's file in a store, or a model
// artifact id in the store of workspace.
func LoadModel(name, workspace string) (*artifacts.Model, error) {
	data, err := os.ReadFile(name)
	if err == nil {
		if m, perr := graph.Parse(data); perr == nil {
			meta, ok, err := head.ReadMeta(m)
			if err != nil {
				return nil, fmt.Errorf("model %s: %w", name, err)
			}
			if !ok {
				return nil, fmt.Errorf("model %s: no %s metadata: use a model stitch trained, "+
					"or a model artifact", name, head.MetaKey)
			}
			return &artifacts.Model{ONNX: data, Meta: meta}, nil
		}
		return modelFromObject(name)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	id, perr := artifacts.ParseID(name)
	if perr != nil {
		return nil, fmt.Errorf("model %s: neither a file nor a model artifact id: %w", name, err)
	}
	root := filepath.Join(workspace, ".stitch")
	if _, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("model %s: no stitch store: %w", name, err)
	}
	store, err := artifacts.OpenStore(root, nil)
	if err != nil {
		return nil, err
	}
	return store.GetModel(id)
}

// modelFromObject reads a model artifact given the path of its object
// file, ROOT/objects/ab/cdef...: the store re-hashes it on the way.
func modelFromObject(path string) (*artifacts.Model, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	dir, rest := filepath.Split(abs)
	objects, prefix := filepath.Split(filepath.Clean(dir))
	root := filepath.Dir(filepath.Clean(objects))
	id, err := artifacts.ParseID(prefix + rest)
	if err != nil || filepath.Base(filepath.Clean(objects)) != "objects" {
		return nil, fmt.Errorf("model %s: neither an ONNX model nor a model artifact in a stitch store", path)
	}
	store, err := artifacts.OpenStore(root, nil)
	if err != nil {
		return nil, err
	}
	return store.GetModel(id)
}

// WriteText prints results for a person: each image, its top categories
// when there are some, then one line per type with its top attributes.
// Images with an Error are left out: errors are for the caller to report.
func WriteText(w io.Writer, results []ImageScores) error {
	var b strings.Builder
	for _, r := range results {
		if r.Error != "" {
			continue
		}
		fmt.Fprintln(&b, r.Image)
		if len(r.Categories) > 0 {
			parts := make([]string, len(r.Categories))
			for i, c := range r.Categories {
				parts[i] = fmt.Sprintf("%s %.3f", c.Category, c.Probability)
			}
			fmt.Fprintf(&b, "  %-8s %s\n", "category:", strings.Join(parts, ", "))
		}
		for _, t := range r.Types {
			parts := make([]string, len(t.Top))
			for i, s := range t.Top {
				parts[i] = fmt.Sprintf("%s %.3f", s.Attribute, s.Probability)
			}
			name := t.TypeName
			switch {
			case name != "":
			case t.Type == 0: // a dataset without attribute types
				name = "attributes"
			default:
				name = "type " + strconv.Itoa(t.Type)
			}
			fmt.Fprintf(&b, "  %-8s %s\n", name+":", strings.Join(parts, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes results as indented JSON, an image with an Error
// as its image and error only.
func WriteJSON(w io.Writer, results []ImageScores) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}
