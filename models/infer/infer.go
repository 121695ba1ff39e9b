package infer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"stitch/artifacts"
	"stitch/models/ort"
)

// ErrOutputCount reports a model whose output width differs from the
// number of attributes its metadata lists.
var ErrOutputCount = errors.New("model output count differs from its attribute count")

// Options configure a Predictor.
type Options struct {
	// BatchSize is the number of images per run (default 32).
	BatchSize int
	// Workers bounds the Fill calls running at once (default GOMAXPROCS).
	Workers int
	// Runtime chooses the execution provider and threads.
	Runtime ort.Options
}

// Fill writes image i, preprocessed, into dst: 3 x Height x Width floats,
// channel-major (CHW).
type Fill func(ctx context.Context, i int, dst []float32) error

// Predictor runs one model on batches of images.
type Predictor struct {
	meta    artifacts.ModelMeta
	batch   int
	outputs int
	// categories is the width of the category output, 0 without one.
	categories int
	workers    int
	session    *ort.Session
	input      *ort.Tensor[float32]
	output     *ort.Tensor[float32]
	catOutput  *ort.Tensor[float32]
	// live counts the tensors this Predictor created and has not yet
	// destroyed; tests read it to prove nothing leaks.
	live int
}

// New compiles model for batches of opts.BatchSize images. The model's
// metadata must name its input and output and give the input size.
func New(model *artifacts.Model, opts Options) (*Predictor, error) {
	meta := model.Meta
	if opts.BatchSize <= 0 {
		opts.BatchSize = 32
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	outputs, categories, err := check(model)
	if err != nil {
		return nil, err
	}
	p := &Predictor{meta: meta, batch: opts.BatchSize, outputs: outputs, categories: categories,
		workers: opts.Workers}
	names := []string{meta.Output}
	if categories > 0 {
		names = append(names, meta.CategoryOutput)
	}
	p.session, err = ort.NewSession(model.ONNX, []string{meta.Input}, names, opts.Runtime)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", meta.Backbone, err)
	}
	p.input, err = p.tensor(make([]float32, p.batch*p.imageSize()), p.batch, 3, meta.Height, meta.Width)
	if err == nil {
		p.output, err = p.tensor(make([]float32, p.batch*outputs), p.batch, outputs)
	}
	if err == nil && categories > 0 {
		p.catOutput, err = p.tensor(make([]float32, p.batch*categories), p.batch, categories)
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("load model %s: %w", meta.Backbone, err)
	}
	return p, nil
}

// check validates model's metadata against what ONNX Runtime sees in it
// and returns the output widths: attributes, and categories (0 when the
// metadata names no category output).
func check(model *artifacts.Model) (outputs, categories int, err error) {
	meta := model.Meta
	if meta.Height <= 0 || meta.Width <= 0 || meta.Scale == 0 {
		return 0, 0, fmt.Errorf("model %s: metadata gives no input size or scale (%dx%d, scale %g)",
			meta.Backbone, meta.Height, meta.Width, meta.Scale)
	}
	ins, outs, err := ort.Describe(model.ONNX)
	if err != nil {
		return 0, 0, fmt.Errorf("model %s: %w", meta.Backbone, err)
	}
	in := slices.IndexFunc(ins, func(v ort.IOInfo) bool { return v.Name == meta.Input })
	out := slices.IndexFunc(outs, func(v ort.IOInfo) bool { return v.Name == meta.Output })
	if in < 0 || out < 0 {
		return 0, 0, fmt.Errorf("model %s: no input %q or no output %q", meta.Backbone, meta.Input, meta.Output)
	}
	inShape, outShape := ins[in].Shape, outs[out].Shape
	if len(inShape) != 4 || (inShape[2] > 0 && inShape[2] != int64(meta.Height)) ||
		(inShape[3] > 0 && inShape[3] != int64(meta.Width)) {
		return 0, 0, fmt.Errorf("model %s: input %s has shape %v, metadata says 3x%dx%d",
			meta.Backbone, meta.Input, inShape, meta.Height, meta.Width)
	}
	if len(outShape) != 2 || outShape[1] <= 0 {
		return 0, 0, fmt.Errorf("model %s: output %s has shape %v, want [batch, attributes]",
			meta.Backbone, meta.Output, outShape)
	}
	if n := len(meta.Attributes); n > 0 && int64(n) != outShape[1] {
		return 0, 0, fmt.Errorf("model %s: %w: %d outputs, %d attributes",
			meta.Backbone, ErrOutputCount, outShape[1], n)
	}
	if meta.CategoryOutput == "" {
		return int(outShape[1]), 0, nil
	}

	cat := slices.IndexFunc(outs, func(v ort.IOInfo) bool { return v.Name == meta.CategoryOutput })
	if cat < 0 {
		return 0, 0, fmt.Errorf("model %s: no category output %q", meta.Backbone, meta.CategoryOutput)
	}
	catShape := outs[cat].Shape
	if len(catShape) != 2 || catShape[1] <= 0 {
		return 0, 0, fmt.Errorf("model %s: category output %s has shape %v, want [batch, categories]",
			meta.Backbone, meta.CategoryOutput, catShape)
	}
	if n := len(meta.Categories); int64(n) != catShape[1] {
		return 0, 0, fmt.Errorf("model %s: %w: %d category outputs, %d categories in the metadata",
			meta.Backbone, ErrOutputCount, catShape[1], n)
	}
	return int(outShape[1]), int(catShape[1]), nil
}

func (p *Predictor) tensor(data []float32, shape ...int) (*ort.Tensor[float32], error) {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	t, err := ort.NewTensor(data, dims...)
	if err == nil {
		p.live++
	}
	return t, err
}

func (p *Predictor) destroy(t *ort.Tensor[float32]) error {
	if t == nil {
		return nil
	}
	p.live--
	return t.Destroy()
}

