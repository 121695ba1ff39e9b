package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"stitch/internal/suggest"
)

// Pipeline is a loaded, expanded and validated pipeline file.
type Pipeline struct {
	// Name is the file's `name:` (or its base name without extension).
	Name string
	// File is the path it was loaded from.
	File string
	// Seed is the pipeline's `params.seed` (0 when unset).
	Seed int64
	// Stages are every stage after matrix expansion, producers before
	// consumers, ties broken by name.
	Stages []*Stage

	byName map[string]*Stage
	bases  map[string][]*Stage
}

// Stage is one stage of a pipeline after matrix expansion.
type Stage struct {
	// Name is the full name: the base name plus the variant, as in
	// "train[vgg16,0.6]" or "train-A".
	Name string
	// Base is the stage's name in the file.
	Base string
	// Variant holds the matrix values that made this stage (nil without a
	// matrix), as they are spelled in its name, including those inherited
	// from the producers it fans out over.
	Variant map[string]string
	Kind    Kind
	// Params is the decoded parameter struct (a pointer from NewParams).
	Params any
	// Explicit lists the top-level parameters the file sets (the rest keep
	// their defaults), so `status` can tell "removed" from "changed".
	Explicit []string
	// Inputs are the bound inputs, sorted by name.
	Inputs []Input
	// Seed is derived from the pipeline seed and Name.
	Seed int64
	// Pos is where the stage is defined.
	Pos Pos
	// Deps are the producers of the inputs, sorted by name, unique.
	Deps []*Stage

	variant variant // how the stage was made, for binding and fan-out
}

// Input is one bound input of a stage.
type Input struct {
	Name string
	Refs []Ref
}

// Ref names one output of one (expanded) stage.
type Ref struct {
	Stage  string
	Output string
}

// String returns "stage.output".
func (r Ref) String() string { return r.Stage + "." + r.Output }

// Lookup returns the stage with full name name.
func (p *Pipeline) Lookup(name string) (*Stage, bool) {
	s, ok := p.byName[name]
	return s, ok
}

// Select returns the stages a name means: the stage with that full name,
// or every variant of a matrix stage by its base name.
func (p *Pipeline) Select(name string) ([]*Stage, error) {
	if s, ok := p.byName[name]; ok {
		return []*Stage{s}, nil
	}
	if vs, ok := p.bases[name]; ok {
		return vs, nil
	}
	return nil, usagef("no stage %q in pipeline %s%s", name, p.Name, hintFor(name, p.names()))
}

