package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"stitch/internal/suggest"
)

// Registry maps the names used in `uses:` to stage kinds. It is built once
// by the binary (see cmd/stitch/kinds.go) and never changes afterwards, so
// it needs no locking.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of kinds. Two kinds with one name, an
// empty name or a kind with duplicate port names are an error: they are
// programming mistakes that should fail loudly at start-up.
func NewRegistry(kinds ...Kind) (*Registry, error) {
	r := &Registry{kinds: make(map[string]Kind, len(kinds))}
	for _, k := range kinds {
		name := k.Name()
		if name == "" {
			return nil, fmt.Errorf("register kind %T: empty name", k)
		}
		if _, dup := r.kinds[name]; dup {
			return nil, fmt.Errorf("register kind %s: registered twice", name)
		}
		if err := checkPorts(k); err != nil {
			return nil, fmt.Errorf("register kind %s: %w", name, err)
		}
		r.kinds[name] = k
	}
	return r, nil
}

func checkPorts(k Kind) error {
	for _, ports := range [][]Port{k.Inputs(), k.Outputs()} {
		seen := map[string]bool{}
		for _, p := range ports {
			if p.Name == "" || strings.ContainsAny(p.Name, ".[], ") {
				return fmt.Errorf("invalid port name %q", p.Name)
			}
			if seen[p.Name] {
				return fmt.Errorf("port %s declared twice", p.Name)
			}
			seen[p.Name] = true
		}
	}
	return nil
}

// Lookup returns the kind registered under name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns every registered kind, sorted by name.
func (r *Registry) Kinds() []Kind {
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Kind) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// names returns the sorted kind names, for "did you mean" hints.
func (r *Registry) names() []string {
	out := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (r *Registry) hint(name string) string { return suggest.Hint(name, r.names()) }
