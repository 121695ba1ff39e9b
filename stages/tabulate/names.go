package tabulate

import (
	"strings"
	"unicode"
)

// shortNames cuts the prefix and suffix that all names share, at word
// boundaries, so experiments read as what differs between them; a matrix
// value keeps its key (eval[lr=0.1] -> lr=0.1). Names that would become
// empty or collide are kept whole.
func shortNames(names []string) []string {
	if len(names) < 2 {
		return append([]string(nil), names...)
	}
	prefix, suffix := names[0], names[0]
	for _, n := range names[1:] {
		prefix = commonPrefix(prefix, n)
		suffix = reverse(commonPrefix(reverse(suffix), reverse(n)))
	}
	prefix = prefix[:lastBoundary(prefix)]
	// A value keeps its key: "max_epochs=1" says what "1" alone does not.
	if seg := strings.LastIndexAny(prefix, "[,") + 1; strings.Contains(prefix[seg:], "=") {
		prefix = prefix[:seg]
	}
	suffix = suffix[len(suffix)-firstBoundaryFromEnd(suffix):]
	out := make([]string, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		s := n
		if len(prefix)+len(suffix) < len(n) {
			s = n[len(prefix) : len(n)-len(suffix)]
		}
		if s == "" || seen[s] {
			return append([]string(nil), names...)
		}
		seen[s] = true
		out[i] = s
	}
	return out
}

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// lastBoundary is the length of the longest prefix of p that ends on a
// separator, so "eval-vgg" against "eval-vit" cuts "eval-" and not "eval-v".
func lastBoundary(p string) int {
	for i := len(p); i > 0; i-- {
		if !isWord(rune(p[i-1])) {
			return i
		}
	}
	return 0
}

// firstBoundaryFromEnd is the length of the longest suffix of s that
// starts with a separator.
func firstBoundaryFromEnd(s string) int {
	for i := 0; i < len(s); i++ {
		if !isWord(rune(s[i])) {
			return len(s) - i
		}
	}
	return 0
}
