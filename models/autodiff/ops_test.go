package autodiff

import (
	"fmt"
	"testing"

	"stitch/models/onnxpb"
)

func TestGradGemmMatMul(t *testing.T) {
	var cases []gradCase
	for _, ta := range []int64{0, 1} {
		for _, tb := range []int64{0, 1} {
			for _, cs := range [][]int64{nil, {3, 5}, {5}, {1, 5}, {3, 1}} {
				cases = append(cases, gradCase{fmt.Sprintf("Gemm/tA%d_tB%d_C%v", ta, tb, cs), func(t *testGraph) string {
					as, bs := []int64{3, 4}, []int64{4, 5}
					if ta == 1 {
						as = []int64{4, 3}
					}
					if tb == 1 {
						bs = []int64{5, 4}
					}
					ins := []string{t.param("a", as...), t.param("b", bs...)}
					if cs != nil {
						ins = append(ins, t.param("c", cs...))
					}
					return t.node("Gemm", ins, "y", attrI("transA", ta), attrI("transB", tb),
						attrF("alpha", 0.7), attrF("beta", 1.3))
				}})
			}
		}
	}
	for _, sh := range [][2][]int64{
		{{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 5}}, {{2, 3, 4}, {2, 4, 5}}, {{1, 3, 4}, {2, 4, 5}}, {{3, 4}, {2, 4, 5}},
	} {
		cases = append(cases, gradCase{fmt.Sprintf("MatMul/%v", sh), func(t *testGraph) string {
			return t.node("MatMul", []string{t.param("a", sh[0]...), t.param("b", sh[1]...)}, "y")
		}})
	}
	runCases(t, cases)
}

func TestGradElementwise(t *testing.T) {
	var cases []gradCase
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		for _, sh := range [][2][]int64{
			{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {1, 3, 1}},
			{{4}, {2, 3, 4}}, {{2, 3, 4}, {1}},
		} {
			cases = append(cases, gradCase{fmt.Sprintf("%s/%v", op, sh), func(t *testGraph) string {
				a := t.param("a", sh[0]...)
				lo := -1.0
				if op == "Div" {
					lo = 0.5 // keep the denominator away from zero
				}
				b := t.input("b", sh[1], true, lo, 2)
				return t.node(op, []string{a, b}, "y")
			}})
		}
	}
	cases = append(cases,
		gradCase{"Mul/same_tensor", func(t *testGraph) string {
			x := t.param("x", 2, 3)
			return t.node("Mul", []string{x, x}, "y")
		}},
		gradCase{"Sum/three", func(t *testGraph) string {
			return t.node("Sum", []string{t.param("a", 2, 3), t.param("b", 3), t.param("c", 2, 1)}, "y")
		}},
		gradCase{"Neg", func(t *testGraph) string { return t.node("Neg", []string{t.param("x", 2, 3)}, "y") }},
		gradCase{"Sqrt", func(t *testGraph) string {
			return t.node("Sqrt", []string{t.input("x", []int64{2, 3}, true, 0.5, 2)}, "y")
		}},
		gradCase{"shared_param_two_paths", func(t *testGraph) string {
			x := t.param("x", 2, 3)
			w := t.param("w", 3)
			a := t.node("Mul", []string{x, w}, "a")
			b := t.node("Sigmoid", []string{w}, "b")
			r := t.node("Relu", []string{a}, "r")
			return t.node("Add", []string{r, b}, "y")
		}},
		gradCase{"constant_branch_unsupported_op", func(t *testGraph) string {
			c := t.input("c", []int64{2, 3}, false, -1, 1)
			e := t.node("Erf", []string{c}, "e") // no gradient rule, but constant
			return t.node("Mul", []string{e, t.param("x", 2, 3)}, "y")
		}},
	)
	runCases(t, cases)
}

