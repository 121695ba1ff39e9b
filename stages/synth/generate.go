package synth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Options control Generate.
type Options struct {
	// Out is the folder to write: a new or empty one, or one that holds an
	// earlier synth dataset, which is replaced. Any other folder is
	// refused, so that a dataset's annotations are never overwritten.
	Out string
	// N is the number of images (1 or more).
	N int
	// Seed makes the dataset: the same options give the same bytes.
	Seed int64
	// Size is the side of the square images in pixels (32 or more).
	Size int
	// UnknownFraction of the coarse labels are written 0 (unknown), as in
	// DeepFashion; the fine layout has no unknown and writes them 0
	// (absent) too.
	UnknownFraction float64
	// Workers bounds the drawing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// DefaultOptions returns 400 images of 128 px with 3 % unknown labels.
func DefaultOptions(out string) Options {
	return Options{Out: out, N: 400, Seed: 1, Size: 128, UnknownFraction: 0.03}
}

// Summary describes a generated dataset.
type Summary struct {
	Out                string
	Images             int
	Train, Val, Test   int
	Attributes         int
	Categories         int
	Positives, Unknown int // in the coarse labels
}

// Attributes returns the synthetic attribute names with their coarse
// DeepFashion types and fine group ids, in label order.
func Attributes() (names []string, coarseTypes, fineGroups []int) {
	for gi, g := range groups {
		for _, v := range g.values {
			names = append(names, v)
			coarseTypes = append(coarseTypes, g.coarseType)
			fineGroups = append(fineGroups, gi+1)
		}
	}
	return names, coarseTypes, fineGroups
}

// Bounds of Options.N and Options.Size.
const (
	MaxImages = 10_000_000
	MinSize   = 32
	MaxSize   = 4096
)

// Validate checks the options: an output folder, n, size and the unknown
// fraction in range.
func (o *Options) Validate() error {
	switch {
	case o.Out == "":
		return errors.New("no output folder")
	case o.N < 1 || o.N > MaxImages:
		return fmt.Errorf("n %d, want 1 to %d", o.N, MaxImages)
	case o.Size < MinSize || o.Size > MaxSize:
		return fmt.Errorf("size %d, want %d to %d", o.Size, MinSize, MaxSize)
	case o.UnknownFraction < 0 || o.UnknownFraction >= 1:
		return fmt.Errorf("unknown_fraction %g, want [0, 1)", o.UnknownFraction)
	}
	return nil
}

// partitionOf splits 70 / 15 / 15 in image order, keeping at least one
// validation and one test image when there are three or more.
func partitionOf(i, n int) int {
	val := max(n*15/100, min(1, n-2))
	test := max(n*15/100, min(1, n-1-val))
	switch {
	case i >= n-test:
		return 2
	case i >= n-test-val:
		return 1
	}
	return 0
}

var partitionNames = [3]string{"train", "val", "test"}

// sample is one generated image's annotations.
type sample struct {
	path   string
	part   int
	g      *garment
	labels []int8 // coarse: 1, -1, 0
}

// Generate draws a DeepFashion-like dataset into opts.Out in both the
// coarse (Anno/, Eval/) and the fine (Anno_fine/) layouts, with the images
// under img/. Each image's content comes from a generator seeded by
// (Seed, index), so images are drawn in parallel yet the output depends
// on the options only.
func Generate(ctx context.Context, opts Options) (Summary, error) {
	if err := opts.Validate(); err != nil {
		return Summary{}, err
	}
	if err := clearOut(opts.Out); err != nil {
		return Summary{}, err
	}
	for _, dir := range []string{"img", "Anno", "Anno_fine", "Eval"} {
		if err := os.MkdirAll(filepath.Join(opts.Out, dir), 0o755); err != nil {
			return Summary{}, err
		}
	}
	// The title goes first, so that an interrupted run's folder is known
	// as synth's when it runs again; the summary replaces it at the end.
	if err := os.WriteFile(filepath.Join(opts.Out, "README.md"), []byte(readmeTitle+"\nbeing drawn\n"), 0o644); err != nil {
		return Summary{}, err
	}
	names, _, _ := Attributes()
	samples := make([]sample, opts.N)
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	eg, egctx := errgroup.WithContext(ctx)
	eg.SetLimit(workers)
	for i := range opts.N {
		eg.Go(func() error {
			if err := egctx.Err(); err != nil {
				return err
			}
			s, err := drawSample(opts, i, len(names))
			samples[i] = s
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return Summary{}, err
	}
	sum := Summary{Out: opts.Out, Images: opts.N, Attributes: len(names), Categories: len(categories)}
	for _, s := range samples {
		switch s.part {
		case 0:
			sum.Train++
		case 1:
			sum.Val++
		default:
			sum.Test++
		}
		for _, v := range s.labels {
			if v == 1 {
				sum.Positives++
			} else if v == 0 {
				sum.Unknown++
			}
		}
	}
	if err := writeCoarse(opts.Out, samples); err != nil {
		return Summary{}, err
	}
	if err := writeFine(opts.Out, samples); err != nil {
		return Summary{}, err
	}
	return sum, writeReadme(opts, sum)
}

func drawSample(opts Options, i, numAttrs int) (sample, error) {
	rng := rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i)))
	g := newGarment(rng)
	img := drawGarment(g, opts.Size, rng)
	s := sample{path: fmt.Sprintf("img/synth_%06d.jpg", i+1), part: partitionOf(i, opts.N), g: g}
	s.labels = make([]int8, numAttrs)
	col := 0
	vals := g.values()
	for gi, grp := range groups {
		for v := range grp.values {
			s.labels[col] = -1
			if vals[gi] == v {
				s.labels[col] = 1
			}
			col++
		}
	}
	// Unknowns come from a separate stream so that changing the fraction
	// does not change the images.
	urng := rand.New(rand.NewPCG(uint64(opts.Seed)^0x5eed, uint64(i)))
	for j := range s.labels {
		if urng.Float64() < opts.UnknownFraction {
			s.labels[j] = 0
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		return s, fmt.Errorf("encode %s: %w", s.path, err)
	}
	if err := os.WriteFile(filepath.Join(opts.Out, filepath.FromSlash(s.path)), buf.Bytes(), 0o644); err != nil {
		return s, err
	}
	return s, nil
}

// writeFile writes a text file through fill, reporting the first error.
func writeFile(path string, fill func(w *bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func labelText(labels []int8, fine bool) string {
	var b strings.Builder
	for j, v := range labels {
		if j > 0 {
			b.WriteByte(' ')
		}
		switch {
		case v == 1:
			b.WriteString("1")
		case fine:
			b.WriteString("0")
		case v == 0:
			b.WriteString("0")
		default:
			b.WriteString("-1")
		}
	}
	return b.String()
}

func writeCoarse(out string, samples []sample) error {
	names, types, _ := Attributes()
	anno := filepath.Join(out, "Anno")
	files := []struct {
		path string
		fill func(w *bufio.Writer)
	}{
		{filepath.Join(anno, "list_attr_cloth.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nattribute_name  attribute_type\n", len(names))
			for j, n := range names {
				fmt.Fprintf(w, "%-20s %d\n", n, types[j])
			}
		}},
		{filepath.Join(anno, "list_attr_img.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nimage_name  attribute_labels\n", len(samples))
			for _, s := range samples {
				fmt.Fprintf(w, "%s  %s\n", s.path, labelText(s.labels, false))
			}
		}},
		{filepath.Join(anno, "list_category_cloth.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\ncategory_name  category_type\n", len(categories))
			for _, c := range categories {
				fmt.Fprintf(w, "%-10s %d\n", c.name, c.body)
			}
		}},
		{filepath.Join(anno, "list_category_img.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nimage_name  category_label\n", len(samples))
			for _, s := range samples {
				fmt.Fprintf(w, "%s  %d\n", s.path, s.g.category+1)
			}
		}},
		{filepath.Join(anno, "list_bbox.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nimage_name  x_1  y_1  x_2  y_2\n", len(samples))
			for _, s := range samples {
				b := s.g.bbox
				fmt.Fprintf(w, "%s  %03d %03d %03d %03d\n", s.path, b[0], b[1], b[2], b[3])
			}
		}},
		{filepath.Join(anno, "list_landmarks.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nimage_name  clothes_type  variation_type  "+
				"[landmark_visibility_i  landmark_location_x_i  landmark_location_y_i]...\n", len(samples))
			for _, s := range samples {
				body := categories[s.g.category].body
				fmt.Fprintf(w, "%s  %d 0", s.path, body)
				for _, m := range coarseLandmarks(s.g) {
					fmt.Fprintf(w, "  %d %03d %03d", m[0], m[1], m[2])
				}
				w.WriteByte('\n')
			}
		}},
		{filepath.Join(out, "Eval", "list_eval_partition.txt"), func(w *bufio.Writer) {
			fmt.Fprintf(w, "%d\nimage_name  evaluation_status\n", len(samples))
			for _, s := range samples {
				fmt.Fprintf(w, "%s  %s\n", s.path, partitionNames[s.part])
			}
		}},
	}
	for _, f := range files {
		if err := writeFile(f.path, f.fill); err != nil {
			return err
		}
	}
	return nil
}

