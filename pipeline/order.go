package pipeline

import (
	"slices"
	"strings"
)

// order sorts p.Stages topologically (producers first, ties by name) and
// reports every cycle as its path, e.g. "a -> b -> c -> a". Arrows point
// from producer to consumer, as in `stitch dag`; each cycle starts at its
// lexically smallest stage and follows the smallest next stage, so the
// same file gives the same message every time.
func (l *loader) order(p *Pipeline) {
	names := sortedKeys(p.byName)
	consumers := map[string][]string{}
	pending := map[string]int{}
	for _, n := range names {
		s := p.byName[n]
		pending[n] = len(s.Deps)
		for _, d := range s.Deps {
			consumers[d.Name] = append(consumers[d.Name], n)
		}
	}
	for _, cs := range consumers {
		slices.Sort(cs)
	}

	// Kahn's algorithm, always taking the smallest ready name.
	var ready []string
	for _, n := range names {
		if pending[n] == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		n := ready[0]
		ready = ready[1:]
		p.Stages = append(p.Stages, p.byName[n])
		for _, c := range consumers[n] {
			pending[c]--
			if pending[c] == 0 {
				ready = append(ready, c)
			}
		}
	}
	if len(p.Stages) == len(names) {
		return
	}

	// What is left is on a cycle or downstream of one.
	left := map[string]bool{}
	for _, n := range names {
		if pending[n] > 0 {
			left[n] = true
		}
	}
	covered := map[string]bool{}
	for _, n := range names {
		if !left[n] || covered[n] {
			continue
		}
		path := shortestCycle(n, consumers, left)
		if path == nil {
			continue
		}
		for _, m := range path {
			covered[m] = true
		}
		l.errs = append(l.errs, &SpecError{Pos: p.byName[n].Pos,
			Msg: "cycle: " + strings.Join(append(path, n), " -> ")})
	}
}

// shortestCycle returns the shortest path start -> ... back to start
// within nodes, by breadth-first search over sorted edges.
func shortestCycle(start string, edges map[string][]string, nodes map[string]bool) []string {
	prev := map[string]string{}
	queue := []string{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, c := range edges[n] {
			if !nodes[c] {
				continue
			}
			if c == start {
				var path []string
				for m := n; m != start; m = prev[m] {
					path = append(path, m)
				}
				path = append(path, start)
				slices.Reverse(path)
				return path
			}
			if _, seen := prev[c]; !seen {
				prev[c] = n
				queue = append(queue, c)
			}
		}
	}
	return nil
}