func (p *Pipeline) names() []string {
	var names []string
	for n := range p.byName {
		names = append(names, n)
	}
	for n := range p.bases {
		if _, dup := p.byName[n]; !dup {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func hintFor(name string, candidates []string) string { return suggest.Hint(name, candidates) }

// Load reads, expands and validates the pipeline in file. sets are
// `--set k=v` overrides of `params:`. Every problem found is returned at
// once as SpecErrors.
func Load(file string, reg *Registry, sets []string) (*Pipeline, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		// A file that is not there or not a file is the caller's mistake,
		// like a malformed one: a SpecError, so exit status 2.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, SpecErrors{{Pos: Pos{File: file}, Msg: "cannot read the pipeline file: " + err.Error()}}
	}
	return Parse(file, data, reg, sets)
}

var (
	stageNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	pipelineNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	paramNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
)

// Parse is Load for data already read; file is used in positions.
func Parse(file string, data []byte, reg *Registry, sets []string) (*Pipeline, error) {
	l := &loader{file: file, budget: nodeBudget}
	p := l.parse(data, reg, sets)
	if len(l.errs) > 0 {
		return nil, l.errs.sorted()
	}
	return p, nil
}

// rawStage is a stage of the file before matrix expansion.
type rawStage struct {
	name      string
	key       *yaml.Node
	uses      *yaml.Node
	kind      Kind
	needs     *yaml.Node
	with      *yaml.Node
	matrix    *yaml.Node
	expanded  []*Stage
	needNodes map[*Stage]map[string]*yaml.Node // per variant: input -> interpolated needs value
	state     expandState
}

// expandState tracks the depth-first expansion of stages: a consumer that
// fans out needs its producers' variants first.
type expandState int

const (
	unexpanded expandState = iota
	expanding
	expanded
)

func (l *loader) parse(data []byte, reg *Registry, sets []string) *Pipeline {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		l.syntaxError(err, data)
		return nil
	}
	if len(doc.Content) == 0 {
		l.errs = append(l.errs, &SpecError{Pos: Pos{File: l.file}, Msg: "empty pipeline file"})
		return nil
	}
	// One document only: an empty one after a trailing --- is harmless.
	var second yaml.Node
	if dec.Decode(&second) == nil && len(second.Content) > 0 && !isNull(second.Content[0]) {
		l.errorf(&second, "a second YAML document (after ---): a pipeline file holds one; "+
			"put other pipelines in their own files")
		return nil
	}
	root := l.expand(doc.Content[0])
	if l.budget <= 0 {
		return nil // the alias limit: what follows would be errors about the cut tree
	}
	if root.Kind != yaml.MappingNode {
		l.errorf(root, "a pipeline is a mapping with name, params and stages; got %s", describe(root))
		return nil
	}

	p := &Pipeline{File: l.file, byName: map[string]*Stage{}, bases: map[string][]*Stage{}}
	var paramsNode, stagesNode *yaml.Node
	for _, kv := range l.pairs(root, "key") {
		switch kv.key.Value {
		case "name":
			p.Name = l.scalar(kv.val, "name")
			if p.Name != "" && !pipelineNameRE.MatchString(p.Name) {
				l.errorf(kv.val, "pipeline name %q: use letters, digits, '_', '-' and '.', "+
					"starting with a letter, digit or '_'", p.Name)
			}
		case "params":
			paramsNode = kv.val
		case "stages":
			stagesNode = kv.val
		default:
			l.errorf(kv.key, "unknown key %q%s", kv.key.Value,
				hintFor(kv.key.Value, []string{"name", "params", "stages"}))
		}
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))
	}

	vars, varNames := l.params(paramsNode, sets)
	if seed, ok := vars["seed"]; ok {
		p.Seed = l.seed(seed)
	}

	if stagesNode == nil {
		l.errorf(root, "no stages: a pipeline needs a `stages:` mapping")
		return p
	}
	before := len(l.errs)
	raws := l.stages(stagesNode, reg)
	if len(raws) == 0 && len(l.errs) == before {
		l.errorf(stagesNode, "no stages: a pipeline needs a `stages:` mapping")
	}
	byRaw := make(map[string]*rawStage, len(raws))
	for _, rs := range raws {
		byRaw[rs.name] = rs
	}
	for _, rs := range raws {
		l.expandStage(p, rs, byRaw, vars, varNames)
	}
	for _, rs := range raws {
		for _, s := range rs.expanded {
			l.bind(p, rs, s)
		}
	}
	if len(l.errs) > 0 {
		return p
	}
	l.order(p)
	for _, s := range p.Stages {
		s.Seed = deriveSeed(p.Seed, s.Name)
	}
	return p
}

func (l *loader) scalar(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		l.errorf(n, "%s: want a string, got %s", what, describe(n))
		return ""
	}
	return n.Value
}

// seed decodes the pipeline's `params.seed`.
func (l *loader) seed(n *yaml.Node) int64 {
	what := "params.seed: "
	if _, ok := l.sets[n]; ok {
		what = "" // the position, "--set seed=...", says it
	}
	var seed int64
	if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" {
		l.errorf(n, "%swant an integer, got %s", what, describe(n))
	} else if err := decodeScalar(n, reflect.ValueOf(&seed).Elem()); err != nil {
		l.errorf(n, "%s%v", what, err)
	}
	return seed
}

