package tabulate

import (
	"strings"

	"stitch/pipeline"
)

// shortNames cuts the tokens that all names share at their start and at
// their end, so experiments read as what differs between them. A name is
// cut only between whole tokens (see nameTokens): a matrix value stays
// whole, with its key (eval[lr=0.1] -> lr=0.1, train[0.6] -> 0.6).
// Names that would become empty or collide are kept whole.
func shortNames(names []string) []string {
	if len(names) < 2 {
		return append([]string(nil), names...)
	}
	tokens := make([][]string, len(names))
	for i, n := range names {
		tokens[i] = nameTokens(n)
	}
	pre, suf := len(tokens[0]), len(tokens[0])
	for _, t := range tokens[1:] {
		pre = min(pre, sharedPrefix(tokens[0], t))
		suf = min(suf, sharedSuffix(tokens[0], t))
	}
	// A ']' is cut only with its '[': evalx[0.6] and ev2[0.8] share the
	// ']' alone, and keep it.
	if out, ok := cut(names, tokens, pre, suf); ok {
		return out
	}
	if out, ok := cut(names, tokens, pre, 0); ok {
		return out
	}
	return append([]string(nil), names...)
}

// cut returns the names without their first pre and last suf tokens, or
// false when one would be empty, two would collide or a bracket would be
// left unmatched.
func cut(names []string, tokens [][]string, pre, suf int) ([]string, bool) {
	out := make([]string, len(names))
	seen := map[string]bool{}
	for i, t := range tokens {
		s := names[i]
		if pre+suf < len(t) {
			s = strings.TrimRight(strings.Join(t[pre:len(t)-suf], ""), "-_,[")
		}
		if s == "" || seen[s] || strings.Count(s, "[") != strings.Count(s, "]") {
			return nil, false
		}
		seen[s] = true
		out[i] = s
	}
	return out, true
}

// nameTokens splits a stage name into tokens that end at a separator, the
// separator included: outside brackets '-' and '_' (eval-vgg16 ->
// "eval-", "vgg16"), and the brackets of a matrix variant, whose values
// end at ',' and whose closing ']' is a token of its own
// (e[32,lr=0.1] -> "e[", "32,", "lr=0.1", "]"). Inside a value nothing
// separates: "0.6", "-1" and "1e-5" are single tokens.
func nameTokens(name string) []string {
	var out []string
	start, depth := 0, 0
	cut := func(end int) {
		if end > start {
			out = append(out, name[start:end])
		}
		start = end
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '[':
			depth++
			if depth == 1 {
				cut(i + 1)
			}
		case c == ']':
			depth--
			if depth == 0 {
				cut(i)
				cut(i + 1)
			}
		case c == ',' && depth == 1, (c == '-' || c == '_') && depth == 0:
			cut(i + 1)
		}
	}
	cut(len(name))
	return out
}

func sharedPrefix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func sharedSuffix(a, b []string) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

// experimentLabels names the charts' series (histories, per-attribute
// tables) as the table names its rows, so that one experiment reads
// alike everywhere: a series from an experiment's own stage, or from the
// one stage of the same variant (train[32] for evaluate[32]), takes that
// experiment's name. When any series has no such match, they all keep
// their own shortened names instead.
func experimentLabels(refs []pipeline.InputRef, exps []*experiment) []string {
	out := make([]string, len(refs))
	for i, ref := range refs {
		var same []*experiment
		for _, e := range exps {
			if e.Stage == ref.Stage {
				same = []*experiment{e}
				break
			}
			if v := variant(ref.Stage); v != "" && v == variant(e.Stage) {
				same = append(same, e)
			}
		}
		if len(same) != 1 {
			return shortNames(stageNames(refs))
		}
		out[i] = same[0].Name
	}
	return out
}

// variant is the matrix part of a stage name: from its first '[', or
// from its last '-' for an include name (train-A); "" for none.
func variant(stage string) string {
	if i := strings.IndexByte(stage, '['); i >= 0 {
		return stage[i:]
	}
	if i := strings.LastIndexByte(stage, '-'); i >= 0 {
		return stage[i:]
	}
	return ""
}
