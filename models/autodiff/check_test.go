package autodiff

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"stitch/internal/testenv"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// testGraph builds a small forward graph whose float tensors are graph
// inputs, so finite differences can perturb them without a new session.
type testGraph struct {
	g      *onnxpb.GraphProto
	dtype  int32
	values map[string][]float64 // input data
	params []string             // inputs to differentiate
	rng    *rand.Rand
	tune   tuning // formulation choices under test
}

func newTestGraph(dtype int32, seed uint64) *testGraph {
	name := "check"
	return &testGraph{
		g: &onnxpb.GraphProto{Name: &name}, dtype: dtype,
		values: map[string][]float64{}, rng: rand.New(rand.NewPCG(seed, 7)),
	}
}

// input adds a float input filled with distinct values spread over
// [lo, hi], none closer than 0.6(hi-lo)/n to another and none exactly on a
// round number, so that kinks (Relu,
// MaxPool ties) stay farther than the finite-difference step.
func (t *testGraph) input(name string, shape []int64, param bool, lo, hi float64) string {
	n := int(prod(shape))
	perm := t.rng.Perm(n)
	v := make([]float64, n)
	for i, p := range perm {
		v[i] = lo + (hi-lo)*(float64(p)+0.3+0.4*t.rng.Float64())/float64(n)
	}
	t.values[name] = v
	t.g.Input = append(t.g.Input, valueInfo(name, t.dtype, shape))
	if param {
		t.params = append(t.params, name)
	}
	return name
}

// param is an input to differentiate with values in [-1, 1].
func (t *testGraph) param(name string, shape ...int64) string {
	return t.input(name, shape, true, -1, 1)
}