// params returns the pipeline parameters with --set applied, by name.
func (l *loader) params(n *yaml.Node, sets []string) (map[string]*yaml.Node, []string) {
	vars := map[string]*yaml.Node{}
	for _, kv := range l.pairs(n, "parameter") {
		if !paramNameRE.MatchString(kv.key.Value) {
			l.errorf(kv.key, "parameter name %q: use letters, digits, '_' and '-'", kv.key.Value)
			continue
		}
		vars[kv.key.Value] = kv.val
	}
	names := sortedKeys(vars)
	for _, set := range sets {
		k, v, ok := strings.Cut(set, "=")
		pos := Pos{File: "--set " + set}
		if !ok {
			l.errs = append(l.errs, &SpecError{Pos: pos, Msg: "want --set name=value"})
			continue
		}
		if _, known := vars[k]; !known {
			msg := fmt.Sprintf("no parameter %q: the pipeline declares no params", k)
			if len(names) > 0 {
				msg = fmt.Sprintf("no parameter %q in params%s; the pipeline declares %s",
					k, hintFor(k, names), strings.Join(names, ", "))
			}
			l.errs = append(l.errs, &SpecError{Pos: pos, Msg: msg})
			continue
		}
		// The value is a YAML scalar, so --set lr=1e-4 is a float and
		// --set name=abc a string, as if written in the file.
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(v), &node); err != nil || len(node.Content) == 0 {
			node = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}}}
		}
		vars[k] = node.Content[0]
		if l.sets == nil {
			l.sets = map[*yaml.Node]string{}
		}
		l.sets[node.Content[0]] = set
	}
	return vars, names
}

// stages reads the `stages:` mapping, sorted by name.
func (l *loader) stages(n *yaml.Node, reg *Registry) []*rawStage {
	var out []*rawStage
	for _, kv := range l.pairs(n, "stage") {
		rs := &rawStage{name: kv.key.Value, key: kv.key}
		if !stageNameRE.MatchString(rs.name) {
			l.errorf(kv.key, "stage name %q: start with a letter or '_', then letters, digits, '_' or '-'", rs.name)
			continue
		}
		for _, f := range l.pairs(kv.val, "key of stage "+rs.name) {
			switch f.key.Value {
			case "uses":
				rs.uses = f.val
			case "needs":
				rs.needs = f.val
			case "with":
				rs.with = f.val
			case "matrix":
				rs.matrix = f.val
			default:
				l.errorf(f.key, "stage %s: unknown key %q%s", rs.name, f.key.Value,
					hintFor(f.key.Value, []string{"matrix", "needs", "uses", "with"}))
			}
		}
		switch {
		case rs.uses == nil:
			l.errorf(kv.key, "stage %s: missing `uses:` (the stage kind)", rs.name)
			continue
		case l.scalar(rs.uses, "stage "+rs.name+": uses") == "":
			continue
		}
		k, ok := reg.Lookup(rs.uses.Value)
		if !ok {
			l.errorf(rs.uses, "stage %s: unknown stage kind %q%s", rs.name, rs.uses.Value, reg.hint(rs.uses.Value))
			continue
		}
		rs.kind = k
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b *rawStage) int { return strings.Compare(a.name, b.name) })
	return out
}

// matrixFromParams lets an axis of a matrix take its whole list from a
// pipeline parameter (`attr_type: "${types}"`), so --set chooses the
// variants. Other strings are left for the variants' own interpolation,
// where ${matrix.key} is defined.
func (l *loader) matrixFromParams(rs *rawStage, vars map[string]*yaml.Node, varNames []string) {
	if rs.matrix == nil || rs.matrix.Kind != yaml.MappingNode {
		return
	}
	m := *rs.matrix
	m.Content = slices.Clone(rs.matrix.Content)
	for i := 1; i < len(m.Content); i += 2 {
		v := m.Content[i]
		if name, ok := wholeRef(v.Value); ok && v.Kind == yaml.ScalarNode && !strings.HasPrefix(name, "matrix.") {
			m.Content[i] = l.interpolate(v, vars, varNames)
		} else if v.Kind == yaml.SequenceNode && containsText(v, "${") && !containsText(v, "${matrix.") {
			// Values that read parameters are named by what they read:
			// [{max_epochs: "${ep}"}] gives train[max_epochs=3].
			m.Content[i] = l.interpolate(v, vars, varNames)
		}
	}
	rs.matrix = &m
}

