package pipeline

import (
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// variant is one expansion of a stage's matrix.
type variant struct {
	// suffix is appended to the base name: "", "[vgg16,0.6]" or "-A".
	suffix string
	// values are the matrix values by key, set as parameters of the same
	// name and available as ${matrix.key}.
	values map[string]*yaml.Node
	// match holds the values as spelled in the name, to bind consumers.
	match    map[string]string
	keyNodes map[string]*yaml.Node
}

// matrix expands a stage's `matrix:`. Two forms, not mixed:
//
//	matrix: {backbone: [vgg16, resnet50], freeze_ratio: [0.6, 0.8]}
//
// is the cartesian product. Keys are taken in sorted order, the first
// varying slowest; each key's values keep the order of their list; the name
// lists the values in key order: train[vgg16,0.6], train[vgg16,0.8],
// train[resnet50,0.6], train[resnet50,0.8]. Sorting the keys keeps names
// stable when the keys are reordered in the file. And
//
//	matrix: {include: [{name: A, backbone: vgg16}, {name: B, head: [1024]}]}
//
// makes one variant per entry, named train-A, train-B, each setting its
// own parameters (the notebook's alternatives, which vary different ones).
func (l *loader) matrix(rs *rawStage) []variant {
	if rs.matrix == nil || isNull(rs.matrix) {
		return []variant{{}}
	}
	entries := l.pairs(rs.matrix, "matrix key")
	if len(entries) == 0 {
		l.errorf(rs.matrix, "stage %s: empty matrix", rs.name)
		return nil
	}
	for _, e := range entries {
		if e.key.Value == "include" {
			if len(entries) > 1 {
				l.errorf(rs.matrix, "stage %s: matrix has both include and axes; use one form", rs.name)
				return nil
			}
			return l.include(rs, e.val)
		}
	}
	slices.SortFunc(entries, func(a, b pair) int { return strings.Compare(a.key.Value, b.key.Value) })

	out := []variant{{values: map[string]*yaml.Node{}, match: map[string]string{}, keyNodes: map[string]*yaml.Node{}}}
	for _, e := range entries {
		if !paramNameRE.MatchString(e.key.Value) {
			l.errorf(e.key, "stage %s: matrix key %q: use letters, digits, '_' and '-'", rs.name, e.key.Value)
			return nil
		}
		if e.val.Kind != yaml.SequenceNode || len(e.val.Content) == 0 {
			l.errorf(e.val, "stage %s: matrix key %s: want a non-empty list, got %s", rs.name, e.key.Value, describe(e.val))
			return nil
		}
		seen := map[string]bool{}
		for _, val := range e.val.Content {
			if text := flowText(val); seen[text] {
				l.errorf(val, "stage %s: matrix key %s lists %q twice", rs.name, e.key.Value, text)
			}
			seen[flowText(val)] = true
		}
		var next []variant
		for _, v := range out {
			for _, val := range e.val.Content {
				text := flowText(val)
				nv := variant{values: clone(v.values), match: clone(v.match), keyNodes: clone(v.keyNodes)}
				nv.values[e.key.Value] = val
				nv.match[e.key.Value] = text
				nv.keyNodes[e.key.Value] = e.key
				nv.suffix = v.suffix + "," + text
				next = append(next, nv)
			}
		}
		out = next
	}
	for i := range out {
		out[i].suffix = "[" + out[i].suffix[1:] + "]"
	}
	return out
}

func (l *loader) include(rs *rawStage, n *yaml.Node) []variant {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n, "stage %s: matrix include: want a non-empty list of mappings, got %s", rs.name, describe(n))
		return nil
	}
	var out []variant
	names := map[string]bool{}
	for _, item := range n.Content {
		v := variant{values: map[string]*yaml.Node{}, match: map[string]string{}, keyNodes: map[string]*yaml.Node{}}
		for _, kv := range l.pairs(item, "matrix include key") {
			v.values[kv.key.Value] = kv.val
			v.keyNodes[kv.key.Value] = kv.key
		}
		name, ok := v.values["name"]
		switch {
		case !ok:
			l.errorf(item, "stage %s: matrix include entry needs a `name:`", rs.name)
			continue
		case name.Kind != yaml.ScalarNode || !paramNameRE.MatchString(name.Value):
			l.errorf(name, "stage %s: matrix include name %s: use letters, digits, '_' and '-'", rs.name, describe(name))
			continue
		case names[name.Value]:
			l.errorf(name, "stage %s: matrix include name %q used twice", rs.name, name.Value)
			continue
		}
		names[name.Value] = true
		v.suffix = "-" + name.Value
		v.match["name"] = name.Value
		out = append(out, v)
	}
	return out
}

func clone[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
