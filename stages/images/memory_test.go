package images_test

import (
	"fmt"
	"image"
	"image/color"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"stitch/pipeline/pipelinetest"
	"stitch/stages/images"
)

// TestMemoryStaysBounded materialises 3000 images of 64 x 64 px, 35 MB of
// pixels, and samples the heap while it runs.
//
// The bound: a stage that collected the table before writing it would
// hold at least its 35 MB of pixels. Streaming holds the batch being built
// (256 rows, 3 MB, in a buffer rounded up to 4 MB), the batch just written
// until the collector frees it, a few decoded rows per worker and one
// PNG decoder's buffers per worker: about 10 MB measured, the same for
// 600 or 3000 images. Half the table leaves room for that and still fails
// any implementation that holds the whole table.
func TestMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 3000 files")
	}
	const n, side = 3000, 64
	root := t.TempDir()
	var files [16][]byte
	for i := range files {
		c := color.NRGBA{uint8(16 * i), 128, uint8(255 - 16*i), 255}
		files[i] = encodePNG(t, framed(side, side, c, c, image.Rectangle{}))
	}
	var rows []row
	for i := range n {
		name := fmt.Sprintf("img/%04d.png", i)
		writeFile(t, root, name, files[i%len(files)])
		rows = append(rows, row{image: name})
	}
	in := samplesOf(root, "train", rows)
	p := images.NewParams()
	p.ImageSize = images.Size{side, side}
	tableBytes := uint64(n * side * side * 3)

	run := pipelinetest.NewRun(t, "images-test")
	inID, err := run.St.PutSamples(in)
	if err != nil {
		t.Fatal(err)
	}
	run.Bind("samples", inID)

	// A low GOGC makes the heap follow what is live, so the peak measures
	// what the stage holds rather than when the collector last ran.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
	})
	err = images.New().Run(t.Context(), run, p)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}

	id, err := run.Output("images")
	if err != nil {
		t.Fatal(err)
	}
	sizes := batchSizes(t, run.St, id)
	if len(sizes) != (n+255)/256 || sizes[0] != 256 || sizes[len(sizes)-1] != int64(n%256) {
		t.Errorf("record batches of %v rows, want 256 per batch", sizes)
	}
	grown := int64(peak) - int64(before.HeapAlloc)
	t.Logf("heap before %.1f MB, peak %.1f MB, table %.1f MB",
		mb(before.HeapAlloc), mb(peak), mb(tableBytes))
	if grown > int64(tableBytes/2) {
		t.Errorf("heap grew by %.1f MB while writing a %.1f MB table, want at most half of it",
			mb(uint64(grown)), mb(tableBytes))
	}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }
