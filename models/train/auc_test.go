package train

import (
	"math"
	"testing"
)

func TestMicroAUC(t *testing.T) {
	for _, tc := range []struct {
		name  string
		items []scored
		want  float64
	}{
		{"perfect", []scored{{0.1, false}, {0.9, true}, {0.2, false}, {0.8, true}}, 1},
		{"inverted", []scored{{0.9, false}, {0.1, true}}, 0},
		{"ties count half", []scored{{0.5, false}, {0.5, true}}, 0.5},
		{"one of two pairs", []scored{{0.1, true}, {0.2, false}, {0.3, true}}, 0.5},
	} {
		if got := microAUC(tc.items); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: auc = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := microAUC([]scored{{0.1, true}}); !math.IsNaN(got) {
		t.Errorf("auc without negatives = %v, want NaN", got)
	}
}