// coarseLandmarks returns DeepFashion's landmark count for the body type:
// 6 upper (collar, sleeve, hem), 4 lower (waist, hem), 8 full.
func coarseLandmarks(g *garment) [][3]int32 {
	switch categories[g.category].body {
	case 1:
		return g.landmarks[:6]
	case 2:
		return g.landmarks[:4]
	}
	return g.landmarks[:8]
}

func writeFine(out string, samples []sample) error {
	names, _, fineGroups := Attributes()
	dir := filepath.Join(out, "Anno_fine")
	err := writeFile(filepath.Join(dir, "list_attr_cloth.txt"), func(w *bufio.Writer) {
		fmt.Fprintf(w, "%d\nattribute_name  attribute_type\n", len(names))
		for j, n := range names {
			fmt.Fprintf(w, "%-20s %d\n", n, fineGroups[j])
		}
	})
	if err != nil {
		return err
	}
	err = writeFile(filepath.Join(dir, "list_category_cloth.txt"), func(w *bufio.Writer) {
		fmt.Fprintf(w, "%d\ncategory_name  category_type\n", len(categories))
		for _, c := range categories {
			fmt.Fprintf(w, "%-10s %d\n", c.name, c.body)
		}
	})
	if err != nil {
		return err
	}
	for p, part := range partitionNames {
		per := map[string]func(s sample) string{
			".txt":      func(s sample) string { return s.path },
			"_attr.txt": func(s sample) string { return labelText(s.labels, true) },
			"_bbox.txt": func(s sample) string {
				b := s.g.bbox
				return fmt.Sprintf("%03d %03d %03d %03d", b[0], b[1], b[2], b[3])
			},
			"_cate.txt":      func(s sample) string { return fmt.Sprint(s.g.category + 1) },
			"_landmarks.txt": fineLandmarks,
		}
		for _, suffix := range []string{".txt", "_attr.txt", "_bbox.txt", "_cate.txt", "_landmarks.txt"} {
			line := per[suffix]
			err := writeFile(filepath.Join(dir, part+suffix), func(w *bufio.Writer) {
				for _, s := range samples {
					if s.part == p {
						w.WriteString(line(s))
						w.WriteByte('\n')
					}
				}
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// fineLandmarks writes 8 x y pairs, 0 0 for a missing one.
func fineLandmarks(s sample) string {
	var b strings.Builder
	for i, m := range s.g.landmarks {
		if i > 0 {
			b.WriteByte(' ')
		}
		if m[0] == 2 {
			b.WriteString("0 0")
			continue
		}
		fmt.Fprintf(&b, "%03d %03d", m[1], m[2])
	}
	return b.String()
}

// ErrOtherFolder is Generate's refusal of a folder that is not empty and
// holds no earlier synth dataset.
var ErrOtherFolder = errors.New("is not empty and holds no earlier synth dataset")

// readmeTitle starts the README.md of every synth dataset; clearOut
// recognises an earlier one by it.
const readmeTitle = "# synthetic DeepFashion-like dataset\n"

// clearOut makes out ready to write: a missing or empty folder is fine;
// an earlier synth dataset loses its images (a smaller n would leave
// stale ones beside the new annotations); anything else is an error.
func clearOut(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) == 0:
		return nil
	}
	readme, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil || !bytes.HasPrefix(readme, []byte(readmeTitle)) {
		return fmt.Errorf("%s %w (no README.md from stitch synth); give a new or empty folder",
			out, ErrOtherFolder)
	}
	if err := os.RemoveAll(filepath.Join(out, "img")); err != nil {
		return fmt.Errorf("remove the earlier dataset's images: %w", err)
	}
	return nil
}

func writeReadme(opts Options, sum Summary) error {
	return writeFile(filepath.Join(opts.Out, "README.md"), func(w *bufio.Writer) {
		fmt.Fprintf(w, readmeTitle+"\n"+
			"Drawn by `stitch synth` (n %d, seed %d, size %d px). Both layouts describe the same images:\n"+
			"`Anno/` + `Eval/` (coarse) and `Anno_fine/` (fine).\n\n"+
			"- images: %d (train %d, val %d, test %d)\n- attributes: %d, categories: %d\n"+
			"- coarse labels: %d positive, %d unknown (0); the fine layout writes unknowns as 0 (absent)\n",
			opts.N, opts.Seed, opts.Size, sum.Images, sum.Train, sum.Val, sum.Test,
			sum.Attributes, sum.Categories, sum.Positives, sum.Unknown)
	})
}
