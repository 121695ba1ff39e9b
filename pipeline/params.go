package pipeline

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// field is one parameter of a kind's parameter struct, by its yaml name.
type field struct {
	name  string
	index []int
}

// structFields lists the yaml keys of struct type t the way yaml.v3 names
// them: the tag's name, or the lower-cased field name; `inline` structs
// contribute their fields; `-` and unexported fields are skipped.
func structFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range structFields(f.Type) {
				out = append(out, field{sub.name, append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, []int{i}})
	}
	return out
}

// paramNames returns the sorted top-level keys a kind's `with:` accepts.
func paramNames(k Kind) []string {
	t := reflect.TypeOf(k.NewParams())
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for _, f := range structFields(t) {
		names = append(names, f.name)
	}
	slices.Sort(names)
	return names
}

// decodeParams decodes `with:` into a fresh parameter struct of kind k,
// strictly: an unknown key is an error naming the closest valid one, a
// type error names its line and column. Validate is called if present;
// each error it returns is reported at the key it names (paramNode), or
// at the stage's key when there is no `with:`.
func (l *loader) decodeParams(k Kind, with, stageKey *yaml.Node, stage string) any {
	params := k.NewParams()
	v := reflect.ValueOf(params)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		l.errorf(with, "kind %s: NewParams must return a non-nil pointer, got %T", k.Name(), params)
		return params
	}
	before := len(l.errs)
	if with != nil {
		d := paramDecoder{l: l, kind: k.Name()}
		d.decode(with, v.Elem(), "")
	}
	if len(l.errs) > before {
		return params
	}
	if val, ok := params.(interface{ Validate() error }); ok {
		l.paramErrors(with, stageKey, stage, val.Validate())
	}
	return params
}

// paramErrors reports each error in err at the parameter it names.
func (l *loader) paramErrors(with, stageKey *yaml.Node, stage string, err error) {
	if err == nil {
		return
	}
	for _, e := range splitJoined(err) {
		at := paramNode(with, e)
		if at == nil {
			at = stageKey
		}
		l.errorf(at, "stage %s: invalid parameters: %v", stage, e)
	}
}

// checkWiring asks a WiringChecker kind whether s's parameters, decoded
// without error, agree with the inputs its needs wire.
func (l *loader) checkWiring(k Kind, s *Stage, with, stageKey *yaml.Node, needs map[string]*yaml.Node) {
	wc, ok := k.(WiringChecker)
	if !ok || s.Params == nil {
		return
	}
	l.paramErrors(with, stageKey, s.Name, wc.CheckWiring(s.Params, func(input string) bool {
		_, ok := needs[input]
		return ok
	}))
}

// splitJoined returns the errors that errors.Join (or anything that reads
// like it) put together in err, so each can be reported at its own line;
// an error whose message is more than its parts' is kept whole.
func splitJoined(err error) []error {
	multi, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	parts := multi.Unwrap()
	msgs := make([]string, len(parts))
	for i, e := range parts {
		msgs[i] = e.Error()
	}
	if len(parts) == 0 || strings.Join(msgs, "\n") != err.Error() {
		return []error{err}
	}
	var out []error
	for _, e := range parts {
		out = append(out, splitJoined(e)...)
	}
	return out
}

// paramNode returns where in with the parameter that err names (through a
// *ParamError) is written: its value when that is a scalar (which is
// where a matrix value or a ${name} puts its own position), else its key.
// A key that with does not spell out falls back to its nearest written
// parent, and an error that names no key to with itself.
func paramNode(with *yaml.Node, err error) *yaml.Node {
	var pe *ParamError
	if with == nil || !errors.As(err, &pe) || pe.Key == "" {
		return with
	}
	at, m := with, with
	for part := range strings.SplitSeq(pe.Key, ".") {
		if m.Kind != yaml.MappingNode {
			return at
		}
		var next *yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k, v := m.Content[i], m.Content[i+1]; k.Value == part {
				at, next = k, v
				if v.Kind == yaml.ScalarNode {
					at = v
				}
			}
		}
		if next == nil {
			return at
		}
		m = next
	}
	return at
}

