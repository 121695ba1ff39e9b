package pipeline

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// nodeBudget bounds how many nodes expanding aliases may produce, so a
// "billion laughs" file is an error instead of an out-of-memory crash.
const nodeBudget = 1 << 20

// loader holds the state of loading one pipeline file: where errors go.
type loader struct {
	file   string
	errs   SpecErrors
	budget int
	active map[*yaml.Node]bool   // alias targets being expanded
	sets   map[*yaml.Node]string // values given by --set, by the flag's text
	// unmade are the stages whose variants could not be made (a matrix
	// error, already reported): references to them say nothing more.
	unmade map[string]bool
}

func (l *loader) errorf(n *yaml.Node, format string, args ...any) {
	l.errs = append(l.errs, &SpecError{Pos: l.pos(n), Msg: fmt.Sprintf(format, args...)})
}

// pos returns where n is written: in the file, or in a --set flag,
// which has no line.
func (l *loader) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: l.file}
	}
	if set, ok := l.sets[n]; ok {
		return Pos{File: "--set " + set}
	}
	return Pos{File: l.file, Line: n.Line, Col: n.Column}
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError turns a yaml.v3 parse error into a positioned SpecError.
// data is the file's text: a tab in the indentation of the line named,
// the usual cause of yaml.v3's terse messages, is pointed at.
func (l *loader) syntaxError(err error, data []byte) {
	msg := err.Error()
	line, col := 0, 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1]) // m[1] is digits or empty; 0 means unknown
		msg = m[2]
	}
	if lines := strings.Split(string(data), "\n"); line > 0 && line <= len(lines) {
		text := lines[line-1]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		if i := strings.IndexByte(indent, '\t'); i >= 0 {
			col = i + 1
			msg += " (a tab in the indentation: YAML indents with spaces only)"
		}
	}
	l.errs = append(l.errs, &SpecError{Pos: Pos{File: l.file, Line: line, Col: col}, Msg: msg})
}

// expand returns a copy of n with aliases replaced by what they name and
// merge keys (<<) folded into their mappings, so everything after loading
// sees plain trees: an anchored and an expanded file decode, and hash, the
// same. Explicit keys win over merged ones; among several merged maps the
// first wins, as the YAML merge-key spec says.
func (l *loader) expand(n *yaml.Node) *yaml.Node {
	l.budget--
	if l.budget == 0 {
		l.errorf(n, "file expands to more than %d nodes through aliases", nodeBudget)
	}
	if l.budget <= 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			l.errorf(n, "alias %q names no anchor", n.Value)
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
		if l.active[n.Alias] {
			l.errorf(n, "alias *%s refers to itself", n.Value)
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		}
		if l.active == nil {
			l.active = map[*yaml.Node]bool{}
		}
		// Marking the target while it is expanded catches recursive
		// aliases, which would otherwise recurse until the stack runs out.
		l.active[n.Alias] = true
		defer delete(l.active, n.Alias)
		return l.expand(n.Alias)
	}
	out := *n
	out.Anchor = ""
	out.Content = nil
	if n.Kind != yaml.MappingNode {
		for _, c := range n.Content {
			out.Content = append(out.Content, l.expand(c))
		}
		return &out
	}

	var merges []*yaml.Node
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		explicit[k.Value] = true
		out.Content = append(out.Content, l.expand(k), l.expand(v))
	}

	merged := map[string]bool{}
	for _, m := range merges {
		src := l.expand(m)
		sources := []*yaml.Node{src}
		if src.Kind == yaml.SequenceNode {
			sources = src.Content
		}
		for _, s := range sources {
			if s.Kind != yaml.MappingNode {
				l.errorf(s, "merge key << needs a mapping or a list of mappings")
				continue
			}
			for i := 0; i+1 < len(s.Content); i += 2 {
				k := s.Content[i].Value
				if explicit[k] || merged[k] {
					continue
				}
				merged[k] = true
				out.Content = append(out.Content, s.Content[i], s.Content[i+1])
			}
		}
	}
	return &out
}

// pair is one key and value of a mapping node.
type pair struct {
	key, val *yaml.Node
}

// pairs returns the entries of mapping n and reports keys given twice as
// "duplicate <what>". A non-mapping n is reported and yields nothing.
func (l *loader) pairs(n *yaml.Node, what string) []pair {
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "%s: want a mapping, got %s", what, describe(n))
		return nil
	}
	first := map[string]*yaml.Node{}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, "%s: key must be a plain string", what)
			continue
		}
		if prev, dup := first[k.Value]; dup {
			l.errorf(k, "duplicate %s %q (first at %d:%d)", what, k.Value, prev.Line, prev.Column)
			continue
		}
		first[k.Value] = k
		out = append(out, pair{k, v})
	}
	return out
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return "an empty list"
		}
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// flowText renders a node on one line, for generated variant names.
func flowText(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	c := deepCopy(n)
	setFlow(c)
	b, err := yaml.Marshal(c)
	if err != nil {
		return "?" // only for names; the value itself is decoded elsewhere
	}
	return strings.TrimSpace(string(b))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}

func deepCopy(n *yaml.Node) *yaml.Node {
	out := *n
	out.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out.Content[i] = deepCopy(c)
	}
	return &out
}

// interpolate returns a copy of n with ${name} replaced by vars[name] in
// every string. A string that is exactly one ${name} becomes a copy of the
// variable's node, keeping its type (a float stays a float, a list a list)
// but taking the position of the reference so errors point at the use.
// "$${" writes a literal "${".
func (l *loader) interpolate(n *yaml.Node, vars map[string]*yaml.Node, names []string) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		out := *n
		out.Content = make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				out.Content[i] = c // keys are names, never interpolated
				continue
			}
			out.Content[i] = l.interpolate(c, vars, names)
		}
		return &out
	}
	if !strings.Contains(n.Value, "${") {
		return n
	}

	if name, ok := wholeRef(n.Value); ok {
		v, found := vars[name]
		if !found {
			l.undefined(n, name, names)
			return n
		}
		out := deepCopy(v)
		out.Line, out.Column = n.Line, n.Column
		if _, ok := l.sets[v]; ok {
			// Lines inside a --set value are not the file's: a list's
			// items are placed at the reference too.
			placeAt(out, n)
		}
		return out
	}

	var b strings.Builder
	s := n.Value
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			l.errorf(n, "unterminated ${ in %q", n.Value)
			return n
		}
		name := s[i+2 : i+j]
		b.WriteString(s[:i])
		s = s[i+j+1:]
		v, found := vars[name]
		switch {
		case !found:
			l.undefined(n, name, names)
			return n
		case v.Kind != yaml.ScalarNode:
			l.errorf(n, "cannot put %s (%s) inside a string; use it as the whole value", name, describe(v))
			return n
		}
		b.WriteString(v.Value)
	}
	out := *n
	out.Value = b.String()
	// A plain scalar is resolved again from its new text (so "1e-${e}"
	// can become a float); a quoted one stays a string.
	out.Tag = ""
	return &out
}

func placeAt(n, at *yaml.Node) {
	n.Line, n.Column = at.Line, at.Column
	for _, c := range n.Content {
		placeAt(c, at)
	}
}

func wholeRef(s string) (string, bool) {
	if strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && strings.Count(s, "${") == 1 &&
		!strings.ContainsAny(s[2:len(s)-1], "{}") {
		return s[2 : len(s)-1], true
	}
	return "", false
}

func (l *loader) undefined(n *yaml.Node, name string, names []string) {
	l.errorf(n, "undefined parameter ${%s}%s", name, hintFor(name, names))
}
