package ort

import (
	"fmt"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// TensorData is an element type the runtime can hold in a Tensor.
type TensorData = onnxruntime.TensorData

// NewTensorOf wraps data (not copied) as a tensor of the given shape and of
// data's element type; float64 tensors serve gradient checks, for instance.
func NewTensorOf[T onnxruntime.TensorData](data []T, shape ...int64) (*Tensor[T], error) {
	if err := Init(); err != nil {
		return nil, err
	}
	t, err := onnxruntime.NewTensor(onnxruntime.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("tensor %v: %w", shape, err)
	}
	return t, nil
}