// expandStage makes one Stage per matrix variant, with its parameters
// decoded and its needs interpolated (bound later, when every stage of the
// file is known). A stage that fans out over a producer needs that
// producer's variants, so producers referenced by base name are expanded
// first, depth first; a cycle stops the descent and is reported by order.
func (l *loader) expandStage(p *Pipeline, rs *rawStage, raws map[string]*rawStage,
	vars map[string]*yaml.Node, varNames []string,
) {
	if rs.state != unexpanded {
		return
	}
	rs.state = expanding
	defer func() { rs.state = expanded }()

	rs.needNodes = map[*Stage]map[string]*yaml.Node{}
	params := paramNames(rs.kind)
	l.matrixFromParams(rs, vars, varNames)
	variants := l.matrix(rs)
	if variants == nil {
		if l.unmade == nil {
			l.unmade = map[string]bool{}
		}
		l.unmade[rs.name] = true
	}
	for _, own := range variants {
		scope := vars
		names := varNames
		if len(own.values) > 0 {
			scope = make(map[string]*yaml.Node, len(vars)+len(own.values))
			for k, n := range vars {
				scope[k] = n
			}
			for k, n := range own.values {
				scope["matrix."+k] = n
			}
			names = sortedKeys(scope)
		}

		needs := map[string]*yaml.Node{}
		for _, kv := range l.pairs(rs.needs, "input") {
			needs[kv.key.Value] = l.interpolate(kv.val, scope, names)
			needs["\x00key:"+kv.key.Value] = kv.key
		}
		fanned, producerKeys := l.fanOut(p, rs, own, needs, raws, vars, varNames)

		with := l.withOverrides(rs, own, params, producerKeys)
		if with != nil {
			with = l.interpolate(with, scope, names)
		}
		for _, v := range fanned {
			s := &Stage{Name: rs.name + v.suffix, Base: rs.name, Variant: v.spelled, Kind: rs.kind,
				Pos: l.pos(rs.key), variant: v}
			if len(v.spelled) == 0 {
				s.Variant = nil
			}
			if prev, dup := p.byName[s.Name]; dup {
				l.errorf(rs.key, "duplicate stage %q (also made by %s at %s)", s.Name, prev.Base, prev.Pos)
				continue
			}
			// Each variant decodes its own copy: Params is a pointer the
			// kind may keep.
			before := len(l.errs)
			s.Params = l.decodeParams(rs.kind, with, rs.key, s.Name)
			if len(l.errs) == before {
				l.checkWiring(rs.kind, s, with, rs.key, needs)
			}
			s.Explicit = explicitKeys(with)
			rs.needNodes[s] = needs
			rs.expanded = append(rs.expanded, s)
			p.byName[s.Name] = s
			p.bases[rs.name] = append(p.bases[rs.name], s)
		}
	}
}

