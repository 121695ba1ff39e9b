package pipeline

import (
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// variant is one expansion of a stage's matrix, possibly joined with the
// variants of producers it fans out over.
type variant struct {
	// suffix is appended to the base name: "", "[vgg16,0.6]" or "-A".
	suffix string
	// values are the stage's own matrix values by key, set as parameters
	// of the same name and available as ${matrix.key}.
	values map[string]*yaml.Node
	// match holds every matrix value, own and inherited, in flow YAML
	// ("[32]"), to bind consumers: the name's spelling may drop brackets,
	// and two spellings must never bind as equal by accident.
	match map[string]string
	// spelled holds the values as spelled in the name ("32").
	spelled  map[string]string
	keyNodes map[string]*yaml.Node
	// inherited are keys taken from producers the stage fans out over;
	// they only bind, they set no parameter.
	inherited map[string]bool
	// named says the key "name" is an include entry's name, spelled
	// "-A" rather than inside the brackets.
	named bool
}

func newVariant() variant {
	return variant{values: map[string]*yaml.Node{}, match: map[string]string{},
		spelled: map[string]string{}, keyNodes: map[string]*yaml.Node{}, inherited: map[string]bool{}}
}

func (v variant) clone() variant {
	return variant{values: clone(v.values), match: clone(v.match), spelled: clone(v.spelled),
		keyNodes: clone(v.keyNodes), inherited: clone(v.inherited), named: v.named}
}

// makeSuffix spells the variant in a stage name: an include name as
// "-A", then every other key's value in sorted key order inside brackets,
// so a fanned-out consumer ends like the producer it came from.
func (v variant) makeSuffix() string {
	var b strings.Builder
	if v.named {
		b.WriteString("-" + v.spelled["name"])
	}
	sep := "["
	for _, k := range sortedKeys(v.spelled) {
		if v.named && k == "name" {
			continue
		}
		b.WriteString(sep + v.spelled[k])
		sep = ","
	}
	if sep == "," {
		b.WriteString("]")
	}
	return b.String()
}

// matrix expands a stage's `matrix:`. Two forms, not mixed:
//
//	matrix: {backbone: [vgg16, resnet50], freeze_ratio: [0.6, 0.8]}
//
// is the cartesian product. Keys are taken in sorted order, the first
// varying slowest; each key's values keep the order of their list; the name
// lists the values in key order: train[vgg16,0.6], train[vgg16,0.8],
// train[resnet50,0.6], train[resnet50,0.8] (list values spelled by
// spellValues). Sorting the keys keeps names stable when the keys are
// reordered in the file. And
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

	out := []variant{newVariant()}
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
		twice := false
		for _, val := range e.val.Content {
			if seen[valueText(val)] {
				l.errorf(val, "stage %s: matrix key %s lists %q twice", rs.name, e.key.Value, flowText(val))
				twice = true
			}
			seen[valueText(val)] = true
		}
		if twice {
			return nil // the variants' names would collide: say only why
		}
		l.checkShadowed(rs, e)
		spelled := spellValues(e.key.Value, e.val.Content)
		var next []variant
		for _, v := range out {
			for i, val := range e.val.Content {
				nv := v.clone()
				nv.values[e.key.Value] = val
				nv.match[e.key.Value] = flowText(val)
				nv.spelled[e.key.Value] = spelled[i]
				nv.keyNodes[e.key.Value] = e.key
				next = append(next, nv)
			}
		}
		out = next
	}
	for i := range out {
		out[i].suffix = out[i].makeSuffix()
	}
	return out
}

// checkShadowed reports a `with:` value that the matrix axis e replaces
// in every variant, so that it never takes effect: only mappings merge
// (mergeMappings). An include entry may leave a key out, so its values do
// not shadow.
func (l *loader) checkShadowed(rs *rawStage, e pair) {
	if rs.with == nil || rs.with.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(rs.with.Content); i += 2 {
		k, v := rs.with.Content[i], rs.with.Content[i+1]
		if k.Value == e.key.Value {
			l.shadowed(rs, k, v, e.val.Content, k.Value, e.key.Line)
		}
	}
}

