//go:build !stitchtest

package main

import "stitch/pipeline"

// testKinds is empty in the normal binary; see kinds_stitchtest.go.
func testKinds() []pipeline.Kind { return nil }
