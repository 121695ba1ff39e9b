package images

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"stitch/artifacts"
	"stitch/pipeline"
	"stitch/stages/pixels"
)

// Bounds on the memory one run holds, whatever the partition's size.
const (
	// maxBatchRows is the most rows in one record batch of the images
	// table: small enough to bound memory, large enough that readers
	// (polars, DuckDB) do not pay a per-batch cost per handful of rows.
	maxBatchRows = 256
	// maxBatchBytes caps a batch's pixels for large image sizes: 222 rows
	// at 224 x 224, 42 at 512 x 512.
	maxBatchBytes = 32 << 20
)

// BatchRows returns the rows per record batch for images of size: at
// most 256, and at most 32 MiB of pixels, but at least 1.
func BatchRows(size Size) int {
	rowBytes := 3 * size[0] * size[1]
	return max(1, min(maxBatchRows, maxBatchBytes/max(1, rowBytes)))
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	p := params.(*Params)
	store := run.Store()
	inID, ok := run.Input("samples")
	if !ok {
		return errors.New("input samples is required")
	}
	in, err := store.GetSamples(inID)
	if err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	if in.Pixels != nil {
		return fmt.Errorf("input %s is an images table already; give it a samples table", inID.Short())
	}

	m := &materialiser{run: run, p: p, in: in}
	head := in.EmptyLike()
	head.Pixels, head.Height, head.Width = [][]byte{}, p.ImageSize[0], p.ImageSize[1]
	head.Crop = &artifacts.CropSpec{Crop: true, Margin: p.Margin}
	var writer *artifacts.SamplesWriter
	imagesID, err := store.WriteSamples(head, BatchRows(p.ImageSize), func(w *artifacts.SamplesWriter) error {
		writer = w
		return m.materialise(ctx, w)
	})
	if err != nil {
		return err
	}
	badID, err := PutBadImages(store, m.bad)
	if err != nil {
		return fmt.Errorf("store bad_images: %w", err)
	}
	run.SetOutput("images", imagesID)
	run.SetOutput("bad_images", badID)

	log := run.Logger()
	m.boxes.Warn(log)
	if len(m.bad) > 0 {
		log.Warn("bad images skipped", "count", len(m.bad), "of", in.Len(),
			"first", m.bad[0].Image, "table", badID.Short())
	}
	if in.Len() == 0 {
		log.Warn("no samples to materialise")
	}
	log.Info("images materialised", "rows", writer.Rows(), "batches", writer.Batches(),
		"height", p.ImageSize[0], "width", p.ImageSize[1])
	return nil
}

// materialiser decodes the rows of one samples table.
type materialiser struct {
	run pipeline.Run
	p   *Params
	in  *artifacts.Samples
	// bad lists the skipped rows in input order; only the writer
	// goroutine touches it.
	bad []BadImage
	// boxes counts the boxes beyond their images.
	boxes pixels.BoxTally
}

// outcome is one decoded row: its pixels or why there are none.
type outcome struct {
	pix []byte
	err error
}

// materialise decodes rows in parallel and appends them to w in input
// order. A dispatcher hands each row a one-slot channel, queues that
// channel in order and starts a decoder (at most p.workers() at once);
// the writer takes the channels from the queue one by one. The queue's
// capacity bounds how many decoded rows wait for the writer, and the
// writer decides about bad images in input order, so the first bad image
// reported and the rows written never depend on timing.
func (m *materialiser) materialise(ctx context.Context, w *artifacts.SamplesWriter) error {
	workers := m.p.workers()
	queue := make(chan chan outcome, max(8, 4*workers))
	g, gctx := errgroup.WithContext(ctx)

	g.Go(func() error {
		defer close(queue)
		var decoders errgroup.Group
		decoders.SetLimit(workers)
		// Once the writer has failed or the run is cancelled, stop
		// queueing; g.Wait reports the writer's error, the first one.
		stop := func() error {
			_ = decoders.Wait() // decoders report through their slots only
			return gctx.Err()
		}
		for i := range m.in.Len() {
			if gctx.Err() != nil {
				return stop()
			}
			slot := make(chan outcome, 1)
			select {
			case queue <- slot:
			case <-gctx.Done():
				return stop()
			}
			decoders.Go(func() error {
				if err := gctx.Err(); err != nil {
					slot <- outcome{err: err}
					return nil
				}
				pix, err := m.load(i)
				slot <- outcome{pix: pix, err: err}
				return nil
			})
		}
		return decoders.Wait()
	})

	g.Go(func() error {
		i := 0
		for slot := range queue {
			o := <-slot
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := m.write(w, i, o); err != nil {
				return err
			}
			i++
			if i%64 == 0 || i == m.in.Len() {
				m.run.Progress().Report("images", i, m.in.Len(), "")
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// write appends row i, or skips it, or fails, as on_bad_image says.
func (m *materialiser) write(w *artifacts.SamplesWriter, i int, o outcome) error {
	if o.err == nil {
		return w.Append(m.in, i, o.pix)
	}
	name, partition := m.in.Image[i], m.in.Partition[i]
	if m.p.OnBadImage == "error" {
		return fmt.Errorf("image %s (row %d, partition %s): %w", name, i, partition, o.err)
	}
	reason := strings.ReplaceAll(o.err.Error(), m.path(i), name)
	m.bad = append(m.bad, BadImage{Image: name, Partition: partition, Reason: reason})
	m.run.Logger().Debug("bad image skipped", "image", name,
		"partition", partition, "reason", reason)
	return nil
}

// path is where row i's image file lives.
func (m *materialiser) path(i int) string {
	return filepath.Join(m.in.Root, filepath.FromSlash(m.in.Image[i]))
}

// load decodes row i, crops it to its box grown by the margin, resizes it
// and returns its RGB bytes.
func (m *materialiser) load(i int) ([]byte, error) {
	img, err := pixels.Load(m.path(i))
	if err != nil {
		return nil, err
	}
	if m.in.HasBBox[i] {
		var fit pixels.BoxFit
		img, fit = pixels.CropBox(img, m.in.BBox[i], m.p.Margin)
		m.boxes.Add(fit)
	}
	h, w := m.p.ImageSize[0], m.p.ImageSize[1]
	return pixels.RGB(pixels.Fit(img, w, h)), nil
}
