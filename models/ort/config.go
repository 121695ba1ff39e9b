package ort

import (
	"fmt"
	"sort"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// NewSessionWithConfig is NewSession with extra session configuration
// entries (ONNX Runtime's onnxruntime_session_options_config_keys.h),
// applied in key order. With "session.load_config_from_model" = "1" the
// runtime also reads session options from the model's "ort_config"
// metadata, which is how a profile can be switched on from Go, since the
// binding does not expose EnableProfiling.
func NewSessionWithConfig(model []byte, inputs, outputs []string, opts Options,
	config map[string]string) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	so, provider, err := sessionOptions(opts)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := so.AddSessionConfigEntry(k, config[k]); err != nil {
			return nil, fmt.Errorf("session option %s=%s: %w", k, config[k], err)
		}
	}
	s, err := onnxruntime.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("create ONNX Runtime session: %w", err)
	}
	return &Session{session: s, Inputs: inputs, Outputs: outputs, Provider: provider}, nil
}
