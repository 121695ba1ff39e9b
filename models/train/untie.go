package train

import (
	"fmt"

	"stitch/models/graph"
	"stitch/models/onnxpb"
)

// Untie gives every extra reader of a shared float initializer its own
// copy, named after the original (name.tied1, name.tied2, ...), and
// returns the copies' names by original. Exporters share one tensor
// between layers whose values happen to be equal (torchvision's resnet18
// reads one zero bias in four convolutions); training must not tie those
// layers together, so the step graph needs them apart. The first reader in
// node order keeps the original. m is changed in place.
func Untie(m *onnxpb.ModelProto) (map[string][]string, error) {
	g := m.GetGraph()
	graph.ResolveIdentities(g)
	inits := graph.Initializers(g)
	b := graph.Edit(m)
	seen := map[string]bool{}
	copies := map[string][]string{}
	for _, n := range g.Node {
		for i, in := range n.Input {
			t, ok := inits[in]
			if !ok || t.GetDataType() != graph.Float {
				continue
			}
			if !seen[in] {
				seen[in] = true
				continue
			}
			v, err := graph.InitializerFloats(t)
			if err != nil {
				return nil, fmt.Errorf("untie %s: %w", in, err)
			}
			name, err := b.Initializer(fmt.Sprintf("%s.tied%d", in, len(copies[in])+1), v, t.GetDims()...)
			if err != nil {
				return nil, fmt.Errorf("untie %s: %w", in, err)
			}
			n.Input[i] = name
			copies[in] = append(copies[in], name)
		}
	}
	return copies, nil
}
