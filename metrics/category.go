package metrics

import (
	"fmt"
	"slices"
)

// CategoryTopK is the top-k category accuracy for each k of ks: the share
// of images with a category (truth[i] > 0) whose category id is among the
// k best of their numCategories scores, ties going to the lower id.
// scores[i*numCategories+c] is the score of category id c+1 on image i.
func CategoryTopK(scores []float32, numCategories int, truth []int32, ks []int) ([]CategoryAccuracy, error) {
	if numCategories <= 0 || len(scores) != len(truth)*numCategories {
		return nil, fmt.Errorf("category accuracy: %d scores for %d images x %d categories",
			len(scores), len(truth), numCategories)
	}
	ks = slices.Compact(slices.Sorted(slices.Values(ks)))
	if len(ks) == 0 || ks[0] < 1 {
		return nil, fmt.Errorf("category accuracy: ks %v, want at least one k >= 1", ks)
	}
	out := make([]CategoryAccuracy, len(ks))
	for ki, k := range ks {
		out[ki].K, out[ki].Categories = k, numCategories
	}
	for i, cat := range truth {
		if cat == 0 {
			continue
		}
		if cat < 0 || int(cat) > numCategories {
			return nil, fmt.Errorf("category accuracy: image %d has category %d, want 1 to %d",
				i, cat, numCategories)
		}
		row := scores[i*numCategories : (i+1)*numCategories]
		// The rank of the true category is the number of categories that
		// beat it: higher score, or equal score and lower id. No sort needed.
		own := row[cat-1]
		if own != own {
			return nil, fmt.Errorf("category accuracy: image %d, category %d: %w", i, cat, ErrNaN)
		}
		rank := 0
		for c, v := range row {
			if v > own || (v == own && c < int(cat-1)) {
				rank++
			} else if v != v {
				return nil, fmt.Errorf("category accuracy: image %d, category %d: %w", i, c+1, ErrNaN)
			}
		}
		for ki, k := range ks {
			out[ki].Images++
			if rank < k {
				out[ki].Hits++
			}
		}
	}
	for ki := range out {
		out[ki].Value = ratio(out[ki].Hits, out[ki].Images)
	}
	return out, nil
}
