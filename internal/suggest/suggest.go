// Package suggest finds the closest valid name to a misspelt one, for
// "did you mean" hints in error messages.
package suggest

import "strings"

// Closest returns the candidate nearest to name by edit distance, or "" when
// none is close enough to be a plausible typo. Ties go to the candidate that
// comes first in candidates, so callers that pass sorted names get the same
// hint every time.
func Closest(name string, candidates []string) string {
	best, bestDist := "", -1
	lower := strings.ToLower(name)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := min(distance(lower, lc), distance(singular(lower), singular(lc)))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	// Allow about one edit per three characters, and at least two, so that
	// "lr" -> "l2" is offered but "seed" -> "backbone" is not.
	limit := max(2, len(name)/3)
	if bestDist >= 0 && bestDist <= limit {
		return best
	}
	// Else a name that is one word of a single candidate's snake_case
	// words: "size" for "image_size".
	part := ""
	for _, c := range candidates {
		for w := range strings.SplitSeq(strings.ToLower(c), "_") {
			if w == lower && len(w) >= 3 && strings.Contains(c, "_") {
				if part != "" && part != c {
					return "" // several: no hint is better than a guess
				}
				part = c
			}
		}
	}
	return part
}

// Hint returns ` (did you mean "x"?)` for the closest candidate, or "".
func Hint(name string, candidates []string) string {
	if c := Closest(name, candidates); c != "" {
		return ` (did you mean "` + c + `"?)`
	}
	return ""
}

// singular folds an English plural ending to the singular ("categories"
// to "category", "outputs" to "output"), so that the one is offered for
// the other: a plural costs two or three edits, more than a short name's
// typo budget.
func singular(s string) string {
	switch {
	case len(s) > 4 && strings.HasSuffix(s, "ies"):
		return s[:len(s)-3] + "y"
	case len(s) > 3 && strings.HasSuffix(s, "s") && !strings.HasSuffix(s, "ss"):
		return s[:len(s)-1]
	}
	return s
}

// distance is the Levenshtein distance between a and b, over runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
