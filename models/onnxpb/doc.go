// Package onnxpb holds the Go protocol-buffer types of the ONNX model format
// (ModelProto, GraphProto, NodeProto, TensorProto, ...).
//
// onnx.pb.go is generated, not written: it comes from the onnx.proto that
// Debian's python3-onnx 1.12 installs (IR version 8, opset 17), with the
// comments stripped, compiled by protoc 3.21 and protoc-gen-go v1.36.12:
//
//	sed -e 's#//.*$##' /usr/lib/python3/dist-packages/onnx/onnx.proto > onnx.proto
//	protoc --go_out=. --go_opt=Monnx.proto=stitch/models/onnxpb \
//	    --go_opt=paths=source_relative onnx.proto
package onnxpb