// shadowed reports the `with:` value v of key k (at path) when every
// matrix value in vals replaces it: a mapping only where they all are
// mappings setting the same key, which it checks key by key.
func (l *loader) shadowed(rs *rawStage, k, v *yaml.Node, vals []*yaml.Node, path string, line int) {
	merged := 0 // values that merge into v rather than replace it
	if v.Kind == yaml.MappingNode {
		for _, val := range vals {
			if val.Kind == yaml.MappingNode {
				merged++
			}
		}
	}
	switch merged {
	case 0:
		l.errorf(k, "stage %s: %s is set here and varied by the matrix at line %d, which sets it in every "+
			"variant: remove it here", rs.name, path, line)
		return
	case len(vals):
	default:
		return // some variants keep part of v
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		sub := make([]*yaml.Node, 0, len(vals))
		for _, val := range vals {
			for j := 0; j+1 < len(val.Content); j += 2 {
				if val.Content[j].Value == v.Content[i].Value {
					sub = append(sub, val.Content[j+1])
				}
			}
		}
		if len(sub) == len(vals) { // every variant sets it
			l.shadowed(rs, v.Content[i], v.Content[i+1], sub, path+"."+v.Content[i].Value, line)
		}
	}
}

// valueText is n's flow YAML with every number in one spelling, so that
// values that decode alike compare alike: 0.5, 0.50 and 5e-1 would be
// variants under three names with one run key.
func valueText(n *yaml.Node) string {
	c := deepCopy(n)
	var canon func(*yaml.Node)
	canon = func(n *yaml.Node) {
		// Every number becomes a plain !!float of one spelling; its tag
		// goes too, or the flow YAML would tell 5 from !!float 5.
		switch n.ShortTag() {
		case "!!int":
			if v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
				n.Value, n.Tag = strconv.FormatFloat(float64(v), 'g', -1, 64), ""
			}
		case "!!float":
			if v, err := strconv.ParseFloat(n.Value, 64); err == nil {
				n.Value, n.Tag = strconv.FormatFloat(v, 'g', -1, 64), ""
			}
		}
		for _, k := range n.Content {
			canon(k)
		}
	}
	canon(c)
	return flowText(c)
}

// spellValues spells one matrix key's values for stage names. A scalar is
// itself; a list of one scalar is that scalar ([32] -> 32); a list of
// numbers joins them with "x" ([32, 64] -> 32x64, as layer sizes are
// written), which no number contains; anything else keeps its flow YAML
// ([relu, tanh]); a mapping whose leaves are plain scalars spells each
// leaf as its path from the matrix key, key=value, joined by commas
// (phase1: {max_epochs: 1} -> phase1.max_epochs=1), so two blocks varied
// alike stay apart. Should two values of the key then spell alike ([32]
// and 32), every value of the key keeps its flow YAML, so names stay
// unique.
func spellValues(key string, vals []*yaml.Node) []string {
	out := make([]string, len(vals))
	seen := map[string]bool{}
	for i, val := range vals {
		out[i] = spell(key, val)
		if seen[out[i]] {
			for j, val := range vals {
				out[j] = flowText(val)
			}
			return out
		}
		seen[out[i]] = true
	}
	return out
}

func spell(key string, n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		if leaves, ok := spellLeaves(key, n, nil); ok {
			return strings.Join(leaves, ",")
		}
		return flowText(n)
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return flowText(n)
	}
	numbers := true
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return flowText(n)
		}
		tag := c.ShortTag()
		numbers = numbers && (tag == "!!int" || tag == "!!float") && !strings.ContainsAny(c.Value, "xX")
	}
	if len(n.Content) == 1 && !strings.ContainsAny(n.Content[0].Value, ",[]{}") {
		return n.Content[0].Value
	}
	if !numbers {
		return flowText(n)
	}
	parts := make([]string, len(n.Content))
	for i, c := range n.Content {
		parts[i] = c.Value
	}
	return strings.Join(parts, "x")
}

// spellLeaves appends path=value for each leaf of mapping n under path
// prefix, or says no when a leaf is not a plain scalar (a list, an empty
// mapping, text with brackets, commas, '=' or spaces).
func spellLeaves(prefix string, n *yaml.Node, out []string) ([]string, bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		return nil, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if k == "" || strings.ContainsAny(k, ",[]{}=. ") {
			return nil, false
		}
		path := prefix + "." + k
		switch {
		case v.Kind == yaml.MappingNode:
			var ok bool
			if out, ok = spellLeaves(path, v, out); !ok {
				return nil, false
			}
		case v.Kind == yaml.ScalarNode && v.Value != "" && !strings.ContainsAny(v.Value, ",[]{}= "):
			out = append(out, path+"="+v.Value)
		default:
			return nil, false
		}
	}
	return out, true
}

func (l *loader) include(rs *rawStage, n *yaml.Node) []variant {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n, "stage %s: matrix include: want a non-empty list of mappings, got %s", rs.name, describe(n))
		return nil
	}
	var out []variant
	names := map[string]bool{}
	for _, item := range n.Content {
		v := newVariant()
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
		v.named = true
		v.match["name"] = name.Value
		v.spelled["name"] = name.Value
		v.suffix = v.makeSuffix()
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