type paramDecoder struct {
	l    *loader
	kind string
}

func (d *paramDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		// `key: ~` says nothing: the parameter keeps its default, whatever
		// its type (a list emptied or a number zeroed would surprise).
		return
	}
	if selfDecoding(v) {
		d.leaf(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!binary" {
			d.l.errorf(n, "parameter %s: want a list, got %s (write [%s] for one item)", path, n.Value, n.Value)
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.leaf(n, v, path) // e.g. []byte from a !!binary scalar; yaml reports the rest
			return
		}
		if v.Kind() == reflect.Array && v.Len() != len(n.Content) {
			d.l.errorf(n, "parameter %s: want %d items, got %d", path, v.Len(), len(n.Content))
			return
		}
		s := v
		if v.Kind() == reflect.Slice {
			s = reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		}
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, v, path)
	default:
		d.leaf(n, v, path)
	}
}

func (d *paramDecoder) structure(n *yaml.Node, v reflect.Value, path string) {
	what := "parameters of " + d.kind
	if path != "" {
		what = "parameter " + path
	}
	fields := structFields(v.Type())
	names := make([]string, len(fields))
	byName := make(map[string]field, len(fields))
	for i, f := range fields {
		names[i] = f.name
		byName[f.name] = f
	}
	slices.Sort(names)
	for _, p := range d.l.pairs(n, what) {
		f, ok := byName[p.key.Value]
		full := joinPath(path, p.key.Value)
		if !ok {
			d.l.errorf(p.key, "unknown parameter %s for kind %s%s", full, d.kind, hintFor(p.key.Value, names))
			continue
		}
		d.decode(p.val, v.FieldByIndex(f.index), full)
	}
}

func (d *paramDecoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	m := reflect.MakeMap(v.Type())
	for _, p := range d.l.pairs(n, "parameter "+path) {
		key := reflect.New(v.Type().Key()).Elem()
		if err := decodeScalar(p.key, key); err != nil {
			d.l.errorf(p.key, "parameter %s: key: %v", path, err)
			continue
		}
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.val, val, joinPath(path, p.key.Value))
		m.SetMapIndex(key, val)
	}
	v.Set(m)
}

// leaf decodes one value and rewrites its error to carry our line:column
// and parameter path.
func (d *paramDecoder) leaf(n *yaml.Node, v reflect.Value, path string) {
	if err := decodeScalar(n, v); err != nil {
		d.l.errorf(n, "parameter %s: %v", path, err)
	}
}

// decodeScalar hands n to yaml.v3, which knows every scalar type, except
// a float for an integer, which yaml.v3 would truncate (16.9 to 16).
func decodeScalar(n *yaml.Node, v reflect.Value) error {
	if isInteger(v) {
		switch n.ShortTag() {
		case "!!float":
			return setIntegral(n, v)
		case "!!int", "!!null":
		default:
			return fmt.Errorf("want an integer, got %s", describe(n))
		}
	}
	if (v.Kind() == reflect.Float64 || v.Kind() == reflect.Float32) && n.ShortTag() == "!!str" {
		return floatWord(n.Value)
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return errors.New(yamlMessage(err))
	}
	return nil
}

// floatWord explains a string where a number is wanted: YAML reads NaN,
// Inf and numbers beyond float64 as strings.
func floatWord(s string) error {
	_, err := strconv.ParseFloat(s, 64)
	switch {
	case err == nil:
		return fmt.Errorf("want a number, got %q (YAML writes .nan, .inf and -.inf)", s)
	case errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("%s is beyond the range of a float64", s)
	}
	return fmt.Errorf("want a number, got %q", s)
}

