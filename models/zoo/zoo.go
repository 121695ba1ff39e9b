package zoo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/onnxpb"
)

// Options size a zoo model.
type Options struct {
	// Width multiplies channel counts (default 1).
	Width float64
	// InputSize is the image height and width (default 224; 64 for smallcnn).
	InputSize int
	// Classes is the output width (default 1000).
	Classes int
	// Seed draws the initial weights.
	Seed int64
}

var builders = map[string]func(*net) string{
	"smallcnn":     smallCNN,
	"vgg16":        vgg16,
	"resnet18":     func(n *net) string { return resnet(n, []int{2, 2, 2, 2}, false) },
	"resnet50":     func(n *net) string { return resnet(n, []int{3, 4, 6, 3}, true) },
	"mobilenet_v2": mobileNetV2,
	"densenet121":  denseNet121,
}

// Names returns the names Build knows, sorted.
func Names() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Build returns the zoo model name, sized and seeded by opts.
func Build(name string, opts Options) (*onnxpb.ModelProto, error) {
	build, ok := builders[name]
	if !ok {
		return nil, fmt.Errorf("build zoo model %q: unknown (known: %s)", name, strings.Join(Names(), ", "))
	}
	if opts.Width == 0 {
		opts.Width = 1
	}
	if opts.InputSize == 0 {
		opts.InputSize = 224
		if name == "smallcnn" {
			opts.InputSize = 64
		}
	}
	if opts.Classes == 0 {
		opts.Classes = 1000
	}
	if opts.Width < 0 || opts.InputSize < 32 || opts.Classes < 0 {
		return nil, fmt.Errorf("build zoo model %s: width %g, input size %d, classes %d: "+
			"want width > 0, input size >= 32, classes > 0", name, opts.Width, opts.InputSize, opts.Classes)
	}

	n := &net{
		b: graph.New(name), opts: opts,
		rng: rand.New(rand.NewPCG(uint64(opts.Seed), 0x7a6f6f)), // "zoo"
	}
	size := int64(opts.InputSize)
	n.x = n.b.Input("input", graph.Float, []int64{-1, 3, size, size}, "batch")
	n.c = 3
	logits := build(n)
	if n.err != nil {
		return nil, fmt.Errorf("build zoo model %s: %w", name, n.err)
	}
	n.b.Output(logits, graph.Float, []int64{-1, int64(opts.Classes)}, "batch")

	meta := artifacts.ModelMeta{
		Input: "input", Output: logits, OutputIsLogits: true,
		Height: opts.InputSize, Width: opts.InputSize,
		Scale: 255, Mean: head.ImageNetMean, Std: head.ImageNetStd, Backbone: name,
	}
	if err := head.WriteMeta(n.b.Model, meta); err != nil {
		return nil, err
	}
	return n.b.Model, nil
}

// net builds a network layer by layer: x is the current value and c its
// channel count. The first error sticks and stops nothing, so layer code
// reads straight; Build reports it.
type net struct {
	b    *graph.Builder
	rng  *rand.Rand
	opts Options
	x    string
	c    int
	err  error
}

// ch scales a channel count by the width, at least 1.
func (n *net) ch(c int) int { return max(1, int(math.Round(float64(c)*n.opts.Width))) }

// weights adds an initializer of normal values with standard deviation std.
func (n *net) weights(name string, std float64, shape ...int64) string {
	w := make([]float32, graph.NumElements(shape))
	for i := range w {
		if std == 0 {
			break // biases start at zero; drawing nothing keeps the stream short
		}
		w[i] = float32(n.rng.NormFloat64() * std)
	}
	out, err := n.b.Initializer(name, w, shape...)
	if err != nil && n.err == nil {
		n.err = err
	}
	return out
}

