// Package ort runs ONNX models on ONNX Runtime. It is the only package of
// stitch that talks to the runtime (through github.com/yalue/onnxruntime_go,
// which uses cgo); everything else hands it ONNX bytes and tensors.
//
// The shared library is found through the STITCH_ORT_LIB environment
// variable, else as .cache/onnxruntime/libonnxruntime.so.1 in the folder of
// the executable, the working directory, or any folder above them (where
// `make` puts it). Execution provider and thread count are runtime choices:
// they never enter a cache key.
package ort

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	onnxruntime "github.com/yalue/onnxruntime_go"
)

// EnvLibrary names the environment variable that points at the library.
const EnvLibrary = "STITCH_ORT_LIB"

// defaultLibrary is where `make ort` puts the CPU build of the library.
var defaultLibrary = filepath.Join(".cache", "onnxruntime", "libonnxruntime.so.1")

// ErrNoLibrary reports that the ONNX Runtime shared library was not found.
var ErrNoLibrary = errors.New("ONNX Runtime library not found: set " + EnvLibrary +
	" to libonnxruntime.so.1, or run `make ort` in the stitch checkout " +
	"(it takes bin/napi-v6/linux/x64/libonnxruntime.so.1 from the npm package onnxruntime-node@1.24.3)")

// ErrNoCUDA reports that the loaded library has no CUDA execution provider.
var ErrNoCUDA = errors.New("the CUDA execution provider is not available in this ONNX Runtime library " +
	"(the npm build is CPU-only): point " + EnvLibrary + " at libonnxruntime.so from ONNX Runtime's " +
	"GPU release (onnxruntime-linux-x64-gpu-1.24.x) with CUDA 12 and cuDNN 9 installed, " +
	"or allow falling back to the CPU")

// Value is a tensor handed to or returned by the runtime.
type Value = onnxruntime.Value

// Tensor is a typed tensor whose Go slice the runtime reads and writes in place.
type Tensor[T onnxruntime.TensorData] = onnxruntime.Tensor[T]

// Shape is a tensor shape.
type Shape = onnxruntime.Shape

var (
	initOnce sync.Once
	initErr  error
	libPath  string
)

// Init loads the library and creates the runtime environment, once per
// process. Later calls return the first result.
func Init() error {
	initOnce.Do(func() {
		libPath, initErr = FindLibrary()
		if initErr != nil {
			return
		}
		onnxruntime.SetSharedLibraryPath(libPath)
		if err := onnxruntime.InitializeEnvironment(onnxruntime.WithLogLevelError()); err != nil {
			initErr = fmt.Errorf("initialise ONNX Runtime from %s: %w", libPath, err)
		}
	})
	return initErr
}

// LibraryPath returns the library Init loaded ("" before Init).
func LibraryPath() string { return libPath }

// FindLibrary returns the path of the shared library, or ErrNoLibrary.
func FindLibrary() (string, error) {
	if p := os.Getenv(EnvLibrary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvLibrary, p, err)
		}
		return p, nil
	}
	var starts []string
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			candidate := filepath.Join(dir, defaultLibrary)
			if _, err := os.Stat(candidate); err == nil {
				return candidate, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", ErrNoLibrary
}

// Options chooses where and how a session runs.
type Options struct {
	// Provider is "cpu" (the default) or "cuda".
	Provider string
	// DeviceID is the CUDA device.
	DeviceID int
	// Threads is the intra-op thread count; 0 means all cores.
	Threads int
	// FallbackCPU makes a missing CUDA provider a logged fall back to the
	// CPU instead of an error.
	FallbackCPU bool
	Logger      *slog.Logger
}

// Session is an ONNX Runtime session over one model with fixed input and
// output names. It is reused across batches; Close frees it.
type Session struct {
	session  *onnxruntime.DynamicAdvancedSession
	Inputs   []string
	Outputs  []string
	Provider string
}

// Provider returns the execution provider a session with opts runs on:
// "cuda" when CUDA is asked for and this library has it, else "cpu" (CUDA
// asked for without it is ErrNoCUDA unless opts.FallbackCPU). It lets a
// caller shape its graphs for where they will run before opening them.
func Provider(opts Options) (string, error) {
	if err := Init(); err != nil {
		return "", err
	}
	opts.Logger = nil // the session opened later reports a fall back
	so, provider, err := sessionOptions(opts)
	if err != nil {
		return "", err
	}
	if err := so.Destroy(); err != nil {
		return "", fmt.Errorf("session options: %w", err)
	}
	return provider, nil
}

