package tabulate

import (
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestReportRendersInChromium opens the HTML report in headless Chromium,
// takes a screenshot and checks that the page is not blank and that the
// experiments' bar colours are on it. Without chromium the test skips,
// unless CI is set: CI installs chromium, so there a missing one is a
// failure rather than a silent skip.
func TestReportRendersInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not on PATH with CI=%q set: install Debian's chromium package", os.Getenv("CI"))
		}
		t.Skip("chromium not on PATH (apt-get install chromium); set CI to make this a failure")
	}
	if testing.Short() {
		t.Skip("starts a browser")
	}
	run := newTabulateRun(t)
	if err := New().Run(t.Context(), run, NewParams()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, output(t, run, "html"), 0o644); err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(dir, "out.png")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--screenshot="+shot, "--window-size=1200,1600", "file://"+page)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	colours := countColours(img)
	if len(colours) < 50 {
		t.Errorf("screenshot has %d distinct colours, want at least 50: the page looks blank", len(colours))
	}
	// The bars are solid rectangles in the first experiments' colours.
	for _, hex := range palette[:2] {
		rgb, _ := strconv.ParseUint(hex[1:], 16, 32)
		if n := colours[uint32(rgb)]; n < 200 {
			t.Errorf("colour %s covers %d pixels, want at least 200 (the per-type bars)", hex, n)
		}
	}
}

// countColours counts pixels per 0xRRGGBB colour.
func countColours(img image.Image) map[uint32]int {
	counts := map[uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[(r>>8)<<16|(g>>8)<<8|bl>>8]++
		}
	}
	return counts
}