// conv adds a k x k convolution of x to out channels with a bias; gain
// scales the He standard deviation (1 for an ordinary layer).
func (n *net) conv(name, x string, cin, out, k, stride, groups int, gain float64) string {
	fanIn := cin / groups * k * k
	w := n.weights(name+".weight", gain*math.Sqrt(2/float64(fanIn)), int64(out), int64(cin/groups), int64(k), int64(k))
	b := n.weights(name+".bias", 0, int64(out))
	p := int64(k / 2)
	return n.b.Op("Conv", name, []string{x, w, b},
		graph.AttrInts("kernel_shape", int64(k), int64(k)), graph.AttrInts("strides", int64(stride), int64(stride)),
		graph.AttrInts("pads", p, p, p, p), graph.AttrInt("group", int64(groups)))
}

// convRelu replaces the current value by relu(conv(x)).
func (n *net) convRelu(name string, out, k, stride int) {
	n.x = n.relu(n.conv(name, n.x, n.c, out, k, stride, 1, 1))
	n.c = out
}

func (n *net) relu(x string) string { return n.b.Op("Relu", "", []string{x}) }

func (n *net) maxPool(k, stride, pad int) {
	n.x = n.b.Op("MaxPool", "maxpool", []string{n.x},
		graph.AttrInts("kernel_shape", int64(k), int64(k)), graph.AttrInts("strides", int64(stride), int64(stride)),
		graph.AttrInts("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
}

// dense adds a hidden Gemm from in to out units, He normal since a ReLU
// follows.
func (n *net) dense(name, x string, in, out int) string {
	std := math.Sqrt(2 / float64(in))
	w := n.weights(name+".weight", std, int64(out), int64(in))
	b := n.weights(name+".bias", 0, int64(out))
	return n.b.Op("Gemm", name, []string{x, w, b}, graph.AttrInt("transB", 1))
}

// classifier pools, flattens and adds the hidden layers (ReLU between)
// and the output layer "logits", Glorot normal.
func (n *net) classifier(hidden ...int) string {
	x := n.b.Op("GlobalAveragePool", "pool", []string{n.x})
	x = n.b.Op("Flatten", "flatten", []string{x}, graph.AttrInt("axis", 1))
	in := n.c
	for i, h := range hidden {
		x = n.relu(n.dense(fmt.Sprintf("fc%d", i), x, in, h))
		in = h
	}
	std := math.Sqrt(2 / float64(in+n.opts.Classes))
	w := n.weights("classifier.weight", std, int64(n.opts.Classes), int64(in))
	b := n.weights("classifier.bias", 0, int64(n.opts.Classes))
	if err := n.b.NodeTo("Gemm", "classifier", []string{x, w, b}, []string{"logits"},
		graph.AttrInt("transB", 1)); err != nil && n.err == nil {
		n.err = err
	}
	return "logits"
}

func smallCNN(n *net) string {
	for i, c := range []int{32, 64, 128, 256} {
		n.convRelu(fmt.Sprintf("conv%d", i), n.ch(c), 3, 2)
	}
	return n.classifier()
}

func vgg16(n *net) string {
	stages := [][]int{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}, {512, 512, 512}}
	for s, convs := range stages {
		for i, c := range convs {
			n.convRelu(fmt.Sprintf("block%d.conv%d", s+1, i+1), n.ch(c), 3, 1)
		}
		n.maxPool(2, 2, 0)
	}
	return n.classifier(n.ch(4096), n.ch(4096))
}

// resnet builds ResNet-18 (basic blocks) or ResNet-50 (bottlenecks,
// stride on the 3x3 convolution as torchvision does).
func resnet(n *net, blocks []int, bottleneck bool) string {
	n.convRelu("stem", n.ch(64), 7, 2)
	n.maxPool(3, 2, 1)
	total := 0
	for _, b := range blocks {
		total += b
	}
	gain := 1 / math.Sqrt(float64(total))
	expansion := 1
	if bottleneck {
		expansion = 4
	}
	for s, count := range blocks {
		mid := n.ch(64 << s)
		out := mid * expansion
		for i := range count {
			stride := 1
			if i == 0 && s > 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", s+1, i)
			shortcut := n.x
			if stride != 1 || n.c != out {
				shortcut = n.conv(name+".downsample", n.x, n.c, out, 1, stride, 1, 1)
			}
			var y string
			if bottleneck {
				y = n.relu(n.conv(name+".conv1", n.x, n.c, mid, 1, 1, 1, 1))
				y = n.relu(n.conv(name+".conv2", y, mid, mid, 3, stride, 1, 1))
				y = n.conv(name+".conv3", y, mid, out, 1, 1, 1, gain)
			} else {
				y = n.relu(n.conv(name+".conv1", n.x, n.c, mid, 3, stride, 1, 1))
				y = n.conv(name+".conv2", y, mid, out, 3, 1, 1, gain)
			}
			n.x = n.relu(n.b.Op("Add", name+".add", []string{y, shortcut}))
			n.c = out
		}
	}
	return n.classifier()
}

// divisible rounds c scaled by the width to a multiple of 8, never down by
// more than 10%, as MobileNetV2's reference code does.
func (n *net) divisible(c int) int {
	v := float64(c) * n.opts.Width
	r := max(8, int(v+4)/8*8)
	if float64(r) < 0.9*v {
		r += 8
	}
	return r
}

func mobileNetV2(n *net) string {
	lo, err1 := n.b.Initializer("relu6.min", []float32{0})
	hi, err2 := n.b.Initializer("relu6.max", []float32{6})
	if err := errors.Join(err1, err2); err != nil {
		n.err = err
		return ""
	}
	relu6 := func(x string) string { return n.b.Op("Clip", "relu6", []string{x, lo, hi}) }

	c := n.divisible(32)
	n.x, n.c = relu6(n.conv("stem", n.x, 3, c, 3, 2, 1, 1)), c
	settings := [][4]int{
		{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
	}
	block := 0
	for _, s := range settings {
		t, out, count, stride := s[0], n.divisible(s[1]), s[2], s[3]
		for i := range count {
			if i > 0 {
				stride = 1
			}
			name := fmt.Sprintf("block%d", block)
			block++
			hidden := n.c * t
			y := n.x
			if t != 1 {
				y = relu6(n.conv(name+".expand", y, n.c, hidden, 1, 1, 1, 1))
			}
			y = relu6(n.conv(name+".depthwise", y, hidden, hidden, 3, stride, hidden, 1))
			// The projection is linear; Glorot-like gain suits it better
			// than He's, and residual sums stay tame.
			y = n.conv(name+".project", y, hidden, out, 1, 1, 1, math.Sqrt(0.5))
			if stride == 1 && n.c == out {
				y = n.b.Op("Add", name+".add", []string{y, n.x})
			}
			n.x, n.c = y, out
		}
	}
	last := max(1280, n.divisible(1280))
	if n.opts.Width < 1 {
		last = n.divisible(1280)
	}
	n.x, n.c = relu6(n.conv("head", n.x, n.c, last, 1, 1, 1, 1)), last
	return n.classifier()
}

// denseNet121 builds DenseNet-121 (growth 32, blocks 6-12-24-16) with
// ReLU-Conv layers in place of BN-ReLU-Conv.
func denseNet121(n *net) string {
	growth := n.ch(32)
	n.convRelu("stem", n.ch(64), 7, 2)
	n.maxPool(3, 2, 1)
	for s, layers := range []int{6, 12, 24, 16} {
		for i := range layers {
			name := fmt.Sprintf("dense%d.%d", s+1, i)
			y := n.relu(n.x)
			y = n.relu(n.conv(name+".conv1", y, n.c, 4*growth, 1, 1, 1, 1))
			y = n.conv(name+".conv2", y, 4*growth, growth, 3, 1, 1, 1)
			n.x = n.b.Op("Concat", name+".concat", []string{n.x, y}, graph.AttrInt("axis", 1))
			n.c += growth
		}
		if s == 3 {
			break
		}
		name := fmt.Sprintf("transition%d", s+1)
		out := max(1, n.c/2)
		y := n.conv(name+".conv", n.relu(n.x), n.c, out, 1, 1, 1, 1)
		n.x = n.b.Op("AveragePool", name+".pool", []string{y},
			graph.AttrInts("kernel_shape", 2, 2), graph.AttrInts("strides", 2, 2))
		n.c = out
	}
	n.x = n.relu(n.x)
	return n.classifier()
}
