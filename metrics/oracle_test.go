package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// oracle is testdata/oracle.py's answer: the top-k metrics recomputed with
// NumPy from the definitions in doc.go, AP and AUC from scikit-learn.
type oracle struct {
	TopK map[string]struct {
		Micro, Macro [3]float64
		Types        map[string]float64
		Pooled       float64
		TP, Pred     []int64
	}
	Ranking struct {
		AP, AUC  []*float64
		MicroAP  float64 `json:"micro_ap"`
		MicroAUC float64 `json:"micro_auc"`
		MacroAP  float64 `json:"macro_ap"`
		MacroAUC float64 `json:"macro_auc"`
	}
}

// TestOracle checks Evaluate against an implementation that shares no
// code with it, on random data with many ties, unknown labels, an
// attribute without positives, one without negatives and a type smaller
// than k. It needs Debian's python3-sklearn; CI installs it, and there a
// missing one fails the test instead of skipping it.
func TestOracle(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy, sklearn").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs python3-sklearn for the oracle: %v", err)
		}
		t.Skip("python3-sklearn not installed: apt-get install python3-sklearn")
	}
	for seed := range uint64(3) {
		t.Run("seed"+strconv.FormatUint(seed, 10), func(t *testing.T) {
			d, ks := oracleCase(seed)
			in, err := json.Marshal(map[string]any{"n": d.NumImages(), "m": d.NumAttributes, "ks": ks,
				"scores": d.Scores, "labels": d.Labels, "types": d.Types})
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), python, "testdata/oracle.py")
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			raw, err := cmd.Output()
			if err != nil {
				t.Fatalf("oracle.py: %v\n%s", err, stderr.String())
			}
			var want oracle
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			got, err := Evaluate(d, Options{Ks: ks})
			if err != nil {
				t.Fatal(err)
			}
			compareOracle(t, got, &want)
		})
	}
}

// oracleCase draws 500 images by 40 attributes in 4 types (one of 3
// attributes); scores take 50 values, so ties are everywhere.
func oracleCase(seed uint64) (Data, []int) {
	rng := rand.New(rand.NewPCG(seed, 11))
	const n, m = 500, 40
	d := Data{NumAttributes: m, Scores: make([]float32, n*m), Labels: make([]int8, n*m), Types: make([]int, m)}
	for a := range m {
		d.Types[a] = 1 + a%4
		if a%4 == 3 && a >= 12 {
			d.Types[a] = 1 // type 4 keeps 3 attributes: 3, 7, 11
		}
	}
	for i := range n {
		for a := range m {
			l := int8(-1)
			switch {
			case a == 5: // no positives
			case a == 6: // no negatives
				l = 1
			case rng.Float64() < 0.1+0.01*float64(a):
				l = 1
			}
			if rng.IntN(20) == 0 {
				l = 0
			}
			s := float32(rng.IntN(50)) / 50
			if l == 1 && rng.IntN(2) == 0 {
				s = min(1, s+0.3)
			}
			d.Labels[i*m+a], d.Scores[i*m+a] = l, s
		}
	}
	return d, []int{1, 3, 5, 20}
}

func compareOracle(t *testing.T, got *Result, want *oracle) {
	t.Helper()
	near := func(what string, g, w float64) {
		if math.Abs(g-w) > 1e-12 {
			t.Errorf("%s = %.17g, oracle %.17g", what, g, w)
		}
	}
	for _, tk := range got.TopK {
		w, ok := want.TopK[strconv.Itoa(tk.K)]
		if !ok {
			t.Fatalf("oracle has no k=%d", tk.K)
		}
		k := "k=" + strconv.Itoa(tk.K) + " "
		for i, name := range []string{"recall", "precision", "f1"} {
			near(k+"micro "+name, [3]float64{tk.Micro.Recall, tk.Micro.Precision, tk.Micro.F1}[i], w.Micro[i])
			near(k+"macro "+name, [3]float64{tk.Macro.Recall, tk.Macro.Precision, tk.Macro.F1}[i], w.Macro[i])
		}
		for a, c := range tk.Counts {
			if c.TP != w.TP[a] || c.Predicted != w.Pred[a] {
				t.Errorf("%sattribute %d: TP %d predicted %d, oracle %d %d", k, a, c.TP, c.Predicted, w.TP[a], w.Pred[a])
			}
		}
		if len(tk.Types) != len(w.Types) {
			t.Errorf("%s%d types, oracle %d", k, len(tk.Types), len(w.Types))
		}
		for _, tr := range tk.Types {
			near(k+"type "+strconv.Itoa(tr.Type)+" recall", tr.Value, w.Types[strconv.Itoa(tr.Type)])
		}
		near(k+"pooled recall", tk.Pooled.Value, w.Pooled)
		near(k+"global recall", tk.Global.Value, w.Micro[0])
	}
	r := got.Ranking
	for a := range r.AP {
		for _, m := range []struct {
			name string
			has  bool
			v    float64
			w    *float64
		}{{"AP", r.HasAP[a], r.AP[a], want.Ranking.AP[a]}, {"AUC", r.HasAUC[a], r.AUC[a], want.Ranking.AUC[a]}} {
			switch {
			case m.has != (m.w != nil):
				t.Errorf("attribute %d: %s defined %v, oracle %v", a, m.name, m.has, m.w != nil)
			case m.has:
				near("attribute "+strconv.Itoa(a)+" "+m.name, m.v, *m.w)
			}
		}
	}
	near("micro AP", r.MicroAP, want.Ranking.MicroAP)
	near("micro AUC", r.MicroAUC, want.Ranking.MicroAUC)
	near("macro AP", r.MacroAP, want.Ranking.MacroAP)
	near("macro AUC", r.MacroAUC, want.Ranking.MacroAUC)
}
