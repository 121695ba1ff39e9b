package head

import (
	"encoding/json"
	"fmt"
	"strings"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// MetaKey is the metadata_props key that holds the JSON of
// artifacts.ModelMeta in models stitch writes.
const MetaKey = "stitch.meta"

// WriteMeta stores meta in m's metadata_props under MetaKey.
func WriteMeta(m *onnxpb.ModelProto, meta artifacts.ModelMeta) error {
	data, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("write model metadata: %w", err)
	}
	graph.SetMetadata(m, MetaKey, string(data))
	return nil
}

// ReadMeta returns the metadata stored under MetaKey; ok is false when m
// has none.
func ReadMeta(m *onnxpb.ModelProto) (meta artifacts.ModelMeta, ok bool, err error) {
	value, ok := graph.Metadata(m, MetaKey)
	if !ok {
		return meta, false, nil
	}
	if err := json.Unmarshal([]byte(value), &meta); err != nil {
		return meta, true, fmt.Errorf("read model metadata %s: %w", MetaKey, err)
	}
	return meta, true, nil
}

// ImageNet statistics that torchvision models expect, on pixels scaled to
// [0, 1].
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Preprocessing guesses how a backbone wants its pixels: the model's own
// stitch metadata when it has some; [-1, 1] scaling for TensorFlow
// conversions (their producer or an "input" note saying 127.5); else
// torchvision's ImageNet normalisation, the common case.
func Preprocessing(m *onnxpb.ModelProto) (scale float32, mean, std [3]float32) {
	if meta, ok, err := ReadMeta(m); ok && err == nil && meta.Scale != 0 {
		return meta.Scale, meta.Mean, meta.Std
	}
	note, _ := graph.Metadata(m, "input")
	producer := strings.ToLower(m.GetProducerName())
	if strings.Contains(note, "127.5") || strings.Contains(producer, "tf") ||
		strings.Contains(producer, "keras") {
		// x = (p/127.5 - 1) / 1 = (p - 127.5) / 127.5
		return 127.5, [3]float32{1, 1, 1}, [3]float32{1, 1, 1}
	}
	return 255, ImageNetMean, ImageNetStd
}
