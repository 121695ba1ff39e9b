package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Pos is a place in a pipeline file: what every validation error names.
type Pos struct {
	File string
	Line int
	Col  int
}

// String returns file:line:column, leaving out what is unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// SpecError is one problem found in a pipeline before anything runs.
type SpecError struct {
	Pos Pos
	Msg string
}

// Error returns "file:line:col: message".
func (e *SpecError) Error() string { return e.Pos.String() + ": " + e.Msg }

// SpecErrors is every problem found while loading a pipeline, in file
// order. Loading reports them all at once so a person can fix a file in
// one pass; cmd/stitch maps it to exit status 2.
type SpecErrors []*SpecError

// Error joins the problems, one per line.
func (es SpecErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es SpecErrors) sorted() SpecErrors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *SpecError) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Msg, b.Msg))
	})
	return slices.CompactFunc(out, func(a, b *SpecError) bool { return *a == *b })
}

// IsInvalid reports whether err says a pipeline or a command line is
// invalid (as opposed to a stage having failed).
func IsInvalid(err error) bool {
	var se SpecErrors
	var ue *UsageError
	return errors.As(err, &se) || errors.As(err, &ue)
}

// UsageError is a problem with what was asked of the engine rather than
// with the pipeline file: an unknown --target, a malformed --set.
type UsageError struct{ Msg string }

// Error returns the message.
func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ParamError is a parameter that a kind's Validate rejects. Returned as
// is or joined with others (errors.Join), it makes the pipeline file's
// error point at that parameter's line rather than at `with:`.
type ParamError struct {
	// Key is the parameter's yaml key, dotted for a nested one
	// (phase2.max_epochs).
	Key string
	// Err says what is wrong; its message names the key itself.
	Err error
}

// Error returns Err's message.
func (e *ParamError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ParamError) Unwrap() error { return e.Err }

// ParamErrorf returns a *ParamError about key with a formatted message,
// which should start with the key ("batch_size 0: want > 0").
func ParamErrorf(key, format string, args ...any) error {
	return &ParamError{Key: key, Err: fmt.Errorf(format, args...)}
}
