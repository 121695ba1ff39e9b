package head_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"stitch/models/graph"
	"stitch/models/graph/graphtest"
	"stitch/models/head"
	"stitch/models/onnxpb"
)

func sigmoid(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }

// checkScores runs model on a batch of 2 and checks for outputs scores per
// image, each a probability after the sigmoid.
func checkScores(t *testing.T, m graphModel, size int64, outputs int) []float32 {
	t.Helper()
	x := graphtest.Input(7, 2, 3, size, size)
	got, shape := graphtest.Run(t, m.model, m.info.Input, m.info.Output, x, 2, 3, size, size)
	if diff := cmp.Diff([]int64{2, int64(outputs)}, shape); diff != "" {
		t.Fatalf("output shape (-want +got)\n%s", diff)
	}
	for i, v := range got {
		if p := sigmoid(v); math.IsNaN(p) || p < 0 || p > 1 {
			t.Errorf("score %d: sigmoid(%g) = %g, not a probability", i, v, p)
		}
	}
	return got
}

type graphModel struct {
	model *onnxpb.ModelProto
	info  head.Info
}

func TestAttachSharedModels(t *testing.T) {
	features := map[string]int{
		"smallcnn": 256, "resnet18": 512, "mobilenet_v2": 1280,
		"squeezenet1_1": 512, "mobilenet_v2_imagenet": 1280,
	}
	for _, name := range graphtest.SharedModelNames {
		t.Run(name, func(t *testing.T) {
			backbone := graphtest.SharedModel(t, name)
			before, _ := graph.Marshal(backbone)
			spec := head.Spec{Hidden: []int{16}, Outputs: 5, Seed: 3}
			m, info, err := head.Attach(backbone, spec)
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := graph.Marshal(backbone); string(after) != string(before) {
				t.Error("Attach changed the backbone")
			}
			if info.FeatureSize != features[name] {
				t.Errorf("feature size %d, want %d", info.FeatureSize, features[name])
			}
			if len(info.HeadParams) != 4 || len(info.BackboneParams) < 5 {
				t.Errorf("params: %d head, %d backbone", len(info.HeadParams), len(info.BackboneParams))
			}
			for _, p := range info.HeadParams {
				if slices.Contains(info.BackboneParams, p) {
					t.Errorf("head parameter %s listed with the backbone's", p)
				}
			}
			if !info.Meta.OutputIsLogits || info.Meta.Input != "input" || info.Meta.Output != "logits" {
				t.Errorf("meta = %+v", info.Meta)
			}
			if meta, ok, err := head.ReadMeta(m); !ok || err != nil || !cmp.Equal(meta, info.Meta) {
				t.Errorf("ReadMeta = %+v, %v, %v; want %+v", meta, ok, err, info.Meta)
			}

			// The same spec gives the same bytes.
			again, _, err := head.Attach(backbone, spec)
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := graph.Marshal(m)
			b2, _ := graph.Marshal(again)
			if string(b1) != string(b2) {
				t.Error("Attach is not deterministic")
			}

			size := int64(64)
			if name == "mobilenet_v2_imagenet" {
				size = 96 // dynamic height and width: any size runs
			} else if name != "smallcnn" {
				size = 112
			}
			checkScores(t, graphModel{m, info}, size, 5)
		})
	}
}

