package train

import (
	"cmp"
	"math"
	"slices"
)

// scored is one known label with its score, for the ROC AUC.
type scored struct {
	score    float32
	positive bool
}

// microAUC is the area under the ROC curve of all known labels pooled
// (micro average): the probability that a random present label scores
// above a random absent one, ties counting half. Unknown labels (0) are
// left out. It is NaN when either class is missing.
func microAUC(items []scored) float64 {
	slices.SortFunc(items, func(a, b scored) int { return cmp.Compare(a.score, b.score) })
	var pos, neg, rankSum float64
	for i := 0; i < len(items); {
		// A run of equal scores shares the mean of its ranks (1-based).
		j := i
		for j < len(items) && items[j].score == items[i].score {
			j++
		}
		meanRank := float64(i+j+1) / 2
		for _, it := range items[i:j] {
			if it.positive {
				pos++
				rankSum += meanRank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
