package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// deepFashionTypes are the attribute counts per type of DeepFashion coarse
// (texture, fabric, shape, part, style), 1000 in all.
var deepFashionTypes = []int{156, 218, 180, 216, 230}

// syntheticCoarse builds n images over DeepFashion's 1000 attributes with
// its shape: types interleaved, a long-tailed label frequency (about three
// positives per image), 1% unknown labels, and scores from a noisy model
// that ranks positives higher on average.
func syntheticCoarse(n int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 7))
	var types []int
	for t, c := range deepFashionTypes {
		for range c {
			types = append(types, t+1)
		}
	}
	rng.Shuffle(len(types), func(i, j int) { types[i], types[j] = types[j], types[i] })
	m := len(types)
	freq := make([]float64, m)
	for a := range freq {
		// Zipf-like: a few common attributes, a long tail of rare ones.
		freq[a] = 0.06 / math.Pow(float64(a+1), 0.6)
	}
	d := Data{NumAttributes: m, Types: types,
		Scores: make([]float32, n*m), Labels: make([]int8, n*m)}
	for i := range n {
		for a := range m {
			l := int8(-1)
			logit := -4 + rng.NormFloat64()
			if rng.Float64() < freq[a] {
				l = 1
				logit += 2.5
			}
			if rng.IntN(100) == 0 {
				l = 0
			}
			d.Labels[i*m+a] = l
			d.Scores[i*m+a] = float32(1 / (1 + math.Exp(-logit)))
		}
	}
	return d
}

// BenchmarkEvaluate is the benchmark: 40,000 images x 1000
// attributes, k in {3, 5, 20}, every metric.
func BenchmarkEvaluate(b *testing.B) {
	d := syntheticCoarse(40_000, 1)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Evaluate(d, Options{Ks: []int{3, 5, 20}}); err != nil {
			b.Fatal(err)
		}
	}
}
