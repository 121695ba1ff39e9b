package main

import (
	"io"
	"strings"
)

// writeRow writes cells to a tabwriter as one line, leaving out empty cells
// at the end so that no line ends in padding.
func writeRow(w io.Writer, cells ...string) {
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	io.WriteString(w, strings.Join(cells, "\t")+"\n") // a tabwriter buffers; errors surface at Flush
}
