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