func TestGradActivations(t *testing.T) {
	unary := func(name, op string, lo, hi float64, attrs ...*onnxpb.AttributeProto) gradCase {
		return gradCase{name, func(t *testGraph) string {
			return t.node(op, []string{t.input("x", []int64{2, 3, 4}, true, lo, hi)}, "y", attrs...)
		}}
	}
	cases := []gradCase{
		unary("Relu", "Relu", -1, 1),
		unary("LeakyRelu", "LeakyRelu", -1, 1, attrF("alpha", 0.1)),
		unary("Sigmoid", "Sigmoid", -3, 3),
		unary("Tanh", "Tanh", -2, 2),
		unary("HardSigmoid", "HardSigmoid", -4.1, 3.9, attrF("alpha", 0.2), attrF("beta", 0.5)),
		unary("HardSwish", "HardSwish", -5, 5),
		unary("Softmax/last", "Softmax", -2, 2),
		unary("Softmax/axis1", "Softmax", -2, 2, attrI("axis", 1)),
		unary("Identity", "Identity", -1, 1),
		unary("Dropout/inference", "Dropout", -1, 1),
		{"Clip/initializers", func(t *testGraph) string {
			x := t.input("x", []int64{2, 3, 4}, true, -2, 8)
			return t.node("Clip", []string{x, t.scalarInit("lo", 0), t.scalarInit("hi", 6)}, "y")
		}},
		{"Clip/constant_nodes_max_only", func(t *testGraph) string {
			x := t.input("x", []int64{2, 3, 4}, true, -2, 8)
			v := floatTensor("", t.dtype, []float64{6}, []int64{})
			t.node("Constant", nil, "hi", attrT("value", v))
			return t.node("Clip", []string{x, "", "hi"}, "y")
		}},
		{"Dropout/training", func(t *testGraph) string {
			// ratio 0 keeps every unit, so the random mask is deterministic.
			x := t.param("x", 2, 3)
			bt := int32(onnxpb.TensorProto_BOOL)
			name := "train"
			t.g.Initializer = append(t.g.Initializer, &onnxpb.TensorProto{
				Name: &name, DataType: &bt, Dims: []int64{}, Int32Data: []int32{1},
			})
			return t.node("Dropout", []string{x, t.scalarInit("ratio", 0), name}, "y")
		}},
	}
	runCases(t, cases)
}

func TestGradShapes(t *testing.T) {
	cases := []gradCase{
		{"Flatten/axis1", func(t *testGraph) string {
			return t.node("Flatten", []string{t.param("x", 2, 3, 2, 2)}, "y")
		}},
		{"Flatten/axis2", func(t *testGraph) string {
			return t.node("Flatten", []string{t.param("x", 2, 3, 2, 2)}, "y", attrI("axis", 2))
		}},
		{"Reshape", func(t *testGraph) string {
			return t.node("Reshape", []string{t.param("x", 2, 3, 4), t.ints("shape", 0, -1, 2)}, "y")
		}},
		{"Transpose", func(t *testGraph) string {
			return t.node("Transpose", []string{t.param("x", 2, 3, 4)}, "y", attrIs("perm", []int64{1, 2, 0}))
		}},
		{"Concat/all", func(t *testGraph) string {
			return t.node("Concat", []string{t.param("a", 2, 1, 3), t.param("b", 2, 2, 3), t.param("c", 2, 3, 3)},
				"y", attrI("axis", 1))
		}},
		{"Concat/some", func(t *testGraph) string {
			c := t.input("c", []int64{2, 3, 2}, false, -1, 1)
			return t.node("Concat", []string{t.param("a", 2, 3, 1), c, t.param("b", 2, 3, 2)}, "y", attrI("axis", -1))
		}},
		{"Pad/constant", func(t *testGraph) string {
			return t.node("Pad", []string{t.param("x", 2, 3, 3), t.ints("pads", 0, 1, 2, 0, 2, 1)}, "y")
		}},
		{"Pad/negative", func(t *testGraph) string {
			return t.node("Pad", []string{t.param("x", 2, 3, 4), t.ints("pads", 0, -1, 1, 0, 1, -2)}, "y")
		}},
		{"ReduceMean/keep", func(t *testGraph) string {
			return t.node("ReduceMean", []string{t.param("x", 2, 3, 4)}, "y", attrIs("axes", []int64{0, 2}))
		}},
		{"ReduceMean/drop", func(t *testGraph) string {
			return t.node("ReduceMean", []string{t.param("x", 2, 3, 4)}, "y",
				attrIs("axes", []int64{-1}), attrI("keepdims", 0))
		}},
		{"ReduceMean/all", func(t *testGraph) string {
			return t.node("ReduceMean", []string{t.param("x", 2, 3, 4)}, "y")
		}},
		{"ReduceSum", func(t *testGraph) string {
			return t.node("ReduceSum", []string{t.param("x", 2, 3, 4), t.ints("axes", 1)}, "y", attrI("keepdims", 0))
		}},
		{"Unsqueeze_Squeeze", func(t *testGraph) string {
			u := t.node("Unsqueeze", []string{t.param("x", 2, 3), t.ints("ax", 1)}, "u")
			return t.node("Squeeze", []string{t.node("Tanh", []string{u}, "v"), t.ints("ax2", 1)}, "y")
		}},
	}
	runCases(t, cases)
}