// Close frees the session and the tensors.
func (p *Predictor) Close() error {
	errIn := p.destroy(p.input)
	errOut := p.destroy(p.output)
	errCat := p.destroy(p.catOutput)
	p.input, p.output, p.catOutput = nil, nil, nil
	var errSession error
	if p.session != nil {
		errSession = p.session.Close()
		p.session = nil
	}
	if err := errors.Join(errSession, errIn, errOut, errCat); err != nil {
		return fmt.Errorf("close predictor for %s: %w", p.meta.Backbone, err)
	}
	return nil
}

// Meta returns the model's metadata.
func (p *Predictor) Meta() artifacts.ModelMeta { return p.meta }

// BatchSize is the number of images per run.
func (p *Predictor) BatchSize() int { return p.batch }

// NumOutputs is the number of attribute scores per image.
func (p *Predictor) NumOutputs() int { return p.outputs }

// NumCategories is the number of category scores per image: 0 when the
// model has no category output, else len(Meta().Categories).
func (p *Predictor) NumCategories() int { return p.categories }

// Provider is the execution provider the session runs on.
func (p *Predictor) Provider() string { return p.session.Provider }

func (p *Predictor) imageSize() int { return 3 * p.meta.Height * p.meta.Width }

// InputBuffer is the input tensor's memory: BatchSize images, CHW each.
// RunBuffer runs on what the caller writes there.
func (p *Predictor) InputBuffer() []float32 { return p.input.GetData() }

// RunBuffer runs the first n images of InputBuffer and writes their
// attribute scores (probabilities when the model outputs logits) to dst,
// n x NumOutputs, row-major, and, when the model has a category output,
// their category probabilities (a softmax per image) to categories, n x
// NumCategories; categories may be nil for a model without one.
func (p *Predictor) RunBuffer(n int, dst, categories []float32) error {
	if n <= 0 || n > p.batch || len(dst) < n*p.outputs || len(categories) < n*p.categories {
		return fmt.Errorf("run %s: %d images for batches of %d, room for %d scores and %d category scores",
			p.meta.Backbone, n, p.batch, len(dst), len(categories))
	}
	in, out, cat := p.input, p.output, p.catOutput
	if n < p.batch {
		// A short batch: views of the same memory with n rows, freed
		// right after the run. Views over Go memory: a failed Destroy
		// leaves nothing to undo.
		var err error
		if in, err = p.tensor(p.input.GetData()[:n*p.imageSize()], n, 3, p.meta.Height, p.meta.Width); err != nil {
			return fmt.Errorf("run %s: %w", p.meta.Backbone, err)
		}
		defer p.destroy(in)
		if out, err = p.tensor(p.output.GetData()[:n*p.outputs], n, p.outputs); err != nil {
			return fmt.Errorf("run %s: %w", p.meta.Backbone, err)
		}
		defer p.destroy(out)
		if cat != nil {
			if cat, err = p.tensor(p.catOutput.GetData()[:n*p.categories], n, p.categories); err != nil {
				return fmt.Errorf("run %s: %w", p.meta.Backbone, err)
			}
			defer p.destroy(cat)
		}
	}
	outputs := []ort.Value{out}
	if cat != nil {
		outputs = append(outputs, cat)
	}
	if err := p.session.Run([]ort.Value{in}, outputs); err != nil {
		return fmt.Errorf("run %s: %w", p.meta.Backbone, err)
	}
	scores := out.GetData()[:n*p.outputs]
	if !p.meta.OutputIsLogits {
		copy(dst, scores)
	} else {
		for i, v := range scores {
			dst[i] = sigmoid(v)
		}
	}
	if cat != nil {
		logits := cat.GetData()[:n*p.categories]
		for i := range n {
			softmax(categories[i*p.categories:(i+1)*p.categories], logits[i*p.categories:(i+1)*p.categories])
		}
	}
	return nil
}

// softmax writes the softmax of logits to dst, shifted by the maximum so
// that exp cannot overflow.
func softmax(dst, logits []float32) {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, float64(v))
	}
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v) - m)
		dst[i] = float32(e)
		sum += e
	}
	for i := range dst {
		dst[i] = float32(float64(dst[i]) / sum)
	}
}

// sigmoid is the logistic function, written so that neither branch can
// overflow exp.
func sigmoid(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}

// Scores are the results of Predict, row-major in image order.
type Scores struct {
	// Attributes holds n x NumOutputs attribute scores.
	Attributes []float32
	// Categories holds n x NumCategories category probabilities, in the
	// order of the model's Meta().Categories; nil without a category
	// output.
	Categories []float32
}

// Predict scores n images, filling each batch through fill, and returns
// their scores in image order. progress, when not nil, is told how many
// images are done after each batch.
func (p *Predictor) Predict(ctx context.Context, n int, fill Fill, progress func(done int)) (Scores, error) {
	scores := make([]float32, n*p.outputs)
	var categories []float32
	if p.categories > 0 {
		categories = make([]float32, n*p.categories)
	}
	size := p.imageSize()
	buf := p.InputBuffer()
	for start := 0; start < n; start += p.batch {
		if err := ctx.Err(); err != nil {
			return Scores{}, err
		}
		count := min(p.batch, n-start)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(p.workers)
		for j := range count {
			g.Go(func() error { return fill(gctx, start+j, buf[j*size:(j+1)*size]) })
		}
		if err := g.Wait(); err != nil {
			return Scores{}, err
		}
		if err := p.RunBuffer(count, scores[start*p.outputs:], categories[start*p.categories:]); err != nil {
			return Scores{}, err
		}
		if progress != nil {
			progress(start + count)
		}
	}
	return Scores{Attributes: scores, Categories: categories}, nil
}