func TestAttachPreprocessing(t *testing.T) {
	_, info, err := head.Attach(graphtest.SharedModel(t, "mobilenet_v2_imagenet"), head.Spec{Outputs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if info.Meta.Scale != 127.5 || info.Meta.Mean != [3]float32{1, 1, 1} || info.Meta.Height != 0 {
		t.Errorf("tf2onnx preprocessing = %+v, want scale 127.5, mean 1, no fixed size", info.Meta)
	}
	_, info, err = head.Attach(graphtest.SharedModel(t, "resnet18"), head.Spec{Outputs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if info.Meta.Scale != 255 || info.Meta.Mean != head.ImageNetMean || info.Meta.Height != 112 {
		t.Errorf("torchvision preprocessing = %+v, want scale 255, ImageNet mean, 112 px", info.Meta)
	}
}

func TestAttachNamedCut(t *testing.T) {
	backbone := graphtest.SharedModel(t, "resnet18")
	m, info, err := head.Attach(backbone, head.Spec{Outputs: 4, Cut: "/layer4/layer4.0/relu_1/Relu_output_0"})
	if err != nil {
		t.Fatal(err)
	}
	if info.FeatureSize != 512 {
		t.Errorf("feature size %d, want 512", info.FeatureSize)
	}
	checkScores(t, graphModel{m, info}, 112, 4)
	_, _, err = head.Attach(backbone, head.Spec{Outputs: 4, Cut: "no-such-value"})
	if err == nil {
		t.Error("Attach accepted a cut point that does not exist")
	}
}

func TestAttachNoImageInput(t *testing.T) {
	b := graph.New("tabular")
	x := b.Input("x", graph.Float, []int64{-1, 3}, "batch")
	b.Output(b.Op("Relu", "", []string{x}), graph.Float, []int64{-1, 3}, "batch")
	_, _, err := head.Attach(b.Model, head.Spec{Outputs: 2})
	if !errors.Is(err, head.ErrNoImageInput) {
		t.Errorf("Attach on a model without an image input = %v, want ErrNoImageInput", err)
	}
}

func TestReplaceOutput(t *testing.T) {
	backbone := graphtest.SharedModel(t, "smallcnn")
	m, info, err := head.Attach(backbone, head.Spec{Hidden: []int{8}, Outputs: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	replaced, rinfo, err := head.ReplaceOutput(m, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkScores(t, graphModel{replaced, rinfo}, 64, 3)

	// Everything but the last layer is kept: the hidden layer's weights
	// are the same tensors.
	old := graph.Initializers(m.Graph)
	now := graph.Initializers(replaced.Graph)
	for _, p := range info.HeadParams[:2] {
		if !cmp.Equal(old[p].GetRawData(), now[p].GetRawData()) {
			t.Errorf("hidden layer parameter %s changed", p)
		}
	}
	if len(rinfo.HeadParams) != 2 || len(rinfo.BackboneParams) != len(info.BackboneParams)+2 {
		t.Errorf("params: head %v, %d backbone (was %d)", rinfo.HeadParams,
			len(rinfo.BackboneParams), len(info.BackboneParams))
	}
	// A torchvision classifier is such a Gemm too; SqueezeNet's is not.
	if _, _, err := head.ReplaceOutput(backbone, 3, 1); err != nil {
		t.Errorf("ReplaceOutput on smallcnn: %v", err)
	}
	if _, _, err := head.ReplaceOutput(graphtest.SharedModel(t, "squeezenet1_1"), 3, 1); err == nil {
		t.Error("ReplaceOutput on squeezenet1_1 (Conv classifier) succeeded")
	}
}

// checkCategoryLogits runs model on a batch of 2 and checks its category
// output: [2, categories] finite logits.
func checkCategoryLogits(t *testing.T, m *onnxpb.ModelProto, input string, size int64, categories int) {
	t.Helper()
	x := graphtest.Input(9, 2, 3, size, size)
	got, shape := graphtest.Run(t, m, input, head.CategoryOutputName, x, 2, 3, size, size)
	if diff := cmp.Diff([]int64{2, int64(categories)}, shape); diff != "" {
		t.Fatalf("category output shape (-want +got)\n%s", diff)
	}
	for i, v := range got {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Errorf("category logit %d = %v", i, v)
		}
	}
}

func TestAttachCategories(t *testing.T) {
	backbone := graphtest.SharedModel(t, "smallcnn")
	spec := head.Spec{Hidden: []int{16}, Outputs: 5, Seed: 3}
	plain, plainInfo, err := head.Attach(backbone, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Categories = 7
	m, info, err := head.Attach(backbone, spec)
	if err != nil {
		t.Fatal(err)
	}
	if info.CategoryOutput != head.CategoryOutputName || info.Meta.CategoryOutput != head.CategoryOutputName {
		t.Errorf("category output %q, meta %q; want %q", info.CategoryOutput, info.Meta.CategoryOutput,
			head.CategoryOutputName)
	}
	if len(info.CategoryParams) != 2 || !slices.Equal(info.HeadParams[4:], info.CategoryParams) ||
		!slices.Equal(info.HeadParams[:4], plainInfo.HeadParams) {
		t.Errorf("head params %v, category params %v", info.HeadParams, info.CategoryParams)
	}
	if !slices.Equal(info.BackboneParams, plainInfo.BackboneParams) {
		t.Errorf("backbone params changed with a category head")
	}
	var outs []string
	for _, o := range m.Graph.Output {
		outs = append(outs, o.GetName())
	}
	if !slices.Equal(outs, []string{head.OutputName, head.CategoryOutputName}) {
		t.Errorf("graph outputs %v", outs)
	}

	// The category layer reads the features the attribute head reads, and
	// adding it leaves the attribute head's initial weights as they were.
	inits := graph.Initializers(m.Graph)
	if dims := inits[info.CategoryParams[0]].GetDims(); !slices.Equal(dims, []int64{7, int64(info.FeatureSize)}) {
		t.Errorf("category weight shape %v, want [7 %d]", dims, info.FeatureSize)
	}
	if gemm := graph.Producers(m.Graph)[head.CategoryOutputName]; gemm == nil || gemm.Input[0] != info.Features {
		t.Errorf("category layer %v does not read the features %s", gemm, info.Features)
	}
	plainInits := graph.Initializers(plain.Graph)
	for _, p := range plainInfo.HeadParams {
		if !cmp.Equal(plainInits[p].GetRawData(), inits[p].GetRawData()) {
			t.Errorf("attribute head parameter %s differs with a category head", p)
		}
	}
	want := checkScores(t, graphModel{plain, plainInfo}, 64, 5)
	if got := checkScores(t, graphModel{m, info}, 64, 5); !cmp.Equal(got, want) {
		t.Errorf("attribute logits differ with a category head: %v, want %v", got, want)
	}
	checkCategoryLogits(t, m, info.Input, 64, 7)

	// ReplaceOutput keeps the category head and says so.
	replaced, rinfo, err := head.ReplaceOutput(m, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if rinfo.CategoryOutput != head.CategoryOutputName || !slices.Equal(rinfo.CategoryParams, info.CategoryParams) {
		t.Errorf("ReplaceOutput: category output %q, params %v", rinfo.CategoryOutput, rinfo.CategoryParams)
	}
	for _, p := range info.CategoryParams {
		if slices.Contains(rinfo.BackboneParams, p) {
			t.Errorf("ReplaceOutput lists category parameter %s with the backbone's", p)
		}
	}
	checkScores(t, graphModel{replaced, rinfo}, 64, 3)
	checkCategoryLogits(t, replaced, rinfo.Input, 64, 7)
}

func TestReplaceCategories(t *testing.T) {
	backbone := graphtest.SharedModel(t, "smallcnn")
	// Two hidden layers: the features are found by walking back through
	// all of them.
	m, info, err := head.Attach(backbone, head.Spec{Hidden: []int{8, 4}, Outputs: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	added, ainfo, err := head.ReplaceCategories(m, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ainfo.Features != info.Features || ainfo.FeatureSize != info.FeatureSize {
		t.Errorf("features %s (%d), want %s (%d)", ainfo.Features, ainfo.FeatureSize, info.Features, info.FeatureSize)
	}
	if !slices.Equal(ainfo.HeadParams, ainfo.CategoryParams) || len(ainfo.CategoryParams) != 2 {
		t.Errorf("head params %v, category params %v: want the new layer's", ainfo.HeadParams, ainfo.CategoryParams)
	}
	if !slices.Equal(ainfo.BackboneParams, append(slices.Clone(info.BackboneParams), info.HeadParams...)) {
		t.Errorf("backbone params %v: want the old model's", ainfo.BackboneParams)
	}
	meta, _, err := head.ReadMeta(added)
	if err != nil || meta.CategoryOutput != head.CategoryOutputName {
		t.Errorf("metadata %+v, %v: want the category output named", meta, err)
	}
	want := checkScores(t, graphModel{m, info}, 64, 5)
	if got := checkScores(t, graphModel{added, ainfo}, 64, 5); !cmp.Equal(got, want) {
		t.Error("adding a category head changed the attribute logits")
	}
	checkCategoryLogits(t, added, ainfo.Input, 64, 6)

	// Replacing it gives a fresh layer of the new width and no leftover.
	again, rinfo, err := head.ReplaceCategories(added, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkCategoryLogits(t, again, rinfo.Input, 64, 3)
	if n := len(again.Graph.Initializer); n != len(added.Graph.Initializer) {
		t.Errorf("%d initializers after replacing the category layer, had %d", n, len(added.Graph.Initializer))
	}

	// Zero categories removes it, back to the attribute-only model.
	removed, dinfo, err := head.ReplaceCategories(again, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed.Graph.Output) != 1 || dinfo.CategoryOutput != "" || len(dinfo.HeadParams) != 0 ||
		len(removed.Graph.Initializer) != len(m.Graph.Initializer) {
		t.Errorf("after removal: outputs %d, category output %q, head params %v, %d initializers (want %d)",
			len(removed.Graph.Output), dinfo.CategoryOutput, dinfo.HeadParams,
			len(removed.Graph.Initializer), len(m.Graph.Initializer))
	}
	if _, _, err := head.ReplaceCategories(backbone, 3, 1); err == nil {
		t.Error("ReplaceCategories on a backbone without a stitch head succeeded")
	}
}