// fanOut joins a stage's own variant with the variants of every matrix
// stage it names by base name on an input that takes one artifact and
// whose matrix keys the variant does not already have: one variant per
// agreeing combination, the inherited keys binding only. It also returns
// the matrix keys of every producer named by base name, Many inputs
// included, which a matrix of the consumer may use without a parameter.
func (l *loader) fanOut(p *Pipeline, rs *rawStage, own variant, needs map[string]*yaml.Node,
	raws map[string]*rawStage, vars map[string]*yaml.Node, varNames []string,
) ([]variant, map[string]bool) {
	out := []variant{own}
	keys := map[string]bool{}
	ports := slices.Clone(rs.kind.Inputs())
	slices.SortFunc(ports, func(a, b Port) int { return strings.Compare(a.Name, b.Name) })
	for _, in := range ports {
		val, ok := needs[in.Name]
		if !ok {
			continue
		}
		refs := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			refs = val.Content
		}
		for _, rn := range refs {
			base := refStage(rn)
			producer, ok := raws[base]
			if !ok || producer == rs {
				continue // a full name, an unknown stage or a self-loop: bind reports it
			}
			l.expandStage(p, producer, raws, vars, varNames)
			if producer.state != expanded || len(producer.expanded) == 0 {
				continue // on a cycle, or invalid: reported elsewhere
			}
			pv := producer.expanded[0].variant
			for k := range pv.match {
				keys[k] = true
			}
			if in.Many || len(pv.match) == 0 || subset(pv.match, out[0].match) {
				continue // gathered, not a matrix, or bound variant by variant
			}
			next := joinVariants(out, producer.expanded)
			if len(next) == 0 {
				l.errorf(rn, "stage %s: input %q: no variant of %s agrees with the variants of %s so far",
					rs.name, in.Name, base, rs.name)
				continue
			}
			out = next
		}
	}
	for i := range out {
		out[i].suffix = out[i].makeSuffix()
	}
	return out, keys
}

// refStage returns the stage part of a "stage.output" reference, or "".
func refStage(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	i := strings.LastIndexByte(n.Value, '.')
	if i <= 0 {
		return ""
	}
	return n.Value[:i]
}

// subset reports whether every key of a is a key of b.
func subset(a, b map[string]string) bool {
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// joinVariants pairs each variant with each producer variant that agrees
// on their common keys, the variant varying slowest, and adds the
// producer's other keys as inherited ones.
func joinVariants(vs []variant, producers []*Stage) []variant {
	var out []variant
	for _, v := range vs {
		for _, ps := range producers {
			pv := ps.variant
			agree := true
			for k, val := range pv.match {
				if own, ok := v.match[k]; ok && own != val {
					agree = false
				}
			}
			if !agree {
				continue
			}
			nv := v.clone()
			for k, val := range pv.match {
				if _, ok := nv.match[k]; ok {
					continue
				}
				nv.match[k] = val
				nv.spelled[k] = pv.spelled[k]
				nv.inherited[k] = true
				if k == "name" && pv.named {
					nv.named = true
				}
			}
			out = append(out, nv)
		}
	}
	return out
}

// withOverrides returns the stage's `with:` with the variant's matrix
// values set on the parameters of the same name. A matrix key that is no
// parameter must be used as ${matrix.key} or be a matrix key of a
// producer the stage names (producerKeys), to bind by; otherwise it is a
// typo.
func (l *loader) withOverrides(rs *rawStage, v variant, params []string, producerKeys map[string]bool) *yaml.Node {
	if len(v.values) == 0 {
		return rs.with
	}
	var with *yaml.Node
	switch {
	case rs.with == nil || isNull(rs.with):
		with = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: rs.key.Line, Column: rs.key.Column}
	case rs.with.Kind != yaml.MappingNode:
		return rs.with // decodeParams reports it
	default:
		with = deepCopy(rs.with)
	}
	for _, k := range sortedKeys(v.values) {
		if !slices.Contains(params, k) {
			if k != "name" && !usesVar(rs, "matrix."+k) && !producerKeys[k] {
				l.errorf(v.keyNodes[k], "stage %s: matrix key %q is no parameter of kind %s, "+
					"no ${matrix.%s} uses it and no producer it names varies over it%s",
					rs.name, k, rs.kind.Name(), k, hintFor(k, params))
			}
			continue
		}
		set := false
		for i := 0; i+1 < len(with.Content); i += 2 {
			if with.Content[i].Value == k {
				with.Content[i+1] = mergeMappings(with.Content[i+1], v.values[k])
				set = true
			}
		}
		if !set {
			with.Content = append(with.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Line: v.keyNodes[k].Line, Column: v.keyNodes[k].Column},
				v.values[k])
		}
	}
	return with
}