// convSpec is one Conv layer to differentiate.
type convSpec struct {
	name                      string
	c, m, h, w, kh, kw, group int64
	strides, pads, dilations  []int64
	autoPad                   string
	bias                      bool
}

func TestGradConv(t *testing.T) {
	p1, p2, p3, s2 := []int64{1, 1, 1, 1}, []int64{2, 2, 2, 2}, []int64{3, 3, 3, 3}, []int64{2, 2}
	convs := []convSpec{
		{name: "3x3_s1_p1", c: 3, m: 4, h: 6, w: 5, kh: 3, kw: 3, group: 1, pads: p1, bias: true},
		{name: "3x3_s2_p1", c: 3, m: 4, h: 7, w: 6, kh: 3, kw: 3, group: 1, strides: s2, pads: p1, bias: true},
		{name: "1x1_s1", c: 4, m: 3, h: 4, w: 4, kh: 1, kw: 1, group: 1, bias: true},
		{name: "1x1_s2", c: 4, m: 3, h: 5, w: 4, kh: 1, kw: 1, group: 1, strides: s2},
		{name: "1x1_many_out", c: 2, m: 6, h: 3, w: 3, kh: 1, kw: 1, group: 1},
		{name: "3x3_dil2_p2", c: 2, m: 3, h: 7, w: 7, kh: 3, kw: 3, group: 1, pads: p2, dilations: []int64{2, 2}},
		{name: "5x5_s2_p2", c: 2, m: 2, h: 9, w: 8, kh: 5, kw: 5, group: 1, strides: s2, pads: p2},
		{name: "7x7_s2_p3", c: 3, m: 2, h: 10, w: 10, kh: 7, kw: 7, group: 1, strides: s2, pads: p3},
		{name: "2x3_asym", c: 2, m: 3, h: 5, w: 6, kh: 2, kw: 3, group: 1, pads: []int64{0, 1, 1, 2}, bias: true},
		{name: "3x3_s1_nopad", c: 2, m: 3, h: 5, w: 5, kh: 3, kw: 3, group: 1},
		{name: "3x3_s1_bigpad", c: 2, m: 2, h: 4, w: 4, kh: 3, kw: 3, group: 1, pads: p3},
		{name: "same_upper_s2", c: 2, m: 3, h: 7, w: 6, kh: 3, kw: 3, group: 1, strides: s2, autoPad: "SAME_UPPER"},
		{name: "same_upper_s1", c: 2, m: 3, h: 5, w: 6, kh: 3, kw: 3, group: 1, autoPad: "SAME_UPPER"},
		// The last input row is never read.
		{name: "2x2_s2_odd", c: 2, m: 3, h: 9, w: 7, kh: 2, kw: 2, group: 1, strides: s2},
		{name: "valid_s2", c: 2, m: 3, h: 7, w: 6, kh: 3, kw: 3, group: 1, strides: s2, autoPad: "VALID"},
		{name: "groups2", c: 4, m: 6, h: 5, w: 5, kh: 3, kw: 3, group: 2, pads: p1, bias: true},
		{name: "groups2_1x1", c: 4, m: 2, h: 4, w: 4, kh: 1, kw: 1, group: 2},
		{name: "depthwise", c: 4, m: 4, h: 5, w: 5, kh: 3, kw: 3, group: 4, pads: p1, bias: true},
		{name: "depthwise_s2", c: 3, m: 3, h: 7, w: 7, kh: 3, kw: 3, group: 3, strides: s2, pads: p1},
		{name: "depthwise_mult2", c: 2, m: 4, h: 5, w: 5, kh: 3, kw: 3, group: 2, pads: p1},
	}
	// Every formulation the benchmarks may pick, not only the defaults.
	tunings := []struct {
		name string
		tune tuning
	}{
		{"default", tuning{}},
		{"gemm", tuning{weightGrad: wgradGemm}},
		{"gemm_pertap", tuning{weightGrad: wgradGemm, perTapGemm: true}},
		{"persample", tuning{weightGrad: wgradPerSample}},
	}
	var cases []gradCase
	for _, tn := range tunings {
		for _, cv := range convs {
			cases = append(cases, convCase(tn.name, tn.tune, cv))
		}
	}
	runCases(t, cases)
}