// NewSession compiles model for the given input and output names.
func NewSession(model []byte, inputs, outputs []string, opts Options) (*Session, error) {
	return NewSessionWithConfig(model, inputs, outputs, opts, nil)
}

func sessionOptions(opts Options) (*onnxruntime.SessionOptions, string, error) {
	so, err := onnxruntime.NewSessionOptions()
	if err != nil {
		return nil, "", fmt.Errorf("session options: %w", err)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		so.Destroy()
		return nil, "", fmt.Errorf("session options: threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		so.Destroy()
		return nil, "", fmt.Errorf("session options: threads: %w", err)
	}
	switch strings.ToLower(opts.Provider) {
	case "", "cpu":
		return so, "cpu", nil
	case "cuda":
		err := appendCUDA(so, opts.DeviceID)
		if err == nil {
			return so, "cuda", nil
		}
		if !opts.FallbackCPU {
			so.Destroy()
			return nil, "", err
		}
		// Once per process and reason: a training stage opens several
		// sessions, and each would say the same.
		if opts.Logger != nil {
			if _, said := cudaWarned.LoadOrStore(err.Error(), true); !said {
				opts.Logger.Warn("CUDA unavailable, running on the CPU", "err", err)
			}
		}
		return so, "cpu", nil
	default:
		so.Destroy()
		return nil, "", fmt.Errorf("unknown execution provider %q (want cpu or cuda)", opts.Provider)
	}
}

// cudaWarned holds the reasons for a CPU fallback already logged.
var cudaWarned sync.Map

func appendCUDA(so *onnxruntime.SessionOptions, device int) error {
	cuda, err := onnxruntime.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCUDA, err)
	}
	defer cuda.Destroy()
	if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return fmt.Errorf("%w: %v", ErrNoCUDA, err)
	}
	if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
		return fmt.Errorf("%w: %v", ErrNoCUDA, err)
	}
	return nil
}

// Run runs the session. inputs follow s.Inputs; outputs follow s.Outputs,
// and a nil entry is allocated by the runtime (the caller destroys it).
func (s *Session) Run(inputs, outputs []Value) error {
	if err := s.session.Run(inputs, outputs); err != nil {
		return fmt.Errorf("run ONNX Runtime session: %w", err)
	}
	return nil
}

// Close frees the session.
func (s *Session) Close() error {
	if s.session == nil {
		return nil
	}
	err := s.session.Destroy()
	s.session = nil
	return err
}

// NewTensor wraps data (not copied) as a float32 tensor of the given shape.
func NewTensor(data []float32, shape ...int64) (*Tensor[float32], error) {
	if err := Init(); err != nil {
		return nil, err
	}
	t, err := onnxruntime.NewTensor(onnxruntime.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("tensor %v: %w", shape, err)
	}
	return t, nil
}

// NewEmptyTensor allocates a zeroed tensor.
func NewEmptyTensor[T onnxruntime.TensorData](shape ...int64) (*Tensor[T], error) {
	if err := Init(); err != nil {
		return nil, err
	}
	t, err := onnxruntime.NewEmptyTensor[T](onnxruntime.NewShape(shape...))
	if err != nil {
		return nil, fmt.Errorf("tensor %v: %w", shape, err)
	}
	return t, nil
}

// IOInfo describes one input or output of a model.
type IOInfo struct {
	Name  string
	Shape []int64
	// Type is the element type, e.g. "float32".
	Type string
}

// Describe returns the inputs and outputs ONNX Runtime sees in model.
func Describe(model []byte) (inputs, outputs []IOInfo, err error) {
	if err := Init(); err != nil {
		return nil, nil, err
	}
	in, out, err := onnxruntime.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, nil, fmt.Errorf("read model inputs and outputs: %w", err)
	}
	conv := func(infos []onnxruntime.InputOutputInfo) []IOInfo {
		res := make([]IOInfo, len(infos))
		for i, info := range infos {
			res[i] = IOInfo{Name: info.Name, Shape: info.Dimensions, Type: info.DataType.String()}
		}
		return res
	}
	return conv(in), conv(out), nil
}