// mergeMappings returns over set on base: where both are mappings, the
// keys of over replace those of base, recursively, and base's other keys
// stay, so `matrix: {phase1: [{max_epochs: 1}]}` varies one setting of a
// block and keeps the rest of the stage's `with:`. Anything else is over.
// Both are expanded trees (loader.expand): no aliases are left to follow.
func mergeMappings(base, over *yaml.Node) *yaml.Node {
	if base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	out := deepCopy(base)
	for i := 0; i+1 < len(over.Content); i += 2 {
		k, val := over.Content[i], over.Content[i+1]
		set := false
		for j := 0; j+1 < len(out.Content); j += 2 {
			if out.Content[j].Value == k.Value {
				out.Content[j+1] = mergeMappings(out.Content[j+1], val)
				set = true
			}
		}
		if !set {
			out.Content = append(out.Content, k, val)
		}
	}
	return out
}

func usesVar(rs *rawStage, name string) bool {
	return containsRef(rs.with, name) || containsRef(rs.needs, name)
}

// containsText says whether a scalar in n holds sub.
func containsText(n *yaml.Node, sub string) bool {
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, sub)
	}
	return slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return containsText(c, sub) })
}

func containsRef(n *yaml.Node, name string) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "${"+name+"}")
	}
	return slices.ContainsFunc(n.Content, func(c *yaml.Node) bool { return containsRef(c, name) })
}

