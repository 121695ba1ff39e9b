# stitch: the two commands a new user needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/stitch
ORT_LIB := .cache/onnxruntime/libonnxruntime.so.1
DEMO_DATA ?= out/demo-data

.PHONY: all build ort demo test test-short bench clean

all: build

# The ONNX Runtime shared library (CPU build from npm), fetched once.
ort: $(ORT_LIB)
$(ORT_LIB):
	scripts/fetch-onnxruntime.sh

build: ort
	$(GO) build -o $(BIN) ./cmd/stitch

# Generates a small synthetic dataset (once) and runs pipelines/demo.yaml end
# to end. A second `make demo` reruns nothing and prints the table again.
demo: build
	@if [ ! -f $(DEMO_DATA)/Anno/list_attr_img.txt ]; then \
		$(BIN) synth --out $(DEMO_DATA) --n 600 --seed 1; fi
	$(BIN) run pipelines/demo.yaml --set data=$(DEMO_DATA)

test: ort
	$(GO) vet ./...
	$(GO) test -timeout 40m ./...

test-short: ort
	$(GO) test -short ./...

# Benchmarks of every issue, then a summary table (scripts/bench.sh).
bench: build
	scripts/bench.sh

clean:
	rm -rf bin out
