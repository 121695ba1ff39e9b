package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"stitch/models/graph"
)

// refOptimizer is PyTorch's AdamW and SGD in float64, the reference the
// update graphs are checked against.
type refOptimizer struct {
	o         Optimizer
	m, v, buf []float64
	t         int
}

func (r *refOptimizer) step(p, g []float64, lr float64) {
	o := r.o.withDefaults()
	wd := float64(o.WeightDecay)
	if o.Kind == Adam {
		if r.m == nil {
			r.m, r.v = make([]float64, len(p)), make([]float64, len(p))
		}
		r.t++
		b1, b2, eps := float64(o.Beta1), float64(o.Beta2), float64(o.Epsilon)
		bc1 := 1 - math.Pow(b1, float64(r.t))
		bc2 := 1 - math.Pow(b2, float64(r.t))
		for i := range p {
			p[i] *= 1 - lr*wd
			r.m[i] = b1*r.m[i] + (1-b1)*g[i]
			r.v[i] = b2*r.v[i] + (1-b2)*g[i]*g[i]
			p[i] -= lr / bc1 * r.m[i] / (math.Sqrt(r.v[i])/math.Sqrt(bc2) + eps)
		}
		return
	}
	if r.buf == nil {
		r.buf = make([]float64, len(p))
	}
	mu := float64(o.Momentum)
	for i := range p {
		d := g[i] + wd*p[i]
		if mu != 0 {
			r.buf[i] = mu*r.buf[i] + d
			if o.Nesterov {
				d += mu * r.buf[i]
			} else {
				d = r.buf[i]
			}
		}
		p[i] -= lr * d
	}
}

func TestOptimizersMatchReference(t *testing.T) {
	for _, o := range []Optimizer{
		{Kind: Adam},
		{Kind: Adam, Beta1: 0.8, Beta2: 0.99, Epsilon: 1e-3, WeightDecay: 0.1},
		{Kind: SGD},
		{Kind: SGD, Momentum: 0.9, WeightDecay: 0.01},
		{Kind: SGD, Momentum: 0.9, Nesterov: true},
	} {
		// [7, 1, 1] takes the flat-view path of update.
		for _, shape := range [][]int64{{7}, {7, 1, 1}} {
			t.Run(fmt.Sprintf("%s_wd%g_mom%g_nesterov%v_%v", o.Kind, o.WeightDecay, o.Momentum, o.Nesterov, shape),
				func(t *testing.T) { checkOptimizer(t, o, shape) })
		}
	}
}

func checkOptimizer(t *testing.T, o Optimizer, shape []int64) {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	b := graph.New("update")
	b.Input("p", graph.Float, shape)
	b.Input("g", graph.Float, shape)
	states := o.StateNames("p")
	var news []string
	for _, s := range states {
		b.Input(s, graph.Float, shape)
		news = append(news, "new/"+s)
	}
	b.Input("lr", graph.Float, []int64{1})
	b.Input("t", graph.Float, []int64{1})
	if err := newUpdater(b, o, "lr", "t").update("p", shape, "g", states, "new/p", news); err != nil {
		t.Fatal(err)
	}
	outputs := append([]string{"new/p"}, news...)
	for _, name := range outputs {
		b.Output(name, graph.Float, shape)
	}
	model := marshal(t, b)

	rng := rand.New(rand.NewPCG(3, 4))
	p := make([]float32, n)
	ref := &refOptimizer{o: o}
	refP := make([]float64, n)
	for i := range p {
		p[i] = float32(rng.NormFloat64())
		refP[i] = float64(p[i])
	}
	state := make([][]float32, len(states))
	for i := range state {
		state[i] = make([]float32, n)
	}
	for step := 1; step <= 5; step++ {
		g := make([]float32, n)
		refG := make([]float64, n)
		for i := range g {
			g[i] = float32(rng.NormFloat64())
			refG[i] = float64(g[i])
		}
		lr := 0.01 * float64(step)
		feeds := []feed{{"p", p, shape}, {"g", g, shape}}
		for i, s := range states {
			feeds = append(feeds, feed{s, state[i], shape})
		}
		feeds = append(feeds, feed{"lr", []float32{float32(lr)}, []int64{1}},
			feed{"t", []float32{float32(step)}, []int64{1}})
		out := runGraph(t, model, feeds, outputs)
		p = out["new/p"]
		for i := range states {
			state[i] = out[news[i]]
		}
		ref.step(refP, refG, float64(float32(lr)))
		for i := range p {
			if d := math.Abs(float64(p[i]) - refP[i]); d > 1e-5*math.Max(1, math.Abs(refP[i])) {
				t.Fatalf("step %d: p[%d] = %v, reference %v", step, i, p[i], refP[i])
			}
		}
	}
}
