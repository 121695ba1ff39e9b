// Package graph reads, builds, edits and writes ONNX models in Go.
//
// It works on the generated protobuf types of package onnxpb (onnx.proto is
// proto2, so scalar fields are pointers: use the Get methods to read them and
// the helpers here to set them). The package does not talk to ONNX Runtime.
//
// Contracts:
//   - Parse and Read reject bytes that are not an ONNX model with an error
//     wrapping ErrNotONNX; Marshal is deterministic: the same model gives the
//     same bytes.
//   - A Builder creates or edits one model: every name it hands out is unique
//     in the graph (node outputs, initializers, inputs, node names), new
//     models are IR version 8 with opset 17 of the default domain.
//   - TopoSort keeps the file's order among nodes that are ready together,
//     so the result is the same on every run; a cycle is an error that names
//     a node on it.
//   - InferShapes knows the operators of the model zoo and of common
//     torchvision and tf2onnx exports; unknown dimensions (a symbolic batch,
//     a dynamic height) are -1, and an operator it does not know is an error
//     naming the node.
package graph