// convCase is one Conv gradient check under one tuning.
func convCase(tuneName string, tune tuning, cv convSpec) gradCase {
	return gradCase{"Conv/" + tuneName + "/" + cv.name, func(t *testGraph) string {
		t.tune = tune
		ins := []string{t.param("x", 2, cv.c, cv.h, cv.w), t.param("w", cv.m, cv.c/cv.group, cv.kh, cv.kw)}
		if cv.bias {
			ins = append(ins, t.param("b", cv.m))
		}
		attrs := []*onnxpb.AttributeProto{attrI("group", cv.group), attrIs("kernel_shape", []int64{cv.kh, cv.kw})}
		if cv.strides != nil {
			attrs = append(attrs, attrIs("strides", cv.strides))
		}
		if cv.pads != nil {
			attrs = append(attrs, attrIs("pads", cv.pads))
		}
		if cv.dilations != nil {
			attrs = append(attrs, attrIs("dilations", cv.dilations))
		}
		if cv.autoPad != "" {
			attrs = append(attrs, attrS("auto_pad", cv.autoPad))
		}
		return t.node("Conv", ins, "y", attrs...)
	}}
}

func TestGradPoolNorm(t *testing.T) {
	pool := func(name, op string, h, w int64, attrs ...*onnxpb.AttributeProto) gradCase {
		return gradCase{name, func(t *testGraph) string {
			return t.node(op, []string{t.param("x", 2, 3, h, w)}, "y", attrs...)
		}}
	}
	k := func(a, b int64) *onnxpb.AttributeProto { return attrIs("kernel_shape", []int64{a, b}) }
	s := func(a, b int64) *onnxpb.AttributeProto { return attrIs("strides", []int64{a, b}) }
	p := func(v ...int64) *onnxpb.AttributeProto { return attrIs("pads", v) }
	cases := []gradCase{
		pool("MaxPool/3x3_s2_p1", "MaxPool", 7, 6, k(3, 3), s(2, 2), p(1, 1, 1, 1)),
		pool("MaxPool/2x2_s2", "MaxPool", 4, 6, k(2, 2), s(2, 2)),
		pool("MaxPool/3x3_s2_ceil", "MaxPool", 6, 6, k(3, 3), s(2, 2), attrI("ceil_mode", 1)),
		pool("MaxPool/3x3_s1_same", "MaxPool", 5, 4, k(3, 3), attrS("auto_pad", "SAME_UPPER")),
		pool("GlobalMaxPool", "GlobalMaxPool", 3, 4),
		pool("GlobalAveragePool", "GlobalAveragePool", 3, 4),
		pool("AveragePool/2x2_s2", "AveragePool", 4, 6, k(2, 2), s(2, 2)),
		pool("AveragePool/3x3_s2_p1_exclude", "AveragePool", 7, 6, k(3, 3), s(2, 2), p(1, 1, 1, 1)),
		pool("AveragePool/3x3_s2_p1_include", "AveragePool", 7, 6, k(3, 3), s(2, 2), p(1, 1, 1, 1),
			attrI("count_include_pad", 1)),
		pool("AveragePool/3x3_s2_ceil", "AveragePool", 6, 6, k(3, 3), s(2, 2), attrI("ceil_mode", 1)),
		pool("AveragePool/2x2_s2_uncovered", "AveragePool", 5, 5, k(2, 2), s(2, 2)),
		{"BatchNormalization/inference", func(t *testGraph) string {
			x := t.param("x", 2, 3, 2, 2)
			ins := []string{x, t.param("scale", 3), t.param("bias", 3), t.param("mean", 3),
				t.input("var", []int64{3}, true, 0.5, 2)}
			return t.node("BatchNormalization", ins, "y", attrF("epsilon", 1e-3))
		}},
		{"BatchNormalization/training", func(t *testGraph) string {
			x := t.param("x", 2, 3, 2, 2)
			ins := []string{x, t.param("scale", 3), t.param("bias", 3),
				t.input("mean", []int64{3}, false, -1, 1), t.input("var", []int64{3}, false, 0.5, 2)}
			t.node("BatchNormalization", ins, "y", attrF("epsilon", 1e-3), attrI("training_mode", 1))
			n := t.g.Node[len(t.g.Node)-1]
			n.Output = append(n.Output, "running_mean", "running_var")
			return "y"
		}},
		{"small_cnn", func(t *testGraph) string {
			x := t.input("x", []int64{2, 2, 6, 6}, false, -1, 1)
			c := t.node("Conv", []string{x, t.param("w1", 3, 2, 3, 3), t.param("b1", 3)}, "c",
				attrIs("pads", []int64{1, 1, 1, 1}))
			r := t.node("Relu", []string{c}, "r")
			m := t.node("MaxPool", []string{r}, "m", k(2, 2), s(2, 2))
			g := t.node("GlobalAveragePool", []string{m}, "g")
			f := t.node("Flatten", []string{g}, "f")
			return t.node("Gemm", []string{f, t.param("w2", 4, 3), t.param("b2", 4)}, "y", attrI("transB", 1))
		}},
	}
	runCases(t, cases)
}
