package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"

	"stitch/artifacts"
)

// keyMaterial is everything a run key hashes. Settings (threads, device)
// are deliberately absent: they change how fast a stage runs, not what it
// computes. The stage's name enters only through its seed. The names of
// the stages bound to a list input enter through Labels: a list's items
// are told apart by them (tabulate's rows are named after them), so a
// renamed producer with the same bytes must not reuse the old table.
type keyMaterial struct {
	Kind      string                    `json:"kind"`
	Version   string                    `json:"version"`
	Params    json.RawMessage           `json:"params"`
	Inputs    map[string][]artifacts.ID `json:"inputs"`
	Labels    map[string][]string       `json:"labels,omitempty"`
	Seed      int64                     `json:"seed"`
	Externals map[string]string         `json:"externals"`
}

// stageKey is the run key of stage s with its prepared parameters and
// externals and its bound inputs.
func stageKey(s *Stage, prep stageKeyInputs, inputs map[string][]InputRef) string {
	m := keyMaterial{Kind: s.Kind.Name(), Version: s.Kind.Version(), Params: prep.params,
		Inputs: inputIDs(inputs), Seed: s.Seed, Externals: prep.externals}
	for _, port := range s.Kind.Inputs() {
		if !port.Many || len(inputs[port.Name]) == 0 {
			continue
		}
		if m.Labels == nil {
			m.Labels = map[string][]string{}
		}
		for _, r := range inputs[port.Name] {
			m.Labels[port.Name] = append(m.Labels[port.Name], r.Stage)
		}
	}
	return runKey(m)
}

// runKey is the SHA-256 of the canonical JSON of m, as 64 hex digits.
// encoding/json writes struct fields in order and map keys sorted, so the
// encoding is canonical once Params is.
func runKey(m keyMaterial) string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("encode run key: %v", err)) // only plain values: a bug if it fails
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// stageKeyInputs are the parts of a key known before inputs are bound.
type stageKeyInputs struct {
	params    json.RawMessage
	externals map[string]string
	// neutral are the top-level parameters left out of params as
	// output-neutral (KeyPruner).
	neutral []string
}

// prepare computes a stage's canonical parameters and the fingerprints of
// the external paths it reads.
func prepare(ctx context.Context, s *Stage, fp *fingerprinter) (stageKeyInputs, error) {
	params := canonical(s.Params)
	var neutral []string
	if kp, ok := s.Kind.(KeyPruner); ok {
		if m, ok := params.(map[string]any); ok {
			wired := func(input string) bool {
				return slices.ContainsFunc(s.Inputs, func(in Input) bool { return in.Name == input })
			}
			neutral = kp.OutputNeutral(s.Params, wired)
			for _, k := range neutral {
				delete(m, k)
			}
		}
	}
	out := stageKeyInputs{params: canonicalJSON(params), externals: map[string]string{}, neutral: neutral}
	er, ok := s.Kind.(ExternalReader)
	if !ok {
		return out, nil
	}
	paths, err := er.Externals(s.Params)
	if err != nil {
		return out, err // the engine and status name the stage
	}
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		sum, err := fp.fingerprint(ctx, p)
		if err != nil {
			return out, err
		}
		out.externals[p] = sum
	}
	return out, nil
}

func inputIDs(in map[string][]InputRef) map[string][]artifacts.ID {
	out := make(map[string][]artifacts.ID, len(in))
	for name, refs := range in {
		for _, r := range refs {
			out[name] = append(out[name], r.ID)
		}
	}
	return out
}