func explicitKeys(with *yaml.Node) []string {
	if with == nil || with.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(with.Content); i += 2 {
		keys = append(keys, with.Content[i].Value)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// bind resolves the needs of stage s to producer outputs and checks them
// against the ports of both kinds.
func (l *loader) bind(p *Pipeline, rs *rawStage, s *Stage) {
	needs := rs.needNodes[s]
	inputs := s.Kind.Inputs()
	inputNames := make([]string, len(inputs))
	for i, in := range inputs {
		inputNames[i] = in.Name
	}
	slices.Sort(inputNames)
	deps := map[string]*Stage{}

	for _, in := range inputs {
		val, bound := needs[in.Name]
		if !bound {
			if !in.Optional {
				l.errorf(rs.key, "stage %s: required input %q is not bound in needs%s", s.Name, in.Name, portDoc(in))
			}
			continue
		}
		var refNodes []*yaml.Node
		if val.Kind == yaml.SequenceNode {
			refNodes = val.Content
			if len(refNodes) == 0 {
				l.errorf(val, "stage %s: input %q is an empty list; name at least one \"stage.output\"%s",
					s.Name, in.Name, portDoc(in))
				continue
			}
		} else {
			refNodes = []*yaml.Node{val}
		}
		var refs []Ref
		boundBy := map[Ref]*yaml.Node{}
		for _, rn := range refNodes {
			for _, r := range l.resolve(p, s, rn, in) {
				if first, ok := boundBy[r]; ok {
					l.errorf(rn, "stage %s: input %q binds %s twice (%q at line %d, and %q here)",
						s.Name, in.Name, r, first.Value, first.Line, rn.Value)
					continue
				}
				boundBy[r] = rn
				refs = append(refs, r)
				deps[r.Stage] = p.byName[r.Stage]
			}
		}
		if !in.Many && len(refs) > 1 {
			l.errorf(val, "stage %s: input %q takes one artifact, but this binds %d (%s); name one variant",
				s.Name, in.Name, len(refs), refList(refs))
			continue
		}
		if len(refs) > 0 {
			s.Inputs = append(s.Inputs, Input{Name: in.Name, Refs: refs})
		}
	}
	for _, k := range sortedKeys(needs) {
		if strings.HasPrefix(k, "\x00") {
			continue
		}
		if !slices.Contains(inputNames, k) {
			l.errorf(needs["\x00key:"+k], "stage %s: kind %s has no input %q%s", s.Name, s.Kind.Name(), k,
				hintFor(k, inputNames))
		}
	}
	slices.SortFunc(s.Inputs, func(a, b Input) int { return strings.Compare(a.Name, b.Name) })
	for _, name := range sortedKeys(deps) {
		s.Deps = append(s.Deps, deps[name])
	}
}

func portDoc(p Port) string {
	if p.Doc == "" {
		return ""
	}
	return " (" + p.Doc + ")"
}

func refList(refs []Ref) string {
	var parts []string
	for _, r := range refs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// resolve turns one "stage.output" into references. A base name of a
// matrix stage binds the variant with the same matrix values when the
// consumer is a variant over (at least) the same keys, and every variant,
// in expansion order, otherwise.
func (l *loader) resolve(p *Pipeline, s *Stage, n *yaml.Node, in Port) []Ref {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		l.errorf(n, "stage %s: input %q: want \"stage.output\", got %s", s.Name, in.Name, describe(n))
		return nil
	}
	i := strings.LastIndexByte(n.Value, '.')
	if i <= 0 || i == len(n.Value)-1 {
		l.errorf(n, "stage %s: input %q: want \"stage.output\", got %q", s.Name, in.Name, n.Value)
		return nil
	}
	stageName, output := n.Value[:i], n.Value[i+1:]

	var producers []*Stage
	if ps, ok := p.byName[stageName]; ok {
		producers = []*Stage{ps}
	} else if vs, ok := p.bases[stageName]; ok {
		producers = matching(vs, s)
	} else {
		if !l.unmade[stageName] {
			l.errorf(n, "stage %s: input %q: no stage %q%s", s.Name, in.Name, stageName, hintFor(stageName, p.names()))
		}
		return nil
	}
	if len(producers) == 0 {
		l.errorf(n, "stage %s: input %q: no variant of %s matches %v", s.Name, in.Name, stageName, s.Variant)
		return nil
	}

	var refs []Ref
	for _, ps := range producers {
		out, ok := findPort(ps.Kind.Outputs(), output)
		if !ok {
			l.errorf(n, "stage %s: input %q: stage %s (kind %s) has no output %q%s", s.Name, in.Name,
				ps.Base, ps.Kind.Name(), output, hintFor(output, portNames(ps.Kind.Outputs())))
			return nil
		}
		if in.Kind != "" && out.Kind != "" && in.Kind != out.Kind && !slices.Contains(in.Also, out.Kind) {
			l.errorf(n, "stage %s: input %q takes %s artifacts, but %s.%s is %s", s.Name, in.Name,
				strings.Join(append([]string{in.Kind}, in.Also...), " or "), ps.Name, output, out.Kind)
			return nil
		}
		refs = append(refs, Ref{Stage: ps.Name, Output: output})
	}
	return refs
}

// matching picks the variants of a matrix stage that a consumer binds.
func matching(variants []*Stage, consumer *Stage) []*Stage {
	if len(variants) == 1 || len(variants[0].variant.match) == 0 {
		return variants
	}
	if !subset(variants[0].variant.match, consumer.variant.match) {
		return variants // the consumer does not vary over some key: it takes them all
	}
	var out []*Stage
	for _, v := range variants {
		same := true
		for k, val := range v.variant.match {
			same = same && consumer.variant.match[k] == val
		}
		if same {
			out = append(out, v)
		}
	}
	return out
}

func findPort(ports []Port, name string) (Port, bool) {
	for _, p := range ports {
		if p.Name == name {
			return p, true
		}
	}
	return Port{}, false
}

func portNames(ports []Port) []string {
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	slices.Sort(names)
	return names
}

// deriveSeed gives each stage its own seed from the pipeline seed and the
// stage's full name, so variants differ and renaming nothing changes none.
func deriveSeed(seed int64, stage string) int64 {
	h := sha256.New()
	fmt.Fprintf(h, "stitch seed\x00%d\x00%s", seed, stage)
	sum := h.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 1)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// itoa keeps strconv out of hot formatting paths' call sites.
func itoa(i int) string { return strconv.Itoa(i) }