// DecodeInt decodes n into dst by the rule every integer parameter
// follows: an integer, or a float that is a whole number in range (10.0,
// 1e3); anything else (16.9, .nan, a word) is an error naming the value.
// It is for kinds whose own UnmarshalYAML reads integers, which the
// loader's rule never reaches.
func DecodeInt(n *yaml.Node, dst *int) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want an integer, got %s", describe(n))
	}
	return decodeScalar(n, reflect.ValueOf(dst).Elem())
}

// isInteger reports whether v holds an integer that yaml.v3 decodes
// itself. A time.Duration is left out too: yaml.v3 refuses floats for it.
func isInteger(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Type() != durationType && !selfDecoding(v)
	}
	return false
}

// setIntegral sets integer v from float scalar n. A float that is a whole
// number in v's range (10.0, 1e3) is that integer, so it hashes as one;
// anything else (16.9, .nan) is an error, which never names a Go type.
func setIntegral(n *yaml.Node, v reflect.Value) error {
	var f float64
	if err := n.Decode(&f); err != nil {
		return errors.New(yamlMessage(err))
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) { // NaN differs from itself
		return fmt.Errorf("want an integer, got %s", n.Value)
	}

	bits := v.Type().Bits()
	switch v.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if f < 0 || f >= math.Ldexp(1, bits) {
			return fmt.Errorf("want an integer from 0 to %d, got %s", uint64(math.MaxUint64)>>(64-bits), n.Value)
		}
		v.SetUint(uint64(f))
	default:
		// Compared as floats: 2^63 is the first one out of range, and
		// converting it would wrap.
		if f < -math.Ldexp(1, bits-1) || f >= math.Ldexp(1, bits-1) {
			hi := int64(math.MaxInt64) >> (64 - bits)
			return fmt.Errorf("want an integer from %d to %d, got %s", -hi-1, hi, n.Value)
		}
		v.SetInt(int64(f))
	}
	return nil
}

func selfDecoding(v reflect.Value) bool {
	pt := reflect.PointerTo(v.Type())
	return pt.Implements(yamlUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// yamlMessage strips yaml.v3's "yaml: unmarshal errors:\n  line N: " so
// the message reads well after our own position.
func yamlMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if m := yamlLineRE.FindStringSubmatch("yaml: " + msg); m != nil {
		msg = m[2]
	}
	if strings.HasPrefix(msg, "line ") {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
	}
	return msg
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// canonical returns params as plain values (maps with yaml key names,
// slices, numbers, strings) whose JSON encoding is the canonical form that
// run keys hash. Decoding first and encoding after is what makes "1e-5",
// "1.0e-5" and "0.00001" one key: they are one float64. encoding/json
// sorts map keys, so neither YAML key order nor Go field order matters.
func canonical(params any) any {
	return canonValue(reflect.ValueOf(params))
}

func canonValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(textMarshalerType) && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		if b, err := v.Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return canonValue(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for _, f := range structFields(v.Type()) {
			m[f.name] = canonValue(v.FieldByIndex(f.index))
		}
		return m
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		m := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			m[fmt.Sprint(canonValue(iter.Key()))] = canonValue(iter.Value())
		}
		return m
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canonValue(v.Index(i))
		}
		return out
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f) // JSON has no NaN; a string keeps keys distinct
		}
		if v.Kind() == reflect.Float32 {
			return json.Number(fmt.Sprint(float32(f)))
		}
		return f
	}
	return v.Interface()
}

// canonicalJSON encodes a canonical value; it cannot fail for the values
// canonical returns.
func canonicalJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("canonical json: %v", err)) // a bug in canonValue, not bad input
	}
	return b
}

// flatten turns a canonical value into dotted paths -> JSON text, so two
// parameter sets can be compared key by key for `status`.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[prefix] = "{}"
		}
		for k, c := range x {
			flatten(joinPath(prefix, k), c, out)
		}
	default:
		out[prefix] = string(canonicalJSON(x))
	}
}