func (t *testGraph) node(op string, inputs []string, out string, attrs ...*onnxpb.AttributeProto) string {
	nm := "n_" + out
	t.g.Node = append(t.g.Node, &onnxpb.NodeProto{
		OpType: &op, Name: &nm, Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	return out
}

func (t *testGraph) ints(name string, vals ...int64) string {
	dt := int32(onnxpb.TensorProto_INT64)
	t.g.Initializer = append(t.g.Initializer, &onnxpb.TensorProto{
		Name: &name, DataType: &dt, Dims: []int64{int64(len(vals))}, Int64Data: vals,
	})
	return name
}

func (t *testGraph) scalarInit(name string, v float64) string {
	t.g.Initializer = append(t.g.Initializer, floatTensor(name, t.dtype, []float64{v}, []int64{}))
	return name
}

func modelBytes(g *onnxpb.GraphProto) ([]byte, error) {
	ir := int64(8)
	ver := int64(17)
	dom := ""
	m := &onnxpb.ModelProto{
		IrVersion: &ir, Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: &dom, Version: &ver}},
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// session runs one model on fixed inputs of one element type.
type session struct {
	s      *ort.Session
	dtype  int32
	ins    []string
	shapes map[string][]int64
}

func newSession(g *onnxpb.GraphProto, dtype int32, ins, outs []string, shapes map[string][]int64) (*session, error) {
	b, err := modelBytes(g)
	if err != nil {
		return nil, err
	}
	s, err := ort.NewSession(b, ins, outs, ort.Options{Threads: 2})
	if err != nil {
		return nil, err
	}
	return &session{s: s, dtype: dtype, ins: ins, shapes: shapes}, nil
}

// run feeds values and returns the outputs as float64.
func (s *session) run(values map[string][]float64) ([][]float64, error) {
	if s.dtype == int32(onnxpb.TensorProto_DOUBLE) {
		return runTyped[float64](s, values)
	}
	return runTyped[float32](s, values)
}

func runTyped[T float32 | float64](s *session, values map[string][]float64) ([][]float64, error) {
	inputs := make([]ort.Value, len(s.ins))
	for i, name := range s.ins {
		v := values[name]
		data := make([]T, len(v))
		for k, x := range v {
			data[k] = T(x)
		}
		t, err := ort.NewTensorOf(data, s.shapes[name]...)
		if err != nil {
			return nil, err
		}
		defer t.Destroy()
		inputs[i] = t
	}
	outputs := make([]ort.Value, len(s.s.Outputs))
	if err := s.s.Run(inputs, outputs); err != nil {
		return nil, err
	}
	res := make([][]float64, len(outputs))
	for i, o := range outputs {
		defer o.Destroy()
		t, ok := o.(*ort.Tensor[T])
		if !ok {
			return nil, fmt.Errorf("output %d: unexpected type %T", i, o)
		}
		res[i] = make([]float64, len(t.GetData()))
		for k, x := range t.GetData() {
			res[i][k] = float64(x)
		}
	}
	return res, nil
}

// errNoKernel marks a model ONNX Runtime's CPU provider has no kernel for
// (double tensors of float-only operators).
var errNoKernel = errors.New("no kernel")

// checkGradients compares Backward's gradient of <seed, out> with respect
// to every parameter of tg against central finite differences.
func checkGradients(t *testing.T, tg *testGraph, out string) error {
	t.Helper()
	shapes := map[string][]int64{}
	for _, in := range tg.g.Input {
		s, _ := declaredShape(in)
		shapes[in.GetName()] = s
	}
	all, err := InferShapes(tg.g, shapes)
	if err != nil {
		return err
	}
	ys, ok := all[out]
	if !ok {
		return fmt.Errorf("no shape for %s", out)
	}
	tg.g.Output = []*onnxpb.ValueInfoProto{valueInfo(out, tg.dtype, ys)}

	grad := proto.Clone(tg.g).(*onnxpb.GraphProto)
	grad.Input = append(grad.Input, valueInfo("seed", tg.dtype, ys))
	shapes["seed"] = ys
	seed := make([]float64, prod(ys))
	for i := range seed {
		seed[i] = tg.rng.Float64()*2 - 1
	}
	tg.values["seed"] = seed
	names, err := backward(grad, out, "seed", tg.params, Options{InputShapes: shapes}, tg.tune)
	if err != nil {
		return err
	}
	ins := make([]string, 0, len(grad.Input))
	for _, in := range grad.Input {
		ins = append(ins, in.GetName())
	}
	grad.Output = nil
	gradOuts := make([]string, len(tg.params))
	for i, p := range tg.params {
		gradOuts[i] = names[p]
		grad.Output = append(grad.Output, valueInfo(names[p], tg.dtype, shapes[p]))
	}
	gs, err := newSession(grad, tg.dtype, ins, gradOuts, shapes)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "Could not find an implementation") ||
			strings.Contains(msg, "Failed to find kernel") {
			return fmt.Errorf("%w: %v", errNoKernel, err)
		}
		return fmt.Errorf("gradient graph: %w", err)
	}
	defer gs.s.Close()
	analytic, err := gs.run(tg.values)
	if err != nil {
		return err
	}

	fwd, err := newSession(tg.g, tg.dtype, ins[:len(ins)-1], []string{out}, shapes)
	if err != nil {
		return fmt.Errorf("forward graph: %w", err)
	}
	defer fwd.s.Close()
	objective := func() (float64, error) {
		y, err := fwd.run(tg.values)
		if err != nil {
			return 0, err
		}
		f := 0.0
		for i, v := range y[0] {
			f += v * seed[i]
		}
		return f, nil
	}

	double := tg.dtype == int32(onnxpb.TensorProto_DOUBLE)
	eps, rtol := 2e-3, 2e-2
	if double {
		eps, rtol = 1e-6, 1e-5
	}
	for pi, p := range tg.params {
		v := tg.values[p]
		coords := tg.rng.Perm(len(v))
		if len(coords) > 48 {
			coords = coords[:48]
		}
		scale := 0.0
		for _, g := range analytic[pi] {
			scale = max(scale, math.Abs(g))
		}
		for _, c := range coords {
			orig := v[c]
			v[c] = orig + eps
			fp, err := objective()
			if err != nil {
				return err
			}
			v[c] = orig - eps
			fm, err := objective()
			if err != nil {
				return err
			}
			v[c] = orig
			num := (fp - fm) / (2 * eps)
			got := analytic[pi][c]
			if math.Abs(got-num) > rtol*(math.Abs(num)+0.1*scale)+1e-9 {
				return fmt.Errorf("d/d %s[%d]: backward %.8g, finite differences %.8g (dtype %d)", p, c, got, num, tg.dtype)
			}
		}
	}
	return nil
}

// gradCase builds a forward graph and returns the tensor to differentiate.
type gradCase struct {
	name  string
	build func(t *testGraph) string
}

// runCases checks every case in double precision, falling back to float32
// where ONNX Runtime's CPU provider has only float kernels (Conv, pooling).
func runCases(t *testing.T, cases []gradCase) {
	t.Helper()
	testenv.RequireORT(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := errNoKernel
			for _, dt := range []onnxpb.TensorProto_DataType{onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_FLOAT} {
				if !errors.Is(err, errNoKernel) {
					break
				}
				tg := newTestGraph(int32(dt), uint64(i+1))
				err = checkGradients(t, tg, c.build(tg))
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
