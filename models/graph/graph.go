package graph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/proto"

	"stitch/models/onnxpb"
)

// Versions written into new models: ONNX Runtime 1.24 reads both, and the
// generated onnxpb types describe exactly this IR version.
const (
	IRVersion = 8
	Opset     = 17
)

// ErrNotONNX reports bytes that do not decode as an ONNX model with a graph.
var ErrNotONNX = errors.New("not an ONNX model")

// Read reads the ONNX model in the file at path.
func Read(path string) (*onnxpb.ModelProto, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ONNX model: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read ONNX model %s: %w", path, err)
	}
	return m, nil
}

// Parse decodes an ONNX model. Bytes that are not a protobuf, or a protobuf
// without a graph and an IR version, give an error wrapping ErrNotONNX:
// protobuf decoding accepts many random byte strings, so the check on the
// content is what tells a model from a stray file.
func Parse(data []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotONNX, err)
	}
	if m.IrVersion == nil || m.Graph == nil || len(m.Graph.Node) == 0 {
		return nil, fmt.Errorf("%w: no IR version or no graph nodes", ErrNotONNX)
	}
	return m, nil
}

// Marshal encodes m. The encoding is deterministic.
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode ONNX model %s: %w", m.GetGraph().GetName(), err)
	}
	return data, nil
}

// Write encodes m into the file at path, through a temporary file renamed
// into place so a reader never sees half a model.
func Write(path string, m *onnxpb.ModelProto) error {
	data, err := Marshal(m)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write ONNX model %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write ONNX model %s: %w", path, err)
	}
	return nil
}

// Clone returns a deep copy of m.
func Clone(m *onnxpb.ModelProto) *onnxpb.ModelProto {
	return proto.Clone(m).(*onnxpb.ModelProto)
}

// Element types of TensorProto.data_type used by stitch.
const (
	Float = int32(onnxpb.TensorProto_FLOAT)
	Int64 = int32(onnxpb.TensorProto_INT64)
)

// InitializerFloats returns the values of a float32 tensor, stored either
// as raw_data (little-endian) or as float_data.
func InitializerFloats(t *onnxpb.TensorProto) ([]float32, error) {
	if t.GetDataType() != Float {
		return nil, fmt.Errorf("tensor %s: data type %s, want FLOAT",
			t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %s: external data is not supported", t.GetName())
	}
	n := NumElements(t.GetDims())
	if raw := t.GetRawData(); raw != nil {
		if len(raw) != 4*n {
			return nil, fmt.Errorf("tensor %s: %d raw bytes for %d floats", t.GetName(), len(raw), n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	if len(t.GetFloatData()) != n {
		return nil, fmt.Errorf("tensor %s: %d floats for shape %v", t.GetName(), len(t.GetFloatData()), t.GetDims())
	}
	return append([]float32(nil), t.GetFloatData()...), nil
}

// InitializerInt64s returns the values of an int64 tensor (raw_data or
// int64_data), as Reshape shapes and Clip bounds use them.
func InitializerInt64s(t *onnxpb.TensorProto) ([]int64, error) {
	if t.GetDataType() != Int64 {
		return nil, fmt.Errorf("tensor %s: data type %s, want INT64",
			t.GetName(), onnxpb.TensorProto_DataType(t.GetDataType()))
	}
	n := NumElements(t.GetDims())
	if raw := t.GetRawData(); raw != nil {
		if len(raw) != 8*n {
			return nil, fmt.Errorf("tensor %s: %d raw bytes for %d int64s", t.GetName(), len(raw), n)
		}
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return out, nil
	}
	if len(t.GetInt64Data()) != n {
		return nil, fmt.Errorf("tensor %s: %d int64s for shape %v", t.GetName(), len(t.GetInt64Data()), t.GetDims())
	}
	return append([]int64(nil), t.GetInt64Data()...), nil
}

// FloatTensor returns a float32 tensor named name holding data (copied, as
// raw_data: the compact form exporters use) with the given shape.
func FloatTensor(name string, data []float32, shape ...int64) (*onnxpb.TensorProto, error) {
	if NumElements(shape) != len(data) {
		return nil, fmt.Errorf("tensor %s: %d values for shape %v", name, len(data), shape)
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &onnxpb.TensorProto{
		Name: proto.String(name), Dims: append([]int64{}, shape...),
		DataType: proto.Int32(Float), RawData: raw,
	}, nil
}

// Int64Tensor returns an int64 tensor named name holding data.
func Int64Tensor(name string, data []int64, shape ...int64) (*onnxpb.TensorProto, error) {
	if NumElements(shape) != len(data) {
		return nil, fmt.Errorf("tensor %s: %d values for shape %v", name, len(data), shape)
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &onnxpb.TensorProto{
		Name: proto.String(name), Dims: append([]int64{}, shape...),
		DataType: proto.Int32(Int64), RawData: raw,
	}, nil
}

// NumElements is the product of dims (1 for a scalar).
func NumElements(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// Metadata returns the value of the metadata_props entry key of m.
func Metadata(m *onnxpb.ModelProto, key string) (string, bool) {
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == key {
			return p.GetValue(), true
		}
	}
	return "", false
}

// SetMetadata sets the metadata_props entry key of m to value, replacing
// an earlier one in place so the order of entries stays stable.
func SetMetadata(m *onnxpb.ModelProto, key, value string) {
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == key {
			p.Value = proto.String(value)
			return
		}
	}
	m.MetadataProps = append(m.MetadataProps,
		&onnxpb.StringStringEntryProto{Key: proto.String(key), Value: proto.String(value)})
}

// TensorShape returns the element type and dims of a value info; symbolic
// or missing dims are -1. ok is false when the value is not a tensor.
func TensorShape(v *onnxpb.ValueInfoProto) (elem int32, dims []int64, ok bool) {
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return 0, nil, false
	}
	for _, d := range tt.GetShape().GetDim() {
		if dv, isValue := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); isValue {
			dims = append(dims, dv.DimValue)
		} else {
			dims = append(dims, -1)
		}
	}
	return tt.GetElemType(), dims, true
}

// ValueInfo returns a tensor value info. A dim of -1 is written as the
// symbolic dim named by the matching entry of params ("batch", "height"),
// or left unnamed when params is short.
func ValueInfo(name string, elem int32, dims []int64, params ...string) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for i, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch {
		case d >= 0:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		case i < len(params) && params[i] != "":
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: params[i]}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(elem), Shape: shape},
		}},
	}
}
