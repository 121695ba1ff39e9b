//go:build stitchtest

package main

import (
	"stitch/internal/testkinds"
	"stitch/pipeline"
)

// testKinds adds the engine's test kinds to binaries built with
// -tags stitchtest, which the end-to-end tests (SIGKILL, concurrent runs)
// build; the normal binary never lists them.
func testKinds() []pipeline.Kind { return testkinds.All(nil) }
