package main

import (
	"bytes"
	"io"
	"strings"
	"text/tabwriter"
)

// newTable returns a tabwriter for rows written with writeRow: every cell
// of every row is aligned, empty trailing ones included, and the padding
// that would end a line is trimmed on the way out.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(&trimLines{w: w}, 0, 4, 2, ' ', 0)
}

// writeRow writes cells to a table as one line. Each cell ends in a tab,
// the last one too, so that a row with fewer words does not cut the
// column blocks the tabwriter aligns.
func writeRow(w io.Writer, cells ...string) {
	io.WriteString(w, strings.Join(cells, "\t")+"\t\n") // a tabwriter buffers; errors surface at Flush
}

// trimLines passes whole lines on without their trailing spaces.
type trimLines struct {
	w    io.Writer
	line []byte
}

func (t *trimLines) Write(p []byte) (int, error) {
	t.line = append(t.line, p...)
	for {
		i := bytes.IndexByte(t.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		out := append(bytes.TrimRight(t.line[:i], " "), '\n')
		if _, err := t.w.Write(out); err != nil {
			return 0, err
		}
		t.line = t.line[i+1:]
	}
}
