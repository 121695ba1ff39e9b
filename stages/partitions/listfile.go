package partitions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// readBufferSize is large so that a 3 KB DeepFashion attribute row never
// straddles a refill more than once per thousand rows.
const readBufferSize = 4 << 20

// lineReader yields the lines of a text file without their line ends
// (LF or CRLF), skipping blank lines and counting line numbers for errors.
type lineReader struct {
	name string // shown in errors: the path relative to the data root
	f    *os.File
	r    *bufio.Reader
	line int
	long []byte // holds a line longer than the buffer
	size int64
	// aligned marks a file whose rows align by position with another's
	// (the fine layout): a blank line before a row is an error there, as
	// skipping it would shift every later row onto the wrong image.
	// Blank lines at the end are fine.
	aligned bool
	blankAt int // the first blank line since the last row, or 0
}

func openLines(path, name string) (*lineReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return &lineReader{name: name, f: f, r: bufio.NewReaderSize(f, readBufferSize), size: st.Size()}, nil
}

func (lr *lineReader) Close() error { return lr.f.Close() }

// next returns the next non-blank line, trimmed of surrounding white space.
// The slice is valid until the following call. It returns io.EOF at the end.
func (lr *lineReader) next() ([]byte, error) {
	for {
		line, err := lr.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			lr.long = append(lr.long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = lr.r.ReadSlice('\n')
				lr.long = append(lr.long, line...)
			}
			line = lr.long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read %s:%d: %w", lr.name, lr.line+1, err)
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		lr.line++
		if line = trimSpace(line); len(line) > 0 {
			if lr.aligned && lr.blankAt > 0 {
				return nil, fmt.Errorf("parse %s:%d: blank line between rows; this file's rows match another "+
					"file's by position, so each must have one line", lr.name, lr.blankAt)
			}
			return line, nil
		}
		if lr.blankAt == 0 {
			lr.blankAt = lr.line
		}
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
	}
}

// errorf returns an error naming the file and the current line.
func (lr *lineReader) errorf(format string, args ...any) error {
	return fmt.Errorf("parse %s:%d: %s", lr.name, lr.line, fmt.Sprintf(format, args...))
}

// readHeader reads the two lines every DeepFashion list_* file starts with:
// the number of rows, then a header whose first token is want.
func (lr *lineReader) readHeader(want string) (count int, err error) {
	line, err := lr.next()
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("parse %s:1: empty file, want a row count", lr.name)
	}
	if err != nil {
		return 0, err
	}
	n, ok := parseInt(line)
	if !ok || n < 0 || n > math.MaxInt32 {
		return 0, lr.errorf("want a row count on the first line, got %q", clip(line))
	}
	line, err = lr.next()
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("parse %s:%d: missing header line starting with %q", lr.name, lr.line+1, want)
	}
	if err != nil {
		return 0, err
	}
	first, _ := firstToken(line)
	if !bytes.EqualFold(first, []byte(want)) {
		return 0, lr.errorf("missing header: want a line starting with %q, got %q", want, clip(line))
	}
	return int(n), nil
}

// checkCount compares the rows read with the count line.
func (lr *lineReader) checkCount(count, rows int) error {
	if count != rows {
		return fmt.Errorf("parse %s:1: count line says %d rows, the file has %d", lr.name, count, rows)
	}
	return nil
}

// spaceTable marks the separator bytes; a table lookup beats five
// comparisons in the inner loop over 600 MB of labels. Bytes of
// multi-byte UTF-8 characters are never separators, so non-ASCII paths
// and names survive intact.
var spaceTable = [256]bool{' ': true, '\t': true, '\r': true, '\v': true, '\f': true}

func isSpace(c byte) bool { return spaceTable[c] }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (isSpace(b[len(b)-1]) || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	// A UTF-8 byte order mark would otherwise stick to the first token.
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
}

// lastToken splits a trimmed line into its last white-space separated
// token and the trimmed rest.
func lastToken(b []byte) (tok, rest []byte) {
	i := len(b)
	for i > 0 && !isSpace(b[i-1]) {
		i--
	}
	tok = b[i:]
	for i > 0 && isSpace(b[i-1]) {
		i--
	}
	return tok, b[:i]
}

// firstToken splits a trimmed line into its first token and the trimmed rest.
func firstToken(b []byte) (tok, rest []byte) {
	i := 0
	for i < len(b) && !isSpace(b[i]) {
		i++
	}
	tok = b[:i]
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return tok, b[i:]
}

// parseLabel reads a label value: 1, -1 or 0, also written +1, 1.0, -1.00
// or 0.0. The one- and two-byte forms are decoded without allocating,
// since a full DeepFashion file holds 289 million of them.
func parseLabel(tok []byte) (int8, bool) {
	switch len(tok) {
	case 1:
		switch tok[0] {
		case '1':
			return 1, true
		case '0':
			return 0, true
		}
		return 0, false
	case 2:
		if tok[1] == '1' && tok[0] == '-' {
			return -1, true
		}
		if tok[1] == '1' && tok[0] == '+' {
			return 1, true
		}
		if tok[1] == '0' && (tok[0] == '-' || tok[0] == '+') {
			return 0, true
		}
		return 0, false
	case 0:
		return 0, false
	}
	if c := tok[len(tok)-1]; c != '0' && c != '1' {
		return 0, false // cheap reject of path-like tokens before ParseFloat
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return 0, false
	}
	switch f {
	case 1:
		return 1, true
	case -1:
		return -1, true
	case 0:
		return 0, true
	}
	return 0, false
}

// parseInt reads a decimal integer with an optional sign; leading zeros
// are allowed (DeepFashion pads coordinates: 062).
func parseInt(tok []byte) (int64, bool) {
	if len(tok) == 0 || len(tok) > 18 {
		return 0, false
	}
	neg := false
	switch tok[0] {
	case '-':
		neg = true
		tok = tok[1:]
	case '+':
		tok = tok[1:]
	}
	if len(tok) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// clip shortens a line quoted in an error message.
func clip(b []byte) string {
	const limit = 60
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
